"""Several `drip send` and `drip worker` processes at once on one SQLite file, sending
through a loopback Postmark: every delivery reaches the provider exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from sender import subscribers
from tests.conftest import REPO, base_env
from tests.reliability.recorder import PostmarkRecorder


def test_two_senders_and_two_workers_send_each_delivery_once(project, make_drip, capsys):
    recorder = PostmarkRecorder(latency=0.005)
    env = base_env(project, DRIP_PROVIDER="postmark", POSTMARK_SERVER_TOKEN="pm-race",
                   POSTMARK_API_URL=recorder.url, DRIP_MIN_GAP="0", DRIP_SEND_WINDOW="always",
                   PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    drip = make_drip(env)
    past = datetime.now(UTC) - timedelta(days=30)
    for n in range(300):
        subscribers.add_subscriber(drip, f"p{n}@example.com", now=past, confirmed=True)
    expected = 900
    base = [sys.executable, "-m", "sender"]
    procs = [subprocess.Popen(base + args, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
             for args in (["send"], ["worker", "--interval", "0.2"]) * 2]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            conn = sqlite3.connect(project / "drip.db", timeout=30)
            sent = conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'").fetchone()[0]
            conn.close()
            if sent == expected and all(p.poll() is not None for p in (procs[0], procs[2])):
                break
            time.sleep(0.1)   # polling other processes' progress, with a deadline
        for proc in (procs[1], procs[3]):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            proc.kill()
        recorder.close()
    received = dict(recorder.received)
    with capsys.disabled():
        print(f"\nmany processes: deliveries={expected} received={sum(received.values())} "
              f"duplicated={sum(1 for n in received.values() if n > 1)}")
    assert len(received) == expected and set(received.values()) == {1}
    check = make_drip(env)
    assert {r.state for r in check.store.deliveries()} == {"sent"}
