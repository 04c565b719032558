"""Schedule arithmetic: delays, windows, daylight-saving changes, zones far from UTC."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sender.errors import InvalidInput
from sender.schedule import (
    ALWAYS,
    Delay,
    StepTiming,
    add_delay,
    due_times,
    fit_window,
    localize,
    parse_delay,
    parse_instant,
    parse_window,
    zone,
)
from tests.conftest import at

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
WEEKDAYS = parse_window("Mon-Fri 09:00-17:00")


def local(dt, tz):
    return dt.astimezone(tz).replace(tzinfo=None)


@pytest.mark.parametrize("text,expected", [
    ("0", Delay()), ("30m", Delay(seconds=1800)), ("2h", Delay(seconds=7200)),
    ("3d", Delay(days=3)), ("1w", Delay(days=7)), ("1w2d", Delay(days=9)),
    ("1d12h", Delay(days=1, seconds=43200)), (" 2D ", Delay(days=2)),
])
def test_parse_delay(text, expected):
    assert parse_delay(text) == expected


@pytest.mark.parametrize("text", ["", "3", "d3", "3x", "1w-2d", "three days", "-1d"])
def test_parse_delay_rejects(text):
    with pytest.raises(InvalidInput, match="delay"):
        parse_delay(text)


def test_parse_window_forms():
    assert parse_window("always") is ALWAYS
    window = parse_window("Mon-Fri 09:00-17:00")
    assert window.days == frozenset(range(5)) and (window.start_minute, window.end_minute) == (540, 1020)
    assert parse_window("daily 08:00-24:00").end_minute == 1440
    assert parse_window("Mon,Wed,Fri 07:00-09:30").days == frozenset({0, 2, 4})
    assert parse_window("Fri-Mon 10:00-12:00").days == frozenset({4, 5, 6, 0})
    assert str(parse_window("Mon-Fri 09:00-17:00")) == "Mon-Fri 09:00-17:00"


@pytest.mark.parametrize("text", ["weekdays", "Mon-Fri 17:00-09:00", "Mon-Fri 9-17", "Funday 09:00-10:00",
                                  "Mon-Fri 09:00-25:00", "Mon 09:60-10:00"])
def test_parse_window_rejects(text):
    with pytest.raises(InvalidInput, match="send window"):
        parse_window(text)


def test_zone_rejects_unknown():
    with pytest.raises(InvalidInput, match="IANA"):
        zone("Mars/Olympus")


@pytest.mark.parametrize("name", ["a/" * 300 + "b", "a/" * 2000 + "b", "Europe/" + "x" * 500,
                                  "../../etc/passwd", "Europe//Berlin", "/Europe/Berlin",
                                  "localtime", "posixrules", "Factory", "posix/Europe/Berlin"])
def test_zone_refuses_a_name_no_zone_has(name):
    """A deep or odd key never reaches zoneinfo's lookup (a RecursionError deep inside it)."""
    with pytest.raises(InvalidInput, match="IANA"):
        zone(name)


@pytest.mark.parametrize("name", ["America/Argentina/ComodRivadavia", "Etc/GMT+5", "UTC",
                                  "America/Port-au-Prince", "Pacific/Chatham", "Asia/Kolkata"])
def test_zone_accepts_real_names(name):
    assert zone(name).key == name


def test_gap_moves_forward_by_the_gap():
    # 2026-03-08 02:30 does not exist in New York (clocks jump 02:00 -> 03:00).
    assert local(localize(datetime(2026, 3, 8, 2, 30), NY), NY) == datetime(2026, 3, 8, 3, 30)


def test_fold_takes_first_occurrence():
    # 2026-11-01 01:30 happens twice in New York; the first is EDT (UTC-4).
    assert localize(datetime(2026, 11, 1, 1, 30), NY) == at("2026-11-01T05:30Z")


def test_weekly_step_keeps_local_hour_across_spring_forward():
    start = localize(datetime(2026, 3, 2, 9, 0), NY)  # Monday, EST
    later = add_delay(start, parse_delay("1w"), NY)
    assert local(later, NY) == datetime(2026, 3, 9, 9, 0)
    assert later - start == timedelta(days=7) - timedelta(hours=1)


def test_weekly_step_keeps_local_hour_across_fall_back_in_london():
    start = localize(datetime(2026, 10, 19, 9, 0), LONDON)
    later = add_delay(start, parse_delay("1w"), LONDON)
    assert local(later, LONDON) == datetime(2026, 10, 26, 9, 0)
    assert later - start == timedelta(days=7, hours=1)


def test_hours_are_elapsed_time_across_a_change():
    start = localize(datetime(2026, 3, 8, 0, 30), NY)
    later = add_delay(start, parse_delay("3h"), NY)
    assert later - start == timedelta(hours=3)
    assert local(later, NY) == datetime(2026, 3, 8, 4, 30)


def test_day_delay_landing_in_the_gap():
    start = localize(datetime(2026, 3, 7, 2, 30), NY)
    later = add_delay(start, parse_delay("1d"), NY)
    assert local(later, NY) == datetime(2026, 3, 8, 3, 30)


