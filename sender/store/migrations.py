"""Ordered schema migrations for the SQLite store.

Each migration is a function applied once, in order, inside a transaction,
and recorded in ``schema_migrations``. Never edit a migration that has
shipped: add a new one, so that every existing database upgrades without
losing a row.
"""

from __future__ import annotations


def m001_core(conn):
    conn.executescript(
        """
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            timezone TEXT,
            status TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]',
            fields TEXT NOT NULL DEFAULT '{}',
            consent_source TEXT,
            consent_at TEXT,
            consent_text TEXT,
            consent_ip TEXT,
            confirmed_at TEXT,
            withdrawn_at TEXT,
            paused_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            campaign TEXT NOT NULL,
            step TEXT NOT NULL,
            due_at TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            provider TEXT,
            provider_message_id TEXT,
            last_error TEXT,
            sent_at TEXT,
            claimed_at TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (subscriber_id, campaign, step)
        );
        """
    )


def m002_enrollments_and_meta(conn):
    conn.executescript(
        """
        CREATE TABLE enrollments (
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            campaign TEXT NOT NULL,
            enrolled_at TEXT NOT NULL,
            shift_seconds INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (subscriber_id, campaign)
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


def m003_due_index(conn):
    # The due query (state = 'scheduled' AND due_at <= now) must not scan the ledger.
    conn.executescript(
        """
        CREATE INDEX deliveries_due ON deliveries (state, due_at);
        CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id, state);
        CREATE INDEX deliveries_sent ON deliveries (subscriber_id, sent_at)
            WHERE sent_at IS NOT NULL;
        CREATE INDEX subscribers_status ON subscribers (status);
        """
    )


def m004_events(conn):
    # Provider events (and our own unsubscribes) for reporting and suppression, kept with
    # the raw payload. (provider, provider_event_id) is unique, so a replayed or retried
    # webhook is recorded and applied once; rows without a provider id are never merged.
    # rate_hits holds one row per counted request for the signup rate limits, so several
    # server processes share them.
    conn.executescript(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            delivery_id INTEGER REFERENCES deliveries(id) ON DELETE SET NULL,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE CASCADE,
            provider TEXT NOT NULL,
            type TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            provider_event_id TEXT,
            raw TEXT NOT NULL DEFAULT '{}',
            UNIQUE (provider, provider_event_id)
        );
        CREATE INDEX events_delivery ON events (delivery_id, type);
        CREATE INDEX events_subscriber ON events (subscriber_id);
        CREATE INDEX deliveries_provider_message ON deliveries (provider_message_id)
            WHERE provider_message_id IS NOT NULL;
        CREATE TABLE rate_hits (
            key TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX rate_hits_key ON rate_hits (key, at);
        """
    )


def m005_erasure_and_lists(conn):
    # erased: one row per person erased on request, holding only a keyed one-way hash of
    # the address (sender/lists.py explains the choice), so an import or an add never
    # mails them again by accident. key_id tells which DRIP_SECRET_KEY made the hash.
    # subscribers_created serves the signup-date segments.
    conn.executescript(
        """
        CREATE TABLE erased (
            hash TEXT PRIMARY KEY,
            key_id TEXT NOT NULL,
            erased_at TEXT NOT NULL
        );
        CREATE INDEX subscribers_created ON subscribers (created_at);
        """
    )


MIGRATIONS = [m001_core, m002_enrollments_and_meta, m003_due_index, m004_events,
              m005_erasure_and_lists]


def migrate(conn, *, upto=None):
    """Apply every migration not yet recorded; returns the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL "
        "DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for version, migration in enumerate(MIGRATIONS[:upto], start=1):
        if version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have just migrated.
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?",
                            (version,)).fetchone():
                conn.execute("ROLLBACK")
                continue
            for statement, params in _statements(migration):
                conn.execute(statement, params)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                         (version, migration.__name__))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(migration.__name__)
    return applied


class _Recorder:
    """Collects the SQL a migration would run, so it can run inside our transaction
    (``executescript`` would commit on its own)."""

    def __init__(self):
        self.statements = []

    def executescript(self, script):
        self.statements += [(s.strip(), ()) for s in script.split(";") if s.strip()]

    def execute(self, statement, params=()):
        self.statements.append((statement, params))


def _statements(migration):
    recorder = _Recorder()
    migration(recorder)
    return recorder.statements
