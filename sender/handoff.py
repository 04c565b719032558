"""Handing one chunk of claimed deliveries to the provider, and recording what it said.

The hand-off of a chunk is three steps: ``mark_handed`` (a short transaction: the
subscribers' status re-read under a lock, ``handed_at`` set on the rows still wanted, the
batch's claim renewed), the provider's ``send`` outside any transaction, and
``record_all`` (a short transaction: each answer recorded, only while the claim is still
ours). ``SendReport`` counts what a run did.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import ledger
from . import subscribers as subscriber_ops
from .compose import compose
from .errors import ProviderError
from .providers.base import ACCEPTED, REJECTED, RETRY, SCHEDULED, UNKNOWN
from .store.base import new_lease

log = logging.getLogger("drip.send")


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
    lost_claims: int = 0
    held: int = 0
    would_send: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    retry_errors: list = field(default_factory=list)
    template_errors: list = field(default_factory=list)
    next_retry: datetime | None = None

    def to_dict(self):
        data = {k: getattr(self, k) for k in ("sent", "failed", "retried", "skipped", "deferred",
                                              "cancelled", "recovered", "undecided", "unconfirmed",
                                              "changes", "held", "lost_claims")}
        data["errors"] = list(self.errors)
        data["retry_errors"] = list(self.retry_errors)
        data["template_errors"] = list(self.template_errors)
        data["next_retry"] = self.next_retry.isoformat() if self.next_retry else None
        if self.would_send:
            data["would_send"] = list(self.would_send)
        return data

    @property
    def trouble(self):
        """Whether the run met a problem the coach should hear about (exit 1): failures, a
        provider that took nothing and asked for retries, emails that cannot be rendered."""
        return bool(self.failed or self.template_errors or (self.retried and not self.sent))


def backoff(attempts, retry_after=None, *, rng=random):
    """Seconds to wait before the next attempt: exponential from one minute, with jitter,
    capped at six hours, and never less than the provider's Retry-After."""
    base = min(60 * 2 ** max(attempts - 1, 0), 6 * 3600)
    delay = base * rng.uniform(0.8, 1.2)
    return max(delay, retry_after or 0)


# How long a delivery whose email cannot be rendered waits before it is tried again.
BROKEN_RETRY = timedelta(minutes=15)


def hold_broken(store, delivery, exc, now, report, *, code=ledger.TEMPLATE_ERROR,
                 what="this email cannot be rendered"):
    error = str(exc)
    ledger.hold(store, delivery, code,
                f"waiting: {what} ({error}); fix the file, it is tried again every "
                f"{int(BROKEN_RETRY.total_seconds() // 60)} minutes",
                due=max(delivery.due_at, now + BROKEN_RETRY))
    report.held += 1
    if error not in report.template_errors:
        report.template_errors.append(error)


def compose_for(drip, delivery, subscriber, campaign, step, at, now):
    """The message for a delivery. ``at`` is when it goes out (later than ``now`` for a
    message handed to the provider to hold). The same inputs give the same message, so a
    recovery can rebuild exactly what an interrupted hand-off sent."""
    message = compose(drip, subscriber, campaign, step, now=at, delivery_id=delivery.id)
    message.attempt = delivery.attempts
    if at > now:
        message.send_at = at
    return message


def mark_handed(drip, messages, by_id, now, pending_campaign, report, renewed_at):
    """The hand-off of ``messages`` begins: in one short transaction, re-read their
    subscribers' status under a lock and mark ``handed_at`` on the rows still wanted, with
    the key of the request each goes in; and renew the claim on every row of the batch
    still being sent. An unsubscribe or pause that committed before this drops the
    message; one that commits after it counts as arriving after this hand-off began."""
    store, provider = drip.store, drip.provider
    lease = by_id[messages[0].delivery_id].lease
    marked = []
    with store.handoff_transaction():
        ledger.renew_claim(store, lease, renewed_at)
        current = store.lock_subscribers(list({by_id[m.delivery_id].subscriber_id
                                               for m in messages}))
        wanted = [m for m in messages
                  if still_wanted(store, by_id[m.delivery_id], current, pending_campaign, report)]
        if not wanted:
            return []
        # Keys over exactly what is sent: a request's key names its members.
        keys = provider.handoff_keys(wanted)
        batch_key = new_lease()
        for message, key in zip(wanted, keys, strict=True):
            delivery = by_id[message.delivery_id]
            if ledger.handed(store, delivery, at=now, key=key or batch_key):
                marked.append(message)
            else:
                report.lost_claims += 1
    return marked


