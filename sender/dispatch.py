"""Sending: claim what is due, render it, hand it to the provider, record the result.

A run (``send_due``) is assembled here; the hand-off of one chunk lives in ``handoff``
and crash recovery with the coach's decisions in ``recovery``. The order of a run:

1. apply campaign-file changes to existing subscribers (``sequence``);
2. take over deliveries a crashed or stuck run left in ``sending`` (atomically, with a
   fresh lease, so two runs never settle the same row) and settle them: back to the
   schedule if the hand-off never began; otherwise ask the provider (or, for a provider
   with idempotency keys, replay the identical request) and resend only what provably
   did not go; the rest waits for a decision (``drip resolve``);
3. skip due deliveries of subscribers who unsubscribed, bounced or complained;
4. claim batches atomically (a lease per claim); skip a step whose condition does not hold
   for her and cancel the campaign of someone who reached its goal (``step_rules``, read
   for the whole batch at once); hold back, or replace by a "still want these?" email, the
   emails of someone who has stopped clicking (``sunset``); render, then: a short transaction
   marks the rows handed (subscribers' status re-read under a lock), the provider is
   called outside any transaction, and a short transaction records each result, only
   while the lease is still ours.

No database lock is held across a network call, so signups, unsubscribes and
webhooks never wait for a provider. An email that cannot be rendered waits (reason
``template_error``) while the rest of the batch goes on.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from datetime import timedelta

from . import brake, branches, ledger, step_render, step_rules, sunset
from .broadcast_runs import changed_since_start, start_due
from .broadcasts import ENTRY as BROADCAST
from .broadcasts import PREFIX as broadcast_prefix
from .compose import compose
from .errors import DripError, InvalidInput, ProviderError
from .handoff import (
    SendReport,
    backoff,
    compose_for,
    hold_broken,
    mark_handed,
    record_all,
    release,
    write_counted,
)
from .identity import TRANSACTIONAL, stream_of
from .recovery import recover_stale, resolve, resolve_many
from .schedule import min_gap_until, yield_until, zone
from .send_ahead import horizon as ahead_horizon
from .sequence import campaign_changes

__all__ = ["SendReport", "backoff", "resolve", "resolve_many", "send_due"]


def send_due(drip, *, now, limit=None, dry_run=False, progress=None, stop=None,
             subscriber_id=None, ahead=None, clock=time.monotonic):
    """Send everything due at ``now`` (at most ``limit``); returns a SendReport.

    ``progress`` is called with the number of deliveries finished, for a progress bar;
    ``stop()`` is asked between batches and ends the run early when it returns True.
    With ``subscriber_id`` only that subscriber's due email goes, through the same
    claim and record path, and the run-wide steps 1-3 are left to ``drip send``
    (the web endpoints send a confirmation or welcome email at once this way).
    With ``ahead`` (a timedelta), deliveries due within it are then handed to the
    provider to hold until their due time (see ``send_ahead.py``).

    ``now`` decides what is due and what the emails say; claims and their renewals are
    stamped with ``now`` moved on by the time this run has taken (``clock``, in seconds),
    so a batch claimed an hour into a long run does not look an hour old to another run.
    """
    store = drip.store
    started = clock()
    report = SendReport()
    for problems in drip.campaigns.broken.values():
        report.template_errors += [p for p in problems if p not in report.template_errors]

    def stamp():
        return now + timedelta(seconds=max(clock() - started, 0.0))

    reach = ahead_horizon(drip.provider, ahead) if ahead and not dry_run else None
    confirmation = drip.campaigns.confirmation
    pending_campaign = confirmation.id if confirmation else None
    if dry_run:
        report.changes = len(campaign_changes(drip, now, apply=False))
        _dry_run(drip, now, limit, pending_campaign, report)
        return report
    if subscriber_id is None:
        report.changes = len(campaign_changes(drip, now, apply=True))
        branches.note_waiting(drip, now)        # what recovery may settle as sent: see branches.py
        recover_stale(drip, now, report, stamp)
        report.cancelled += branches.catch_up(drip, now)
        report.skipped += ledger.skip_ended(store, now)
        report.template_errors += start_due(drip, now=now)     # broadcasts' rows, when due
        store.refresh_statistics()      # after a bulk import or a broadcast's rows (PostgreSQL)
    provider = drip.provider
    while limit is None or report.sent + report.failed + report.retried < limit:
        if stop and stop():
            break
        room = provider.batch_size
        if limit is not None:
            room = min(room, limit - report.sent - report.failed - report.retried)
        batch = ledger.claim(store, stamp(), room, pending_campaign=pending_campaign,
                             subscriber_id=subscriber_id, due_by=now)
        if not batch and reach:
            batch = ledger.claim(store, stamp(), room, pending_campaign=pending_campaign,
                                 subscriber_id=subscriber_id, due_by=now + reach)
        if not batch:
            break
        with step_render.one_version(drip.templates):     # a batch: one version of each step
            _send_batch(drip, batch, now, report, pending_campaign, ahead=bool(reach),
                        stamp=stamp)
        if progress:
            progress(len(batch))
    return report


def _send_batch(drip, batch, now, report, pending_campaign, ahead=False, stamp=None):
    """Compose the batch, then hand it over a chunk at a time (what the provider sends at
    once: one batch request, or one request per connection in flight): mark the chunk
    handed, call the provider, record the answers. Only the mark and the record are
    transactions, each short; the provider is called outside any, so no writer (a signup,
    an unsubscribe, a webhook) ever waits for the network. Each mark renews the claim on
    the rows still being sent, and re-reads the subscribers' status, so an unsubscribe
    stops everything of hers not yet in a request."""
    stamp = stamp or (lambda: now)
    store = drip.store
    people = store.get_subscribers([d.subscriber_id for d in batch])
    confirmation = drip.campaigns.confirmation
    last_sent = store.last_sent(people, exclude_campaign=confirmation.id if confirmation else None)
    coming = _coming(drip, batch, now, confirmation)
    facts = _rule_facts(drip, batch, people)     # one look-up per term the steps' rules read
    facts.update(sunset.batch_facts(drip, batch, people, now))   # one query, when it is on
    goals = {}       # (subscriber, campaign) -> the goal she reached: her other steps end too
    asked = sunset.Outcome()     # questions to schedule, people whose mail stops (sunset.py)
    messages, seen = [], set()
    waiting = branches.waiting_for(drip, batch)   # after a step whose branch is not settled
    changed = changed_since_start(drip, {d.campaign for d in batch})   # edited broadcasts
    # What does not go (held, cancelled, deferred, failed) is written together, in one short
    # transaction before the hand-off; each row counts once written (``write_counted``).
    held_back, counted = ledger.Batch(store), {}
    for delivery in batch:
        subscriber = people.get(delivery.subscriber_id)
        if subscriber is None:      # erased since the claim: their ledger rows are gone too
            report.skipped += 1
            continue
        campaign = drip.campaigns.get(delivery.campaign)
        step = campaign.step(delivery.step) if campaign else None
        if campaign is None and delivery.campaign in drip.campaigns.broken:
            # Its file is broken, not removed: the email waits for the fix.
            problem = drip.campaigns.broken[delivery.campaign][0]
            hold_broken(held_back, delivery, problem, now, report, code=ledger.CAMPAIGN_ERROR,
                        what="its campaign file does not load")
            counted[delivery.id] = ("held", None)
            continue
        if delivery.campaign in changed:
            hold_broken(held_back, delivery, changed[delivery.campaign], now, report,
                        code=ledger.CAMPAIGN_ERROR, what="its broadcast file was edited")
            counted[delivery.id] = ("held", None)
            continue
        if step is None:
            ledger.cancel(held_back, delivery, ledger.STEP_GONE,
                          "the campaign or step no longer exists")
            counted[delivery.id] = ("cancelled", None)
            continue
        if delivery.id in waiting:      # an earlier step's branch may cancel it (branches.py)
            ledger.wait_for_branch(held_back, delivery, due=now + branches.RECHECK,
                                   message=waiting[delivery.id])
            counted[delivery.id] = ("deferred", None)
            continue
        # A step's condition and its campaign's goal (step_rules.py), before the minimum gap:
        # a step that does not go uses none of it.
        decision = step_rules.decide(campaign, step, subscriber, facts)
        if decision is not None and decision.action in step_rules.SUNSET_ACTIONS:
            counted[delivery.id] = (sunset.apply(held_back, delivery, decision, asked), None)
            continue
        if decision is not None:
            if decision.action == step_rules.CANCEL:
                ledger.cancel(held_back, delivery, decision.code, decision.message)
                goals[(subscriber.id, campaign.id)] = decision.message
            else:
                ledger.skip(held_back, delivery, decision.code, decision.message)
            counted[delivery.id] = ("cancelled" if decision.action == step_rules.CANCEL
                                    else "skipped", None)
            continue
        at = max(delivery.due_at, now) if ahead else now   # held by the provider until then
        # DRIP_MIN_GAP spaces marketing mail; the confirmation and the welcome email with the
        # guide (transactional) always go at once.
        later = (None if stream_of(campaign, step) == TRANSACTIONAL
                 else _after_min_gap(drip, subscriber, campaign, seen, last_sent, at, coming))
        if later is not None:
            ledger.defer_for_gap(held_back, delivery, later)
            counted[delivery.id] = ("deferred", None)
            continue
        try:
            message = compose_for(drip, delivery, subscriber, campaign, step, at, now)
        except ProviderError:
            write_counted(held_back, counted, report)
            raise
        except InvalidInput as exc:
            # This person's stored data cannot go into an email (a name saved before drip
            # refused '=?' or control characters): only this delivery fails, with the reason.
            ledger.failed(held_back, delivery, ledger.BAD_DATA,
                          f"not sent: {exc} (fix the subscriber's details and resend)")
            shown = subscriber.email if subscriber.email.isprintable() else repr(subscriber.email)
            counted[delivery.id] = ("failed", f"{shown}: {exc}")
            continue
        except DripError as exc:
            # A broken template stops only its own step: this delivery waits (it is not
            # failed) and the rest of the batch goes on.
            hold_broken(held_back, delivery, exc, now, report)
            counted[delivery.id] = ("held", None)
            continue
        messages.append(message)
        seen.add(subscriber.id)
    write_counted(held_back, counted, report)
    if asked:
        report.cancelled += sunset.after_batch(drip, asked, now)
    for (subscriber_id, campaign_id), message in goals.items():
        report.cancelled += ledger.cancel_pending_for(store, subscriber_id, ledger.GOAL_REACHED,
                                                      message, campaign=campaign_id)
    if not messages:
        return
    by_id = {d.id: d for d in batch}
    chunks = drip.provider.handoff_chunks(messages)
    for number, chunk in enumerate(chunks):
        marked = mark_handed(drip, chunk, by_id, now, pending_campaign, report, stamp())
        if not marked:
            continue
        try:
            results = drip.provider.send(marked)
        except ProviderError:
            # Raised before anything of this chunk was accepted (a bad key at the first
            # answer, a provider that cannot hold mail): this chunk and the ones not yet
            # handed go back; what earlier chunks handed over is recorded already.
            release(store, [by_id[m.delivery_id] for c in chunks[number:] for m in c])
            raise
        # A step with ``then``: its branch is followed in the transaction that records it sent.
        following = branches.among(drip, [by_id[m.delivery_id] for m in marked])
        with store.transaction() if following else nullcontext():
            record_all(drip, marked, results, by_id, now, report, people)
            if following:
                report.cancelled += branches.follow(drip, following, now)


def _dry_run(drip, now, limit, pending_campaign, report):
    """What a run at ``now`` would send: each due email rendered (so a template error shows
    here, not at send time), with its recipient and subject. Nothing is changed."""
    store = drip.store
    due = list(store.deliveries(states=("scheduled",), due_before=now + timedelta(seconds=1),
                                limit=limit))
    people = store.get_subscribers([d.subscriber_id for d in due])
    braked = {b["campaign"] for b in brake.active(store)}
    facts = {**_rule_facts(drip, due, people), **sunset.batch_facts(drip, due, people, now)}
    for delivery in due:
        item = delivery.to_dict()
        subscriber = people.get(delivery.subscriber_id)
        campaign = drip.campaigns.get(delivery.campaign)
        step = campaign.step(delivery.step) if campaign else None
        wanted = "pending" if delivery.campaign == pending_campaign else "active"
        item["to"] = subscriber.email if subscriber else None
        if delivery.campaign in braked:
            item["would"] = "wait: its campaign is paused by the complaint brake"
        elif campaign is None and delivery.campaign in drip.campaigns.broken:
            item["would"] = "wait: its campaign file does not load"
            item["error"] = drip.campaigns.broken[delivery.campaign][0]
            if item["error"] not in report.template_errors:
                report.template_errors.append(item["error"])
        elif step is None:
            item["would"] = "cancel: the campaign or step no longer exists"
        elif subscriber.status != wanted:
            item["would"] = f"skip: subscriber is {subscriber.status}"
        elif (decision := step_rules.decide(campaign, step, subscriber, facts)) is not None:
            item["would"] = f"{decision.action}: {decision.message}"
        else:
            try:
                message = compose(drip, subscriber, campaign, step, now=now,
                                  delivery_id=delivery.id)
            except DripError as exc:
                item["would"] = "wait: this email cannot be rendered"
                item["error"] = str(exc)
                if str(exc) not in report.template_errors:
                    report.template_errors.append(str(exc))
            else:
                item["would"] = "send"
                item["to"] = str(message.to)
                item["subject"] = message.subject
        report.would_send.append(item)


def _rule_facts(drip, deliveries, people):
    """What the conditions and goals of these deliveries' steps read from the store (clicks,
    campaign progress) for ``people``: one query per term for the whole batch."""
    pairs = []
    for delivery in deliveries:
        campaign = drip.campaigns.get(delivery.campaign)
        step = campaign.step(delivery.step) if campaign else None
        if step is not None:
            pairs.append((campaign, step))
    segments = step_rules.segments_of(pairs)
    return step_rules.batch_facts(drip.store, segments, list(people.values())) if segments else {}


def _after_min_gap(drip, subscriber, campaign, seen, last_sent, at, coming=None):
    """When a campaign email to ``subscriber`` going at ``at`` may go instead, or None when
    it may go then (``schedule.min_gap_until``). ``last_sent`` is the batch's one lookup of
    when each was last sent; one already in this batch counts as sent at ``at``. An email of
    the kind that yields (``DRIP_BROADCAST_YIELD``) also waits for the other kind's email due
    within the gap (``coming``, from ``_coming``: ``schedule.yield_until``)."""
    settings = drip.settings
    last = at if subscriber.id in seen else last_sent.get(subscriber.id)
    tz = zone(subscriber.timezone or settings.timezone_name)
    window = campaign.window_or(settings.send_window)
    later = None if last is None else min_gap_until(last, settings.min_gap, at, tz, window)
    if later is None and coming and _yields(drip, campaign):
        later = yield_until(coming.get(subscriber.id), settings.min_gap, at, tz, window)
    return later


def _yields(drip, campaign):
    """Whether ``campaign``'s emails give way to the other kind's (DRIP_BROADCAST_YIELD)."""
    return (campaign.entry_on == BROADCAST) == (drip.settings.broadcast_yield == "broadcast")


def _coming(drip, batch, now, confirmation):
    """{subscriber id: when the other kind's next email is due} for the batch's people whose
    email here yields to it: her scheduled rows due within the gap (one lookup), and the other
    kind's rows in this batch."""
    broadcast_yields = drip.settings.broadcast_yield == "broadcast"
    yielding = [d for d in batch if d.campaign.startswith(broadcast_prefix) == broadcast_yields]
    if not yielding:
        return {}
    before = max([now, *(d.due_at for d in batch)]) + drip.settings.min_gap
    found = drip.store.next_coming([d.subscriber_id for d in yielding],
                                   broadcasts=not broadcast_yields, before=before,
                                   exclude_campaign=confirmation.id if confirmation else None)
    for d in batch:
        if d.campaign.startswith(broadcast_prefix) != broadcast_yields:
            known = found.get(d.subscriber_id)
            found[d.subscriber_id] = d.due_at if known is None else min(known, d.due_at)
    return found
