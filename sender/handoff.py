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
    """Hold a delivery whose email cannot be built; ``store`` may be a ``ledger.Batch``
    (the caller counts it as held once written)."""
    error = str(exc)
    ledger.hold(store, delivery, code,
                f"waiting: {what} ({error}); fix the file, it is tried again every "
                f"{int(BROKEN_RETRY.total_seconds() // 60)} minutes",
                due=max(delivery.due_at, now + BROKEN_RETRY))
    if error not in report.template_errors:
        report.template_errors.append(error)


def write_counted(batch, counted, report):
    """Write ``batch`` (a ``ledger.Batch``) and count each row written: ``counted`` maps a
    delivery id to the report's counter it adds to (None: none) and an error to report with
    it (or None). A row whose guard failed counts as a lost claim instead. Returns the ids
    of those."""
    lost = set(batch.write())
    for delivery_id, (counter, error) in counted.items():
        if delivery_id in lost:
            report.lost_claims += 1
            continue
        if counter:
            setattr(report, counter, getattr(report, counter) + 1)
        if error:
            report.errors.append(error)
    return lost


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
    message; one that commits after it counts as arriving after this hand-off began.
    (A claim younger than a tenth of DRIP_CLAIM_TIMEOUT is not renewed: the provider's
    answer, at most half the timeout away, still comes well before it could look stale.)
    The marks (and the skips and releases of rows no longer wanted) are one
    ``ledger.Batch``: a statement for each kind, whatever the number of messages."""
    store, provider = drip.store, drip.provider
    claimed = by_id[messages[0].delivery_id]
    batch, counted = ledger.Batch(store), {}
    with store.handoff_transaction():
        # A claim made moments ago (under a tenth of DRIP_CLAIM_TIMEOUT) has nearly all its
        # time ahead of it: renewing it would only write every row of the batch once more.
        if renewed_at - claimed.claimed_at >= drip.settings.claim_timeout / 10:
            ledger.renew_claim(store, claimed.lease, renewed_at)
        current = store.lock_subscribers(list({by_id[m.delivery_id].subscriber_id
                                               for m in messages}))
        wanted = [m for m in messages
                  if still_wanted(batch, by_id[m.delivery_id], current, pending_campaign, counted)]
        # Keys over exactly what is sent: a request's key names its members.
        keys = provider.handoff_keys(wanted) if wanted else []
        batch_key = new_lease()
        for message, key in zip(wanted, keys, strict=True):
            ledger.handed(batch, by_id[message.delivery_id], at=now, key=key or batch_key)
            counted[message.delivery_id] = (None, None)
        lost = write_counted(batch, counted, report)
    return [m for m in wanted if m.delivery_id not in lost]


def record_all(drip, messages, results, by_id, now, report, people):
    """Record the provider's answers in one short transaction: every answer of the chunk
    in one ``ledger.Batch`` (a statement for each kind of answer), each row only while its
    claim is still ours; then what follows from a written answer (a suppressed address).
    Each row is guarded on its own, so the transaction takes the store's write lock only
    when an address is to be suppressed (on PostgreSQL, workers then record at once)."""
    store = drip.store
    batch, counted, after = ledger.Batch(store), {}, {}
    suppressing = any(r.outcome == REJECTED and r.suppress for r in results)
    with store.transaction() if suppressing else store.handoff_transaction():
        for message, result in zip(messages, results, strict=True):
            delivery = by_id[message.delivery_id]
            counted[delivery.id], after[delivery.id] = _record(
                drip, batch, delivery, message, result, now, report)
        lost = write_counted(batch, counted, report)
        for (delivery_id, then), result in zip(after.items(), results, strict=True):
            if delivery_id in lost:
                log.warning("delivery %s: the claim was taken over by another run before the "
                            "result (%s) could be recorded; that run settles it", delivery_id,
                            result.outcome)
            elif then:
                then(people)


def still_wanted(batch, delivery, statuses, pending_campaign, counted):
    """Whether a claimed delivery may still go, given its subscriber's status right now. One
    that may not goes back to the schedule (her pause) or is skipped, in ``batch``; its
    counter goes in ``counted`` (see ``write_counted``)."""
    wanted = "pending" if delivery.campaign == pending_campaign else "active"
    status = statuses.get(delivery.subscriber_id)
    if status == wanted:
        return True
    if status == "paused":
        ledger.release(batch, delivery)
        counted[delivery.id] = (None, None)
    else:
        ledger.skip(batch, delivery, ledger.SUBSCRIBER_CHANGED, f"subscriber is {status or 'gone'}")
        counted[delivery.id] = ("skipped", None)
    return False


def release(store, deliveries):
    """Put claimed deliveries back, untouched, when the run stops before sending them (one
    statement); returns the ids whose claim was no longer ours."""
    batch = ledger.Batch(store)
    for delivery in deliveries:
        ledger.release(batch, delivery)
    return batch.write()


def _record(drip, batch, delivery, message, result, now, report):
    """The answer for one delivery, gathered in ``batch``: returns the report's counter it
    adds to once written (with an error to report, or None), and what follows once it is
    written (a function of ``people``), or None. Each write holds only while the claim is
    still ours: a process that took so long that its claim was taken over
    (DRIP_CLAIM_TIMEOUT) leaves the row to the one that took it."""
    settings, provider = drip.settings, drip.provider
    attempts = delivery.attempts + 1
    if result.outcome in (ACCEPTED, SCHEDULED):
        sent_at = message.send_at if result.outcome == SCHEDULED and message.send_at else now
        ledger.sent(batch, delivery, at=sent_at, attempts=attempts, provider=provider.name,
                    provider_message_id=result.provider_message_id)
        return ("sent", None), None
    if result.outcome == REJECTED:
        ledger.failed(batch, delivery, ledger.REJECTED, result.error, attempts=attempts,
                      provider=provider.name)
        then = None
        if result.suppress:
            def then(people):
                subscriber_ops.suppress(drip, people[delivery.subscriber_id], "bounced", now=now,
                                        reason=f"provider rejected the address: {result.error}")
        return ("failed", f"{message.to.addr_spec}: {result.error}"), then
    if result.outcome == RETRY:
        if attempts >= settings.max_attempts:
            ledger.failed(batch, delivery, ledger.GAVE_UP,
                          f"gave up after {attempts} attempts: {result.error}",
                          attempts=attempts, provider=provider.name)
            return ("failed", f"{message.to.addr_spec}: {result.error}"), None
        due = now + timedelta(seconds=backoff(attempts, result.retry_after))
        ledger.retry_later(batch, delivery, due=due, message=result.error, attempts=attempts,
                           provider=provider.name)

        def then(people):
            if result.error not in report.retry_errors:
                report.retry_errors.append(result.error)
            report.next_retry = min(filter(None, (report.next_retry, due)))
        return ("retried", None), then
    if result.outcome == UNKNOWN:
        # It may have gone out: leave it in `sending`, marked handed. After
        # DRIP_CLAIM_TIMEOUT a run takes the row over and settles it with the provider.
        # The attempt is counted when it is settled: until then the row keeps the count its
        # request was made with, so a replay rebuilds the very same request (and key).
        ledger.unconfirmed(batch, delivery,
                           f"hand-off unconfirmed ({result.error}); it will be "
                           "checked with the provider before any resend",
                           provider=provider.name)
        return ("unconfirmed", None), None
    raise ProviderError(f"provider {provider.name} gave an unknown outcome {result.outcome!r}")
