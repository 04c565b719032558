"""Schedule arithmetic: pure functions from (enrolment time, time zone, window) to due times.

Nothing here reads the clock, the database or the files. All instants are aware
``datetime`` objects; due times come back in UTC.

Rules, chosen on purpose:

* A delay in days or weeks is counted on the subscriber's wall clock, so a
  weekly email keeps its local hour across a daylight-saving change. A delay
  in hours or minutes is elapsed time.
* A local time that does not exist (the hour skipped when clocks go forward)
  is moved forward by the length of the gap: 02:30 becomes 03:30.
* A local time that exists twice (the hour repeated when clocks go back) means
  its first occurrence.
* A due time outside the send window moves to the window's next opening.
* The minimum gap (DRIP_MIN_GAP): a campaign email that would follow the last one sent to
  the same person sooner than the gap waits until the gap has passed, then for the window
  (``min_gap_until``). Transactional email (the confirmation, the welcome) never waits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InvalidInput

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_UNIT_DAYS = {"d": 1, "w": 7}


@dataclass(frozen=True)
class Delay:
    """A wait between two points of a sequence: calendar days plus elapsed seconds."""

    days: int = 0
    seconds: int = 0

    def __str__(self):
        parts = []
        weeks, days = divmod(self.days, 7)
        if weeks:
            parts.append(f"{weeks}w")
        if days:
            parts.append(f"{days}d")
        hours, rest = divmod(self.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        for value, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")):
            if value:
                parts.append(f"{value}{unit}")
        return "".join(parts) or "0"

    def approx_timedelta(self):
        return timedelta(days=self.days, seconds=self.seconds)


def parse_delay(text):
    """Parse "0", "30m", "2h", "3d", "1w" or a combination such as "1w2d" or "1d12h"."""
    raw = str(text).strip().lower().replace(" ", "")
    if raw in ("0", ""):
        if raw == "":
            raise InvalidInput("empty delay: use 0, 30m, 2h, 3d or 1w")
        return Delay()
    pieces = re.findall(r"(\d+)([smhdw])", raw)
    if not pieces or "".join(n + u for n, u in pieces) != raw:
        raise InvalidInput(
            f"invalid delay {text!r}: use a number and a unit, e.g. 0, 30m, 2h, 3d, 1w or 1w2d"
        )
    days = seconds = 0
    for number, unit in pieces:
        if unit in _UNIT_DAYS:
            days += int(number) * _UNIT_DAYS[unit]
        else:
            seconds += int(number) * _UNIT_SECONDS[unit]
    return Delay(days=days, seconds=seconds)


def parse_duration(text):
    """Parse a duration such as "48h" or "10m" into a timedelta (days count as 24 hours)."""
    delay = parse_delay(text)
    return delay.approx_timedelta()


@dataclass(frozen=True)
class Window:
    """The local weekdays and hours in which a subscriber may receive email."""

    days: frozenset = frozenset(range(7))
    start_minute: int = 0
    end_minute: int = 24 * 60

    @property
    def always(self):
        return len(self.days) == 7 and self.start_minute == 0 and self.end_minute == 24 * 60

    def __str__(self):
        if self.always:
            return "always"
        return f"{_format_days(self.days)} {_hhmm(self.start_minute)}-{_hhmm(self.end_minute)}"


ALWAYS = Window()


def _hhmm(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _format_days(days):
    if len(days) == 7:
        return "daily"
    ordered = sorted(days)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{DAY_NAMES[ordered[0]].title()}-{DAY_NAMES[ordered[-1]].title()}"
    return ",".join(DAY_NAMES[d].title() for d in ordered)


def _parse_clock(text, *, allow_24=False):
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if not match:
        raise ValueError(text)
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(text)
    return hours * 60 + minutes


def _parse_days(text):
    text = text.lower()
    if text in ("daily", "every day", "all"):
        return frozenset(range(7))
    if text in ("weekdays",):
        return frozenset(range(5))
    if text in ("weekends",):
        return frozenset((5, 6))
    days = set()
    for part in text.split(","):
        part = part.strip()[:3] if "-" not in part else part.strip()
        if "-" in part:
            first, last = (p.strip()[:3] for p in part.split("-", 1))
            a, b = DAY_NAMES.index(first), DAY_NAMES.index(last)
            day = a
            while True:
                days.add(day)
                if day == b:
                    break
                day = (day + 1) % 7
        else:
            days.add(DAY_NAMES.index(part))
    return frozenset(days)


def parse_window(text):
    """Parse "always", "Mon-Fri 09:00-17:00", "daily 08:00-20:00" or "Mon,Wed,Fri 07:00-09:30"."""
    raw = " ".join(str(text).split())
    if raw.lower() == "always":
        return ALWAYS
    usage = (
        f"invalid send window {text!r}: use \"always\" or days and local hours, "
        'e.g. "Mon-Fri 09:00-17:00", "daily 08:00-20:00" or "Mon,Wed,Fri 07:00-09:30"'
    )
    match = re.fullmatch(r"(.+?)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})", raw)
    if not match:
        raise InvalidInput(usage)
    try:
        days = _parse_days(match.group(1))
        start = _parse_clock(match.group(2))
        end = _parse_clock(match.group(3), allow_24=True)
    except ValueError:
        raise InvalidInput(usage) from None
    if end <= start:
        raise InvalidInput(f"invalid send window {text!r}: the end hour must be after the start")
    return Window(days=days, start_minute=start, end_minute=end)


# The shape of every IANA key (America/Argentina/ComodRivadavia, Etc/GMT+5, UTC): at most
# three parts. Anything else is refused before zoneinfo looks it up, which for a deep path
# like "a/a/a/.../b" recurses through the import system until RecursionError.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,3}")
# Files in the zone folder that are not zones of a place: this machine's own setting, a
# template, a placeholder, and the two alternative trees.
_NOT_ZONES = {"localtime", "posixrules", "Factory"}


_ZONES = {}        # name -> ZoneInfo, for names already checked (a few hundred at most)


def zone(name):
    """Return the IANA time zone ``name`` or raise InvalidInput naming it."""
    found = _ZONES.get(name) if isinstance(name, str) else None
    if found is not None:
        return found
    try:
        if not isinstance(name, str) or len(name) > 64 or not _ZONE_NAME.fullmatch(name) \
                or name in _NOT_ZONES or name.startswith(("posix/", "right/")):
            raise ValueError(name)
        found = ZoneInfo(name)
        if len(_ZONES) < 1024:
            _ZONES[name] = found
        return found
    except (ZoneInfoNotFoundError, ValueError, TypeError, RecursionError):
        raise InvalidInput(
            f"unknown time zone {str(name)[:80]!r}: use an IANA name such as America/New_York "
            "or Europe/Berlin"
        ) from None


def localize(wall, tz: tzinfo):
    """Turn a naive local wall time into an aware UTC instant (gap: forward; fold: first)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _local_at(day: date, minute: int, tz):
    if minute >= 24 * 60:
        return localize(datetime.combine(day + timedelta(days=1), time()), tz)
    return localize(datetime.combine(day, time(minute // 60, minute % 60)), tz)


def fit_window(instant, tz, window: Window):
    """The earliest instant at or after ``instant`` that falls inside ``window`` locally."""
    instant = instant.astimezone(UTC)
    if window.always:
        return instant
    day = instant.astimezone(tz).date() - timedelta(days=1)
    for _ in range(9):
        if day.weekday() in window.days:
            opens = _local_at(day, window.start_minute, tz)
            closes = _local_at(day, window.end_minute, tz)
            if instant < opens:
                return opens
            if instant < closes:
                return instant
        day += timedelta(days=1)
    raise InvalidInput(f"send window {window} never opens")  # unreachable for a parsed window


def min_gap_until(last_sent, gap, at, tz, window: Window):
    """The minimum gap between two emails to one person: None when an email may go at ``at``
    (nothing sent before, or the last one ``gap`` or more before ``at``); otherwise the
    earliest instant ``gap`` after ``last_sent`` that falls inside ``window`` in ``tz``. A
    ``last_sent`` later than ``at`` (an email a provider holds until then) counts too."""
    if last_sent is None or at - last_sent >= gap:
        return None
    return fit_window(last_sent + gap, tz, window)


def yield_until(other_due, gap, at, tz, window: Window):
    """An email that yields to another email of the same person's (a broadcast and a sequence
    email, ``DRIP_BROADCAST_YIELD``): None when it may go at ``at`` (no other one, or the
    other one is due ``gap`` or more after ``at``); otherwise the earliest instant ``gap``
    after the other one (after ``at``, when the other one is due already) inside ``window``."""
    if other_due is None or other_due - at >= gap:
        return None
    return fit_window(max(other_due, at) + gap, tz, window)


def add_delay(instant, delay: Delay, tz):
    """``instant`` plus ``delay``: days on the local wall clock, then elapsed seconds."""
    result = instant.astimezone(UTC)
    if delay.days:
        wall = result.astimezone(tz).replace(tzinfo=None) + timedelta(days=delay.days)
        result = localize(wall, tz)
    return result + timedelta(seconds=delay.seconds)


@dataclass(frozen=True)
class StepTiming:
    """What the schedule needs of a campaign step. ``anchors``: the date fields the step
    counts from (``after = "field:birth_date"``), the first one given wins; ``fallback``: its
    delay when none is given (None: ``delay``)."""

    id: str
    delay: Delay
    after_enrolment: bool = False
    anchors: tuple = ()
    fallback: Delay | None = None


def due_times(steps, enrolled_at, tz, window: Window, dates=None):
    """Each step's due time in UTC, in order, for a subscriber enrolled at ``enrolled_at``.

    A step waits ``delay`` after the previous step's due time (or after the
    enrolment, for the first step and for steps marked ``after_enrolment``),
    then moves into the send window.

    A step with ``anchors`` counts from the first of those dates in ``dates`` ({field name:
    ``datetime.date``}): ``delay`` after the start of that day on her wall clock. With none
    of its dates it counts as a step without anchors would, waiting ``fallback`` (or
    ``delay``). A date can hold a step back, never rush it: it is never due before
    ``enrolled_at``, nor (with a ``fallback``) before the time it would have without the
    date. So a date long past starts her at the step as someone without a date starts,
    instead of skipping steps. The steps after it chain from its due time as usual.
    """
    enrolled_at = enrolled_at.astimezone(UTC)
    dates = dates or {}
    result = []
    previous = enrolled_at
    for step in steps:
        day = next((dates[name] for name in step.anchors if dates.get(name)), None)
        delay = step.fallback if step.anchors and step.fallback is not None else step.delay
        base = add_delay(enrolled_at if step.after_enrolment else previous, delay, tz)
        if day is not None:
            start = localize(datetime.combine(day, time()), tz)
            floor = base if step.fallback is not None else enrolled_at
            base = max(add_delay(start, step.delay, tz), floor)
        due = fit_window(base, tz, window)
        result.append(due)
        previous = due
    return result


def parse_instant(text, tz=None):
    """Parse an ISO 8601 time; a time without an offset is read in ``tz`` (UTC if none)."""
    try:
        value = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"invalid time {text!r}: use ISO 8601, e.g. 2026-03-07T23:30 or 2026-03-07T23:30:00+01:00"
        ) from None
    if value.tzinfo is None:
        value = localize(value, tz or UTC)
    return value.astimezone(UTC)
