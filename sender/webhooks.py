"""Provider event webhooks: the one entry the web app calls, for every provider.

Each provider's own ``webhook.py`` (in its folder under ``sender/providers/``) has
``verify`` and ``parse``. ``verify(settings, headers, body, now=...)`` raises ``Unverified``
unless the request provably comes from the provider (Postmark: HTTP basic auth; SendGrid:
ECDSA P-256; Mailgun: HMAC-SHA256; Resend: Svix HMAC-SHA256) and, where the provider signs a
timestamp, was signed within ``MAX_AGE_SECONDS``. It returns the request's one-time token
(Mailgun's ``token``, Resend's ``svix-id``) or None; ``receive`` remembers it in the store,
so the same signed request is accepted once. ``parse(headers, body)`` turns a verified body
into ``sender.events.Event`` objects; event names the vocabulary does not know are dropped
there, never guessed.
"""

from __future__ import annotations

import json
import math

from .providers import registry
from .providers.webhook import BadPayload, Unverified, remember

# The providers that post events to /events/<provider>.
PROVIDERS = registry.with_part("webhook")

__all__ = ["PROVIDERS", "BadPayload", "Unverified", "receive"]


def receive(settings, provider, headers, body, *, now, store):
    """Verify and parse one webhook request; returns (events, token). A one-time token is
    recorded in ``store`` once the request is verified and readable, and a request whose
    token was recorded before raises ``Unverified``; the caller forgets the token
    (``store.forget_token``) when it could not apply the events, so the provider's retry
    of the same request is accepted."""
    module = registry.part(provider, "webhook")
    token = module.verify(settings, headers, body, now=now)
    try:
        payload = json.loads(body, parse_float=_finite, parse_constant=_not_a_number)
    except _OutOfRange as exc:
        raise BadPayload(str(exc)) from None
    except (UnicodeDecodeError, ValueError):
        raise BadPayload("the body is not JSON") from None
    try:
        events = module.parse(headers, payload)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise BadPayload(f"unexpected {provider} payload: {exc}") from None
    if token is not None:
        remember(store, provider, token, now=now)
    return events, token


class _OutOfRange(ValueError):
    pass


def _finite(text):
    """A JSON number as a float; one no float holds (1e400 reads as infinity) is no
    provider's, and could not be stored as JSON either."""
    number = float(text)
    if not math.isfinite(number):
        raise _OutOfRange(f"the body holds a number out of range ({text[:20]})")
    return number


def _not_a_number(text):
    raise _OutOfRange(f"the body holds {text}, which is not JSON")
