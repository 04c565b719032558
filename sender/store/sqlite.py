"""The SQLite store: one file, WAL mode, claims under the write lock.

The queries it shares with PostgreSQL are in ``sql/``; here are the connection, the
transaction (``BEGIN IMMEDIATE``), the claims, and how SQLite spells the rest
(``SQLiteDialect``)."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from ..errors import DatabaseMissing, DripError
from ..models import iso, utc
from .base import new_lease
from .migrations import migrate
from .sql import Dialect, SqlStore

# The page cache while a bulk write runs (``bulk_writes``), in KiB: a batch's pages stay in
# memory until its commit instead of being written to the log and read back (a fixed
# amount, whatever the size of the file being imported).
BULK_CACHE_KIB = 32768

# The one row of placeholders in an INSERT's VALUES, which ``in_chunks`` repeats.
_VALUES = re.compile(r"\bVALUES\s*(\([?,\s]*\))", re.IGNORECASE)


def in_chunks(sql, rows, *, most_params, most_rows=500):
    """[(statement, params)]: ``sql``, an INSERT with one row of ``?`` in its VALUES, for all
    of ``rows`` in a few statements, each with its VALUES row repeated for a chunk of rows,
    its parameters under SQLite's limit (``most_params``). None for other statements."""
    values = _VALUES.search(sql)
    if values is None:
        return None
    one = values.group(1)
    size = max(1, min(most_rows, most_params // max(1, one.count("?"))))
    return [(sql[:values.start(1)] + ",".join([one] * len(chunk)) + sql[values.end(1):],
             [value for row in chunk for value in row])
            for chunk in (rows[start:start + size] for start in range(0, len(rows), size))]


class SQLiteDialect(Dialect):
    writes_in_transaction = True    # so a full disk or a read-only file is a DripError
    chunk = 500                     # under SQLite's limit on bound parameters
    position = "instr"
    # after ANALYZE the planner would rather walk every scheduled row
    waiting_hint = " INDEXED BY deliveries_waiting"
    time = staticmethod(iso)        # ISO 8601 text, UTC, whole seconds
    when = staticmethod(utc)
    loads = staticmethod(json.loads)

    def json(self, value, *, default=None):
        return json.dumps(value, default=default)

    def one_of(self, column, values):
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def has_tag(self, tag):
        return "EXISTS (SELECT 1 FROM json_each(subscribers.tags) WHERE value = ?)", [tag]


class _Immediate:
    """The outermost transaction: BEGIN IMMEDIATE (the write lock at once), COMMIT, or ROLLBACK
    on an error. An operational error (disk full, a read-only file, a lock held too long)
    becomes a DripError: nothing was written. (A class: every write runs through it.)"""

    __slots__ = ("store",)

    def __init__(self, store):
        self.store = store

    def __enter__(self):
        try:
            self.store.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._failed(exc) from None

    def __exit__(self, kind, exc, tb):
        conn = self.store.conn
        if kind is None:
            try:
                conn.execute("COMMIT")
                return False
            except sqlite3.OperationalError as error:
                exc = error
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError):
            raise self._failed(exc) from None
        return False

    def _failed(self, exc):
        return DripError(f"database {self.store.path}: {exc}; nothing was changed (check free "
                         "disk space, that the file and its folder are writable, and "
                         "DRIP_DATABASE)")


class SQLiteStore(SqlStore):
    dialect = SQLiteDialect()

    def __init__(self, path, *, busy_timeout=30.0, migrate_schema=True, create=True):
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not create and not Path(self.path).exists():
                raise DatabaseMissing(self.path)   # never a new, empty one by mistake
            if not parent.exists():
                raise DripError(f"cannot open database {self.path}: folder {parent} does not "
                                "exist (check DRIP_DATABASE)")
        try:
            self.conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            if migrate_schema:
                self._migrate(migrate)
        except sqlite3.DatabaseError as exc:
            raise DripError(f"cannot open database {self.path}: {exc} (check DRIP_DATABASE)") \
                from None

    def _x(self, sql, params=()):
        return self.conn.execute(sql, params)

    def _many(self, sql, rows):
        # One statement a chunk of rows (``in_chunks``): what a statement costs on its own, and
        # the counting triggers' statement journal, is paid once a chunk, not once a row.
        # rowcount, not total_changes: the triggers' own writes are not the statement's.
        rows = list(rows)
        chunks = in_chunks(sql, rows,
                           most_params=self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        if chunks is None:
            return self.conn.executemany(sql, rows).rowcount
        return sum(self.conn.execute(statement, params).rowcount for statement, params in chunks)

    def _begin(self):
        return _Immediate(self)

    @contextmanager
    def _inserts_counted(self, table, value):
        # Rows that the block inserts into ``table`` (and nothing else it writes), each with
        # status or state ``value``, are counted once at the end instead of by the per-row
        # trigger (m010), which costs more than the row: the trigger is dropped for the block
        # and made again from its own stored text, and the count added, in the same
        # transaction as the rows, so a rollback or a crash takes back all three together.
        # total_changes counts only statements that completed (a failed one adds nothing),
        # so the count is exact even when the block stops part-way.
        trigger = f"{table}_counted_insert"
        with self.transaction():
            row = self._x("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                          (trigger,)).fetchone()
            if row is None:           # a schema from before the counts: nothing to keep
                yield self
                return
            self._x(f"DROP TRIGGER {trigger}")
            before = self.conn.total_changes
            try:
                yield self
            finally:
                added = self.conn.total_changes - before
                self._x(row["sql"])
                if added:
                    self._x("INSERT INTO row_counts (tbl, value, n) VALUES (?, ?, ?) "
                            "ON CONFLICT (tbl, value) DO UPDATE SET n = n + excluded.n",
                            (table, value, added))

    @contextmanager
    def bulk_writes(self):
        # A larger page cache, and statement journals (which each multi-row statement with a
        # trigger keeps) in memory rather than in a temporary file; both put back after.
        # Neither changes what is written or when it is committed.
        conn = self.conn
        cache = conn.execute("PRAGMA cache_size").fetchone()[0]
        temp = conn.execute("PRAGMA temp_store").fetchone()[0]
        conn.execute(f"PRAGMA cache_size = {-BULK_CACHE_KIB}")
        conn.execute("PRAGMA temp_store = MEMORY")
        try:
            yield self
        finally:
            conn.execute(f"PRAGMA cache_size = {int(cache)}")
            conn.execute(f"PRAGMA temp_store = {int(temp)}")

    # --- claims: under the write lock, so two callers never take the same row ----------
    def claim_due(self, now, limit, *, pending_campaign=None, subscriber_id=None, due_by=None):
        with self.transaction():
            rows = self._x(
                "UPDATE deliveries SET state = 'sending', claimed_at = ?, lease = ?, "
                "handed_at = NULL, handoff_key = NULL, reason = NULL WHERE id IN ("
                "  SELECT d.id FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
                "  WHERE d.state = 'scheduled' AND d.due_at <= ?"
                "  AND s.status = CASE WHEN d.campaign = ? THEN 'pending' ELSE 'active' END"
                "  AND (? IS NULL OR d.subscriber_id = ?)"
                "  AND d.campaign NOT IN (SELECT campaign FROM campaign_brakes"
                "                         WHERE resumed_at IS NULL)"
                "  ORDER BY d.due_at, d.id LIMIT ?"
                ") RETURNING *",
                (iso(now), new_lease(), iso(due_by or now), pending_campaign, subscriber_id,
                 subscriber_id, int(limit))).fetchall()
        return self._in_due_order(rows)

    def take_over_stale(self, claimed_before, now, *, limit=None):
        with self.transaction():
            rows = self._x(
                "UPDATE deliveries SET claimed_at = ?, lease = ?, reason = NULL WHERE id IN ("
                "  SELECT id FROM deliveries WHERE state = 'sending' AND claimed_at < ?"
                "  ORDER BY id LIMIT ?) RETURNING *",
                (iso(now), new_lease(), iso(claimed_before),
                 -1 if limit is None else int(limit))).fetchall()
        return self._in_due_order(rows)

    def _count_spans(self, table, column, condition, spans):
        values = ", ".join("(?, ?, ?)" for _ in spans)
        params = [p for n, (lo, hi) in enumerate(spans) for p in (n, iso(lo), iso(hi))]
        rows = self._x(
            f"WITH spans (n, lo, hi) AS (VALUES {values}) SELECT (SELECT COUNT(*) FROM {table} "
            f"WHERE {condition}{column} >= spans.lo AND {column} < spans.hi) FROM spans "
            "ORDER BY n", params)
        return [row[0] for row in rows]
