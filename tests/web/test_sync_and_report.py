"""`drip events sync` against a loopback server playing each provider, and `drip report`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from sender import dispatch, events_sync, subscribers
from sender.backup import migrate_database
from sender.events import Event, apply_events
from sender.subscribers import get
from tests.conftest import at, base_env

NOW = at("2026-03-09T18:00Z")


class FakeProvider(BaseHTTPRequestHandler):
    """Serves the suppression endpoints; records what was asked."""

    routes = {}
    seen = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        parsed = urlparse(self.path)
        self.seen.append((parsed.path, parse_qs(parsed.query), dict(self.headers)))
        body = self.routes.get(parsed.path)
        if callable(body):
            body = body(parse_qs(parsed.query), self.server.base)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeProvider)
    httpd.base = f"http://127.0.0.1:{httpd.server_port}"
    FakeProvider.routes, FakeProvider.seen = {}, []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def people(drip):
    for address in ("ana@example.com", "bea@example.com", "cy@example.com", "dee@example.com"):
        subscribers.add_subscriber(drip, address, now=NOW, confirmed=True, consent_source="import")
    dispatch.send_due(drip, now=NOW)
    return drip


def statuses(drip):
    return {s.email: s.status for s in drip.store.list_subscribers()}


def test_postmark_sync(run, people, fake):
    FakeProvider.routes["/message-streams/broadcast/suppressions/dump"] = {"Suppressions": [
        {"EmailAddress": "ana@example.com", "SuppressionReason": "HardBounce",
         "Origin": "Recipient", "CreatedAt": "2026-03-09T17:00:00-05:00"},
        {"EmailAddress": "bea@example.com", "SuppressionReason": "SpamComplaint",
         "Origin": "Recipient", "CreatedAt": "2026-03-09T17:00:00-05:00"},
        {"EmailAddress": "cy@example.com", "SuppressionReason": "ManualSuppression",
         "Origin": "Customer", "CreatedAt": "2026-03-09T17:00:00-05:00"},
        {"EmailAddress": "stranger@example.com", "SuppressionReason": "HardBounce"}]}
    env = {"POSTMARK_SERVER_TOKEN": "pm-token-secret", "POSTMARK_API_URL": fake.base}
    result = run("events", "sync", "--provider", "postmark", "--now", "2026-03-10T09:00Z",
                 extra_env=env)
    assert result.exit_code == 0, result.output
    assert "1 not our subscribers" in result.output
    assert "pm-token-secret" not in result.output
    assert statuses(people) == {"ana@example.com": "bounced", "bea@example.com": "complained",
                                "cy@example.com": "unsubscribed", "dee@example.com": "active"}
    assert FakeProvider.seen[0][2]["X-Postmark-Server-Token"] == "pm-token-secret"
    # Running it again records nothing new.
    again = run("events", "sync", "--provider", "postmark", "--json", extra_env=env)
    assert json.loads(again.output)["recorded"] == 0
    assert len(people.store.events()) == 3


def test_sendgrid_sync_pages(run, people, fake):
    FakeProvider.routes["/v3/suppression/bounces"] = lambda q, base: (
        [{"email": "ana@example.com", "created": 1773079200, "reason": "550"}]
        if q["offset"] == ["0"] else [])
    FakeProvider.routes["/v3/suppression/spam_reports"] = [
        {"email": "bea@example.com", "created": 1773079200}]
    FakeProvider.routes["/v3/suppression/unsubscribes"] = [
        {"email": "cy@example.com", "created": 1773079200}]
    result = run("events", "sync", "--provider", "sendgrid", extra_env={
        "SENDGRID_API_KEY": "SG.secret", "SENDGRID_API_URL": fake.base})
    assert result.exit_code == 0, result.output
    assert statuses(people)["bea@example.com"] == "complained"
    assert statuses(people)["ana@example.com"] == "bounced"
    assert statuses(people)["cy@example.com"] == "unsubscribed"
    assert FakeProvider.seen[0][2]["Authorization"] == "Bearer SG.secret"


def test_mailgun_sync_follows_paging(run, people, fake):
    def bounces(query, base):
        if "page" in query:
            return {"items": [], "paging": {}}
        return {"items": [{"address": "ana@example.com", "code": "550",
                           "created_at": "Mon, 09 Mar 2026 17:00:00 UTC"}],
                "paging": {"next": f"{base}/v3/mg.example.com/bounces?page=next"}}

    FakeProvider.routes["/v3/mg.example.com/bounces"] = bounces
    FakeProvider.routes["/v3/mg.example.com/complaints"] = {"items": [
        {"address": "dee@example.com", "created_at": "Mon, 09 Mar 2026 17:00:00 UTC"}]}
    FakeProvider.routes["/v3/mg.example.com/unsubscribes"] = {"items": []}
    result = run("events", "sync", "--provider", "mailgun", extra_env={
        "MAILGUN_API_KEY": "key-secret", "MAILGUN_DOMAIN": "mg.example.com",
        "MAILGUN_API_URL": fake.base})
    assert result.exit_code == 0, result.output
    assert statuses(people)["ana@example.com"] == "bounced"
    assert statuses(people)["dee@example.com"] == "complained"
    assert [p for p, _, _ in FakeProvider.seen].count("/v3/mg.example.com/bounces") == 2


def test_resend_sync_and_missing_key(run, people, fake):
    def listing(query, base):
        if "after" not in query:
            return {"object": "list", "has_more": True, "data": [
                {"id": "s1", "email": "ana@example.com", "origin": "bounce"}]}
        return {"object": "list", "has_more": False, "data": [
            {"id": "s2", "email": "bea@example.com", "origin": "manual"}]}

    FakeProvider.routes["/suppressions"] = listing
    result = run("events", "sync", "--provider", "resend", extra_env={
        "RESEND_API_KEY": "re_secret", "RESEND_API_URL": fake.base})
    assert result.exit_code == 0, result.output
    assert statuses(people)["ana@example.com"] == "bounced"
    assert statuses(people)["bea@example.com"] == "unsubscribed"
    missing = run("events", "sync", "--provider", "sendgrid")
    assert missing.exit_code == 1
    assert "SENDGRID_API_KEY" in missing.output
    outbox = run("events", "sync")
    assert outbox.exit_code == 1 and "keeps no suppression list" in outbox.output


PROVIDER_ENV = {
    "postmark": {"POSTMARK_SERVER_TOKEN": "pm-token-secret"},
    "sendgrid": {"SENDGRID_API_KEY": "SG.secret"},
    "mailgun": {"MAILGUN_API_KEY": "key-secret", "MAILGUN_DOMAIN": "mg.example.com"},
    "resend": {"RESEND_API_KEY": "re_secret"},
}
ANA = {"email": "ana@example.com", "EmailAddress": "ana@example.com", "address": "ana@example.com",
       "SuppressionReason": "HardBounce", "origin": "bounce", "id": "s1"}
# (provider, path, what it answers, words of the message): answers of the wrong shape.
HOSTILE = [
    ("postmark", "/message-streams/broadcast/suppressions/dump", [ANA], "the body is a list"),
    ("postmark", "/message-streams/broadcast/suppressions/dump", {"Suppressions": {"a": 1}},
     "Suppressions is a JSON object"),
    ("postmark", "/message-streams/broadcast/suppressions/dump", {"Suppressions": ["ana@x"]},
     "an item is text"),
    ("sendgrid", "/v3/suppression/bounces", {"result": [ANA]}, "the body is a JSON object"),
    ("sendgrid", "/v3/suppression/bounces", [ANA, 7], "an item is a number"),
    ("mailgun", "/v3/mg.example.com/bounces", [ANA], "the body is a list"),
    ("mailgun", "/v3/mg.example.com/bounces", {"items": [None]}, "an item is null"),
    ("mailgun", "/v3/mg.example.com/bounces", {"items": [ANA], "paging": ["next"]},
     "paging is a list"),
    ("resend", "/suppressions", [ANA], "the body is a list"),
    ("resend", "/suppressions", {"data": [[ANA]]}, "an item is a list"),
    ("resend", "/suppressions", {"data": [{"email": "ana@example.com", "origin": "bounce"}],
                                 "has_more": True}, "an item has no id"),
]


@pytest.mark.parametrize("provider,path,answer,words", HOSTILE,
                         ids=[f"{h[0]}-{h[3]}" for h in HOSTILE])
def test_sync_stops_with_a_clear_error_on_an_answer_of_the_wrong_shape(
        run, people, fake, provider, path, answer, words):
    FakeProvider.routes[path] = answer
    result = run("events", "sync", "--provider", provider,
                 extra_env={**PROVIDER_ENV[provider], f"{provider.upper()}_API_URL": fake.base})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{provider}: unexpected answer from {path}: {words}" in result.output, result.output
    assert statuses(people)["ana@example.com"] == "active"
    assert people.store.events() == []


@pytest.mark.parametrize("created", [b"1e400", b"99999999999999999", b"-1e300", b"NaN"])
def test_sync_takes_a_signup_time_no_clock_can_hold_as_now(run, people, fake, created):
    FakeProvider.routes["/v3/suppression/bounces"] = (
        b'[{"email": "ana@example.com", "created": ' + created + b'}]')
    FakeProvider.routes["/v3/suppression/spam_reports"] = []
    FakeProvider.routes["/v3/suppression/unsubscribes"] = []
    result = run("events", "sync", "--provider", "sendgrid", "--now", "2026-03-10T09:00Z",
                 extra_env={**PROVIDER_ENV["sendgrid"], "SENDGRID_API_URL": fake.base})
    assert result.exit_code == 0, result.output
    assert statuses(people)["ana@example.com"] == "bounced"
    [event] = people.store.events()
    assert (event["type"], event["occurred_at"]) == ("bounced", at("2026-03-10T09:00Z"))


def test_sync_keeps_an_item_holding_a_number_out_of_range_on_every_store(project, make_drip,
                                                                         engine, fake):
    """1e400 parses as infinity, which PostgreSQL will not store as JSON: the item is kept
    with that number as text, and its time (out of range) is the time of the sync."""
    env = base_env(project, **engine, DRIP_PROVIDER="sendgrid", SENDGRID_API_KEY="SG.secret",
                   SENDGRID_API_URL=fake.base)
    migrate_database(env["DRIP_DATABASE"])
    drip = make_drip(env)
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True,
                               consent_source="import")
    FakeProvider.routes["/v3/suppression/bounces"] = (
        b'[{"email": "ana@example.com", "created": 1e400, "status": -1e400, "code": NaN}]')
    FakeProvider.routes["/v3/suppression/spam_reports"] = []
    FakeProvider.routes["/v3/suppression/unsubscribes"] = []
    later = at("2026-03-10T09:00Z")
    result = events_sync.sync(drip, now=later)
    assert (result.recorded, result.suppressed) == (1, 1)
    assert statuses(drip)["ana@example.com"] == "bounced"
    [event] = drip.store.events()
    assert (event["type"], event["occurred_at"]) == ("bounced", later)
    assert event["raw"] == {"email": "ana@example.com", "created": "Infinity",
                            "status": "-Infinity", "code": "NaN"}


def test_report_text_json_and_html(run, people, project):
    drip = people
    ana = get(drip, "ana@example.com")
    [welcome] = drip.store.deliveries(subscriber_id=ana.id, campaign="welcome")
    apply_events(drip, [Event("postmark", "delivered", NOW, provider_event_id="d1",
                              delivery_id=welcome.id),
                        Event("postmark", "opened", NOW, provider_event_id="o1",
                              delivery_id=welcome.id),
                        Event("postmark", "opened", NOW, provider_event_id="o2",
                              delivery_id=welcome.id),
                        Event("postmark", "complained", NOW, provider_event_id="c1",
                              email="bea@example.com")], now=NOW)
    data = json.loads(run("report", "--json").output)
    welcome_row = next(c for c in data["campaigns"] if c["id"] == "welcome")["steps"][0]
    assert welcome_row == {**welcome_row, "sent": 4, "delivered": 1, "opened": 1,
                           "complained": 1, "left": 1}
    assert data["totals"]["sent"] == 4
    text = run("report").output
    assert "Welcome (welcome)" in text and "OPENED" in text
    result = run("report", "--html", "report.html")
    assert result.exit_code == 0
    page = (project / "report.html").read_text()
    assert "<svg" in page and "4 sent, 1 left" in page
    assert "<script" not in page and "http" not in page.split("<body>", 1)[1].split("xmlns")[0]
