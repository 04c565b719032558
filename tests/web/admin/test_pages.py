"""The dashboard's pages over HTTP: what the overview counts (days on the coach's clock),
paging through the list, adding someone by hand, the campaigns page and the brake, her data,
and the activity log. Every change is checked in the store."""

from __future__ import annotations

import json
import re

from sender import subscribers
from sender.lists import person_data
from sender.models import Consent
from sender.web.admin import data
from tests.conftest import at
from tests.web.admin.conftest import add_people, logged_in, token_in
from tests.web.conftest import START


def test_overview_counts_each_day_and_week_on_the_coachs_clock(admin_server):
    server = admin_server()                  # DRIP_TIMEZONE is America/Los_Angeles
    drip = server.admin_drip
    # 03:00Z on 9 March is 20:00 on 8 March in Los Angeles; 8 March is when DST began there.
    for i, when in enumerate(("2026-03-09T03:00Z", "2026-03-09T08:00Z", "2026-03-09T17:00Z",
                              "2026-03-02T12:00Z")):
        subscribers.add_subscriber(drip, f"p{i}@example.com", now=at(when), confirmed=i < 2)
    subscribers.unsubscribe(drip, drip.store.get_subscriber(email="p0@example.com"), now=START)

    edges, labels = data.periods(START, drip.settings.timezone, "day")
    assert len(labels) == 30 and labels[-2:] == ["Mar 8", "Mar 9"]
    assert edges[-3:] == [at("2026-03-08T08:00Z"), at("2026-03-09T07:00Z"),
                          at("2026-03-10T07:00Z")]          # midnights, PST then PDT
    shown = data.overview(drip, now=START)
    per_day = {s["what"]: dict(zip(shown["labels"], s["counts"], strict=True))
               for s in shown["series"]}
    assert {k: v for k, v in per_day["signups"].items() if v} == {"Mar 2": 1, "Mar 8": 1,
                                                                  "Mar 9": 2}
    assert {k: v for k, v in per_day["confirmations"].items() if v} == {"Mar 8": 1, "Mar 9": 1}
    assert {k: v for k, v in per_day["unsubscribes"].items() if v} == {"Mar 9": 1}
    weekly = data.overview(drip, now=START, period="week")
    assert weekly["labels"][-2:] == ["Mar 2", "Mar 9"]           # Mondays
    assert weekly["series"][0]["counts"][-2:] == [2, 2]
    assert {k: n for k, n in shown["subscribers"].items() if n} == {"active": 1, "pending": 2,
                                                                    "unsubscribed": 1}

    page = logged_in(server).get(f"{server.url}/admin/", timeout=10).text
    assert "Signups: <strong>4</strong>" in page and "<title>Mar 9: 2</title>" in page
    assert "Unsubscribes: <strong>1</strong>" in page
    assert "were due over 1 hour(s) ago and are not sent" in page     # no sender ran here
    weeks = logged_in(server).get(f"{server.url}/admin/?period=week", timeout=10).text
    assert weeks.count('class="bar"') == 4 * 12 and "Per week (12 weeks)</strong>" in weeks


def test_problems_and_the_brake_show_on_the_overview(admin_server):
    server = admin_server()
    add_people(server.admin_drip, ("ana@example.com", "Ana"))
    server.store().brake_campaign("course", reason="complaints reached 0.5%", details={},
                                  now=START)
    page = logged_in(server).get(f"{server.url}/admin/", timeout=10).text
    assert "Needs you" in page and "campaign course is paused by the brake" in page
    assert "<strong>course</strong> is paused since" in page
    assert 'href="/admin/campaigns/course/resume"' in page


