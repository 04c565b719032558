"""The shared SQL about people: subscribers, their enrolments, and lists (import, export,
erasure, segments). A part of ``SqlStore``: ``self._x`` runs a statement and
``self.dialect`` spells what the engines spell differently."""

from __future__ import annotations

import secrets
from contextlib import nullcontext

from ...errors import InvalidInput
from ...models import Enrollment
from .dialect import SUBSCRIBER_COLUMNS, Where, writes

SUBSCRIBER_ROW = (
    "subscribers (uid, email, name, timezone, status, tags, fields, consent_source, "
    "consent_at, consent_text, consent_ip, confirmed_at, created_at, updated_at) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
_INSERT_SUBSCRIBER = f"INSERT INTO {SUBSCRIBER_ROW} ON CONFLICT (email) DO NOTHING"
# An INSERT that passes over a row that is already there: (its start, its end).
_INSERT_NEW = ("INSERT INTO", "ON CONFLICT DO NOTHING")


class SubscriberQueries:
    # How the bulk paths spell an INSERT that passes over rows the table refuses; an engine
    # may spell it so that it costs less (SQLite's OR IGNORE keeps no statement journal).
    _insert_new = _INSERT_NEW

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

    def subscriber_ids(self, emails):
        found = {}
        for condition, params in self.dialect.batches("email", emails):
            found.update((row["email"], row["id"]) for row in self._x(
                f"SELECT id, email FROM subscribers WHERE {condition}", params))
        return found

    def _subscribers_where(self, column, values):
        """{value: subscriber} for subscribers whose ``column`` is one of ``values``."""
        found = {}
        for condition, params in self.dialect.batches(column, values):
            for row in self._x(f"SELECT * FROM subscribers WHERE {condition}", params).fetchall():
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
        return self._row_counts("subscribers")      # kept by triggers (schema.py, m010)

    def count_subscribers(self, status):
        return self._x("SELECT COUNT(*) AS n FROM subscribers WHERE status = ?",
                       (status,)).fetchone()["n"]

    # --- enrolments ------------------------------------------------------------
    @writes
    def enroll(self, subscriber_id, campaign, enrolled_at, fingerprint=None):
        row = self._x(
            "INSERT INTO enrollments (subscriber_id, campaign, enrolled_at, fingerprint) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING enrolled_at",
            (subscriber_id, campaign, self.dialect.time(enrolled_at), fingerprint)).fetchone()
        if row is None:
            return None
        return Enrollment(subscriber_id, campaign, self.dialect.when(row["enrolled_at"]), 0)

    def enroll_many(self, subscriber_ids, campaign, enrolled_at, fingerprint):
        with self.transaction():   # the write lock: nobody enrols them between the two steps
            ids = set(subscriber_ids)
            for condition, params in self.dialect.batches("subscriber_id", ids):
                ids -= {row["subscriber_id"] for row in self._x(
                    f"SELECT subscriber_id FROM enrollments WHERE campaign = ? AND {condition}",
                    [campaign, *params])}
            when = self.dialect.time(enrolled_at)
            fresh = sorted(ids)
            self._many("INSERT INTO enrollments (subscriber_id, campaign, enrolled_at, fingerprint) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       [(i, campaign, when, fingerprint) for i in fresh])
        return fresh

    def enrollments_to_check(self, campaign, fingerprint, *, after_id=0, limit=2000):
        # Walked in subscriber order along the primary key (``campaign || ''`` keeps the
        # planner off the fingerprint index, whose order would need a sort for every page).
        rows = self._x(
            "SELECT * FROM enrollments WHERE subscriber_id > ? AND campaign || '' = ? AND "
            "(fingerprint IS NULL OR fingerprint <> ?) ORDER BY subscriber_id LIMIT ?",
            (after_id, campaign, fingerprint, int(limit)))
        return [Enrollment(row["subscriber_id"], row["campaign"],
                           self.dialect.when(row["enrolled_at"]), row["shift_seconds"])
                for row in rows]

    def enrolment_deliveries(self, campaign, subscriber_ids):
        d, found = self.dialect, []
        for condition, params in d.batches("subscriber_id", subscriber_ids):
            found += [d.delivery(row) for row in self._x(
                f"SELECT * FROM deliveries WHERE campaign = ? AND {condition}",
                [campaign, *params])]
        return found

    def any_enrollment_to_check(self, campaign, fingerprint):
        # Three seeks in the fingerprint index: none planned, planned before, planned after.
        where = "SELECT 1 FROM enrollments WHERE campaign = ? AND fingerprint"
        return bool(self._x(
            f"SELECT (EXISTS ({where} IS NULL) OR EXISTS ({where} < ?) OR EXISTS ({where} > ?)) "
            "AS found", (campaign, campaign, fingerprint, campaign, fingerprint)).fetchone()["found"])

    @writes
    def set_enrollment_fingerprints(self, campaign, subscriber_ids, fingerprint):
        for condition, params in self.dialect.batches("subscriber_id", subscriber_ids):
            self._x(f"UPDATE enrollments SET fingerprint = ? WHERE campaign = ? AND {condition}",
                    [fingerprint, campaign, *params])

    def add_enrolled_deliveries(self, subscriber_ids, campaign, steps, *, now):
        """``steps``: [(step, due_at)], the same for every one of ``subscriber_ids``. The
        rows are made by the database: a CROSS JOIN keeps them in subscriber order (SQLite
        takes the join order as written), so each index grows at its end."""
        d = self.dialect
        ids = sorted(set(subscriber_ids))
        if not ids or not steps:
            return 0
        timings = " UNION ALL ".join("SELECT ? AS step, ? AS due_at" for _ in steps)
        params = [p for step, due in steps for p in (step, d.time(due))]
        # A row already there is passed over; so is any other the table refuses, where the
        # engine can say so more cheaply (``_insert_new``), once no NOT NULL column is empty.
        insert, skip = _INSERT_NEW if None in (campaign, *params) else self._insert_new
        count, size = 0, d.chunk or len(ids)
        with self.transaction(), self._inserts_counted("deliveries", "scheduled"):
            for start in range(0, len(ids), size):
                condition, chunk = d.one_of("s.id", ids[start:start + size])
                count += self._x(
                    f"{insert} deliveries (subscriber_id, campaign, step, due_at, state, "
                    f"created_at) SELECT s.id, ?, t.step, t.due_at, 'scheduled', ? "
                    f"FROM subscribers s CROSS JOIN ({timings}) t WHERE {condition} {skip}",
                    [campaign, d.time(now), *params, *chunk]).rowcount
        return count

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
    def bulk_writes(self):
        """A context manager around a long run of big writes (an import): an engine may tune
        its connection for it (SQLite does); what is written, and when, is the same."""
        return nullcontext(self)

    def _inserts_counted(self, table, value):
        """A context manager around bulk inserts into ``table`` of rows with status or state
        ``value``, which writes nothing else: an engine whose counting triggers cost much per
        row counts them at the end instead, in the same transaction (SQLite does). Here the
        triggers count them."""
        return nullcontext(self)

    def add_subscribers(self, rows, *, now):
        d = self.dialect
        rows = list(rows)
        uids = secrets.token_bytes(12 * len(rows)).hex()      # 24 hex digits each
        stamp, times, tags = d.time(now), {}, {}               # what rows share is worked out once
        consents, fields, values = {}, {}, []
        for n, r in enumerate(rows):
            consent = r["consent"]
            shared = consents.get(id(consent))
            if shared is None:
                shared = consents[id(consent)] = (consent, (
                    consent.source, d.time(consent.at), consent.text, consent.ip,
                    d.time(consent.confirmed_at)))
            created = r.get("created_at") or now
            when = times.get(created)
            if when is None:
                when = times[created] = d.time(created)
            tag_list = tuple(r.get("tags") or ())
            stored_tags = tags.get(tag_list)
            if stored_tags is None:
                stored_tags = tags[tag_list] = d.json(list(tag_list))
            field_items = tuple((r.get("fields") or {}).items())
            stored_fields = fields.get(field_items)
            if stored_fields is None:
                stored_fields = d.json(dict(field_items))
                if len(fields) < 10000:
                    fields[field_items] = stored_fields
            values.append((uids[24 * n:24 * n + 24], r["email"], r.get("name") or "",
                           r.get("timezone"), r["status"], stored_tags, stored_fields,
                           *shared[1], when, stamp))
        if not values:
            return 0
        with self.transaction():
            return self._insert_subscribers(values, {row[4] for row in values})

    def _insert_subscribers(self, values, statuses):
        """Insert ``values`` (rows in the order of ``SUBSCRIBER_ROW``, whose statuses are
        ``statuses``), leaving anyone whose address is there already as she is; returns how
        many were added. An engine may do it its own way (SQLite does)."""
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
