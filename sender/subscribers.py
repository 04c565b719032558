"""Subscriber life cycle: add, sign up, confirm, pause, resume, unsubscribe, and the sunset
rule's stop (``sunset``: no answer to "still want these?", see ``sunset.py``). The details a
person gives are checked by the rules every way in shares (``joining.py``).

Every function takes ``now``; none reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from . import joining, ledger, step_rules
from .erasure import check_not_erased
from .errors import DripError, NotFound
from .joining import check_details
from .message import normalize_email
from .models import ENDED_STATUSES, Consent
from .schedule import fit_window, zone
from .send_ahead import cancel_held
from .sequence import enroll, reconcile, replan, replan_enrolment

# Who comes back by signing up again herself, with fresh consent (never a bounced or
# complained address).
RETURNING = ("unsubscribed", "sunset")
# A repeated signup sends at most one confirmation email per this long.
CONFIRM_RESEND_AFTER = timedelta(hours=1)
NO_CONFIRMATION = ("no confirmation campaign: add a campaign file with [entry] on = \"signup\", "
                   "or add the subscriber with --confirmed")


@dataclass
class AddResult:
    subscriber: object
    created: bool
    enrolled: list = field(default_factory=list)
    confirmation_queued: bool = False
    note: str = ""


def get(drip, email):
    """The subscriber with this address; NotFound says how to list them."""
    subscriber = drip.store.get_subscriber(email=normalize_email(email))
    if subscriber is None:
        raise NotFound(f"no subscriber {email!r} (see `drip subscribers list`)")
    return subscriber


def add_subscriber(drip, email, *, now, name=None, timezone=None, tags=(), fields=None,
                   consent_source=None, consent_text=None, ip=None, confirmed=False,
                   resubscribe=False):
    """Add a subscriber, or update the one with this address. Without ``confirmed`` a new
    subscriber is pending and a confirmation email is queued; with it they are
    active and enrolled at once. An address erased on request is refused unless
    ``resubscribe`` (the person signing up again themselves, e.g. on the web form)."""
    details = check_details(email=email, name=name, timezone=timezone, tags=tags,
                            fields=fields, now=now)
    email, name, timezone = details.email, details.name, details.timezone
    tags, fields = details.tags, details.fields
    store = drip.store
    campaigns = drip.campaigns
    if not confirmed and campaigns.confirmation is None:
        raise DripError(NO_CONFIRMATION)
    with store.transaction():
        existing = store.get_subscriber(email=email)
        if existing is None and not resubscribe:
            check_not_erased(drip, email)
        if existing is None:
            subscriber = store.add_subscriber(
                email, name=name or "", timezone=timezone, tags=tags, fields=fields,
                status="pending",
                consent=Consent(source=consent_source, at=now, text=consent_text, ip=ip),
                now=now)
            result = AddResult(subscriber, created=True)
            tags_added = False
        else:
            changes = {}
            if name is not None and name != existing.name:
                changes["name"] = name
            if timezone and timezone != existing.timezone:
                changes["timezone"] = timezone
            merged_tags = existing.tags + [t for t in tags if t not in existing.tags]
            tags_added = merged_tags != existing.tags
            if tags_added:
                changes["tags"] = merged_tags
            if fields and {**existing.fields, **fields} != existing.fields:
                changes["fields"] = {**existing.fields, **fields}
            subscriber = (store.update_subscriber(existing.id, now=now, **changes)
                          if changes else existing)
            result = AddResult(subscriber, created=False)
            changed = bool(changes)
            if subscriber.status in RETURNING and resubscribe and not confirmed:
                # They signed up again themselves: fresh consent, and the double opt-in
                # decides. Bounced and complained addresses never come back this way.
                subscriber = store.update_subscriber(
                    subscriber.id, now=now, status="pending", consent_source=consent_source,
                    consent_at=now, consent_text=consent_text, consent_ip=ip, confirmed_at=None)
                result.subscriber = subscriber
            elif subscriber.status in ENDED_STATUSES:
                result.note = (f"{email} is {subscriber.status}; details updated, "
                               "but they will get no email unless they sign up again")
                return result
        if subscriber.status == "pending":
            if confirmed:
                result.enrolled = confirm(drip, subscriber, now=now, source=consent_source)
                result.subscriber = store.get_subscriber(id=subscriber.id)
            else:
                result.confirmation_queued = queue_confirmation(drip, subscriber, now=now)
        elif subscriber.status == "active" and tags_added:
            result.enrolled = _enroll_by_tag(drip, subscriber, now)
        if not result.created and changed:
            # A tag or field she now has may be a campaign's goal: that sequence ends now.
            reach_goals(drip, store.get_subscriber(id=subscriber.id))
            # A date a sequence counts from (after = "field:birth_date") moves it at once.
            dated = [k for k in changes.get("fields", {})
                     if changes["fields"].get(k) != existing.fields.get(k)]
            if dated and subscriber.status in ("active", "paused"):
                replan(drip, store.get_subscriber(id=subscriber.id), now, fields=dated)
    return result


def queue_confirmation(drip, subscriber, *, now):
    """Schedule the double opt-in email; at most one per CONFIRM_RESEND_AFTER."""
    campaign = drip.campaigns.confirmation
    step = campaign.steps[0]
    store = drip.store
    tz = zone(subscriber.timezone or drip.settings.timezone_name)
    due = fit_window(now, tz, campaign.window_or(drip.settings.send_window))
    with store.transaction():
        rows = list(store.deliveries(subscriber_id=subscriber.id, campaign=campaign.id))
        if not rows:
            ledger.schedule(store, [{"subscriber_id": subscriber.id, "campaign": campaign.id,
                                     "step": step.id, "due_at": due}], now=now)
            return True
        row = rows[0]
        if row.state in (ledger.SCHEDULED, ledger.SENDING):
            return False
        last = row.sent_at or row.due_at
        if now - last < CONFIRM_RESEND_AFTER:
            return False
        return ledger.schedule_again(store, row, due=due)


def confirm(drip, subscriber, *, now, source=None):
    """Make a pending subscriber active and enrol them; returns the campaign ids entered."""
    store = drip.store
    with store.transaction():
        if subscriber.status != "pending":
            return []
        changes = {"status": "active", "confirmed_at": now, "withdrawn_at": None}
        if source and not subscriber.consent.source:
            changes["consent_source"] = source
        returning_since = subscriber.consent.withdrawn_at
        subscriber = store.update_subscriber(subscriber.id, now=now, **changes)
        if returning_since:
            _pick_up_where_they_left(drip, subscriber, returning_since, now)
        confirmation = drip.campaigns.confirmation
        if confirmation:
            ledger.cancel_pending_for(store, subscriber.id, ledger.CONFIRMED,
                                      "subscriber confirmed", campaign=confirmation.id)
        entered = [c.id for c in drip.campaigns.entered_on("confirm", subscriber)
                   if enroll(drip, subscriber, c, now)]
        entered += _enroll_by_tag(drip, subscriber, now)
        reach_goals(drip, subscriber)
    return entered


def reach_goals(drip, subscriber):
    """End at once every campaign she is in whose goal (``[campaign] exit``) she has reached:
    her scheduled emails of it are cancelled (GOAL_REACHED, naming the goal). Called where a
    tag or field is added and where a click is recorded (``events.py``); the send path checks
    again before each hand-off, so a goal reached any other way is honoured there. Returns
    {campaign id: how many emails were cancelled}."""
    store = drip.store
    with_goals = [c for c in drip.campaigns if step_rules.goal_of(c) is not None]
    if not with_goals or subscriber is None:
        return {}
    enrolled = {e.campaign for e in store.enrollments(subscriber_id=subscriber.id)}
    mine = [c for c in with_goals if c.id in enrolled]
    if not mine:
        return {}
    facts = step_rules.batch_facts(store, [step_rules.goal_of(c) for c in mine], [subscriber])
    return {c.id: ledger.cancel_pending_for(store, subscriber.id, ledger.GOAL_REACHED,
                                            step_rules.goal_message(c), campaign=c.id)
            for c in step_rules.goals_reached(mine, subscriber, facts)}


def _pick_up_where_they_left(drip, subscriber, left_at, now):
    """A returning subscriber's sequences continue from the step they had reached, moved
    later by the time they were away. Sent steps are never sent again."""
    store = drip.store
    away = int(max(now - left_at, timedelta(0)).total_seconds())
    for enrollment in list(store.enrollments(subscriber_id=subscriber.id)):
        campaign = drip.campaigns.get(enrollment.campaign)
        if campaign is None:
            continue
        ledger.restore_after_resubscribe(store, subscriber.id, campaign=campaign.id)
        enrollment.shift_seconds += away
        store.set_enrollment_shift(subscriber.id, campaign.id, enrollment.shift_seconds)
        reconcile(drip, subscriber, enrollment, campaign, now)


def _enroll_by_tag(drip, subscriber, now):
    return [c.id for c in drip.campaigns.entered_on("tag", subscriber)
            if enroll(drip, subscriber, c, now)]


def pause(drip, subscriber, *, now):
    """Hold an active subscriber's sequence; returns False when not active."""
    with drip.store.transaction():
        if subscriber.status != "active":
            return False
        drip.store.update_subscriber(subscriber.id, now=now, status="paused", paused_at=now)
    cancel_held(drip, subscriber, now, restore=True)
    return True


