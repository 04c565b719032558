"""The PostgreSQL store (psycopg 3): the same contract as SQLite, for several machines.

``DRIP_DATABASE=postgresql://user:password@host/dbname`` selects it (install the
driver with ``pip install 'drip[postgres]'``). Workers on any number of machines
share the due deliveries: ``claim_due`` takes rows with ``FOR UPDATE SKIP LOCKED``
in one statement, so two workers never get the same row and never wait on each
other. ``transaction()`` takes a transaction-scoped advisory lock, the
equivalent of SQLite's ``BEGIN IMMEDIATE``, so a read-then-write inside it
cannot race.

The queries it shares with SQLite are in ``sql/``; here are the connection, the locks, the
claims, and how PostgreSQL spells the rest (``PostgresDialect``). The migrations are the
steps of ``schema.py`` (the same names and versions as SQLite's), recorded in
``schema_migrations`` the same way; they run under an advisory lock, so workers starting
together migrate once.
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_loads

from ..errors import DripError
from .base import new_lease
from .migrations import check_not_newer
from .schema import SCHEMA_MIGRATIONS, STEPS, for_engine, statements
from .sql import Dialect, Joined, SqlStore
from .sql.dialect import DELIVERY_COLUMNS, TIME_COLUMNS

_WRITE_LOCK = 0x64726970          # "drip": the lock transaction() takes
_MIGRATE_LOCK = 0x64726971
_ANALYZE_LOCK = 0x64726972

log = logging.getLogger("drip.store")

# The tables the send path's plans lean on (``refresh_statistics``), and when their
# statistics are stale: this many rows changed since they were taken, and at least this share
# of the table (autovacuum's own default share, without its wait of up to a minute).
_PLANNED_TABLES = ("deliveries", "subscribers", "enrollments")
_STALE_ROWS, _STALE_SHARE = 1000, 0.1

PG_MIGRATIONS = [(name, for_engine(sql, "postgresql")) for name, sql in STEPS]
# The delivery columns ``update_deliveries`` writes that are not text.
_COLUMN_TYPES = {**dict.fromkeys(TIME_COLUMNS & DELIVERY_COLUMNS, "timestamptz"),
                 "attempts": "integer"}


def masked(url):
    """The URL with any password replaced by ***, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", str(url))


def _t(value):
    """A datetime as stored: UTC, whole seconds (like the SQLite store)."""
    if value is None or (value.tzinfo is UTC and not value.microsecond):
        return value
    return value.astimezone(UTC).replace(microsecond=0)


# Most subscribers have no tags and no fields: their stored JSON is read without a parser.
_EMPTY_JSON = {b"[]": list, b"{}": dict}


def _json_loads(data):
    """JSON from the database as Python data (``json.loads``), '[]' and '{}' at once."""
    empty = _EMPTY_JSON.get(data)
    return empty() if empty is not None else json.loads(data)


def bigints(values):
    """Whole numbers as a bigint[] literal ('{1,2,3}'), written by ``str`` and ``join`` in C:
    psycopg writes an array parameter an element at a time in Python."""
    return "{" + ",".join(map(str, values)) + "}"


