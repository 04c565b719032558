"""What will happen: upcoming emails, the effect of campaign edits, hypothetical subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from . import sunset
from .compose import template_context
from .models import ENDED_STATUSES, Enrollment, iso
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
    outcome: str = "sent"     # in a simulation: sent, skipped or cancelled
    reason: str = ""          # why it was skipped or cancelled (the rule, in words)
    branch: dict | None = None   # in a simulation, a step with ``then`` once sent: what it did

    def to_dict(self):
        return {"email": self.email, "campaign": self.campaign, "step": self.step,
                "subject": self.subject, "due_at": iso(self.due_at),
                "local_time": self.local_time.isoformat(), "state": self.state,
                "outcome": self.outcome, "reason": self.reason, "branch": self.branch}


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


def rule_changes(drip, *, now):
    """What an edit to a campaign's goal (``exit``), a step's condition (``when``) or a step's
    branch (``then``, ``then_when``) changes for who has emails of it still to come, as read
    from the files against the rules its enrolments were last checked with
    (``sequence.campaign_rules``; nothing before the first `drip send` after this version;
    branches: nothing against rules kept before they were kept too). For each edited rule:
    how many people it concerns, and how many of them meet the new rule now. The send path
    applies rules when each email falls due, so a goal met ends her campaign then, an unmet
    condition skips the step, and a branch is followed when its step is sent to her."""
    import json

    from . import step_rules
    from .sequence import FINGERPRINT_KEY, RULES_KEY, campaign_rules

    store = drip.store
    found = []
    for campaign in drip.campaigns:
        stored = store.get_meta(RULES_KEY.format(campaign.id))
        if stored is None:
            # Not recorded (the file has not changed since the rules were first kept): when
            # the file did change, its rules are shown as new, their old text unknown.
            planned = store.get_meta(FINGERPRINT_KEY.format(campaign.id))
            if planned in (None, campaign.fingerprint()):
                continue
            stored = json.dumps({"exit": None, "when": {}, "then": {}})
        before, after = json.loads(stored), campaign_rules(campaign)
        edits = []
        if before.get("exit") != after["exit"]:
            edits.append((None, "exit", before.get("exit"), after["exit"]))
        for step_id in sorted(set(before.get("when", {})) | set(after["when"])):
            old, new = before.get("when", {}).get(step_id), after["when"].get(step_id)
            if old != new and campaign.step(step_id) is not None:
                edits.append((step_id, "when", old, new))
        if "then" in before:
            edits += _branch_edits(campaign, before["then"], after["then"])
        for step_id, rule, old, new in edits:
            rows = [r for r in store.deliveries(campaign=campaign.id, states=("scheduled",))
                    if step_id is None or r.step == step_id]
            people = [p for p in store.get_subscribers(sorted({r.subscriber_id for r in rows})).values()
                      if p.status not in ENDED_STATUSES]
            step = campaign.step(step_id) if step_id else None
            if rule in ("then", "then_when"):      # a branch: who would take it now
                segment = step.then_when if step.then else None
            else:
                segment = (step_rules.goal_of(campaign) if rule == "exit"
                           else step_rules.condition_of(step))
            facts = step_rules.batch_facts(store, [segment], people) if segment is not None else {}
            meet = sum(1 for p in people if segment is None or segment.matches(p, facts))
            effect = (_branch_effect(rule, new, step, len(people), meet)
                      if rule in ("then", "then_when") else _rule_effect(rule, new, len(people), meet))
            found.append({"campaign": campaign.id, "step": step_id, "rule": rule, "from": old,
                          "to": new, "people": len(people), "meet_now": meet, "effect": effect})
    return found


def _branch_edits(campaign, before, after):
    """(step, "then" or "then_when", old, new) for each step whose branch was edited (a step
    no longer in the file is left out: its emails are cancelled, as `campaign_changes` shows)."""
    edits = []
    for step_id in sorted(set(before) | set(after)):
        if campaign.step(step_id) is None:
            continue
        old, new = before.get(step_id, {}), after.get(step_id, {})
        for rule in ("then", "then_when"):
            if old.get(rule) != new.get(rule):
                edits.append((step_id, rule, old.get(rule), new.get(rule)))
    return edits


def _branch_effect(rule, new, step, people, meet):
    """What an edited branch does to the ``people`` with ``step`` still to come, ``meet`` of
    whom would take it now (``branches.py`` follows it when the step is sent to her)."""
    if not step.then:
        return (f"no branch any more: {people} people with the step still to come stay in this "
                "campaign after it")
    where = ("her sequence ends there" if step.then == "end" else
             f"she moves into {step.then}") + " (the rest of this campaign is cancelled)"
    if rule == "then_when" and new is None:
        return (f"no condition any more: all {people} people with the step still to come take "
                f"the branch once it is sent: {where}")
    if rule == "then_when":
        return (f"{meet} of {people} people with the step still to come meet the new condition "
                f"now: if still so when it is sent to her, {where}")
    condition = f" ({meet} of them meet then_when now)" if step.then_when is not None else ""
    return (f"{people} people with the step still to come{condition}: once it is sent to one "
            f"who takes it, {where}")


def _rule_effect(rule, new, people, meet):
    if rule == "exit":
        if new is None:
            return f"no goal any more: {people} people keep every email still to come"
        return (f"{meet} of {people} people with emails still to come meet the new goal now: "
                "their next email of it ends the campaign for them (cancelled)")
    if new is None:
        return f"no condition any more: all {people} people get the step"
    return (f"{people - meet} of {people} people with the step still to come do not meet the new "
            "condition now: if still so when it falls due, it is skipped for them")


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


def simulate(drip, *, signup, timezone, clicks=True, fields=None, later=()):
    """The path of a hypothetical subscriber who signs up (and confirms) at ``signup``, a
    naive local time in ``timezone``, with ``fields``; ``later`` (``simulation.Later``)
    sets a field or adds a tag after that. Each email with its time and what becomes of it
    (``outcome``: sent, skipped or cancelled, with the ``reason``; ``branch``: what a step
    with ``then`` did once sent), by the engine's rules (``simulation.py``).
    ``clicks=False``: she never clicks, so the sunset rule (when on) asks her and then stops
    her mail (``sunset.never_clicks``)."""
    from .simulation import SENT, path

    tz = zone(timezone)
    enrolled_at = localize(signup, tz) if signup.tzinfo is None else signup
    steps, person = path(drip, signup=enrolled_at, timezone=timezone, fields=fields,
                         later=later, clicks=clicks)
    result = []
    for item in steps:
        campaign = drip.campaigns.get(item.campaign)
        step = campaign.step(item.step)
        subject = template_context(drip, person, campaign, step)["subject"]
        state = "scheduled" if item.outcome == SENT else item.outcome
        result.append(PlannedEmail(person.email, campaign.id, step.id, subject, item.due_at,
                                   item.due_at.astimezone(tz), state, item.outcome, item.reason,
                                   item.branch))
    if clicks:
        return result
    going = sunset.never_clicks(drip, [r for r in result if r.outcome == SENT])
    for email in going:
        if email.state == "cancelled":
            email.outcome, email.reason = "cancelled", "sunset: she never answered"
    return sorted(going + [r for r in result if r.outcome != SENT],
                  key=lambda p: (p.due_at, p.campaign))
