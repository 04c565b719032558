"""The shared SQL about people: subscribers, their enrolments, and lists (import, export,
erasure, segments). A part of ``SqlStore``: ``self._x`` runs a statement and
``self.dialect`` spells what the engines spell differently."""

from __future__ import annotations

import secrets

from ...errors import InvalidInput
from ...models import Enrollment
from .dialect import SUBSCRIBER_COLUMNS, Where, writes

_INSERT_SUBSCRIBER = (
    "INSERT INTO subscribers (uid, email, name, timezone, status, tags, fields, consent_source, "
    "consent_at, consent_text, consent_ip, confirmed_at, created_at, updated_at) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (email) DO NOTHING")


class SubscriberQueries:
    # --- subscribers -----------------------------------------------------------
    @writes
    def add_subscriber(self, email, *, name, timezone, tags, fields, status, consent, now):
        d = self.dialect
        row = self._x(
            _INSERT_SUBSCRIBER + " RETURNING *",
            (secrets.token_hex(12), email, name, timezone, status, d.json(list(tags)),
             d.json(dict(fields)), consent.source, d.time(consent.at), consent.text, consent.ip,
             d.time(consent.confirmed_at), d.time(now), d.time(now))).fetchone()
        if row is None:
            raise InvalidInput(f"{email} is already a subscriber")
        return d.subscriber(row)

    @writes
    def update_subscriber(self, subscriber_id, *, now, **changes):
        unknown = set(changes) - SUBSCRIBER_COLUMNS
        if unknown:
            raise ValueError(f"unknown subscriber columns: {sorted(unknown)}")
        values = {k: self.dialect.to_db(k, v) for k, v in changes.items()}
        values["updated_at"] = self.dialect.time(now)
        assignments = ", ".join(f"{k} = ?" for k in values)
        row = self._x(f"UPDATE subscribers SET {assignments} WHERE id = ? RETURNING *",
                      (*values.values(), subscriber_id)).fetchone()
        return self.dialect.subscriber(row) if row else None

    def get_subscriber(self, *, id=None, email=None, uid=None):
        column, value = next((c, v) for c, v in (("id", id), ("email", email), ("uid", uid))
                             if v is not None)
        row = self._x(f"SELECT * FROM subscribers WHERE {column} = ?", (value,)).fetchone()
        return self.dialect.subscriber(row) if row else None

    def get_subscribers(self, ids):
        return self._subscribers_where("id", ids)

    def subscribers_by_email(self, emails):
        return self._subscribers_where("email", emails)

    def _subscribers_where(self, column, values):
        """{value: subscriber} for subscribers whose ``column`` is one of ``values``."""
        found = {}
        for condition, params in self.dialect.batches(column, values):
            for row in self._x(f"SELECT * FROM subscribers WHERE {condition}", params):
                found[row[column]] = self.dialect.subscriber(row)
        return found

    def list_subscribers(self, *, status=None, tag=None, limit=None):
        where = Where().equal(status=status or None)
        if tag:
            where.add(*self.dialect.has_tag(tag))
        sql = f"SELECT * FROM subscribers{where} ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        for row in self._x(sql, where.params):
            yield self.dialect.subscriber(row)

    def subscriber_counts(self):
        rows = self._x("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status")
        return {row["status"]: row["n"] for row in rows}

    def count_subscribers(self, status):
        return self._x("SELECT COUNT(*) AS n FROM subscribers WHERE status = ?",
                       (status,)).fetchone()["n"]

    # --- enrolments ------------------------------------------------------------
    @writes
    def enroll(self, subscriber_id, campaign, enrolled_at):
        row = self._x(
            "INSERT INTO enrollments (subscriber_id, campaign, enrolled_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING enrolled_at",
            (subscriber_id, campaign, self.dialect.time(enrolled_at))).fetchone()
        if row is None:
            return None
        return Enrollment(subscriber_id, campaign, self.dialect.when(row["enrolled_at"]), 0)

    def enrollments(self, *, subscriber_id=None, campaign=None):
        where = Where().equal(subscriber_id=subscriber_id, campaign=campaign)
        for row in self._x(f"SELECT * FROM enrollments{where} ORDER BY subscriber_id, campaign",
                           where.params):
            yield Enrollment(row["subscriber_id"], row["campaign"],
                             self.dialect.when(row["enrolled_at"]), row["shift_seconds"])

    @writes
    def set_enrollment_shift(self, subscriber_id, campaign, shift_seconds):
        self._x("UPDATE enrollments SET shift_seconds = ? WHERE subscriber_id = ? AND campaign = ?",
                (int(shift_seconds), subscriber_id, campaign))

    # --- lists: import, export, erasure, segments ----------------------------------
    def add_subscribers(self, rows, *, now):
        d = self.dialect
        values = [
            (secrets.token_hex(12), r["email"], r.get("name") or "", r.get("timezone"),
             r["status"], d.json(list(r.get("tags") or ())), d.json(dict(r.get("fields") or {})),
             r["consent"].source, d.time(r["consent"].at), r["consent"].text, r["consent"].ip,
             d.time(r["consent"].confirmed_at), d.time(r.get("created_at") or now), d.time(now))
            for r in rows]
        if not values:
            return 0
        with self.transaction():
            return self._many(_INSERT_SUBSCRIBER, values)

    def subscriber_page(self, *, after_id=0, limit=1000, status=None, tag=None,
                        created_from=None, created_before=None, until_id=None, text=None):
        d, where = self.dialect, Where("id > ?", [after_id])
        if until_id is not None:
            where.add("id <= ?", [until_id])
        if text:
            where.add(f"({d.position}(lower(email), ?) > 0 OR {d.position}(lower(name), ?) > 0)",
                      [text.lower(), text.lower()])
        where.equal(status=status or None)
        if tag:
            where.add(*d.has_tag(tag))
        where.span("created_at", d.time(created_from), d.time(created_before))
        sql = f"SELECT * FROM subscribers{where} ORDER BY id LIMIT {int(limit)}"
        return [d.subscriber(row) for row in self._x(sql, where.params)]

    def erase_subscriber(self, subscriber_id, *, erased_hash, key_id, now):
        with self.transaction():
            # Events may point at a delivery only (no subscriber id); their raw payloads
            # can hold the address, so they go too. Without a subscriber (someone not on
            # the list asked never to be mailed) only the hash is recorded.
            events = 0 if subscriber_id is None else self._x(
                "DELETE FROM events WHERE subscriber_id = ? OR delivery_id IN "
                "(SELECT id FROM deliveries WHERE subscriber_id = ?)",
                (subscriber_id, subscriber_id)).rowcount
            deliveries = self._x("DELETE FROM deliveries WHERE subscriber_id = ?",
                                 (subscriber_id,)).rowcount
            enrollments = self._x("DELETE FROM enrollments WHERE subscriber_id = ?",
                                  (subscriber_id,)).rowcount
            self._x("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))
            self._x("INSERT INTO erased (hash, key_id, erased_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (hash) DO UPDATE SET erased_at = excluded.erased_at",
                    (erased_hash, key_id, self.dialect.time(now)))
        return {"deliveries": deliveries, "enrollments": enrollments, "events": events}

    def erased_hashes(self, hashes):
        found = set()
        for condition, params in self.dialect.batches("hash", hashes):
            found.update(row["hash"] for row in self._x(
                f"SELECT hash FROM erased WHERE {condition}", params))
        return found

    def erased_key_ids(self):
        rows = self._x("SELECT key_id, COUNT(*) AS n FROM erased GROUP BY key_id")
        return {row["key_id"]: row["n"] for row in rows}
