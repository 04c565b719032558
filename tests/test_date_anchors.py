"""Date anchors (``after = "field:birth_date"``): a step counts from a date of the
subscriber's, on her wall clock, never before her enrolment; without the date it counts as
before (``delay_without_date``). When a date is set or changed later her rows are re-planned
at once (``sequence.replan``): a sent step never again, nothing in a burst, and a date long
past puts her at the step she had reached, now. On real SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sender import subscribers
from sender.campaigns import load_campaigns
from sender.config import Settings
from sender.dispatch import send_due
from sender.drip import Drip
from sender.errors import CampaignError
from sender.schedule import ALWAYS, StepTiming, due_times, parse_delay, parse_window
from tests.conftest import FIXTURES, at, base_env

LA = ZoneInfo("America/Los_Angeles")
SIGNUP = at("2026-03-02T18:00Z")          # Monday 10:00 in Los Angeles; clocks go forward 8 March
STEPS = ("one", "two", "three")

PROGRESS = """
window = "{window}"

[campaign]
name = "Progress"

[entry]
on = "confirm"

[[steps]]
id = "one"
template = "course/one"
subject = "One"
after = ["field:birth_date", "field:due_date"]
delay = "6w"
delay_without_date = "3d"

[[steps]]
id = "two"
template = "course/two"
subject = "Two"
delay = "1w"

