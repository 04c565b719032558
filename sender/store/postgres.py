"""The PostgreSQL store (psycopg 3): the same contract as SQLite, for several machines.

``DRIP_DATABASE=postgresql://user:password@host/dbname`` selects it (install the
driver with ``pip install 'drip[postgres]'``). Workers on any number of machines
share the due deliveries: ``claim_due`` takes rows with ``FOR UPDATE SKIP LOCKED``
in one statement, so two workers never get the same row and never wait on each
other. ``transaction()`` takes a transaction-scoped advisory lock, the
equivalent of SQLite's ``BEGIN IMMEDIATE``, so a read-then-write inside it
cannot race.

Migrations mirror ``migrations.py`` one for one (same names, same versions) and
are recorded in ``schema_migrations`` the same way; they run under an advisory
lock, so workers starting together migrate once.
"""

from __future__ import annotations

import json
import re
import secrets
from contextlib import contextmanager
from datetime import UTC, timedelta
from functools import partial

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import DripError, InvalidInput
from ..models import Enrollment, delivery_from_row, subscriber_from_row
from .base import Store, new_lease, period_source
from .migrations import check_not_newer

_WRITE_LOCK = 0x64726970          # "drip": the lock transaction() takes
_MIGRATE_LOCK = 0x64726971
_SUBSCRIBER_COLUMNS = {
    "name", "timezone", "status", "tags", "fields", "paused_at", "consent_source",
    "consent_at", "consent_text", "consent_ip", "confirmed_at", "withdrawn_at",
}
_DELIVERY_COLUMNS = {
    "state", "due_at", "provider", "provider_message_id", "last_error", "sent_at", "claimed_at",
    "attempts", "lease", "handed_at", "handoff_key", "reason",
}
_TIME_COLUMNS = {"paused_at", "consent_at", "confirmed_at", "withdrawn_at", "due_at", "sent_at",
                 "claimed_at", "handed_at"}

