"""`drip doctor` asks Resend, read-only: GET /domains, then GET /domains/{id} (the domain's
status and each record's). A sending-only key may not read domains: that is said, not failed."""

from __future__ import annotations

from ...doctor_report import FAIL, SKIP, Check
from ...errors import ProviderError
from ..doctor import Profile, get, key_ok, verdict


def profile(settings, from_domain):
    """Resend bounces through send.<domain> (Amazon SES underneath)."""
    return Profile("resend", "amazonses.com", ("resend",), bounce_domain=f"send.{from_domain}")


def checks(provider, settings, ctx):
    try:
        status, body = get(provider, "/domains")
    except ProviderError as exc:
        if "restricted_api_key" not in (exc.body or ""):
            raise
        return [key_ok("resend", "The API key is a sending-only key (it may not read domains)."),
                Check("provider-domain", SKIP, "What Resend says about the domain",
                      "A sending-only key may not read domains, so Resend's verdict is not "
                      "shown; the DNS checks above cover the records.")]
    if status != 200:
        return [Check("provider", FAIL, "resend key", f"GET /domains answered {status}.",
                      "Check RESEND_API_KEY.")]
    found = [key_ok("resend", "The API key works.")]
    items = [d for d in (body or {}).get("data", []) if isinstance(d, dict)]
    entry = next((d for d in items if d.get("name", "").lower() == ctx.from_domain), None)
    if entry is None:
        return [*found, Check("provider-domain", FAIL, "What Resend says about the domain",
                              f"{ctx.from_domain} is not a domain of this Resend account, so it "
                              "cannot send From it.", f"In Resend: Domains, Add Domain "
                              f"({ctx.from_domain}), then add the records it shows.")]
    status, detail = get(provider, f"/domains/{entry.get('id')}")
    records = (detail or {}).get("records", []) if status == 200 else []
    bad = [f"{r.get('type')} {r.get('name')} -> {r.get('value')}" for r in records
           if isinstance(r, dict) and r.get("record") in ("SPF", "DKIM")
           and r.get("status") != "verified"]
    return [*found, verdict("Resend", ctx.from_domain, entry.get("status") == "verified" and not bad,
                            bad, extra=f" (status: {entry.get('status')})")]
