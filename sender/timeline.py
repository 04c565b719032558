"""One subscriber's timeline: every email of hers in the ledger, with its time on her clock
and in UTC, its state, and the "why" that is stored with it.

The why is only what drip recorded: the delivery's reason code (``ledger.py``) put in
words, its ``last_error``, the provider events about it, and the facts that hold an email
back right now (she is paused or pending, its campaign is braked, it is due). Nothing is
guessed. The dashboard's subscriber page shows it; a command line can print the same data
(``Timeline.to_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from . import ledger
from .brake import active as active_brakes
from .compose import template_context
from .errors import DripError
from .models import ENDED_STATUSES, iso
from .sequence import subscriber_zone

# The reason codes of ledger.py in words, for a person reading the timeline.
REASON_TEXT = {
    ledger.UNSUBSCRIBED: "cancelled because she unsubscribed",
    ledger.SUPPRESSED: "cancelled because her address bounced for good or she reported spam",
    ledger.CONFIRMED: "no longer needed: she confirmed",
    ledger.SUBSCRIBER_ENDED: "skipped: she had left the list before it was due",
    ledger.SUBSCRIBER_CHANGED: "skipped at sending time: she was no longer active",
    ledger.STEP_GONE: "cancelled: its campaign or step was removed from the files",
    ledger.NOT_HANDED: "an interrupted send that never reached the provider",
    ledger.NEEDS_DECISION: "the provider cannot say whether it went out: decide with `drip resolve`",
    ledger.RETRYING: "waiting to try again after the provider failed for a while",
    ledger.TEMPLATE_ERROR: "waiting: its template does not render (fix the file)",
    ledger.CAMPAIGN_ERROR: "waiting: its campaign file does not load (fix the file)",
    ledger.BAD_DATA: "failed: her stored details cannot be put in an email",
    ledger.NOT_RECEIVED: "an interrupted send the provider says it never got; it goes again",
    ledger.UNCONFIRMED: "handed to the provider; waiting for its answer",
    ledger.MIN_GAP: "moved later: it would have come too soon after her last email (DRIP_MIN_GAP)",
    ledger.REJECTED: "failed: the provider refused it",
    ledger.GAVE_UP: "failed: the provider kept failing until drip gave up (DRIP_MAX_ATTEMPTS)",
    ledger.HELD_CANCELLED: "held at the provider, cancelled there by a pause; goes again on resume",
    ledger.RESOLVED_SENT: "marked as sent by the coach (`drip resolve`)",
    ledger.RESOLVED_RESEND: "to be sent again, as the coach decided (`drip resolve`)",
    ledger.STEP_ADDED_LATE: "skipped: the step was added to the campaign after her turn for it",
    ledger.BROADCAST_CANCELLED: "cancelled: the coach cancelled the broadcast before it reached her",
    ledger.BROADCAST_MISSED: "cancelled: she was paused when the broadcast was due, so it never goes",
    ledger.CONDITION_NOT_MET: "skipped: she did not meet the step's condition when it fell due",
    ledger.GOAL_REACHED: "cancelled: she reached the goal that ends this campaign",
    ledger.SUNSET_WAIT: ("waiting: she was asked \"still want these?\" after emails she did not "
                         "click (DRIP_SUNSET_AFTER); it goes once she answers yes"),
    ledger.SUNSET: ("cancelled: she did not answer \"still want these?\" within "
                    "DRIP_SUNSET_WAIT, so her mail stopped"),
    ledger.BRANCHED: ("she moved into another campaign here (a step's `then`); the rest of this "
                      "campaign was cancelled"),
    ledger.ENDED: ("her sequence ended here (a step's `then = \"end\"`); the rest of this campaign "
                   "was cancelled"),
    ledger.BRANCH_NOT_TAKEN: "sent; she did not match its `then_when`, so she stayed in this campaign",
    ledger.BRANCH_PENDING: ("waiting: an earlier step's `then` may move her out of this campaign; "
                            "it goes once that step is settled"),
}
# Codes whose stored message (the provider's words) is worth showing after the sentence.
WITH_MESSAGE = (ledger.REJECTED, ledger.GAVE_UP, ledger.CONDITION_NOT_MET, ledger.GOAL_REACHED,
                ledger.SUNSET_WAIT, ledger.BRANCHED, ledger.ENDED, ledger.BRANCH_NOT_TAKEN,
                ledger.BRANCH_PENDING)
# The marks a sent row gets once its step's branch is followed (``branches.py``).
BRANCH_MARKS = (ledger.BRANCHED, ledger.ENDED, ledger.BRANCH_NOT_TAKEN)


@dataclass
class Moment:
    """A time in UTC and on the subscriber's clock."""

    utc: datetime
    local: datetime

    def to_dict(self):
        return {"utc": iso(self.utc), "local": self.local.isoformat()}