def _storable(value):
    """A value as PostgreSQL can store it. Text cannot hold a NUL, and some text comes from
    outside (a failure reason is a provider's answer): a NUL is written as U+FFFD, so it stays
    visible and the write does not fail."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _json_value(value):
    """A column value as ``json_to_recordset`` reads it: a time in ISO 8601 with its offset."""
    return value.isoformat() if isinstance(value, datetime) else _storable(value)


def _out(value):
    return None if value is None else value.astimezone(UTC)


class PostgresDialect(Dialect):
    writes_in_transaction = False     # one statement is atomic on its own
    chunk = None                      # any number of values in one array: = ANY(?)
    position = "strpos"
    waiting_hint = ""                 # PostgreSQL has no index hints
    time = staticmethod(_t)           # timestamptz
    when = staticmethod(_out)

    def json(self, value, *, default=None):
        return Jsonb(value, dumps=partial(json.dumps, default=default)) if default else Jsonb(value)

    def loads(self, value):
        return value                  # psycopg reads jsonb as Python data already

    def one_of(self, column, values):
        values = list(values)
        if values and all(type(v) is int for v in values):
            return f"{column} = ANY(?::bigint[])", [bigints(values)]
        return f"{column} = ANY(?)", [values]

    def has_tag(self, tag):
        return "tags @> ?", [Jsonb([tag])]


class PostgresStore(SqlStore):
    dialect = PostgresDialect()

    def __init__(self, url, *, migrate_schema=True, connect_timeout=10):
        self.url = url
        try:
            self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row,
                                        connect_timeout=connect_timeout,
                                        options="-c timezone=UTC")
            set_json_loads(_json_loads, self.conn)
            if migrate_schema:
                self._migrate(migrate)
        except psycopg.Error as exc:
            raise DripError(f"cannot open database {masked(url)}: {str(exc).strip()} "
                            "(check DRIP_DATABASE)") from None

    def _x(self, sql, params=()):
        """Run one statement: the shared SQL's ``?`` placeholders become psycopg's ``%s`` (this
        module's own SQL is written with ``%s`` and ``%(name)s`` already); text as PostgreSQL
        can store it (``_storable``)."""
        params = ({k: _storable(v) for k, v in params.items()} if isinstance(params, dict)
                  else [_storable(v) for v in params])
        return self.conn.execute(sql.replace("?", "%s"), params)

    def _many(self, sql, rows):
        with self.conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)
            return cursor.rowcount

    @contextmanager
    def _begin(self):
        with self.conn.transaction():
            self._x("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            yield

    def handoff_transaction(self):
        """A plain transaction: the hand-off locks only its subscribers' rows
        (``lock_subscribers``) and its own claimed deliveries, so several workers hand off at
        once while an unsubscribe of one of those subscribers waits for the batch."""
        return Joined(self, self.conn.transaction)

    # --- the planner's statistics ------------------------------------------------------
    def refresh_statistics(self):
        """ANALYZE the tables the send path reads once they have changed a lot. Until then the
        planner plans for the table as it was: after 20,000 rows were added to an empty ledger
        it thought a claim would find 4 due rows, sorted all 20,000 to take 500, and found
        them again by walking every scheduled entry of deliveries_due (84 ms a claim, growing
        with the list) where the plan it makes once it knows takes 7 ms. Autovacuum analyzes
        too, but up to a minute later: long enough for a whole broadcast to go out this way.

        It never holds up sending: one process at a time (the others go on), not inside a
        caller's transaction, a table another process has locked (a VACUUM, an index being
        built) is skipped (``SKIP_LOCKED``), and any failure (a role that may not analyze, a
        ``lock_timeout``) is logged and the run goes on with the plans it has. Returns the
        tables analyzed."""
        if self._depth:
            return []
        try:
            return self._analyze_stale()
        except psycopg.Error as exc:
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.rollback()
            log.warning("could not refresh the planner's statistics: %s", str(exc).strip())
            return []

    def _analyze_stale(self):
        if self.conn.info.server_version >= 150000:
            # This connection's own counts (a broadcast's rows it just wrote) reach the
            # server's at once, not up to a second later.
            self._x("SELECT pg_stat_force_next_flush()")
        rows = self._x(
            "SELECT t.relname, t.n_mod_since_analyze AS changed, t.n_live_tup AS live"
            " FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid"
            " WHERE t.schemaname = current_schema() AND t.relname = ANY(%s)"
            " AND pg_has_role(c.relowner, 'USAGE')",        # a table it may analyze
            (list(_PLANNED_TABLES),)).fetchall()
        stale = sorted(r["relname"] for r in rows
                       if r["changed"] >= max(_STALE_ROWS, _STALE_SHARE * r["live"]))
        if not stale:
            return []
        if not self._x("SELECT pg_try_advisory_lock(%s) AS got", (_ANALYZE_LOCK,)).fetchone()["got"]:
            return []               # another process is refreshing them at this moment
        try:
            self._x(f"ANALYZE (SKIP_LOCKED) {', '.join(stale)}")
        finally:
            self._x("SELECT pg_advisory_unlock(%s)", (_ANALYZE_LOCK,))
        return stale

    def last_sent(self, subscriber_ids, *, exclude_campaign=None):
        # Driven by the ids, one probe of deliveries_sent each, so the plan does not depend on
        # how many rows were sent when the table was last analyzed (from a fresh ledger's
        # statistics the shared query walked every sent row for each batch).
        ids = sorted(set(subscriber_ids))
        if not ids:
            return {}
        skip = " AND d.campaign != %(skip)s" if exclude_campaign else ""
        rows = self._x(
            "SELECT s.id, (SELECT MAX(d.sent_at) FROM deliveries d WHERE d.subscriber_id = s.id"
            f" AND d.sent_at IS NOT NULL{skip}) AS m FROM unnest(%(ids)s::bigint[]) AS s (id)",
            {"ids": bigints(ids), "skip": exclude_campaign}).fetchall()
        return {row["id"]: _out(row["m"]) for row in rows if row["m"] is not None}

    def lock_subscribers(self, ids):
        ids = sorted(set(ids))
        if not ids:
            return {}
        rows = self._x("SELECT id, status FROM subscribers WHERE id = ANY(%s::bigint[])"
                       " ORDER BY id FOR SHARE", (bigints(ids),)).fetchall()
        return {row["id"]: row["status"] for row in rows}

    # --- claims: row locks, so workers neither share rows nor wait for each other ------
    def claim_due(self, now, limit, *, pending_campaign=None, subscriber_id=None, due_by=None):
        # One statement: the inner SELECT locks the rows it picks and skips rows another
        # worker holds; a row another worker claimed and committed meanwhile fails the
        # re-checked state = 'scheduled'. No advisory lock, so workers never queue here.
        # The status test is spelled out (not a CASE) so the planner estimates it well and
        # walks deliveries_due in order, stopping at ``limit``; ARRAY(...) makes the outer
        # update find the picked rows by primary key instead of scanning the ledger.
        rows = self._x(
            "UPDATE deliveries SET state = 'sending', claimed_at = %(now)s, lease = %(lease)s,"
            " handed_at = NULL, handoff_key = NULL, reason = NULL WHERE id = ANY(ARRAY("
            "  SELECT d.id FROM deliveries d WHERE d.state = 'scheduled' AND d.due_at <= %(due_by)s"
            "  AND EXISTS (SELECT 1 FROM subscribers s WHERE s.id = d.subscriber_id AND ("
            "    s.status = 'active' AND d.campaign IS DISTINCT FROM %(pending)s"
            "    OR s.status = 'pending' AND d.campaign = %(pending)s))"
            "  AND (%(sub)s::bigint IS NULL OR d.subscriber_id = %(sub)s::bigint)"
            "  AND d.campaign NOT IN (SELECT campaign FROM campaign_brakes"
            "                         WHERE resumed_at IS NULL)"
            "  ORDER BY d.due_at, d.id LIMIT %(limit)s"
            "  FOR UPDATE OF d SKIP LOCKED"
            ")) AND state = 'scheduled' RETURNING *",
            {"now": _t(now), "due_by": _t(due_by or now), "pending": pending_campaign, "sub": subscriber_id,
             "limit": int(limit), "lease": new_lease()}).fetchall()
        return self._in_due_order(rows)

    def take_over_stale(self, claimed_before, now, *, limit=None):
        # Like a claim: rows another process is taking over are skipped, and the re-checked
        # claimed_at fails for a row another process took over and committed meanwhile.
        rows = self._x(
            "UPDATE deliveries SET claimed_at = %(now)s, lease = %(lease)s, reason = NULL"
            " WHERE id = ANY(ARRAY("
            "  SELECT id FROM deliveries WHERE state = 'sending' AND claimed_at < %(before)s"
            "  ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
            ")) AND state = 'sending' AND claimed_at < %(before)s RETURNING *",
            {"now": _t(now), "lease": new_lease(), "before": _t(claimed_before),
             "limit": limit}).fetchall()
        return self._in_due_order(rows)

    def _update_group(self, columns, guards, rows):
        """One statement of ``update_deliveries``. A value the same in every row (the lease
        of a claimed batch, the state written, the time) is one parameter; the values that
        differ (the ids, each provider message id) go as one JSON document of the rows,
        read by ``json_to_recordset``. So the statement's text and plan stay the same
        whatever the number of rows, and the whole document is written by the ``json``
        module's C encoder: psycopg writes an array parameter an element at a time in
        Python, which took about a tenth of a worker's CPU."""
        # Each row flat: id, expected state, expected lease, then the new values in order.
        flat = [(r[0], r[1], r[2], *(r[3][c] for c in columns)) for r in rows]
        slots = [(0, "bigint")] + [(1, "text")] * guards[0] + [(2, "text")] * guards[1] \
            + [(3 + n, _COLUMN_TYPES.get(c, "text")) for n, c in enumerate(columns)]
        varying, spelled, scalars = [], {}, {}
        for index, kind in slots:
            first = flat[0][index]
            if index and all(row[index] == first for row in flat):
                spelled[index] = f"%(p{index})s::{kind}"
                scalars[f"p{index}"] = first
            else:
                varying.append((index, kind))
                spelled[index] = f"v.c{index}"
        document = json.dumps([{f"c{i}": _json_value(row[i]) for i, _ in varying} for row in flat],
                              separators=(",", ":"), ensure_ascii=False)
        sql = ("UPDATE deliveries SET "
               + ", ".join(f"{c} = {spelled[3 + n]}" for n, c in enumerate(columns))
               + " FROM json_to_recordset(%(rows)s::json) AS v ("
               + ", ".join(f"c{i} {kind}" for i, kind in varying) + ")"
               " WHERE deliveries.id = v.c0"
               + (f" AND deliveries.state = {spelled[1]}" if guards[0] else "")
               + (f" AND deliveries.lease = {spelled[2]}" if guards[1] else "")
               + " RETURNING deliveries.id")
        return {row["id"] for row in self._x(sql, {**scalars, "rows": document}).fetchall()}

    def _count_spans(self, table, column, condition, spans):
        rows = self._x(
            f"SELECT (SELECT COUNT(*) FROM {table} WHERE {condition}{column} >= s.lo "
            f"AND {column} < s.hi) AS n FROM unnest(%s::timestamptz[], %s::timestamptz[]) "
            "WITH ORDINALITY AS s(lo, hi, i) ORDER BY s.i",
            ([_t(lo) for lo, _ in spans], [_t(hi) for _, hi in spans])).fetchall()
        return [row["n"] for row in rows]


def migrate(conn, *, upto=None):
    """Apply every migration not yet recorded, under an advisory lock; returns their names."""
    applied = []
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
    try:
        conn.execute(for_engine(SCHEMA_MIGRATIONS, "postgresql"))
        done = {r["version"] for r in conn.execute("SELECT version FROM schema_migrations")}
        check_not_newer(max(done, default=0), len(PG_MIGRATIONS),
                        where=f"the PostgreSQL database {masked(conn.info.dsn)}")
        for version, (name, sql) in enumerate(PG_MIGRATIONS[:upto], start=1):
            if version in done:
                continue
            with conn.transaction():
                for statement in statements(sql, "postgresql"):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (version, name))
            applied.append(name)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK,))
    return applied
