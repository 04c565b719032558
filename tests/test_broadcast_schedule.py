"""When a broadcast goes (``sender/broadcast_schedule.py``): a moment for everyone, or a local
time for every reader, DST-correct, across the world within about 26 hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sender.broadcast_schedule import EARLIEST, LocalTime, Moment, check_not_past, parse_when
from sender.errors import InvalidInput
from tests.conftest import at

THURSDAY = at("2026-03-05T12:00Z")     # scheduled on a Thursday: the next Tuesday is 10 March


@pytest.mark.parametrize(("zone", "expected"), [
    ("America/Los_Angeles", "2026-03-10T16:00Z"),   # PDT already (since 8 March): UTC-7
    ("Europe/London", "2026-03-10T09:00Z"),         # GMT until 29 March
    ("Asia/Tokyo", "2026-03-10T00:00Z"),
    ("Asia/Kolkata", "2026-03-10T03:30Z"),          # +05:30
    ("Pacific/Chatham", "2026-03-09T19:15Z"),       # +13:45 (daylight time until April)
])
def test_tuesday_at_nine_in_each_readers_own_zone(zone, expected):
    when = parse_when("Tue 09:00 local")
    day = when.day(THURSDAY)
    assert day == date(2026, 3, 10)
    due = when.due(day, ZoneInfo(zone))
    assert due == at(expected)
    local = due.astimezone(ZoneInfo(zone))
    assert (local.strftime("%a %H:%M"), local.date()) == ("Tue 09:00", day)


def test_the_whole_world_within_26_hours():
    when = parse_when("Tue 09:00 local")
    first, last = when.span(when.day(THURSDAY))
    assert (first, last) == (at("2026-03-09T19:00Z"), at("2026-03-10T21:00Z"))
    assert last - first == timedelta(hours=26)


def test_a_time_skipped_by_the_clocks_moves_on_by_the_gap_and_a_repeated_one_means_the_first():
    la = ZoneInfo("America/Los_Angeles")
    spring = parse_when("2026-03-08 02:30 local")      # LA jumps 02:00 -> 03:00 that night
    assert spring.due(spring.day(THURSDAY), la) == at("2026-03-08T10:30Z")   # 03:30 PDT
    autumn = parse_when("Sun 01:30 local")            # LA repeats 01:00-02:00 on 1 November
    day = autumn.day(at("2026-10-28T12:00Z"))
    assert day == date(2026, 11, 1)
    assert autumn.due(day, la) == at("2026-11-01T08:30Z")                    # 01:30 PDT, the first
    london = parse_when("Sun 01:30 local")            # London jumps 01:00 -> 02:00 on 29 March
    assert london.due(london.day(at("2026-03-25T12:00Z")), ZoneInfo("Europe/London")) == \
        at("2026-03-29T01:30Z")                                              # 02:30 BST


def test_a_weekly_hour_keeps_its_local_time_across_a_dst_change():
    when = parse_when("Tue 09:00 local")
    la = ZoneInfo("America/Los_Angeles")
    before = when.due(when.day(at("2026-02-26T12:00Z")), la)     # 3 March, PST
    after = when.due(when.day(THURSDAY), la)                     # 10 March, PDT
    assert (before, after) == (at("2026-03-03T17:00Z"), at("2026-03-10T16:00Z"))


def test_the_day_is_the_first_whose_hour_is_still_to_come_somewhere():
    when = parse_when("Tue 09:00 local")
    # Monday 18:00 UTC: already Tuesday 08:00 at UTC+14, so this Tuesday still works...
    assert when.day(at("2026-03-09T18:00Z")) == date(2026, 3, 10)
    # ... but at Tuesday 00:00 UTC it is 14:00 at UTC+14: next week.
    assert when.day(at("2026-03-10T00:00Z")) == date(2026, 3, 17)


def test_a_moment_is_the_same_instant_for_everyone():
    when = parse_when("2026-03-10 09:00 America/Los_Angeles")
    assert isinstance(when, Moment) and when.at == at("2026-03-10T16:00Z")
    assert when.due(when.day(THURSDAY), ZoneInfo("Asia/Tokyo")) == at("2026-03-10T16:00Z")
    assert parse_when("2026-03-10T17:00Z").at == at("2026-03-10T17:00Z")
    assert parse_when("2026-03-08 02:30 America/Los_Angeles").at == at("2026-03-08T10:30Z")


@pytest.mark.parametrize(("text", "words"), [
    ("", "empty"),
    ("tomorrow", "not understood"),
    ("Tue 25:00 local", "not a time of day"),
    ("Tuz 09:00 local", "not a day of the week"),
    ("2026-02-30 09:00 local", "not a date"),
    ("2026-03-10 09:00 Mars/Olympus", "unknown time zone"),
    ("2026-03-10T09:00", "not understood"),        # no zone: refused, never guessed
])
def test_bad_whens_are_refused_with_how_to_write_them(text, words):
    with pytest.raises(InvalidInput, match=words):
        parse_when(text)


@pytest.mark.parametrize("text", [
    "9999-12-31 23:00 local", "0001-01-01T00:30+14:00", "9999-12-31 23:00 Etc/GMT+12",
    "9999-12-31T23:59-12:00", "1999-12-31 09:00 local",
])
def test_a_date_outside_any_real_broadcast_is_refused_not_a_crash(text):
    # At the edges of the calendar Python's arithmetic overflows; drip says what to write.
    with pytest.raises(InvalidInput, match="between the years 2000 and 2999"):
        when = parse_when(text)
        when.span(when.day(THURSDAY))


def _unused_bad_when(text, words):
    with pytest.raises(InvalidInput, match=words):
        parse_when(text)


def test_a_time_already_begun_is_refused():
    check_not_past(parse_when("Tue 09:00 local"), THURSDAY)
    with pytest.raises(InvalidInput, match="already come"):
        check_not_past(parse_when("2026-03-05 09:00 local"), THURSDAY)
    with pytest.raises(InvalidInput, match="already come"):
        check_not_past(parse_when("2026-03-05T11:00Z"), THURSDAY)


ZONES = sorted(z for z in available_timezones()
               if "/" in z and not z.startswith(("Etc/", "posix/", "right/", "SystemV/")))


@given(scheduled=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31),
                              timezones=st.just(UTC)),
       weekday=st.integers(0, 6), minute=st.integers(0, 24 * 60 - 1),
       names=st.lists(st.sampled_from(ZONES), min_size=1, max_size=8))
def test_every_reader_gets_it_after_scheduling_at_her_hour_within_26_hours(
        scheduled, weekday, minute, names):
    when = LocalTime(minute, "property", weekday=weekday)
    day = when.day(scheduled)
    assert day.weekday() == weekday and day <= scheduled.date() + timedelta(days=8)
    # The first such day: a week earlier, the hour had come already even at UTC+14.
    assert when.due(day - timedelta(days=7), EARLIEST) <= scheduled
    first, last = when.span(day)
    assert first > scheduled and last - first == timedelta(hours=26)
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    for name in names:
        tz = ZoneInfo(name)
        due = when.due(day, tz)
        assert first <= due <= last + timedelta(hours=1) and due > scheduled
        local = due.astimezone(tz).replace(tzinfo=None)
        if wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
            assert local == wall                        # the hour exists: exactly it
        else:
            assert wall < local <= wall + timedelta(hours=2)   # skipped: moved on by the gap
