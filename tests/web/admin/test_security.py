"""The dashboard's guards, over HTTP against a real server on loopback: off until a
password is set (and with DRIP_ADMIN=off), no page without a session, no change without the
form's token, subscriber text shown as text under a strict CSP, login brute force slowed and
locked, the session cookie's flags, the session timeout. Each refusal is checked on the
store: nothing changed."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import requests

from sender.models import ENDED_STATUSES
from sender.web.admin import auth
from tests.web.admin.conftest import PASSWORD, add_people, logged_in, login, token_in
from tests.web.conftest import START

XSS_NAME = "<script>alert(1)</script>"
XSS_FIELD = '"><img src=x onerror=alert(2)>'


def routes(ids):
    """(method, path) for every dashboard route, with real ids in them."""
    sid = ids["ana@example.com"].id
    gets = ["/", "/?period=week", "/subscribers", "/subscribers?q=ana", "/subscribers/new",
            f"/subscribers/{sid}", f"/subscribers/{sid}/data.json", f"/subscribers/{sid}/pause",
            f"/subscribers/{sid}/resume", f"/subscribers/{sid}/unsubscribe",
            f"/subscribers/{sid}/erase", "/campaigns", "/campaigns/course/resume", "/activity"]
    posts = ["/logout", "/subscribers/new", f"/subscribers/{sid}/pause",
             f"/subscribers/{sid}/unsubscribe", f"/subscribers/{sid}/erase",
             "/campaigns/course/resume"]
    return gets, posts


POST_DATA = {"email": "ana@example.com", "consent": "asked in person", "name": "Eve",
             "confirmed": "yes"}


def snapshot(store):
    """What any dashboard change would alter."""
    return {"people": [(p.email, p.status, p.name) for p in store.list_subscribers()],
            "scheduled": sorted((d.id, d.state, d.due_at) for d in store.deliveries()),
            "brakes": [(b["campaign"], b["resumed_at"]) for b in store.campaign_brakes()],
            "erased": store.erased_key_ids()}


def sessions_in(store, *tokens):
    return [store.admin_session(auth.token_hash(t)) is not None for t in tokens]


@pytest.fixture
def seeded(admin_server):
    server = admin_server()
    ids = add_people(server.admin_drip, ("ana@example.com", "Ana"), ("bo@example.com", "Bo"))
    server.store().brake_campaign("course", reason="complaints", details={}, now=START)
    return server, ids


def test_the_dashboard_is_off_until_a_password_is_set(start_server, make_drip):
    server = start_server()
    missing = requests.get(f"{server.url}/nowhere", timeout=10)
    for path in ("/admin", "/admin/", "/admin/login", "/admin/subscribers", "/admin/admin.css"):
        answer = requests.get(f"{server.url}{path}", allow_redirects=False, timeout=10)
        assert answer.status_code == 404 and answer.text == missing.text, path
    assert requests.post(f"{server.url}/admin/login", data={"name": "coach"},
                         timeout=10).status_code == 404
    auth.set_password(make_drip(server.env).store, "coach", PASSWORD, now=START)
    answer = requests.get(f"{server.url}/admin", allow_redirects=False, timeout=10)
    assert answer.status_code == 308 and answer.headers["Location"].endswith("/admin/")
    assert requests.get(f"{server.url}/admin/login", timeout=10).status_code == 200


def test_drip_admin_off_turns_it_off_entirely(admin_server):
    server = admin_server(DRIP_ADMIN="off")
    for path in ("/admin/", "/admin/login", "/admin/admin.css", "/admin/subscribers/1"):
        assert requests.get(f"{server.url}{path}", allow_redirects=False,
                            timeout=10).status_code == 404, path
    answer = requests.post(f"{server.url}/admin/login", timeout=10,
                           data={"name": "coach", "password": PASSWORD})
    assert answer.status_code == 404 and "drip_admin" not in answer.headers.get("Set-Cookie", "")


def test_every_route_refuses_without_a_session(seeded):
    server, ids = seeded
    store = server.store()
    before = snapshot(store)
    gets, posts = routes(ids)
    anonymous = requests.Session()
    forged = requests.Session()
    forged.cookies.set("drip_admin", "x" * 43, path="/admin")
    for client in (anonymous, forged):
        for path in gets:
            answer = client.get(f"{server.url}/admin{path}", allow_redirects=False, timeout=10)
            assert answer.status_code == 303, path
            assert answer.headers["Location"] == "/admin/login", path
            assert "ana@example.com" not in answer.text
        for path in posts:
            answer = client.post(f"{server.url}/admin{path}", data=POST_DATA,
                                 allow_redirects=False, timeout=10)
            assert answer.status_code == 403, path
            assert "nothing was changed" in answer.text
    assert snapshot(store) == before
    assert store.audit_log(limit=50)[0]["action"] == "password set"   # nothing else happened


def test_a_session_ends_after_its_timeout_and_at_logout(seeded):
    server, ids = seeded
    store = server.store()
    session = logged_in(server)
    token = session.cookies["drip_admin"]
    # Clicks within the timeout keep it alive, past 30 minutes in all.
    for minutes in (20, 40, 60):
        server.clock.now = START + timedelta(minutes=minutes)
        assert session.get(f"{server.url}/admin/", allow_redirects=False, timeout=10).status_code == 200
    server.clock.now += timedelta(minutes=30, seconds=1)
    answer = session.get(f"{server.url}/admin/", allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/login"
    assert sessions_in(store, token) == [False]

    session = logged_in(server)
    token = session.cookies["drip_admin"]
    page = session.get(f"{server.url}/admin/", timeout=10)
    answer = session.post(f"{server.url}/admin/logout", data={"csrf": token_in(page.text)},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and "drip_admin=;" in answer.headers["Set-Cookie"]
    assert sessions_in(store, token) == [False]
    replay = requests.get(f"{server.url}/admin/", cookies={"drip_admin": token},
                          allow_redirects=False, timeout=10)
    assert replay.status_code == 303
    # A session lasts LIFETIME (12 hours) at most, however busy.
    session = logged_in(server)
    started = server.clock.now
    while server.clock.now + timedelta(minutes=29) - started <= auth.LIFETIME:
        server.clock.now += timedelta(minutes=29)
        assert session.get(f"{server.url}/admin/", allow_redirects=False,
                           timeout=10).status_code == 200
    server.clock.now = started + auth.LIFETIME + timedelta(seconds=1)
    assert session.get(f"{server.url}/admin/", allow_redirects=False, timeout=10).status_code == 303


def test_a_forged_or_missing_csrf_token_changes_nothing(seeded):
    server, ids = seeded
    store = server.store()
    before = snapshot(store)
    mine, other = logged_in(server), logged_in(server)
    other_token = token_in(other.get(f"{server.url}/admin/", timeout=10).text)
    my_token = token_in(mine.get(f"{server.url}/admin/", timeout=10).text)
    assert other_token != my_token
    _, posts = routes(ids)
    for path in posts:
        for data, headers in (({}, {}), ({"csrf": ""}, {}), ({"csrf": "forged" * 7}, {}),
                              ({"csrf": other_token}, {}),
                              ({"csrf": my_token}, {"Origin": "https://evil.example"}),
                              ({"csrf": my_token}, {"Origin": "null"})):
            answer = mine.post(f"{server.url}/admin{path}", data={**POST_DATA, **data},
                               headers=headers, allow_redirects=False, timeout=10)
            assert answer.status_code == 403, (path, data, headers)
    assert snapshot(store) == before
    assert sessions_in(store, mine.cookies["drip_admin"]) == [True]   # logout was refused too
    refused = [e for e in store.audit_log(limit=100) if e["action"].startswith("refused")]
    assert len(refused) == 6 * len(posts) and {e["user"] for e in refused} == {"coach"}
    # The same request with the token goes through.
    sid = ids["ana@example.com"].id
    answer = mine.post(f"{server.url}/admin/subscribers/{sid}/pause", data={"csrf": my_token},
                       allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    assert store.get_subscriber(id=sid).status == "paused"


def test_the_login_form_needs_its_own_token(seeded):
    server, _ = seeded
    client = requests.Session()
    page = client.get(f"{server.url}/admin/login", timeout=10)
    for data in ({"name": "coach", "password": PASSWORD},
                 {"csrf": "made-up", "name": "coach", "password": PASSWORD}):
        answer = client.post(f"{server.url}/admin/login", data=data, allow_redirects=False,
                             timeout=10)
        assert answer.status_code == 400 and "drip_admin=" not in answer.headers["Set-Cookie"]
    stranger = requests.post(f"{server.url}/admin/login", allow_redirects=False, timeout=10,
                             data={"csrf": token_in(page.text), "name": "coach",
                                   "password": PASSWORD})
    assert stranger.status_code == 400          # the token without its cookie
    assert not [e for e in server.store().audit_log(limit=10) if e["action"] == "login"]


def test_subscriber_text_is_shown_as_text_under_a_strict_policy(seeded):
    server, ids = seeded
    drip = server.admin_drip
    from sender import subscribers

    bad = subscribers.add_subscriber(drip, "eve@example.com", now=START, name=XSS_NAME,
                                     fields={"note": XSS_FIELD}, tags=["<b>x</b>"],
                                     consent_source="<i>form</i>", confirmed=True).subscriber
    session = logged_in(server)
    pages = [f"/subscribers/{bad.id}", "/subscribers", "/subscribers?q=script",
             f"/subscribers/{bad.id}/pause", "/activity", "/"]
    for path in pages:
        answer = session.get(f"{server.url}/admin{path}", timeout=10)
        assert answer.status_code == 200, path
        body = answer.text
        assert "<script>alert" not in body and "<img src=x" not in body and "<b>x" not in body
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Cache-Control"] == "no-store"
        assert "<script" not in body.lower() and " style=" not in body and "<style" not in body
    page = session.get(f"{server.url}/admin/subscribers/{bad.id}", timeout=10).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;i&gt;form&lt;/i&gt;" in page
    # The subject shows the name too, escaped.
    assert "Welcome, &lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_login_brute_force_is_slowed_and_locked(seeded):
    server, _ = seeded
    store = server.store()
    for attempt in range(auth.FAILURES):
        session, answer = login(server, password=f"guess {attempt}")
        assert answer.status_code == 401 and "drip_admin=" not in answer.headers["Set-Cookie"]
    # Locked: even the right password is refused, without a session.
    session, answer = login(server)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == str(auth.WINDOW)
    assert "locked" in answer.text and "drip_admin=" not in answer.headers["Set-Cookie"]
    actions = [e["action"] for e in store.audit_log(limit=10)]
    assert actions[:6] == ["login refused: name locked after failed attempts"] + ["login failed"] * 5
    # The lock lasts the window from the attempts; then the right password works, and a
    # success clears the count.
    server.clock.now = START + timedelta(seconds=auth.WINDOW + 1)
    session, answer = login(server)
    assert answer.status_code == 303 and session.cookies.get("drip_admin")
    for _ in range(auth.FAILURES - 1):
        assert login(server, password="nope")[1].status_code == 401
    assert login(server)[1].status_code == 303

    # Many names from one address: slowed after PER_ADDRESS attempts in the window.
    server.clock.now += timedelta(seconds=auth.WINDOW + 1)
    for attempt in range(auth.PER_ADDRESS):
        assert login(server, name=f"user{attempt}", password="x")[1].status_code == 401
    _, answer = login(server)
    assert answer.status_code == 429 and "network" in answer.text
    assert store.audit_log(limit=1)[0]["action"].startswith("login refused: too many attempts")


@pytest.mark.parametrize("base_url, secure", [("https://mail.example.com", True), (None, False)])
def test_the_session_cookie_flags_and_what_is_stored(admin_server, base_url, secure):
    server = admin_server(**({"DRIP_BASE_URL": base_url} if base_url else {}))
    url = f"http://127.0.0.1:{server.http.server_port}"   # the server, whatever its public URL
    form = requests.get(f"{url}/admin/login", timeout=10)
    login_cookie = form.headers["Set-Cookie"]
    token = token_in(form.text)
    answer = requests.post(f"{url}/admin/login", allow_redirects=False, timeout=10,
                           cookies={"drip_admin_login": token},
                           data={"csrf": token, "name": "coach", "password": PASSWORD})
    assert answer.status_code == 303
    [cookie] = [c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith("drip_admin=")]
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= flags and ("secure" in flags) == secure
    assert "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Max-Age" not in cookie and "Expires" not in cookie     # gone with the browser
    assert "HttpOnly" in login_cookie and "SameSite=Strict" in login_cookie
    assert ("Secure" in login_cookie) == secure
    value = re.match(r"drip_admin=([^;]+)", cookie).group(1)
    assert server.store().admin_session(hashlib.sha256(value.encode()).hexdigest())
    raw = (server.root / "drip.db").read_bytes() + (
        (server.root / "drip.db-wal").read_bytes() if (server.root / "drip.db-wal").exists() else b"")
    assert value.encode() not in raw and PASSWORD.encode() not in raw
    assert b"$argon2id$" in raw


def test_unsubscribe_and_erase_confirm_first(seeded):
    server, ids = seeded
    store = server.store()
    session = logged_in(server)
    sid = ids["ana@example.com"].id
    page = session.get(f"{server.url}/admin/subscribers/{sid}/erase", timeout=10)
    assert "type her address" in page.text and store.get_subscriber(id=sid) is not None
    token = token_in(page.text)
    for typed in ("", "bo@example.com", "ana@example"):
        answer = session.post(f"{server.url}/admin/subscribers/{sid}/erase", timeout=10,
                              data={"csrf": token, "email": typed}, allow_redirects=False)
        assert answer.status_code == 400
    assert store.get_subscriber(id=sid) is not None
    answer = session.post(f"{server.url}/admin/subscribers/{sid}/erase", allow_redirects=False,
                          data={"csrf": token, "email": " ANA@example.com"}, timeout=10)
    assert answer.status_code == 303 and store.get_subscriber(id=sid) is None
    assert store.erased_key_ids() and not list(store.deliveries(subscriber_id=sid))
    [entry] = [e for e in store.audit_log(limit=5) if e["action"] == "erase"]
    assert entry["subscriber_id"] == sid and entry["user"] == "coach" and entry["at"] == START
    assert "ana@example.com" not in str(store.audit_log(limit=100))
    bo = ids["bo@example.com"].id
    answer = session.post(f"{server.url}/admin/subscribers/{bo}/unsubscribe",
                          data={"csrf": token}, allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and store.get_subscriber(id=bo).status in ENDED_STATUSES
    again = session.post(f"{server.url}/admin/subscribers/{bo}/unsubscribe",
                         data={"csrf": token}, allow_redirects=False, timeout=10)
    assert again.status_code == 409


def test_behind_a_proxy_the_base_urls_origin_is_this_site(admin_server):
    """Caddy passes the Host on but the browser's Origin is https://DRIP_BASE_URL's host:
    accepted; any other site's Origin is not."""
    server = admin_server(DRIP_BASE_URL="https://mail.example.com")
    sid = add_people(server.admin_drip, ("ana@example.com", "Ana"))["ana@example.com"].id
    url = f"http://127.0.0.1:{server.http.server_port}"
    client = requests.Session()
    form = client.get(f"{url}/admin/login", timeout=10)
    token = token_in(form.text)
    client.cookies.set("drip_admin_login", token, path="/admin")
    answer = client.post(f"{url}/admin/login", allow_redirects=False, timeout=10,
                         headers={"Origin": "https://mail.example.com"},
                         data={"csrf": token, "name": "coach", "password": PASSWORD})
    assert answer.status_code == 303
    [cookie] = [c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith("drip_admin=")]
    client.cookies.set("drip_admin", re.match(r"drip_admin=([^;]+)", cookie).group(1), path="/admin")
    page = client.get(f"{url}/admin/subscribers/{sid}/pause", timeout=10)
    for origin, status in (("https://mail.example.com.evil.example", 403),
                           ("https://mail.example.com", 303)):
        answer = client.post(f"{url}/admin/subscribers/{sid}/pause", allow_redirects=False,
                             headers={"Origin": origin}, data={"csrf": token_in(page.text)},
                             timeout=10)
        assert answer.status_code == status, origin
    assert server.store().get_subscriber(id=sid).status == "paused"


