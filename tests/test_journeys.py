"""Per-step conditions, goals that end a sequence and A/B subjects, through the real send
path on SQLite and on PostgreSQL (issue 13): what is skipped or cancelled is recorded with
its reason by the ledger, the next step keeps its time, a goal is honoured whichever way it
is reached, and each subscriber gets one subject for good."""

from __future__ import annotations

import email
import email.header
import email.utils
from datetime import timedelta

import jinja2
import pytest

from sender import ledger, report, step_render, step_rules, subscribers
from sender.compose import compose, template_context
from sender.dispatch import send_due
from sender.events import CLICKED, OPENED, Event, apply_events
from sender.timeline import REASON_TEXT
from sender.timeline import timeline as timeline_of
from tests.conftest import at, base_env
from tests.journey_fixture import DUE, SIGNUP, journey_project


@pytest.fixture(params=["sqlite", "postgres"])
def journey_env(request, project):
    journey_project(project)
    database = (str(project / "drip.db") if request.param == "sqlite"
                else request.getfixturevalue("postgres_url"))
    return base_env(project, DRIP_DATABASE=database)


@pytest.fixture
def jdrip(journey_env, make_drip):
    return make_drip(journey_env)


def add(drip, address, *, stage=None, name=None, tags=()):
    fields = {"stage": stage} if stage else {}
    return subscribers.add_subscriber(drip, address, now=SIGNUP, confirmed=True, fields=fields,
                                      name=name, tags=list(tags)).subscriber


def rows(drip, subscriber, campaign="journey"):
    return {d.step: d for d in drip.store.deliveries(subscriber_id=subscriber.id,
                                                     campaign=campaign)}


