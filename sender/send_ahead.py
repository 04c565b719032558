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


def cancel_held(drip, subscriber, now, *, restore=False, code=None):
    """Cancel this subscriber's emails held at the provider; returns how many were cancelled.
    ``code`` is the reason recorded on those cancelled for good (ledger.UNSUBSCRIBED,
    ledger.SUPPRESSED)."""
    store = drip.store
    held = [d for d in store.deliveries(subscriber_id=subscriber.id, states=(ledger.SENT,))
            if d.sent_at and d.sent_at > now]
    if not held:
        return 0
    provider = drip.provider
    cancelled = 0
    for delivery in held:
        try:
            done = delivery.provider == provider.name and provider.cancel_scheduled(delivery)
        except DripError as exc:
            log.warning("could not cancel held delivery %s: %s", delivery.id, exc)
            done = False
        if done and restore:
            ledger.held_rescheduled(store, delivery,
                                    f"held at {provider.name}; cancelled there by a pause")
            cancelled += 1
        elif done:
            ledger.held_cancelled(store, delivery, code,
                                  f"cancelled at {provider.name} before its send time")
            cancelled += 1
        else:
            log.warning("delivery %s (%s/%s) is held at %s for %s and could not be cancelled",
                        delivery.id, delivery.campaign, delivery.step, delivery.provider,
                        delivery.sent_at.isoformat())
    return cancelled