def test_the_list_pages_through_everyone_and_filters(admin_server):
    server = admin_server()
    store = server.store()
    store.add_subscribers([{"email": f"p{i:03}@example.com", "name": f"Person {i}",
                            "status": "paused" if i % 40 == 0 else "active",
                            "consent": Consent(source="t", at=START)} for i in range(120)],
                          now=START)
    session = logged_in(server)
    seen, url, pages = [], f"{server.url}/admin/subscribers", 0
    while url:
        page = session.get(url, timeout=10).text
        pages += 1
        seen += re.findall(r'data-label="Address" class="wide"><a href="[^"]+">([^<]+)</a>', page)
        found = re.search(r'id="next" href="([^"]+)"', page)
        url = f"{server.url}{found.group(1).replace('&amp;', '&')}" if found else None
    assert pages == 3 and seen == [f"p{i:03}@example.com" for i in range(120)]
    paused = session.get(f"{server.url}/admin/subscribers", params={"segment": "status:paused"},
                         timeout=10).text
    assert re.findall(r">(p\d+@example.com)</a>", paused) == [
        "p000@example.com", "p040@example.com", "p080@example.com"]
    found = session.get(f"{server.url}/admin/subscribers", params={"q": "person 11"},
                        timeout=10).text
    assert re.findall(r">(p\d+@example.com)</a>", found) == [
        "p011@example.com", "p110@example.com", "p111@example.com", "p112@example.com",
        "p113@example.com", "p114@example.com", "p115@example.com", "p116@example.com",
        "p117@example.com", "p118@example.com", "p119@example.com"]
    bad = session.get(f"{server.url}/admin/subscribers", params={"segment": "tag:"}, timeout=10)
    assert bad.status_code == 400 and "is not a term" in bad.text


def test_adding_by_hand_refuses_bad_input_and_keeps_what_was_typed(admin_server):
    server = admin_server()
    store = server.store()
    add_people(server.admin_drip, ("ana@example.com", "Ana"))
    session = logged_in(server)
    token = token_in(session.get(f"{server.url}/admin/subscribers/new", timeout=10).text)
    good = {"csrf": token, "email": "cy@example.com", "name": "Cy", "consent": "asked in class",
            "confirmed": "no", "timezone": "", "tags": "", "fields": ""}
    for change, status, words in (
            ({"consent": "  "}, 400, "say how she agreed"),
            ({"name": "Cy\r\nBcc: evil@example.com"}, 400, "name"),
            ({"timezone": "Mars/Olympus"}, 400, "unknown time zone"),
            ({"fields": "no equals sign"}, 400, "key=value"),
            ({"email": "not-an-address"}, 400, "not an email address"),
            ({"email": "ANA@example.com"}, 409, "on the list already")):
        answer = session.post(f"{server.url}/admin/subscribers/new", data={**good, **change},
                              allow_redirects=False, timeout=10)
        assert answer.status_code == status and words in answer.text, (change, answer.text[-800:])
        assert 'value="asked in class"' in answer.text or change.get("consent")
    assert [p.email for p in store.list_subscribers()] == ["ana@example.com"]
    answer = session.post(f"{server.url}/admin/subscribers/new", allow_redirects=False,
                          timeout=10, data={**good, "tags": "vip, class", "fields": "stage=pregnant"})
    assert answer.status_code == 303 and "done=added-pending" in answer.headers["Location"]
    cy = store.get_subscriber(email="cy@example.com")
    assert (cy.status, cy.tags, cy.fields, cy.consent.source) == (
        "pending", ["vip", "class"], {"stage": "pregnant"}, "asked in class")
    confirmation = server.emails_to("cy@example.com")      # sent at once, in the background
    assert [m["Subject"] for m in confirmation] == ["Please confirm"]
    [entry] = [e for e in store.audit_log(limit=20) if e["action"] == "add subscriber"]
    assert entry["subscriber_id"] == cy.id and entry["user"] == "coach"


