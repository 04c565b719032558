"""The SQLite store: one file, WAL mode, claims under the write lock.

The queries it shares with PostgreSQL are in ``sql/``; here are the connection, the
transaction (``BEGIN IMMEDIATE``), the claims, and how SQLite spells the rest
(``SQLiteDialect``)."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from ..errors import DatabaseMissing, DripError
from ..models import iso, utc
from .base import new_lease
from .migrations import migrate
from .sql import Dialect, SqlStore
from .sql.subscribers import _INSERT_SUBSCRIBER, SUBSCRIBER_ROW

# The page cache while a bulk write runs (``bulk_writes``), in KiB: a batch's pages stay in
# memory until its commit instead of being written to the log and read back (a fixed
# amount, whatever the size of the file being imported).
BULK_CACHE_KIB = 32768

_INSERT_OR_IGNORE = f"INSERT OR IGNORE INTO {SUBSCRIBER_ROW}"

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
             list(itertools.chain.from_iterable(chunk)))
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
    _insert_new = ("INSERT OR IGNORE INTO", "")

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

    def _insert_subscribers(self, values, statuses):
        # Rows of one status with an address each (what an import writes) go in with OR
        # IGNORE and the insert trigger set aside (``_inserts_counted``): then nothing can stop
        # a statement part-way, so SQLite keeps no copy of the pages each one changes (its
        # statement journal), which costs more than the rows. Otherwise (a NOT NULL column
        # left empty must fail as before) the shared statement does it.
        if len(statuses) != 1 or None in statuses or not all(row[1] for row in values):
            return super()._insert_subscribers(values, statuses)
        with self._inserts_counted("subscribers", next(iter(statuses))):
            added = self._many(_INSERT_OR_IGNORE, values)
            if added < len(values):
                added += self._uid_clashes(values)
        return added

    def _uid_clashes(self, values):
        """OR IGNORE also passes over a row whose random uid (96 bits) another row has: put
        each row whose address is still missing in again with a new uid; how many were. (A
        row still missing after that is refused by something else: the shared statement
        then says what, as it would have.)"""
        added = 0
        for attempt in range(3):
            there = self.subscriber_ids([row[1] for row in values])
            values = list({row[1]: (secrets.token_hex(12), *row[1:])
                           for row in values if row[1] not in there}.values())
            if not values:
                return added
            added += self._many(_INSERT_OR_IGNORE if attempt < 2 else _INSERT_SUBSCRIBER,
                                values)
        return added

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
                # Unless SQLite has rolled the whole transaction back itself (it does on a
                # full disk), which brought the trigger back and took the rows away.
                if self.conn.in_transaction:
                    self._restore(table, value, row["sql"], self.conn.total_changes - before)

    def _restore(self, table, value, trigger, added):
        """The insert trigger of ``table`` made again (``trigger``: its SQL), and ``added`` rows
        of ``value`` counted."""
        self._x(trigger)
        if added:
            self._x("INSERT INTO row_counts (tbl, value, n) VALUES (?, ?, ?) "
                    "ON CONFLICT (tbl, value) DO UPDATE SET n = n + excluded.n",
                    (table, value, added))

    @contextmanager
    def bulk_writes(self):
        # A larger page cache, and statement journals (which a multi-row statement that may
        # stop part-way keeps) in memory rather than in a temporary file. Foreign keys are
        # not checked row by row meanwhile (a look-up a row): the bulk paths add rows that
        # point at subscribers (enrolments, deliveries) only for ids read from that table in
        # the same transaction, under the write lock. All three are put back after; none
        # changes what is written or when it is committed.
        conn = self.conn
        cache, temp, keys = (conn.execute(f"PRAGMA {name}").fetchone()[0]
                             for name in ("cache_size", "temp_store", "foreign_keys"))
        conn.execute(f"PRAGMA cache_size = {-BULK_CACHE_KIB}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            yield self
        finally:
            conn.execute(f"PRAGMA cache_size = {int(cache)}")
            conn.execute(f"PRAGMA temp_store = {int(temp)}")
            conn.execute(f"PRAGMA foreign_keys = {int(keys)}")

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
