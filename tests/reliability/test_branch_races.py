"""Two real `drip send` processes at once over a campaign with a branch (``then`` with
``then_when``), a condition and A/B subjects (``journeys.py``), on SQLite and PostgreSQL,
through a loopback Postmark, with every step due at the same moment: each email reaches the
provider once, each branch is followed once (she is in the target campaign once, and the
rest of the campaign she left never reaches her, though the two processes claim her steps in
parallel), and everyone who stays gets the rest."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from sender import ledger, subscribers
from tests.conftest import at, base_env
from tests.reliability import journeys
from tests.reliability.recorder import PostmarkRecorder

SIGNUP = at("2026-03-02T18:00Z")
PEOPLE = 40


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, project):
    if request.param == "sqlite":
        return str(project / "drip.db")
    return request.getfixturevalue("postgres_url")


def test_two_senders_follow_each_branch_once(project, make_drip, database, capsys):
    for other in ("course", "welcome"):
        (project / "campaigns" / f"{other}.toml").unlink()
    journeys.install(project)
    recorder = PostmarkRecorder(latency=0.01)
    env = base_env(project, DRIP_DATABASE=database, DRIP_PROVIDER="postmark",
                   POSTMARK_SERVER_TOKEN="pm-two-branches", POSTMARK_API_URL=recorder.url,
                   DRIP_MIN_GAP="0", DRIP_SEND_WINDOW="always",
                   PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    drip = make_drip(env)
    people = [subscribers.add_subscriber(drip, f"p{n}@example.com", now=SIGNUP, confirmed=True,
                                         fields=journeys.fields(n)).subscriber
              for n in range(PEOPLE)]

    def two_senders(now):
        command = [sys.executable, "-m", "sender", "send", "--now", now.isoformat()]
        procs = [subprocess.Popen(command, env=env, cwd=project, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err

    try:
        moment = SIGNUP + timedelta(minutes=1)
        for _ in range(4):          # steps waiting for a branch are looked at again later
            two_senders(moment)
            moment += timedelta(hours=2)
    finally:
        recorder.close()
    drip = make_drip(env)
    received, subjects = dict(recorder.received), dict(recorder.subjects)
    counts = journeys.tally(drip, received, subjects, {})
    with capsys.disabled():
        print(f"\ntwo senders (branches, {'postgresql' if '://' in database else 'sqlite'}): "
              f"received={sum(received.values())} "
              f"duplicated={sum(1 for n in received.values() if n > 1)} {counts}")
    assert all(n == 1 for n in received.values())
    assert {k: counts[k] for k in journeys.FAILURES} == dict.fromkeys(journeys.FAILURES, 0)
    postpartum = [p for n, p in enumerate(people) if n % 2]
    assert counts["branched"] == len(postpartum)
    for person in people:
        mine = {d.step: d for d in drip.store.deliveries(subscriber_id=person.id)}
        got = {step for step, d in mine.items() if received.get(str(d.id))}
        if person in postpartum:
            assert got == {journeys.STEP_AB, journeys.STEP_BRANCH, "o1", "o2"}, got
            assert mine[journeys.STEP_LAST].reason == ledger.BRANCHED
        else:
            assert got == {journeys.STEP_WHEN, journeys.STEP_AB, journeys.STEP_BRANCH,
                           journeys.STEP_LAST}, got