def test_the_campaigns_page_shows_where_people_are_and_lifts_the_brake(admin_server):
    server = admin_server()
    store = server.store()
    add_people(server.admin_drip, ("ana@example.com", "Ana"), ("bo@example.com", "Bo"))
    store.brake_campaign("course", reason="complaints reached 0.5%", details={}, now=START)
    session = logged_in(server)
    page = session.get(f"{server.url}/admin/campaigns", timeout=10).text
    course = page[page.index('id="campaign-course"'):page.index('id="campaign-welcome"')]
    assert re.findall(r'class="next-for">(\d+)<', course) == ["2", "0"]
    assert "<strong>2</strong> people wait" in course and "<svg" in course
    assert "paused</strong>: complaints reached 0.5%" in page
    confirm = session.get(f"{server.url}/admin/campaigns/course/resume", timeout=10)
    assert "Let course send again?" in confirm.text and "4 email(s) wait" in confirm.text
    answer = session.post(f"{server.url}/admin/campaigns/course/resume", allow_redirects=False,
                          data={"csrf": token_in(confirm.text)}, timeout=10)
    assert answer.status_code == 303
    assert [b["resumed_at"] for b in store.campaign_brakes()] == [START]
    assert store.audit_log(limit=1)[0]["action"] == "resume campaign"
    assert session.get(f"{server.url}/admin/campaigns/course/resume",
                       timeout=10).status_code == 404


def test_her_data_download_and_the_activity_log(admin_server):
    server = admin_server()
    store = server.store()
    people = add_people(server.admin_drip, ("ana@example.com", "Ana"), ("bo@example.com", "Bo"))
    session = logged_in(server)
    ana = people["ana@example.com"]
    answer = session.get(f"{server.url}/admin/subscribers/{ana.id}/data.json", timeout=10)
    assert answer.headers["Content-Disposition"] == f'attachment; filename="subscriber-{ana.id}.json"'
    assert json.loads(answer.text) == json.loads(json.dumps(person_data(server.admin_drip,
                                                                        "ana@example.com")))
    bo = people["bo@example.com"]
    erase = session.get(f"{server.url}/admin/subscribers/{bo.id}/erase", timeout=10)
    session.post(f"{server.url}/admin/subscribers/{bo.id}/erase", timeout=10,
                 data={"csrf": token_in(erase.text), "email": "bo@example.com"})
    log = session.get(f"{server.url}/admin/activity", timeout=10).text
    rows = re.findall(r'<td data-label="What" class="wide">([^<]+)</td>', log)
    assert rows[:3] == ["erase", "download data", "login"]
    assert f"subscriber {bo.id} (no longer on the list)" in log
    assert f'href="/admin/subscribers/{ana.id}">ana@example.com</a>' in log
    assert "bo@example.com" not in log
    assert {e["user"] for e in store.audit_log(limit=50)} == {"coach"}


def test_every_page_answers_on_both_engines(admin_server, engine):
    server = admin_server(**engine)
    people = add_people(server.admin_drip, ("ana@example.com", "Ana"), ("bo@example.com", "Bo"))
    ana = people["ana@example.com"].id
    session = logged_in(server)
    for path in ("/", "/?period=week", "/subscribers", "/subscribers?q=bo",
                 "/subscribers?segment=status:active", f"/subscribers/{ana}",
                 f"/subscribers/{ana}/data.json", "/subscribers/new", "/campaigns", "/activity"):
        answer = session.get(f"{server.url}/admin{path}", timeout=10)
        assert answer.status_code == 200, (path, answer.text[-500:])
    page = session.get(f"{server.url}/admin/subscribers/{ana}/pause", timeout=10)
    answer = session.post(f"{server.url}/admin/subscribers/{ana}/pause", allow_redirects=False,
                          data={"csrf": token_in(page.text)}, timeout=10)
    assert answer.status_code == 303 and server.store().get_subscriber(id=ana).status == "paused"
    overview = session.get(f"{server.url}/admin/", timeout=10).text
    assert re.search(r'<span class="big">1</span> paused', overview)
    assert "Signups: <strong>2</strong>" in overview
