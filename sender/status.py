"""``drip status``: counts by state, the next due email, recent failures, open decisions."""

from __future__ import annotations

from .models import iso


def status(drip, *, now, failures=5):
    store = drip.store
    # The latest failures only: reading every failed row gets slow on a big ledger.
    recent = store.last_deliveries("failed", failures)
    waiting = [d for d in store.deliveries(states=("sending",))
               if d.last_error and "drip resolve" in d.last_error]
    people = store.get_subscribers([d.subscriber_id for d in [*recent, *waiting]])
    next_due = store.next_due()
    return {
        "now": iso(now),
        "subscribers": store.subscriber_counts(),
        "deliveries": store.delivery_counts(),
        "next_due": iso(next_due),
        "due_now": store.count_due(now),
        "recent_failures": [
            {"id": d.id, "email": people[d.subscriber_id].email, "campaign": d.campaign,
             "step": d.step, "error": d.last_error} for d in recent],
        "needs_decision": [
            {"id": d.id, "email": people[d.subscriber_id].email, "campaign": d.campaign,
             "step": d.step, "claimed_at": iso(d.claimed_at)} for d in waiting],
    }
