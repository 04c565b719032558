"""Four real `drip worker` processes on one PostgreSQL database send 20,000 deliveries
exactly once (skipped, with the reason, when PostgreSQL is not installed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support import base_env, run_workers, seed

DELIVERIES = 20_000
WORKERS = 4


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
