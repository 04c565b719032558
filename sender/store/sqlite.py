"""The SQLite store: one file, WAL mode, claims under the write lock."""

from __future__ import annotations

import functools
import json
import secrets
import sqlite3
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from ..errors import DatabaseMissing, DripError, InvalidInput
from ..models import Enrollment, delivery_from_row, iso, subscriber_from_row, utc
from .base import Store, new_lease, period_source
from .migrations import MIGRATIONS, migrate

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


def _writes(method):
    """Run a write method in a transaction (joining the caller's, if any), so it is atomic and
    a disk-full or read-only database surfaces as a DripError."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.transaction():
            return method(self, *args, **kwargs)

    return wrapper


class SQLiteStore(Store):
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
                try:
                    migrate(self.conn)
                except DripError:
                    self.conn.close()
                    raise
        except sqlite3.DatabaseError as exc:
            raise DripError(f"cannot open database {self.path}: {exc} (check DRIP_DATABASE)") \
                from None
        self._depth = 0

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
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            # Disk full, a read-only file, a lock held too long: nothing was written.
            self._depth = 0
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise DripError(f"database {self.path}: {exc}; nothing was changed (check free disk "
                            "space, that the file and its folder are writable, and DRIP_DATABASE)") \
                from None

    def schema_version(self):
        row = self.conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return row[0] or 0

    @staticmethod
    def latest_version():
        return len(MIGRATIONS)

    # --- subscribers -----------------------------------------------------------
    @_writes
    def add_subscriber(self, email, *, name, timezone, tags, fields, status, consent, now):
        stamp = iso(now)
        try:
            cursor = self.conn.execute(
                "INSERT INTO subscribers (uid, email, name, timezone, status, tags, fields, "
                "consent_source, consent_at, consent_text, consent_ip, confirmed_at, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (secrets.token_hex(12), email, name, timezone, status, json.dumps(list(tags)),
                 json.dumps(dict(fields)), consent.source, iso(consent.at), consent.text,
                 consent.ip, iso(consent.confirmed_at), stamp, stamp),
            )
        except sqlite3.IntegrityError:
            raise InvalidInput(f"{email} is already a subscriber") from None
        return self.get_subscriber(id=cursor.lastrowid)

    @_writes
    def update_subscriber(self, subscriber_id, *, now, **changes):
        unknown = set(changes) - _SUBSCRIBER_COLUMNS
        if unknown:
            raise ValueError(f"unknown subscriber columns: {sorted(unknown)}")
        values = {k: _to_db(k, v) for k, v in changes.items()}
        values["updated_at"] = iso(now)
        assignments = ", ".join(f"{k} = ?" for k in values)
        self.conn.execute(f"UPDATE subscribers SET {assignments} WHERE id = ?",
                          (*values.values(), subscriber_id))
        return self.get_subscriber(id=subscriber_id)

    def get_subscriber(self, *, id=None, email=None, uid=None):
        column, value = next((c, v) for c, v in (("id", id), ("email", email), ("uid", uid))
                             if v is not None)
        row = self.conn.execute(f"SELECT * FROM subscribers WHERE {column} = ?",
                                (value,)).fetchone()
        return _subscriber(row) if row else None

    def get_subscribers(self, ids):
        return self._subscribers_where("id", ids)

    def _subscribers_where(self, column, values):
        """{value: subscriber} for subscribers whose ``column`` is one of ``values``,
        in chunks that stay under SQLite's limit on bound parameters."""
        values = list(set(values))
        found = {}
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                    f"SELECT * FROM subscribers WHERE {column} IN ({marks})", chunk):
                found[row[column]] = _subscriber(row)
        return found

    def list_subscribers(self, *, status=None, tag=None, limit=None):
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if tag:
            where.append("EXISTS (SELECT 1 FROM json_each(subscribers.tags) WHERE value = ?)")
            params.append(tag)
        sql = "SELECT * FROM subscribers"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        for row in self.conn.execute(sql, params):
            yield _subscriber(row)

    def subscriber_counts(self):
        rows = self.conn.execute("SELECT status, COUNT(*) FROM subscribers GROUP BY status")
        return {status: count for status, count in rows}

    # --- enrolments ------------------------------------------------------------
    @_writes
    def enroll(self, subscriber_id, campaign, enrolled_at):
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO enrollments (subscriber_id, campaign, enrolled_at) "
            "VALUES (?, ?, ?)", (subscriber_id, campaign, iso(enrolled_at)))
        if not cursor.rowcount:
            return None
        return Enrollment(subscriber_id, campaign, utc(iso(enrolled_at)), 0)

    def enrollments(self, *, subscriber_id=None, campaign=None):
        where, params = [], []
        if subscriber_id is not None:
            where.append("subscriber_id = ?")
            params.append(subscriber_id)
        if campaign is not None:
            where.append("campaign = ?")
            params.append(campaign)
        sql = "SELECT * FROM enrollments"
        if where:
            sql += " WHERE " + " AND ".join(where)
        for row in self.conn.execute(sql + " ORDER BY subscriber_id, campaign", params):
            yield Enrollment(row["subscriber_id"], row["campaign"], utc(row["enrolled_at"]),
                             row["shift_seconds"])

    @_writes
    def set_enrollment_shift(self, subscriber_id, campaign, shift_seconds):
        self.conn.execute(
            "UPDATE enrollments SET shift_seconds = ? WHERE subscriber_id = ? AND campaign = ?",
            (int(shift_seconds), subscriber_id, campaign))

    # --- the delivery ledger ---------------------------------------------------
    def add_deliveries(self, rows, *, now):
        stamp = iso(now)
        inserted = 0
        with self.transaction():
            for row in rows:
                cursor = self.conn.execute(
                    "INSERT OR IGNORE INTO deliveries (subscriber_id, campaign, step, due_at, "
                    "state, last_error, created_at) VALUES (?,?,?,?,?,?,?)",
                    (row["subscriber_id"], row["campaign"], row["step"], iso(row["due_at"]),
                     row.get("state", "scheduled"), row.get("last_error"), stamp))
                inserted += cursor.rowcount
        return inserted

    def get_delivery(self, delivery_id):
        row = self.conn.execute("SELECT * FROM deliveries WHERE id = ?",
                                (delivery_id,)).fetchone()
        return _delivery(row) if row else None

    def deliveries(self, *, subscriber_id=None, campaign=None, states=None,
                   due_from=None, due_before=None, limit=None):
        where, params = [], []
        if subscriber_id is not None:
            where.append("subscriber_id = ?")
            params.append(subscriber_id)
        if campaign is not None:
            where.append("campaign = ?")
            params.append(campaign)
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params += list(states)
        if due_from is not None:
            where.append("due_at >= ?")
            params.append(iso(due_from))
        if due_before is not None:
            where.append("due_at < ?")
            params.append(iso(due_before))
        sql = "SELECT * FROM deliveries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY due_at, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        for row in self.conn.execute(sql, params).fetchall():
            yield _delivery(row)

    def claim_due(self, now, limit, *, pending_campaign=None, subscriber_id=None, due_by=None):
        stamp = iso(now)
        with self.transaction():
            rows = self.conn.execute(
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
                (stamp, new_lease(), iso(due_by or now), pending_campaign, subscriber_id,
                 subscriber_id, int(limit))).fetchall()
        return sorted((_delivery(r) for r in rows), key=lambda d: (d.due_at, d.id))

    def take_over_stale(self, claimed_before, now, *, limit=None):
        with self.transaction():
            rows = self.conn.execute(
                "UPDATE deliveries SET claimed_at = ?, lease = ?, reason = NULL WHERE id IN ("
                "  SELECT id FROM deliveries WHERE state = 'sending' AND claimed_at < ?"
                "  ORDER BY id LIMIT ?) RETURNING *",
                (iso(now), new_lease(), iso(claimed_before),
                 -1 if limit is None else int(limit))).fetchall()
        return sorted((_delivery(r) for r in rows), key=lambda d: (d.due_at, d.id))

    @_writes
    def skip_ended(self, now):
        cursor = self.conn.execute(
            "UPDATE deliveries SET state = 'skipped', reason = 'subscriber_ended', "
            "last_error = 'subscriber is ' || ("
            "  SELECT status FROM subscribers s WHERE s.id = deliveries.subscriber_id) "
            "WHERE state = 'scheduled' AND due_at <= ? AND subscriber_id IN ("
            "  SELECT id FROM subscribers WHERE status IN ('unsubscribed','bounced','complained'))",
            (iso(now),))
        return cursor.rowcount

    @_writes
    def renew_lease(self, lease, at):
        return self.conn.execute(
            "UPDATE deliveries SET claimed_at = ? WHERE state = 'sending' AND lease = ?",
            (iso(at), lease)).rowcount

    @_writes
    def update_delivery(self, delivery_id, *, expect_state=None, expect_lease=None, **changes):
        unknown = set(changes) - _DELIVERY_COLUMNS
        if unknown:
            raise ValueError(f"unknown delivery columns: {sorted(unknown)}")
        values = {k: _to_db(k, v) for k, v in changes.items()}
        sql = "UPDATE deliveries SET " + ", ".join(f"{k} = ?" for k in values) + " WHERE id = ?"
        params = [*values.values(), delivery_id]
        if expect_state:
            sql += " AND state = ?"
            params.append(expect_state)
        if expect_lease:
            sql += " AND lease = ?"
            params.append(expect_lease)
        return self.conn.execute(sql, params).rowcount == 1

    @_writes
    def cancel_pending(self, subscriber_id, reason, *, campaign=None, code=None):
        sql = ("UPDATE deliveries SET state = 'cancelled', last_error = ?, reason = ? "
               "WHERE subscriber_id = ? AND state = 'scheduled'")
        params = [reason, code, subscriber_id]
        if campaign:
            sql += " AND campaign = ?"
            params.append(campaign)
        return self.conn.execute(sql, params).rowcount

    def stale_sending(self, claimed_before):
        rows = self.conn.execute(
            "SELECT * FROM deliveries WHERE state = 'sending' AND claimed_at < ? ORDER BY id",
            (iso(claimed_before),)).fetchall()
        return [_delivery(r) for r in rows]

    def waiting_on_a_problem(self, limit):
        # INDEXED BY: after ANALYZE the planner would rather walk every scheduled row.
        where = ("FROM deliveries INDEXED BY deliveries_waiting WHERE state = 'scheduled' "
                 "AND reason IN ('retrying', 'template_error', 'campaign_error')")
        count = self.conn.execute(f"SELECT COUNT(*) {where}").fetchone()[0]
        rows = self.conn.execute(f"SELECT * {where} ORDER BY due_at, id LIMIT ?",
                                 (int(limit),)).fetchall()
        return count, [_delivery(r) for r in rows]

    def delivery_counts(self):
        rows = self.conn.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
        return {state: count for state, count in rows}

    def count_due(self, now):
        return self.conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'scheduled' AND due_at <= ?" + _NOT_BRAKED,
            (iso(now),)).fetchone()[0]

    def next_due(self):
        row = self.conn.execute(
            "SELECT MIN(due_at) FROM deliveries WHERE state = 'scheduled'" + _NOT_BRAKED).fetchone()
        return utc(row[0])

    def last_sent_at(self, subscriber_id, *, exclude_campaign=None):
        sql = "SELECT MAX(sent_at) FROM deliveries WHERE subscriber_id = ? AND sent_at IS NOT NULL"
        params = [subscriber_id]
        if exclude_campaign:
            sql += " AND campaign != ?"
            params.append(exclude_campaign)
        return utc(self.conn.execute(sql, params).fetchone()[0])

    # --- bookkeeping -----------------------------------------------------------
    def get_meta(self, key):
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @_writes
    def set_meta(self, key, value):
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # --- events and rate limits --------------------------------------------------
    @_writes
    def add_event(self, *, provider, type, occurred_at, received_at, raw, delivery_id=None,
                  subscriber_id=None, provider_event_id=None):
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO events (delivery_id, subscriber_id, provider, type, "
            "occurred_at, received_at, provider_event_id, raw) VALUES (?,?,?,?,?,?,?,?)",
            (delivery_id, subscriber_id, provider, type, iso(occurred_at), iso(received_at),
             provider_event_id, json.dumps(raw, default=str)))
        return cursor.rowcount == 1

    def events(self, *, delivery_id=None, subscriber_id=None, type=None):
        where, params = [], []
        for column, value in (("delivery_id", delivery_id), ("subscriber_id", subscriber_id),
                              ("type", type)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.conn.execute(sql + " ORDER BY id", params).fetchall()
        return [{**dict(r), "occurred_at": utc(r["occurred_at"]),
                 "received_at": utc(r["received_at"]), "raw": json.loads(r["raw"])}
                for r in rows]

    def events_summary(self):
        summary = {}
        for campaign, step, count in self.conn.execute(
                "SELECT campaign, step, COUNT(*) FROM deliveries WHERE state = 'sent' "
                "GROUP BY campaign, step"):
            summary.setdefault((campaign, step), {})["sent"] = count
        for campaign, step, kind, count in self.conn.execute(
                "SELECT d.campaign, d.step, e.type, COUNT(DISTINCT e.delivery_id) "
                "FROM events e JOIN deliveries d ON d.id = e.delivery_id "
                "GROUP BY d.campaign, d.step, e.type"):
            summary.setdefault((campaign, step), {})[kind] = count
        return summary

    def event_seen(self, provider, provider_event_id):
        return self.conn.execute(
            "SELECT 1 FROM events WHERE provider = ? AND provider_event_id = ?",
            (provider, provider_event_id)).fetchone() is not None

    def find_delivery(self, provider_message_id):
        row = self.conn.execute(
            "SELECT * FROM deliveries WHERE provider_message_id = ? ORDER BY id DESC LIMIT 1",
            (provider_message_id,)).fetchone()
        return _delivery(row) if row else None

    @_writes
    def forget_token(self, provider, token):
        self.conn.execute("DELETE FROM webhook_tokens WHERE provider = ? AND token = ?",
                          (provider, token))

    def remember_token(self, provider, token, *, now, keep_seconds):
        with self.transaction():
            self.conn.execute("DELETE FROM webhook_tokens WHERE seen_at < ?",
                              (iso(now - timedelta(seconds=keep_seconds)),))
            cursor = self.conn.execute(
                "INSERT INTO webhook_tokens (provider, token, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING", (provider, token, iso(now)))
        return cursor.rowcount == 1

    @_writes
    def forget_rate_hits(self, *, keys=(), before=None):
        removed = 0
        for key in keys:
            removed += self.conn.execute("DELETE FROM rate_hits WHERE key = ?", (key,)).rowcount
        if before is not None:
            removed += self.conn.execute("DELETE FROM rate_hits WHERE at < ?",
                                         (iso(before),)).rowcount
        return removed

    def rate_limit(self, key, *, now, window_seconds, limit):
        since = iso(now - timedelta(seconds=window_seconds))
        with self.transaction():
            self.conn.execute("DELETE FROM rate_hits WHERE key = ? AND at <= ?", (key, since))
            count = self.conn.execute("SELECT COUNT(*) FROM rate_hits WHERE key = ?",
                                      (key,)).fetchone()[0]
            if count >= limit:
                return False
            self.conn.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (key, iso(now)))
        return True

    # --- lists: import, export, erasure, segments ----------------------------------
    def add_subscribers(self, rows, *, now):
        stamp = iso(now)
        values = [
            (secrets.token_hex(12), r["email"], r.get("name") or "", r.get("timezone"),
             r["status"], json.dumps(list(r.get("tags") or ())),
             json.dumps(dict(r.get("fields") or {})), r["consent"].source, iso(r["consent"].at),
             r["consent"].text, r["consent"].ip, iso(r["consent"].confirmed_at),
             iso(r.get("created_at")) or stamp, stamp)
            for r in rows]
        with self.transaction():
            before = self.conn.total_changes
            self.conn.executemany(
                "INSERT INTO subscribers (uid, email, name, timezone, status, tags, fields, "
                "consent_source, consent_at, consent_text, consent_ip, confirmed_at, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (email) DO NOTHING", values)
            return self.conn.total_changes - before

    def subscribers_by_email(self, emails):
        return self._subscribers_where("email", emails)

    def subscriber_page(self, *, after_id=0, limit=1000, status=None, tag=None,
                        created_from=None, created_before=None, until_id=None, text=None):
        where, params = ["id > ?"], [after_id]
        if until_id is not None:
            where.append("id <= ?")
            params.append(until_id)
        if text:
            where.append("(instr(lower(email), ?) > 0 OR instr(lower(name), ?) > 0)")
            params += [text.lower(), text.lower()]
        if status:
            where.append("status = ?")
            params.append(status)
        if tag:
            where.append("EXISTS (SELECT 1 FROM json_each(subscribers.tags) WHERE value = ?)")
            params.append(tag)
        if created_from is not None:
            where.append("created_at >= ?")
            params.append(iso(created_from))
        if created_before is not None:
            where.append("created_at < ?")
            params.append(iso(created_before))
        sql = (f"SELECT * FROM subscribers WHERE {' AND '.join(where)} "
               f"ORDER BY id LIMIT {int(limit)}")
        return [_subscriber(row) for row in self.conn.execute(sql, params)]

    def erase_subscriber(self, subscriber_id, *, erased_hash, key_id, now):
        with self.transaction():
            # Events may point at a delivery only (no subscriber id); their raw payloads
            # can hold the address, so they go too. Without a subscriber (someone not on
            # the list asked never to be mailed) only the hash is recorded.
            events = 0 if subscriber_id is None else self.conn.execute(
                "DELETE FROM events WHERE subscriber_id = ? OR delivery_id IN "
                "(SELECT id FROM deliveries WHERE subscriber_id = ?)",
                (subscriber_id, subscriber_id)).rowcount
            deliveries = self.conn.execute("DELETE FROM deliveries WHERE subscriber_id = ?",
                                           (subscriber_id,)).rowcount
            enrollments = self.conn.execute("DELETE FROM enrollments WHERE subscriber_id = ?",
                                            (subscriber_id,)).rowcount
            self.conn.execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))
            self.conn.execute(
                "INSERT INTO erased (hash, key_id, erased_at) VALUES (?, ?, ?) "
                "ON CONFLICT (hash) DO UPDATE SET erased_at = excluded.erased_at",
                (erased_hash, key_id, iso(now)))
        return {"deliveries": deliveries, "enrollments": enrollments, "events": events}

    def erased_hashes(self, hashes):
        hashes = list(set(hashes))
        found = set()
        for start in range(0, len(hashes), 500):
            chunk = hashes[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self.conn.execute(
                f"SELECT hash FROM erased WHERE hash IN ({marks})", chunk))
        return found

    def erased_key_ids(self):
        rows = self.conn.execute("SELECT key_id, COUNT(*) FROM erased GROUP BY key_id")
        return {key_id: count for key_id, count in rows}

    # --- the complaint and bounce brake -------------------------------------------------
    @_writes
    def brake_campaign(self, campaign, *, reason, details, now):
        return self.conn.execute(
            "INSERT INTO campaign_brakes (campaign, braked_at, reason, details) VALUES (?,?,?,?) "
            "ON CONFLICT (campaign) DO UPDATE SET braked_at = excluded.braked_at, "
            "reason = excluded.reason, details = excluded.details, resumed_at = NULL "
            "WHERE campaign_brakes.resumed_at IS NOT NULL",
            (campaign, iso(now), reason, json.dumps(details, default=str))).rowcount == 1

    @_writes
    def resume_campaign(self, campaign, *, now):
        return self.conn.execute(
            "UPDATE campaign_brakes SET resumed_at = ? WHERE campaign = ? AND resumed_at IS NULL",
            (iso(now), campaign)).rowcount == 1

    def campaign_brakes(self):
        rows = self.conn.execute(
            "SELECT b.*, CASE WHEN b.resumed_at IS NULL THEN (SELECT COUNT(*) FROM deliveries d "
            "  WHERE d.campaign = b.campaign AND d.state = 'scheduled') ELSE 0 END AS waiting "
            "FROM campaign_brakes b ORDER BY b.campaign").fetchall()
        return [{"campaign": r["campaign"], "reason": r["reason"],
                 "details": json.loads(r["details"]), "braked_at": utc(r["braked_at"]),
                 "resumed_at": utc(r["resumed_at"]), "waiting": r["waiting"]} for r in rows]

    def campaign_health(self, campaign, *, since, until):
        row = self.conn.execute(
            "SELECT COUNT(*), "
            "  COALESCE(SUM(EXISTS (SELECT 1 FROM events e WHERE e.delivery_id = d.id"
            "                       AND e.type = 'complained')), 0), "
            "  COALESCE(SUM(EXISTS (SELECT 1 FROM events e WHERE e.delivery_id = d.id"
            "                       AND e.type = 'bounced')), 0) "
            "FROM deliveries d WHERE d.campaign = ? AND d.state = 'sent' "
            "AND d.sent_at >= ? AND d.sent_at <= ?",
            (campaign, iso(since), iso(until))).fetchone()
        return {"sent": row[0], "complained": row[1], "bounced": row[2]}

    def last_deliveries(self, state, limit):
        rows = self.conn.execute(
            "SELECT * FROM deliveries WHERE state = ? ORDER BY due_at DESC, id DESC LIMIT ?",
            (state, int(limit))).fetchall()
        return [_delivery(r) for r in rows]


    # --- the admin dashboard ------------------------------------------------------------
    @_writes
    def set_admin_password(self, name, password_hash, *, now):
        self.conn.execute(
            "INSERT INTO admin_users (name, password_hash, created_at, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "password_hash = excluded.password_hash, updated_at = excluded.updated_at",
            (name, password_hash, iso(now), iso(now)))

    def admin_password(self, name):
        row = self.conn.execute("SELECT password_hash FROM admin_users WHERE name = ?",
                                (name,)).fetchone()
        return row[0] if row else None

    def has_admin_users(self):
        return self.conn.execute("SELECT 1 FROM admin_users LIMIT 1").fetchone() is not None

    @_writes
    def add_admin_session(self, token_hash, *, name, csrf, now):
        self.conn.execute("INSERT INTO admin_sessions (token_hash, name, csrf, created_at, "
                          "seen_at) VALUES (?, ?, ?, ?, ?)",
                          (token_hash, name, csrf, iso(now), iso(now)))

    def admin_session(self, token_hash):
        row = self.conn.execute("SELECT * FROM admin_sessions WHERE token_hash = ?",
                                (token_hash,)).fetchone()
        if row is None:
            return None
        return {"name": row["name"], "csrf": row["csrf"], "created_at": utc(row["created_at"]),
                "seen_at": utc(row["seen_at"])}

    @_writes
    def touch_admin_session(self, token_hash, *, now):
        self.conn.execute("UPDATE admin_sessions SET seen_at = ? WHERE token_hash = ?",
                          (iso(now), token_hash))

    @_writes
    def end_admin_sessions(self, *, token_hash=None, name=None, seen_before=None):
        ended = 0
        for condition, value in (("token_hash = ?", token_hash), ("name = ?", name),
                                 ("seen_at < ?", iso(seen_before))):
            if value is not None:
                ended += self.conn.execute(f"DELETE FROM admin_sessions WHERE {condition}",
                                           (value,)).rowcount
        return ended

    @_writes
    def add_audit(self, *, at, user, action, subscriber_id=None, target=None, details=None,
                  ip=None):
        return self.conn.execute(
            "INSERT INTO admin_audit (at, user_name, action, subscriber_id, target, details, ip) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (iso(at), user, action, subscriber_id, target, json.dumps(details or {}, default=str),
             ip)).lastrowid

    def audit_log(self, *, limit, before_id=None, subscriber_id=None):
        where, params = [], []
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        if subscriber_id is not None:
            where.append("subscriber_id = ?")
            params.append(subscriber_id)
        sql = "SELECT * FROM admin_audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, int(limit)))
        return [{"id": r["id"], "at": utc(r["at"]), "user": r["user_name"], "action": r["action"],
                 "subscriber_id": r["subscriber_id"], "target": r["target"],
                 "details": json.loads(r["details"]), "ip": r["ip"]} for r in rows.fetchall()]

    def period_counts(self, what, edges):
        table, column, condition = period_source(what)
        spans = list(zip(edges, edges[1:], strict=False))
        if not spans:
            return []
        values = ", ".join("(?, ?, ?)" for _ in spans)
        params = [p for n, (lo, hi) in enumerate(spans) for p in (n, iso(lo), iso(hi))]
        rows = self.conn.execute(
            f"WITH spans (n, lo, hi) AS (VALUES {values}) SELECT (SELECT COUNT(*) FROM {table} "
            f"WHERE {condition}{column} >= spans.lo AND {column} < spans.hi) FROM spans "
            "ORDER BY n", params)
        return [row[0] for row in rows]

    def count_subscribers(self, status):
        return self.conn.execute("SELECT COUNT(*) FROM subscribers WHERE status = ?",
                                 (status,)).fetchone()[0]

    def next_steps(self, campaign):
        rows = self.conn.execute(
            "SELECT step, COUNT(*) FROM (SELECT step, ROW_NUMBER() OVER (PARTITION BY "
            "subscriber_id ORDER BY due_at, id) AS n FROM deliveries "
            "WHERE campaign = ? AND state = 'scheduled') WHERE n = 1 GROUP BY step", (campaign,))
        return {step: count for step, count in rows}


# Leaves out the deliveries of a braked campaign (they wait for `drip campaigns resume`).
_NOT_BRAKED = (" AND campaign NOT IN (SELECT campaign FROM campaign_brakes "
               "WHERE resumed_at IS NULL)")


def _to_db(column, value):
    if column in _TIME_COLUMNS:
        return iso(value)
    if column == "tags":
        return json.dumps(list(value))
    if column == "fields":
        return json.dumps(dict(value))
    return value


def _subscriber(row):
    return subscriber_from_row(row, when=utc, tags=json.loads, fields=json.loads)


def _delivery(row):
    return delivery_from_row(row, when=utc)
