"""Mailgun webhooks: HMAC-SHA256 of timestamp + token with the webhook signing key.

One JSON object per request: ``signature`` {timestamp, token, signature} and
``event-data``; our ``v:delivery_id`` comes back in ``user-variables``.

Mailgun signs only the timestamp and the token, not the event data, so a captured
signature would otherwise pass with any event in it: the timestamp must be within
``MAX_AGE_SECONDS`` of our clock, and the token is returned to be remembered, so it is
accepted once.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from ...events import BOUNCED, CLICKED, COMPLAINED, DELIVERED, OPENED, UNSUBSCRIBED, Event
from ..webhook import Unverified, check_age, parse_time

NAME = "mailgun"
# Its event names -> ours; names not listed are acknowledged and ignored.
EVENTS = {
    "delivered": DELIVERED,
    "opened": OPENED,
    "clicked": CLICKED,
    "failed": BOUNCED,
    "complained": COMPLAINED,
    "unsubscribed": UNSUBSCRIBED,
}


def verify(settings, headers, body, *, now):
    key = settings.get("MAILGUN_WEBHOOK_SIGNING_KEY") or ""
    if not key:
        raise Unverified("MAILGUN_WEBHOOK_SIGNING_KEY is not set")
    try:
        signed = json.loads(body)["signature"]
        timestamp, token = str(signed["timestamp"]), str(signed["token"])
        given = str(signed["signature"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise Unverified("no signature in the body") from None
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise Unverified("bad signature")
    check_age(timestamp, now)
    return token


def parse(headers, payload):
    data = payload["event-data"]
    kind = EVENTS.get(data.get("event"))
    if kind is None:
        return []
    if kind == BOUNCED and data.get("severity") != "permanent":
        return []
    message_id = ((data.get("message") or {}).get("headers") or {}).get("message-id")
    return [Event(
        provider=NAME, type=kind, occurred_at=parse_time(data["timestamp"], None), raw=payload,
        provider_event_id=data.get("id"),
        delivery_id=(data.get("user-variables") or {}).get("delivery_id"),
        provider_message_id=message_id.strip("<>") if message_id else None,
        email=data.get("recipient"))]
