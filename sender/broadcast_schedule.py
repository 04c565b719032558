"""When a broadcast goes: pure arithmetic (no clock, no I/O), beside ``schedule.py``.

A broadcast's ``when`` is one of:

* a moment for everyone: ``2026-03-10 09:00 America/Los_Angeles`` (a local time in a named
  zone) or ``2026-03-10T17:00Z`` (ISO 8601 with its offset);
* a local time for every reader: ``Tue 09:00 local`` (the next Tuesday) or
  ``2026-03-10 09:00 local`` (that date): each subscriber gets it at that hour in her own
  zone (``DRIP_TIMEZONE`` when she has none).

A local time picks one calendar day for everyone: the first day with that weekday whose
hour has not yet come anywhere on earth (at UTC+14, where each day begins first) when it
is scheduled. So the broadcast reaches the world within about 26 hours (UTC+14 to UTC-12),
and no reader waits a week because her hour had just passed. The hour is put on each
zone's clock with the sequence schedule's rules (``schedule.localize``): a time that does
not exist (clocks jump forward) moves on by the gap; one that exists twice means the first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from .errors import InvalidInput
from .schedule import DAY_NAMES, localize, zone

# Where a calendar day begins first and ends last (Kiritimati, Baker Island).
EARLIEST = timezone(timedelta(hours=14))
LATEST = timezone(timedelta(hours=-12))

YEARS = range(2000, 3000)

USAGE = ('use a moment, "2026-03-10 09:00 America/Los_Angeles" or "2026-03-10T17:00Z", or a '
         'local time for every reader, "Tue 09:00 local" or "2026-03-10 09:00 local"')
_LOCAL = re.compile(r"(?P<day>[A-Za-z]{3,9}|\d{4}-\d{2}-\d{2})\s+(?P<clock>\d{1,2}:\d{2})\s+local",
                    re.I)
_ZONED = re.compile(r"(?P<day>\d{4}-\d{2}-\d{2})[ T](?P<clock>\d{1,2}:\d{2})\s+(?P<zone>\S+)")


@dataclass(frozen=True)
class Moment:
    """One instant for everyone."""

    at: datetime        # UTC
    text: str
    local = False

    def day(self, scheduled_at):
        return None

    def due(self, day, tz):
        return self.at

    def span(self, day):
        """(the first due time, the last): the same instant."""
        return self.at, self.at


@dataclass(frozen=True)
class LocalTime:
    """A wall-clock time in each reader's own zone, on a weekday or a date."""

    minute: int         # minutes after local midnight
    text: str
    weekday: int | None = None      # 0 = Monday
    date: date | None = None
    local = True

    def day(self, scheduled_at):
        """The calendar day everyone gets it on, for a broadcast scheduled at
        ``scheduled_at``: the first such day whose hour is still to come at UTC+14."""
        if self.date is not None:
            return self.date
        day = scheduled_at.astimezone(EARLIEST).date() - timedelta(days=1)
        for _ in range(9):
            if day.weekday() == self.weekday and self.due(day, EARLIEST) > scheduled_at:
                return day
            day += timedelta(days=1)
        raise AssertionError("unreachable: a weekday comes within 9 days")

    def due(self, day, tz):
        """The instant of the hour on ``day`` on ``tz``'s clock (gap: forward; fold: first)."""
        return localize(datetime.combine(day, time(self.minute // 60, self.minute % 60)), tz)

    def span(self, day):
        """(the first due time on earth, the last): UTC+14's and UTC-12's."""
        return self.due(day, EARLIEST), self.due(day, LATEST)


def _clock(text, whole):
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    hours, minutes = int(match[1]), int(match[2])
    if hours > 23 or minutes > 59:
        raise InvalidInput(f"when {whole!r}: {text} is not a time of day (00:00 to 23:59)")
    return hours * 60 + minutes


def _date(text, whole):
    try:
        return _in_range(date.fromisoformat(text), whole)
    except ValueError:
        raise InvalidInput(f"when {whole!r}: {text} is not a date (YYYY-MM-DD)") from None


def _in_range(value, whole):
    """``value`` (a date or datetime) if its year is one a broadcast can go in: at the edges of
    the calendar the arithmetic of zones would overflow."""
    if value.year not in YEARS:
        raise InvalidInput(f"when {whole!r}: choose a date between the years {YEARS.start} and "
                           f"{YEARS.stop - 1}")
    return value


def parse_when(text):
    """A ``Moment`` or a ``LocalTime`` from the coach's words; InvalidInput says how."""
    raw = " ".join(str(text or "").split())
    if not raw:
        raise InvalidInput(f"when is empty: {USAGE}")
    match = _LOCAL.fullmatch(raw)
    if match:
        minute = _clock(match["clock"], raw)
        day = match["day"]
        if day[0].isdigit():
            return LocalTime(minute, raw, date=_date(day, raw))
        key = day[:3].lower()
        if key not in DAY_NAMES or not any(d.startswith(day.lower()) for d in _FULL_DAYS):
            raise InvalidInput(f"when {raw!r}: {day!r} is not a day of the week (Mon to Sun)")
        return LocalTime(minute, raw, weekday=DAY_NAMES.index(key))
    match = _ZONED.fullmatch(raw)
    if match:
        minute = _clock(match["clock"], raw)
        day = _date(match["day"], raw)
        tz = zone(match["zone"])
        at = localize(datetime.combine(day, time(minute // 60, minute % 60)), tz)
        return Moment(at, raw)
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInput(f"when {raw!r} is not understood: {USAGE}")
    return Moment(_in_range(value, raw).astimezone(UTC), raw)


_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def check_not_past(when, scheduled_at):
    """InvalidInput when ``when`` has already begun at ``scheduled_at`` (send it now instead)."""
    first, _ = when.span(when.day(scheduled_at))
    if first <= scheduled_at:
        raise InvalidInput(f"when {when.text!r}: that time has already come "
                           f"({first.astimezone(UTC):%Y-%m-%d %H:%M} UTC somewhere); choose a later "
                           "one, or use `drip broadcast send` to send it now")
