"""The doctor asks the provider, with read-only calls, whether the key works and what it
thinks of the sending domain.

    Postmark  GET /server; GET /message-streams (both streams there, of the right kind).
              A domain's DKIM and Return-Path status needs the account token, which drip
              does not hold: DNS is checked instead.
    SendGrid  GET /v3/scopes (the key may send); GET /v3/whitelabel/domains?domain=...
    Mailgun   GET /v4/domains/{MAILGUN_DOMAIN} (state and each DNS record's verdict)
    Resend    GET /domains, then GET /domains/{id} (status and each record's)
    SMTP      connect, greet, log in, quit: no message
"""

from __future__ import annotations

from .doctor_report import FAIL, OK, SKIP, WARN, Check
from .errors import ConfigError, ProviderError

STREAM_KINDS = {"POSTMARK_MESSAGE_STREAM": "Broadcasts",
                "POSTMARK_TRANSACTIONAL_STREAM": "Transactional"}


def provider_checks(settings, ctx):
    from .providers import get_provider

    name = ctx.provider
    try:
        provider = get_provider(settings)
    except (ConfigError, ProviderError) as exc:
        return [Check("provider", FAIL, f"{name} key", str(exc), "Set it in .env.")]
    try:
        if name == "smtp":
            return _smtp(provider)
        return CHECKS[name](provider, settings, ctx)
    except ProviderError as exc:
        setting = getattr(provider, "key_setting", "") or "SMTP_USERNAME and SMTP_PASSWORD"
        if exc.status in (401, 403) or name == "smtp":
            return [Check("provider", FAIL, f"{name} key", f"{name} refused the key: {exc}.",
                          f"Copy the key again from {name} into .env ({setting}).")]
        # No answer, or an answer that is not about the key: say so, not "the key".
        url = getattr(getattr(provider, "http", None), "base_url", "")
        return [Check("provider", FAIL, f"{name} reachable",
                      f"{name} could not be asked at {url or 'its API'}: {exc}.",
                      f"Check the network and {name.upper()}_API_URL; try again later if "
                      f"{name} is having trouble.")]
    finally:
        provider.close()


def _get(provider, path, **params):
    """(status, body) of one read-only request, retried as usual."""
    answer = provider.http.request("GET", path, params=params or None)
    if answer.status is None:
        raise ProviderError(f"{provider.name} did not answer: {answer.describe()}")
    return answer.status, answer.body


def _key_ok(name, detail):
    return Check("provider", OK, f"{name} key", detail)


def _postmark(provider, settings, ctx):
    status, body = _get(provider, "/server")
    if status != 200:
        return [Check("provider", FAIL, "postmark key", f"GET /server answered {status}.",
                      "Check POSTMARK_SERVER_TOKEN and POSTMARK_API_URL.")]
    checks = [_key_ok("postmark", f"The server token works (server {body.get('Name', '?')!r}).")]
    status, body = _get(provider, "/message-streams", MessageStreamType="All",
                        IncludeArchivedStreams="false")
    streams = {s.get("ID"): s for s in (body or {}).get("MessageStreams", []) if isinstance(s, dict)}
    missing = []
    for setting, kind in STREAM_KINDS.items():
        wanted = settings.get(setting)
        found = streams.get(wanted)
        if found is None:
            missing.append(f"{setting}={wanted} is not a stream of this server (it has "
                           f"{', '.join(sorted(streams)) or 'none'}); create a {kind} stream "
                           f"with the ID {wanted} in Postmark, or set {setting} to yours")
        elif found.get("MessageStreamType") != kind:
            missing.append(f"{wanted} is a {found.get('MessageStreamType')} stream; "
                           f"{setting} needs a {kind} one")
    if missing:
        checks.append(Check("provider-streams", FAIL, "Postmark message streams",
                            "Campaign mail and the confirmation and welcome emails go on separate "
                            "streams, and: " + "; ".join(missing) + ".",
                            "Fix the streams in Postmark (Servers, Message Streams) or the "
                            "settings named above."))
    else:
        checks.append(Check("provider-streams", OK, "Postmark message streams",
                            f"Campaigns go on {settings.get('POSTMARK_MESSAGE_STREAM')} (Broadcasts), "
                            f"confirmation and welcome on "
                            f"{settings.get('POSTMARK_TRANSACTIONAL_STREAM')} (Transactional)."))
    checks.append(Check("provider-domain", SKIP, "What Postmark says about the domain",
                        "Postmark shows a domain's DKIM and Return-Path status only with the "
                        "account token, which drip does not keep; the DNS checks above cover them."))
    return checks


