"""Provider event webhooks: one module per provider, each with ``verify`` and ``parse``.

``verify(settings, headers, body, now=...)`` raises ``Unverified`` unless the request
provably comes from the provider (Postmark: HTTP basic auth; SendGrid: ECDSA P-256;
Mailgun: HMAC-SHA256; Resend: Svix HMAC-SHA256). ``parse(headers, body)`` turns a
verified body into ``sender.events.Event`` objects; event names the vocabulary does
not know are dropped there, never guessed.
"""

from __future__ import annotations

import json

from . import mailgun, postmark, resend, sendgrid
from .common import BadPayload, Unverified

PROVIDERS = {"postmark": postmark, "sendgrid": sendgrid, "mailgun": mailgun, "resend": resend}

__all__ = ["PROVIDERS", "BadPayload", "Unverified", "receive"]


def receive(settings, provider, headers, body, *, now):
    """Verify and parse one webhook request; returns the events in it."""
    module = PROVIDERS[provider]
    module.verify(settings, headers, body, now=now)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadPayload("the body is not JSON") from None
    try:
        return module.parse(headers, payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadPayload(f"unexpected {provider} payload: {exc}") from None
