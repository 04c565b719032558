"""Ordered schema migrations for the SQLite store.

Each migration is a function applied once, in order, inside a transaction,
and recorded in ``schema_migrations``. Never edit a migration that has
shipped: add a new one, so that every existing database upgrades without
losing a row.
"""

from __future__ import annotations

from ..errors import DripError


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


def m006_leases_and_handoffs(conn):
    # The claim as a lease: ``lease`` is a fresh token on every claim (and on every takeover
    # of a stale claim), and every later write to the row names it, so a process that lost
    # its claim can change nothing. ``handed_at`` is set, in a short transaction before the
    # provider is called, on exactly the rows handed to it; ``handoff_key`` names the
    # request they went in (Resend's idempotency key). A stale row without ``handed_at``
    # never reached a provider. ``reason`` is a fixed code beside the human ``last_error``
    # (e.g. "unsubscribed"), so no code reads meaning out of message text. Rows in
    # ``sending`` when this runs may have reached a provider: they count as handed.
    # webhook_tokens: signed webhook tokens already used (Mailgun signs only a timestamp
    # and a token), so a captured signature cannot be replayed with other event data.
    conn.executescript(
        """
        ALTER TABLE deliveries ADD COLUMN lease TEXT;
        ALTER TABLE deliveries ADD COLUMN handed_at TEXT;
        ALTER TABLE deliveries ADD COLUMN handoff_key TEXT;
        ALTER TABLE deliveries ADD COLUMN reason TEXT;
        UPDATE deliveries SET reason = 'unsubscribed'
            WHERE state = 'cancelled' AND last_error LIKE 'unsubscribed%';
        UPDATE deliveries SET handed_at = claimed_at WHERE state = 'sending';
        UPDATE deliveries SET reason = 'needs_decision'
            WHERE state = 'sending' AND last_error LIKE 'interrupted during hand-off%';
        CREATE INDEX deliveries_sending ON deliveries (claimed_at) WHERE state = 'sending';
        CREATE INDEX deliveries_lease ON deliveries (lease) WHERE state = 'sending';
        CREATE INDEX deliveries_waiting ON deliveries (due_at)
            WHERE state = 'scheduled'
            AND reason IN ('retrying', 'template_error', 'campaign_error');
        CREATE TABLE webhook_tokens (
            provider TEXT NOT NULL,
            token TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (provider, token)
        );
        CREATE INDEX webhook_tokens_seen ON webhook_tokens (seen_at);
        """
    )


def m007_campaign_brakes(conn):
    # The complaint and bounce brake (sender/brake.py): a row per campaign ever paused for
    # its rates. While ``resumed_at`` is NULL the claim skips the campaign's deliveries (they
    # wait, scheduled); `drip campaigns resume` sets it, and the rates count afresh from
    # then. deliveries_campaign serves the per-campaign counts of a window and of the mail
    # waiting behind a brake.
    conn.executescript(
        """
        CREATE TABLE campaign_brakes (
            campaign TEXT PRIMARY KEY,
            braked_at TEXT NOT NULL,
            reason TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}',
            resumed_at TEXT
        );
        CREATE INDEX deliveries_campaign ON deliveries (campaign, state, sent_at);
        """
    )


def m008_admin(conn):
    # The admin dashboard (sender/web/admin): a password hash per user name (argon2id, never
    # the password), the sessions (a hash of each cookie's token, so a copy of the database
    # opens no session), and the audit log of who did what and when. The log names a
    # subscriber by id only, so an erasure leaves no address behind in it. The partial
    # indexes serve the overview's per-day counts of confirmations, unsubscribes and mail
    # sent (signups use subscribers_created).
    conn.executescript(
        """
        CREATE TABLE admin_users (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE admin_sessions (
            token_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created_at TEXT NOT NULL,
            seen_at TEXT NOT NULL
        );
        CREATE INDEX admin_sessions_name ON admin_sessions (name);
        CREATE INDEX admin_sessions_seen ON admin_sessions (seen_at);
        CREATE TABLE admin_audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            user_name TEXT NOT NULL,
            action TEXT NOT NULL,
            subscriber_id INTEGER,
            target TEXT,
            details TEXT NOT NULL DEFAULT '{}',
            ip TEXT
        );
        CREATE INDEX admin_audit_subscriber ON admin_audit (subscriber_id, id)
            WHERE subscriber_id IS NOT NULL;
        CREATE INDEX subscribers_confirmed ON subscribers (confirmed_at)
            WHERE confirmed_at IS NOT NULL;
        CREATE INDEX subscribers_withdrawn ON subscribers (withdrawn_at)
            WHERE withdrawn_at IS NOT NULL;
        CREATE INDEX deliveries_sent_at ON deliveries (sent_at) WHERE sent_at IS NOT NULL;
        """
    )


MIGRATIONS = [m001_core, m002_enrollments_and_meta, m003_due_index, m004_events,
              m005_erasure_and_lists, m006_leases_and_handoffs, m007_campaign_brakes, m008_admin]


def migrate(conn, *, upto=None):
    """Apply every migration not yet recorded; returns the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL "
        "DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    check_not_newer(max(done, default=0), len(MIGRATIONS), where="this SQLite database")
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


def check_not_newer(version, known, *, where):
    """Refuse a database that a newer drip has migrated: this drip does not know its schema
    and could damage it."""
    if version > known:
        raise DripError(f"{where} was upgraded by a newer drip (schema version {version}; this "
                        f"drip knows up to {known}). Upgrade drip (pip install -U drip, or pull "
                        "the newer code) before using it; nothing was changed.")


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
