"""`drip doctor` asks SendGrid, read-only: GET /v3/scopes (the key may send), then
GET /v3/whitelabel/domains?domain=... (its verdict on the sending domain)."""

from __future__ import annotations

from ...doctor_report import FAIL, SKIP, Check
from ..doctor import Profile, get, key_ok, verdict


def profile(settings, from_domain):
    """SendGrid picks the Return-Path subdomain (em1234.<domain>) when the domain is set up."""
    return Profile("sendgrid", "sendgrid.net", ("s1", "s2", "m1"))


def checks(provider, settings, ctx):
    status, body = get(provider, "/v3/scopes")
    scopes = (body or {}).get("scopes", []) if status == 200 else []
    if status != 200 or "mail.send" not in scopes:
        return [Check("provider", FAIL, "sendgrid key",
                      "The API key cannot send mail (it lacks the mail.send permission).",
                      "Make a key with Mail Send access and put it in SENDGRID_API_KEY.")]
    found = [key_ok("sendgrid", "The API key works and may send mail.")]
    if "whitelabel.read" not in scopes:
        return [*found, Check("provider-domain", SKIP, "What SendGrid says about the domain",
                              "The key may not read domain authentication (whitelabel.read), "
                              "so SendGrid's verdict on the domain is not shown.")]
    status, body = get(provider, "/v3/whitelabel/domains", domain=ctx.from_domain)
    entries = [d for d in body or [] if isinstance(d, dict)] if status == 200 else []
    if not entries:
        return [*found, Check("provider-domain", FAIL, "What SendGrid says about the domain",
                              f"{ctx.from_domain} is not authenticated at SendGrid, so mail is "
                              "signed for sendgrid.net and cannot align with your From.",
                              "In SendGrid: Settings, Sender Authentication, Authenticate Your "
                              f"Domain ({ctx.from_domain}), then add the records it shows.")]
    entry = entries[0]
    bad = [f"{r.get('type', '').upper()} {r.get('host')} -> {r.get('data')}"
           for r in (entry.get("dns") or {}).values() if isinstance(r, dict) and not r.get("valid")]
    return [*found, verdict("SendGrid", ctx.from_domain, bool(entry.get("valid")) and not bad, bad)]
