"""The schema, written once for both engines: every table and index, as the ordered steps that
built it (``STEPS``). SQLite's migrations (``migrations.py``) and PostgreSQL's
(``postgres.py``) both run these steps, under the same names and version numbers.

The engines differ in a few column types only; ``$name`` in a step stands for the type in
``TYPES``, where the two spellings stand side by side. Never edit a step that has shipped:
add a new one, so that every existing database upgrades without losing a row.
"""

from __future__ import annotations

import sqlite3
from string import Template

ENGINES = ("sqlite", "postgresql")

#            SQLite                                      PostgreSQL
TYPES = {
    # a row id the database assigns (SQLite's rowid), and a column that names one
    "id":     ("INTEGER PRIMARY KEY",                     "BIGSERIAL PRIMARY KEY"),
    "ref":    ("INTEGER",                                 "BIGINT"),
    # a time: ISO 8601 text in UTC with a Z (models.iso), or timestamptz
    "time":   ("TEXT",                                    "TIMESTAMPTZ"),
    "now":    ("(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))", "now()"),
    # tags, fields, raw payloads and details: JSON text, or jsonb
    "json":   ("TEXT",                                    "JSONB"),
    # the claim orders by (due_at, id): a SQLite index ends with the rowid already,
    # PostgreSQL has no implicit rowid
    "and_id": ("",                                        ", id"),
}

SCHEMA_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS schema_migrations "
                     "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at $time NOT NULL "
                     "DEFAULT $now)")

# The tables whose rows m010 counts, and the column counted (see m010 below).
_COUNTED = (("subscribers", "status"), ("deliveries", "state"))


def _sqlite_counted(table, column):
    """m010 on SQLite for one table: its counts now, and a row trigger for each change."""
    return f"""
        INSERT INTO row_counts (tbl, value, n)
            SELECT '{table}', {column}, COUNT(*) FROM {table} GROUP BY {column};
        CREATE TRIGGER {table}_counted_insert AFTER INSERT ON {table} BEGIN
            INSERT INTO row_counts (tbl, value, n) VALUES ('{table}', NEW.{column}, 1)
                ON CONFLICT (tbl, value) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER {table}_counted_update AFTER UPDATE OF {column} ON {table}
                WHEN OLD.{column} IS NOT NEW.{column} BEGIN
            UPDATE row_counts SET n = n - 1 WHERE tbl = '{table}' AND value = OLD.{column};
            INSERT INTO row_counts (tbl, value, n) VALUES ('{table}', NEW.{column}, 1)
                ON CONFLICT (tbl, value) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER {table}_counted_delete AFTER DELETE ON {table} BEGIN
            UPDATE row_counts SET n = n - 1 WHERE tbl = '{table}' AND value = OLD.{column};
        END;
        """


def _postgres_counted(table, column):
    """m010 on PostgreSQL for one table: its counts now, and statement triggers appending each
    statement's net change per value (folded now and then by fold_row_counts)."""
    return f"""
        INSERT INTO row_counts (tbl, value, n)
            SELECT '{table}', {column}, COUNT(*) FROM {table} GROUP BY {column};
        CREATE FUNCTION {table}_counted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO row_counts (tbl, value, n)
                    SELECT '{table}', {column}, COUNT(*) FROM new_rows GROUP BY {column};
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO row_counts (tbl, value, n)
                    SELECT '{table}', {column}, -COUNT(*) FROM old_rows GROUP BY {column};
            ELSE
                INSERT INTO row_counts (tbl, value, n)
                    SELECT '{table}', value, SUM(n) FROM (
                        SELECT {column}, 1 FROM new_rows UNION ALL SELECT {column}, -1 FROM old_rows
                    ) AS change (value, n) GROUP BY value HAVING SUM(n) <> 0;
            END IF;
            IF random() < 0.01 THEN
                PERFORM fold_row_counts();
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER {table}_counted_insert AFTER INSERT ON {table}
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
            EXECUTE FUNCTION {table}_counted();
        CREATE TRIGGER {table}_counted_update AFTER UPDATE ON {table}
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
            EXECUTE FUNCTION {table}_counted();
        CREATE TRIGGER {table}_counted_delete AFTER DELETE ON {table}
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
            EXECUTE FUNCTION {table}_counted();
        """


