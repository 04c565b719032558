"""Sending ahead (``drip send --ahead 48h``): handing mail early to a provider that holds it
until its due time, and cancelling what the provider still holds.

Deliveries due within the horizon are handed now to a provider that can hold them
(SendGrid ``send_at``, Mailgun ``o:deliverytime``, Resend ``scheduled_at``), with their
exact due time, so mail goes out on time while the machine running drip sleeps. The
horizon is capped by the provider's ``max_schedule_ahead``; a provider that cannot hold
mail is an error, never silently ignored. The ledger row becomes ``sent`` with ``sent_at``
= the due time.

When its subscriber unsubscribes, pauses or is suppressed, ``cancel_held`` asks the
provider to cancel each held email (Resend per email, SendGrid by batch id) and records
the cancelled ones ``cancelled``; for a pause (``restore=True``) they go back to
``scheduled`` instead (reason ``held_cancelled``), so ``resume`` moves them later like any
other pending email. Mailgun cannot cancel one message: those are left and logged, which
is why its horizon is kept to an hour.
"""

from __future__ import annotations

import logging

from . import ledger
from .errors import DripError

log = logging.getLogger("drip.held")


def horizon(provider, ahead):
    """How far ahead to hand mail to ``provider``: ``ahead`` capped by its limit."""
    if provider.max_schedule_ahead is None:
        raise DripError(f"{provider.name} cannot hold messages for later; run drip send from "
                        "cron or drip worker instead")
    return min(ahead, provider.max_schedule_ahead)


def held(store, now, **where):
    """Deliveries (``store.deliveries`` filters) handed ahead and still held at the provider:
    recorded sent, with a send time still to come."""
    return [d for d in store.deliveries(states=(ledger.SENT,), **where)
            if d.sent_at and d.sent_at > now]


def cancelled_at_provider(drip, deliveries):
    """Ask the provider to cancel each held delivery; yields those it cancelled and logs the
    others (another provider's, one that cannot cancel a single message, an error)."""
    provider = drip.provider
    for delivery in deliveries:
        try:
            done = delivery.provider == provider.name and provider.cancel_scheduled(delivery)
        except DripError as exc:
            log.warning("could not cancel held delivery %s: %s", delivery.id, exc)
            done = False
        if done:
            yield delivery
        else:
            log.warning("delivery %s (%s/%s) is held at %s for %s and could not be cancelled",
                        delivery.id, delivery.campaign, delivery.step, delivery.provider,
                        delivery.sent_at.isoformat())


def cancel_held(drip, subscriber, now, *, restore=False, code=None):
    """Cancel this subscriber's emails held at the provider; returns how many were cancelled.
    ``code`` is the reason recorded on those cancelled for good (ledger.UNSUBSCRIBED,
    ledger.SUPPRESSED)."""
    store = drip.store
    waiting = held(store, now, subscriber_id=subscriber.id)
    if not waiting:
        return 0
    name = drip.provider.name
    cancelled = 0
    for delivery in cancelled_at_provider(drip, waiting):
        if restore:
            ledger.held_rescheduled(store, delivery,
                                    f"held at {name}; cancelled there by a pause")
        else:
            ledger.held_cancelled(store, delivery, code,
                                  f"cancelled at {name} before its send time")
        cancelled += 1
    return cancelled