PG_MIGRATIONS = [
    ("m001_core", """
        CREATE TABLE subscribers (
            id BIGSERIAL PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            timezone TEXT,
            status TEXT NOT NULL,
            tags JSONB NOT NULL DEFAULT '[]',
            fields JSONB NOT NULL DEFAULT '{}',
            consent_source TEXT,
            consent_at TIMESTAMPTZ,
            consent_text TEXT,
            consent_ip TEXT,
            confirmed_at TIMESTAMPTZ,
            withdrawn_at TIMESTAMPTZ,
            paused_at TIMESTAMPTZ,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE deliveries (
            id BIGSERIAL PRIMARY KEY,
            subscriber_id BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            campaign TEXT NOT NULL,
            step TEXT NOT NULL,
            due_at TIMESTAMPTZ NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            provider TEXT,
            provider_message_id TEXT,
            last_error TEXT,
            sent_at TIMESTAMPTZ,
            claimed_at TIMESTAMPTZ,
            created_at TIMESTAMPTZ NOT NULL,
            UNIQUE (subscriber_id, campaign, step)
        );
    """),
    ("m002_enrollments_and_meta", """
        CREATE TABLE enrollments (
            subscriber_id BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            campaign TEXT NOT NULL,
            enrolled_at TIMESTAMPTZ NOT NULL,
            shift_seconds INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (subscriber_id, campaign)
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """),
    ("m003_due_index", """
        -- id too: PostgreSQL has no implicit rowid, and the claim orders by (due_at, id)
        CREATE INDEX deliveries_due ON deliveries (state, due_at, id);
        CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id, state);
        CREATE INDEX deliveries_sent ON deliveries (subscriber_id, sent_at)
            WHERE sent_at IS NOT NULL;
        CREATE INDEX subscribers_status ON subscribers (status);
    """),
    ("m004_events", """
        CREATE TABLE events (
            id BIGSERIAL PRIMARY KEY,
            delivery_id BIGINT REFERENCES deliveries(id) ON DELETE SET NULL,
            subscriber_id BIGINT REFERENCES subscribers(id) ON DELETE CASCADE,
            provider TEXT NOT NULL,
            type TEXT NOT NULL,
            occurred_at TIMESTAMPTZ NOT NULL,
            received_at TIMESTAMPTZ NOT NULL,
            provider_event_id TEXT,
            raw JSONB NOT NULL DEFAULT '{}',
            UNIQUE (provider, provider_event_id)
        );
        CREATE INDEX events_delivery ON events (delivery_id, type);
        CREATE INDEX events_subscriber ON events (subscriber_id);
        CREATE INDEX deliveries_provider_message ON deliveries (provider_message_id)
            WHERE provider_message_id IS NOT NULL;
        CREATE TABLE rate_hits (key TEXT NOT NULL, at TIMESTAMPTZ NOT NULL);
        CREATE INDEX rate_hits_key ON rate_hits (key, at);
    """),
    ("m005_erasure_and_lists", """
        CREATE TABLE erased (
            hash TEXT PRIMARY KEY,
            key_id TEXT NOT NULL,
            erased_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX subscribers_created ON subscribers (created_at);
    """),
    ("m006_leases_and_handoffs", """
        ALTER TABLE deliveries ADD COLUMN lease TEXT;
        ALTER TABLE deliveries ADD COLUMN handed_at TIMESTAMPTZ;
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
            seen_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (provider, token)
        );
        CREATE INDEX webhook_tokens_seen ON webhook_tokens (seen_at);
    """),
    ("m007_campaign_brakes", """
        CREATE TABLE campaign_brakes (
            campaign TEXT PRIMARY KEY,
            braked_at TIMESTAMPTZ NOT NULL,
            reason TEXT NOT NULL,
            details JSONB NOT NULL DEFAULT '{}',
            resumed_at TIMESTAMPTZ
        );
        CREATE INDEX deliveries_campaign ON deliveries (campaign, state, sent_at);
    """),
    ("m008_admin", """
        CREATE TABLE admin_users (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE admin_sessions (
            token_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            seen_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX admin_sessions_name ON admin_sessions (name);
        CREATE INDEX admin_sessions_seen ON admin_sessions (seen_at);
        CREATE TABLE admin_audit (
            id BIGSERIAL PRIMARY KEY,
            at TIMESTAMPTZ NOT NULL,
            user_name TEXT NOT NULL,
            action TEXT NOT NULL,
            subscriber_id BIGINT,
            target TEXT,
            details JSONB NOT NULL DEFAULT '{}',
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
]


def masked(url):
    """The URL with any password replaced by ***, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", str(url))


def _t(value):
    """A datetime as stored: UTC, whole seconds (like the SQLite store)."""
    return None if value is None else value.astimezone(UTC).replace(microsecond=0)


def _out(value):
    return None if value is None else value.astimezone(UTC)


class PostgresStore(Store):
    def __init__(self, url, *, migrate_schema=True, connect_timeout=10):
        self.url = url
        try:
            self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row,
                                        connect_timeout=connect_timeout,
                                        options="-c timezone=UTC")
            if migrate_schema:
                try:
                    migrate(self.conn)
                except DripError:
                    self.conn.close()
                    raise
        except psycopg.Error as exc:
            raise DripError(f"cannot open database {masked(url)}: {str(exc).strip()} "
                            "(check DRIP_DATABASE)") from None
        self._depth = 0

    def _x(self, sql, params=()):
        return self.conn.execute(sql, params)

    # --- lifecycle -------------------------------------------------------------
    def close(self):
        self.conn.close()

    @contextmanager
    def transaction(self):
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with self.conn.transaction():
                self._x("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
                yield self
        finally:
            self._depth = 0

    @contextmanager
    def handoff_transaction(self):
        """A plain transaction: the hand-off locks only its subscribers' rows
        (``lock_subscribers``) and its own claimed deliveries, so several workers hand off at
        once while an unsubscribe of one of those subscribers waits for the batch."""
        if self._depth:
            with self.transaction():
                yield self
            return
        self._depth = 1
        try:
            with self.conn.transaction():
                yield self
        finally:
            self._depth = 0

    def lock_subscribers(self, ids):
        ids = sorted(set(ids))
        if not ids:
            return {}
        rows = self._x("SELECT id, status FROM subscribers WHERE id = ANY(%s) ORDER BY id FOR SHARE",
                       (ids,)).fetchall()
        return {row["id"]: row["status"] for row in rows}

    def schema_version(self):
        return self._x("SELECT MAX(version) AS v FROM schema_migrations").fetchone()["v"] or 0

    @staticmethod
    def latest_version():
        return len(PG_MIGRATIONS)

    # --- subscribers -----------------------------------------------------------
    def add_subscriber(self, email, *, name, timezone, tags, fields, status, consent, now):
        row = self._x(
            "INSERT INTO subscribers (uid, email, name, timezone, status, tags, fields, "
            "consent_source, consent_at, consent_text, consent_ip, confirmed_at, created_at, "
            "updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (email) DO NOTHING RETURNING *",
            (secrets.token_hex(12), email, name, timezone, status, Jsonb(list(tags)),
             Jsonb(dict(fields)), consent.source, _t(consent.at), consent.text, consent.ip,
             _t(consent.confirmed_at), _t(now), _t(now))).fetchone()
        if row is None:
            raise InvalidInput(f"{email} is already a subscriber")
        return _subscriber(row)

    def update_subscriber(self, subscriber_id, *, now, **changes):
        unknown = set(changes) - _SUBSCRIBER_COLUMNS
        if unknown:
            raise ValueError(f"unknown subscriber columns: {sorted(unknown)}")
        values = {k: _to_db(k, v) for k, v in changes.items()}
        values["updated_at"] = _t(now)
        assignments = ", ".join(f"{k} = %s" for k in values)
        row = self._x(f"UPDATE subscribers SET {assignments} WHERE id = %s RETURNING *",
                      (*values.values(), subscriber_id)).fetchone()
        return _subscriber(row) if row else None

    def get_subscriber(self, *, id=None, email=None, uid=None):
        column, value = next((c, v) for c, v in (("id", id), ("email", email), ("uid", uid))
                             if v is not None)
        row = self._x(f"SELECT * FROM subscribers WHERE {column} = %s", (value,)).fetchone()
        return _subscriber(row) if row else None

    def get_subscribers(self, ids):
        ids = list(set(ids))
        if not ids:
            return {}
        rows = self._x("SELECT * FROM subscribers WHERE id = ANY(%s)", (ids,)).fetchall()
        return {row["id"]: _subscriber(row) for row in rows}

    def list_subscribers(self, *, status=None, tag=None, limit=None):
        where, params = [], []
        if status:
            where.append("status = %s")
            params.append(status)
        if tag:
            where.append("tags @> %s")
            params.append(Jsonb([tag]))
        sql = "SELECT * FROM subscribers"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        for row in self._x(sql, params).fetchall():
            yield _subscriber(row)

    def subscriber_counts(self):
        rows = self._x("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    # --- enrolments ------------------------------------------------------------
    def enroll(self, subscriber_id, campaign, enrolled_at):
        row = self._x(
            "INSERT INTO enrollments (subscriber_id, campaign, enrolled_at) VALUES (%s,%s,%s) "
            "ON CONFLICT DO NOTHING RETURNING *",
            (subscriber_id, campaign, _t(enrolled_at))).fetchone()
        if row is None:
            return None
        return Enrollment(subscriber_id, campaign, _out(row["enrolled_at"]), 0)

    def enrollments(self, *, subscriber_id=None, campaign=None):
        where, params = [], []
        if subscriber_id is not None:
            where.append("subscriber_id = %s")
            params.append(subscriber_id)
        if campaign is not None:
            where.append("campaign = %s")
            params.append(campaign)
        sql = "SELECT * FROM enrollments"
        if where:
            sql += " WHERE " + " AND ".join(where)
        for row in self._x(sql + " ORDER BY subscriber_id, campaign", params).fetchall():
            yield Enrollment(row["subscriber_id"], row["campaign"], _out(row["enrolled_at"]),
                             row["shift_seconds"])

    def set_enrollment_shift(self, subscriber_id, campaign, shift_seconds):
        self._x("UPDATE enrollments SET shift_seconds = %s WHERE subscriber_id = %s "
                "AND campaign = %s", (int(shift_seconds), subscriber_id, campaign))

    # --- the delivery ledger ---------------------------------------------------
    def add_deliveries(self, rows, *, now):
        values = [(r["subscriber_id"], r["campaign"], r["step"], _t(r["due_at"]),
                   r.get("state", "scheduled"), r.get("last_error"), _t(now)) for r in rows]
        if not values:
            return 0
        with self.transaction(), self.conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, "
                "last_error, created_at) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                values)
            return cursor.rowcount

    def get_delivery(self, delivery_id):
        row = self._x("SELECT * FROM deliveries WHERE id = %s", (delivery_id,)).fetchone()
        return _delivery(row) if row else None

    def deliveries(self, *, subscriber_id=None, campaign=None, states=None,
                   due_from=None, due_before=None, limit=None):
        where, params = [], []
        if subscriber_id is not None:
            where.append("subscriber_id = %s")
            params.append(subscriber_id)
        if campaign is not None:
            where.append("campaign = %s")
            params.append(campaign)
        if states:
            where.append("state = ANY(%s)")
            params.append(list(states))
        if due_from is not None:
            where.append("due_at >= %s")
            params.append(_t(due_from))
        if due_before is not None:
            where.append("due_at < %s")
            params.append(_t(due_before))
        sql = "SELECT * FROM deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY due_at, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        for row in self._x(sql, params).fetchall():
            yield _delivery(row)

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
        return sorted((_delivery(r) for r in rows), key=lambda d: (d.due_at, d.id))

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
        return sorted((_delivery(r) for r in rows), key=lambda d: (d.due_at, d.id))

    def skip_ended(self, now):
        return self._x(
            "UPDATE deliveries SET state = 'skipped', reason = 'subscriber_ended', "
            "last_error = 'subscriber is ' || ("
            "  SELECT status FROM subscribers s WHERE s.id = deliveries.subscriber_id) "
            "WHERE state = 'scheduled' AND due_at <= %s AND subscriber_id IN ("
            "  SELECT id FROM subscribers WHERE status IN ('unsubscribed','bounced','complained'))",
            (_t(now),)).rowcount

    def renew_lease(self, lease, at):
        return self._x("UPDATE deliveries SET claimed_at = %s WHERE state = 'sending' "
                       "AND lease = %s", (_t(at), lease)).rowcount

    def update_delivery(self, delivery_id, *, expect_state=None, expect_lease=None, **changes):
        unknown = set(changes) - _DELIVERY_COLUMNS
        if unknown:
            raise ValueError(f"unknown delivery columns: {sorted(unknown)}")
        values = {k: _to_db(k, v) for k, v in changes.items()}
        sql = "UPDATE deliveries SET " + ", ".join(f"{k} = %s" for k in values) + " WHERE id = %s"
        params = [*values.values(), delivery_id]
        if expect_state:
            sql += " AND state = %s"
            params.append(expect_state)
        if expect_lease:
            sql += " AND lease = %s"
            params.append(expect_lease)
        return self._x(sql, params).rowcount == 1

    def cancel_pending(self, subscriber_id, reason, *, campaign=None, code=None):
        sql = ("UPDATE deliveries SET state = 'cancelled', last_error = %s, reason = %s "
               "WHERE subscriber_id = %s AND state = 'scheduled'")
        params = [reason, code, subscriber_id]
        if campaign:
            sql += " AND campaign = %s"
            params.append(campaign)
        return self._x(sql, params).rowcount

    def stale_sending(self, claimed_before):
        rows = self._x("SELECT * FROM deliveries WHERE state = 'sending' AND claimed_at < %s "
                       "ORDER BY id", (_t(claimed_before),)).fetchall()
        return [_delivery(r) for r in rows]

    def waiting_on_a_problem(self, limit):
        where = ("FROM deliveries WHERE state = 'scheduled' "
                 "AND reason IN ('retrying', 'template_error', 'campaign_error')")
        count = self._x(f"SELECT COUNT(*) AS n {where}").fetchone()["n"]
        rows = self._x(f"SELECT * {where} ORDER BY due_at, id LIMIT %s", (int(limit),)).fetchall()
        return count, [_delivery(r) for r in rows]

    def delivery_counts(self):
        rows = self._x("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    def count_due(self, now):
        return self._x("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'scheduled' "
                       "AND due_at <= %s" + _NOT_BRAKED, (_t(now),)).fetchone()["n"]

    def next_due(self):
        row = self._x("SELECT MIN(due_at) AS m FROM deliveries WHERE state = 'scheduled'"
                      + _NOT_BRAKED)
        return _out(row.fetchone()["m"])

    def last_sent_at(self, subscriber_id, *, exclude_campaign=None):
        sql = ("SELECT MAX(sent_at) AS m FROM deliveries WHERE subscriber_id = %s "
               "AND sent_at IS NOT NULL")
        params = [subscriber_id]
        if exclude_campaign:
            sql += " AND campaign != %s"
            params.append(exclude_campaign)
        return _out(self._x(sql, params).fetchone()["m"])

    # --- bookkeeping -----------------------------------------------------------
    def get_meta(self, key):
        row = self._x("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key, value):
        self._x("INSERT INTO meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # --- events and rate limits --------------------------------------------------
    def add_event(self, *, provider, type, occurred_at, received_at, raw, delivery_id=None,
                  subscriber_id=None, provider_event_id=None):
        return self._x(
            "INSERT INTO events (delivery_id, subscriber_id, provider, type, occurred_at, "
            "received_at, provider_event_id, raw) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT DO NOTHING",
            (delivery_id, subscriber_id, provider, type, _t(occurred_at), _t(received_at),
             provider_event_id, Jsonb(raw, dumps=partial(json.dumps, default=str)))
        ).rowcount == 1

    def events(self, *, delivery_id=None, subscriber_id=None, type=None):
        where, params = [], []
        for column, value in (("delivery_id", delivery_id), ("subscriber_id", subscriber_id),
                              ("type", type)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        sql = "SELECT * FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._x(sql + " ORDER BY id", params).fetchall()
        return [{**r, "occurred_at": _out(r["occurred_at"]), "received_at": _out(r["received_at"])}
                for r in rows]

    def events_summary(self):
        summary = {}
        for r in self._x("SELECT campaign, step, COUNT(*) AS n FROM deliveries "
                         "WHERE state = 'sent' GROUP BY campaign, step"):
            summary.setdefault((r["campaign"], r["step"]), {})["sent"] = r["n"]
        for r in self._x("SELECT d.campaign, d.step, e.type, COUNT(DISTINCT e.delivery_id) AS n "
                         "FROM events e JOIN deliveries d ON d.id = e.delivery_id "
                         "GROUP BY d.campaign, d.step, e.type"):
            summary.setdefault((r["campaign"], r["step"]), {})[r["type"]] = r["n"]
        return summary

    def event_seen(self, provider, provider_event_id):
        return self._x("SELECT 1 FROM events WHERE provider = %s AND provider_event_id = %s",
                       (provider, provider_event_id)).fetchone() is not None

    def find_delivery(self, provider_message_id):
        row = self._x("SELECT * FROM deliveries WHERE provider_message_id = %s "
                      "ORDER BY id DESC LIMIT 1", (provider_message_id,)).fetchone()
        return _delivery(row) if row else None

    def forget_token(self, provider, token):
        self._x("DELETE FROM webhook_tokens WHERE provider = %s AND token = %s",
                (provider, token))

    def remember_token(self, provider, token, *, now, keep_seconds):
        with self.transaction():
            self._x("DELETE FROM webhook_tokens WHERE seen_at < %s",
                    (_t(now - timedelta(seconds=keep_seconds)),))
            cursor = self._x("INSERT INTO webhook_tokens (provider, token, seen_at) "
                             "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                             (provider, token, _t(now)))
        return cursor.rowcount == 1

    def forget_rate_hits(self, *, keys=(), before=None):
        removed = 0
        with self.transaction():
            if keys:
                removed += self._x("DELETE FROM rate_hits WHERE key = ANY(%s)",
                                   (list(keys),)).rowcount
            if before is not None:
                removed += self._x("DELETE FROM rate_hits WHERE at < %s", (_t(before),)).rowcount
        return removed

    def rate_limit(self, key, *, now, window_seconds, limit):
        since = _t(now - timedelta(seconds=window_seconds))
        with self.transaction():
            self._x("DELETE FROM rate_hits WHERE key = %s AND at <= %s", (key, since))
            count = self._x("SELECT COUNT(*) AS n FROM rate_hits WHERE key = %s",
                            (key,)).fetchone()["n"]
            if count >= limit:
                return False
            self._x("INSERT INTO rate_hits (key, at) VALUES (%s, %s)", (key, _t(now)))
        return True

    # --- lists: import, export, erasure, segments ----------------------------------
    def add_subscribers(self, rows, *, now):
        values = [
            (secrets.token_hex(12), r["email"], r.get("name") or "", r.get("timezone"),
             r["status"], Jsonb(list(r.get("tags") or ())), Jsonb(dict(r.get("fields") or {})),
             r["consent"].source, _t(r["consent"].at), r["consent"].text, r["consent"].ip,
             _t(r["consent"].confirmed_at), _t(r.get("created_at") or now), _t(now))
            for r in rows]
        if not values:
            return 0
        with self.transaction(), self.conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO subscribers (uid, email, name, timezone, status, tags, fields, "
                "consent_source, consent_at, consent_text, consent_ip, confirmed_at, "
                "created_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (email) DO NOTHING", values)
            return cursor.rowcount

    def subscribers_by_email(self, emails):
        emails = list(set(emails))
        if not emails:
            return {}
        rows = self._x("SELECT * FROM subscribers WHERE email = ANY(%s)", (emails,)).fetchall()
        return {row["email"]: _subscriber(row) for row in rows}

    def subscriber_page(self, *, after_id=0, limit=1000, status=None, tag=None,
                        created_from=None, created_before=None, until_id=None, text=None):
        where, params = ["id > %s"], [after_id]
        if until_id is not None:
            where.append("id <= %s")
            params.append(until_id)
        if text:
            where.append("(strpos(lower(email), %s) > 0 OR strpos(lower(name), %s) > 0)")
            params += [text.lower(), text.lower()]
        if status:
            where.append("status = %s")
            params.append(status)
        if tag:
            where.append("tags @> %s")
            params.append(Jsonb([tag]))
        if created_from is not None:
            where.append("created_at >= %s")
            params.append(_t(created_from))
        if created_before is not None:
            where.append("created_at < %s")
            params.append(_t(created_before))
        sql = (f"SELECT * FROM subscribers WHERE {' AND '.join(where)} "
               f"ORDER BY id LIMIT {int(limit)}")
        return [_subscriber(row) for row in self._x(sql, params).fetchall()]

    def erase_subscriber(self, subscriber_id, *, erased_hash, key_id, now):
        with self.transaction():
            events = 0 if subscriber_id is None else self._x(
                "DELETE FROM events WHERE subscriber_id = %s OR delivery_id IN "
                "(SELECT id FROM deliveries WHERE subscriber_id = %s)",
                (subscriber_id, subscriber_id)).rowcount
            deliveries = self._x("DELETE FROM deliveries WHERE subscriber_id = %s",
                                 (subscriber_id,)).rowcount
            enrollments = self._x("DELETE FROM enrollments WHERE subscriber_id = %s",
                                  (subscriber_id,)).rowcount
            self._x("DELETE FROM subscribers WHERE id = %s", (subscriber_id,))
            self._x("INSERT INTO erased (hash, key_id, erased_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (hash) DO UPDATE SET erased_at = excluded.erased_at",
                    (erased_hash, key_id, _t(now)))
        return {"deliveries": deliveries, "enrollments": enrollments, "events": events}

    def erased_hashes(self, hashes):
        hashes = list(set(hashes))
        if not hashes:
            return set()
        rows = self._x("SELECT hash FROM erased WHERE hash = ANY(%s)", (hashes,))
        return {r["hash"] for r in rows}

    def erased_key_ids(self):
        rows = self._x("SELECT key_id, COUNT(*) AS n FROM erased GROUP BY key_id")
        return {r["key_id"]: r["n"] for r in rows}

    # --- the complaint and bounce brake -------------------------------------------------
    def brake_campaign(self, campaign, *, reason, details, now):
        return self._x(
            "INSERT INTO campaign_brakes (campaign, braked_at, reason, details) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (campaign) DO UPDATE SET "
            "braked_at = excluded.braked_at, reason = excluded.reason, "
            "details = excluded.details, resumed_at = NULL "
            "WHERE campaign_brakes.resumed_at IS NOT NULL",
            (campaign, _t(now), reason, Jsonb(details, dumps=partial(json.dumps, default=str)))
        ).rowcount == 1

    def resume_campaign(self, campaign, *, now):
        return self._x("UPDATE campaign_brakes SET resumed_at = %s "
                       "WHERE campaign = %s AND resumed_at IS NULL",
                       (_t(now), campaign)).rowcount == 1

    def campaign_brakes(self):
        rows = self._x(
            "SELECT b.*, CASE WHEN b.resumed_at IS NULL THEN (SELECT COUNT(*) FROM deliveries d "
            "  WHERE d.campaign = b.campaign AND d.state = 'scheduled') ELSE 0 END AS waiting "
            "FROM campaign_brakes b ORDER BY b.campaign").fetchall()
        return [{"campaign": r["campaign"], "reason": r["reason"], "details": r["details"],
                 "braked_at": _out(r["braked_at"]), "resumed_at": _out(r["resumed_at"]),
                 "waiting": r["waiting"]} for r in rows]

    def campaign_health(self, campaign, *, since, until):
        row = self._x(
            "SELECT COUNT(*) AS sent, "
            "  COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM events e WHERE e.delivery_id = d.id"
            "                                 AND e.type = 'complained')) AS complained, "
            "  COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM events e WHERE e.delivery_id = d.id"
            "                                 AND e.type = 'bounced')) AS bounced "
            "FROM deliveries d WHERE d.campaign = %s AND d.state = 'sent' "
            "AND d.sent_at >= %s AND d.sent_at <= %s",
            (campaign, _t(since), _t(until))).fetchone()
        return {"sent": row["sent"], "complained": row["complained"], "bounced": row["bounced"]}

    def last_deliveries(self, state, limit):
        rows = self._x("SELECT * FROM deliveries WHERE state = %s "
                       "ORDER BY due_at DESC, id DESC LIMIT %s", (state, int(limit))).fetchall()
        return [_delivery(r) for r in rows]

    # --- the admin dashboard ------------------------------------------------------------
    def set_admin_password(self, name, password_hash, *, now):
        self._x("INSERT INTO admin_users (name, password_hash, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                "password_hash = excluded.password_hash, updated_at = excluded.updated_at",
                (name, password_hash, _t(now), _t(now)))

    def admin_password(self, name):
        row = self._x("SELECT password_hash FROM admin_users WHERE name = %s", (name,)).fetchone()
        return row["password_hash"] if row else None

    def has_admin_users(self):
        return self._x("SELECT 1 AS one FROM admin_users LIMIT 1").fetchone() is not None

    def add_admin_session(self, token_hash, *, name, csrf, now):
        self._x("INSERT INTO admin_sessions (token_hash, name, csrf, created_at, seen_at) "
                "VALUES (%s, %s, %s, %s, %s)", (token_hash, name, csrf, _t(now), _t(now)))

    def admin_session(self, token_hash):
        row = self._x("SELECT * FROM admin_sessions WHERE token_hash = %s",
                      (token_hash,)).fetchone()
        if row is None:
            return None
        return {"name": row["name"], "csrf": row["csrf"], "created_at": _out(row["created_at"]),
                "seen_at": _out(row["seen_at"])}

    def touch_admin_session(self, token_hash, *, now):
        self._x("UPDATE admin_sessions SET seen_at = %s WHERE token_hash = %s",
                (_t(now), token_hash))

    def end_admin_sessions(self, *, token_hash=None, name=None, seen_before=None):
        ended = 0
        with self.transaction():
            for condition, value in (("token_hash = %s", token_hash), ("name = %s", name),
                                     ("seen_at < %s", _t(seen_before))):
                if value is not None:
                    ended += self._x(f"DELETE FROM admin_sessions WHERE {condition}",
                                     (value,)).rowcount
        return ended

    def add_audit(self, *, at, user, action, subscriber_id=None, target=None, details=None,
                  ip=None):
        return self._x(
            "INSERT INTO admin_audit (at, user_name, action, subscriber_id, target, details, ip) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (_t(at), user, action, subscriber_id, target,
             Jsonb(details or {}, dumps=partial(json.dumps, default=str)), ip)).fetchone()["id"]

    def audit_log(self, *, limit, before_id=None, subscriber_id=None):
        where, params = [], []
        if before_id is not None:
            where.append("id < %s")
            params.append(before_id)
        if subscriber_id is not None:
            where.append("subscriber_id = %s")
            params.append(subscriber_id)
        sql = "SELECT * FROM admin_audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._x(sql + " ORDER BY id DESC LIMIT %s", (*params, int(limit))).fetchall()
        return [{"id": r["id"], "at": _out(r["at"]), "user": r["user_name"], "action": r["action"],
                 "subscriber_id": r["subscriber_id"], "target": r["target"],
                 "details": r["details"], "ip": r["ip"]} for r in rows]

    def period_counts(self, what, edges):
        table, column, condition = period_source(what)
        spans = list(zip(edges, edges[1:], strict=False))
        if not spans:
            return []
        rows = self._x(
            f"SELECT (SELECT COUNT(*) FROM {table} WHERE {condition}{column} >= s.lo "
            f"AND {column} < s.hi) AS n FROM unnest(%s::timestamptz[], %s::timestamptz[]) "
            "WITH ORDINALITY AS s(lo, hi, i) ORDER BY s.i",
            ([_t(lo) for lo, _ in spans], [_t(hi) for _, hi in spans])).fetchall()
        return [row["n"] for row in rows]

    def count_subscribers(self, status):
        return self._x("SELECT COUNT(*) AS n FROM subscribers WHERE status = %s",
                       (status,)).fetchone()["n"]

    def next_steps(self, campaign):
        rows = self._x(
            "SELECT step, COUNT(*) AS n FROM (SELECT step, ROW_NUMBER() OVER (PARTITION BY "
            "subscriber_id ORDER BY due_at, id) AS n FROM deliveries "
            "WHERE campaign = %s AND state = 'scheduled') AS f WHERE n = 1 GROUP BY step",
            (campaign,)).fetchall()
        return {row["step"]: row["n"] for row in rows}


def migrate(conn, *, upto=None):
    """Apply every migration not yet recorded, under an advisory lock; returns their names."""
    applied = []
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        done = {r["version"] for r in conn.execute("SELECT version FROM schema_migrations")}
        check_not_newer(max(done, default=0), len(PG_MIGRATIONS),
                        where=f"the PostgreSQL database {masked(conn.info.dsn)}")
        for version, (name, sql) in enumerate(PG_MIGRATIONS[:upto], start=1):
            if version in done:
                continue
            with conn.transaction():
                for statement in (s.strip() for s in sql.split(";")):
                    if statement:
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             (version, name))
            applied.append(name)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK,))
    return applied


# Leaves out the deliveries of a braked campaign (they wait for `drip campaigns resume`).
_NOT_BRAKED = (" AND campaign NOT IN (SELECT campaign FROM campaign_brakes "
               "WHERE resumed_at IS NULL)")


def _to_db(column, value):
    if column in _TIME_COLUMNS:
        return _t(value)
    if column == "tags":
        return Jsonb(list(value))
    if column == "fields":
        return Jsonb(dict(value))
    return value


def _subscriber(row):
    return subscriber_from_row(row, when=_out, tags=list, fields=dict)


def _delivery(row):
    return delivery_from_row(row, when=_out)
