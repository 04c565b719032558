"""Cross-site request forgery: every dashboard form carries a token, and a POST without the
right one changes nothing.

Signed in, the token is the session's own (kept in the store beside it). The login form
comes before any session, so it carries a random token that is also set in a short-lived
cookie, and the two must match (a double-submitted cookie). The session cookie is
SameSite=Strict besides, and a POST whose Origin header names another site is refused.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

FIELD = "csrf"
LOGIN_COOKIE = "drip_admin_login"


def new_token():
    return secrets.token_urlsafe(32)


def matches(expected, given):
    """Whether ``given`` is the token ``expected`` (compared in constant time)."""
    if not expected or not given or len(given) > 128:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def same_origin(request, base_url):
    """False when the request names an Origin that is not this server (a cross-site form
    post); True when it is this server (the host it was sent to, or DRIP_BASE_URL's, which
    is what a browser says behind a proxy) or when no Origin is sent (the token decides)."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    seen, base = urlsplit(origin), urlsplit(base_url)
    if not seen.netloc:
        return False
    if seen.netloc == base.netloc:                 # DRIP_BASE_URL's origin: scheme and all
        return seen.scheme == base.scheme
    return seen.netloc == request.host and seen.scheme == request.scheme
