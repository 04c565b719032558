"""Cancel emails a provider is holding for later (``drip send --ahead``).

A delivery handed over early is ``sent`` with ``sent_at`` in the future. When
its subscriber unsubscribes, pauses or is suppressed, ``cancel_held`` asks the
provider to cancel each one (Resend per email, SendGrid by batch id) and marks
the cancelled ones ``cancelled``; for a pause (``restore=True``) they go back to
``scheduled`` instead, so ``resume`` moves them later like any other pending email.
Mailgun cannot cancel one message: those are left and logged, which is why its
horizon is kept to an hour.
"""

from __future__ import annotations

import logging

from . import ledger
from .errors import DripError

log = logging.getLogger("drip.held")


def cancel_held(drip, subscriber, now, *, restore=False, code=None):
    """Cancel this subscriber's emails held at the provider; returns how many were cancelled."""
    store = drip.store
    held = [d for d in store.deliveries(subscriber_id=subscriber.id, states=("sent",))
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
            # Its attempt stays counted, so the next hand-off is a new request (a new key),
            # not a replay of the cancelled one; the reason lets a resume move it later.
            store.update_delivery(delivery.id, expect_state="sent", state="scheduled",
                                  sent_at=None, provider_message_id=None,
                                  reason=ledger.HELD_CANCELLED,
                                  last_error=f"held at {provider.name}; cancelled there by a pause")
            cancelled += 1
        elif done:
            store.update_delivery(delivery.id, expect_state="sent", state="cancelled",
                                  sent_at=None, reason=code, last_error=f"cancelled at "
                                  f"{provider.name} before its send time")
            cancelled += 1
        else:
            log.warning("delivery %s (%s/%s) is held at %s for %s and could not be cancelled",
                        delivery.id, delivery.campaign, delivery.step, delivery.provider,
                        delivery.sent_at.isoformat())
    return cancelled
