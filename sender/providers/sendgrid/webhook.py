"""SendGrid's event webhook: an ECDSA P-256 (SHA-256) signature over timestamp + body.

The verification key is the base64 DER public key SendGrid shows when signature
verification is on; the signature header holds a base64 DER signature. The signed
timestamp must be within ``MAX_AGE_SECONDS`` of our clock, so a captured batch cannot
be sent again later; within that window a repeated batch is absorbed by each event's
unique ``sg_event_id``. The body is a JSON array of events; our ``custom_args``
(``delivery_id``) appear at the top level of each event.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ...events import BOUNCED, CLICKED, COMPLAINED, DELIVERED, OPENED, UNSUBSCRIBED, Event
from ..webhook import Unverified, check_age, header, parse_time

NAME = "sendgrid"
# Its event names -> ours; names not listed are acknowledged and ignored.
EVENTS = {
    "delivered": DELIVERED,
    "open": OPENED,
    "click": CLICKED,
    "bounce": BOUNCED,
    "dropped": BOUNCED,
    "spamreport": COMPLAINED,
    "unsubscribe": UNSUBSCRIBED,
    "group_unsubscribe": UNSUBSCRIBED,
}
DROP_REASONS = (("Bounced Address", BOUNCED), ("Invalid", BOUNCED),
                ("Spam Reporting Address", COMPLAINED), ("Unsubscribed Address", UNSUBSCRIBED))
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def load_key(text):
    """The public key from the setting: base64 DER, or a PEM block."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return serialization.load_pem_public_key(text.encode())
    return serialization.load_der_public_key(base64.b64decode(text))


def verify(settings, headers, body, *, now):
    key_text = settings.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or ""
    if not key_text:
        raise Unverified("SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    signature, timestamp = header(headers, SIGNATURE), header(headers, TIMESTAMP)
    if not signature or not timestamp:
        raise Unverified("no signature headers")
    try:
        key = load_key(key_text)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise Unverified("SENDGRID_WEBHOOK_PUBLIC_KEY is not an EC public key")
        key.verify(base64.b64decode(signature), timestamp.encode() + body,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unverified("bad signature") from None
    check_age(timestamp, now)
    return None


def _message_id(sg_message_id):
    # sg_message_id is the X-Message-Id of the send answer plus ".filter..." parts.
    return sg_message_id.split(".", 1)[0] if sg_message_id else None


def parse(headers, payload):
    if not isinstance(payload, list):
        raise ValueError("SendGrid sends a JSON array of events")
    events = []
    for item in payload:
        kind = EVENTS.get(item.get("event"))
        if kind is None:
            continue
        if kind == BOUNCED and item.get("event") == "bounce" and item.get("type") == "blocked":
            continue  # a block is temporary: the address itself is fine
        if item.get("event") == "dropped":
            # A drop names why SendGrid would not send: only some reasons are about the address.
            reason = str(item.get("reason", ""))
            kind = next((k for text, k in DROP_REASONS if text in reason), None)
            if kind is None:
                continue
        events.append(Event(
            provider=NAME, type=kind, occurred_at=parse_time(item["timestamp"], None), raw=item,
            provider_event_id=item.get("sg_event_id"), delivery_id=item.get("delivery_id"),
            provider_message_id=_message_id(item.get("sg_message_id")), email=item.get("email")))
    return events
