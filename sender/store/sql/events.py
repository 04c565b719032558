"""The shared SQL of provider events, webhook tokens, rate limits and the admin dashboard
(users, sessions, the audit log). A part of ``SqlStore``."""

from __future__ import annotations

from datetime import timedelta

from .dialect import Where, writes


class EventQueries:
    # --- events, webhook tokens and rate limits -------------------------------------
    @writes
    def add_event(self, *, provider, type, occurred_at, received_at, raw, delivery_id=None,
                  subscriber_id=None, provider_event_id=None):
        d = self.dialect
        return self._x(
            "INSERT INTO events (delivery_id, subscriber_id, provider, type, occurred_at, "
            "received_at, provider_event_id, raw) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (delivery_id, subscriber_id, provider, type, d.time(occurred_at), d.time(received_at),
             provider_event_id, d.json(raw, default=str))).rowcount == 1

    def events(self, *, delivery_id=None, subscriber_id=None, type=None):
        d, where = self.dialect, Where().equal(delivery_id=delivery_id,
                                               subscriber_id=subscriber_id, type=type)
        return [{**dict(r), "occurred_at": d.when(r["occurred_at"]),
                 "received_at": d.when(r["received_at"]), "raw": d.loads(r["raw"])}
                for r in self._x(f"SELECT * FROM events{where} ORDER BY id", where.params)]

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
        return self._x("SELECT 1 AS one FROM events WHERE provider = ? AND provider_event_id = ?",
                       (provider, provider_event_id)).fetchone() is not None

    def find_delivery(self, provider_message_id):
        row = self._x("SELECT * FROM deliveries WHERE provider_message_id = ? "
                      "ORDER BY id DESC LIMIT 1", (provider_message_id,)).fetchone()
        return self.dialect.delivery(row) if row else None

    def remember_token(self, provider, token, *, now, keep_seconds):
        with self.transaction():
            self._x("DELETE FROM webhook_tokens WHERE seen_at < ?",
                    (self.dialect.time(now - timedelta(seconds=keep_seconds)),))
            cursor = self._x("INSERT INTO webhook_tokens (provider, token, seen_at) "
                             "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                             (provider, token, self.dialect.time(now)))
        return cursor.rowcount == 1

    @writes
    def forget_token(self, provider, token):
        self._x("DELETE FROM webhook_tokens WHERE provider = ? AND token = ?", (provider, token))

    def forget_rate_hits(self, *, keys=(), before=None):
        removed = 0
        with self.transaction():
            for condition, params in self.dialect.batches("key", keys):
                removed += self._x(f"DELETE FROM rate_hits WHERE {condition}", params).rowcount
            if before is not None:
                removed += self._x("DELETE FROM rate_hits WHERE at < ?",
                                   (self.dialect.time(before),)).rowcount
        return removed

    def rate_limit(self, key, *, now, window_seconds, limit):
        since = self.dialect.time(now - timedelta(seconds=window_seconds))
        with self.transaction():
            self._x("DELETE FROM rate_hits WHERE key = ? AND at <= ?", (key, since))
            count = self._x("SELECT COUNT(*) AS n FROM rate_hits WHERE key = ?",
                            (key,)).fetchone()["n"]
            if count >= limit:
                return False
            self._x("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (key, self.dialect.time(now)))
        return True

    # --- the admin dashboard ------------------------------------------------------------
    @writes
    def set_admin_password(self, name, password_hash, *, now):
        self._x("INSERT INTO admin_users (name, password_hash, created_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "password_hash = excluded.password_hash, updated_at = excluded.updated_at",
                (name, password_hash, self.dialect.time(now), self.dialect.time(now)))

    def admin_password(self, name):
        row = self._x("SELECT password_hash FROM admin_users WHERE name = ?", (name,)).fetchone()
        return row["password_hash"] if row else None

    def has_admin_users(self):
        return self._x("SELECT 1 AS one FROM admin_users LIMIT 1").fetchone() is not None

    @writes
    def add_admin_session(self, token_hash, *, name, csrf, now):
        self._x("INSERT INTO admin_sessions (token_hash, name, csrf, created_at, seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (token_hash, name, csrf, self.dialect.time(now), self.dialect.time(now)))

    def admin_session(self, token_hash):
        row = self._x("SELECT * FROM admin_sessions WHERE token_hash = ?", (token_hash,)).fetchone()
        if row is None:
            return None
        return {"name": row["name"], "csrf": row["csrf"],
                "created_at": self.dialect.when(row["created_at"]),
                "seen_at": self.dialect.when(row["seen_at"])}

    @writes
    def touch_admin_session(self, token_hash, *, now):
        self._x("UPDATE admin_sessions SET seen_at = ? WHERE token_hash = ?",
                (self.dialect.time(now), token_hash))

    def end_admin_sessions(self, *, token_hash=None, name=None, seen_before=None):
        ended = 0
        with self.transaction():
            for condition, value in (("token_hash = ?", token_hash), ("name = ?", name),
                                     ("seen_at < ?", self.dialect.time(seen_before))):
                if value is not None:
                    ended += self._x(f"DELETE FROM admin_sessions WHERE {condition}",
                                     (value,)).rowcount
        return ended

    @writes
    def add_audit(self, *, at, user, action, subscriber_id=None, target=None, details=None,
                  ip=None):
        return self._x(
            "INSERT INTO admin_audit (at, user_name, action, subscriber_id, target, details, ip) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (self.dialect.time(at), user, action, subscriber_id, target,
             self.dialect.json(details or {}, default=str), ip)).fetchone()["id"]

    def audit_log(self, *, limit, before_id=None, subscriber_id=None):
        where = Where() if before_id is None else Where("id < ?", [before_id])
        where.equal(subscriber_id=subscriber_id)
        rows = self._x(f"SELECT * FROM admin_audit{where} ORDER BY id DESC LIMIT ?",
                       (*where.params, int(limit))).fetchall()
        d = self.dialect
        return [{"id": r["id"], "at": d.when(r["at"]), "user": r["user_name"], "action": r["action"],
                 "subscriber_id": r["subscriber_id"], "target": r["target"],
                 "details": d.loads(r["details"]), "ip": r["ip"]} for r in rows]
