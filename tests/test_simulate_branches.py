"""`drip simulate` follows a step's branch (``then``, ``then_when``) as the send path does: at
the moment the branching step is sent she enters the target campaign (in her own zone and its
window), the rest of the campaign she leaves is cancelled with the branch's words, ``then =
"end"`` ends it, and ``then_when`` is read from her record at that moment. The path is pinned,
and checked against the real engine (the store and `drip send` at each due time) on SQLite and
PostgreSQL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sender.backup import migrate_database
from sender.cli import cli
from tests.conftest import at, base_env
from tests.test_branches import branch_project
from tests.test_simulate_paths import engine_path, simulated_path

SIGNUP = ("--signup", "2026-03-02 10:00", "--timezone", "America/Los_Angeles")  # 18:00Z
TAKEN = "moved into next when start/b was sent (then = 'next', then_when = 'field:stage=postpartum')"


def simulate(project, monkeypatch, *args, json_out=True, **env):
    environ = base_env(project, **env)
    migrate_database(environ["DRIP_DATABASE"])
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["simulate", *SIGNUP, *args, *(["--json"] if json_out else [])],
                                env=environ, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if json_out else result.output


def brief(rows):
    return [(f"{r['campaign']}/{r['step']}", r["due_at"], r["outcome"]) for r in rows
            if r["campaign"] != "confirmation"]


def test_a_branch_taken_moves_her_at_the_send_and_cancels_the_rest(project, monkeypatch):
    branch_project(project)
    rows = simulate(project, monkeypatch, "--field", "stage=postpartum")
    assert brief(rows) == [
        ("start/a", "2026-03-02T19:00:00Z", "sent"),
        ("start/b", "2026-03-03T19:00:00Z", "sent"),
        # n1 is due at b's send; the minimum gap (20h) moves it to Wednesday 09:00 in its window.
        ("next/n1", "2026-03-04T17:00:00Z", "sent"),
        ("start/c", "2026-03-04T19:00:00Z", "cancelled"),
        ("next/n2", "2026-03-05T19:00:00Z", "sent")]
    by_step = {r["step"]: r for r in rows}
    assert by_step["c"]["reason"] == TAKEN
    assert by_step["b"]["branch"] == {"taken": "branched", "then": "next",
                                      "then_when": "field:stage=postpartum", "message": TAKEN}
    assert by_step["a"]["branch"] is None and by_step["n1"]["branch"] is None
    text = simulate(project, monkeypatch, "--field", "stage=postpartum", json_out=False)
    assert f"then: {TAKEN}" in text


def test_a_branch_not_taken_keeps_her_in_the_campaign(project, monkeypatch):
    branch_project(project)
    rows = simulate(project, monkeypatch, "--field", "stage=pregnant")
    assert [(s, o) for s, _, o in brief(rows)] == [("start/a", "sent"), ("start/b", "sent"),
                                                   ("start/c", "sent")]
    branch = {r["step"]: r for r in rows}["b"]["branch"]
    assert branch["taken"] == "branch_not_taken"
    assert branch["message"].startswith("not taken: she did not match then_when when start/b")


def test_then_when_is_read_from_her_record_when_the_step_is_sent(project, monkeypatch):
    branch_project(project)
    # Pregnant at signup, postpartum on Tuesday morning, before b goes at 11:00: she moves.
    rows = simulate(project, monkeypatch, "--field", "stage=pregnant",
                    "--set-later", "2026-03-03 08:00 stage=postpartum")
    assert {r["step"]: r["outcome"] for r in rows} == {
        "confirm": "sent", "a": "sent", "b": "sent", "c": "cancelled", "n1": "sent", "n2": "sent"}
    # Set after b went: too late, she stays.
    rows = simulate(project, monkeypatch, "--field", "stage=pregnant",
                    "--set-later", "2026-03-03 12:00 stage=postpartum")
    assert {r["step"] for r in rows} == {"confirm", "a", "b", "c"}


def test_then_end_ends_her_sequence(project, monkeypatch):
    branch_project(project, then="end", then_when="")
    rows = simulate(project, monkeypatch)
    assert [(s, o) for s, _, o in brief(rows)] == [("start/a", "sent"), ("start/b", "sent"),
                                                   ("start/c", "cancelled")]
    ended = "sequence ended when start/b was sent (then = 'end')"
    by_step = {r["step"]: r for r in rows}
    assert by_step["c"]["reason"] == ended and by_step["b"]["branch"]["taken"] == "ended"


# --- the same path through the engine --------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def database(request, project):
    return (str(project / "drip.db") if request.param == "sqlite"
            else request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize("case", ["taken", "not-taken", "set-later", "end", "same-moment"])
def test_the_simulated_branch_is_what_the_engine_does(case, database, project, make_drip,
                                                      monkeypatch):
    fields, later, args, env = {"stage": "postpartum"}, [], ["--field", "stage=postpartum"], {}
    if case == "not-taken":
        fields, args = {"stage": "pregnant"}, ["--field", "stage=pregnant"]
    if case == "set-later":
        fields = {"stage": "pregnant"}
        later = [(at("2026-03-03T16:00Z"), {"stage": "postpartum"}, ())]
        args = ["--field", "stage=pregnant", "--set-later", "2026-03-03 08:00 stage=postpartum"]
    if case == "end":
        branch_project(project, then="end", then_when="")
    else:
        branch_project(project)
    if case == "same-moment":
        # c is due with b: the send path holds it while b's branch is settled (BRANCH_PENDING),
        # then it goes a few minutes later, as here.
        path_ = project / "campaigns" / "start.toml"
        text = path_.read_text(encoding="utf-8")
        path_.write_text(text[::-1].replace('"d1" = yaled', '"0" = yaled', 1)[::-1],
                         encoding="utf-8")
        fields, args, env = {"stage": "pregnant"}, ["--field", "stage=pregnant"], {
            "DRIP_MIN_GAP": "0"}
    rows = simulate(project, monkeypatch, *args, **env)
    drip = make_drip(base_env(project, DRIP_DATABASE=database, **env))
    assert engine_path(drip, fields, later) == simulated_path(rows)
    if case == "same-moment":
        c = {r["step"]: r for r in rows}["c"]
        assert (c["outcome"], c["due_at"]) == ("sent", "2026-03-03T19:05:00Z")