STEPS = [
    ("m001_core", """
        CREATE TABLE subscribers (
            id $id,
            uid TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            timezone TEXT,
            status TEXT NOT NULL,
            tags $json NOT NULL DEFAULT '[]',
            fields $json NOT NULL DEFAULT '{}',
            consent_source TEXT,
            consent_at $time,
            consent_text TEXT,
            consent_ip TEXT,
            confirmed_at $time,
            withdrawn_at $time,
            paused_at $time,
            created_at $time NOT NULL,
            updated_at $time NOT NULL
        );
        CREATE TABLE deliveries (
            id $id,
            subscriber_id $ref NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            campaign TEXT NOT NULL,
            step TEXT NOT NULL,
            due_at $time NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            provider TEXT,
            provider_message_id TEXT,
            last_error TEXT,
            sent_at $time,
            claimed_at $time,
            created_at $time NOT NULL,
            UNIQUE (subscriber_id, campaign, step)
        );
        """),
    ("m002_enrollments_and_meta", """
        CREATE TABLE enrollments (
            subscriber_id $ref NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            campaign TEXT NOT NULL,
            enrolled_at $time NOT NULL,
            shift_seconds INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (subscriber_id, campaign)
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """),
    # The due query (state = 'scheduled' AND due_at <= now) must not scan the ledger.
    ("m003_due_index", """
        CREATE INDEX deliveries_due ON deliveries (state, due_at$and_id);
        CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id, state);
        CREATE INDEX deliveries_sent ON deliveries (subscriber_id, sent_at)
            WHERE sent_at IS NOT NULL;
        CREATE INDEX subscribers_status ON subscribers (status);
        """),
    # Provider events (and our own unsubscribes) for reporting and suppression, kept with
    # the raw payload. (provider, provider_event_id) is unique, so a replayed or retried
    # webhook is recorded and applied once; rows without a provider id are never merged.
    # rate_hits holds one row per counted request for the signup rate limits, so several
    # server processes share them.
    ("m004_events", """
        CREATE TABLE events (
            id $id,
            delivery_id $ref REFERENCES deliveries(id) ON DELETE SET NULL,
            subscriber_id $ref REFERENCES subscribers(id) ON DELETE CASCADE,
            provider TEXT NOT NULL,
            type TEXT NOT NULL,
            occurred_at $time NOT NULL,
            received_at $time NOT NULL,
            provider_event_id TEXT,
            raw $json NOT NULL DEFAULT '{}',
            UNIQUE (provider, provider_event_id)
        );
        CREATE INDEX events_delivery ON events (delivery_id, type);
        CREATE INDEX events_subscriber ON events (subscriber_id);
        CREATE INDEX deliveries_provider_message ON deliveries (provider_message_id)
            WHERE provider_message_id IS NOT NULL;
        CREATE TABLE rate_hits (
            key TEXT NOT NULL,
            at $time NOT NULL
        );
        CREATE INDEX rate_hits_key ON rate_hits (key, at);
        """),
    # erased: one row per person erased on request, holding only a keyed one-way hash of
    # the address (sender/lists.py explains the choice), so an import or an add never
    # mails them again by accident. key_id tells which DRIP_SECRET_KEY made the hash.
    # subscribers_created serves the signup-date segments.
    ("m005_erasure_and_lists", """
        CREATE TABLE erased (
            hash TEXT PRIMARY KEY,
            key_id TEXT NOT NULL,
            erased_at $time NOT NULL
        );
        CREATE INDEX subscribers_created ON subscribers (created_at);
        """),
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
    ("m006_leases_and_handoffs", """
        ALTER TABLE deliveries ADD COLUMN lease TEXT;
        ALTER TABLE deliveries ADD COLUMN handed_at $time;
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
            seen_at $time NOT NULL,
            PRIMARY KEY (provider, token)
        );
        CREATE INDEX webhook_tokens_seen ON webhook_tokens (seen_at);
        """),
    # The complaint and bounce brake (sender/brake.py): a row per campaign ever paused for
    # its rates. While ``resumed_at`` is NULL the claim skips the campaign's deliveries (they
    # wait, scheduled); `drip campaigns resume` sets it, and the rates count afresh from
    # then. deliveries_campaign serves the per-campaign counts of a window and of the mail
    # waiting behind a brake.
    ("m007_campaign_brakes", """
        CREATE TABLE campaign_brakes (
            campaign TEXT PRIMARY KEY,
            braked_at $time NOT NULL,
            reason TEXT NOT NULL,
            details $json NOT NULL DEFAULT '{}',
            resumed_at $time
        );
        CREATE INDEX deliveries_campaign ON deliveries (campaign, state, sent_at);
        """),
    # The admin dashboard (sender/web/admin): a password hash per user name (argon2id, never
    # the password), the sessions (a hash of each cookie's token, so a copy of the database
    # opens no session), and the audit log of who did what and when. The log names a
    # subscriber by id only, so an erasure leaves no address behind in it. The partial
    # indexes serve the overview's per-day counts of confirmations, unsubscribes and mail
    # sent (signups use subscribers_created).
    ("m008_admin", """
        CREATE TABLE admin_users (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created_at $time NOT NULL,
            updated_at $time NOT NULL
        );
        CREATE TABLE admin_sessions (
            token_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created_at $time NOT NULL,
            seen_at $time NOT NULL
        );
        CREATE INDEX admin_sessions_name ON admin_sessions (name);
        CREATE INDEX admin_sessions_seen ON admin_sessions (seen_at);
        CREATE TABLE admin_audit (
            id $id,
            at $time NOT NULL,
            user_name TEXT NOT NULL,
            action TEXT NOT NULL,
            subscriber_id $ref,
            target TEXT,
            details $json NOT NULL DEFAULT '{}',
            ip TEXT
        );
        CREATE INDEX admin_audit_subscriber ON admin_audit (subscriber_id, id)
            WHERE subscriber_id IS NOT NULL;
        CREATE INDEX subscribers_confirmed ON subscribers (confirmed_at)
            WHERE confirmed_at IS NOT NULL;
        CREATE INDEX subscribers_withdrawn ON subscribers (withdrawn_at)
            WHERE withdrawn_at IS NOT NULL;
        CREATE INDEX deliveries_sent_at ON deliveries (sent_at) WHERE sent_at IS NOT NULL;
        """),
    # Every change of state now stores a reason code (sender/ledger.py). Rows written before
    # carry only the message, in the words drip wrote then; this gives them their code once,
    # so that nothing ever has to read meaning out of a message again.
    ("m009_reason_codes", """
        UPDATE deliveries SET reason = 'confirmed'
            WHERE reason IS NULL AND state = 'cancelled' AND last_error = 'subscriber confirmed';
        UPDATE deliveries SET reason = 'suppressed'
            WHERE reason IS NULL AND state = 'cancelled'
            AND (last_error LIKE '% reported %' OR last_error LIKE 'provider rejected the address:%');
        UPDATE deliveries SET reason = CASE WHEN (
                SELECT status FROM subscribers s WHERE s.id = deliveries.subscriber_id)
                IN ('bounced', 'complained') THEN 'suppressed' ELSE 'unsubscribed' END
            WHERE reason IS NULL AND state = 'cancelled'
            AND last_error LIKE 'cancelled at % before its send time';
        UPDATE deliveries SET reason = 'step_gone'
            WHERE reason IS NULL AND state = 'cancelled' AND last_error IN (
                'step removed from the campaign', 'the campaign or step no longer exists');
        UPDATE deliveries SET reason = 'step_added_late'
            WHERE reason IS NULL AND state = 'skipped' AND last_error IN (
                'step added before a step already sent', 'step added after its time had passed');
        UPDATE deliveries SET reason = 'gave_up'
            WHERE reason IS NULL AND state = 'failed' AND last_error LIKE 'gave up after % attempts:%';
        UPDATE deliveries SET reason = 'bad_data'
            WHERE reason IS NULL AND state = 'failed' AND last_error LIKE 'not sent: %';
        UPDATE deliveries SET reason = 'rejected' WHERE reason IS NULL AND state = 'failed';
        UPDATE deliveries SET reason = 'resolved_sent'
            WHERE reason IS NULL AND state = 'sent' AND last_error = 'marked sent by the coach';
        UPDATE deliveries SET reason = 'unconfirmed'
            WHERE reason IS NULL AND state = 'sending' AND last_error LIKE 'hand-off unconfirmed (%';
        """),
    # Stored counts for `drip status`: how many subscribers have each status and how many
    # deliveries are in each state, kept by triggers, so they change in the same transaction
    # as the rows (a rollback takes both back) whichever code writes the rows, and status
    # reads a few rows instead of counting the whole list and ledger. The step counts the
    # rows already there. SQLite has one writer at a time: one row per (tbl, value), added
    # to in place. PostgreSQL has several writers at once, which one row per value would make
    # queue (or deadlock): there each statement appends its net change per value, from its
    # transition tables, and about one statement in a hundred also folds the oldest rows into
    # one per value, skipping rows another transaction is folding, so no writer ever waits on
    # another. A reader sums the rows of each value. The engines' SQL differs too much here
    # to share, so the step gives each its own.
    ("m010_row_counts", {
        "sqlite": """
        CREATE TABLE row_counts (
            id INTEGER PRIMARY KEY,
            tbl TEXT NOT NULL,
            value TEXT NOT NULL,
            n INTEGER NOT NULL,
            UNIQUE (tbl, value)
        );
        """ + "".join(_sqlite_counted(table, column) for table, column in _COUNTED),
        "postgresql": """
        CREATE TABLE row_counts (
            id BIGSERIAL PRIMARY KEY,
            tbl TEXT NOT NULL,
            value TEXT NOT NULL,
            n BIGINT NOT NULL
        );
        CREATE FUNCTION fold_row_counts() RETURNS void LANGUAGE sql AS $$
            WITH folded AS (
                DELETE FROM row_counts WHERE id = ANY(ARRAY(
                    SELECT id FROM row_counts ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED))
                RETURNING tbl, value, n)
            INSERT INTO row_counts (tbl, value, n)
                SELECT tbl, value, SUM(n) FROM folded GROUP BY tbl, value HAVING SUM(n) <> 0
        $$;
        """ + "".join(_postgres_counted(table, column) for table, column in _COUNTED)}),
    # Each enrolment remembers the campaign file (its fingerprint) its rows were planned
    # against, so that after a campaign edit only the enrolments planned against another
    # version are checked (sender/sequence.py), a page at a time. Existing rows take the
    # fingerprint recorded for their campaign; NULL (none recorded) means "check it".
    ("m011_enrolment_fingerprints", """
        ALTER TABLE enrollments ADD COLUMN fingerprint TEXT;
        UPDATE enrollments SET fingerprint = (
            SELECT value FROM meta WHERE meta.key = 'campaign-fingerprint:' || enrollments.campaign);
        CREATE INDEX enrollments_fingerprint ON enrollments (campaign, fingerprint, subscriber_id);
        """),
    # Broadcasts (sender/broadcasts.py): one row per broadcast file scheduled or sent, with its
    # schedule (a moment, or a local time on ``local_day`` in each reader's zone), its state
    # (scheduled, sending, sent, cancelled), how many people it was written for, its times,
    # and ``source``: the file as it was when its deliveries were written, so the archive
    # shows what was sent. Its deliveries are ordinary ledger rows of campaign
    # ``broadcast.NAME`` (step ``send``).
    ("m012_broadcasts", """
        CREATE TABLE broadcasts (
            name TEXT PRIMARY KEY,
            campaign TEXT NOT NULL UNIQUE,
            subject TEXT NOT NULL,
            when_text TEXT NOT NULL,
            local_day TEXT,
            first_at $time NOT NULL,
            last_at $time NOT NULL,
            state TEXT NOT NULL,
            segment TEXT,
            audience INTEGER NOT NULL DEFAULT 0,
            archive INTEGER NOT NULL DEFAULT 1,
            source TEXT,
            scheduled_at $time NOT NULL,
            started_at $time,
            finished_at $time,
            cancelled_at $time,
            updated_at $time NOT NULL
        );
        CREATE INDEX broadcasts_state ON broadcasts (state, first_at);
        """),
    # Room on each page of the ledger (PostgreSQL): every hand-off writes a row three times
    # (claimed, marked handed, recorded). The mark changes no indexed column, so PostgreSQL
    # can write it beside the row without touching any of the ledger's indexes, but only if
    # the row's page has room; filled to the brim, the mark went to another page and into
    # every index. Pages are now filled to 60% (from here on: the rows already written keep
    # their pages), which leaves room for the claim's and the mark's new versions: in the
    # workers benchmark the database then uses about a seventh less CPU an email, and the
    # table ends smaller, each page reusing its own space. SQLite has no such setting.
    ("m013_room_on_each_page", {
        "sqlite": "",
        "postgresql": "ALTER TABLE deliveries SET (fillfactor = 60);"}),
]


def for_engine(sql, engine):
    """``sql`` with each ``$name`` replaced by that engine's spelling (engine: one of ENGINES).
    A step may instead give each engine its own SQL, as a dict by engine, used as written."""
    if isinstance(sql, dict):
        return sql[engine]
    column = ENGINES.index(engine)
    return Template(sql).substitute({name: spellings[column] for name, spellings in TYPES.items()})


def statements(script, engine):
    """The statements of a step's script, split at each ';' that ends one: not at a ';' inside
    a SQLite trigger's BEGIN ... END, nor inside a PostgreSQL $$-quoted function body."""
    found, part = [], ""
    for piece in script.split(";"):
        part = f"{part};{piece}" if part else piece
        if engine == "sqlite" and not sqlite3.complete_statement(part + ";"):
            continue
        if engine == "postgresql" and part.count("$$") % 2:
            continue
        if part.strip():
            found.append(part.strip())
        part = ""
    return found