def resume(drip, subscriber, *, now):
    """Resume a paused subscriber: the rest of each sequence moves by the time paused."""
    store = drip.store
    with store.transaction():
        if subscriber.status != "paused":
            return False
        paused_for = max(now - (subscriber.paused_at or now), timedelta(0))
        subscriber = store.update_subscriber(subscriber.id, now=now, status="active",
                                             paused_at=None)
        for enrollment in list(store.enrollments(subscriber_id=subscriber.id)):
            campaign = drip.campaigns.get(enrollment.campaign)
            if campaign is None:
                continue
            enrollment.shift_seconds += int(paused_for.total_seconds())
            store.set_enrollment_shift(subscriber.id, campaign.id, enrollment.shift_seconds)
            # A date-anchored step may have come due while she was paused: she resumes at it.
            (replan_enrolment if getattr(campaign, "anchor_fields", ()) else reconcile)(
                drip, subscriber, enrollment, campaign, now)
    return True


def unsubscribe(drip, subscriber, *, now, reason="unsubscribed"):
    """End all mail to a subscriber at once; returns how many pending emails were cancelled."""
    store = drip.store
    with store.transaction():
        current = store.get_subscriber(id=subscriber.id)
        if current.status in ENDED_STATUSES:
            return 0
        store.update_subscriber(subscriber.id, now=now, status="unsubscribed",
                                withdrawn_at=now, paused_at=None)
        cancelled = ledger.cancel_pending_for(store, subscriber.id, ledger.UNSUBSCRIBED, reason)
    return cancelled + cancel_held(drip, subscriber, now, code=ledger.UNSUBSCRIBED)


