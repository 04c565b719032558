"""`drip doctor` asks Postmark, read-only: GET /server (the token works), GET /message-streams
(both streams there, each of the right kind). A domain's DKIM and Return-Path status needs
the account token, which drip does not hold: DNS is checked instead."""

from __future__ import annotations

from ...doctor_report import FAIL, OK, SKIP, Check
from ..doctor import Profile, get, key_ok

STREAM_KINDS = {"POSTMARK_MESSAGE_STREAM": "Broadcasts",
                "POSTMARK_TRANSACTIONAL_STREAM": "Transactional"}


def profile(settings, from_domain):
    """Postmark bounces through pm-bounces.<domain> (a CNAME to it); its DKIM selector
    carries a date, so it is not guessed."""
    return Profile("postmark", "spf.mtasv.net", (), bounce_domain=f"pm-bounces.{from_domain}",
                   bounce_cname="pm.mtasv.net",
                   selector_hint="Postmark shows its selector under Sender Signatures (or "
                   "Domains), DKIM, e.g. 20240101000000pm: set DRIP_DKIM_SELECTORS to it")


def checks(provider, settings, ctx):
    status, body = get(provider, "/server")
    if status != 200:
        return [Check("provider", FAIL, "postmark key", f"GET /server answered {status}.",
                      "Check POSTMARK_SERVER_TOKEN and POSTMARK_API_URL.")]
    found = [key_ok("postmark", f"The server token works (server {body.get('Name', '?')!r}).")]
    status, body = get(provider, "/message-streams", MessageStreamType="All",
                       IncludeArchivedStreams="false")
    streams = {s.get("ID"): s for s in (body or {}).get("MessageStreams", []) if isinstance(s, dict)}
    missing = []
    for setting, kind in STREAM_KINDS.items():
        wanted = settings.value(setting)
        stream = streams.get(wanted)
        if stream is None:
            missing.append(f"{setting}={wanted} is not a stream of this server (it has "
                           f"{', '.join(sorted(streams)) or 'none'}); create a {kind} stream "
                           f"with the ID {wanted} in Postmark, or set {setting} to yours")
        elif stream.get("MessageStreamType") != kind:
            missing.append(f"{wanted} is a {stream.get('MessageStreamType')} stream; "
                           f"{setting} needs a {kind} one")
    if missing:
        found.append(Check("provider-streams", FAIL, "Postmark message streams",
                           "Campaign mail and the confirmation and welcome emails go on separate "
                           "streams, and: " + "; ".join(missing) + ".",
                           "Fix the streams in Postmark (Servers, Message Streams) or the "
                           "settings named above."))
    else:
        found.append(Check("provider-streams", OK, "Postmark message streams",
                           f"Campaigns go on {settings.value('POSTMARK_MESSAGE_STREAM')} "
                           "(Broadcasts), confirmation and welcome on "
                           f"{settings.value('POSTMARK_TRANSACTIONAL_STREAM')} (Transactional)."))
    found.append(Check("provider-domain", SKIP, "What Postmark says about the domain",
                       "Postmark shows a domain's DKIM and Return-Path status only with the "
                       "account token, which drip does not keep; the DNS checks above cover them."))
    return found
