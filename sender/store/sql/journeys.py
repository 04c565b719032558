"""The shared SQL that per-step rules and A/B subjects read (``step_rules.py``,
``ab_report.py``): who clicked in a campaign's emails, and what became of each email of a
step. A part of ``SqlStore``."""

from __future__ import annotations


class JourneyQueries:
    def clicked_among(self, subscriber_ids, campaign, step=None):
        """The ids among ``subscriber_ids`` with a recorded click on an email of ``campaign``
        (of its ``step`` only, if given); one statement per batch of ids."""
        found = set()
        step_condition, extra = ("AND d.step = ? ", [step]) if step else ("", [])
        for condition, params in self.dialect.batches("e.subscriber_id", subscriber_ids):
            rows = self._x(
                "SELECT DISTINCT e.subscriber_id AS id FROM events e "
                "JOIN deliveries d ON d.id = e.delivery_id "
                f"WHERE {condition} AND e.type = 'clicked' AND d.campaign = ? {step_condition}",
                [*params, campaign, *extra])
            found.update(row["id"] for row in rows)
        return found

    def step_outcomes(self, campaign, step):
        """{subscriber id: the set of event types recorded} for every sent email of
        ``campaign``/``step`` (an empty set when nothing was recorded); one statement."""
        found = {}
        rows = self._x(
            "SELECT d.subscriber_id AS id, e.type AS type FROM deliveries d "
            "LEFT JOIN events e ON e.delivery_id = d.id "
            "WHERE d.campaign = ? AND d.step = ? AND d.state = 'sent'", (campaign, step))
        for row in rows:
            types = found.setdefault(row["id"], set())
            if row["type"]:
                types.add(row["type"])
        return found
