"""Schema migrations: from an empty file and from every earlier schema, without losing a row."""

from __future__ import annotations

import sqlite3

from sender.store import SQLiteStore
from sender.store.migrations import MIGRATIONS, migrate


def test_empty_database_reaches_latest(tmp_path):
    store = SQLiteStore(tmp_path / "new.db")
    assert store.schema_version() == len(MIGRATIONS)
    names = [r[0] for r in store.conn.execute("SELECT name FROM schema_migrations ORDER BY version")]
    assert names == [m.__name__ for m in MIGRATIONS]
    mode = store.conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.close()


def test_first_schema_upgrades_without_losing_data(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, upto=1) == ["m001_core"]
    conn.execute("INSERT INTO subscribers (uid, email, name, status, created_at, updated_at) "
                 "VALUES ('u1', 'ana@example.com', 'Ana', 'active', '2026-01-01T00:00:00Z', "
                 "'2026-01-01T00:00:00Z')")
    conn.execute("INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, created_at) "
                 "VALUES (1, 'course', 'one', '2026-01-02T00:00:00Z', 'scheduled', '2026-01-01T00:00:00Z')")
    conn.close()
    store = SQLiteStore(path)
    assert store.schema_version() == len(MIGRATIONS)
    person = store.get_subscriber(email="ana@example.com")
    assert person.name == "Ana" and person.tags == [] and person.fields == {}
    [row] = store.deliveries(subscriber_id=person.id)
    assert (row.campaign, row.step, row.state) == ("course", "one", "scheduled")
    plan = " ".join(r[3] for r in store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM deliveries WHERE state = 'scheduled' AND due_at <= ?",
        ("2026-01-03T00:00:00Z",)))
    assert "deliveries_due" in plan
    store.close()


def test_migrating_twice_is_a_no_op(tmp_path):
    SQLiteStore(tmp_path / "db.sqlite").close()
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    assert migrate(conn) == []
    conn.close()


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, upto=1)

    def broken(c):
        c.execute("CREATE TABLE half_done (x)")
        c.execute("THIS IS NOT SQL")

    broken.__name__ = "m999_broken"
    monkeypatch.setattr("sender.store.migrations.MIGRATIONS", [MIGRATIONS[0], broken])
    try:
        migrate(conn)
    except sqlite3.OperationalError:
        pass
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [1]


def test_leases_migration_keeps_meaning_of_existing_rows(tmp_path):
    """m006: unsubscribe cancellations get their reason code from the old text (however the
    provider worded it), and rows left in `sending` count as handed to the provider."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, upto=5)
    conn.execute("INSERT INTO subscribers (uid, email, name, status, created_at, updated_at) "
                 "VALUES ('u1', 'ana@example.com', 'Ana', 'unsubscribed', '2026-01-01T00:00:00Z', "
                 "'2026-01-01T00:00:00Z')")
    for step, state, error in (("one", "cancelled", "unsubscribed at postmark"),
                               ("two", "cancelled", "unsubscribed"),
                               ("three", "cancelled", "subscriber confirmed"),
                               ("four", "sending", "interrupted during hand-off and the provider "
                                                   "cannot tell whether it was sent; decide")):
        conn.execute("INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, "
                     "last_error, claimed_at, created_at) VALUES (1, 'course', ?, "
                     "'2026-01-02T00:00:00Z', ?, ?, '2026-01-02T00:00:00Z', '2026-01-01T00:00:00Z')",
                     (step, state, error))
    conn.close()
    store = SQLiteStore(path)
    rows = {d.step: d for d in store.deliveries()}
    assert [rows[s].reason for s in ("one", "two", "three")] == ["unsubscribed", "unsubscribed", None]
    assert rows["four"].handed_at == rows["four"].claimed_at and rows["four"].reason == "needs_decision"
    store.close()


def test_a_database_from_a_newer_drip_is_refused(tmp_path):
    import pytest

    from sender.errors import DripError

    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, 'm999_future')",
                 (len(MIGRATIONS) + 1,))
    conn.close()
    with pytest.raises(DripError, match="newer drip"):
        SQLiteStore(path)


def test_a_postgres_database_from_a_newer_drip_is_refused(postgres_url):
    import psycopg
    import pytest

    from sender.errors import DripError
    from sender.store.postgres import PG_MIGRATIONS, PostgresStore

    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, 'm999_future')",
                     (len(PG_MIGRATIONS) + 1,))
    with pytest.raises(DripError, match="newer drip"):
        PostgresStore(postgres_url)
