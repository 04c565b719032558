"""Provider event webhooks: one module per provider, each with ``verify`` and ``parse``.

``verify(settings, headers, body, now=...)`` raises ``Unverified`` unless the request
provably comes from the provider (Postmark: HTTP basic auth; SendGrid: ECDSA P-256;
Mailgun: HMAC-SHA256; Resend: Svix HMAC-SHA256) and, where the provider signs a
timestamp, was signed within ``common.MAX_AGE_SECONDS``. It returns the request's
one-time token (Mailgun's ``token``, Resend's ``svix-id``) or None; ``receive``
remembers it in the store, so the same signed request is accepted once.
``parse(headers, body)`` turns a verified body into ``sender.events.Event`` objects;
event names the vocabulary does not know are dropped there, never guessed.
"""

from __future__ import annotations

import json

from . import mailgun, postmark, resend, sendgrid
from .common import BadPayload, Unverified, remember

PROVIDERS = {"postmark": postmark, "sendgrid": sendgrid, "mailgun": mailgun, "resend": resend}

__all__ = ["PROVIDERS", "BadPayload", "Unverified", "receive"]


def receive(settings, provider, headers, body, *, now, store):
    """Verify and parse one webhook request; returns (events, token). A one-time token is
    recorded in ``store`` once the request is verified and readable, and a request whose
    token was recorded before raises ``Unverified``; the caller forgets the token
    (``store.forget_token``) when it could not apply the events, so the provider's retry
    of the same request is accepted."""
    module = PROVIDERS[provider]
    token = module.verify(settings, headers, body, now=now)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadPayload("the body is not JSON") from None
    try:
        events = module.parse(headers, payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadPayload(f"unexpected {provider} payload: {exc}") from None
    if token is not None:
        remember(store, provider, token, now=now)
    return events, token