def sent_subjects(project):
    """{address: {step: subject}} of the emails in the outbox."""
    found = {}
    for path in sorted((project / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
        step = message["Message-ID"].split(".")[1]          # <campaign.step.uid@domain>
        found.setdefault(email.utils.parseaddr(message["To"])[1], {})[step] = subject
    return found


def click(drip, delivery, n, when, kind=CLICKED):
    person = drip.store.get_subscriber(id=delivery.subscriber_id)
    event = Event(provider="postmark", type=kind, occurred_at=when, raw={"n": n},
                  provider_event_id=f"{kind}-{n}", delivery_id=delivery.id, email=person.email)
    return apply_events(drip, [event], now=when)


# --- per-step conditions --------------------------------------------------------------------
def test_a_step_she_does_not_match_is_skipped_with_its_reason_and_the_next_keeps_its_time(
        jdrip, project):
    ana, bea = add(jdrip, "ana@example.com", stage="pregnant"), add(jdrip, "bea@example.com",
                                                                     stage="postpartum")
    planned = {d.step: d.due_at for d in rows(jdrip, ana).values()}
    assert planned == {step: at(due) for step, due in DUE.items()}
    assert send_due(jdrip, now=at(DUE["intro"])).sent == 2
    result = send_due(jdrip, now=at(DUE["pregnant"]))
    # One email each: her stage's variant. The step skipped beside it used no minimum gap.
    assert (result.sent, result.skipped, result.deferred) == (2, 2, 0)
    for person, went, skipped in ((ana, "pregnant", "postpartum"), (bea, "postpartum", "pregnant")):
        mine = rows(jdrip, person)
        assert mine[went].state == "sent"
        assert (mine[skipped].state, mine[skipped].reason) == ("skipped", ledger.CONDITION_NOT_MET)
        assert str(jdrip.campaigns.get("journey").step(skipped).when) in mine[skipped].last_error
        # Skipped counts as settled: the next step is still due when it always was.
        assert (mine["booking"].state, mine["booking"].due_at) == ("scheduled", at(DUE["booking"]))
    assert sent_subjects(project) == {
        "ana@example.com": {"intro": "Intro", "pregnant": "For your pregnancy"},
        "bea@example.com": {"intro": "Intro", "postpartum": "After the birth"}}
    assert "condition" in REASON_TEXT[ledger.CONDITION_NOT_MET]


def test_a_condition_on_a_click_is_answered_for_the_whole_batch_at_once(jdrip, monkeypatch):
    people = [add(jdrip, f"p{n}@example.com", stage="postpartum") for n in range(12)]
    for due in ("intro", "pregnant", "booking"):
        send_due(jdrip, now=at(DUE[due]))
    clicked = people[::3]
    for n, person in enumerate(clicked):
        click(jdrip, rows(jdrip, person)["booking"], n, at(DUE["booking"]) + timedelta(hours=1))
    click(jdrip, rows(jdrip, people[1])["booking"], 99, at(DUE["booking"]), kind=OPENED)
    asked = []
    real = jdrip.store.clicked_among
    monkeypatch.setattr(jdrip.store, "clicked_among",
                        lambda *a, **k: asked.append(a) or real(*a, **k))
    result = send_due(jdrip, now=at(DUE["last"]))
    assert (result.sent, result.skipped) == (len(clicked), len(people) - len(clicked))
    assert len(asked) == 1                  # one look-up for the batch, not one per person
    for person in people:
        last = rows(jdrip, person)["last"]
        if person in clicked:
            assert last.state == "sent"
        else:   # an open is not a click (Apple Mail opens every email it downloads)
            assert (last.state, last.reason) == ("skipped", ledger.CONDITION_NOT_MET)


# --- goals that end a sequence ------------------------------------------------------------
def test_a_tag_that_reaches_the_goal_cancels_her_pending_steps_at_once(jdrip, project):
    ana, bea = add(jdrip, "ana@example.com", stage="pregnant"), add(jdrip, "bea@example.com")
    send_due(jdrip, now=at(DUE["intro"]))
    later = at(DUE["intro"]) + timedelta(hours=3)
    subscribers.add_subscriber(jdrip, "ana@example.com", now=later, tags=["client"],
                               confirmed=True)
    mine = rows(jdrip, ana)
    assert mine["intro"].state == "sent"
    for step in ("pregnant", "postpartum", "booking", "last"):
        assert (mine[step].state, mine[step].reason) == ("cancelled", ledger.GOAL_REACHED)
        assert "tag:client" in mine[step].last_error
    assert {d.state for s, d in rows(jdrip, bea).items() if s != "intro"} == {"scheduled"}
    send_due(jdrip, now=at(DUE["last"]) + timedelta(days=1))
    assert sent_subjects(project)["ana@example.com"] == {"intro": "Intro"}
    assert "goal" in REASON_TEXT[ledger.GOAL_REACHED]


def test_a_click_that_reaches_the_goal_cancels_at_once_and_an_open_does_not(
        journey_env, make_drip, project):
    (project / "campaigns" / "journey.toml").write_text(
        (project / "campaigns" / "journey.toml").read_text().replace(
            'exit = "tag:client"', 'exit = "clicked:journey/intro"'), encoding="utf-8")
    drip = make_drip(journey_env)
    ana, bea = add(drip, "ana@example.com"), add(drip, "bea@example.com")
    send_due(drip, now=at(DUE["intro"]))
    when = at(DUE["intro"]) + timedelta(minutes=5)
    click(drip, rows(drip, bea)["intro"], 1, when, kind=OPENED)
    click(drip, rows(drip, ana)["intro"], 2, when)
    assert {(d.state, d.reason) for s, d in rows(drip, ana).items() if s != "intro"} == {
        ("cancelled", ledger.GOAL_REACHED)}
    assert {d.state for s, d in rows(drip, bea).items() if s != "intro"} == {"scheduled"}


def test_a_goal_reached_another_way_is_honoured_in_the_send_path(jdrip, project):
    ana = add(jdrip, "ana@example.com", stage="pregnant")
    add(jdrip, "bea@example.com", stage="pregnant")
    send_due(jdrip, now=at(DUE["intro"]))
    # A change that no hook saw (a script writing the store directly).
    jdrip.store.update_subscriber(ana.id, now=at(DUE["intro"]), tags=["client"])
    result = send_due(jdrip, now=at(DUE["pregnant"]))
    assert result.sent == 1 and result.cancelled >= 1
    mine = rows(jdrip, ana)
    for step in ("pregnant", "postpartum", "booking", "last"):
        assert (mine[step].state, mine[step].reason) == ("cancelled", ledger.GOAL_REACHED)
    assert sent_subjects(project) == {
        "ana@example.com": {"intro": "Intro"},
        "bea@example.com": {"intro": "Intro", "pregnant": "For your pregnancy"}}


# --- A/B subjects -------------------------------------------------------------------------
def test_each_subscriber_gets_one_subject_stable_across_renders_and_sends(jdrip, project,
                                                                          monkeypatch):
    people = [add(jdrip, f"p{n}@example.com", name=f"Pat{n} Lee") for n in range(30)]
    campaign = jdrip.campaigns.get("journey")
    booking = campaign.step("booking")
    expected = {}
    for person in people:
        index = step_rules.variant_index("journey", "booking", person.id, 2)
        expected[person.email] = ["Book a call", f"Your next step, Pat{person.email[1:-12]}"][index]
    assert len(set(expected.values())) > 2 and "Book a call" in expected.values()
    # The same bytes on every render: a retry or a recovery rebuilds the very same request.
    first = [compose(jdrip, p, campaign, booking, now=SIGNUP, delivery_id=7) for p in people]
    compiled = []
    real = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, *a, **k: compiled.append(a) or real(self, *a, **k))
    again = [compose(jdrip, p, campaign, booking, now=SIGNUP, delivery_id=7) for p in people]
    assert compiled == []               # each variant was rendered once, then only filled in
    assert step_render.stats(jdrip.templates).emails_per_person == 0
    for one, two in zip(first, again, strict=True):
        assert one.to_mime().as_bytes() == two.to_mime().as_bytes()
        assert one.message_id == two.message_id and one.subject == expected[str(one.to.addr_spec)]
    for due in ("intro", "pregnant", "booking"):
        send_due(jdrip, now=at(DUE[due]))
    got = {to: subjects["booking"] for to, subjects in sent_subjects(project).items()}
    assert got == {p.email: expected[p.email] for p in people}


def test_the_report_shows_each_variant_with_its_counts_and_a_significance_note(jdrip):
    people = [add(jdrip, f"p{n}@example.com") for n in range(40)]
    for due in ("intro", "pregnant", "booking"):
        send_due(jdrip, now=at(DUE[due]))
    when = at(DUE["booking"]) + timedelta(hours=2)
    clicks = {"A": 0, "B": 0}
    for n, person in enumerate(people[:10]):
        delivery = rows(jdrip, person)["booking"]
        click(jdrip, delivery, n, when)
        clicks["AB"[step_rules.variant_index("journey", "booking", person.id, 2)]] += 1
    built = report.build(jdrip)
    [journey] = [c for c in built["campaigns"] if c["id"] == "journey"]
    [booking] = [s for s in journey["steps"] if s["step"] == "booking"]
    variants = {v["variant"]: v for v in booking["variants"]}
    assert sum(v["sent"] for v in variants.values()) == 40
    assert {k: v["clicked"] for k, v in variants.items()} == clicks
    assert variants["A"]["subject"] == "Book a call"
    assert not booking["ab"]["meaningful"]
    shown = report.text(built)
    assert "not yet meaningful" in shown
    for key, row in variants.items():
        assert f"{key}  {row['sent']} sent" in shown and f"{row['clicked']} clicked" in shown
    intro = next(s for s in journey["steps"] if s["step"] == "intro")
    assert "variants" not in intro
    page = report.html(built)
    assert "booking: A/B subjects" in page and "not yet meaningful" in page
    assert f"<td>{clicks['A']}/{variants['A']['sent']} = " in page


def test_what_drip_shows_before_sending_is_her_own_subject(jdrip):
    people = [add(jdrip, f"p{n}@example.com") for n in range(8)]
    campaign = jdrip.campaigns.get("journey")
    for person in people:
        mine = step_rules.subject_for(campaign, campaign.step("booking"), person)
        shown = template_context(jdrip, person, campaign, campaign.step("booking"))["subject"]
        assert shown == jinja2.Template(mine).render(subscriber={"first_name": ""})
        entries = timeline_of(jdrip, person, now=SIGNUP).entries
        assert next(e.subject for e in entries if e.step == "booking") == shown


def test_a_dry_run_says_which_step_would_be_skipped_or_cancelled_and_changes_nothing(jdrip):
    add(jdrip, "ana@example.com", stage="pregnant")
    bea = add(jdrip, "bea@example.com", stage="pregnant", tags=["client"])
    send_due(jdrip, now=at(DUE["intro"]))
    before = {d.id: (d.state, d.reason) for d in jdrip.store.deliveries()}
    result = send_due(jdrip, now=at(DUE["pregnant"]), dry_run=True)
    would = {(i["to"], i["step"]): i["would"] for i in result.would_send}
    assert would[("ana@example.com", "pregnant")] == "send"
    assert would[("ana@example.com", "postpartum")] == (
        "skip: condition not met: when = 'not field:stage=pregnant'")
    assert not any(k[0] == "bea@example.com" for k in would)   # her goal ended it already
    assert {d.id: (d.state, d.reason) for d in jdrip.store.deliveries()} == before
    assert {d.reason for s, d in rows(jdrip, bea).items()} == {ledger.GOAL_REACHED}
