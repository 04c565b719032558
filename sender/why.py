"""``drip why``: for each email of one person, what happened or will happen, and why.

Built on her timeline (``timeline.py``: every stored row with its time on her clock and in
UTC, its state, its reason code in words from ``REASON_TEXT``, the provider's answer and the
events about it), plus what the rows alone do not say: how she entered each campaign (her
enrolment, the campaign's entry rule), the step's condition, the send window, the minimum
gap, her status and since when, and the steps still to come.

It reads; it never writes. What is stored is given as it is. What comes from the campaign
files (an entry rule, a condition, a window, the time of a step that has no row yet) is
read from the files as they are now, and labelled so: a file edited since may differ from
what applied then. Steps with no row yet are what ``drip plan`` would add or record for
her (``sequence.reconcile`` without applying), never a guess of ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ledger, step_rules
from .broadcasts import name_of
from .errors import DripError, NotFound
from .identity import TRANSACTIONAL, stream_of
from .models import ENDED_STATUSES, iso
from .schedule import Delay
from .sequence import reconcile, subscriber_zone
from .timeline import REASON_TEXT, Moment, timeline

PLANNED = "planned"        # the state of a step that has no row yet
FROM_FILE = "from the campaign file as it is now"


@dataclass
class Email:
    """One email: a stored row, or a step still to come that has no row yet (``planned``)."""

    campaign: str
    step: str
    delivery_id: int | None
    planned: bool
    subject: str | None
    state: str
    reason: str | None          # the stored reason code
    reason_text: str | None     # the code in words (timeline.REASON_TEXT)
    why: str                    # one sentence: what happened or will happen
    message: str | None         # the stored message beside the code (last_error)
    due: Moment
    written: Moment | None      # when its row was written
    condition: str | None       # the step's ``when``, from the file as it is now
    window: str | None          # the send window, from the file as it is now
    min_gap: dict               # applies, deferred, previous (her email before it)
    provider: dict | None       # the provider's answer: name, message id, attempts, times
    events: list = field(default_factory=list)     # dicts: type, provider, at (Moment)
    file_change: str | None = None   # what the file as it is now would change about the row
    file_due: Moment | None = None   # ... and the time it would move it to
    branch: dict | None = None       # the step's then / then_when, from the file as it is now

    def to_dict(self):
        provider = None if self.provider is None else {
            k: (v.to_dict() if isinstance(v, Moment) else v) for k, v in self.provider.items()}
        previous = self.min_gap.get("previous")
        return {"campaign": self.campaign, "step": self.step, "delivery_id": self.delivery_id,
                "planned": self.planned, "subject": self.subject, "state": self.state,
                "reason": self.reason, "reason_text": self.reason_text, "why": self.why,
                "message": self.message, "due": self.due.to_dict(), "written": _dict(self.written),
                "condition": self.condition, "window": self.window,
                "min_gap": {**self.min_gap, "previous": previous and {
                    **previous, "sent": _dict(previous["sent"])}},
                "provider": provider,
                "events": [{**e, "at": e["at"].to_dict()} for e in self.events],
                "file_change": self.file_change, "file_due": _dict(self.file_due),
                "branch": self.branch}


@dataclass
class CampaignPart:
    """A campaign (or broadcast) she is in: how she entered, its window and its goal."""

    id: str
    name: str | None            # None when its file is gone or does not load
    entry: dict                 # rule (from the file now), enrolled (Moment), shift, note
    window: str | None
    goal: str | None
    problem: str | None = None

    def to_dict(self):
        return {"id": self.id, "name": self.name,
                "entry": {k: (v.to_dict() if isinstance(v, Moment) else v)
                          for k, v in self.entry.items()},
                "window": self.window, "goal": self.goal, "problem": self.problem}


@dataclass
class Why:
    now: object
    target: str | None          # "CAMPAIGN/STEP" when one email was asked for
    subscriber: dict
    min_gap: str                # DRIP_MIN_GAP
    campaigns: list
    emails: list
    other_events: list          # events about her that no email carries

    def to_dict(self):
        person = {k: (v.to_dict() if isinstance(v, Moment) else v)
                  for k, v in self.subscriber.items()}
        person["status_events"] = [{**e, "at": e["at"].to_dict()}
                                   for e in self.subscriber["status_events"]]
        return {"now": iso(self.now), "target": self.target, "subscriber": person,
                "min_gap": self.min_gap, "campaigns": [c.to_dict() for c in self.campaigns],
                "emails": [e.to_dict() for e in self.emails],
                "other_events": [{**e, "at": e["at"].to_dict()} for e in self.other_events]}


def explain(drip, subscriber, *, now, campaign=None, step=None):
    """Why each email of ``subscriber`` went, waits or will not go, at ``now``; only the
    email ``campaign``/``step`` when both are given (NotFound when she has none such)."""
    tz = subscriber_zone(subscriber, drip.settings)

    def moment(value):
        return Moment(value, value.astimezone(tz)) if value else None

    line = timeline(drip, subscriber, now=now)
    rows = [e.delivery for e in line.entries]
    enrolments = {e.campaign: e for e in drip.store.enrollments(subscriber_id=subscriber.id)}
    ids = list(dict.fromkeys([*enrolments, *(r.campaign for r in rows)]))
    parts, planned, changes = {}, [], {}
    for cid in ids:
        found = drip.campaigns.get(cid)
        parts[cid] = _campaign_part(drip, subscriber, cid, found, enrolments.get(cid), moment)
        if (found is None or cid not in enrolments or subscriber.status in ENDED_STATUSES
                or not _edited_since(drip.store, subscriber, found)):
            continue
        try:
            for change in reconcile(drip, subscriber, enrolments[cid], found, now, apply=False):
                changes[(change.campaign, change.step)] = change
        except DripError as exc:
            parts[cid].problem = f"the steps to come cannot be planned {FROM_FILE}: {exc}"
    emails = [_stored_email(drip, subscriber, entry, rows, changes, moment) for entry in line.entries]
    for change in changes.values():
        if change.action in ("add", "skip"):
            planned.append(_planned_email(drip, subscriber, change, moment))
    emails += planned
    emails.sort(key=lambda e: (e.due.utc, ids.index(e.campaign) if e.campaign in ids else 0))
    if campaign is not None:
        emails = [e for e in emails if (e.campaign, e.step) == (campaign, step)]
        if not emails:
            mine = ", ".join(dict.fromkeys(one_line(f"{e.campaign}/{e.step}") for e in
                                           [*line.entries, *planned])) or "none"
            raise NotFound(f"{subscriber.email!r} has no email {one_line(f'{campaign}/{step}')}; "
                           f"hers: {mine} (leave CAMPAIGN/STEP out to see them all)")
        ids = [campaign]
    return Why(now=now, target=f"{campaign}/{step}" if campaign is not None else None,
               subscriber=_person(drip, subscriber, tz, moment),
               min_gap=str(Delay(seconds=int(drip.settings.min_gap.total_seconds()))),
               campaigns=[parts[cid] for cid in ids if cid in parts], emails=emails,
               other_events=[] if campaign is not None else line.other_events)


def one_line(value):
    """Stored text as it is when it is printable, else quoted (``repr``): one line, with no
    control character to drive a terminal."""
    text = str(value)
    return text if text.isprintable() else repr(text)


def _edited_since(store, subscriber, campaign):
    """Whether her enrolment was planned against another version of the campaign file: then
    the next `drip send` brings her rows in line with it (``sequence.campaign_changes``)."""
    first = store.enrollments_to_check(campaign.id, campaign.fingerprint(),
                                       after_id=subscriber.id - 1, limit=1)
    return bool(first) and first[0].subscriber_id == subscriber.id


def _dict(moment):
    return moment.to_dict() if moment else None


def _person(drip, subscriber, tz, moment):
    consent = subscriber.consent
    events = []
    if subscriber.status in ENDED_STATUSES:
        events = [{"type": r["type"], "provider": r["provider"], "at": moment(r["occurred_at"])}
                  for r in drip.store.events(subscriber_id=subscriber.id, type=subscriber.status)]
    return {"email": subscriber.email, "name": subscriber.name, "status": subscriber.status,
            "zone": tz.key, "status_note": _status_note(subscriber, events),
            "signed_up": moment(subscriber.created_at), "consent": consent.source,
            "confirmed": moment(consent.confirmed_at), "paused": moment(subscriber.paused_at),
            "withdrawn": moment(consent.withdrawn_at), "problem": subscriber.problem,
            "status_events": events}


def _status_note(subscriber, events):
    status = subscriber.status
    if status == "paused":
        return ("paused: her emails are held; resuming moves each one later by the time "
                "paused")
    if status == "pending":
        return "pending: she has not confirmed; only the confirmation email goes to her"
    if status == "unsubscribed":
        return "unsubscribed: every email still to come was cancelled then, and none is planned"
    if status == "sunset":
        return ("sunset: she did not answer the \"still want these?\" email within "
                "DRIP_SUNSET_WAIT, so every email still to come was cancelled; a signup with "
                "fresh consent brings her back")
    if status in ("bounced", "complained"):
        said = ("her address bounced for good" if status == "bounced"
                else "she reported an email as spam")
        if not events:
            said += " (no event of it is stored: it was set another way)"
        return f"{status}: {said}; her address is suppressed and nothing more is sent"
    return "active: her emails go at their times"


def _campaign_part(drip, subscriber, cid, found, enrolment, moment):
    entry = {"rule": _entry_rule(drip, cid, found), "enrolled": None, "shift": None, "note": None}
    if enrolment is not None:
        entry["enrolled"] = moment(enrolment.enrolled_at)
        if enrolment.shift_seconds:
            entry["shift"] = (f"moved later by {Delay(seconds=enrolment.shift_seconds)} "
                              "(time paused or away), on her clock")
        entry["note"] = _entry_note(subscriber, enrolment)
    if found is None:
        broken = drip.campaigns.broken.get(cid)
        return CampaignPart(cid, None, entry, None, None,
                            problem=broken[0] if broken else
                            "no campaign file has this id now: its rule and steps cannot be read")
    goal = step_rules.goal_of(found)
    return CampaignPart(cid, found.name, entry, str(found.window_or(drip.settings.send_window)),
                        str(goal) if goal is not None else None)


def _entry_rule(drip, cid, found):
    broadcast = name_of(cid)
    if broadcast is not None:
        record = drip.store.get_broadcast(broadcast)
        if record is None:
            return "a broadcast with no stored schedule"
        return (f"broadcast {broadcast} to {record['segment'] or 'every active subscriber'}, "
                f"when {record['when_text']}, scheduled {iso(record['scheduled_at'])}, "
                f"its emails written {iso(record['started_at']) or 'not yet'} ({record['state']})")
    if found is None:
        return "unknown: its campaign file is gone or does not load"
    rule = {"signup": "the confirmation email: written when she signed up, sent while she is "
                      "pending",
            "confirm": "enters when she confirms",
            "tag": "enters when she has one of its tags"}.get(found.entry_on, found.entry_on)
    if found.entry_tags:
        rule += f" (tags: {', '.join(found.entry_tags)})"
    if found.entry_segment is not None:
        rule += f"; only who matches {found.entry_segment}"
    return rule


def _entry_note(subscriber, enrolment):
    confirmed = subscriber.consent.confirmed_at
    if confirmed is not None and enrolment.enrolled_at == confirmed:
        return "enrolled the moment she confirmed"
    if confirmed is not None and enrolment.enrolled_at > confirmed:
        return ("enrolled after she confirmed: by a tag, `drip enroll`, an import or her return "
                "(drip does not store which)")
    return None


def _stored_email(drip, subscriber, entry, rows, changes, moment):
    row = entry.delivery
    found = drip.campaigns.get(row.campaign)
    step = found.step(row.step) if found is not None else None
    change = changes.get((row.campaign, row.step))
    file_change = file_due = None
    if change is not None and change.action == "move":
        file_change = ("the file as it is now moves it to another time; the next `drip send` "
                       "(or `drip plan`) applies it")
        file_due = moment(change.due_at)
    elif change is not None and change.action == "cancel":
        file_change = ("its step is no longer in the campaign file: the next `drip send` "
                       "cancels it")
    provider = None
    if row.provider or row.claimed_at or row.handed_at:
        provider = {"name": row.provider, "message_id": row.provider_message_id,
                    "attempts": row.attempts, "claimed": moment(row.claimed_at),
                    "handed": moment(row.handed_at), "sent": moment(row.sent_at)}
    return Email(
        campaign=row.campaign, step=row.step, delivery_id=row.id, planned=False,
        subject=entry.subject, state=row.state, reason=row.reason,
        reason_text=_reason_text(row.reason), why=entry.why, message=row.last_error,
        due=entry.due, written=moment(row.created_at), condition=_condition(step),
        window=_window(drip, found), min_gap=_gap(found, step, row, rows, moment),
        provider=provider, events=entry.events, file_change=file_change, file_due=file_due,
        branch=_branch(step))


def _planned_email(drip, subscriber, change, moment):
    found = drip.campaigns.get(change.campaign)
    step = found.step(change.step)
    if change.action == "skip":
        why = f"will be recorded as skipped ({change.reason}), {FROM_FILE}"
        reason = ledger.STEP_ADDED_LATE
    else:
        why = f"planned {FROM_FILE}; no email is stored for it yet"
        reason = None
    return Email(
        campaign=change.campaign, step=change.step, delivery_id=None, planned=True,
        subject=None, state=PLANNED, reason=reason, reason_text=_reason_text(reason), why=why,
        message=None, due=moment(change.due_at), written=None, condition=_condition(step),
        window=_window(drip, found), min_gap=_gap(found, step, None, (), moment), provider=None,
        branch=_branch(step))


def _reason_text(code):
    if code is None:
        return None
    return REASON_TEXT.get(code, f"code {code} (no words for it in this drip)")


def _condition(step):
    when = step_rules.condition_of(step) if step is not None else None
    return str(when) if when is not None else None


def _branch(step):
    """Where the step sends her once it is sent (branches.py); what was taken is the stored
    reason of its row (BRANCHED, ENDED, BRANCH_NOT_TAKEN) with its message."""
    then = getattr(step, "then", None)
    if not then:
        return None
    return {"then": then, "then_when": str(step.then_when) if step.then_when is not None else None}


def _window(drip, found):
    return str(found.window_or(drip.settings.send_window)) if found is not None else None


def _gap(found, step, row, rows, moment):
    """Whether DRIP_MIN_GAP spaces this email (marketing mail; not the confirmation or the
    welcome email), whether its row was moved later for it, and her email sent before it."""
    applies = None if found is None or step is None else stream_of(found, step) != TRANSACTIONAL
    deferred = row is not None and row.reason == ledger.MIN_GAP
    previous = None
    if deferred:
        sent = [r for r in rows if r.sent_at and r.id != row.id and r.sent_at <= row.due_at]
        if sent:
            last = max(sent, key=lambda r: (r.sent_at, r.id))
            previous = {"campaign": last.campaign, "step": last.step, "sent": moment(last.sent_at)}
    return {"applies": applies, "deferred": deferred, "previous": previous}
