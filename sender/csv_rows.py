"""One row of an imported CSV file as a subscriber record.

What each column is comes from ``columns.py``; each value a person gave (address, name,
time zone, tags, fields) is checked by the rules the signup form and `drip subscribers
add` share (``joining.py``), so a row is refused with the message the CLI shows. Only
active subscribers are imported: a row whose status says otherwise is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from . import columns, joining
from .errors import InvalidInput

# Columns of text a subscriber gave (besides fields), checked with joining.check_text.
_SUBSCRIBER_TEXT = {"name": "name", "first_name": "first name", "last_name": "last name",
                    "tags": "tags"}


def record_from(row, header, targets, now, zones):
    """The record for one row ({email, name, timezone, tags, fields, created_at}); raises
    InvalidInput with the reason the row is refused. ``zones`` holds the time zones already
    found good in this file."""
    if len(row) > len(header):
        raise InvalidInput(f"{len(row)} values but the header has {len(header)} columns "
                           "(a value with a comma or semicolon needs quotes)")
    record = {"name": "", "timezone": None, "tags": [], "fields": {}, "created_at": None}
    values = dict.fromkeys(("email", "status", "name", "first_name", "last_name"), "")
    later = []   # signup times for when the signup column is empty
    for position, (target, raw) in enumerate(zip(targets, row, strict=False)):
        target, value = columns.resolve(target, raw.strip(), header[position])
        if target == "skip":
            continue
        if isinstance(target, tuple):
            checked = joining.check_field(target[1], raw)
            if checked:
                record["fields"][target[1]] = checked
            continue
        if target in _SUBSCRIBER_TEXT:
            joining.check_text(_SUBSCRIBER_TEXT[target], raw)
        if target == "timezone" and value:
            if value not in zones:
                joining.check_timezone(value)
                zones.add(value)
            record["timezone"] = value
        elif target == "tags" and value:
            record["tags"] = joining.check_tags(columns.split_tags(value))
        elif target == "signed_up" and value:
            record["created_at"] = signup_time(value, now)
        elif target == "signed_up_fallback":
            later.append(value)
        elif target == "status":
            if values["status"].lower() in columns.ACTIVE_WORDS:   # a status that keeps them out wins
                values["status"] = value
        else:
            values[target] = value
    record["name"] = joining.check_name(
        columns.full_name(values["name"], values["first_name"], values["last_name"]))
    if record["created_at"] is None and any(later):
        record["created_at"] = signup_time(next(v for v in later if v), now)
    if not values["email"]:
        raise InvalidInput("the email column is empty")
    record["email"] = joining.check_address(values["email"])
    status = values["status"].lower()
    if status not in columns.ACTIVE_WORDS:
        if status in ("pending", "unconfirmed"):
            raise InvalidInput(f"status is {status!r}: they never confirmed; not imported")
        raise InvalidInput(f"status is {status!r}: only active subscribers are imported (an "
                           "unsubscribed, bounced or complained person must not be mailed)")
    return record


def signup_time(value, now):
    """A signup date from an export ('2026-01-31', '2026-01-31T09:00Z', Kit's '... UTC') as
    a UTC datetime; never in the future."""
    text = value[:-4] if value.endswith((" UTC", " GMT")) else value   # Kit: "... 08:15:22 UTC"
    try:
        if len(text) == 10:
            moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"signup date {value!r} is not a date (2026-01-31 or "
                           "2026-01-31T09:00Z)") from None
    if moment > now:
        raise InvalidInput(f"signup date {value!r} is in the future")
    return moment.astimezone(UTC).replace(microsecond=0)
