"""`drip why` (sender/why.py): for each email of one person, what happened or will happen and
why, read from what is stored, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sender import broadcast_runs as runs
from sender import broadcasts, dispatch, ledger, subscribers
from sender.events import Event, apply_events, record_unsubscribe
from sender.timeline import REASON_TEXT
from sender.why import PLANNED, explain
from tests.broadcast_support import person, write_broadcast
from tests.conftest import at

NOW = at("2026-03-02T18:00Z")          # a Monday: 13:00 in New York, before its DST change
NY = "America/New_York"


@pytest.fixture(params=["sqlite", "postgres"])
def engine_env(request, env):
    if request.param == "sqlite":
        return env
    return {**env, "DRIP_DATABASE": request.getfixturevalue("postgres_url")}


def add_step(project, text):
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def emails(why):
    return {(e.campaign, e.step): e for e in why.emails}


def stored(drip, person):
    return {(d.campaign, d.step): d for d in drip.store.deliveries(subscriber_id=person.id)}


def test_a_sent_email_shows_how_she_entered_the_providers_answer_and_its_events(engine_env,
                                                                                make_drip):
    drip = make_drip(engine_env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, name="Ana",
                                     timezone="Europe/Madrid", confirmed=True).subscriber
    dispatch.send_due(drip, now=NOW)
    row = stored(drip, ana)[("welcome", "hello")]
    for kind, minutes in (("delivered", 1), ("opened", 30), ("clicked", 31)):
        drip.store.add_event(provider="outbox", type=kind, occurred_at=NOW + timedelta(minutes=minutes),
                             received_at=NOW + timedelta(minutes=minutes), raw={},
                             delivery_id=row.id, subscriber_id=ana.id)
    why = explain(drip, drip.store.get_subscriber(id=ana.id), now=NOW + timedelta(hours=1))

    assert why.subscriber["status"] == "active" and why.subscriber["zone"] == "Europe/Madrid"
    hello = emails(why)[("welcome", "hello")]
    assert (hello.state, hello.delivery_id, hello.planned) == ("sent", row.id, False)
    assert hello.subject == "Welcome, Ana"
    assert hello.provider == {"name": "outbox", "message_id": row.provider_message_id,
                              "attempts": row.attempts, "claimed": hello.provider["claimed"],
                              "handed": hello.provider["handed"], "sent": hello.provider["sent"]}
    assert row.provider_message_id and row.attempts == 1
    assert hello.provider["handed"].utc == row.handed_at and hello.provider["claimed"].utc == row.claimed_at
    assert hello.provider["sent"].utc == row.sent_at == NOW
    assert hello.provider["sent"].local.utcoffset() == timedelta(hours=1)     # Madrid in March
    assert [(e["type"], e["provider"], e["at"].utc) for e in hello.events] == [
        ("delivered", "outbox", NOW + timedelta(minutes=1)),
        ("opened", "outbox", NOW + timedelta(minutes=30)),
        ("clicked", "outbox", NOW + timedelta(minutes=31))]
    assert hello.min_gap["applies"] is False           # the welcome email is transactional

    course = {c.id: c for c in why.campaigns}["course"]
    assert course.entry["enrolled"].utc == NOW
    assert course.entry["rule"] == "enters when she confirms"
    assert "the moment she confirmed" in course.entry["note"]
    assert course.window == "Mon-Fri 09:00-17:00"
    one = emails(why)[("course", "one")]
    assert one.state == "scheduled" and one.due.utc == stored(drip, ana)[("course", "one")].due_at
    assert one.provider is None and one.events == [] and one.min_gap["applies"] is True


def test_a_skipped_step_gives_its_code_in_words_and_the_condition(engine_env, make_drip, project):
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        'delay = "3d"', 'delay = "3d"\nwhen = "field:stage=pregnant"'), encoding="utf-8")
    drip = make_drip(engine_env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, timezone=NY,
                                     confirmed=True).subscriber
    dispatch.send_due(drip, now=NOW + timedelta(days=3))
    row = stored(drip, ana)[("course", "one")]
    assert (row.state, row.reason) == ("skipped", ledger.CONDITION_NOT_MET)

    one = emails(explain(drip, ana, now=NOW + timedelta(days=3)))[("course", "one")]
    assert (one.state, one.reason) == ("skipped", ledger.CONDITION_NOT_MET)
    assert one.reason_text == REASON_TEXT[ledger.CONDITION_NOT_MET]
    assert one.message == row.last_error and "field:stage=pregnant" in one.message
    assert one.condition == "field:stage=pregnant"


def test_an_email_deferred_for_the_minimum_gap_says_so_and_names_the_one_before(engine_env,
                                                                                make_drip):
    drip = make_drip({**engine_env, "DRIP_MIN_GAP": "5d"})
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, timezone=NY,
                                     confirmed=True).subscriber
    dispatch.send_due(drip, now=NOW)
    dispatch.send_due(drip, now=NOW + timedelta(days=3))
    rows = stored(drip, ana)
    assert (rows[("course", "one")].state, rows[("course", "one")].reason) == ("scheduled",
                                                                              ledger.MIN_GAP)
    why = explain(drip, ana, now=NOW + timedelta(days=3))
    one = emails(why)[("course", "one")]
    assert one.reason == ledger.MIN_GAP and one.reason_text == REASON_TEXT[ledger.MIN_GAP]
    assert one.min_gap["applies"] is True and one.min_gap["deferred"] is True
    assert why.min_gap == "120h"
    before = one.min_gap["previous"]
    assert (before["campaign"], before["step"]) == ("welcome", "hello")
    assert before["sent"].utc == rows[("welcome", "hello")].sent_at
    assert one.due.utc == rows[("course", "one")].due_at == at("2026-03-09T13:00Z")


def test_a_paused_subscriber_has_her_emails_held(engine_env, make_drip):
    drip = make_drip(engine_env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    dispatch.send_due(drip, now=NOW)
    subscribers.pause(drip, ana, now=NOW + timedelta(hours=2))
    why = explain(drip, drip.store.get_subscriber(id=ana.id), now=NOW + timedelta(hours=3))
    assert why.subscriber["status"] == "paused"
    assert why.subscriber["paused"].utc == NOW + timedelta(hours=2)
    assert "held" in why.subscriber["status_note"]
    pending = [e for e in why.emails if e.state == "scheduled"]
    assert [(e.campaign, e.step) for e in pending] == [("course", "one"), ("course", "two")]
    assert all(e.why.startswith("held while she is paused") for e in pending)


def test_an_unsubscribed_subscriber_has_her_pending_emails_cancelled_and_none_planned(
        engine_env, make_drip, project):
    drip = make_drip(engine_env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    dispatch.send_due(drip, now=NOW)
    left = NOW + timedelta(days=1)
    record_unsubscribe(drip, drip.store.get_subscriber(id=ana.id), now=left)
    add_step(project, '\n[[steps]]\nid = "three"\ntemplate = "course/two"\nsubject = "Three"\n'
                      'preheader = "p"\ndelay = "1w"\n')
    drip = make_drip(engine_env)            # reads the edited campaign file
    why = explain(drip, drip.store.get_subscriber(id=ana.id), now=left)
    assert why.subscriber["status"] == "unsubscribed"
    assert why.subscriber["withdrawn"].utc == left
    assert [e["type"] for e in why.subscriber["status_events"]] == ["unsubscribed"]
    cancelled = [e for e in why.emails if e.state == "cancelled"]
    assert [(e.campaign, e.step) for e in cancelled] == [("course", "one"), ("course", "two")]
    assert {e.reason for e in cancelled} == {ledger.UNSUBSCRIBED}
    assert {e.reason_text for e in cancelled} == {REASON_TEXT[ledger.UNSUBSCRIBED]}
    assert not [e for e in why.emails if e.planned]       # nothing more will come


def test_a_step_added_to_the_file_is_planned_with_local_and_utc_times_across_dst(
        engine_env, make_drip, project):
    drip = make_drip(engine_env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, timezone=NY,
                                     confirmed=True).subscriber
    add_step(project, '\n[[steps]]\nid = "three"\ntemplate = "course/two"\nsubject = "Three"\n'
                      'preheader = "p"\ndelay = "1w"\n')
    before = stored(drip, ana)
    drip = make_drip(engine_env)
    why = explain(drip, ana, now=NOW)
    one, two, three = (emails(why)[("course", s)] for s in ("one", "two", "three"))
    # Stored rows: the local hour stays 13:00 while UTC moves by the clock change (March 8).
    assert one.due.utc == before[("course", "one")].due_at == at("2026-03-05T18:00Z")
    assert two.due.utc == before[("course", "two")].due_at == at("2026-03-12T17:00Z")
    assert one.due.local.hour == two.due.local.hour == 13
    assert not one.planned and not two.planned
    # The new step has no row: its time is planned from the file as it is now, and says so.
    assert three.planned and three.state == PLANNED and three.delivery_id is None
    assert three.due.utc == at("2026-03-19T17:00Z")
    assert three.due.local.isoformat() == "2026-03-19T13:00:00-04:00"
    assert "campaign file as it is now" in three.why
    assert [e.step for e in why.emails if e.campaign == "course"] == ["one", "two", "three"]
    assert stored(drip, ana) == before                     # nothing written


def test_campaign_and_step_pick_one_email(engine_env, make_drip):
    drip = make_drip(engine_env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    why = explain(drip, ana, now=NOW, campaign="course", step="two")
    assert [(e.campaign, e.step) for e in why.emails] == [("course", "two")]
    assert [c.id for c in why.campaigns] == ["course"]


def test_a_broadcast_says_who_it_was_for_and_when_her_row_was_written(engine_env, make_drip,
                                                                      project):
    write_broadcast(project, segment="tag:local")
    drip = make_drip(engine_env)
    bo = person(drip, "bo@example.com", timezone=NY, tags=["local"])
    runs.send_now(drip, broadcasts.load(drip.settings, "2026-03-10-workshop"), now=NOW)
    dispatch.send_due(drip, now=NOW)
    why = explain(drip, bo, now=NOW)
    [part] = why.campaigns
    assert part.id == "broadcast.2026-03-10-workshop" and part.entry["enrolled"] is None
    assert "tag:local" in part.entry["rule"] and "2026-03-02T18:00:00Z" in part.entry["rule"]
    [email] = why.emails
    row = stored(drip, bo)[(part.id, "send")]
    assert (email.state, email.written.utc) == ("sent", row.created_at)
    assert email.provider["message_id"] == row.provider_message_id
    assert email.min_gap["applies"] is True


def test_a_goal_reached_cancels_with_its_code_in_words(engine_env, make_drip, project):
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        'name = "Course"', 'name = "Course"\nexit = "tag:client"'), encoding="utf-8")
    drip = make_drip(engine_env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, tags=["client"], confirmed=True)
    why = explain(drip, drip.store.get_subscriber(id=ana.id), now=NOW)
    assert {c.id: c.goal for c in why.campaigns}["course"] == "tag:client"
    cancelled = [e for e in why.emails if e.campaign == "course"]
    assert {(e.state, e.reason) for e in cancelled} == {("cancelled", ledger.GOAL_REACHED)}
    assert {e.reason_text for e in cancelled} == {REASON_TEXT[ledger.GOAL_REACHED]}
    assert all("tag:client" in e.message for e in cancelled)


def test_a_bounce_suppresses_her_and_says_when_and_from_whom(engine_env, make_drip):
    drip = make_drip(engine_env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    dispatch.send_due(drip, now=NOW)
    hello = stored(drip, ana)[("welcome", "hello")]
    bounced_at = NOW + timedelta(minutes=5)
    apply_events(drip, [Event(provider="outbox", type="bounced", occurred_at=bounced_at,
                              delivery_id=hello.id)], now=bounced_at)
    why = explain(drip, drip.store.get_subscriber(id=ana.id), now=bounced_at)
    assert why.subscriber["status"] == "bounced"
    assert [(e["type"], e["provider"], e["at"].utc) for e in why.subscriber["status_events"]] == [
        ("bounced", "outbox", bounced_at)]
    assert "suppressed" in why.subscriber["status_note"]
    first = emails(why)[("welcome", "hello")]
    assert [e["type"] for e in first.events] == ["bounced"]
    course = [e for e in why.emails if e.campaign == "course"]
    assert {(e.state, e.reason) for e in course} == {("cancelled", ledger.SUPPRESSED)}
    assert {e.reason_text for e in course} == {REASON_TEXT[ledger.SUPPRESSED]}
