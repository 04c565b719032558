"""Postmark webhooks: HTTP basic auth in the webhook URL (Postmark signs nothing).

One JSON object per request, with ``RecordType`` Delivery, Open, Click, Bounce,
SpamComplaint or SubscriptionChange; our ``delivery_id`` comes back in ``Metadata``.

Postmark signs no timestamp and sends no one-time token, so the age and replay checks
of the other providers have nothing to check here: the password, kept secret by HTTPS,
is the whole proof (a captured request carries it, so whoever could replay one could
forge one; keep it long and random). A request Postmark sends twice is recorded once,
by each event's ``ID``.
"""

from __future__ import annotations

import base64
import hmac

from ...events import BOUNCED, CLICKED, COMPLAINED, DELIVERED, OPENED, UNSUBSCRIBED, Event
from ..webhook import Unverified, header, parse_time

NAME = "postmark"
# Its event names -> ours; names not listed are acknowledged and ignored.
EVENTS = {
    "Delivery": DELIVERED,
    "Open": OPENED,
    "Click": CLICKED,
    "Bounce": BOUNCED,
    "SpamComplaint": COMPLAINED,
    "SubscriptionChange": UNSUBSCRIBED,
}
# Bounce types that mean the address is bad for good (Postmark's bounce type list).
HARD_BOUNCES = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Blocked",
                "AddressChange", "DMARCPolicy"}


def verify(settings, headers, body, *, now):
    user = settings.get("POSTMARK_WEBHOOK_USER") or ""
    password = settings.get("POSTMARK_WEBHOOK_PASSWORD") or ""
    if not user or not password:
        raise Unverified("POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD are not set")
    scheme, _, encoded = header(headers, "Authorization").partition(" ")
    if scheme.lower() != "basic":
        raise Unverified("no basic auth")
    try:
        given_user, _, given_password = base64.b64decode(encoded, validate=True).decode(
            "utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise Unverified("malformed basic auth") from None
    ok_user = hmac.compare_digest(given_user.encode(), user.encode())
    ok_password = hmac.compare_digest(given_password.encode(), password.encode())
    if not (ok_user and ok_password):
        raise Unverified("wrong basic auth credentials")
    return None


def parse(headers, payload):
    records = payload if isinstance(payload, list) else [payload]
    events = []
    for record in records:
        kind = EVENTS.get(record.get("RecordType"))
        if kind is None:
            continue
        if kind == BOUNCED and record.get("Type") not in HARD_BOUNCES:
            continue
        if kind == UNSUBSCRIBED and not record.get("SuppressSending"):
            continue
        if kind == UNSUBSCRIBED and record.get("SuppressionReason") == "HardBounce":
            kind = BOUNCED
        elif kind == UNSUBSCRIBED and record.get("SuppressionReason") == "SpamComplaint":
            kind = COMPLAINED
        when = (record.get("DeliveredAt") or record.get("ReceivedAt") or record.get("BouncedAt")
                or record.get("ChangedAt"))
        message_id = record.get("MessageID") or ""
        event_id = record.get("ID")
        if event_id is None:
            event_id = f"{record.get('RecordType')}:{message_id}:{when}"
        events.append(Event(
            provider=NAME, type=kind, occurred_at=parse_time(when, None), raw=record,
            provider_event_id=str(event_id),
            delivery_id=(record.get("Metadata") or {}).get("delivery_id"),
            provider_message_id=message_id or None,
            email=record.get("Email") or record.get("Recipient")))
    return events
