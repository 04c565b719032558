"""The shared SQL the sunset rule reads (``sunset.py``): for a batch of people at once, how
many emails went to each since she last showed she reads them, and her latest "still want
these?" email. A part of ``SqlStore``."""

from __future__ import annotations


class EngagementQueries:
    def engagement(self, subscriber_ids, *, question, uncounted_campaigns=(),
                   uncounted_steps=()):
        """{subscriber id: dict} for ``subscriber_ids``, one statement per batch of ids:

        - ``engaged_at``: her latest click (opens never count), where a click on one of her
          ``question`` emails counts only when drip recorded it itself (her "yes, keep them"),
          since a provider's tracked click there may be a mail scanner;
        - ``asked``: how many ``question`` rows she has; ``ask``: the latest of them (a
          Delivery) or None;
        - ``unclicked``: her emails sent after the latest of ``engaged_at``, her latest
          question (its send time, else its due time) and her confirming, leaving out the
          question itself, ``uncounted_campaigns`` and ``uncounted_steps`` ((campaign, step)
          pairs): the emails that went to her unclicked, in a row."""
        d = self.dialect
        skip = ["d.campaign <> ?"] + ["d.campaign <> ?" for _ in uncounted_campaigns] + [
            "NOT (d.campaign = ? AND d.step = ?)" for _ in uncounted_steps]
        skip_params = [question, *uncounted_campaigns,
                       *(p for pair in uncounted_steps for p in pair)]
        found = {}
        for condition, params in d.batches("s.id", subscriber_ids):
            rows = self._x(
                "SELECT x.id AS person, x.engaged_at AS engaged_at, x.asked AS asked, a.*, "
                "  (SELECT COUNT(*) FROM deliveries d WHERE d.subscriber_id = x.id "
                "     AND d.state = 'sent' AND " + " AND ".join(skip) +
                "     AND (x.engaged_at IS NULL OR d.sent_at >= x.engaged_at)"
                "     AND (a.id IS NULL OR d.sent_at > COALESCE(a.sent_at, a.due_at))"
                "     AND (x.confirmed_at IS NULL OR d.sent_at >= x.confirmed_at)) AS unclicked "
                "FROM (SELECT s.id AS id, s.confirmed_at AS confirmed_at,"
                "  (SELECT MAX(e.occurred_at) FROM events e WHERE e.subscriber_id = s.id"
                "     AND e.type = 'clicked' AND (e.provider = 'drip' OR e.delivery_id IS NULL"
                "     OR e.delivery_id NOT IN (SELECT q.id FROM deliveries q"
                "       WHERE q.subscriber_id = s.id AND q.campaign = ?))) AS engaged_at,"
                "  (SELECT COUNT(*) FROM deliveries q WHERE q.subscriber_id = s.id"
                "     AND q.campaign = ?) AS asked,"
                "  (SELECT MAX(q.id) FROM deliveries q WHERE q.subscriber_id = s.id"
                "     AND q.campaign = ?) AS ask_id"
                f"  FROM subscribers s WHERE {condition}) x "
                "LEFT JOIN deliveries a ON a.id = x.ask_id",
                [*skip_params, question, question, question, *params])
            for row in rows:
                found[row["person"]] = {
                    "engaged_at": d.when(row["engaged_at"]), "asked": row["asked"],
                    "unclicked": row["unclicked"],
                    "ask": d.delivery(row) if row["asked"] else None}
        return found