@dataclass
class Entry:
    delivery_id: int
    campaign: str
    step: str
    subject: str | None       # None when the subject cannot be rendered now
    state: str
    reason: str | None        # the stored reason code
    why: str                  # the stored facts in one sentence
    last_error: str | None
    due: Moment
    sent: Moment | None
    attempts: int
    provider: str | None
    events: list = field(default_factory=list)   # dicts: type, provider, at (Moment)
    delivery: object = field(default=None, repr=False, compare=False)   # the stored row

    def to_dict(self):
        return {"delivery_id": self.delivery_id, "campaign": self.campaign, "step": self.step,
                "subject": self.subject, "state": self.state, "reason": self.reason,
                "why": self.why, "last_error": self.last_error, "due": self.due.to_dict(),
                "sent": self.sent.to_dict() if self.sent else None, "attempts": self.attempts,
                "provider": self.provider,
                "events": [{**e, "at": e["at"].to_dict()} for e in self.events]}


@dataclass
class Timeline:
    zone: str                 # the time zone of "local"
    entries: list             # Entry, by due time
    other_events: list        # events about her that no email carries (e.g. an unsubscribe)

    @property
    def pending(self):
        return [e for e in self.entries if e.state in ("scheduled", "sending")]

    def to_dict(self):
        return {"zone": self.zone, "entries": [e.to_dict() for e in self.entries],
                "other_events": [{**e, "at": e["at"].to_dict()} for e in self.other_events]}


def timeline(drip, subscriber, *, now):
    """The timeline of ``subscriber`` at ``now``."""
    store = drip.store
    tz = subscriber_zone(subscriber, drip.settings)

    def moment(value):
        return Moment(value, value.astimezone(tz)) if value else None

    def event(row):
        return {"type": row["type"], "provider": row["provider"], "at": moment(row["occurred_at"])}

    braked = {b["campaign"] for b in active_brakes(store)}
    entries, carried = [], set()
    for delivery in store.deliveries(subscriber_id=subscriber.id):
        rows = store.events(delivery_id=delivery.id)
        carried.update(r["id"] for r in rows)
        entries.append(Entry(
            delivery_id=delivery.id, campaign=delivery.campaign, step=delivery.step,
            subject=_subject(drip, subscriber, delivery), state=delivery.state,
            reason=delivery.reason,
            why=why(delivery, subscriber, now=now, braked=delivery.campaign in braked,
                    confirmation=_is_confirmation(drip, delivery)),
            last_error=delivery.last_error, due=moment(delivery.due_at),
            sent=moment(delivery.sent_at), attempts=delivery.attempts,
            provider=delivery.provider, events=[event(r) for r in rows], delivery=delivery))
    others = [event(r) for r in store.events(subscriber_id=subscriber.id) if r["id"] not in carried]
    return Timeline(zone=tz.key, entries=entries, other_events=others)


def why(delivery, subscriber, *, now, braked=False, confirmation=False):
    """One sentence from what is stored about ``delivery`` and what holds it back now."""
    coded = REASON_TEXT.get(delivery.reason)
    if coded and delivery.reason in WITH_MESSAGE and delivery.last_error:
        coded = f"{coded}: {delivery.last_error}"
    if delivery.state == "sent" and delivery.reason == ledger.RESOLVED_SENT:
        return coded
    if delivery.state == "sent":
        if delivery.sent_at and delivery.sent_at > now:
            return f"handed to {delivery.provider} early; it holds the email until its time"
        said = f"sent through {delivery.provider}" if delivery.provider else "sent"
        return f"{said}; {coded}" if delivery.reason in BRANCH_MARKS and coded else said
    if delivery.state == "sending":
        return coded or "being handed to the provider now"
    if delivery.state != "scheduled":
        return coded or delivery.last_error or delivery.state
    if subscriber.status in ENDED_STATUSES:
        return f"will be skipped: she is {subscriber.status}"
    if subscriber.status == "paused":
        return "held while she is paused; resuming moves it later by the time paused"
    if subscriber.status == "pending" and not confirmation:
        return "waits until she confirms her subscription"
    if braked:
        return "waits: its campaign is paused by the complaint brake"
    if coded:
        return coded
    if delivery.due_at <= now:
        return "due now: the next `drip send` (or the worker) sends it"
    return "scheduled"


def _is_confirmation(drip, delivery):
    campaign = drip.campaigns.get(delivery.campaign)
    return campaign is not None and campaign.entry_on == "signup"


def _subject(drip, subscriber, delivery):
    campaign = drip.campaigns.get(delivery.campaign)
    step = campaign.step(delivery.step) if campaign else None
    if step is None:
        return None
    try:
        return template_context(drip, subscriber, campaign, step)["subject"]
    except DripError:
        return None
