"""The SQLite store: one file, WAL mode, claims under the write lock.

The queries it shares with PostgreSQL are in ``sql/``; here are the connection, the
transaction (``BEGIN IMMEDIATE``), the claims, and how SQLite spells the rest
(``SQLiteDialect``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ..errors import DatabaseMissing, DripError
from ..models import iso, utc
from .base import new_lease
from .migrations import migrate
from .sql import Dialect, SqlStore


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
        before = self.conn.total_changes
        self.conn.executemany(sql, rows)
        return self.conn.total_changes - before

    def _begin(self):
        return _Immediate(self)

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
