"""The SQL both engines share: ``SqlStore`` implements the contract (``base.Store``) once, and
``SQLiteStore`` and ``PostgresStore`` add only their connection, their transactions and
locks, their claims, and the few queries they spell differently (``Dialect``)."""

from __future__ import annotations

from abc import abstractmethod

from ...errors import DripError
from ..base import Store, period_source
from ..schema import STEPS
from .broadcasts import BroadcastQueries
from .deliveries import DeliveryQueries
from .dialect import Dialect, writes
from .engagement import EngagementQueries
from .events import EventQueries
from .journeys import JourneyQueries
from .subscribers import SubscriberQueries

__all__ = ["Dialect", "Joined", "SqlStore", "writes"]


class Joined:
    """A transaction that joins the caller's, if there is one, or else runs in
    ``outermost()`` (a context manager that begins, commits and rolls back).
    (``transaction()`` runs for every write: a class is cheaper than a generator here.)"""

    __slots__ = ("store", "outermost", "outer")

    def __init__(self, store, outermost):
        self.store, self.outermost, self.outer = store, outermost, None

    def __enter__(self):
        if self.store._depth:
            self.store._depth += 1
        else:
            self.outer = self.outermost()
            self.outer.__enter__()
            self.store._depth = 1
        return self.store

    def __exit__(self, *exc):
        if self.outer is None:
            self.store._depth -= 1
            return False
        self.store._depth = 0
        return self.outer.__exit__(*exc)


class SqlStore(SubscriberQueries, DeliveryQueries, EventQueries, BroadcastQueries, JourneyQueries,
               EngagementQueries, Store):
    """The contract in SQL. An engine sets ``conn`` and ``dialect`` and provides ``_x``,
    ``_many`` and ``_begin``."""

    dialect: Dialect
    _depth = 0

    @abstractmethod
    def _x(self, sql, params=()):
        """Run one statement (``?`` placeholders); returns the cursor."""

    @abstractmethod
    def _many(self, sql, rows):
        """Run one statement for each of ``rows``; returns how many rows it changed."""

    @abstractmethod
    def _count_spans(self, table, column, condition, spans):
        """For each (lo, hi) of ``spans``: how many rows of ``table`` (with ``condition``, a
        prefix such as "state = 'scheduled' AND ") have lo <= ``column`` < hi; one statement."""

    @abstractmethod
    def _begin(self):
        """A context manager around the outermost transaction: it begins holding the store's
        write lock, commits at the end and rolls back on an error."""

    # --- lifecycle -------------------------------------------------------------
    def close(self):
        self.conn.close()

    def transaction(self):
        return Joined(self, self._begin)

    def _migrate(self, migrate):
        """Bring the schema up to date; the connection is closed if this drip refuses the
        database (one a newer drip has migrated)."""
        try:
            migrate(self.conn)
        except DripError:
            self.conn.close()
            raise

    def schema_version(self):
        return self._x("SELECT MAX(version) AS v FROM schema_migrations").fetchone()["v"] or 0

    @staticmethod
    def latest_version():
        return len(STEPS)

    def _in_due_order(self, rows):
        """Claimed (or taken-over) rows as deliveries, in the order they fell due."""
        return sorted((self.dialect.delivery(r) for r in rows), key=lambda d: (d.due_at, d.id))

    def period_counts(self, what, edges):
        table, column, condition = period_source(what)
        spans = list(zip(edges, edges[1:], strict=False))
        return self._count_spans(table, column, condition, spans) if spans else []

    # --- bookkeeping -----------------------------------------------------------
    def _row_counts(self, table):
        """{value: rows} of ``table`` by its status or state, from the counts the triggers keep
        (schema.py, m010): one row per value on SQLite, a few on PostgreSQL."""
        rows = self._x("SELECT value, SUM(n) AS n FROM row_counts WHERE tbl = ? GROUP BY value",
                       (table,))
        return {row["value"]: int(row["n"]) for row in rows if row["n"]}

    def get_meta(self, key):
        row = self._x("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    @writes
    def set_meta(self, key, value):
        self._x("INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