def record_all(drip, messages, results, by_id, now, report, people):
    with drip.store.transaction():
        for message, result in zip(messages, results, strict=True):
            _record(drip, by_id[message.delivery_id], message, result, now, report, people)


def still_wanted(store, delivery, statuses, pending_campaign, report):
    """Whether a claimed delivery may still go, given its subscriber's status right now."""
    wanted = "pending" if delivery.campaign == pending_campaign else "active"
    status = statuses.get(delivery.subscriber_id)
    if status == wanted:
        return True
    if status == "paused":
        ledger.release(store, delivery)
    else:
        ledger.skip(store, delivery, ledger.SUBSCRIBER_CHANGED, f"subscriber is {status or 'gone'}")
        report.skipped += 1
    return False


def release(store, deliveries):
    """Put claimed deliveries back, untouched, when the run stops before sending them."""
    with store.transaction():
        for delivery in deliveries:
            ledger.release(store, delivery)


def _record(drip, delivery, message, result, now, report, people):
    store, settings, provider = drip.store, drip.settings, drip.provider
    attempts = delivery.attempts + 1

    def applied(done):
        # Each write holds only while the claim is still ours: a process that took so long
        # that its claim was taken over (DRIP_CLAIM_TIMEOUT) leaves the row to the one that
        # took it.
        if done:
            return True
        report.lost_claims += 1
        log.warning("delivery %s: the claim was taken over by another run before the result "
                    "(%s) could be recorded; that run settles it", delivery.id, result.outcome)
        return False

    if result.outcome in (ACCEPTED, SCHEDULED):
        sent_at = message.send_at if result.outcome == SCHEDULED and message.send_at else now
        if applied(ledger.sent(store, delivery, at=sent_at, attempts=attempts,
                               provider=provider.name,
                               provider_message_id=result.provider_message_id)):
            report.sent += 1
    elif result.outcome == REJECTED:
        if applied(ledger.failed(store, delivery, ledger.REJECTED, result.error,
                                 attempts=attempts, provider=provider.name)):
            report.failed += 1
            report.errors.append(f"{message.to.addr_spec}: {result.error}")
            if result.suppress:
                subscriber_ops.suppress(drip, people[delivery.subscriber_id], "bounced", now=now,
                                        reason=f"provider rejected the address: {result.error}")
    elif result.outcome == RETRY:
        if attempts >= settings.max_attempts:
            if applied(ledger.failed(store, delivery, ledger.GAVE_UP,
                                     f"gave up after {attempts} attempts: {result.error}",
                                     attempts=attempts, provider=provider.name)):
                report.failed += 1
                report.errors.append(f"{message.to.addr_spec}: {result.error}")
        else:
            due = now + timedelta(seconds=backoff(attempts, result.retry_after))
            if applied(ledger.retry_later(store, delivery, due=due, message=result.error,
                                          attempts=attempts, provider=provider.name)):
                report.retried += 1
                if result.error not in report.retry_errors:
                    report.retry_errors.append(result.error)
                report.next_retry = min(filter(None, (report.next_retry, due)))
    elif result.outcome == UNKNOWN:
        # It may have gone out: leave it in `sending`, marked handed. After
        # DRIP_CLAIM_TIMEOUT a run takes the row over and settles it with the provider.
        # The attempt is counted when it is settled: until then the row keeps the count its
        # request was made with, so a replay rebuilds the very same request (and key).
        if applied(ledger.unconfirmed(store, delivery,
                                      f"hand-off unconfirmed ({result.error}); it will be "
                                      "checked with the provider before any resend",
                                      provider=provider.name)):
            report.unconfirmed += 1
    else:
        raise ProviderError(f"provider {provider.name} gave an unknown outcome "
                            f"{result.outcome!r}")
