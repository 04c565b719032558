"""The sunset rule (issue 13, engagement): someone who has not clicked in DRIP_SUNSET_AFTER
emails sent to her gets, instead of her next one, one "still want these?" email; her other
mail waits while it is out; a click on "yes, keep them" re-engages her; no answer within
DRIP_SUNSET_WAIT stops mailing her (status ``sunset``). Through the real send path, on SQLite
and on PostgreSQL; time is passed in."""

from __future__ import annotations

import email
import email.header
import email.utils
import json
import shutil
from datetime import timedelta

import pytest

from sender import ledger, subscribers, sunset, why
from sender.dispatch import send_due
from sender.events import CLICKED, OPENED, Event, apply_events
from sender.joining import Signup
from sender.sunset_email import CAMPAIGN as ASK_CAMPAIGN
from sender.timeline import REASON_TEXT
from tests.conftest import REPO, at, base_env

SIGNUP = at("2026-03-02T18:00Z")       # a Monday
WEEKS = 8

WEEKLY = "\n".join(['window = "always"', "", "[campaign]", 'name = "Weekly"', "",
                    "[entry]", 'on = "confirm"', ""] + [
    f'[[steps]]\nid = "w{n}"\ntemplate = "course/one"\nsubject = "Week {n}"\ndelay = "1w"\n'
    for n in range(1, WEEKS + 1)])

# A small "still want these?" email for the test project (the shipped one is checked below).
ASK_TEMPLATE = ('<p>Hi {{ subscriber.first_name or "there" }}, still want these?</p>\n'
                '<p><a href="{{ keep_url }}">Yes, keep them</a></p>\n')


def week(n):
    return SIGNUP + timedelta(weeks=n)


