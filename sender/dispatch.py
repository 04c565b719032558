"""Sending: claim what is due, render it, hand it to the provider, record the result.

The order of a run:

1. apply campaign-file changes to existing subscribers (``sequence``);
2. settle deliveries a crashed run left in ``sending``: ask the provider
   whether each went out; resend only what it can say did not; leave the rest
   for a decision (``drip resolve``) instead of risking a duplicate;
3. skip due deliveries of subscribers who unsubscribed, bounced or complained;
4. claim batches atomically (two processes never take the same row), render,
   send, and record each result.

Intent (``sending``) is recorded before the provider is called, the result after.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from . import subscribers as subscriber_ops
from .ahead import horizon as ahead_horizon
from .compose import compose, message_id
from .errors import DripError, ProviderError
from .providers.base import (
    ACCEPTED,
    RECONCILED_NOT_SENT,
    RECONCILED_SENT,
    REJECTED,
    RETRY,
    SCHEDULED,
    UNKNOWN,
)
from .schedule import fit_window, zone
from .sequence import campaign_changes

NEEDS_DECISION = ("interrupted during hand-off and the provider cannot tell whether it was "
                  "sent; decide with `drip resolve {id} --as sent|resend`")


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    deferred: int = 0
    cancelled: int = 0
    recovered: int = 0
    undecided: int = 0
    unconfirmed: int = 0
    changes: int = 0
    would_send: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def to_dict(self):
        data = {k: getattr(self, k) for k in ("sent", "failed", "retried", "skipped", "deferred",
                                              "cancelled", "recovered", "undecided", "unconfirmed",
                                              "changes")}
        data["errors"] = list(self.errors)
        if self.would_send:
            data["would_send"] = list(self.would_send)
        return data


def backoff(attempts, retry_after=None, *, rng=random):
    """Seconds to wait before the next attempt: exponential from one minute, with jitter,
    capped at six hours, and never less than the provider's Retry-After."""
    base = min(60 * 2 ** max(attempts - 1, 0), 6 * 3600)
    delay = base * rng.uniform(0.8, 1.2)
    return max(delay, retry_after or 0)


def send_due(drip, *, now, limit=None, dry_run=False, progress=None, stop=None,
             subscriber_id=None, ahead=None):
    """Send everything due at ``now`` (at most ``limit``); returns a SendReport.

    ``progress`` is called with the number of deliveries finished, for a progress bar;
    ``stop()`` is asked between batches and ends the run early when it returns True.
    With ``subscriber_id`` only that subscriber's due email goes, through the same
    claim and record path, and the run-wide steps 1-3 are left to ``drip send``
    (the web endpoints send a confirmation or welcome email at once this way).
    With ``ahead`` (a timedelta), deliveries due within it are then handed to the
    provider to hold until their due time (see ``ahead.py``).
    """
    store = drip.store
    reach = ahead_horizon(drip.provider, ahead) if ahead and not dry_run else None
    report = SendReport()
    confirmation = drip.campaigns.confirmation
    pending_campaign = confirmation.id if confirmation else None
    if dry_run:
        report.changes = len(campaign_changes(drip, now, apply=False))
        for delivery in store.deliveries(states=("scheduled",), due_before=now
                                         + timedelta(seconds=1), limit=limit):
            report.would_send.append(delivery.to_dict())
        return report
    if subscriber_id is None:
        report.changes = len(campaign_changes(drip, now, apply=True))
        _recover_stale(drip, now, report)
        report.skipped += store.skip_ended(now)
    provider = drip.provider
    while limit is None or report.sent + report.failed + report.retried < limit:
        if stop and stop():
            break
        room = provider.batch_size
        if limit is not None:
            room = min(room, limit - report.sent - report.failed - report.retried)
        batch = store.claim_due(now, room, pending_campaign=pending_campaign,
                                subscriber_id=subscriber_id)
        if not batch and reach:
            batch = store.claim_due(now, room, pending_campaign=pending_campaign,
                                    subscriber_id=subscriber_id, due_by=now + reach)
        if not batch:
            break
        _send_batch(drip, batch, now, report, pending_campaign, ahead=bool(reach))
        if progress:
            progress(len(batch))
    return report