def _sendgrid(provider, settings, ctx):
    status, body = _get(provider, "/v3/scopes")
    scopes = (body or {}).get("scopes", []) if status == 200 else []
    if status != 200 or "mail.send" not in scopes:
        return [Check("provider", FAIL, "sendgrid key",
                      "The API key cannot send mail (it lacks the mail.send permission).",
                      "Make a key with Mail Send access and put it in SENDGRID_API_KEY.")]
    checks = [_key_ok("sendgrid", "The API key works and may send mail.")]
    if "whitelabel.read" not in scopes:
        return [*checks, Check("provider-domain", SKIP, "What SendGrid says about the domain",
                               "The key may not read domain authentication (whitelabel.read), "
                               "so SendGrid's verdict on the domain is not shown.")]
    status, body = _get(provider, "/v3/whitelabel/domains", domain=ctx.from_domain)
    entries = [d for d in body or [] if isinstance(d, dict)] if status == 200 else []
    if not entries:
        return [*checks, Check("provider-domain", FAIL, "What SendGrid says about the domain",
                               f"{ctx.from_domain} is not authenticated at SendGrid, so mail is "
                               "signed for sendgrid.net and cannot align with your From.",
                               "In SendGrid: Settings, Sender Authentication, Authenticate Your "
                               f"Domain ({ctx.from_domain}), then add the records it shows.")]
    entry = entries[0]
    bad = [f"{r.get('type', '').upper()} {r.get('host')} -> {r.get('data')}"
           for r in (entry.get("dns") or {}).values() if isinstance(r, dict) and not r.get("valid")]
    return [*checks, _verdict("SendGrid", ctx.from_domain, bool(entry.get("valid")) and not bad, bad)]


def _mailgun(provider, settings, ctx):
    status, body = _get(provider, f"/v4/domains/{provider.domain}")
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
    checks = [_key_ok("mailgun", f"The API key works and reads {provider.domain}.")]
    state = domain.get("state")
    return [*checks, _verdict("Mailgun", provider.domain, state == "active" and not bad, bad,
                              extra="" if state == "active" else f" (state: {state})")]


def _resend(provider, settings, ctx):
    try:
        status, body = _get(provider, "/domains")
    except ProviderError as exc:
        if "restricted_api_key" not in (exc.body or ""):
            raise
        return [_key_ok("resend", "The API key is a sending-only key (it may not read domains)."),
                Check("provider-domain", SKIP, "What Resend says about the domain",
                      "A sending-only key may not read domains, so Resend's verdict is not "
                      "shown; the DNS checks above cover the records.")]
    if status != 200:
        return [Check("provider", FAIL, "resend key", f"GET /domains answered {status}.",
                      "Check RESEND_API_KEY.")]
    checks = [_key_ok("resend", "The API key works.")]
    items = [d for d in (body or {}).get("data", []) if isinstance(d, dict)]
    entry = next((d for d in items if d.get("name", "").lower() == ctx.from_domain), None)
    if entry is None:
        return [*checks, Check("provider-domain", FAIL, "What Resend says about the domain",
                               f"{ctx.from_domain} is not a domain of this Resend account, so it "
                               "cannot send From it.", f"In Resend: Domains, Add Domain "
                               f"({ctx.from_domain}), then add the records it shows.")]
    status, detail = _get(provider, f"/domains/{entry.get('id')}")
    records = (detail or {}).get("records", []) if status == 200 else []
    bad = [f"{r.get('type')} {r.get('name')} -> {r.get('value')}" for r in records
           if isinstance(r, dict) and r.get("record") in ("SPF", "DKIM")
           and r.get("status") != "verified"]
    return [*checks, _verdict("Resend", ctx.from_domain, entry.get("status") == "verified" and not bad,
                              bad, extra=f" (status: {entry.get('status')})")]


def _smtp(provider):
    error = provider.verify()
    if error:
        return [Check("provider", FAIL, "smtp login", error,
                      "Check SMTP_HOST, SMTP_PORT and SMTP_SECURITY.")]
    return [_key_ok("smtp", f"Connected to {provider.host}:{provider.port}, greeted and "
                    + ("logged in" if provider.username else "(no login set)") + "; nothing sent.")]


def _verdict(name, domain, good, bad, extra=""):
    title = f"What {name} says about {domain}"
    if good:
        return Check("provider-domain", OK, title, f"{name} has verified {domain}.")
    if bad:
        return Check("provider-domain", FAIL, title,
                     f"{name} has not verified {domain}{extra}: these records are missing or "
                     "wrong: " + "; ".join(bad) + ".",
                     "Add exactly these records at your DNS host, then verify the domain in "
                     f"{name}.")
    return Check("provider-domain", WARN, title, f"{name} has not verified {domain} yet{extra}.",
                 f"Verify the domain in {name} once its records are in place.")


CHECKS = {"postmark": _postmark, "sendgrid": _sendgrid, "mailgun": _mailgun, "resend": _resend}
