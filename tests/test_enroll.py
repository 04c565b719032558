"""`drip enroll CAMPAIGN --segment ...`: existing subscribers into a campaign added later.
A dry run changes nothing and shows who and when; the real run enrols and schedules; a
second run enrols nobody; only active subscribers go in, and the rest are counted."""

from __future__ import annotations

import json

import pytest

from sender import subscribers
from sender.sequence import enroll
from tests.conftest import at

# Monday 2026-03-09 23:00 UTC: 19:00 in New York (after the window), 16:00 in Los Angeles.
NOW = "2026-03-09T23:00Z"
EXTRA = """window = "Mon-Fri 09:00-17:00"

[campaign]
name = "Pelvic floor basics"

[entry]
on = "confirm"

[[steps]]
id = "breathe"
template = "course/one"
subject = "Breathe first, {{ subscriber.first_name or 'friend' }}"
delay = "0"

[[steps]]
id = "relax"
template = "course/two"
subject = "Relax, then squeeze"
delay = "2d"
"""


@pytest.fixture
def people(drip, project):
    """Subscribers of every kind with the tag, added before the campaign file exists."""
    signup = at("2026-03-02T18:00Z")
    add = subscribers.add_subscriber
    add(drip, "ana@example.com", name="Ana", timezone="America/New_York", tags=["pp"], now=signup,
        confirmed=True)
    add(drip, "bo@example.com", name="Bo", tags=["pp"], now=signup, confirmed=True)
    add(drip, "fay@example.com", name="Fay", now=signup, confirmed=True)           # no tag
    add(drip, "gus@example.com", name="Gus", tags=["pp"], now=signup, confirmed=True)
    cy = add(drip, "cy@example.com", tags=["pp"], now=signup, confirmed=True).subscriber
    subscribers.pause(drip, cy, now=signup)
    add(drip, "di@example.com", tags=["pp"], now=signup)                           # pending
    ed = add(drip, "ed@example.com", tags=["pp"], now=signup, confirmed=True).subscriber
    subscribers.unsubscribe(drip, ed, now=signup)
    (project / "campaigns" / "extra.toml").write_text(EXTRA)
    drip.__dict__.pop("campaigns", None)      # the file is new: load the campaigns again
    gus = drip.store.get_subscriber(email="gus@example.com")
    enroll(drip, gus, drip.campaigns.get("extra"), at("2026-03-05T18:00Z"))   # in already
    return drip


def ledger(drip):
    return sorted((d.subscriber_id, d.campaign, d.step, d.state, d.due_at)
                  for d in drip.store.deliveries())


def enrolments(drip):
    return sorted((e.subscriber_id, e.campaign, e.enrolled_at) for e in drip.store.enrollments())


