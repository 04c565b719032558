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
    # "three" gets its code from m009 (below), which the store also applies on opening.
    assert [rows[s].reason for s in ("one", "two", "three")] == ["unsubscribed", "unsubscribed",
                                                                 "confirmed"]
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


def _sqlite_shape(conn):
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    columns = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                          "AND sql IS NOT NULL")}
    return columns, indexes


def _postgres_shape(conn):
    columns = {}
    for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"):
        columns.setdefault(table, []).append(column)
    constraints = {r[0] for r in conn.execute("SELECT conname FROM pg_constraint")}
    indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes "
                                          "WHERE schemaname = 'public'")} - constraints
    return columns, indexes


def test_both_engines_build_the_same_tables_columns_and_indexes(tmp_path, postgres_url):
    """schema.py writes each table and index once: both engines end up with the same tables,
    the same columns in the same order, and the same indexes."""
    import psycopg

    from sender.store.postgres import PostgresStore

    SQLiteStore(tmp_path / "db.sqlite").close()
    PostgresStore(postgres_url).close()
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    lite = _sqlite_shape(conn)
    conn.close()
    with psycopg.connect(postgres_url) as pg_conn:
        postgres = _postgres_shape(pg_conn)
    assert lite == postgres
    assert "deliveries_waiting" in lite[1] and lite[0]["deliveries"][-1] == "reason"


def test_first_postgres_schema_upgrades_without_losing_data(postgres_url):
    import psycopg
    from psycopg.rows import dict_row

    from sender.store.postgres import PG_MIGRATIONS, PostgresStore
    from sender.store.postgres import migrate as pg_migrate

    with psycopg.connect(postgres_url, autocommit=True, row_factory=dict_row) as conn:
        assert pg_migrate(conn, upto=1) == ["m001_core"]
        conn.execute("INSERT INTO subscribers (uid, email, name, status, created_at, updated_at) "
                     "VALUES ('u1', 'ana@example.com', 'Ana', 'active', now(), now())")
        conn.execute("INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, "
                     "created_at) VALUES (1, 'course', 'one', '2026-01-02T00:00:00Z', 'scheduled', "
                     "now())")
    store = PostgresStore(postgres_url)
    assert store.schema_version() == len(PG_MIGRATIONS)
    person = store.get_subscriber(email="ana@example.com")
    assert person.name == "Ana" and person.tags == [] and person.fields == {}
    [row] = store.deliveries(subscriber_id=person.id)
    assert (row.campaign, row.step, row.state, row.lease) == ("course", "one", "scheduled", None)
    store.close()


# (state, the message drip wrote before reason codes, subscriber status) -> the code m009 gives.
OLD_MESSAGES = [
    ("cancelled", "subscriber confirmed", "active", "confirmed"),
    ("cancelled", "postmark reported bounced", "bounced", "suppressed"),
    ("cancelled", "provider rejected the address: 406 inactive", "bounced", "suppressed"),
    ("cancelled", "cancelled at resend before its send time", "complained", "suppressed"),
    ("cancelled", "cancelled at resend before its send time", "unsubscribed", "unsubscribed"),
    ("cancelled", "step removed from the campaign", "active", "step_gone"),
    ("cancelled", "the campaign or step no longer exists", "active", "step_gone"),
    ("skipped", "step added before a step already sent", "active", "step_added_late"),
    ("skipped", "step added after its time had passed", "active", "step_added_late"),
    ("failed", "gave up after 5 attempts: 503 busy", "active", "gave_up"),
    ("failed", "not sent: name contains a line break", "active", "bad_data"),
    ("failed", "422 invalid To address", "active", "rejected"),
    ("sent", "marked sent by the coach", "active", "resolved_sent"),
    ("sending", "hand-off unconfirmed (timed out); it will be checked", "active", "unconfirmed"),
    ("scheduled", "503 busy", "active", None),
    ("sent", None, "active", None),
]


def _old_rows(execute, mark):
    for i, (state, message, status, _) in enumerate(OLD_MESSAGES):
        execute("INSERT INTO subscribers (uid, email, name, status, created_at, updated_at) "
                f"VALUES ({mark}, {mark}, 'Ana', {mark}, {mark}, {mark})",
                (f"u{i}", f"p{i}@example.com", status, "2026-01-01T00:00:00Z",
                 "2026-01-01T00:00:00Z"))
        execute("INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, last_error, "
                f"created_at) VALUES ({i + 1}, 'course', 'one', {mark}, {mark}, {mark}, {mark})",
                ("2026-01-02T00:00:00Z", state, message, "2026-01-01T00:00:00Z"))


def _codes(store):
    by_email = {p.id: p.email for p in store.list_subscribers()}
    return [d.reason for d in sorted(store.deliveries(), key=lambda d: int(by_email[
        d.subscriber_id][1:].split("@")[0]))]


def test_reason_codes_migration_codes_old_rows_sqlite(tmp_path):
    """m009: rows written before every transition stored a code get theirs from the words
    drip wrote then; nothing reads the words afterwards."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, upto=8)
    _old_rows(conn.execute, "?")
    conn.close()
    store = SQLiteStore(path)
    assert _codes(store) == [code for *_, code in OLD_MESSAGES]
    store.close()


def test_reason_codes_migration_codes_old_rows_postgres(postgres_url):
    import psycopg

    from sender.store.postgres import PostgresStore
    from sender.store.postgres import migrate as pg_migrate

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        pg_migrate(conn, upto=8)
        _old_rows(conn.execute, "%s")
    store = PostgresStore(postgres_url)
    assert _codes(store) == [code for *_, code in OLD_MESSAGES]
    store.close()
