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
from datetime import UTC
from functools import partial

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

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
    return None if value is None else value.astimezone(UTC).replace(microsecond=0)


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
        return f"{column} = ANY(?)", [list(values)]

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
            if migrate_schema:
                self._migrate(migrate)
        except psycopg.Error as exc:
            raise DripError(f"cannot open database {masked(url)}: {str(exc).strip()} "
                            "(check DRIP_DATABASE)") from None

    def _x(self, sql, params=()):
        """Run one statement: the shared SQL's ``?`` placeholders become psycopg's ``%s`` (this
        module's own SQL is written with ``%s`` and ``%(name)s`` already)."""
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
            {"ids": ids, "skip": exclude_campaign}).fetchall()
        return {row["id"]: _out(row["m"]) for row in rows if row["m"] is not None}

    def lock_subscribers(self, ids):
        ids = sorted(set(ids))
        if not ids:
            return {}
        rows = self._x("SELECT id, status FROM subscribers WHERE id = ANY(%s) ORDER BY id FOR SHARE",
                       (ids,)).fetchall()
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
        """One statement of ``update_deliveries``: the rows' ids, guards and new values as one
        array per column (``unnest``), so its text and its plan stay the same whatever the
        number of rows (a VALUES list of thousands of parameters takes longer to parse and
        plan than the update takes). The arrays go in PostgreSQL's binary format (``%b``):
        psycopg writes 500 timestamps that way in a twentieth of the time it takes to
        spell them out."""
        names, types = ["row_id"], ["bigint"]
        arrays = [[r[0] for r in rows]]
        for wanted, name, index in ((guards[0], "want_state", 1), (guards[1], "want_lease", 2)):
            if wanted:
                names.append(name)
                types.append("text")
                arrays.append([r[index] for r in rows])
        for column in columns:
            names.append(f"new_{column}")
            types.append(_COLUMN_TYPES.get(column, "text"))
            arrays.append([r[3][column] for r in rows])
        sql = (f"UPDATE deliveries SET {', '.join(f'{c} = v.new_{c}' for c in columns)} "
               f"FROM unnest({', '.join(f'%b::{t}[]' for t in types)}) AS v ({', '.join(names)})"
               " WHERE deliveries.id = v.row_id"
               + " AND deliveries.state = v.want_state" * guards[0]
               + " AND deliveries.lease = v.want_lease" * guards[1] + " RETURNING deliveries.id")
        return {row["id"] for row in self._x(sql, arrays).fetchall()}

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
