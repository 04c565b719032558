"""Native scheduling: ``drip send --ahead 48h``.

Deliveries due within the horizon are handed now to a provider that can hold
them (SendGrid ``send_at``, Mailgun ``o:deliverytime``, Resend
``scheduled_at``), with their exact due time, so mail goes out on time while
the machine running drip sleeps. The horizon is capped by the provider's
``max_schedule_ahead``. The ledger row becomes ``sent`` with ``sent_at`` = the
due time; an unsubscribe or pause cancels what the provider still holds
(``held.cancel_held``). A provider that cannot hold mail is an error, never
silently ignored.
"""

from __future__ import annotations

from .errors import DripError


def horizon(provider, ahead):
    """How far ahead to hand mail to ``provider``: ``ahead`` capped by its limit."""
    if provider.max_schedule_ahead is None:
        raise DripError(f"{provider.name} cannot hold messages for later; run drip send from "
                        "cron or drip worker instead")
    return min(ahead, provider.max_schedule_ahead)
