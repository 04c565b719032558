"""Turning enrolments into ledger rows, and keeping them right when things change.

* ``enroll`` writes one ``scheduled`` row per step for a new enrolment; ``enroll_many``
  does the same for many people at once (an import), working out the due times once for
  each time zone and writing the rows in bulk.
* ``reconcile`` compares a subscriber's rows with what the current campaign
  file says and returns the changes (applying them unless asked not to). It is
  how a changed campaign reaches existing subscribers, and how a resumed
  subscriber's sequence moves by the time paused. Its rules never resend a
  sent step and never blast an inserted step to everyone at once:

  - a new step placed before one the subscriber already got is ``skipped``;
  - a new step whose time has already passed is ``skipped``;
  - a step removed from the file is ``cancelled`` if not yet sent;
  - a step whose time moved is rescheduled, never into the past.

Each enrolment stores the fingerprint of the campaign file it was planned against, so
``campaign_changes`` looks only at enrolments planned against another version (after an
edit), a page at a time: one transaction per page, which also records the new fingerprint
of the page's enrolments. Memory stays flat, and a run stopped part-way resumes where it
stopped.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta

from . import ledger
from .joining import parse_date
from .models import ENDED_STATUSES, Enrollment, iso, utc
from .schedule import add_delay, due_times, localize, zone

FINGERPRINT_KEY = "campaign-fingerprint:{}"
RULES_KEY = "campaign-rules:{}"   # the conditions and goal its enrolments were last checked with
PAGE = 2000            # enrolments examined in one transaction by campaign_changes


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
    """[(step, due_at)] for one enrolment, from the campaign as it is now (and her dates,
    for a step with a date anchor)."""
    times = _times(campaign, enrollment, subscriber_zone(subscriber, settings), settings,
                   anchor_dates(campaign, subscriber))
    return list(zip(campaign.steps, times, strict=True))


def anchor_dates(campaign, subscriber):
    """{field: date} of the date fields ``campaign`` counts from that she has (a value that
    is not a date counts as not given: it was stored before the rules of ``joining``)."""
    fields = campaign.anchor_fields
    if not fields:
        return {}
    found = {name: parse_date(subscriber.fields.get(name)) for name in fields}
    return {name: day for name, day in found.items() if day is not None}


def _times(campaign, enrollment, tz, settings, dates=None):
    anchor = enrollment.enrolled_at
    if enrollment.shift_seconds:
        # Time paused moves the sequence on the subscriber's wall clock, so a resumed
        # sequence keeps its local hour even when a daylight-saving change fell in the pause.
        wall = anchor.astimezone(tz).replace(tzinfo=None)
        anchor = localize(wall + timedelta(seconds=enrollment.shift_seconds), tz)
    window = campaign.window_or(settings.send_window)
    return due_times(campaign.timings(), anchor, tz, window, dates)


def enroll(drip, subscriber, campaign, now):
    """Enrol ``subscriber`` in ``campaign`` at ``now``; False when already enrolled."""
    store = drip.store
    with store.transaction():
        enrollment = store.enroll(subscriber.id, campaign.id, now, campaign.fingerprint())
        if enrollment is None:
            return False
        rows = [{"subscriber_id": subscriber.id, "campaign": campaign.id, "step": step.id,
                 "due_at": due}
                for step, due in planned_times(campaign, enrollment, subscriber, drip.settings)]
        ledger.schedule(store, rows, now=now)
    return True


def enroll_many(drip, people, campaign, now):
    """Enrol the active ``people`` (subscribers) in ``campaign`` at ``now``, as ``enroll``
    does one by one, in one transaction; returns how many were not enrolled before. People
    in the same time zone (and, for a campaign with a date anchor, with the same dates) share
    their due times, so those are worked out once per zone."""
    store = drip.store
    with store.transaction():
        fresh = set(store.enroll_many([p.id for p in people], campaign.id, now,
                                      campaign.fingerprint()))
        # People grouped by zone and the anchor fields as stored (each group's dates are
        # read once, as ``anchor_dates`` reads them: two ways of writing one date make two
        # groups with the same times).
        groups = {}
        fields, default = campaign.anchor_fields, drip.settings.timezone_name
        for person in people:
            if person.id in fresh:
                key = (person.timezone or default, tuple(map(person.fields.get, fields)))
                ids = groups.get(key)
                if ids is None:
                    groups[key] = ids = []
                ids.append(person.id)
        enrollment = Enrollment(0, campaign.id, utc(iso(now)))   # as stored: whole seconds
        for (name, values), ids in groups.items():
            dates = {field: day for field, day in zip(fields, map(parse_date, values), strict=True)
                     if day is not None}
            times = _times(campaign, enrollment, zone(name), drip.settings, dates)
            steps = [(step.id, due) for step, due in zip(campaign.steps, times, strict=True)]
            ledger.schedule_for(store, ids, campaign.id, steps, now=now)
    return len(fresh)


def reconcile(drip, subscriber, enrollment, campaign, now, *, apply=True, rows=None):
    """Bring one subscriber's rows for one campaign in line with the file (``rows``: those
    rows, when the caller has read them already)."""
    store = drip.store
    if rows is None:
        rows = store.deliveries(subscriber_id=subscriber.id, campaign=campaign.id)
    existing = {d.step: d for d in rows}
    if any(d.reason in ledger.LEFT_CAMPAIGN for d in existing.values()):
        return []     # she left this campaign (its goal, a branch, its end): nothing is added
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
        _apply(store, changes, {(subscriber.id, step): row for step, row in existing.items()}, now)
    return changes


def _apply(store, changes, existing, now):
    """Write ``changes``; ``existing`` holds the rows they change, by (subscriber id, step)."""
    with store.transaction():
        rows = {action: [{"subscriber_id": c.subscriber_id, "campaign": c.campaign,
                          "step": c.step, "due_at": c.due_at, "message": c.reason}
                         for c in changes if c.action == action] for action in ("add", "skip")}
        if rows["add"]:
            ledger.schedule(store, rows["add"], now=now)
        if rows["skip"]:
            ledger.record_skipped(store, rows["skip"], now=now)
        for change in changes:
            row = existing.get((change.subscriber_id, change.step))
            if change.action == "move":
                ledger.move(store, row, change.due_at)
            elif change.action == "cancel":
                ledger.cancel(store, row, ledger.STEP_GONE, change.reason)


def campaign_changes(drip, now, *, apply, page=PAGE):
    """Reconcile the enrolments not yet planned against their campaign's current file.

    Returns the list of changes. With ``apply`` they are written a page of ``page``
    enrolments at a time, each page in one transaction with its enrolments' new
    fingerprint; without (``drip plan``) the same pages are read and nothing is written.
    """
    store = drip.store
    changes = []
    for campaign in drip.campaigns:
        fingerprint = campaign.fingerprint()
        if store.any_enrollment_to_check(campaign.id, fingerprint):
            after = 0
            while True:
                # A dry run takes no write lock; pages follow each other by subscriber id.
                with store.transaction() if apply else nullcontext():
                    enrollments = store.enrollments_to_check(campaign.id, fingerprint,
                                                             after_id=after, limit=page)
                    changes += _check_page(drip, campaign, enrollments, now, apply)
                    if apply and enrollments:
                        store.set_enrollment_fingerprints(
                            campaign.id, [e.subscriber_id for e in enrollments], fingerprint)
                if len(enrollments) < page:
                    break
                after = enrollments[-1].subscriber_id
        key = FINGERPRINT_KEY.format(campaign.id)
        if apply and store.get_meta(key) != fingerprint:
            store.set_meta(key, fingerprint)
            store.set_meta(RULES_KEY.format(campaign.id),
                           json.dumps(campaign_rules(campaign), sort_keys=True))
    return changes


def _check_page(drip, campaign, enrollments, now, apply):
    """Reconcile one page of enrolments, reading their subscribers and rows in one go and
    writing the changes together (the caller's transaction holds them)."""
    store = drip.store
    ids = [e.subscriber_id for e in enrollments]
    subscribers = store.get_subscribers(ids)
    rows = {}
    for row in store.enrolment_deliveries(campaign.id, ids):
        rows.setdefault(row.subscriber_id, []).append(row)
    changes = []
    for enrollment in enrollments:
        subscriber = subscribers.get(enrollment.subscriber_id)
        if subscriber is None or subscriber.status in ENDED_STATUSES:
            continue
        changes += reconcile(drip, subscriber, enrollment, campaign, now, apply=False,
                             rows=rows.get(subscriber.id, ()))
    if apply and changes:
        _apply(store, changes, {(row.subscriber_id, row.step): row
                                for page in rows.values() for row in page}, now)
    return changes


def campaign_rules(campaign):
    """Its goal, each step's condition and each step's branch as text ({"exit": ..., "when":
    {step: ...}, "then": {step: {"then": ..., "then_when": ...}}}), kept when its enrolments
    are reconciled so that `drip plan` can show what an edit changes."""
    goal = getattr(campaign, "goal", None)
    return {"exit": str(goal) if goal is not None else None,
            "when": {s.id: str(s.when) for s in campaign.steps if s.when is not None},
            "then": {s.id: {"then": s.then, "then_when": None if s.then_when is None
                            else str(s.then_when)} for s in campaign.steps if s.then}}


# --- her dates changed: re-planning a sequence with a date anchor ------------------------------
CATCH_UP_TRIES = 40          # doublings of the shift tried (far beyond any real date)
CATCH_UP_PRECISION = 1       # seconds: how close to its target the step she reached lands


def replan(drip, subscriber, now, *, fields):
    """Her date ``fields`` were set or changed: re-plan at once each of her enrolments in a
    campaign that counts from one of them (``replan_enrolment``). Returns the changes."""
    store = drip.store
    changes = []
    for enrollment in list(store.enrollments(subscriber_id=subscriber.id)):
        campaign = drip.campaigns.get(enrollment.campaign)
        if campaign is None or not set(getattr(campaign, "anchor_fields", ())) & set(fields):
            continue
        changes += replan_enrolment(drip, subscriber, enrollment, campaign, now)
    return changes


def replan_enrolment(drip, subscriber, enrollment, campaign, now):
    """``reconcile`` after ``catch_up_shift``: the rules of an edit to a live campaign (a sent
    step never again, a step added behind her skipped), and the step she has reached never
    falls into the past, so nothing goes in a burst."""
    store = drip.store
    rows = list(store.deliveries(subscriber_id=subscriber.id, campaign=campaign.id))
    shift = catch_up_shift(campaign, enrollment, subscriber, drip.settings, rows, now)
    with store.transaction():
        if shift is not None:
            enrollment.shift_seconds = shift
            store.set_enrollment_shift(subscriber.id, campaign.id, shift)
        return reconcile(drip, subscriber, enrollment, campaign, now, rows=rows)


def catch_up_shift(campaign, enrollment, subscriber, settings, rows, now):
    """The enrolment's new shift (seconds on her wall clock), or None when none is needed.

    The step she has reached (her first scheduled row after the last one settled) may not
    fall before ``now``, nor sooner than its own delay after the email sent just before it.
    When her dates would put it there, the whole sequence moves later until it falls at that
    moment: she gets that step then (not every step whose time passed, at once), and the
    steps after it chain from it as usual. Pure: it reads only what it is given."""
    tz = subscriber_zone(subscriber, settings)
    existing = {d.step: d for d in rows}
    planned = planned_times(campaign, enrollment, subscriber, settings)
    settled = [i for i, (step, _) in enumerate(planned)
               if step.id in existing and existing[step.id].state not in (ledger.SCHEDULED,
                                                                          ledger.CANCELLED)]
    reached = max(settled, default=-1)
    first = next((i for i, (step, _) in enumerate(planned) if i > reached and step.id in existing
                  and existing[step.id].state == ledger.SCHEDULED), None)
    if first is None:
        return None
    step, due = planned[first]
    row = existing[step.id]
    if row.attempts and row.reason != ledger.HELD_CANCELLED:
        return None                       # a retry keeps its own time
    target = now
    dates = anchor_dates(campaign, subscriber)
    dated = any(dates.get(name) for name in step.anchors)
    before = existing.get(planned[first - 1][0].id) if first else None
    if not dated and not step.after_enrolment and before is not None \
            and before.state == ledger.SENT:
        delay = step.fallback_delay if step.anchors and step.fallback_delay else step.delay
        target = max(target, add_delay(before.sent_at or before.due_at, delay, tz))
    if due >= target:
        return None

    def due_with(shift):
        probe = dataclasses.replace(enrollment, shift_seconds=shift)
        return planned_times(campaign, probe, subscriber, settings)[first][1]

    # Her step's time grows with the shift (on the wall clock; by less while a date holds
    # the chain): find the least shift, to the second, that puts it at or after ``target``.
    low = enrollment.shift_seconds
    reach = max(int((target - due).total_seconds()), CATCH_UP_PRECISION)
    high = low + reach
    for _ in range(CATCH_UP_TRIES):
        if due_with(high) >= target:
            break
        reach *= 2
        high = low + reach
    while high - low > CATCH_UP_PRECISION:
        middle = (low + high) // 2
        low, high = (low, middle) if due_with(middle) >= target else (middle, high)
    return high
