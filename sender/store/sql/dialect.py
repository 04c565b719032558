"""What the SQL shared by both engines leaves to each engine (its ``Dialect``), and the small
helpers the shared queries are built with (``writes``, ``Where``).

The shared queries (``sender/store/sql/``) are written once, with ``?`` placeholders; every
place where SQLite and PostgreSQL spell something differently goes through the engine's
dialect (``SQLiteDialect`` in sqlite.py, ``PostgresDialect`` in postgres.py), and nowhere else.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod

from ...models import delivery_from_row, subscriber_from_row

SUBSCRIBER_COLUMNS = {
    "name", "timezone", "status", "tags", "fields", "paused_at", "consent_source",
    "consent_at", "consent_text", "consent_ip", "confirmed_at", "withdrawn_at",
}
DELIVERY_COLUMNS = {
    "state", "due_at", "provider", "provider_message_id", "last_error", "sent_at", "claimed_at",
    "attempts", "lease", "handed_at", "handoff_key", "reason",
}
TIME_COLUMNS = {"paused_at", "consent_at", "confirmed_at", "withdrawn_at", "due_at", "sent_at",
                "claimed_at", "handed_at"}


def writes(method):
    """A write of one statement. On SQLite it runs in ``transaction()`` (joining the caller's),
    so that a disk-full or read-only database surfaces as a DripError; a PostgreSQL statement
    is atomic on its own, and taking the store's write lock for it would only make writers
    queue."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.dialect.writes_in_transaction:
            return method(self, *args, **kwargs)
        with self.transaction():
            return method(self, *args, **kwargs)

    return wrapper


class Where:
    """A WHERE clause built one filter at a time: its conditions (AND-ed) and their parameters,
    in order. ``str()`` gives " WHERE ..." (or nothing, without conditions)."""

    __slots__ = ("conditions", "params")

    def __init__(self, condition=None, params=()):
        self.conditions, self.params = [], []
        if condition:
            self.add(condition, params)

    def add(self, condition, params=()):
        self.conditions.append(condition)
        self.params += params
        return self

    def equal(self, **values):
        """``column = value`` for each of ``values`` that is not None."""
        for column, value in values.items():
            if value is not None:
                self.add(f"{column} = ?", [value])
        return self

    def span(self, column, start, end):
        """``start <= column < end``; an end that is None is left open."""
        if start is not None:
            self.add(f"{column} >= ?", [start])
        if end is not None:
            self.add(f"{column} < ?", [end])
        return self

    def __str__(self):
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""


class Dialect(ABC):
    """How one engine spells what the shared SQL needs."""

    #: run each one-statement write in ``transaction()`` (see ``writes``)
    writes_in_transaction = False
    #: at most this many values in one ``IN (...)`` (SQLite's limit on bound parameters);
    #: None: any number in one array parameter (PostgreSQL's ``= ANY(?)``)
    chunk = None
    #: the function giving a substring's position (1-based, 0 when absent)
    position = ""
    #: what follows ``FROM deliveries`` in ``waiting_on_a_problem``: an index hint, or nothing
    waiting_hint = ""

    @abstractmethod
    def time(self, value):
        """An aware datetime (or None) as the engine stores it: UTC, whole seconds."""

    @abstractmethod
    def when(self, value):
        """A stored time (or None) as an aware UTC datetime."""

    @abstractmethod
    def json(self, value, *, default=None):
        """A JSON-able value as the engine stores it (``default`` as in ``json.dumps``)."""

    @abstractmethod
    def loads(self, value):
        """A stored JSON value as Python data."""

    @abstractmethod
    def one_of(self, column, values):
        """(condition, params): ``column`` is one of ``values`` (a short list)."""

    @abstractmethod
    def has_tag(self, tag):
        """(condition, params): a subscriber's tags include ``tag``."""

    def batches(self, column, values):
        """(condition, params) for each statement needed to look up the distinct ``values``:
        one for an engine that binds an array, else chunks under its limit."""
        values = list(set(values))
        size = self.chunk or len(values) or 1
        for start in range(0, len(values), size):
            yield self.one_of(column, values[start:start + size])

    def to_db(self, column, value):
        """A subscriber's or delivery's column value as stored."""
        if column in TIME_COLUMNS:
            return self.time(value)
        if column == "tags":
            return self.json(list(value))
        if column == "fields":
            return self.json(dict(value))
        return value

    def subscriber(self, row):
        return subscriber_from_row(row, when=self.when, tags=self.loads, fields=self.loads)

    def delivery(self, row):
        return delivery_from_row(row, when=self.when)