def sunset(drip, subscriber, *, now, reason):
    """The sunset rule stops an active subscriber's mail: she did not answer "still want
    these?" in time (``sunset.py``). Her status becomes ``sunset`` and every email still to
    come is cancelled (SUNSET, ``reason`` the message); her consent counts as lapsed
    (``withdrawn_at``), so only a signup with fresh consent brings her back, where she
    stopped. Returns how many emails were cancelled (0 when she was no longer active)."""
    store = drip.store
    with store.transaction():
        current = store.get_subscriber(id=subscriber.id)
        if current is None or current.status != "active":
            return 0
        store.update_subscriber(subscriber.id, now=now, status="sunset", withdrawn_at=now,
                                paused_at=None)
        cancelled = ledger.cancel_pending_for(store, subscriber.id, ledger.SUNSET, reason)
    return cancelled + cancel_held(drip, subscriber, now, code=ledger.SUNSET)


def suppress(drip, subscriber, status, *, now, reason):
    """A bounce or complaint: stop all mail to this address for good."""
    if status not in ("bounced", "complained"):
        raise ValueError(status)
    store = drip.store
    with store.transaction():
        store.update_subscriber(subscriber.id, now=now, status=status, paused_at=None)
        cancelled = ledger.cancel_pending_for(store, subscriber.id, ledger.SUPPRESSED, reason)
    return cancelled + cancel_held(drip, subscriber, now, code=ledger.SUPPRESSED)


def find(drip, email):
    """The subscriber with this address, or None."""
    return drip.store.get_subscriber(email=normalize_email(email))


def changes(before, after):
    """What differs between two states of one subscriber: {"status": {"from": "active",
    "to": "paused"}, ...}, consent fields as "consent.confirmed_at". ``before`` is None for
    someone new (then only what was set is listed)."""
    old = _flat(before.to_dict()) if before is not None else {}
    new = _flat(after.to_dict())
    return {key: {"from": old.get(key), "to": value} for key, value in new.items()
            if old.get(key) != value and not (before is None and value in (None, "", [], {}))}


def _flat(data):
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and key == "consent":
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


# --- a signup through the form (its details checked by joining.read_signup) ---------------
def sign_up(drip, signup, *, ip, now):
    """Store one signup from the form; returns the id of the subscriber whose confirmation
    is now due, or None. The address is looked up once.

    A new address (or one erased on request: the person signs up herself) becomes pending
    with its consent record. Someone who unsubscribed gets a fresh consent record and the
    confirmation, and on confirming continues where she stopped. A pending address keeps
    her name, fields and consent record, and may get the confirmation again (at most once
    an hour). Active and paused subscribers, and bounced or complained addresses, stay
    exactly as they are. A signup never changes an existing subscriber's name or fields:
    the person signing up may be a stranger. Every case runs in one write transaction and
    sends nothing, so the time taken does not tell the cases apart. Someone whose mail the
    sunset rule stopped comes back as someone who unsubscribed does."""
    if drip.campaigns.confirmation is None:
        raise DripError(NO_CONFIRMATION)
    store = drip.store
    consent = Consent(source=f"form:{signup.source}", at=now,
                      text=joining.consent_record(drip.settings), ip=ip)
    with store.transaction():
        person = store.get_subscriber(email=signup.email)
        if person is None:
            person = store.add_subscriber(
                signup.email, name=signup.name or "", timezone=signup.timezone, tags=[],
                fields=dict(signup.fields), status="pending", consent=consent, now=now)
        elif person.status in RETURNING:
            # Bounced and complained addresses never come back this way.
            person = store.update_subscriber(
                person.id, now=now, status="pending", consent_source=consent.source,
                consent_at=now, consent_text=consent.text, consent_ip=ip, confirmed_at=None)
        elif person.status != "pending":
            return None
        queued = queue_confirmation(drip, person, now=now)
    return person.id if queued else None