def test_dry_run_shows_who_and_when_and_changes_nothing(run, people):
    before = (ledger(people), enrolments(people))
    result = run("enroll", "extra", "--segment", "tag:pp", "--dry-run", "--now", NOW, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (ledger(people), enrolments(people)) == before
    assert data["dry_run"] is True and data["campaign"] == "extra"
    assert [(e["email"], e["step"], e["due_at"], e["local_time"], e["subject"])
            for e in data["enrolled"]] == [
        ("ana@example.com", "breathe", "2026-03-10T13:00:00Z", "2026-03-10T09:00:00-04:00",
         "Breathe first, Ana"),
        ("bo@example.com", "breathe", "2026-03-09T23:00:00Z", "2026-03-09T16:00:00-07:00",
         "Breathe first, Bo")]
    assert data["already_enrolled"] == ["gus@example.com"]
    assert data["left_out"] == {"paused": 1, "pending": 1, "unsubscribed": 1}


def test_dry_run_text_names_people_times_and_who_was_left_out(run, people):
    result = run("enroll", "extra", "--segment", "tag:pp", "--dry-run", "--now", NOW)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Would enrol 2 subscriber(s) in extra" in out
    assert "ana@example.com" in out and "Tue 2026-03-10 09:00 EDT" in out
    assert "2026-03-10 13:00 UTC" in out
    assert "bo@example.com" in out and "Mon 2026-03-09 16:00 PDT" in out
    assert "Already enrolled, left alone: 1 (gus@example.com)" in out
    assert "1 paused, 1 pending, 1 unsubscribed" in out and "only active" in out
    assert "fay@example.com" not in out
    assert "nothing was changed" in out.lower()


def test_real_run_enrols_and_schedules_and_a_second_run_enrols_nobody(run, people):
    gus = people.store.get_subscriber(email="gus@example.com")
    gus_rows = [r for r in ledger(people) if r[0] == gus.id]
    result = run("enroll", "extra", "--segment", "tag:pp", "--now", NOW, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dry_run"] is False
    assert [e["email"] for e in data["enrolled"]] == ["ana@example.com", "bo@example.com"]
    store = people.store
    for address, first, second in (("ana@example.com", "2026-03-10T13:00Z", "2026-03-12T13:00Z"),
                                   ("bo@example.com", "2026-03-09T23:00Z", "2026-03-11T23:00Z")):
        person = store.get_subscriber(email=address)
        rows = {d.step: (d.state, d.due_at) for d in store.deliveries(subscriber_id=person.id,
                                                                     campaign="extra")}
        assert rows == {"breathe": ("scheduled", at(first)), "relax": ("scheduled", at(second))}
        [enrolment] = store.enrollments(subscriber_id=person.id, campaign="extra")
        assert enrolment.enrolled_at == at(NOW)
    assert [r for r in ledger(people) if r[0] == gus.id] == gus_rows     # left alone
    for address in ("cy@example.com", "di@example.com", "ed@example.com", "fay@example.com"):
        person = store.get_subscriber(email=address)
        assert not list(store.enrollments(subscriber_id=person.id, campaign="extra"))
    after = ledger(people)
    again = run("enroll", "extra", "--segment", "tag:pp", "--now", "2026-03-10T10:00Z", "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.output)
    assert data["enrolled"] == []
    assert data["already_enrolled"] == ["ana@example.com", "bo@example.com", "gus@example.com"]
    assert ledger(people) == after
    text = run("enroll", "extra", "--segment", "tag:pp", "--now", "2026-03-10T10:00Z").output
    assert "Enrolled nobody" in text


def test_only_people_the_campaign_accepts_go_in(run, people, project):
    (project / "campaigns" / "extra.toml").write_text(
        EXTRA.replace('on = "confirm"', 'on = "tag"\ntags = ["vip"]'))
    people.__dict__.pop("campaigns", None)
    subscribers.add_subscriber(people, "bo@example.com", tags=["vip"], now=at("2026-03-09T20:00Z"))
    result = run("enroll", "extra", "--segment", "tag:pp", "--dry-run", "--now", NOW, "--json")
    data = json.loads(result.output)
    assert [e["email"] for e in data["enrolled"]] == []      # bo entered by his new tag already
    assert data["already_enrolled"] == ["bo@example.com", "gus@example.com"]
    assert data["left_out"] == {"paused": 1, "pending": 1, "unsubscribed": 1,
                                "not_accepted": 1}                     # ana: no vip tag
    text = run("enroll", "extra", "--segment", "tag:pp", "--dry-run", "--now", NOW).output
    assert "1 not accepted by the campaign's entry (tags or segment)" in text


@pytest.mark.parametrize("args, message", [
    (["nope", "--segment", "tag:pp"], "no campaign 'nope'"),
    (["confirmation", "--segment", "tag:pp"], "confirmation campaign"),
    (["extra", "--segment", "tag:pp and"], "segment"),
])
def test_bad_campaign_or_segment_exit_1(run, people, args, message):
    result = run("enroll", *args, "--now", NOW)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_segment_is_required(run, people):
    result = run("enroll", "extra")
    assert result.exit_code == 2 and "--segment" in result.output