def test_fit_window_moves_to_next_opening():
    saturday_night = localize(datetime(2026, 3, 7, 23, 30), NY)
    assert local(fit_window(saturday_night, NY, WEEKDAYS), NY) == datetime(2026, 3, 9, 9, 0)
    early = localize(datetime(2026, 3, 10, 7, 0), NY)
    assert local(fit_window(early, NY, WEEKDAYS), NY) == datetime(2026, 3, 10, 9, 0)
    inside = localize(datetime(2026, 3, 10, 12, 15), NY)
    assert fit_window(inside, NY, WEEKDAYS) == inside
    closing = localize(datetime(2026, 3, 10, 17, 0), NY)
    assert local(fit_window(closing, NY, WEEKDAYS), NY) == datetime(2026, 3, 11, 9, 0)


def test_window_opening_inside_a_gap():
    window = parse_window("daily 02:30-04:00")
    before = localize(datetime(2026, 3, 8, 1, 0), NY)
    assert local(fit_window(before, NY, window), NY) == datetime(2026, 3, 8, 3, 30)


def test_due_times_sequence_new_york():
    steps = [StepTiming("welcome", Delay()), StepTiming("one", Delay(days=3)),
             StepTiming("two", Delay(days=7)), StepTiming("bonus", Delay(days=1), after_enrolment=True)]
    signup = localize(datetime(2026, 3, 7, 23, 30), NY)
    due = due_times(steps, signup, NY, WEEKDAYS)
    assert [local(d, NY) for d in due] == [
        datetime(2026, 3, 9, 9, 0),    # Saturday night -> Monday opening
        datetime(2026, 3, 12, 9, 0),   # +3 days on the wall clock
        datetime(2026, 3, 19, 9, 0),   # +1 week, same local hour after DST began
        datetime(2026, 3, 9, 9, 0),    # 1 day after enrolment = Sunday -> Monday opening
    ]
    assert all(d.tzinfo is not None and d.utcoffset() == timedelta(0) for d in due)


@pytest.mark.parametrize("tz_name,expected_utc", [
    ("Pacific/Kiritimati", "2026-03-08T20:00Z"),   # UTC+14: Monday 10:00 local is Sunday in UTC
    ("Pacific/Pago_Pago", "2026-03-09T21:00Z"),    # UTC-11
    ("Asia/Kolkata", "2026-03-09T04:30Z"),          # half-hour offset
    ("UTC", "2026-03-09T10:00Z"),
])
def test_far_east_and_west(tz_name, expected_utc):
    tz = ZoneInfo(tz_name)
    window = parse_window("Mon-Fri 10:00-12:00")
    signup = localize(datetime(2026, 3, 7, 12, 0), tz)   # a Saturday everywhere
    [due] = due_times([StepTiming("one", Delay())], signup, tz, window)
    assert due == at(expected_utc)
    assert local(due, tz) == datetime(2026, 3, 9, 10, 0)


def test_southern_hemisphere_dst_end_keeps_local_hour():
    sydney = ZoneInfo("Australia/Sydney")   # DST ends 2026-04-05
    start = localize(datetime(2026, 4, 1, 9, 0), sydney)
    later = add_delay(start, parse_delay("1w"), sydney)
    assert local(later, sydney) == datetime(2026, 4, 8, 9, 0)


def test_parse_instant():
    assert parse_instant("2026-03-09T09:00Z") == at("2026-03-09T09:00Z")
    assert parse_instant("2026-03-09 09:00", NY) == at("2026-03-09T13:00Z")
    with pytest.raises(InvalidInput, match="ISO 8601"):
        parse_instant("next tuesday")


ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "Pacific/Kiritimati",
         "America/Los_Angeles", "UTC"]


@given(
    minutes=st.integers(min_value=0, max_value=60 * 24 * 365 * 2),
    tz_name=st.sampled_from(ZONES),
    days=st.integers(min_value=0, max_value=60),
    window=st.sampled_from(["Mon-Fri 09:00-17:00", "daily 08:00-20:00", "Sat,Sun 07:00-09:30",
                            "always", "daily 02:00-03:00"]),
)
def test_due_time_is_inside_window_and_not_early(minutes, tz_name, days, window):
    tz = ZoneInfo(tz_name)
    start = at("2026-01-01T00:00Z") + timedelta(minutes=minutes)
    parsed = parse_window(window)
    [due] = due_times([StepTiming("x", Delay(days=days))], start, tz, parsed)
    assert due >= add_delay(start, Delay(days=days), tz)
    wall = due.astimezone(tz)
    if not parsed.always:
        assert wall.weekday() in parsed.days
        minute = wall.hour * 60 + wall.minute
        # Inside the window, or at the first real minute after a skipped opening time.
        assert parsed.start_minute <= minute < parsed.end_minute or minute == parsed.start_minute + 60
    assert due - add_delay(start, Delay(days=days), tz) < timedelta(days=8)
