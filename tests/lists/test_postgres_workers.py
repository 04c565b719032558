"""Four real `drip worker` processes on one PostgreSQL database send 20,000 deliveries
exactly once (skipped, with the reason, when PostgreSQL is not installed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from sender.models import Consent
from tests.conftest import REPO, base_env

DELIVERIES = 20_000
WORKERS = 4


def seed(drip, count, due):
    """``count`` active subscribers, each with one due delivery of course/one."""
    store = drip.store
    consent = Consent(source="test", at=due)
    for start in range(0, count, 5000):
        store.add_subscribers([{"email": f"w{i}@example.com", "status": "active",
                                "consent": consent}
                               for i in range(start, min(start + 5000, count))], now=due)
    after, rows = 0, []
    while page := store.subscriber_page(after_id=after, limit=5000):
        rows += [{"subscriber_id": p.id, "campaign": "course", "step": "one", "due_at": due}
                 for p in page]
        after = page[-1].id
    store.add_deliveries(rows, now=due)
    store.set_meta("campaign-fingerprint:course", drip.campaigns.get("course").fingerprint())
    store.set_meta("campaign-fingerprint:welcome", drip.campaigns.get("welcome").fingerprint())
    store.set_meta("campaign-fingerprint:confirmation",
                   drip.campaigns.get("confirmation").fingerprint())


def run_workers(environ, cwd, count):
    """Start ``count`` `drip worker --exit-when-idle` processes; return how many emails each
    one reports sending."""
    command = [sys.executable, "-m", "sender", "--env-file", "/nonexistent/.env", "worker",
               "--interval", "0.5", "--exit-when-idle"]
    env = {**os.environ, **environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(count)]
    sent = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-2000:]
        sent.append(sum(int(n) for n in re.findall(r"^(\d+) sent", out, re.M)))
    return sent


@pytest.mark.slow
def test_four_workers_send_20000_deliveries_exactly_once(postgres_server, project, make_drip):
    url = postgres_server.create_database("four_workers")
    environ = base_env(project, DRIP_DATABASE=url, DRIP_SEND_WINDOW="always")
    drip = make_drip(environ)
    seed(drip, DELIVERIES, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    assert drip.store.count_due(datetime.now(UTC)) == DELIVERIES

    sent = run_workers(environ, project, WORKERS)

    # The providers were handed each delivery once: the workers' own counts add up exactly
    # (the outbox names files by Message-ID, so a double send would not show as a file).
    assert sum(sent) == DELIVERIES
    assert sum(1 for n in sent if n) >= 2, sent       # the work was shared
    store = drip.store
    assert store.delivery_counts() == {"sent": DELIVERIES}
    rows = store.conn.execute(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT provider_message_id) AS files, "
        "MIN(attempts) AS lo, MAX(attempts) AS hi FROM deliveries").fetchone()
    assert (rows["n"], rows["files"], rows["lo"], rows["hi"]) == (DELIVERIES, DELIVERIES, 1, 1)
    emails = list((project / "outbox").glob("*.eml"))
    assert len(emails) == DELIVERIES
    names = {r["provider_message_id"] for r in store.conn.execute(
        "SELECT provider_message_id FROM deliveries")}
    assert {p.name for p in emails} == names