def _send_batch(drip, batch, now, report, pending_campaign, ahead=False):
    store, provider = drip.store, drip.provider
    people = store.get_subscribers([d.subscriber_id for d in batch])
    messages, seen = [], set()
    for delivery in batch:
        subscriber = people.get(delivery.subscriber_id)
        if subscriber is None:      # erased since the claim: their ledger rows are gone too
            report.skipped += 1
            continue
        campaign = drip.campaigns.get(delivery.campaign)
        step = campaign.step(delivery.step) if campaign else None
        if step is None:
            store.update_delivery(delivery.id, expect_state="sending", state="cancelled",
                                  last_error="the campaign or step no longer exists")
            report.cancelled += 1
            continue
        at = max(delivery.due_at, now) if ahead else now   # held by the provider until then
        if delivery.campaign != pending_campaign and _too_soon(drip, delivery, subscriber, seen,
                                                               at):
            report.deferred += 1
            continue
        try:
            message = compose(drip, subscriber, campaign, step, now=at,
                              delivery_id=delivery.id)
        except DripError:
            _release(store, batch)
            raise
        if at > now:
            message.send_at = at
        messages.append(message)
        seen.add(subscriber.id)
    if not messages:
        return
    by_id = {d.id: d for d in batch}
    try:
        # The hand-off and its record share one write transaction, and the subscribers are
        # re-read under its lock: an unsubscribe or pause either committed before (and the
        # message is dropped here) or waits until this batch is recorded. Nothing is sent
        # after an unsubscribe is committed.
        with store.handoff_transaction():
            current = store.lock_subscribers(list({d.subscriber_id for d in batch}))
            messages = [m for m in messages
                        if _still_wanted(store, by_id[m.delivery_id], current, pending_campaign, report)]
            results = provider.send(messages) if messages else []
            for message, result in zip(messages, results, strict=True):
                _record(drip, by_id[message.delivery_id], message, result, now, report, people)
    except ProviderError:
        _release(store, batch)
        raise


def _still_wanted(store, delivery, statuses, pending_campaign, report):
    """Whether a claimed delivery may still go, given its subscriber's status right now."""
    wanted = "pending" if delivery.campaign == pending_campaign else "active"
    status = statuses.get(delivery.subscriber_id)
    if status == wanted:
        return True
    if status == "paused":
        store.update_delivery(delivery.id, expect_state="sending", state="scheduled")
    else:
        store.update_delivery(delivery.id, expect_state="sending", state="skipped",
                              last_error=f"subscriber is {status or 'gone'}")
        report.skipped += 1
    return False


def _too_soon(drip, delivery, subscriber, seen, now):
    """Hold a campaign email that would follow another within DRIP_MIN_GAP."""
    store, settings = drip.store, drip.settings
    confirmation = drip.campaigns.confirmation
    gap = settings.min_gap
    last = store.last_sent_at(subscriber.id,
                              exclude_campaign=confirmation.id if confirmation else None)
    if subscriber.id in seen:
        last = now
    if last is None or now - last >= gap:
        return False
    campaign = drip.campaigns.get(delivery.campaign)
    tz = zone(subscriber.timezone or settings.timezone_name)
    later = fit_window(last + gap, tz, campaign.window_or(settings.send_window))
    store.update_delivery(delivery.id, expect_state="sending", state="scheduled", due_at=later,
                          last_error=None)
    return True


def _release(store, deliveries):
    """Put claimed deliveries back, untouched, when the run stops before sending them."""
    with store.transaction():
        for delivery in deliveries:
            store.update_delivery(delivery.id, expect_state="sending", state="scheduled")


