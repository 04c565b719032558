"""`drip doctor` on SMTP: connect, greet, log in and quit, sending no message. Any refusal
on the way (the login, TLS, a missing extension) is reported as the login to check."""

from __future__ import annotations

from ...doctor_report import FAIL, Check
from ...errors import ProviderError
from ..doctor import Profile, key_ok, refused


def profile(settings, from_domain):
    """Any mail service: mail bounces to the From domain itself, its SPF include is for the
    coach to name (DRIP_SPF_INCLUDE), and the common DKIM selectors are tried."""
    return Profile("smtp", "", ("default", "selector1", "selector2", "google", "k1", "dkim",
                                "mail", "s1", "s2"), bounce_domain=from_domain,
                   selector_hint="set DRIP_DKIM_SELECTORS to the selector your mail service "
                   "gives")


def checks(provider, settings, ctx):
    try:
        error = provider.verify()
    except ProviderError as exc:
        return [refused("smtp", exc, "SMTP_USERNAME and SMTP_PASSWORD")]
    if error:
        return [Check("provider", FAIL, "smtp login", error,
                      "Check SMTP_HOST, SMTP_PORT and SMTP_SECURITY.")]
    return [key_ok("smtp", f"Connected to {provider.host}:{provider.port}, greeted and "
                   + ("logged in" if provider.username else "(no login set)") + "; nothing sent.")]
