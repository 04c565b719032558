"""A full disk or a read-only database: a clear error, and nothing half-written."""

from __future__ import annotations

import pytest

from sender import subscribers
from sender.dispatch import send_due
from sender.errors import DripError
from tests.conftest import at

NOW = at("2026-03-02T18:00Z")


def test_disk_full_rolls_back_and_says_so(drip):
    subscribers.add_subscriber(drip, "first@example.com", now=NOW, confirmed=True)
    conn = drip.store.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(DripError, match="database or disk is full.*nothing was changed"):
        for n in range(2000):
            subscribers.add_subscriber(drip, f"p{n}@example.com", now=NOW, name="x" * 150,
                                       fields={"note": "y" * 150}, confirmed=True)
    # Each subscriber is all-or-nothing: no one without their ledger rows.
    for person in drip.store.list_subscribers():
        rows = list(drip.store.deliveries(subscriber_id=person.id))
        assert len(rows) == 3, person.email
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_read_only_database_gives_a_clear_error(drip, project):
    subscribers.add_subscriber(drip, "first@example.com", now=NOW, confirmed=True)
    drip.store.conn.execute("PRAGMA query_only = ON")
    with pytest.raises(DripError, match="readonly database"):
        send_due(drip, now=NOW)
    drip.store.conn.execute("PRAGMA query_only = OFF")
    assert {d.state for d in drip.store.deliveries()} == {"scheduled"}
    assert not (project / "outbox").exists() or not list((project / "outbox").glob("*.eml"))
