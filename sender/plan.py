"""What will happen: upcoming emails, the effect of campaign edits, hypothetical subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from .compose import template_context
from .models import Enrollment, Subscriber, iso
from .schedule import localize, zone
from .segments import select
from .sequence import campaign_changes, planned_times, subscriber_zone


@dataclass
class PlannedEmail:
    email: str
    campaign: str
    step: str
    subject: str
    due_at: object
    local_time: object
    state: str = "scheduled"

    def to_dict(self):
        return {"email": self.email, "campaign": self.campaign, "step": self.step,
                "subject": self.subject, "due_at": iso(self.due_at),
                "local_time": self.local_time.isoformat(), "state": self.state}


def _subject(drip, subscriber, campaign_id, step_id):
    campaign = drip.campaigns.get(campaign_id)
    step = campaign.step(step_id) if campaign else None
    if step is None:
        return "(step no longer in the campaign)"
    return template_context(drip, subscriber, campaign, step)["subject"]


def upcoming(drip, *, now, days, limit=None, segment=None):
    """Scheduled emails due between ``now`` and ``now + days``, in order: at most ``limit``
    (read through the due index, so a long ledger costs only the rows shown), and only to
    subscribers in ``segment`` when given."""
    store = drip.store
    before = now + timedelta(days=days)
    wanted = limit
    while True:
        rows = list(store.deliveries(states=("scheduled",), due_before=before, limit=wanted))
        result = _planned(drip, rows, store.get_subscribers([d.subscriber_id for d in rows]),
                          segment)
        if limit is None or len(result) >= limit or len(rows) < wanted:
            return result[:limit] if limit else result
        wanted *= 4   # a segment or ended subscribers left too few: read further


def _planned(drip, rows, people, segment):
    result = []
    for delivery in rows:
        subscriber = people[delivery.subscriber_id]
        if subscriber.status not in ("active", "pending"):
            continue
        if segment is not None and not segment.matches(subscriber):
            continue
        local = delivery.due_at.astimezone(subscriber_zone(subscriber, drip.settings))
        result.append(PlannedEmail(subscriber.email, delivery.campaign, delivery.step,
                                   _subject(drip, subscriber, delivery.campaign, delivery.step),
                                   delivery.due_at, local))
    return result


def pending_changes(drip, *, now):
    """What the current campaign files would change for existing subscribers (dry run)."""
    changes = campaign_changes(drip, now, apply=False)
    people = drip.store.get_subscribers([c.subscriber_id for c in changes])
    return [{"email": people[c.subscriber_id].email, "campaign": c.campaign, "step": c.step,
             "action": c.action, "due_at": iso(c.due_at), "old_due_at": iso(c.old_due_at),
             "reason": c.reason} for c in changes]


@dataclass
class EnrolmentPlan:
    """Who `drip enroll` puts into a campaign, and who it leaves alone or out."""

    campaign: object
    enrol: list = field(default_factory=list)      # (subscriber, PlannedEmail of the first email)
    already: list = field(default_factory=list)    # addresses enrolled before: left alone
    left_out: dict = field(default_factory=dict)   # why -> how many: a status, or "not_accepted"


def enrolment(drip, campaign, segment, *, now):
    """Who in ``segment`` would be enrolled in ``campaign`` at ``now``, each with the first
    email's due time worked out as for everyone else (send window, time zone); who is in
    already; and how many are left out and why: only active subscribers whom the campaign's
    entry (tags, segment) accepts go in. Subscribers are read page by page, in id order."""
    inside = {e.subscriber_id for e in drip.store.enrollments(campaign=campaign.id)}
    plan = EnrolmentPlan(campaign)
    for person in select(drip.store, segment):
        if person.id in inside:
            plan.already.append(person.email)
            continue
        why = person.status if person.status != "active" else (
            None if campaign.accepts(person) else "not_accepted")
        if why:
            plan.left_out[why] = plan.left_out.get(why, 0) + 1
            continue
        [(step, due), *_] = planned_times(campaign, Enrollment(person.id, campaign.id, now), person,
                                          drip.settings)
        subject = template_context(drip, person, campaign, step)["subject"]
        local = due.astimezone(subscriber_zone(person, drip.settings))
        plan.enrol.append((person, PlannedEmail(person.email, campaign.id, step.id, subject, due,
                                                local)))
    return plan


def simulate(drip, *, signup, timezone):
    """Exact send times for a hypothetical subscriber who signs up (and confirms) at
    ``signup``, a naive local time in ``timezone``."""
    tz = zone(timezone)
    enrolled_at = localize(signup, tz) if signup.tzinfo is None else signup
    person = Subscriber(id=0, uid="simulated", email="someone@example.com", name="",
                        timezone=timezone, status="active")
    result = []
    for campaign in drip.campaigns:
        if campaign.entry_on == "tag":
            continue
        enrollment = Enrollment(0, campaign.id, enrolled_at)
        for step, due in planned_times(campaign, enrollment, person, drip.settings):
            subject = template_context(drip, person, campaign, step)["subject"]
            result.append(PlannedEmail(person.email, campaign.id, step.id, subject, due,
                                       due.astimezone(tz)))
    return sorted(result, key=lambda p: (p.due_at, p.campaign))
