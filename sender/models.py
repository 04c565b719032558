"""The records drip keeps: subscribers, enrolments and the delivery ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

SUBSCRIBER_STATUSES = ("pending", "active", "paused", "unsubscribed", "bounced", "complained",
                       "sunset")
# Statuses from which a subscriber never gets campaign mail again (``sunset``: she did not
# answer "still want these?", see sunset.py; like "unsubscribed", a new signup brings her back).
ENDED_STATUSES = ("unsubscribed", "bounced", "complained", "sunset")
DELIVERY_STATES = ("scheduled", "sending", "sent", "failed", "skipped", "cancelled")
PENDING_STATES = ("scheduled", "sending")


def utc(value):
    """Parse a stored ISO 8601 UTC string (or pass through a datetime); None stays None."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def iso(value):
    """Format an aware datetime the way the store keeps it: seconds, UTC, a Z suffix."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Consent:
    source: str | None = None
    at: datetime | None = None
    text: str | None = None
    ip: str | None = None
    confirmed_at: datetime | None = None
    withdrawn_at: datetime | None = None


@dataclass
class Subscriber:
    id: int
    uid: str
    email: str
    name: str
    timezone: str | None
    status: str
    tags: list = field(default_factory=list)
    fields: dict = field(default_factory=dict)
    consent: Consent = field(default_factory=Consent)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    paused_at: datetime | None = None
    # What is wrong with the stored row, when part of it cannot be read (tags or fields that
    # are not the JSON they should be, written by hand or by a broken tool): that part reads
    # as empty, and no email is made for this subscriber until the row is fixed.
    problem: str | None = None

    @property
    def first_name(self):
        return self.name.split()[0] if self.name.strip() else ""

    def to_dict(self):
        """The subscriber as JSON-able data; ``problem`` only when part of the row could
        not be read, so an export or a data request shows it instead of hiding it."""
        shown = {
            "email": self.email,
            "name": self.name,
            "timezone": self.timezone,
            "status": self.status,
            "tags": list(self.tags),
            "fields": dict(self.fields),
            "consent": {
                "source": self.consent.source,
                "at": iso(self.consent.at),
                "text": self.consent.text,
                "ip": self.consent.ip,
                "confirmed_at": iso(self.consent.confirmed_at),
                "withdrawn_at": iso(self.consent.withdrawn_at),
            },
            "created_at": iso(self.created_at),
            "paused_at": iso(self.paused_at),
        }
        if self.problem:
            shown["problem"] = self.problem
        return shown


@dataclass
class Enrollment:
    subscriber_id: int
    campaign: str
    enrolled_at: datetime
    shift_seconds: int = 0


@dataclass
class Delivery:
    id: int
    subscriber_id: int
    campaign: str
    step: str
    due_at: datetime
    state: str
    attempts: int = 0
    provider: str | None = None
    provider_message_id: str | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    claimed_at: datetime | None = None
    created_at: datetime | None = None
    lease: str | None = None            # the current claim's token (see store.claim_due)
    handed_at: datetime | None = None   # when the hand-off to the provider began
    handoff_key: str | None = None      # the provider request it went in
    reason: str | None = None           # a fixed code beside last_error (ledger.REASONS)

    def to_dict(self):
        return {
            "id": self.id,
            "campaign": self.campaign,
            "step": self.step,
            "due_at": iso(self.due_at),
            "state": self.state,
            "attempts": self.attempts,
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "last_error": self.last_error,
            "sent_at": iso(self.sent_at),
        }


def _stored(read, raw, kind, label, problems):
    """``read(raw)`` when it gives a ``kind`` (list or dict), else an empty one and a note."""
    try:
        value = read(raw)
    except ValueError:
        value = None
    if isinstance(value, kind):
        return value
    problems.append(f"its stored {label} are not a JSON {'list' if kind is list else 'object'} "
                    f"({str(raw)[:40]!r})")
    return kind()


def subscriber_from_row(row, *, when, tags, fields):
    """A Subscriber from a database row; each engine passes how it reads times, tags and
    fields. A row whose tags or fields cannot be read still loads (``problem`` says why)."""
    problems = []
    tag_list = _stored(tags, row["tags"], list, "tags", problems)
    field_map = _stored(fields, row["fields"], dict, "fields", problems)
    return Subscriber(
        id=row["id"], uid=row["uid"], email=row["email"], name=row["name"],
        timezone=row["timezone"], status=row["status"], tags=tag_list, fields=field_map,
        problem="; ".join(problems) or None,
        consent=Consent(source=row["consent_source"], at=when(row["consent_at"]),
                        text=row["consent_text"], ip=row["consent_ip"],
                        confirmed_at=when(row["confirmed_at"]),
                        withdrawn_at=when(row["withdrawn_at"])),
        created_at=when(row["created_at"]), updated_at=when(row["updated_at"]),
        paused_at=when(row["paused_at"]),
    )


def delivery_from_row(row, *, when):
    """A Delivery from a database row; ``when`` reads the engine's time values."""
    return Delivery(
        id=row["id"], subscriber_id=row["subscriber_id"], campaign=row["campaign"],
        step=row["step"], due_at=when(row["due_at"]), state=row["state"],
        attempts=row["attempts"], provider=row["provider"],
        provider_message_id=row["provider_message_id"], last_error=row["last_error"],
        sent_at=when(row["sent_at"]), claimed_at=when(row["claimed_at"]),
        created_at=when(row["created_at"]), lease=row["lease"],
        handed_at=when(row["handed_at"]), handoff_key=row["handoff_key"], reason=row["reason"],
    )
