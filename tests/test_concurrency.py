"""Two real `drip send` processes on one SQLite file send each delivery exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from email import message_from_bytes, policy

from sender import subscribers
from tests.conftest import REPO, at

SIGNUP = at("2026-03-02T18:00Z")


def test_two_send_processes_never_send_the_same_delivery(env, make_drip, project):
    env = {**env, "DRIP_MIN_GAP": "0"}
    drip = make_drip(env)
    people = 250
    for n in range(people):
        subscribers.add_subscriber(drip, f"p{n}@example.com", now=SIGNUP, confirmed=True)
    expected = people * 3
    drip.store.close()

    command = [sys.executable, "-m", "sender", "send",
               "--now", "2026-04-01T18:00Z", "--json"]
    procs = [subprocess.Popen(command, env={**env, "PATH": "/usr/bin:/bin"}, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    sent_by_process = [json.loads(out)["sent"] for out, _ in outputs]
    assert sum(sent_by_process) == expected

    files = list((project / "outbox").glob("*.eml"))
    ids = Counter(message_from_bytes(f.read_bytes(), policy=policy.default)["Message-ID"] for f in files)
    assert len(files) == expected and max(ids.values()) == 1

    check = make_drip(env)
    rows = list(check.store.deliveries())
    assert len(rows) == expected
    assert {r.state for r in rows} == {"sent"} and {r.attempts for r in rows} == {1}
