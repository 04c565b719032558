"""``drip status``: counts by state, the next due email, recent failures, open decisions,
mail waiting on a problem, campaigns paused by the brake, and (``--check``) whether
anything needs the coach."""

from __future__ import annotations

from datetime import timedelta

from . import brake
from .ledger import needs_decision
from .models import iso, utc

# Mail still unsent this long after its due time means no sender is running.
OVERDUE = timedelta(hours=1)
# Failures this recent count as "failing now" for --check.
RECENT = timedelta(hours=24)


def status(drip, *, now, failures=5, waiting_shown=5, counts=True):
    """What is happening now. The counts by status and by state are the ones the database keeps
    as rows change (schema.py, m010), so a few rows are read, not the whole list and ledger;
    every other query here walks an index over only the rows it shows or counts. Without
    ``counts`` those two are left out (the dashboard's overview counts what it shows itself)."""
    store = drip.store
    # The latest failures only: reading every failed row gets slow on a big ledger.
    recent = store.last_deliveries("failed", failures)
    waiting = needs_decision(store)
    held_count, held = store.waiting_on_a_problem(waiting_shown)
    people = store.get_subscribers([d.subscriber_id for d in [*recent, *waiting, *held]])
    next_due = store.next_due()
    data = {
        "now": iso(now),
        "subscribers": store.subscriber_counts() if counts else None,
        "deliveries": store.delivery_counts() if counts else None,
        "next_due": iso(next_due),
        "due_now": store.count_due(now),
        "recent_failures": [
            {"id": d.id, "email": people[d.subscriber_id].email, "campaign": d.campaign,
             "step": d.step, "error": d.last_error, "due_at": iso(d.due_at)} for d in recent],
        "needs_decision": [
            {"id": d.id, "email": people[d.subscriber_id].email, "campaign": d.campaign,
             "step": d.step, "claimed_at": iso(d.claimed_at), "handed_at": iso(d.handed_at)}
            for d in waiting],
        "waiting": {"count": held_count, "first": [
            {"id": d.id, "email": people[d.subscriber_id].email, "campaign": d.campaign,
             "step": d.step, "reason": d.reason, "next_try": iso(d.due_at),
             "error": d.last_error} for d in held]},
        "overdue": store.count_due(now - OVERDUE),
        "paused": [{"campaign": b["campaign"], "since": iso(b["braked_at"]), "reason": b["reason"],
                    "waiting": b["waiting"]} for b in brake.active(store)],
        "broken_campaigns": {cid: list(found) for cid, found in drip.campaigns.broken.items()},
    }
    data["problems"] = problems(data, now=now)
    return data


def problems(data, *, now):
    """What needs the coach, one sentence each (empty when all is well)."""
    found = []
    for campaign, broken in data.get("broken_campaigns", {}).items():
        found.append(f"campaign file {campaign} does not load, so its emails wait: {broken[0]}")
    for paused in data.get("paused", ()):
        found.append(f"campaign {paused['campaign']} is paused by the brake since {paused['since']} "
                     f"({paused['reason']}); {paused['waiting']} email(s) wait. Find out why "
                     "(`drip report`), then `drip campaigns resume "
                     f"{paused['campaign']}`")
    if data["needs_decision"]:
        found.append(f"{len(data['needs_decision'])} email(s) need a decision after a crash: "
                     "`drip resolve`")
    waiting = data["waiting"]
    if waiting["count"]:
        reasons = sorted({w["reason"] for w in waiting["first"]})
        found.append(f"{waiting['count']} email(s) waiting on a problem ({', '.join(reasons)}); "
                     f"first: {waiting['first'][0]['error']}")
    if data["overdue"]:
        found.append(f"{data['overdue']} email(s) were due over {int(OVERDUE.total_seconds() // 3600)} "
                     "hour(s) ago and are not sent: is `drip send` (cron) or `drip worker` "
                     "running?")
    failing = [f for f in data["recent_failures"] if now - utc(f["due_at"]) <= RECENT]
    if failing:
        found.append(f"{len(failing)} email(s) failed in the last day; latest: {failing[0]['error']}")
    return found

