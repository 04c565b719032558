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
4. claim batches atomically (a lease per claim), render, then: a short transaction
   marks the rows handed (subscribers' status re-read under a lock), the provider is
   called outside any transaction, and a short transaction records each result, only
   while the lease is still ours.

No database lock is held across a network call, so signups, unsubscribes and
webhooks never wait for a provider. An email that cannot be rendered waits (reason
``template_error``) while the rest of the batch goes on.
"""

from __future__ import annotations

import time
from datetime import timedelta

from . import brake, ledger
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
)
from .identity import TRANSACTIONAL, stream_of
from .recovery import recover_stale, resolve, resolve_many
from .schedule import min_gap_until, zone
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
        recover_stale(drip, now, report, stamp)
        report.skipped += ledger.skip_ended(store, now)
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
        _send_batch(drip, batch, now, report, pending_campaign, ahead=bool(reach), stamp=stamp)
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
    messages, seen = [], set()
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
            hold_broken(store, delivery, problem, now, report, code=ledger.CAMPAIGN_ERROR,
                         what="its campaign file does not load")
            continue
        if step is None:
            ledger.cancel(store, delivery, ledger.STEP_GONE, "the campaign or step no longer exists")
            report.cancelled += 1
            continue
        at = max(delivery.due_at, now) if ahead else now   # held by the provider until then
        # DRIP_MIN_GAP spaces marketing mail; the confirmation and the welcome email with the
        # guide (transactional) always go at once.
        later = (None if stream_of(campaign, step) == TRANSACTIONAL
                 else _after_min_gap(drip, subscriber, campaign, seen, last_sent, at))
        if later is not None:
            ledger.defer_for_gap(store, delivery, later)
            report.deferred += 1
            continue
        try:
            message = compose_for(drip, delivery, subscriber, campaign, step, at, now)
        except ProviderError:
            raise
        except InvalidInput as exc:
            # This person's stored data cannot go into an email (a name saved before drip
            # refused '=?' or control characters): only this delivery fails, with the reason.
            ledger.failed(store, delivery, ledger.BAD_DATA,
                          f"not sent: {exc} (fix the subscriber's details and resend)")
            report.failed += 1
            shown = subscriber.email if subscriber.email.isprintable() else repr(subscriber.email)
            report.errors.append(f"{shown}: {exc}")
            continue
        except DripError as exc:
            # A broken template stops only its own step: this delivery waits (it is not
            # failed) and the rest of the batch goes on.
            hold_broken(store, delivery, exc, now, report)
            continue
        messages.append(message)
        seen.add(subscriber.id)
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
        record_all(drip, marked, results, by_id, now, report, people)


def _dry_run(drip, now, limit, pending_campaign, report):
    """What a run at ``now`` would send: each due email rendered (so a template error shows
    here, not at send time), with its recipient and subject. Nothing is changed."""
    store = drip.store
    due = list(store.deliveries(states=("scheduled",), due_before=now + timedelta(seconds=1),
                                limit=limit))
    people = store.get_subscribers([d.subscriber_id for d in due])
    braked = {b["campaign"] for b in brake.active(store)}
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


def _after_min_gap(drip, subscriber, campaign, seen, last_sent, at):
    """When a campaign email to ``subscriber`` going at ``at`` may go instead, or None when
    it may go then (``schedule.min_gap_until``). ``last_sent`` is the batch's one lookup of
    when each was last sent; one already in this batch counts as sent at ``at``."""
    settings = drip.settings
    last = at if subscriber.id in seen else last_sent.get(subscriber.id)
    if last is None:
        return None
    return min_gap_until(last, settings.min_gap, at,
                         zone(subscriber.timezone or settings.timezone_name),
                         campaign.window_or(settings.send_window))
