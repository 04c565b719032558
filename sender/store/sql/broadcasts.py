"""The shared SQL of broadcasts: the ``broadcasts`` table (one row per broadcast scheduled or
sent), and the few ledger reads broadcasts need, each one statement per batch of people.
A part of ``SqlStore``."""

from __future__ import annotations

from .dialect import writes

BROADCAST_PREFIX = "broadcast."     # the ledger's campaign id of a broadcast (broadcasts.py)
_TIMES = ("first_at", "last_at", "scheduled_at", "started_at", "finished_at", "cancelled_at",
          "updated_at")
_CHANGEABLE = {"state", "audience", "source", "started_at", "finished_at", "cancelled_at"}
# Scheduled rows that wait on a problem are not "coming": they may wait for days.
_COMING = ("state = 'scheduled' AND (reason IS NULL OR reason NOT IN "
           "('retrying', 'template_error', 'campaign_error'))")


class BroadcastQueries:
    def _broadcast(self, row):
        found = dict(row)
        for column in _TIMES:
            found[column] = self.dialect.when(found[column])
        found["archive"] = bool(found["archive"])
        return found

    @writes
    def save_broadcast(self, name, *, campaign, subject, when_text, local_day, first_at, last_at,
                       segment, archive, now):
        d = self.dialect
        return self._x(
            "INSERT INTO broadcasts (name, campaign, subject, when_text, local_day, first_at, "
            "last_at, state, segment, archive, scheduled_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,'scheduled',?,?,?,?) ON CONFLICT (name) DO UPDATE SET "
            "subject = excluded.subject, when_text = excluded.when_text, "
            "local_day = excluded.local_day, first_at = excluded.first_at, "
            "last_at = excluded.last_at, state = 'scheduled', segment = excluded.segment, "
            "archive = excluded.archive, scheduled_at = excluded.scheduled_at, "
            "cancelled_at = NULL, updated_at = excluded.updated_at "
            "WHERE broadcasts.started_at IS NULL AND broadcasts.state IN ('scheduled', 'cancelled')",
            (name, campaign, subject, when_text, local_day, d.time(first_at), d.time(last_at),
             segment, int(bool(archive)), d.time(now), d.time(now))).rowcount == 1

    def get_broadcast(self, name):
        row = self._x("SELECT * FROM broadcasts WHERE name = ?", (name,)).fetchone()
        return self._broadcast(row) if row else None

    def list_broadcasts(self, *, states=None):
        sql, params = "SELECT * FROM broadcasts", []
        if states:
            condition, params = self.dialect.one_of("state", list(states))
            sql += f" WHERE {condition}"
        return [self._broadcast(r) for r in self._x(sql + " ORDER BY first_at, name", params)]

    @writes
    def update_broadcast(self, name, *, expect_state, now, **changes):
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"unknown broadcast columns: {sorted(unknown)}")
        d = self.dialect
        values = {k: d.time(v) if k.endswith("_at") else v for k, v in changes.items()}
        values["updated_at"] = d.time(now)
        states = (expect_state,) if isinstance(expect_state, str) else tuple(expect_state)
        sql = ("UPDATE broadcasts SET " + ", ".join(f"{k} = ?" for k in values)
               + f" WHERE name = ? AND state IN ({', '.join('?' * len(states))})")
        return self._x(sql, [*values.values(), name, *states]).rowcount == 1

    def campaign_state_counts(self, campaign):
        rows = self._x("SELECT state, COUNT(*) AS n FROM deliveries WHERE campaign = ? "
                       "GROUP BY state", (campaign,))
        return {row["state"]: row["n"] for row in rows}

    def sent_broadcasts(self, *, archived_only=True):
        sql = "SELECT * FROM broadcasts WHERE state = 'sent'"
        if archived_only:
            sql += " AND archive = 1"
        return [self._broadcast(r) for r in self._x(sql + " ORDER BY started_at DESC, name")]

    def next_coming(self, subscriber_ids, *, broadcasts, before, exclude_campaign=None):
        """{subscriber id: the earliest due time before ``before`` of her scheduled rows of
        broadcasts (``broadcasts=True``) or of sequences (False)}, rows waiting on a problem
        left out; one statement per batch of ids."""
        found, d = {}, self.dialect
        kind = "LIKE ?" if broadcasts else "NOT LIKE ?"
        for condition, params in d.batches("subscriber_id", subscriber_ids):
            sql = (f"SELECT subscriber_id, MIN(due_at) AS m FROM deliveries WHERE {condition} "
                   f"AND {_COMING} AND due_at < ? AND campaign {kind}")
            params = [*params, d.time(before), BROADCAST_PREFIX + "%"]
            if exclude_campaign:
                sql += " AND campaign != ?"
                params.append(exclude_campaign)
            for row in self._x(sql + " GROUP BY subscriber_id", params):
                found[row["subscriber_id"]] = d.when(row["m"])
        return found

    def paused_due(self, campaign, now, *, limit=1000):
        """Scheduled rows of ``campaign`` due by ``now`` whose subscriber is paused."""
        rows = self._x(
            "SELECT d.* FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
            "WHERE d.campaign = ? AND d.state = 'scheduled' AND d.due_at <= ? "
            "AND s.status = 'paused' ORDER BY d.id LIMIT ?",
            (campaign, self.dialect.time(now), int(limit))).fetchall()
        return [self.dialect.delivery(r) for r in rows]

    def campaign_progress(self, subscriber_ids, campaign):
        """{subscriber id: "active" (enrolled, emails still to come) or "finished" (enrolled,
        every email settled)} for those of ``subscriber_ids`` enrolled in ``campaign``; one
        statement per batch of ids."""
        found = {}
        for condition, params in self.dialect.batches("e.subscriber_id", subscriber_ids):
            rows = self._x(
                "SELECT e.subscriber_id AS id, EXISTS (SELECT 1 FROM deliveries d "
                "  WHERE d.subscriber_id = e.subscriber_id AND d.campaign = e.campaign "
                "  AND d.state IN ('scheduled', 'sending')) AS pending "
                f"FROM enrollments e WHERE {condition} AND e.campaign = ?", [*params, campaign])
            for row in rows:
                found[row["id"]] = "active" if row["pending"] else "finished"
        return found
