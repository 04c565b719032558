"""Two real `drip send` processes recovering the same stale deliveries at once, on SQLite and
on PostgreSQL, through a loopback Postmark that answers in 20 ms: each delivery reaches the
provider exactly once.

The stale rows are left as a killed sender leaves them: claimed an hour ago, either before
the hand-off began (they never reached a provider) or after it (the provider must be asked
through its message search). Before recovery was claimed like a send, both processes read
the same stale rows, both asked Postmark, heard "not sent" and both sent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from sender import subscribers
from tests.conftest import base_env
from tests.reliability.recorder import PostmarkRecorder

PEOPLE = 100


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, project):
    if request.param == "sqlite":
        return str(project / "drip.db")
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("left", ["claimed", "handed"])
def test_two_senders_recover_the_same_stale_rows_once(project, make_drip, database, left, capsys):
    recorder = PostmarkRecorder(latency=0.02)
    env = base_env(project, DRIP_DATABASE=database, DRIP_PROVIDER="postmark",
                   POSTMARK_SERVER_TOKEN="pm-two-senders", POSTMARK_API_URL=recorder.url,
                   DRIP_MIN_GAP="0", DRIP_SEND_WINDOW="always",
                   PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    drip = make_drip(env)
    real_now = datetime.now(UTC).replace(microsecond=0)
    an_hour_ago = real_now - timedelta(hours=1)
    for n in range(PEOPLE):
        subscribers.add_subscriber(drip, f"p{n}@example.com", now=an_hour_ago - timedelta(days=1),
                                   confirmed=True)
    stale = drip.store.claim_due(an_hour_ago, PEOPLE * 10, pending_campaign="confirmation")
    assert len(stale) == PEOPLE             # each person's welcome email, claimed an hour ago
    if left == "handed":
        for delivery in stale:
            assert drip.store.update_delivery(delivery.id, expect_lease=delivery.lease,
                                              handed_at=an_hour_ago, handoff_key="killed")
    command = [sys.executable, "-m", "sender", "send", "--limit", str(PEOPLE)]
    try:
        procs = [subprocess.Popen(command, env=env, cwd=project, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        recorder.close()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    received = dict(recorder.received)
    duplicated = sorted(int(k) for k, n in received.items() if n > 1)
    with capsys.disabled():
        print(f"\ntwo senders ({left}, {'postgresql' if '://' in database else 'sqlite'}): "
              f"stale={PEOPLE} "
              f"received={sum(received.values())} duplicated={len(duplicated)}")
    assert duplicated == []
    assert sorted(int(k) for k in received) == sorted(d.id for d in stale)
    rows = {d.id: d for d in make_drip(env).store.deliveries(states=("sent",))}
    assert set(rows) >= {d.id for d in stale}


def test_two_senders_apply_conditions_goals_and_ab_subjects_once(project, make_drip, database,
                                                                  capsys):
    """Issue 13: a campaign with per-step conditions (a field, a click), a goal and A/B
    subjects, sent by two processes at once in two rounds: every email that should go goes
    exactly once with her subject, and nothing skipped or cancelled reaches the provider."""
    from sender import step_rules
    from sender.events import CLICKED, Event, apply_events
    from tests.journey_fixture import DUE, SIGNUP, journey_project
    from tests.support import at

    journey_project(project)
    recorder = PostmarkRecorder(latency=0.01)
    env = base_env(project, DRIP_DATABASE=database, DRIP_PROVIDER="postmark",
                   POSTMARK_SERVER_TOKEN="pm-two-journeys", POSTMARK_API_URL=recorder.url,
                   DRIP_MIN_GAP="0", PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    drip = make_drip(env)
    people = []
    for n in range(60):
        result = subscribers.add_subscriber(
            drip, f"p{n}@example.com", now=SIGNUP, confirmed=True,
            fields={"stage": "pregnant" if n % 2 else "postpartum"})
        people.append(result.subscriber)
    clients = {p.id for p in people[::7]}
    for person in people[::7]:      # the goal reached before the first email, as a script would
        drip.store.update_subscriber(person.id, now=SIGNUP, tags=["client"])
    clicked = set()

    def two_senders(now):
        command = [sys.executable, "-m", "sender", "send", "--now", now.isoformat()]
        procs = [subprocess.Popen(command, env=env, cwd=project, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err

    try:
        two_senders(at(DUE["booking"]))
        for n, person in enumerate(people[1::3]):
            booking = next(d for d in drip.store.deliveries(subscriber_id=person.id,
                                                            campaign="journey")
                           if d.step == "booking")
            if booking.state == "sent":
                apply_events(drip, [Event(provider="postmark", type=CLICKED,
                                          occurred_at=at(DUE["booking"]), raw={},
                                          provider_event_id=f"c{n}", delivery_id=booking.id,
                                          email=person.email)], now=at(DUE["booking"]))
                clicked.add(person.id)
        two_senders(at(DUE["last"]) + timedelta(hours=1))
    finally:
        recorder.close()
    expected = {}
    for person in people:
        if person.id in clients:
            continue
        stage = "pregnant" if person.fields["stage"] == "pregnant" else "postpartum"
        index = step_rules.variant_index("journey", "booking", person.id, 2)
        expected[(person.id, "intro")] = "Intro"
        expected[(person.id, stage)] = {"pregnant": "For your pregnancy",
                                        "postpartum": "After the birth"}[stage]
        expected[(person.id, "booking")] = ["Book a call", "Your next step, friend"][index]
        if person.id in clicked:
            expected[(person.id, "last")] = "Since you looked"
    rows = {d.id: d for d in make_drip(env).store.deliveries(campaign="journey")}
    received = dict(recorder.received)
    duplicated = sorted(k for k, n in received.items() if n > 1)
    got = {(rows[int(k)].subscriber_id, rows[int(k)].step): recorder.subjects[k]
           for k in received}
    with capsys.disabled():
        print(f"\ntwo senders (journey, {'postgresql' if '://' in database else 'sqlite'}): "
              f"expected={len(expected)} received={sum(received.values())} "
              f"duplicated={len(duplicated)} lost={len(set(expected) - set(got))}")
    assert duplicated == []
    assert got == expected
    assert {(d.subscriber_id, d.step) for d in rows.values() if d.state == "sent"} == set(expected)
    assert {d.state for d in rows.values()} <= {"sent", "skipped", "cancelled"}
    assert {d.reason for d in rows.values() if d.subscriber_id in clients} == {"goal_reached"}