def test_a_flood_of_refused_logins_does_not_grow_the_audit_log(admin_server):
    """Past the limits every attempt is refused cheaply, and the refusal is logged once per
    limited key and window, not once per attempt."""
    server = admin_server()
    session = requests.Session()
    for _ in range(60):
        login(server, name="coach", password="wrong password guess", session=session)
    refusals = [e for e in server.store().audit_log(limit=1000)
                if "refused" in e["action"]]
    failures = [e for e in server.store().audit_log(limit=1000) if e["action"] == "login failed"]
    assert len(failures) == auth.FAILURES
    assert 1 <= len(refusals) <= 2, [e["action"] for e in refusals]


@pytest.mark.parametrize("path", ["/subscribers/99999999999999999999",
                                  "/subscribers/99999999999999999999/pause",
                                  "/subscribers?after=99999999999999999999",
                                  "/activity?before=99999999999999999999",
                                  "/subscribers?segment=signup>=9999-12-31T23:00-05:00",
                                  "/subscribers?segment=signup<0001-01-01T00:00%2B05:00",
                                  "/subscribers?q=%00&segment=tag:a%00"])
def test_out_of_range_numbers_and_control_characters_are_never_a_server_error(admin_server,
                                                                               path):
    server = admin_server()
    session = logged_in(server)
    answer = session.get(f"{server.url}/admin{path}", timeout=10, allow_redirects=False)
    assert answer.status_code in (200, 400, 404), (answer.status_code, answer.text[:300])
