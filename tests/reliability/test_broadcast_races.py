"""A broadcast under real processes: unsubscribes committed by another process while two
`drip send` processes hand it over, and a sender killed while it writes the broadcast's rows.
Both send through a loopback Postmark that records what it receives, and the verdicts come
from what it received, not from the senders' reports."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from sender import broadcast_runs, broadcasts
from sender.models import Consent
from tests.broadcast_support import write_broadcast
from tests.conftest import REPO, base_env
from tests.reliability.recorder import PostmarkRecorder

NAME = "2026-03-10-news"
CAMPAIGN = broadcasts.campaign_id(NAME)
SEED = int(os.environ.get("DRIP_RELIABILITY_SEED", "20261125"))
DRIP = [sys.executable, "-m", "sender"]


def sender_env(project, recorder, **more):
    env = base_env(project, DRIP_PROVIDER="postmark", POSTMARK_SERVER_TOKEN="pm-broadcast-race",
                   POSTMARK_API_URL=recorder.url, DRIP_MIN_GAP="0", DRIP_SEND_WINDOW="always",
                   PATH=os.environ.get("PATH", "/usr/bin:/bin"), **more)
    if os.environ.get("PYTHONPATH"):          # the processes run the same drip as the test
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def the_list(drip, count, *, now, others=True):
    """``count`` active people added as an import adds them (no sequence of their own), and
    (``others``) one paused, one pending and one unsubscribed, who must get nothing."""
    consent = Consent(source="test", at=now, confirmed_at=now)
    rows = [{"email": f"p{n}@example.com", "name": f"Reader {n}", "timezone": None, "tags": [],
             "fields": {}, "status": "active", "consent": consent} for n in range(count)]
    if others:
        rows += [{"email": f"{s}@example.com", "name": s.title(), "timezone": None, "tags": [],
                  "fields": {}, "status": s, "consent": consent}
                 for s in ("paused", "pending", "unsubscribed")]
    drip.store.add_subscribers(rows, now=now)
    return [p.id for p in drip.store.subscribers_by_email(
        [f"p{n}@example.com" for n in range(count)]).values()]


def test_unsubscribes_while_two_senders_hand_over_a_broadcast_reach_nobody_after(
        project, make_drip, tmp_path, capsys):
    """Two `drip send` processes hand over a broadcast to 2,000 people through a provider
    that takes 0.25 s a request, while a third process unsubscribes 200 of them, chosen at
    random, one after another, spread over the hand-off. For each, what the provider
    received must be among her rows marked handed inside her unsubscribe's transaction (so:
    before it committed), and handed by that same hand-off; everyone else gets it exactly
    once."""
    people, leaving = 2000, 200
    recorder = PostmarkRecorder(latency=0.25)
    env = sender_env(project, recorder)
    drip = make_drip(env)
    now = datetime.now(UTC).replace(microsecond=0)
    ids = the_list(drip, people, now=now - timedelta(days=1))
    write_broadcast(project, NAME, subject="News for everyone")
    broadcast_runs.send_now(drip, broadcasts.load(drip.settings, NAME), now=now)
    rows = {d.subscriber_id: d for d in drip.store.deliveries(campaign=CAMPAIGN)}
    assert set(rows) == set(ids)                  # the paused, pending and unsubscribed: no row
    chosen = random.Random(SEED).sample(range(people), leaving)
    (tmp_path / "leaving.txt").write_text("\n".join(f"p{n}@example.com" for n in chosen))
    out = tmp_path / "unsubscribed.jsonl"
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.unsubscriber", CAMPAIGN,
             str(tmp_path / "leaving.txt"), str(out)], env=env, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        procs += [subprocess.Popen([*DRIP, "send"], env=env, cwd=project, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
        finish = subprocess.run([*DRIP, "send"], env=env, cwd=project, capture_output=True,
                                text=True, timeout=180)
        assert finish.returncode == 0, finish.stderr
    finally:
        for proc in procs:
            proc.kill()
        recorder.close()
    with recorder.lock:
        received, arrived = dict(recorder.received), dict(recorder.arrived)
    gone = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(gone) == leaving
    final = {d.id: d for d in make_drip(env).store.deliveries(campaign=CAMPAIGN)}
    late, in_flight, stopped = [], 0, 0
    for record in gone:
        row = rows[record["id"]]
        handed = record["handed"].get(str(row.id))
        if received.get(str(row.id)):
            now_handed = final[row.id].handed_at.isoformat() if final[row.id].handed_at else None
            if handed is None or now_handed != handed:
                late.append(f"{record['email']}: handed over after her unsubscribe committed")
            elif arrived[str(row.id)] > record["committed_at"]:
                in_flight += 1      # marked handed before she left; the request arrived after
        else:
            assert final[row.id].state in ("cancelled", "skipped"), final[row.id]
            stopped += 1
    first, last = min(arrived.values()), max(arrived.values())
    during = sum(first < r["committed_at"] < last for r in gone)
    leavers = {r["id"] for r in gone}
    stayed = {rows[i].id for i in ids if i not in leavers}
    duplicated = sorted(k for k, n in received.items() if n > 1)
    with capsys.disabled():
        print(f"\nbroadcast race: people={people} unsubscribed={leaving} (committed while it was "
              f"being handed over: {during}) stopped={stopped} in_flight={in_flight} "
              f"received={sum(received.values())} duplicated={len(duplicated)} "
              f"after_unsubscribe={len(late)}")
    assert late == []
    assert duplicated == []
    assert {int(k) for k in received} >= stayed                  # everyone who stayed got it
    assert {final[i].state for i in stayed} == {"sent"}
    assert during > 0 and stopped > 0       # the race was run: unsubscribes landed mid-broadcast
    assert broadcast_runs.status(make_drip(env), NAME, now=datetime.now(UTC))[0]["state"] == "sent"


def test_a_sender_killed_while_writing_the_rows_leaves_the_rest_to_the_next_run(
        project, make_drip, capsys):
    """The rows are written a page (1,000 people) at a time. The test holds the database's
    write lock as soon as the first page is in, so the `drip send` writing them is stopped
    between two pages, and kills it there with SIGKILL. The next run writes the rest: one row
    for every active person, nobody twice, nobody left out, each sent once."""
    people = 8500
    recorder = PostmarkRecorder(latency=0.0)
    env = sender_env(project, recorder)
    drip = make_drip(env)
    real_now = datetime.now(UTC).replace(microsecond=0)
    ids = the_list(drip, people, now=real_now - timedelta(days=1))
    write_broadcast(project, NAME, subject="News for everyone")
    due = real_now + timedelta(days=1)
    broadcast_runs.schedule(drip, broadcasts.load(drip.settings, NAME), due.isoformat(),
                            now=real_now)
    send = [*DRIP, "send", "--now", (due + timedelta(minutes=1)).isoformat()]
    watch = sqlite3.connect(project / "drip.db", timeout=30, isolation_level=None)
    written = state = None
    proc = subprocess.Popen(send, env=env, cwd=project, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if watch.execute("SELECT COUNT(*) FROM deliveries WHERE campaign = ?",
                             (CAMPAIGN,)).fetchone()[0]:
                watch.execute("BEGIN IMMEDIATE")     # its next page waits for this lock
                written = watch.execute("SELECT COUNT(*) FROM deliveries WHERE campaign = ?",
                                        (CAMPAIGN,)).fetchone()[0]
                state = watch.execute("SELECT state FROM broadcasts WHERE name = ?",
                                      (NAME,)).fetchone()[0]
                os.killpg(proc.pid, 9)
                proc.wait(30)
                watch.execute("ROLLBACK")
                break
            time.sleep(0.001)     # polling another process's progress, with a deadline
    finally:
        if proc.poll() is None:
            proc.kill()
        watch.close()
    assert proc.returncode == -9, "the sender finished before the first page was in"
    assert state == "scheduled" and 0 < written < people, (state, written)
    assert recorder.requests == 0                # nothing of it was sent yet
    try:
        for _ in range(2):                       # the second run marks it sent
            again = subprocess.run(send, env=env, cwd=project, capture_output=True, text=True,
                                   timeout=300)
            assert again.returncode == 0, again.stderr
    finally:
        recorder.close()
    rows = list(make_drip(env).store.deliveries(campaign=CAMPAIGN))
    per_person = Counter(d.subscriber_id for d in rows)
    received = dict(recorder.received)
    with capsys.disabled():
        print(f"\nbroadcast rows: killed after {written} of {people} written; then "
              f"rows={len(rows)} people={len(per_person)} received={sum(received.values())}")
    assert set(per_person) == set(ids) and set(per_person.values()) == {1}
    assert {d.state for d in rows} == {"sent"}
    assert sorted(int(k) for k in received) == sorted(d.id for d in rows)
    assert set(received.values()) == {1}
    assert make_drip(env).store.get_broadcast(NAME)["state"] == "sent"
