"""`drip events sync`: pull suppression lists from the provider's API and apply them.

For coaches who cannot host the webhook endpoint. Bounces, complaints and
unsubscribes the provider holds become the same events a webhook would bring
(recorded once per address and kind, so running it again changes nothing), and
suppress or unsubscribe the subscribers we have. Addresses we do not know are
counted and left alone.

    Postmark  GET /message-streams/{stream}/suppressions/dump
    SendGrid  GET /v3/suppression/bounces | spam_reports | unsubscribes
    Mailgun   GET /v3/{domain}/bounces | complaints | unsubscribes
    Resend    GET /suppressions (origin bounce, complaint or manual)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError, DripError, InvalidInput
from .events import BOUNCED, COMPLAINED, UNSUBSCRIBED, Event, apply_events
from .message import normalize_email
from .webhooks.common import parse_time

SYNCABLE = ("postmark", "sendgrid", "mailgun", "resend")
PAGE = 500


@dataclass
class SyncResult:
    provider: str
    found: dict = field(default_factory=dict)      # kind -> addresses listed
    unknown: int = 0
    recorded: int = 0
    suppressed: int = 0
    unsubscribed: int = 0

    def to_dict(self):
        return dict(self.__dict__)


def _client(settings, name, base_setting, key_setting, **kwargs):
    from .providers.http import HttpClient

    return HttpClient(name, settings.require(base_setting), key_setting=key_setting, **kwargs)


def _fetch(client, path, **params):
    answer = client.request("GET", path, params=params or None)
    if not answer.ok or answer.body is None:
        raise DripError(f"{client.name}: could not read {path}: "
                        f"{answer.describe(client.error_message(answer))}")
    return answer.body


def _postmark(settings, stream):
    token = settings.require("POSTMARK_SERVER_TOKEN")
    client = _client(settings, "postmark", "POSTMARK_API_URL", "POSTMARK_SERVER_TOKEN",
                     headers={"X-Postmark-Server-Token": token})
    kinds = {"HardBounce": BOUNCED, "SpamComplaint": COMPLAINED,
             "ManualSuppression": UNSUBSCRIBED}
    try:
        body = _fetch(client, f"/message-streams/{stream}/suppressions/dump")
    finally:
        client.close()
    for item in body.get("Suppressions", []):
        kind = kinds.get(item.get("SuppressionReason"))
        if kind:
            yield kind, item.get("EmailAddress"), item.get("CreatedAt"), item


def _sendgrid(settings):
    key = settings.require("SENDGRID_API_KEY")
    client = _client(settings, "sendgrid", "SENDGRID_API_URL", "SENDGRID_API_KEY",
                     headers={"Authorization": f"Bearer {key}"})
    try:
        for path, kind in (("bounces", BOUNCED), ("spam_reports", COMPLAINED),
                           ("unsubscribes", UNSUBSCRIBED)):
            offset = 0
            while True:
                items = _fetch(client, f"/v3/suppression/{path}", limit=PAGE, offset=offset)
                for item in items:
                    yield kind, item.get("email"), item.get("created"), item
                if len(items) < PAGE:
                    break
                offset += PAGE
    finally:
        client.close()


def _mailgun(settings):
    key = settings.require("MAILGUN_API_KEY")
    domain = settings.require("MAILGUN_DOMAIN")
    client = _client(settings, "mailgun", "MAILGUN_API_URL", "MAILGUN_API_KEY",
                     auth=("api", key))
    try:
        for path, kind in (("bounces", BOUNCED), ("complaints", COMPLAINED),
                           ("unsubscribes", UNSUBSCRIBED)):
            url, params = f"/v3/{domain}/{path}", {"limit": PAGE}
            for _ in range(10_000):
                body = _fetch(client, url, **params)
                items = body.get("items") or []
                for item in items:
                    yield kind, item.get("address"), item.get("created_at"), item
                following = (body.get("paging") or {}).get("next") or ""
                # Follow the paging link only on the API host we were given.
                if not items or not following.startswith(client.base_url + "/"):
                    break
                url, params = following[len(client.base_url):], {}
    finally:
        client.close()


def _resend(settings):
    key = settings.require("RESEND_API_KEY")
    client = _client(settings, "resend", "RESEND_API_URL", "RESEND_API_KEY",
                     headers={"Authorization": f"Bearer {key}"})
    kinds = {"bounce": BOUNCED, "complaint": COMPLAINED, "manual": UNSUBSCRIBED}
    try:
        params = {"limit": 100}
        for _ in range(100_000):
            body = _fetch(client, "/suppressions", **params)
            data = body.get("data") or []
            for item in data:
                kind = kinds.get(item.get("origin"))
                if kind:
                    yield kind, item.get("email"), item.get("created_at"), item
            if not body.get("has_more") or not data:
                break
            params = {"limit": 100, "after": data[-1]["id"]}
    finally:
        client.close()


def sync(drip, provider=None, *, now, stream="broadcast"):
    """Pull the suppression lists of ``provider`` (default: DRIP_PROVIDER) and apply them."""
    provider = provider or drip.settings.provider
    if provider not in SYNCABLE:
        raise ConfigError(f"`drip events sync` works with {', '.join(SYNCABLE)}; "
                          f"{provider!r} keeps no suppression list to pull")
    if provider == "postmark":
        rows = _postmark(drip.settings, stream)
    else:
        rows = {"sendgrid": _sendgrid, "mailgun": _mailgun, "resend": _resend}[provider](
            drip.settings)
    result = SyncResult(provider)
    events = []
    store = drip.store
    for kind, address, created, item in rows:
        result.found[kind] = result.found.get(kind, 0) + 1
        try:
            email = normalize_email(address or "")
        except InvalidInput:
            result.unknown += 1
            continue
        if store.get_subscriber(email=email) is None:
            result.unknown += 1
            continue
        try:
            when = parse_time(created, now)
        except ValueError:
            when = now
        events.append(Event(provider=provider, type=kind, occurred_at=when, raw=item,
                            provider_event_id=f"sync:{kind}:{email}", email=email))
    applied = apply_events(drip, events, now=now)
    result.recorded = applied.recorded
    result.suppressed = applied.suppressed
    result.unsubscribed = applied.unsubscribed
    return result