[[steps]]
id = "three"
template = "course/two"
subject = "Three"
delay = "1w"
"""


def progress_project(project, window="always"):
    (project / "campaigns" / "course.toml").unlink()
    (project / "campaigns" / "progress.toml").write_text(PROGRESS.format(window=window),
                                                         encoding="utf-8")
    return project


def timings():
    return [StepTiming("one", parse_delay("6w"), True, ("birth_date", "due_date"),
                       parse_delay("3d")),
            StepTiming("two", parse_delay("1w")), StepTiming("three", parse_delay("1w"))]


def utc_text(times):
    return [t.strftime("%Y-%m-%dT%H:%MZ") for t in times]


# --- the arithmetic ----------------------------------------------------------------------------
@pytest.mark.parametrize("dates,expected", [
    # Born 25 January: six weeks later is Sunday 8 March, from the start of that day on her
    # clock (the clocks go forward at 02:00 that day); the next steps chain a week apart on
    # the wall clock, so at midnight Pacific daylight time.
    ({"birth_date": date(2026, 1, 25)}, ["2026-03-08T08:00Z", "2026-03-15T07:00Z", "2026-03-22T07:00Z"]),
    # Two weeks after the birth when she signs up: she waits four weeks.
    ({"birth_date": date(2026, 2, 16)}, ["2026-03-30T07:00Z", "2026-04-06T07:00Z", "2026-04-13T07:00Z"]),
    # Six months after: she starts as a reader without a date does (never later), three days
    # after confirming, then weekly at that hour of her day.
    ({"birth_date": date(2025, 9, 1)}, ["2026-03-05T18:00Z", "2026-03-12T17:00Z", "2026-03-19T17:00Z"]),
    # Only a due date: six weeks after it.
    ({"due_date": date(2026, 4, 1)}, ["2026-05-13T07:00Z", "2026-05-20T07:00Z", "2026-05-27T07:00Z"]),
    # Both: the birth date wins.
    ({"due_date": date(2026, 4, 1), "birth_date": date(2026, 3, 20)},
     ["2026-05-01T07:00Z", "2026-05-08T07:00Z", "2026-05-15T07:00Z"]),
    # Neither: today's sequence, three days after enrolment and weekly.
    ({}, ["2026-03-05T18:00Z", "2026-03-12T17:00Z", "2026-03-19T17:00Z"]),
])
def test_a_step_counts_from_her_date_on_her_wall_clock(dates, expected):
    assert utc_text(due_times(timings(), SIGNUP, LA, ALWAYS, dates)) == expected


def test_the_send_window_applies_after_the_date():
    window = parse_window("Mon-Fri 08:00-18:00")
    # 6 weeks after Tue 27 January is Tue 10 March, 00:00: into the window at 08:00 local.
    times = due_times(timings(), SIGNUP, LA, window, {"birth_date": date(2026, 1, 27)})
    assert [t.astimezone(LA).strftime("%a %m-%d %H:%M") for t in times] == [
        "Tue 03-10 08:00", "Tue 03-17 08:00", "Tue 03-24 08:00"]


# --- the campaign file -------------------------------------------------------------------------
def test_the_file_takes_one_date_field_or_a_list(project):
    campaigns = load_campaigns(progress_project(project) / "campaigns")
    one = campaigns.get("progress").step("one")
    assert one.anchors == ("birth_date", "due_date") and one.fallback_delay == parse_delay("3d")
    assert campaigns.get("progress").anchor_fields == ("birth_date", "due_date")
    assert campaigns.get("welcome").anchor_fields == ()


@pytest.mark.parametrize("lines,words", [
    ('after = "field:"', "is not a date field"),
    ('after = ["enrol", "field:birth_date"]', "is not a date field"),
    ("after = []", 'use "previous"'),
    ('after = ["field:due_date", "field:due_date"]', "given twice"),
    ('after = "birthday"', "is not a date field"),
    ('after = "field:birth_date"\ndelay_without_date = "soon"', "invalid delay"),
    ('delay_without_date = "3d"', "goes with a date anchor"),
])
def test_a_wrong_anchor_names_the_file_and_the_key(project, lines, words):
    path = project / "campaigns" / "course.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('delay = "1w"', f'delay = "1w"\n{lines}', 1), encoding="utf-8")
    with pytest.raises(CampaignError) as caught:
        load_campaigns(project / "campaigns")
    [problem] = caught.value.problems
    assert "course.toml: steps[2]." in problem and words in problem


def _old_fingerprint(campaign):
    parts = [str(campaign.window), campaign.entry_on, ",".join(campaign.entry_tags)]
    parts += [f"{s.id}|{s.delay}|{s.after_enrolment}" for s in campaign.steps]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def test_the_fingerprint_sees_anchors_conditions_and_goals_and_nothing_else_changes(project):
    campaigns = load_campaigns(project / "campaigns")
    # A file without the new keys keeps the fingerprint it had (no needless re-check).
    assert all(c.fingerprint() == _old_fingerprint(c) for c in campaigns)
    path = project / "campaigns" / "course.toml"
    original = path.read_text(encoding="utf-8")
    seen = {campaigns.get("course").fingerprint()}
    for edit in (original.replace('name = "Course"', 'name = "Course"\nexit = "tag:client"'),
                 original.replace('delay = "1w"', 'delay = "1w"\nwhen = "field:stage=postpartum"'),
                 original.replace('delay = "1w"', 'delay = "1w"\nafter = "field:birth_date"')):
        path.write_text(edit, encoding="utf-8")
        seen.add(load_campaigns(project / "campaigns").get("course").fingerprint())
    assert len(seen) == 4


# --- on the store ------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def database(request, project):
    if request.param == "sqlite":
        return str(project / "drip.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def anchored(project, make_drip, database):
    progress_project(project)
    return make_drip(base_env(project, DRIP_DATABASE=database, DRIP_SEND_WINDOW="always"))


def rows(drip, person):
    return {d.step: d for d in drip.store.deliveries(subscriber_id=person.id, campaign="progress")}


def schedule(drip, person):
    found = rows(drip, person)
    return [(s, found[s].state, found[s].due_at.strftime("%Y-%m-%dT%H:%MZ")) for s in STEPS]


def add(drip, now, **fields):
    return subscribers.add_subscriber(drip, "ana@example.com", now=now, confirmed=True,
                                      fields=fields).subscriber


def test_a_birth_date_set_later_moves_her_sequence_at_once(anchored):
    drip = anchored
    ana = add(drip, SIGNUP, stage="pregnant", due_date="2026-06-01")
    assert schedule(drip, ana) == [("one", "scheduled", "2026-07-13T07:00Z"),
                                   ("two", "scheduled", "2026-07-20T07:00Z"),
                                   ("three", "scheduled", "2026-07-27T07:00Z")]
    add(drip, at("2026-05-20T18:00Z"), birth_date="2026-05-18")
    assert schedule(drip, ana) == [("one", "scheduled", "2026-06-29T07:00Z"),
                                   ("two", "scheduled", "2026-07-06T07:00Z"),
                                   ("three", "scheduled", "2026-07-13T07:00Z")]
    [enrolment] = [e for e in drip.store.enrollments(subscriber_id=ana.id) if e.campaign == "progress"]
    assert enrolment.shift_seconds == 0


def test_a_date_long_past_starts_her_at_the_step_she_reached_now_not_in_a_burst(anchored):
    drip = anchored
    ana = add(drip, SIGNUP, due_date="2026-09-01")           # expecting: "one" in October
    assert schedule(drip, ana)[0] == ("one", "scheduled", "2026-10-13T07:00Z")
    assert send_due(drip, now=SIGNUP).sent == 1              # the welcome email
    moment = at("2026-04-01T20:00Z")
    add(drip, moment, birth_date="2025-06-01")               # a correction: ten months ago
    # By the date, all three were due weeks ago. Not skipped, not all at once: the first
    # step now, the rest a week apart from it.
    assert schedule(drip, ana) == [("one", "scheduled", "2026-04-01T20:00Z"),
                                   ("two", "scheduled", "2026-04-08T20:00Z"),
                                   ("three", "scheduled", "2026-04-15T20:00Z")]
    assert send_due(drip, now=moment).sent == 1
    assert send_due(drip, now=moment + timedelta(days=6)).sent == 0


def test_a_date_that_does_not_move_her_time_changes_nothing(anchored):
    drip = anchored
    ana = add(drip, SIGNUP)                                  # no dates: "one" on 5 March
    add(drip, at("2026-03-03T20:00Z"), birth_date="2025-06-01")
    assert schedule(drip, ana)[0] == ("one", "scheduled", "2026-03-05T18:00Z")


def test_after_emails_went_a_new_date_never_resends_nor_rushes_the_next(anchored):
    drip = anchored
    ana = add(drip, SIGNUP)
    send_due(drip, now=SIGNUP)                               # the welcome email
    assert send_due(drip, now=at("2026-03-05T18:00Z")).sent == 1
    assert send_due(drip, now=at("2026-03-12T17:00Z")).sent == 1
    # On 13 March the coach adds a birth date of 1 January: by it, "three" was due on the 16th
    # counted from her enrolment, and "two" a week earlier. Three stays a week after two went.
    add(drip, at("2026-03-13T18:00Z"), birth_date="2026-01-01")
    assert schedule(drip, ana) == [("one", "sent", "2026-03-05T18:00Z"),
                                   ("two", "sent", "2026-03-12T17:00Z"),
                                   ("three", "scheduled", "2026-03-19T17:00Z")]
    assert send_due(drip, now=at("2026-03-18T17:00Z")).sent == 0
    assert send_due(drip, now=at("2026-03-19T17:00Z")).sent == 1
    assert {d.state for d in rows(drip, ana).values()} == {"sent"}


def test_resuming_after_her_date_passed_in_a_pause_starts_at_that_step(anchored):
    drip = anchored
    ana = add(drip, SIGNUP, birth_date="2026-02-16")         # "one" on 30 March
    send_due(drip, now=SIGNUP)                               # the welcome email
    subscribers.pause(drip, ana, now=at("2026-03-20T18:00Z"))
    moment = at("2026-04-20T18:00Z")                         # three weeks after "one" was due
    subscribers.resume(drip, drip.store.get_subscriber(id=ana.id), now=moment)
    # "one" is due (it goes now); the rest chain from now, not from 30 March, so "two"
    # and "three" do not follow it at once.
    assert schedule(drip, ana) == [("one", "scheduled", "2026-03-30T07:00Z"),
                                   ("two", "scheduled", "2026-04-27T18:00Z"),
                                   ("three", "scheduled", "2026-05-04T18:00Z")]
    send_due(drip, now=moment)
    assert [s for s, d in rows(drip, ana).items() if d.state == "sent"] == ["one"]


def test_an_import_with_enroll_plans_each_person_from_her_own_dates(anchored, tmp_path):
    from sender import lists

    drip = anchored
    path = tmp_path / "list.csv"
    path.write_text("email,birth_date,due_date\nold@example.com,2025-09-01,\n"
                    "new@example.com,2026-02-16,\nnone@example.com,,\n"
                    "due@example.com,,2026-04-01\n", encoding="utf-8")
    lists.import_csv(drip, path, consent="old list", now=SIGNUP, enroll_in=("progress",))
    first = {p.email: rows(drip, p)["one"].due_at.strftime("%Y-%m-%dT%H:%MZ")
             for p in drip.store.list_subscribers()}
    assert first == {"old@example.com": "2026-03-05T18:00Z", "new@example.com": "2026-03-30T07:00Z",
                     "none@example.com": "2026-03-05T18:00Z", "due@example.com": "2026-05-13T07:00Z"}


# --- the property: random date changes and sends ---------------------------------------------------
def _valid_date(kind, moment, offset):
    today = moment.date()
    if kind == "birth_date":
        return (today - timedelta(days=offset % 300)).isoformat()
    return (today + timedelta(days=offset % 120 - 60)).isoformat()


changes = st.lists(st.tuples(st.integers(0, 70 * 24), st.sampled_from(["birth_date", "due_date"]),
                             st.integers(0, 400)), max_size=5)


@settings(max_examples=int(os.environ.get("DRIP_ANCHOR_EXAMPLES", "25")))
@given(first=st.sampled_from([{}, {"due_date": "2026-05-01"}, {"birth_date": "2026-02-20"}]),
       later=changes)
def test_re_planning_never_sends_a_step_twice_or_in_a_burst(first, later):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        shutil.copytree(FIXTURES / "project", root)
        drip = Drip(Settings.from_env(base_env(progress_project(root, "Mon-Fri 08:00-18:00"))))
        try:
            _run_and_check(drip, root, first, later)
        finally:
            drip.close()


def _run_and_check(drip, root, first, later):
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True,
                                     fields=first).subscriber
    events = sorted((SIGNUP + timedelta(hours=h), kind, offset) for h, kind, offset in later)
    moment, horizon = SIGNUP, SIGNUP + timedelta(days=400)
    while moment < horizon:
        while events and events[0][0] <= moment:
            when, kind, offset = events.pop(0)
            subscribers.add_subscriber(drip, "ana@example.com", now=when,
                                       fields={kind: _valid_date(kind, when, offset)})
        send_due(drip, now=moment)
        upcoming = [e[0] for e in events[:1]] + [drip.store.next_due() or horizon]
        moment = max(min(upcoming), moment + timedelta(minutes=1))
    found = rows(drip, ana)
    assert set(found) == set(STEPS)
    assert {d.state for d in found.values()} == {"sent"}, {s: d.state for s, d in found.items()}
    sent = sorted(found.values(), key=lambda d: d.sent_at)
    assert [d.step for d in sent] == list(STEPS)                  # in order
    assert all(d.sent_at >= SIGNUP for d in sent)
    for before, after in zip(sent, sent[1:], strict=False):       # never a burst: days apart
        assert after.sent_at - before.sent_at >= timedelta(days=5), (before, after)
    outbox = [p.name for p in (root / "outbox").glob("*.eml")] if (root / "outbox").exists() else []
    assert len(outbox) == len(set(outbox))


def test_a_date_stored_before_the_rules_counts_as_not_given_and_never_breaks_sending(anchored):
    drip = anchored
    from sender.models import Consent

    person = drip.store.add_subscriber("old@example.com", name="", timezone=None, tags=[],
                                       fields={"birth_date": "last spring"}, status="pending",
                                       consent=Consent(source="old"), now=SIGNUP)
    subscribers.confirm(drip, person, now=SIGNUP)
    assert schedule(drip, person)[0] == ("one", "scheduled", "2026-03-05T18:00Z")
    assert send_due(drip, now=SIGNUP).sent == 1
    assert send_due(drip, now=at("2026-03-05T18:00Z")).sent == 1