def sunset_project(project):
    (project / "campaigns" / "course.toml").unlink()
    (project / "campaigns" / "weekly.toml").write_text(WEEKLY, encoding="utf-8")
    (project / "templates" / "emails" / "system" / "sunset.html").write_text(ASK_TEMPLATE,
                                                                             encoding="utf-8")
    return project


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, project):
    if request.param == "sqlite":
        return str(project / "drip.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make(project, database, make_drip):
    """make(**settings) -> a Drip on the weekly project with those settings."""
    sunset_project(project)

    def build(**settings):
        return make_drip(base_env(project, DRIP_DATABASE=database, **settings))

    return build


def add(drip, address="ana@example.com"):
    return subscribers.add_subscriber(drip, address, now=SIGNUP, confirmed=True).subscriber


def rows(drip, person, campaign="weekly"):
    return {d.step: d for d in drip.store.deliveries(subscriber_id=person.id, campaign=campaign)}


def asks(drip, person):
    return list(drip.store.deliveries(subscriber_id=person.id, campaign=ASK_CAMPAIGN))


def outbox_subjects(project, address="ana@example.com"):
    found = []
    for path in sorted((project / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message = email.message_from_bytes(path.read_bytes())
        if email.utils.parseaddr(message["To"])[1] == address:
            found.append(str(email.header.make_header(email.header.decode_header(
                message["Subject"]))))
    return found


def send_weeks(drip, weeks):
    for n in weeks:
        send_due(drip, now=week(n))


def click(drip, delivery, when, kind=CLICKED, n=1):
    person = drip.store.get_subscriber(id=delivery.subscriber_id)
    apply_events(drip, [Event(provider="postmark", type=kind, occurred_at=when, raw={},
                              provider_event_id=f"{kind}-{delivery.id}-{n}",
                              delivery_id=delivery.id, email=person.email)], now=when)


# --- off by default ------------------------------------------------------------------------
def test_off_by_default_changes_nothing(make, project):
    drip = make()
    assert drip.settings.sunset_after == 0
    ana = add(drip)
    send_due(drip, now=SIGNUP)
    send_weeks(drip, range(1, WEEKS + 1))
    assert [d.state for d in rows(drip, ana).values()] == ["sent"] * WEEKS
    assert asks(drip, ana) == []
    assert drip.store.get_subscriber(id=ana.id).status == "active"
    assert len(outbox_subjects(project)) == WEEKS + 1      # the welcome and every week


# --- never clicks ----------------------------------------------------------------------------
def test_one_who_never_clicks_is_asked_after_n_and_gets_nothing_after_the_wait(make, project):
    drip = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")
    ana = add(drip)
    send_due(drip, now=SIGNUP)              # the welcome email: it never counts
    send_weeks(drip, (1, 2))
    assert asks(drip, ana) == []
    report = send_due(drip, now=week(3))
    # Instead of week 3 she gets the question, once; week 3 waits for her answer.
    [ask] = asks(drip, ana)
    assert (ask.step, ask.state, ask.sent_at) == ("ask-1", "sent", week(3))
    assert report.sent == 1
    w3 = rows(drip, ana)["w3"]
    # It is looked at again daily until the wait is over.
    assert (w3.state, w3.reason, w3.due_at) == ("scheduled", ledger.SUNSET_WAIT,
                                                week(3) + sunset.RECHECK)
    assert outbox_subjects(project)[-1] != "Week 3"
    # A week on, week 4 waits too; nothing goes to her.
    assert send_due(drip, now=week(4)).sent == 0
    assert rows(drip, ana)["w4"].reason == ledger.SUNSET_WAIT
    assert send_due(drip, now=week(5) - timedelta(hours=1)).sent == 0
    # No answer within the wait: her mail stops, with the reason, and her status says why.
    send_due(drip, now=week(5))
    now = drip.store.get_subscriber(id=ana.id)
    assert now.status == "sunset"
    left = rows(drip, ana)
    assert {s: (d.state, d.reason) for s, d in left.items() if d.state != "sent"} == {
        f"w{n}": ("cancelled", ledger.SUNSET) for n in range(3, WEEKS + 1)}
    assert ledger.SUNSET in REASON_TEXT and ledger.SUNSET_WAIT in REASON_TEXT
    sent_before = len(outbox_subjects(project))
    send_weeks(drip, range(6, 20))
    assert len(outbox_subjects(project)) == sent_before == 4   # welcome, w1, w2, the question
    assert len(asks(drip, ana)) == 1
    # `drip why` says what happened.
    explained = why.explain(drip, now, now=week(6))
    assert "sunset" in explained.subscriber["status_note"]
    assert "still want" in explained.subscriber["status_note"]


def test_her_status_is_listed_and_shown_as_sunset(make):
    drip = make(DRIP_SUNSET_AFTER="1", DRIP_SUNSET_WAIT="7d")
    ana = add(drip)
    send_weeks(drip, (0, 1, 2, 3))
    assert drip.store.get_subscriber(id=ana.id).status == "sunset"
    from sender.segments import parse_segment
    segment = parse_segment("status:sunset")
    assert segment.matches(drip.store.get_subscriber(id=ana.id))
    assert drip.store.count_subscribers("sunset") == 1


# --- keep -------------------------------------------------------------------------------------
def test_a_keep_re_engages_her_and_her_sequence_resumes_counted_from_then(make, project):
    drip = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")
    ana = add(drip)
    send_weeks(drip, (0, 1, 2, 3))
    [ask] = asks(drip, ana)
    answered = week(3) + timedelta(days=2)
    assert sunset.keep(drip, ana, now=answered) == sunset.KEPT
    # Recorded once, as her click on the question; week 3 is due now, no longer waiting.
    [event] = drip.store.events(delivery_id=ask.id, type=CLICKED)
    assert event["provider"] == "drip"
    w3 = rows(drip, ana)["w3"]
    assert (w3.state, w3.reason, w3.due_at) == ("scheduled", None, answered)
    assert sunset.keep(drip, ana, now=answered + timedelta(minutes=5)) == sunset.ALREADY
    assert len(drip.store.events(delivery_id=ask.id, type=CLICKED)) == 1
    assert send_due(drip, now=answered).sent == 1
    assert outbox_subjects(project)[-1] == "Week 3"
    send_weeks(drip, (4,))
    assert rows(drip, ana)["w4"].state == "sent"
    # Counted from her answer: week 3 and week 4 went unclicked, so week 5 asks again.
    send_weeks(drip, (5,))
    assert [a.step for a in asks(drip, ana)] == ["ask-1", "ask-2"]
    assert rows(drip, ana)["w5"].reason == ledger.SUNSET_WAIT
    assert drip.store.get_subscriber(id=ana.id).status == "active"


def test_a_click_on_any_email_before_n_resets_the_count(make):
    drip = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")
    ana = add(drip)
    send_weeks(drip, (0, 1, 2))
    click(drip, rows(drip, ana)["w2"], week(2) + timedelta(hours=3))
    send_weeks(drip, (3, 4))
    assert [rows(drip, ana)[s].state for s in ("w3", "w4")] == ["sent", "sent"]
    assert asks(drip, ana) == []
    send_weeks(drip, (5,))                   # week 3 and 4 unclicked since: asked now
    assert [a.step for a in asks(drip, ana)] == ["ask-1"]


def test_an_open_never_counts(make):
    drip = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")
    ana = add(drip)
    send_weeks(drip, (0, 1, 2))
    for n, step in enumerate(("w1", "w2")):
        click(drip, rows(drip, ana)[step], week(2) + timedelta(hours=1), kind=OPENED, n=n)
    send_weeks(drip, (3,))
    assert [a.step for a in asks(drip, ana)] == ["ask-1"]


def test_a_click_elsewhere_while_the_question_is_out_answers_it_a_tracked_click_on_it_does_not(
        make):
    """A provider's tracked click on the question itself may be a mail scanner following the
    link: only our own "yes" counts there. A click on any of her other emails is her: her
    waiting mail goes at its next look (at most a day later), in its order."""
    drip = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")
    ana, bea = add(drip), add(drip, "bea@example.com")
    send_weeks(drip, (0, 1, 2, 3))
    [ana_ask], [_] = asks(drip, ana), asks(drip, bea)
    click(drip, ana_ask, week(3) + timedelta(minutes=1))
    click(drip, rows(drip, bea)["w2"], week(3) + timedelta(hours=1))
    send_due(drip, now=week(3) + timedelta(days=1, hours=1))
    assert rows(drip, bea)["w3"].state == "sent"
    assert rows(drip, ana)["w3"].state == "scheduled"
    send_weeks(drip, (4, 5))
    assert drip.store.get_subscriber(id=ana.id).status == "sunset"
    assert drip.store.get_subscriber(id=bea.id).status == "active"
    assert [rows(drip, bea)[s].state for s in ("w4", "w5")] == ["sent", "scheduled"]
    assert rows(drip, bea)["w5"].reason == ledger.SUNSET_WAIT   # w3, w4 unclicked: asked again
    assert [a.step for a in asks(drip, bea)] == ["ask-1", "ask-2"]


def test_broadcast_emails_count_and_the_confirmation_and_welcome_never_do(make, project):
    drip = make(DRIP_SUNSET_AFTER="3", DRIP_SUNSET_WAIT="14d")
    ana = add(drip)
    send_weeks(drip, (0, 1))
    # A broadcast row to her, as a broadcast writes it, sent between week 1 and week 2.
    ledger.schedule(drip.store, [{"subscriber_id": ana.id, "campaign": "broadcast.news",
                                  "step": "send", "due_at": week(1) + timedelta(days=3)}],
                    now=week(1))
    shutil.copy(REPO / "templates" / "emails" / "_macros.html",
                project / "templates" / "emails" / "_macros.html")   # a Markdown email uses it
    (project / "broadcasts").mkdir(exist_ok=True)
    (project / "broadcasts" / "news.md").write_text(
        '+++\nsubject = "News"\npreheader = "Short"\n+++\n\nHi {{ subscriber.first_name }}.\n',
        encoding="utf-8")
    send_due(drip, now=week(1) + timedelta(days=3))
    assert list(drip.store.deliveries(subscriber_id=ana.id, campaign="broadcast.news"))[0].state \
        == "sent"
    send_weeks(drip, (2, 3))                 # w1, the broadcast, w2: three; asked at week 3
    assert [a.step for a in asks(drip, ana)] == ["ask-1"]
    assert rows(drip, ana)["w3"].reason == ledger.SUNSET_WAIT


def test_a_run_that_stops_after_writing_the_question_leaves_it_to_the_next_run_once(make,
                                                                                    project):
    """A run that ends (or dies) between writing her question and sending it: the next run
    sends it, once; runs after that write and send nothing more for her."""
    drip = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")
    ana = add(drip)
    send_weeks(drip, (0, 1, 2))
    batches = []
    report = send_due(drip, now=week(3), stop=lambda: bool(batches.append(1) or len(batches) > 1))
    assert report.sent == 0
    [ask] = asks(drip, ana)
    assert (ask.step, ask.state) == ("ask-1", "scheduled")
    assert rows(drip, ana)["w3"].reason == ledger.SUNSET_WAIT
    again = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")   # another process
    assert send_due(again, now=week(3) + timedelta(minutes=5)).sent == 1
    assert send_due(drip, now=week(3) + timedelta(minutes=10)).sent == 0
    assert [(a.step, a.state) for a in asks(drip, ana)] == [("ask-1", "sent")]
    assert outbox_subjects(project).count("Do you still want these emails?") == 1


# --- back again -------------------------------------------------------------------------------
def test_a_signup_with_fresh_consent_brings_her_back_like_a_resubscribe(make):
    drip = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")
    ana = add(drip)
    send_weeks(drip, (0, 1, 2, 3, 5))
    assert drip.store.get_subscriber(id=ana.id).status == "sunset"
    back = week(6)
    assert subscribers.sign_up(drip, Signup(email="ana@example.com"), ip="127.0.0.1",
                               now=back) is not None
    pending = drip.store.get_subscriber(id=ana.id)
    assert (pending.status, pending.consent.at) == ("pending", back)
    subscribers.confirm(drip, pending, now=back)
    assert drip.store.get_subscriber(id=ana.id).status == "active"
    # Her sequence continues where it stopped; she is not asked again at once.
    w3 = rows(drip, ana)["w3"]
    assert (w3.state, w3.reason) == ("scheduled", None)
    send_due(drip, now=w3.due_at)
    assert rows(drip, ana)["w3"].state == "sent"
    assert len(asks(drip, ana)) == 1


def test_the_coach_adding_her_again_does_not_bring_her_back(make):
    drip = make(DRIP_SUNSET_AFTER="1", DRIP_SUNSET_WAIT="7d")
    ana = add(drip)
    send_weeks(drip, (0, 1, 2, 3))
    assert drip.store.get_subscriber(id=ana.id).status == "sunset"
    result = subscribers.add_subscriber(drip, "ana@example.com", now=week(4), confirmed=True)
    assert result.subscriber.status == "sunset" and "sign up again" in result.note


# --- the dry run and the ledger's vocabulary ----------------------------------------------------
def test_the_dry_run_says_what_would_happen_and_changes_nothing(make):
    drip = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")
    ana = add(drip)
    send_weeks(drip, (0, 1, 2))
    report = send_due(drip, now=week(3), dry_run=True)
    [item] = [i for i in report.would_send if i["step"] == "w3"]
    assert item["would"].startswith("ask")
    assert asks(drip, ana) == [] and rows(drip, ana)["w3"].reason is None


def test_the_reason_codes_are_known_to_the_ledger():
    assert ledger.SUNSET in ledger.REASONS and ledger.SUNSET_WAIT in ledger.REASONS


# --- the command line -------------------------------------------------------------------------
SUNSET_ON = {"DRIP_SUNSET_AFTER": "2", "DRIP_SUNSET_WAIT": "14d"}


def test_simulate_pins_one_who_never_clicks_across_a_dst_change(project, run):
    sunset_project(project)
    args = ("simulate", "--signup", "2026-03-02 10:00", "--timezone", "America/Los_Angeles",
            "--json")
    with_clicks = json.loads(run(*args, extra_env=SUNSET_ON).output)
    never = json.loads(run(*args, "--no-clicks", extra_env=SUNSET_ON).output)
    # Clocks go forward on 8 March: 10:00 in Los Angeles is 18:00Z before, 17:00Z after.
    assert [(r["campaign"], r["step"], r["due_at"], r["state"]) for r in never] == [
        ("confirmation", "confirm", "2026-03-02T18:00:00Z", "scheduled"),
        ("welcome", "hello", "2026-03-02T18:00:00Z", "scheduled"),
        ("weekly", "w1", "2026-03-09T17:00:00Z", "scheduled"),
        ("weekly", "w2", "2026-03-16T17:00:00Z", "scheduled"),
        (ASK_CAMPAIGN, "ask-1", "2026-03-23T17:00:00Z", "scheduled"),
        *[("weekly", f"w{n}", due, "cancelled") for n, due in (
            (3, "2026-03-23T17:00:00Z"), (4, "2026-03-30T17:00:00Z"),
            (5, "2026-04-06T17:00:00Z"), (6, "2026-04-13T17:00:00Z"),
            (7, "2026-04-20T17:00:00Z"), (8, "2026-04-27T17:00:00Z"))]]
    assert [r["step"] for r in with_clicks] == ["confirm", "hello"] + [f"w{n}" for n in
                                                                      range(1, WEEKS + 1)]
    # Off (the default), --no-clicks changes nothing.
    assert json.loads(run(*args, "--no-clicks").output) == with_clicks
    text = run(*args[:-1], "--no-clicks", extra_env=SUNSET_ON).output
    assert "STATE" in text and "ask-1" in text and "cancelled" in text


def test_the_list_the_export_and_why_show_her_status(project, run, make_drip):
    sunset_project(project)
    drip = make_drip(base_env(project, **SUNSET_ON))
    ana = add(drip)
    add(drip, "bea@example.com")
    send_weeks(drip, (0, 1, 2, 3))
    click(drip, rows(drip, drip.store.get_subscriber(email="bea@example.com"))["w2"],
          week(3) + timedelta(hours=1))
    send_weeks(drip, (5,))
    listed = json.loads(run("subscribers", "list", "--segment", "status:sunset", "--json",
                            extra_env=SUNSET_ON).output)
    assert [p["email"] for p in listed] == ["ana@example.com"]
    assert listed[0]["status"] == "sunset"
    exported = [json.loads(line) for line in run("subscribers", "export", "--format", "jsonl",
                                                  extra_env=SUNSET_ON).output.splitlines()]
    assert {p["email"]: p["status"] for p in exported} == {"ana@example.com": "sunset",
                                                           "bea@example.com": "active"}
    why_text = run("why", "ana@example.com", extra_env=SUNSET_ON).output
    assert "still want these?" in why_text and REASON_TEXT[ledger.SUNSET] in why_text
    assert drip.store.get_subscriber(id=ana.id).status == "sunset"


# --- the shipped email --------------------------------------------------------------------------
def test_the_shipped_question_passes_drip_check_and_carries_what_it_must(shipped, make_drip):
    from sender.checks import check_project
    from sender.compose import compose
    from sender.sunset_email import QUESTION

    drip = make_drip(base_env(shipped, **SUNSET_ON))
    assert [p for p in check_project(drip) if "sunset" in str(p.file)] == []
    ana = add(drip)
    message = compose(drip, ana, QUESTION, QUESTION.step("ask-1"), now=week(3), delivery_id=7)
    keep = "https://mail.example.com/keep/"
    for part in (message.html, message.text):
        assert keep in part
        assert "123 Example St, Redmond, WA 98052, USA" in part
        assert "https://mail.example.com/unsubscribe/" in part
    assert "Yes, keep them coming" in message.html and "Yes, keep them coming" in message.text
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.stream == "marketing"
    again = compose(drip, ana, QUESTION, QUESTION.step("ask-1"), now=week(3), delivery_id=7)
    assert (again.html, again.text) == (message.html, message.text)   # the same bytes on a retry


def test_drip_check_reports_a_missing_question_only_when_the_rule_is_on(project, make_drip):
    from sender.checks import check_project

    assert not [p for p in check_project(make_drip(base_env(project)))
                if "sunset" in p.message]
    problems = check_project(make_drip(base_env(project, **SUNSET_ON)))
    assert any("system/sunset" in p.message for p in problems), problems


def test_the_report_names_the_question_rather_than_calling_it_removed(make):
    from sender.report import build as report
    drip = make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d")
    add(drip)
    send_due(drip, now=SIGNUP)
    send_weeks(drip, (1, 2, 3))
    [entry] = [c for c in report(drip)["campaigns"] if c["id"] == sunset.CAMPAIGN]
    assert "no longer" not in entry["name"] and "still want" in entry["name"].lower()
    assert [(s["step"], s["sent"]) for s in entry["steps"]] == [("ask-1", 1)]
    assert all(s["subject"] != "(step removed)" for s in entry["steps"])


def test_a_wait_of_nothing_is_refused(make):
    from sender.errors import ConfigError
    with pytest.raises(ConfigError, match="DRIP_SUNSET_WAIT"):
        make(DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="0")
