"""Stored counts (`drip status`): the subscribers by status and the deliveries by state that
the triggers of migration m010 keep are the GROUP BY truth after every kind of write, on
both engines: a random mix of the library's operations, a transaction that fails midway, a
process that dies inside one, a database migrated with rows in it, and writers at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sender import erasure, ledger, lists, subscribers
from sender.config import Settings
from sender.dispatch import send_due
from sender.drip import Drip
from sender.errors import DripError
from sender.models import Consent
from sender.status import status
from tests.support import REPO, at, base_env

T0 = at("2026-03-02T17:00Z")     # a Monday, inside the fixture campaigns' send window


def truth(store):
    """What the GROUP BY over the whole tables says (the old way of counting)."""
    people = {r["status"]: r["n"] for r in store._x(
        "SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status")}
    mail = {r["state"]: r["n"] for r in store._x(
        "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")}
    return people, mail


def stored(store):
    """What the row_counts table holds, summed (whatever the engine keeps per value)."""
    found = {"subscribers": {}, "deliveries": {}}
    for row in store._x("SELECT tbl, value, SUM(n) AS n FROM row_counts GROUP BY tbl, value"):
        if row["n"]:
            found[row["tbl"]][row["value"]] = int(row["n"])
    return found["subscribers"], found["deliveries"]


def check(store):
    expected = truth(store)
    assert stored(store) == expected
    assert (store.subscriber_counts(), store.delivery_counts()) == expected
    return expected


@contextmanager
def opened(project, database):
    """A Drip for one Hypothesis example, closed at its end (examples are many)."""
    drip = Drip(Settings.from_env(base_env(project, DRIP_DATABASE=database,
                                           DRIP_SEND_WINDOW="always")))
    try:
        yield drip
    finally:
        drip.close()


# --- a random mix of the library's writes ---------------------------------------------------
def op_add(drip, n, now):
    subscribers.add_subscriber(drip, f"p{n}@example.com", now=now, confirmed=n % 2 == 0,
                               resubscribe=n % 3 == 0)


def op_import(drip, n, now):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "list.csv"
        rows = [f"p{k}@example.com,P {k}" for k in (n, n + 1, n + 2, n)] + ["not an address,X"]
        path.write_text("Email,Name\n" + "\n".join(rows) + "\n", encoding="utf-8")
        lists.import_csv(drip, path, consent="a test list", now=now, enroll_in=("course",))


def _on_person(action):
    def op(drip, n, now):
        person = subscribers.find(drip, f"p{n}@example.com")
        if person is not None:
            action(drip, person, now)
    op.__name__ = f"op_{action.__name__}"
    return op


def confirm(drip, person, now):
    subscribers.confirm(drip, person, now=now)


def unsubscribe(drip, person, now):
    subscribers.unsubscribe(drip, person, now=now)


def pause(drip, person, now):
    subscribers.pause(drip, person, now=now)


def resume(drip, person, now):
    subscribers.resume(drip, person, now=now)


def bounce(drip, person, now):
    subscribers.suppress(drip, person, "bounced", now=now, reason="test bounce")


def op_erase(drip, n, now):
    erasure.erase(drip, f"p{n}@example.com", now=now)


def op_send(drip, n, now):
    send_due(drip, now=now)


def op_claim_and_settle(drip, n, now):
    """Claim some due mail, then one of: fail it, put it back, cancel it, or leave it in
    ``sending`` (as a crashed sender would)."""
    store = drip.store
    for delivery in ledger.claim(store, now, 3):
        if n % 4 == 0:
            ledger.failed(store, delivery, ledger.REJECTED, "test failure", attempts=1,
                          provider="outbox")
        elif n % 4 == 1:
            ledger.release(store, delivery)
        elif n % 4 == 2:
            ledger.cancel(store, delivery, ledger.STEP_GONE, "test cancel")


def op_skip_ended(drip, n, now):
    ledger.skip_ended(drip.store, now)


OPERATIONS = [op_add, op_import, _on_person(confirm), _on_person(unsubscribe), _on_person(pause),
              _on_person(resume), _on_person(bounce), op_erase, op_send, op_claim_and_settle,
              op_skip_ended]


def run_operations(drip, steps):
    now = T0
    for index, n in steps:
        now += timedelta(days=1)
        try:
            OPERATIONS[index](drip, n, now)
        except DripError:
            pass          # a refusal (an erased address, a bad row) changes nothing it should not
        check(drip.store)


STEPS = st.lists(st.tuples(st.integers(0, len(OPERATIONS) - 1), st.integers(0, 6)),
                 min_size=1, max_size=14)
# A fixed, small number of examples: each one is a sequence of whole library operations.
FEW = settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
_DATABASES = {}


@FEW
@given(steps=STEPS)
def test_counts_stay_exact_through_a_mix_of_operations_on_sqlite(project, steps):
    with tempfile.TemporaryDirectory() as folder, \
            opened(project, str(Path(folder) / "drip.db")) as drip:
        run_operations(drip, steps)


@FEW
@given(steps=STEPS)
def test_counts_stay_exact_through_a_mix_of_operations_on_postgres(postgres_server, project,
                                                                   steps):
    # One database for every example: the counts must stay right as the writes pile up.
    if "mix" not in _DATABASES:
        _DATABASES["mix"] = postgres_server.create_database("row_counts_mix")
    with opened(project, _DATABASES["mix"]) as drip:
        run_operations(drip, steps)


def test_every_operation_is_exercised(project, tmp_path):
    """One fixed sequence that reaches each state, so the property's small sample cannot
    miss a write path."""
    with opened(project, str(tmp_path / "drip.db")) as drip:
        steps = [(0, 0), (0, 2), (0, 4), (1, 10), (0, 1), (10, 0), (10, 0), (10, 0), (9, 0),
                 (9, 1), (9, 2), (9, 3), (4, 11), (3, 12), (6, 10), (7, 0), (8, 0), (0, 20),
                 (1, 30), (8, 0)]
        run_operations(drip, steps)
        people, mail = check(drip.store)
        assert set(people) >= {"active", "pending", "paused", "unsubscribed", "bounced"}
        assert set(mail) >= {"scheduled", "sent", "failed", "cancelled", "skipped"}


# --- failures inside a transaction -----------------------------------------------------------
def _some_rows(store):
    consent = Consent(source="test", at=T0)
    store.add_subscribers([{"email": f"a{i}@example.com", "status": "pending",
                            "consent": consent} for i in range(3)], now=T0)
    ids = [p.id for p in store.subscriber_page(limit=100)]
    store.add_deliveries([{"subscriber_id": i, "campaign": "course", "step": "two",
                           "due_at": T0} for i in ids], now=T0)


def _writes_then_fails(store):
    """Rows of every kind written in one transaction, then an error before it commits."""
    consent = Consent(source="test", at=T0)
    with pytest.raises(RuntimeError, match="midway"), store.transaction():
        store.add_subscribers([{"email": f"x{i}@example.com", "status": "active",
                                "consent": consent} for i in range(5)], now=T0)
        ids = [p.id for p in store.subscriber_page(limit=100)]
        store.add_deliveries([{"subscriber_id": i, "campaign": "course", "step": "one",
                               "due_at": T0} for i in ids], now=T0)
        store.update_subscriber(ids[0], now=T0, status="unsubscribed")
        assert ledger.claim(store, T0, 2)
        store._x("DELETE FROM subscribers WHERE id = ?", (ids[1],))
        assert stored(store) == truth(store)          # inside: counted with the rows
        raise RuntimeError("midway")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_transaction_that_fails_midway_leaves_the_counts_as_they_were(
        engine, request, project, make_drip, tmp_path):
    if engine == "sqlite":
        database = str(tmp_path / "drip.db")
    else:
        database = request.getfixturevalue("postgres_server").create_database("row_counts_fail")
    store = make_drip(base_env(project, DRIP_DATABASE=database)).store
    _some_rows(store)
    before = check(store)
    assert before == ({"pending": 3}, {"scheduled": 3})
    _writes_then_fails(store)
    assert check(store) == before
    # A batch the database refuses halfway through (a NOT NULL column in its second row).
    with pytest.raises(Exception, match="(?i)null"):
        store.add_subscribers([{"email": "ok@example.com", "status": "active",
                                "consent": Consent(source="t", at=T0)},
                               {"email": "bad@example.com", "status": None,
                                "consent": Consent(source="t", at=T0)}], now=T0)
    assert check(store) == before


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_bulk_insert_over_several_statements_counts_each_new_row_once(
        engine, request, project, make_drip, tmp_path):
    """Bulk inserts go a chunk of rows per statement: the number inserted, and the counts,
    are right across chunk boundaries, with rows already there and rows twice in the batch."""
    if engine == "sqlite":
        database = str(tmp_path / "drip.db")
    else:
        database = request.getfixturevalue("postgres_server").create_database("row_counts_bulk")
    store = make_drip(base_env(project, DRIP_DATABASE=database)).store
    _some_rows(store)                                       # a0..a2, pending
    consent = Consent(source="test", at=T0)
    emails = [f"b{i}@example.com" for i in range(1200)] + ["a1@example.com", "b7@example.com"]
    rows = [{"email": e, "status": "unsubscribed" if i % 3 else "active", "consent": consent}
            for i, e in enumerate(emails)]
    assert store.add_subscribers(rows, now=T0) == 1200
    assert check(store)[0] == {"pending": 3, "active": 400, "unsubscribed": 800}
    ids = [p.id for p in store.subscriber_page(limit=2000)]
    mail = [{"subscriber_id": i, "campaign": "course", "step": "two", "due_at": T0} for i in ids]
    assert store.add_deliveries(mail, now=T0) == 1200      # the three of a0..a2 are there
    assert check(store)[1] == {"scheduled": 1203}


def test_a_process_that_dies_inside_a_transaction_changes_no_count(project, make_drip, tmp_path):
    database = tmp_path / "drip.db"
    store = make_drip(base_env(project, DRIP_DATABASE=str(database))).store
    _some_rows(store)
    before = check(store)
    code = (
        "import os, sys\n"
        "from sender.store import SQLiteStore\n"
        "store = SQLiteStore(sys.argv[1])\n"
        "with store.transaction():\n"
        "    store.update_delivery(1, state='sent')\n"
        "    store._x(\"UPDATE subscribers SET status = 'active'\")\n"
        "    store._x('DELETE FROM deliveries WHERE id = 2')\n"
        "    os._exit(3)\n")
    died = subprocess.run([sys.executable, "-c", code, str(database)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert died.returncode == 3, died.stderr
    assert check(store) == before


# --- a database made before m010 ----------------------------------------------------------
OLD_ROWS = [("active", "sent"), ("active", "scheduled"), ("pending", "scheduled"),
            ("unsubscribed", "cancelled"), ("active", "sent"), ("bounced", "failed")]
OLD_COUNTS = ({"active": 3, "pending": 1, "unsubscribed": 1, "bounced": 1},
              {"sent": 2, "scheduled": 2, "cancelled": 1, "failed": 1})


def test_migrating_a_sqlite_database_with_rows_fills_the_counts(tmp_path):
    from sender.store import SQLiteStore
    from sender.store.migrations import MIGRATIONS, migrate

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, upto=[m.__name__ for m in MIGRATIONS].index("m010_row_counts"))
    for n, (status_, state) in enumerate(OLD_ROWS):
        conn.execute("INSERT INTO subscribers (uid, email, status, created_at, updated_at) "
                     "VALUES (?, ?, ?, 'x', 'x')", (f"u{n}", f"o{n}@example.com", status_))
        conn.execute("INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, "
                     "created_at) VALUES (?, 'course', 'one', '2026-01-02T00:00:00Z', ?, 'x')",
                     (n + 1, state))
    conn.close()
    store = SQLiteStore(path)
    assert check(store) == OLD_COUNTS
    store.update_delivery(2, state="sent")
    store._x("DELETE FROM subscribers WHERE id = 1")        # deliveries go by ON DELETE CASCADE
    assert check(store)[1] == {"sent": 2, "scheduled": 1, "cancelled": 1, "failed": 1}
    store.close()


def test_migrating_a_postgres_database_with_rows_fills_the_counts(postgres_url):
    import psycopg
    from psycopg.rows import dict_row

    from sender.store.postgres import PG_MIGRATIONS, PostgresStore
    from sender.store.postgres import migrate as pg_migrate

    with psycopg.connect(postgres_url, autocommit=True, row_factory=dict_row) as conn:
        pg_migrate(conn, upto=[name for name, _ in PG_MIGRATIONS].index("m010_row_counts"))
        for n, (status_, state) in enumerate(OLD_ROWS):
            conn.execute("INSERT INTO subscribers (uid, email, status, created_at, updated_at) "
                         "VALUES (%s, %s, %s, now(), now())", (f"u{n}", f"o{n}@example.com", status_))
            conn.execute("INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, "
                         "created_at) VALUES (%s, 'course', 'one', now(), %s, now())", (n + 1, state))
    store = PostgresStore(postgres_url)
    assert check(store) == OLD_COUNTS
    store.update_delivery(2, state="sent")
    store._x("DELETE FROM subscribers WHERE id = 1")        # deliveries go by ON DELETE CASCADE
    assert check(store)[1] == {"sent": 2, "scheduled": 1, "cancelled": 1, "failed": 1}
    store.close()


def test_folding_postgres_count_rows_keeps_the_sums(postgres_url):
    """PostgreSQL appends a row per statement and value; folding them (which the triggers do
    now and then) leaves one row per value and the same sums."""
    from sender.store.postgres import PostgresStore

    store = PostgresStore(postgres_url)
    consent = Consent(source="test", at=T0)
    for i in range(40):
        store.add_subscriber(f"f{i}@example.com", name="", timezone=None, tags=(), fields={},
                             status="active" if i % 4 else "pending", consent=consent, now=T0)
    expected = check(store)
    store._x("SELECT fold_row_counts()")
    assert check(store) == expected
    rows = store._x("SELECT COUNT(*) AS n FROM row_counts").fetchone()["n"]
    assert rows <= len(expected[0]) + len(expected[1])
    store.close()


# --- writers at once ---------------------------------------------------------------------------
WRITER = """
import json, sys
from datetime import UTC, datetime
from sender import ledger
from sender.config import Settings
from sender.drip import Drip
from sender.models import Consent
env, tag = json.loads(sys.argv[1]), sys.argv[2]
store = Drip(Settings.from_env(env)).store
now = datetime(2026, 3, 2, 17, tzinfo=UTC)
print("ready", flush=True)
sys.stdin.readline()                                   # the parent says go, to all at once
for i in range(60):
    store.add_subscribers([{"email": f"{tag}{i}-{k}@example.com", "status": "active",
                            "consent": Consent(source="t", at=now)} for k in range(3)], now=now)
    mine = [p.id for p in store.subscriber_page(limit=1000, text=f"{tag}{i}-")]
    ledger.schedule(store, [{"subscriber_id": p, "campaign": "course", "step": "one",
                             "due_at": now} for p in mine], now=now)
    for delivery in ledger.claim(store, now, 2):
        ledger.sent(store, delivery, at=now, attempts=1, provider="outbox",
                    provider_message_id=f"{tag}{i}-{delivery.id}")
    store.update_subscriber(mine[0], now=now, status="paused")
    with store.handoff_transaction():
        store.update_subscriber(mine[1], now=now, status="unsubscribed")
        ledger.cancel_pending_for(store, mine[1], ledger.UNSUBSCRIBED, "test")
