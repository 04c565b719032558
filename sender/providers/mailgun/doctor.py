"""`drip doctor` asks Mailgun, read-only: GET /v4/domains/{MAILGUN_DOMAIN} (the key works;
the domain's state and each DNS record's verdict)."""

from __future__ import annotations

from ...doctor_report import FAIL, Check
from ..doctor import Profile, get, key_ok, verdict


def profile(settings, from_domain):
    """Mailgun signs for, and bounces through, its sending domain (MAILGUN_DOMAIN)."""
    domain = settings.value("MAILGUN_DOMAIN") or ""
    return Profile("mailgun", "mailgun.org", ("pic", "krs", "mx", "smtp", "k1", "mailo"),
                   dkim_domain=domain, bounce_domain=domain)


def checks(provider, settings, ctx):
    status, body = get(provider, f"/v4/domains/{provider.domain}")
    if status == 404:
        return [Check("provider", FAIL, "mailgun domain",
                      f"Mailgun has no domain {provider.domain} in this account and region.",
                      "Check MAILGUN_DOMAIN, and MAILGUN_API_URL (https://api.eu.mailgun.net for "
                      "the EU region).")]
    if status != 200 or not isinstance(body, dict):
        return [Check("provider", FAIL, "mailgun key", f"GET /v4/domains answered {status}.",
                      "Check MAILGUN_API_KEY and MAILGUN_API_URL.")]
    domain = body.get("domain") or {}
    bad = [f"{r.get('record_type')} {r.get('name')} -> {r.get('value')}"
           for r in body.get("sending_dns_records") or []
           if isinstance(r, dict) and r.get("valid") != "valid"]
    found = [key_ok("mailgun", f"The API key works and reads {provider.domain}.")]
    state = domain.get("state")
    return [*found, verdict("Mailgun", provider.domain, state == "active" and not bad, bad,
                            extra="" if state == "active" else f" (state: {state})")]
