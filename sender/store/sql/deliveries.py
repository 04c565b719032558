"""The shared SQL of the delivery ledger and the campaign brake. A part of ``SqlStore``; the
claims (``claim_due``, ``take_over_stale``) are each engine's own, since they lock differently."""

from __future__ import annotations

from .dialect import DELIVERY_COLUMNS, Where, writes

# The most rows one statement of ``update_deliveries`` changes (a Postmark request's worth);
# its parameters stay well under SQLite's and PostgreSQL's limits.
BATCH_ROWS = 500
# Leaves out the deliveries of a braked campaign (they wait for `drip campaigns resume`).
NOT_BRAKED = (" AND campaign NOT IN (SELECT campaign FROM campaign_brakes "
              "WHERE resumed_at IS NULL)")


class DeliveryQueries:
    def add_deliveries(self, rows, *, now):
        d = self.dialect
        values = [(r["subscriber_id"], r["campaign"], r["step"], d.time(r["due_at"]),
                   r.get("state", "scheduled"), r.get("last_error"), r.get("reason"),
                   d.time(now)) for r in rows]
        if not values:
            return 0
        with self.transaction():
            return self._many(
                "INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, "
                "last_error, reason, created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                values)

    def get_delivery(self, delivery_id):
        row = self._x("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return self.dialect.delivery(row) if row else None

    def deliveries(self, *, subscriber_id=None, campaign=None, states=None,
                   due_from=None, due_before=None, limit=None):
        d, where = self.dialect, Where().equal(subscriber_id=subscriber_id, campaign=campaign)
        if states:
            where.add(*d.one_of("state", list(states)))
        where.span("due_at", d.time(due_from), d.time(due_before))
        sql = f"SELECT * FROM deliveries{where} ORDER BY due_at, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        for row in self._x(sql, where.params).fetchall():
            yield d.delivery(row)

    @writes
    def skip_ended(self, now):
        return self._x(
            "UPDATE deliveries SET state = 'skipped', reason = 'subscriber_ended', "
            "last_error = 'subscriber is ' || ("
            "  SELECT status FROM subscribers s WHERE s.id = deliveries.subscriber_id) "
            "WHERE state = 'scheduled' AND due_at <= ? AND subscriber_id IN ("
            "  SELECT id FROM subscribers WHERE status IN ('unsubscribed','bounced','complained'))",
            (self.dialect.time(now),)).rowcount

    @writes
    def renew_lease(self, lease, at):
        return self._x("UPDATE deliveries SET claimed_at = ? WHERE state = 'sending' AND lease = ?",
                       (self.dialect.time(at), lease)).rowcount

    @writes
    def update_delivery(self, delivery_id, *, expect_state=None, expect_lease=None, **changes):
        unknown = set(changes) - DELIVERY_COLUMNS
        if unknown:
            raise ValueError(f"unknown delivery columns: {sorted(unknown)}")
        values = {k: self.dialect.to_db(k, v) for k, v in changes.items()}
        sql = "UPDATE deliveries SET " + ", ".join(f"{k} = ?" for k in values) + " WHERE id = ?"
        params = [*values.values(), delivery_id]
        if expect_state:
            sql += " AND state = ?"
            params.append(expect_state)
        if expect_lease:
            sql += " AND lease = ?"
            params.append(expect_lease)
        return self._x(sql, params).rowcount == 1

    def update_deliveries(self, changes):
        """Many ``update_delivery`` calls at once. ``changes``: (delivery_id, expect_state,
        expect_lease, {column: value}) each; every row changes only under its own guard.
        Rows with the same columns and guards go in one statement (up to BATCH_ROWS rows):
        values the same for all of them are set once, the others joined from a VALUES list,
        and RETURNING says which rows the guards let through. All in one transaction, which
        on PostgreSQL needs no store-wide lock (each row is guarded on its own). Returns the
        set of ids changed."""
        groups, seen = {}, set()
        for delivery_id, expect_state, expect_lease, columns in changes:
            if delivery_id in seen:
                raise ValueError(f"update_deliveries: delivery {delivery_id} twice in one batch")
            seen.add(delivery_id)
            unknown = set(columns) - DELIVERY_COLUMNS
            if unknown:
                raise ValueError(f"unknown delivery columns: {sorted(unknown)}")
            values = {k: self.dialect.to_db(k, v) for k, v in sorted(columns.items())}
            guards = (expect_state is not None, expect_lease is not None)
            groups.setdefault((tuple(values), guards), []).append(
                (delivery_id, expect_state, expect_lease, values))
        done = set()
        with self.handoff_transaction():
            for (columns, guards), rows in groups.items():
                for start in range(0, len(rows), BATCH_ROWS):
                    done.update(self._update_group(columns, guards, rows[start:start + BATCH_ROWS]))
        return done

    def _update_group(self, columns, guards, rows):
        same = [c for c in columns if all(r[3][c] == rows[0][3][c] for r in rows)]
        varying = [c for c in columns if c not in same]
        names = ["row_id"] + ["want_state"] * guards[0] + ["want_lease"] * guards[1] \
            + [f"new_{c}" for c in varying]
        params = []
        for delivery_id, expect_state, expect_lease, values in rows:
            params += [delivery_id] + [expect_state] * guards[0] + [expect_lease] * guards[1] \
                + [values[c] for c in varying]
        sets = [f"{c} = ?" for c in same] + [f"{c} = v.new_{c}" for c in varying]
        params += [rows[0][3][c] for c in same]
        marks = "(" + ",".join("?" * len(names)) + ")"
        sql = (f"WITH v ({', '.join(names)}) AS (VALUES {','.join([marks] * len(rows))}) "
               f"UPDATE deliveries SET {', '.join(sets)} FROM v WHERE deliveries.id = v.row_id"
               + " AND deliveries.state = v.want_state" * guards[0]
               + " AND deliveries.lease = v.want_lease" * guards[1] + " RETURNING id")
        return {row["id"] for row in self._x(sql, params).fetchall()}

    @writes
    def cancel_pending(self, subscriber_id, reason, *, campaign=None, code=None):
        sql = ("UPDATE deliveries SET state = 'cancelled', last_error = ?, reason = ? "
               "WHERE subscriber_id = ? AND state = 'scheduled'")
        params = [reason, code, subscriber_id]
        if campaign:
            sql += " AND campaign = ?"
            params.append(campaign)
        return self._x(sql, params).rowcount

    def stale_sending(self, claimed_before):
        rows = self._x("SELECT * FROM deliveries WHERE state = 'sending' AND claimed_at < ? "
                       "ORDER BY id", (self.dialect.time(claimed_before),)).fetchall()
        return [self.dialect.delivery(r) for r in rows]

    def waiting_on_a_problem(self, limit):
        where = (f"FROM deliveries{self.dialect.waiting_hint} WHERE state = 'scheduled' "
                 "AND reason IN ('retrying', 'template_error', 'campaign_error')")
        count = self._x(f"SELECT COUNT(*) AS n {where}").fetchone()["n"]
        rows = self._x(f"SELECT * {where} ORDER BY due_at, id LIMIT ?", (int(limit),)).fetchall()
        return count, [self.dialect.delivery(r) for r in rows]

    def delivery_counts(self):
        return self._row_counts("deliveries")       # kept by triggers (schema.py, m010)

    def count_due(self, now):
        # All due, counted in the due index alone, less those of braked campaigns (none,
        # mostly), each found by its campaign: NOT_BRAKED would read every due row.
        at = self.dialect.time(now)
        return self._x(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'scheduled' AND due_at <= ?)"
            " - (SELECT COUNT(*) FILTER (WHERE deliveries.due_at <= ?)"
            " FROM campaign_brakes CROSS JOIN deliveries WHERE campaign_brakes.resumed_at IS NULL"
            " AND deliveries.campaign = campaign_brakes.campaign"
            " AND deliveries.state = 'scheduled') AS n",
            (at, at)).fetchone()["n"]

    def next_due(self):
        row = self._x("SELECT MIN(due_at) AS m FROM deliveries WHERE state = 'scheduled'"
                      + NOT_BRAKED).fetchone()
        return self.dialect.when(row["m"])

    def last_sent(self, subscriber_ids, *, exclude_campaign=None):
        found = {}
        for condition, params in self.dialect.batches("subscriber_id", subscriber_ids):
            sql = (f"SELECT subscriber_id, MAX(sent_at) AS m FROM deliveries WHERE {condition} "
                   "AND sent_at IS NOT NULL")
            if exclude_campaign:
                sql += " AND campaign != ?"
                params = [*params, exclude_campaign]
            for row in self._x(sql + " GROUP BY subscriber_id", params):
                found[row["subscriber_id"]] = self.dialect.when(row["m"])
        return found

    def last_deliveries(self, state, limit):
        rows = self._x("SELECT * FROM deliveries WHERE state = ? "
                       "ORDER BY due_at DESC, id DESC LIMIT ?", (state, int(limit))).fetchall()
        return [self.dialect.delivery(r) for r in rows]

    def next_steps(self, campaign):
        rows = self._x(
            "SELECT step, COUNT(*) AS people FROM (SELECT step, ROW_NUMBER() OVER (PARTITION BY "
            "subscriber_id ORDER BY due_at, id) AS n FROM deliveries "
            "WHERE campaign = ? AND state = 'scheduled') AS firsts WHERE n = 1 GROUP BY step",
            (campaign,))
        return {row["step"]: row["people"] for row in rows}

    # --- the complaint and bounce brake -------------------------------------------------
    @writes
    def brake_campaign(self, campaign, *, reason, details, now):
        return self._x(
            "INSERT INTO campaign_brakes (campaign, braked_at, reason, details) VALUES (?,?,?,?) "
            "ON CONFLICT (campaign) DO UPDATE SET braked_at = excluded.braked_at, "
            "reason = excluded.reason, details = excluded.details, resumed_at = NULL "
            "WHERE campaign_brakes.resumed_at IS NOT NULL",
            (campaign, self.dialect.time(now), reason, self.dialect.json(details, default=str))
        ).rowcount == 1

    @writes
    def resume_campaign(self, campaign, *, now):
        return self._x(
            "UPDATE campaign_brakes SET resumed_at = ? WHERE campaign = ? AND resumed_at IS NULL",
            (self.dialect.time(now), campaign)).rowcount == 1

    def campaign_brakes(self):
        rows = self._x(
            "SELECT b.*, CASE WHEN b.resumed_at IS NULL THEN (SELECT COUNT(*) FROM deliveries d "
            "  WHERE d.campaign = b.campaign AND d.state = 'scheduled') ELSE 0 END AS waiting "
            "FROM campaign_brakes b ORDER BY b.campaign").fetchall()
        d = self.dialect
        return [{"campaign": r["campaign"], "reason": r["reason"], "details": d.loads(r["details"]),
                 "braked_at": d.when(r["braked_at"]), "resumed_at": d.when(r["resumed_at"]),
                 "waiting": r["waiting"]} for r in rows]

    def campaign_health(self, campaign, *, since, until):
        row = self._x(
            "SELECT COUNT(*) AS sent, "
            "  COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM events e WHERE e.delivery_id = d.id"
            "                                 AND e.type = 'complained')) AS complained, "
            "  COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM events e WHERE e.delivery_id = d.id"
            "                                 AND e.type = 'bounced')) AS bounced "
            "FROM deliveries d WHERE d.campaign = ? AND d.state = 'sent' "
            "AND d.sent_at >= ? AND d.sent_at <= ?",
            (campaign, self.dialect.time(since), self.dialect.time(until))).fetchone()
        return {"sent": row["sent"], "complained": row["complained"], "bounced": row["bounced"]}
