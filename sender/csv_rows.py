"""One row of an imported CSV file as a subscriber record.

What each column is comes from ``columns.py``; each value a person gave (address, name,
time zone, tags, fields) is checked by the rules the signup form and `drip subscribers
add` share (``joining.py``), so a row is refused with the message the CLI shows. Only
active subscribers are imported: a row whose status says otherwise is refused.

``RowReader`` reads the rows of one file. A row whose every value is printable text
without '=?' passes the text rule as a whole, so it is read without looking at each value
again (``_plain``); any row that is refused there, and any other row, is read the long way
(``_full``), which decides and words every refusal.
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
    reader = RowReader(header, targets, now)
    reader.zones = zones
    return reader(row)


class RowReader:
    """``record_from`` for every row of one file: what each column is is worked out once,
    columns skipped by their header are not looked at, and a time zone or signup date met
    before is not parsed again."""

    def __init__(self, header, targets, now):
        self.header, self.now, self.width = header, now, len(header)
        self.columns = [(position, target, header[position])
                        for position, target in enumerate(targets) if target != "skip"]
        self.zones = set()
        self._signups = {}      # a signup date as written -> its time (a bounded cache)
        # Where each thing is, for the quick reading of a plain row (see ``_plain``); a
        # column read by what it holds (``columns.resolve``) sends every row the long way.
        where = {t: p for p, t, _ in self.columns if isinstance(t, str)}
        self.quick = not any(t in columns.BY_VALUE for _, t, _ in self.columns)
        self.at = {t: where.get(t) for t in ("email", "name", "first_name", "last_name",
                                             "timezone", "tags", "signed_up")}
        self.later = [p for p, t, _ in self.columns if t == "signed_up_fallback"]
        self.status = [p for p, t, _ in self.columns if t == "status"]
        self.fields = [(p, t[1]) for p, t, _ in self.columns if isinstance(t, tuple)]
        self.staged = any(key in joining.STAGE_FIELDS for _, key in self.fields)
        # name, first and last name when a first or last name column is there
        self.parts = ([self.at["name"], self.at["first_name"], self.at["last_name"]]
                      if self.at["first_name"] is not None or self.at["last_name"] is not None
                      else None)
        self._tag_lists = {}    # tags as written -> checked (a bounded cache)
        self._stages = {}       # stage values as written -> checked (a bounded cache)
        # For ``_plain``: where each thing is, a column the file lacks at ``self.width``
        # (a blank past the row's end).
        self._pad = [""] * (self.width + 1)
        self.email_at, self.name_at, self.timezone_at, self.tags_at, self.signed_up_at = (
            self.width if self.at[t] is None else self.at[t]
            for t in ("email", "name", "timezone", "tags", "signed_up"))
        if self.parts:
            self.parts = [self.width if p is None else p for p in self.parts]

    def __call__(self, row):
        if len(row) > self.width:
            raise InvalidInput(f"{len(row)} values but the header has {self.width} columns "
                               "(a value with a comma or semicolon needs quotes)")
        if self.quick:
            text = " ".join(row)
            # One look at the whole row instead of one per value (joining.check_text):
            # printable text without '=?' passes that rule wherever it is.
            if text.isprintable() and "=?" not in text:
                try:
                    return self._plain(row)
                except InvalidInput:
                    pass        # refused: the long way says why, in the usual order
        return self._full(row)

    def _plain(self, row):
        """The record of a row whose every value is plain text: the same record as
        ``_full`` makes; InvalidInput (of any wording) when ``_full`` must decide."""
        # The row padded with blanks to one past the header's width: a value the row lacks,
        # and a column the file lacks (read at ``self.width``), read as "" (the row itself is
        # not changed: ``_full`` may read it next).
        cells = row + self._pad[len(row):]
        status = ""
        for position in self.status:
            if status.lower() in columns.ACTIVE_WORDS:
                status = cells[position].strip()
        if status.lower() not in columns.ACTIVE_WORDS:
            raise InvalidInput("not an active status")
        fields = {}
        for position, key in self.fields:
            value = cells[position].strip()
            if value:
                if len(value) > joining.MAX_FIELD_LENGTH:
                    raise InvalidInput("field too long")
                fields[key] = value
        if self.parts:
            name = columns.full_name(*(cells[p].strip() for p in self.parts))
        else:
            name = cells[self.name_at]
        name = " ".join(name.split())
        if len(name) > joining.MAX_NAME_LENGTH:
            raise InvalidInput("name too long")
        timezone = cells[self.timezone_at].strip() or None
        if timezone is not None and timezone not in self.zones:
            joining.check_timezone(timezone)
            self.zones.add(timezone)
        tags = cells[self.tags_at].strip()
        created = cells[self.signed_up_at].strip()
        if not created:
            created = next((v for v in (cells[p].strip() for p in self.later) if v), "")
        email = cells[self.email_at].strip()
        if not email:
            raise InvalidInput("no address")
        if self.staged:
            self._stage_fields(fields)
        return {"name": name, "timezone": timezone, "tags": self._tags(tags) if tags else [],
                "fields": fields, "created_at": self._signup(created) if created else None,
                "email": joining.check_address(email)}

    def _stage_fields(self, fields):
        """``joining.check_stage_fields`` on ``fields``, its answer for the same stage values
        kept (a bounded cache: a list repeats a few stages and dates); a refusal is not kept."""
        given = tuple(map(fields.get, joining.STAGE_FIELDS))
        checked = self._stages.get(given)
        if checked is None:
            checked = joining.check_stage_fields(
                {key: value for key, value in zip(joining.STAGE_FIELDS, given, strict=True)
                 if value}, self.now)
            if len(self._stages) >= 10000:
                self._stages.clear()
            self._stages[given] = checked
        fields.update(checked)

    def _tags(self, value):
        tags = self._tag_lists.get(value)
        if tags is None:
            tags = joining.check_tags(columns.split_tags(value))
            if len(self._tag_lists) >= 10000:
                self._tag_lists.clear()
            self._tag_lists[value] = tags
        return list(tags)

    def _full(self, row):
        record = {"name": "", "timezone": None, "tags": [], "fields": {}, "created_at": None}
        values = dict.fromkeys(("email", "status", "name", "first_name", "last_name"), "")
        later = []   # signup times for when the signup column is empty
        width = len(row)
        for position, target, heading in self.columns:
            if position >= width:
                break
            raw = row[position]
            target, value = columns.resolve(target, raw.strip(), heading)
            if target == "skip":
                continue
            if isinstance(target, tuple):
                checked = joining.check_field(target[1], raw, now=self.now)
                if checked:
                    record["fields"][target[1]] = checked
                continue
            if target in _SUBSCRIBER_TEXT:
                joining.check_text(_SUBSCRIBER_TEXT[target], raw)
            if target == "timezone" and value:
                if value not in self.zones:
                    joining.check_timezone(value)
                    self.zones.add(value)
                record["timezone"] = value
            elif target == "tags" and value:
                record["tags"] = joining.check_tags(columns.split_tags(value))
            elif target == "signed_up" and value:
                record["created_at"] = self._signup(value)
            elif target == "signed_up_fallback":
                later.append(value)
            elif target == "status":
                if values["status"].lower() in columns.ACTIVE_WORDS:   # one that keeps them out wins
                    values["status"] = value
            else:
                values[target] = value
        record["name"] = joining.check_name(
            columns.full_name(values["name"], values["first_name"], values["last_name"]))
        if record["created_at"] is None and any(later):
            record["created_at"] = self._signup(next(v for v in later if v))
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

    def _signup(self, value):
        moment = self._signups.get(value)
        if moment is None:
            moment = signup_time(value, self.now)
            if len(self._signups) >= 10000:
                self._signups.clear()
            self._signups[value] = moment
        return moment


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
