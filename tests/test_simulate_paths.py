"""`drip simulate` with the stage fields, a field set later and a tag added later, on the
shipped campaigns: each email with its time (local and UTC) and what becomes of it. The paths
are pinned, and checked against the real engine (the store, `drip send` at each due time)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from sender import subscribers
from sender.backup import migrate_database
from sender.cli import cli
from sender.dispatch import send_due
from tests.conftest import at, base_env
from tests.content.conftest import needs_shipped

pytestmark = needs_shipped

SIGNUP = ("--signup", "2026-03-02 10:00", "--timezone", "America/Los_Angeles")  # Monday; DST on 8 March
GLUTE = ["why-flat", "alignment", "walking", "foundation", "hip-thrust", "penguin",
         "wall-single-leg-deadlift", "elevated-clamshell", "form-check-and-routine"]


@pytest.fixture
def simulate(shipped, monkeypatch):
    env = base_env(shipped)
    migrate_database(env["DRIP_DATABASE"])
    monkeypatch.chdir(shipped)

    def run(*args, signup=SIGNUP, code=0):
        result = CliRunner().invoke(cli, ["simulate", *signup, *args, "--json"], env=env,
                                    catch_exceptions=False)
        assert result.exit_code == code, result.output
        return json.loads(result.output) if code == 0 else result.output

    return run


def path(rows):
    """(campaign/step, her local time, UTC, outcome) for each email."""
    return [(f"{r['campaign']}/{r['step']}", r["local_time"][:16], r["due_at"], r["outcome"])
            for r in rows]


def weekly(campaign, steps, first_local, first_utc, outcome="sent", start=0):
    """Rows a week apart from a first time on her wall clock (08:00 PDT = 15:00Z)."""
    from datetime import datetime

    local, utc = datetime.fromisoformat(first_local), datetime.fromisoformat(first_utc[:-1])
    return [(f"{campaign}/{s}", (local + timedelta(weeks=n)).isoformat()[:16],
             (utc + timedelta(weeks=n)).isoformat() + "Z", outcome)
            for n, s in enumerate(steps, start=start)]


START = [("confirmation/confirm", "2026-03-02T10:00", "2026-03-02T18:00:00Z", "sent"),
         ("welcome/guide", "2026-03-02T10:00", "2026-03-02T18:00:00Z", "sent")]


def test_a_reader_who_tells_nothing_gets_todays_sequence(simulate):
    rows = simulate()
    assert path(rows) == START + [
        ("glute-progression/why-flat", "2026-03-05T10:00", "2026-03-05T18:00:00Z", "sent"),
        *weekly("glute-progression", GLUTE[1:], "2026-03-12T10:00", "2026-03-12T17:00:00Z")]


def test_a_pregnant_reader_waits_for_six_weeks_after_her_due_date(simulate):
    rows = simulate("--field", "stage=pregnant", "--field", "due_date=2026-06-01")
    assert path(rows) == START + [
        ("pregnancy/pelvic-floor", "2026-03-05T10:00", "2026-03-05T18:00:00Z", "sent"),
        ("pregnancy/walking", "2026-03-12T10:00", "2026-03-12T17:00:00Z", "sent"),   # after the change
        ("pregnancy/glutes", "2026-03-19T10:00", "2026-03-19T17:00:00Z", "sent"),
        # 13 July is six weeks after 1 June, a Monday: from 08:00, the window's opening.
        *weekly("glute-progression", GLUTE, "2026-07-13T08:00", "2026-07-13T15:00:00Z")]


def test_her_birth_date_set_later_moves_it_and_ends_the_pregnancy_sequence(simulate):
    rows = simulate("--field", "stage=pregnant", "--field", "due_date=2026-06-01",
                    "--set-later", "2026-05-13 birth_date=2026-05-12",
                    signup=("--signup", "2026-05-04 10:00", "--timezone", "America/Los_Angeles"))
    goal = "goal reached: exit = 'field:birth_date'"
    assert [(p, outcome) for p, _l, _u, outcome in path(rows)][:5] == [
        ("confirmation/confirm", "sent"), ("welcome/guide", "sent"),
        ("pregnancy/pelvic-floor", "sent"), ("pregnancy/walking", "cancelled"),
        ("pregnancy/glutes", "cancelled")]
    assert {r["reason"] for r in rows if r["outcome"] == "cancelled"} == {goal}
    # Six weeks after 12 May is Tuesday 23 June.
    assert path(rows)[5:] == weekly("glute-progression", GLUTE, "2026-06-23T08:00",
                                    "2026-06-23T15:00:00Z")


def test_two_weeks_after_birth_she_waits_four_weeks(simulate):
    rows = simulate("--field", "stage=postpartum", "--field", "birth_date=2026-02-16")
    assert path(rows) == START + weekly("glute-progression", GLUTE, "2026-03-30T08:00",
                                        "2026-03-30T15:00:00Z")


def test_six_months_after_birth_she_starts_at_once_like_anyone_without_a_date(simulate):
    assert path(simulate("--field", "birth_date=2025-09-01")) == path(simulate())


def test_a_reader_who_becomes_a_client_in_week_three_gets_no_more(simulate):
    rows = simulate("--tag-later", "2026-03-20 client")
    assert path(rows) == START + [
        ("glute-progression/why-flat", "2026-03-05T10:00", "2026-03-05T18:00:00Z", "sent"),
        *weekly("glute-progression", GLUTE[1:3], "2026-03-12T10:00", "2026-03-12T17:00:00Z"),
        *weekly("glute-progression", GLUTE[3:], "2026-03-26T10:00", "2026-03-26T17:00:00Z",
                "cancelled")]
    assert {r["reason"] for r in rows if r["outcome"] == "cancelled"} == {
        "goal reached: exit = 'tag:client'"}


def test_the_text_shows_both_clocks_the_outcome_and_what_happened_later(shipped, monkeypatch):
    env = base_env(shipped)
    migrate_database(env["DRIP_DATABASE"])
    monkeypatch.chdir(shipped)
    result = CliRunner().invoke(cli, ["simulate", *SIGNUP, "--tag-later", "2026-03-20 client"],
                                env=env, catch_exceptions=False)
    assert result.exit_code == 0
    assert "Thu 2026-03-26 10:00 PDT" in result.output and "2026-03-26 17:00 UTC" in result.output
    assert "cancelled" in result.output and "goal reached: exit = 'tag:client'" in result.output
    assert "later: Fri 2026-03-20 00:00 PDT (2026-03-20 07:00 UTC): tag client" in result.output


@pytest.mark.parametrize("args,code,words", [
    (("--field", "due_date=2026-13-01"), 1, "field 'due_date'"),
    (("--field", "stage=soon"), 1, "pregnant or postpartum"),
    (("--set-later", "2026-05-20 birth_date=2026-06-01"), 1, "in the future"),
    (("--set-later", "birth_date=2026-05-18"), 2, "give a time"),
    (("--tag-later", "client"), 2, "give a time"),
])
def test_bad_inputs_say_which_and_why(simulate, args, code, words):
    output = simulate(*args, code=code)
    assert words in output and "Traceback" not in output


# --- the same path through the engine -------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, shipped, make_drip):
    database = str(shipped / "drip.db") if request.param == "sqlite" \
        else request.getfixturevalue("postgres_url")
    return make_drip(base_env(shipped, DRIP_DATABASE=database))


def engine_path(drip, fields, later):
    """Her path through the store and `drip send` at every due time: (campaign/step, state,
    sent time or due time), in time order; ``later``: (time, fields, tags) added then."""
    later = list(later)
    person = subscribers.add_subscriber(drip, "pia@example.com", now=at("2026-03-02T18:00Z"),
                                        confirmed=True, fields=fields).subscriber
    moment = at("2026-03-02T18:00Z")
    while True:
        due = drip.store.next_due()
        if later and (due is None or later[0][0] <= due):
            when, changed, tags = later.pop(0)
            subscribers.add_subscriber(drip, "pia@example.com", now=when, fields=changed,
                                       tags=tags)
            continue
        if due is None:
            break
        moment = max(due, moment)
        send_due(drip, now=moment)
    stored = sorted(drip.store.deliveries(subscriber_id=person.id),
                    key=lambda d: (d.sent_at or d.due_at, d.campaign))
    return [(f"{d.campaign}/{d.step}", d.state, (d.sent_at or d.due_at).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for d in stored]


def simulated_path(rows):
    # Added as confirmed, she gets no confirmation email; a cancelled email keeps its planned
    # time in both.
    return [(f"{r['campaign']}/{r['step']}", r["outcome"], r["due_at"]) for r in rows
            if r["campaign"] != "confirmation"]


def test_the_simulated_path_is_what_the_engine_does(engine, simulate):
    """A pregnant reader with a due date, her birth date set later, a client in week 3 of the
    glute progression: the store and `drip send` at every due time give the same path."""
    rows = simulate("--field", "stage=pregnant", "--field", "due_date=2026-06-01",
                    "--set-later", "2026-05-20 birth_date=2026-05-18",
                    "--tag-later", "2026-07-15 client")
    simulated = simulated_path(rows)
    assert engine_path(engine, {"stage": "pregnant", "due_date": "2026-06-01"},
                       [(at("2026-05-20T07:00Z"), {"birth_date": "2026-05-18"}, ()),
                        (at("2026-07-15T07:00Z"), {}, ("client",))]) == simulated
    assert [s for s, state, _ in simulated if state == "cancelled"] == [
        f"glute-progression/{s}" for s in GLUTE[3:]]


def test_the_minimum_gap_moves_an_email_in_the_simulation_as_in_the_engine(shipped, make_drip,
                                                                             simulate):
    # The first glute email two hours after the welcome email: the minimum gap (20 hours)
    # holds it until the next morning in her window.
    path_ = shipped / "campaigns" / "glute-progression.toml"
    path_.write_text(path_.read_text(encoding="utf-8").replace('delay_without_date = "3d"',
                                                               'delay_without_date = "2h"'),
                     encoding="utf-8")
    rows = simulate()
    [first] = [r for r in rows if r["step"] == "why-flat"]
    assert (first["due_at"], first["outcome"]) == ("2026-03-03T16:00:00Z", "sent")
    assert "DRIP_MIN_GAP" in first["reason"]
    assert engine_path(make_drip(base_env(shipped)), {}, []) == simulated_path(rows)
