"""Turning enrolments into ledger rows, and keeping them right when things change.

* ``enroll`` writes one ``scheduled`` row per step for a new enrolment.
* ``reconcile`` compares a subscriber's rows with what the current campaign
  file says and returns the changes (applying them unless asked not to). It is
  how a changed campaign reaches existing subscribers, and how a resumed
  subscriber's sequence moves by the time paused. Its rules never resend a
  sent step and never blast an inserted step to everyone at once:

  - a new step placed before one the subscriber already got is ``skipped``;
  - a new step whose time has already passed is ``skipped``;
  - a step removed from the file is ``cancelled`` if not yet sent;
  - a step whose time moved is rescheduled, never into the past.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta

from . import ledger
from .models import ENDED_STATUSES
from .schedule import due_times, localize, zone

FINGERPRINT_KEY = "campaign-fingerprint:{}"


@dataclass
class Change:
    subscriber_id: int
    campaign: str
    step: str
    action: str          # "add", "skip", "cancel", "move"
    due_at: object = None
    old_due_at: object = None
    reason: str = ""


def subscriber_zone(subscriber, settings):
    return zone(subscriber.timezone or settings.timezone_name)


def planned_times(campaign, enrollment, subscriber, settings):
    """[(step, due_at)] for one enrolment, from the campaign as it is now."""
    tz = subscriber_zone(subscriber, settings)
    anchor = enrollment.enrolled_at
    if enrollment.shift_seconds:
        # Time paused moves the sequence on the subscriber's wall clock, so a resumed
        # sequence keeps its local hour even when a daylight-saving change fell in the pause.
        wall = anchor.astimezone(tz).replace(tzinfo=None)
        anchor = localize(wall + timedelta(seconds=enrollment.shift_seconds), tz)
    window = campaign.window_or(settings.send_window)
    times = due_times(campaign.timings(), anchor, tz, window)
    return list(zip(campaign.steps, times, strict=True))


def enroll(drip, subscriber, campaign, now):
    """Enrol ``subscriber`` in ``campaign`` at ``now``; False when already enrolled."""
    store = drip.store
    with store.transaction():
        enrollment = store.enroll(subscriber.id, campaign.id, now)
        if enrollment is None:
            return False
        rows = [{"subscriber_id": subscriber.id, "campaign": campaign.id, "step": step.id,
                 "due_at": due}
                for step, due in planned_times(campaign, enrollment, subscriber, drip.settings)]
        ledger.schedule(store, rows, now=now)
    return True


def reconcile(drip, subscriber, enrollment, campaign, now, *, apply=True):
    """Bring one subscriber's rows for one campaign in line with the file."""
    store = drip.store
    existing = {d.step: d for d in store.deliveries(subscriber_id=subscriber.id,
                                                   campaign=campaign.id)}
    planned = planned_times(campaign, enrollment, subscriber, drip.settings)
    positions = {step.id: i for i, (step, _) in enumerate(planned)}
    reached = max((positions[s] for s, d in existing.items()
                   if s in positions and d.state not in (ledger.SCHEDULED, ledger.CANCELLED)),
                  default=-1)
    changes = []
    for position, (step, due) in enumerate(planned):
        row = existing.get(step.id)
        if row is None:
            if position < reached:
                changes.append(Change(subscriber.id, campaign.id, step.id, "skip", due,
                                      reason="step added before a step already sent"))
            elif due <= now:
                changes.append(Change(subscriber.id, campaign.id, step.id, "skip", due,
                                      reason="step added after its time had passed"))
            else:
                changes.append(Change(subscriber.id, campaign.id, step.id, "add", due))
        elif (row.state == ledger.SCHEDULED and row.due_at != due
              and (row.attempts == 0 or row.reason == ledger.HELD_CANCELLED)):
            if due <= now and row.due_at <= now:
                continue            # due already either way (e.g. after a resume): no move
            new_due = max(due, now)
            if new_due != row.due_at:
                changes.append(Change(subscriber.id, campaign.id, step.id, "move", new_due,
                                      old_due_at=row.due_at))
    for step_id, row in existing.items():
        if step_id not in positions and row.state == ledger.SCHEDULED:
            changes.append(Change(subscriber.id, campaign.id, step_id, "cancel",
                                  old_due_at=row.due_at, reason="step removed from the campaign"))
    if apply and changes:
        _apply(store, changes, existing, now)
    return changes


def _apply(store, changes, existing, now):
    with store.transaction():
        rows = {action: [{"subscriber_id": c.subscriber_id, "campaign": c.campaign,
                          "step": c.step, "due_at": c.due_at, "message": c.reason}
                         for c in changes if c.action == action] for action in ("add", "skip")}
        if rows["add"]:
            ledger.schedule(store, rows["add"], now=now)
        if rows["skip"]:
            ledger.record_skipped(store, rows["skip"], now=now)
        for change in changes:
            row = existing.get(change.step)
            if change.action == "move":
                ledger.move(store, row, change.due_at)
            elif change.action == "cancel":
                ledger.cancel(store, row, ledger.STEP_GONE, change.reason)


def campaign_changes(drip, now, *, apply):
    """Reconcile every enrolment of every campaign whose file changed since last time.

    Returns the list of changes; with ``apply`` they are written and the new
    fingerprints recorded.
    """
    store = drip.store
    changes = []
    for campaign in drip.campaigns:
        key = FINGERPRINT_KEY.format(campaign.id)
        fingerprint = campaign.fingerprint()
        if store.get_meta(key) == fingerprint:
            continue
        # Applied, a campaign's changes and its new fingerprint land together; a dry run
        # (drip plan) takes no write lock.
        with store.transaction() if apply else nullcontext():
            enrollments = list(store.enrollments(campaign=campaign.id))
            subscribers = store.get_subscribers([e.subscriber_id for e in enrollments])
            for enrollment in enrollments:
                subscriber = subscribers[enrollment.subscriber_id]
                if subscriber.status in ENDED_STATUSES:
                    continue
                changes += reconcile(drip, subscriber, enrollment, campaign, now, apply=apply)
            if apply:
                store.set_meta(key, fingerprint)
    return changes
