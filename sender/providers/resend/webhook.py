"""Resend webhooks, signed by Svix: HMAC-SHA256 of "svix-id.svix-timestamp.body".

The secret is "whsec_" + base64; ``svix-signature`` holds one or more "v1,<base64>"
separated by spaces. A timestamp more than ``MAX_AGE_SECONDS`` from ``now`` is
refused, so a captured request cannot be replayed later, and the ``svix-id`` is
returned to be remembered, so within that window it is accepted once. Our
``delivery_id`` is a tag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from ...events import BOUNCED, CLICKED, COMPLAINED, DELIVERED, OPENED, UNSUBSCRIBED, Event
from ..webhook import Unverified, check_age, header, parse_time

NAME = "resend"
# Its event names -> ours; names not listed are acknowledged and ignored.
EVENTS = {
    "email.delivered": DELIVERED,
    "email.opened": OPENED,
    "email.clicked": CLICKED,
    "email.bounced": BOUNCED,
    "email.complained": COMPLAINED,
    "email.suppressed": BOUNCED,
    "contact.updated": UNSUBSCRIBED,
}


def sign(secret, msg_id, timestamp, body):
    """The "v1,..." signature for a body (used to verify, and by tests)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(settings, headers, body, *, now):
    secret = settings.get("RESEND_WEBHOOK_SECRET") or ""
    if not secret:
        raise Unverified("RESEND_WEBHOOK_SECRET is not set")
    msg_id, timestamp = header(headers, "svix-id"), header(headers, "svix-timestamp")
    signatures = header(headers, "svix-signature")
    if not (msg_id and timestamp and signatures):
        raise Unverified("no Svix headers")
    try:
        expected = sign(secret, msg_id, timestamp, body)
    except (ValueError, binascii.Error):
        raise Unverified("malformed Svix headers or secret") from None
    check_age(timestamp, now)
    if not any(hmac.compare_digest(expected, candidate)
               for candidate in signatures.split() if candidate.startswith("v1,")):
        raise Unverified("bad signature")
    return msg_id


def _tags(data):
    tags = data.get("tags") or {}
    if isinstance(tags, list):
        return {t.get("name"): t.get("value") for t in tags if isinstance(t, dict)}
    return tags


def parse(headers, payload):
    name = payload["type"]
    kind = EVENTS.get(name)
    data = payload.get("data") or {}
    if kind is None:
        return []
    if name == "email.bounced" and (data.get("bounce") or {}).get("type") != "Permanent":
        return []
    if kind == UNSUBSCRIBED and data.get("unsubscribed") is not True:
        return []
    to = [data.get("email")] if name == "contact.updated" else (data.get("to") or [None])
    return [Event(
        provider=NAME, type=kind, occurred_at=parse_time(payload.get("created_at"), None),
        raw=payload, provider_event_id=header(headers, "svix-id") or None,
        delivery_id=_tags(data).get("delivery_id"),
        provider_message_id=data.get("email_id") if name != "contact.updated" else None,
        email=to[0])]