def _record(drip, delivery, message, result, now, report, people):
    store, settings, provider = drip.store, drip.settings, drip.provider
    attempts = delivery.attempts + 1
    if result.outcome in (ACCEPTED, SCHEDULED):
        sent_at = message.send_at if result.outcome == SCHEDULED and message.send_at else now
        store.update_delivery(delivery.id, state="sent", attempts=attempts, sent_at=sent_at,
                              provider=provider.name,
                              provider_message_id=result.provider_message_id, last_error=None)
        report.sent += 1
    elif result.outcome == REJECTED:
        store.update_delivery(delivery.id, state="failed", attempts=attempts,
                              provider=provider.name, last_error=result.error)
        report.failed += 1
        report.errors.append(f"{message.to.addr_spec}: {result.error}")
        if result.suppress:
            subscriber_ops.suppress(drip, people[delivery.subscriber_id], "bounced", now=now,
                                    reason=f"provider rejected the address: {result.error}")
    elif result.outcome == RETRY:
        if attempts >= settings.max_attempts:
            store.update_delivery(delivery.id, state="failed", attempts=attempts,
                                  provider=provider.name,
                                  last_error=f"gave up after {attempts} attempts: {result.error}")
            report.failed += 1
            report.errors.append(f"{message.to.addr_spec}: {result.error}")
        else:
            due = now + timedelta(seconds=backoff(attempts, result.retry_after))
            store.update_delivery(delivery.id, state="scheduled", attempts=attempts, due_at=due,
                                  provider=provider.name, last_error=result.error)
            report.retried += 1
    elif result.outcome == UNKNOWN:
        # It may have gone out: leave it in `sending`. After DRIP_CLAIM_TIMEOUT the next run
        # asks the provider (reconcile) and resends only what it can say did not go.
        store.update_delivery(delivery.id, attempts=attempts, provider=provider.name,
                              last_error=f"hand-off unconfirmed ({result.error}); it will be checked "
                                         "with the provider before any resend")
        report.unconfirmed += 1
    else:
        raise ProviderError(f"provider {provider.name} gave an unknown outcome "
                            f"{result.outcome!r}")


def _recover_stale(drip, now, report):
    store, provider = drip.store, drip.provider
    for delivery in store.stale_sending(now - drip.settings.claim_timeout):
        subscriber = store.get_subscriber(id=delivery.subscriber_id)
        campaign = drip.campaigns.get(delivery.campaign)
        step = campaign.step(delivery.step) if campaign else None
        if step is None:
            verdict, provider_id = provider.reconcile(delivery, None)
        else:
            mid = message_id(campaign, step, subscriber, drip.settings.sender)
            verdict, provider_id = provider.reconcile(delivery, mid)
        if verdict == RECONCILED_SENT:
            store.update_delivery(delivery.id, expect_state="sending", state="sent",
                                  attempts=delivery.attempts + 1, sent_at=delivery.claimed_at,
                                  provider=provider.name, provider_message_id=provider_id,
                                  last_error=None)
            report.recovered += 1
        elif verdict == RECONCILED_NOT_SENT:
            store.update_delivery(delivery.id, expect_state="sending", state="scheduled",
                                  last_error="interrupted before hand-off; sending again")
            report.recovered += 1
        else:
            store.update_delivery(delivery.id, last_error=NEEDS_DECISION.format(id=delivery.id))
            report.undecided += 1


def resolve(drip, delivery_id, decision, *, now):
    """The coach's decision on a delivery left in ``sending``: "sent" or "resend"."""
    store = drip.store
    delivery = store.get_delivery(delivery_id)
    if delivery is None:
        raise DripError(f"no delivery {delivery_id} (see `drip status`)")
    if delivery.state != "sending":
        raise DripError(f"delivery {delivery_id} is {delivery.state}, not waiting for a decision")
    if decision == "sent":
        store.update_delivery(delivery_id, expect_state="sending", state="sent",
                              sent_at=delivery.claimed_at or now,
                              last_error="marked sent by the coach")
    else:
        store.update_delivery(delivery_id, expect_state="sending", state="scheduled", due_at=now,
                              last_error="resend chosen by the coach")
