"""What the overview and the campaigns page show, gathered from the library (``status``,
``report``, ``brake``) and from index-backed counts in the store. Nothing here decides
anything a command decides too: it only reads.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from ... import report as report_lib
from ...models import SUBSCRIBER_STATUSES
from ...schedule import localize
from ...status import status

DAYS, WEEKS = 30, 12
SERIES = (("signups", "Signups"), ("confirmations", "Confirmations"),
          ("unsubscribes", "Unsubscribes"), ("sent", "Emails sent"))


def periods(now, tz, period):
    """(edges, labels): the last DAYS days or WEEKS weeks (Monday to Sunday) on the coach's
    clock, each edge a local midnight in UTC, the last span ending tonight."""
    today = now.astimezone(tz).date()
    if period == "week":
        start = today - timedelta(days=today.weekday())
        days = [start - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS + 1)]
    else:
        days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS + 1)]
    edges = [localize(datetime.combine(day, time()), tz) for day in days]
    labels = [f"{day:%b} {day.day}" for day in days[:-1]]
    return edges, labels


def overview(drip, *, now, period="day"):
    store = drip.store
    tz = drip.settings.timezone
    edges, labels = periods(now, tz, period)
    series = []
    for what, title in SERIES:
        counts = store.period_counts(what, edges)
        series.append({"what": what, "title": title, "counts": counts, "total": sum(counts)})
    state = status(drip, now=now, counts=False)
    soon = store.period_counts("due", [now, now + timedelta(days=1), now + timedelta(days=7)])
    return {
        "period": period, "labels": labels, "series": series, "zone": tz.key,
        "subscribers": {s: store.count_subscribers(s) for s in SUBSCRIBER_STATUSES},
        "due_now": state["due_now"], "due_day": soon[0], "due_week": soon[0] + soon[1],
        "next_due": store.next_due(), "overdue": state["overdue"],
        "problems": state["problems"], "paused": state["paused"],
        "recent_failures": state["recent_failures"],
    }


def campaigns(drip, *, now):
    """Each campaign with its steps, where its people stand, and the report's counts; the
    brake's rates; the campaign files that did not load."""
    report = report_lib.build(drip, now=now)
    counted = {c["id"]: {s["step"]: s for s in c["steps"]} for c in report["campaigns"]}
    shown = []
    for campaign in drip.campaigns:
        waiting = drip.store.next_steps(campaign.id)
        rows = counted.get(campaign.id, {})
        steps = []
        for step in campaign.steps:
            steps.append({**rows[step.id], "number": step.number, "template": step.template,
                          "delay": str(step.delay), "after_enrolment": step.after_enrolment,
                          "exercise": step.exercise, "next_for": waiting.get(step.id, 0)})
        removed = [s for s in rows.values() if campaign.step(s["step"]) is None]
        shown.append({"id": campaign.id, "name": campaign.name, "entry": _entry(campaign),
                      "window": str(campaign.window) if campaign.window else None,
                      "steps": steps, "removed": removed,
                      "in_sequence": sum(waiting.values())})
    return {"campaigns": shown, "brake": report["brake"],
            "broken": {cid: list(problems) for cid, problems in drip.campaigns.broken.items()}}


def _entry(campaign):
    words = {"confirm": "when someone confirms", "signup": "at signup (the confirmation email)",
             "tag": "when an active subscriber gets a tag"}[campaign.entry_on]
    if campaign.entry_tags:
        words += f" (tags: {', '.join(campaign.entry_tags)})"
    if campaign.entry_segment is not None:
        words += f" (segment: {campaign.entry_segment})"
    return words