print("done", flush=True)
"""


@pytest.mark.parametrize("engine,writers", [("sqlite", 2), ("postgresql", 4)])
def test_writers_at_once_keep_the_counts_exact(engine, writers, request, project, make_drip,
                                               tmp_path):
    if engine == "sqlite":
        database = str(tmp_path / "drip.db")
    else:
        database = request.getfixturevalue("postgres_server").create_database("row_counts_race")
    env = base_env(project, DRIP_DATABASE=database)
    store = make_drip(env).store                               # migrated before they start
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(env), f"w{n}x"],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for n in range(writers)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0 and out.strip() == "done", err[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    people, mail = check(store)
    assert sum(people.values()) == writers * 60 * 3
    assert people["paused"] == people["unsubscribed"] == writers * 60
    assert sum(mail.values()) == writers * 60 * 3 and mail["sent"] > 0


# --- drip status reads no table in full ---------------------------------------------------
def test_status_reads_neither_whole_table(project, make_drip, tmp_path):
    drip = make_drip(base_env(project, DRIP_DATABASE=str(tmp_path / "drip.db")))
    _some_rows(drip.store)
    statements = []
    drip.store.conn.set_trace_callback(statements.append)
    data = status(drip, now=T0)
    drip.store.conn.set_trace_callback(None)
    assert data["subscribers"] == {"pending": 3} and data["deliveries"] == {"scheduled": 3}
    partial = {row[0] for row in drip.store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")}
    plans = {}
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            plans[sql] = [row[3] for row in drip.store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
    assert plans
    for sql, plan in plans.items():
        for line in plan:
            # A scan is of a small table, or of a partial index (only the rows it is about).
            if line.startswith(("SCAN subscribers", "SCAN deliveries")):
                assert any(f"INDEX {name}" in line for name in partial), (sql, plan)
        # the deliveries counted by time are counted in the due index alone
        if "COUNT(*)" in sql and "due_at <=" in sql:
            assert any("COVERING INDEX deliveries_due" in line for line in plan), (sql, plan)
