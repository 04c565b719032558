"""Two real `drip send` processes at once when many people fall due for the "still want
these?" email (the sunset rule, issue 13), on SQLite and on PostgreSQL, through a loopback
Postmark: each person's question reaches the provider exactly once, and none of her waiting
mail goes while it is out. Then a second pair of runs after the wait: no email goes at all,
and every one of them is sunset exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from sender import ledger, subscribers
from sender.sunset_email import CAMPAIGN as ASK_CAMPAIGN
from tests.conftest import base_env
from tests.reliability.recorder import PostmarkRecorder
from tests.test_sunset import SIGNUP, sunset_project, week

PEOPLE = 40


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, project):
    if request.param == "sqlite":
        return str(project / "drip.db")
    return request.getfixturevalue("postgres_url")


def test_two_senders_send_each_question_once(project, make_drip, database, capsys):
    sunset_project(project)
    recorder = PostmarkRecorder(latency=0.01)
    env = base_env(project, DRIP_DATABASE=database, DRIP_PROVIDER="postmark",
                   POSTMARK_SERVER_TOKEN="pm-two-sunsets", POSTMARK_API_URL=recorder.url,
                   DRIP_SUNSET_AFTER="2", DRIP_SUNSET_WAIT="14d",
                   PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    drip = make_drip(env)
    people = [subscribers.add_subscriber(drip, f"p{n}@example.com", now=SIGNUP,
                                         confirmed=True).subscriber for n in range(PEOPLE)]

    def two_senders(now):
        command = [sys.executable, "-m", "sender", "send", "--now", now.isoformat()]
        procs = [subprocess.Popen(command, env=env, cwd=project, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err

    try:
        for n in (0, 1, 2):
            two_senders(week(n))
        before = dict(recorder.received)
        two_senders(week(3))
        asked = {k: n for k, n in recorder.received.items() if k not in before}
        two_senders(week(3) + timedelta(days=1, hours=1))
        after_one_day = dict(recorder.received)
        two_senders(week(5))
        at_the_end = dict(recorder.received)
    finally:
        recorder.close()
    store = make_drip(env).store
    rows = {str(d.id): d for d in store.deliveries()}
    asks = [rows[k] for k in asked]
    with capsys.disabled():
        print(f"\ntwo senders (sunset, {'postgresql' if '://' in database else 'sqlite'}): "
              f"asked={len(asks)} duplicated={sum(1 for n in asked.values() if n > 1)}")
    assert sorted(n for n in asked.values()) == [1] * PEOPLE
    assert {(d.campaign, d.step) for d in asks} == {(ASK_CAMPAIGN, "ask-1")}
    assert sorted(d.subscriber_id for d in asks) == sorted(p.id for p in people)
    assert after_one_day == at_the_end == {k: n for k, n in after_one_day.items()}
    assert len(after_one_day) == len(before) + PEOPLE      # nothing went while they waited
    for person in people:
        assert store.get_subscriber(id=person.id).status == "sunset"
        mine = list(store.deliveries(subscriber_id=person.id, campaign="weekly"))
        assert {(d.step, d.state, d.reason) for d in mine if d.state != "sent"} == {
            (f"w{n}", "cancelled", ledger.SUNSET) for n in range(3, 9)}
