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
