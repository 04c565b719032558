"""The minimum gap between two emails to one person (DRIP_MIN_GAP), as schedule arithmetic:
``schedule.min_gap_until``."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from sender.schedule import ALWAYS, min_gap_until, parse_window
from tests.conftest import at

NY = ZoneInfo("America/New_York")
WEEKDAYS = parse_window("Mon-Fri 09:00-17:00")
DAY = timedelta(days=1)


def test_a_first_email_never_waits():
    assert min_gap_until(None, DAY, at("2026-03-09T15:00Z"), NY, WEEKDAYS) is None


def test_an_email_a_whole_gap_after_the_last_goes_at_once():
    last = at("2026-03-09T15:00Z")
    assert min_gap_until(last, DAY, last + DAY, NY, WEEKDAYS) is None
    assert min_gap_until(last, DAY, last + 3 * DAY, NY, WEEKDAYS) is None


def test_an_email_too_soon_waits_until_the_gap_has_passed():
    last = at("2026-03-09T15:00Z")          # Monday 11:00 in New York
    assert min_gap_until(last, DAY, last + timedelta(hours=2), NY, WEEKDAYS) == last + DAY
    assert min_gap_until(last, DAY, last + DAY - timedelta(seconds=1), NY, ALWAYS) == last + DAY


def test_the_gap_ending_outside_the_window_waits_for_its_next_opening():
    last = at("2026-03-13T20:00Z")          # Friday 16:00 in New York
    # A day later is Saturday: the window opens again on Monday at 09:00 New York time.
    assert min_gap_until(last, DAY, last + timedelta(hours=1), NY, WEEKDAYS) == at(
        "2026-03-16T13:00Z")


def test_an_email_held_at_the_provider_counts_from_its_send_time():
    held_until = at("2026-03-10T15:00Z")    # handed over early, sent by the provider then
    now = at("2026-03-09T15:00Z")
    assert min_gap_until(held_until, DAY, now, NY, ALWAYS) == held_until + DAY
    # With no gap at all, the next one still never goes before the held one.
    assert min_gap_until(held_until, timedelta(0), now, NY, ALWAYS) == held_until
    assert min_gap_until(now, timedelta(0), now, NY, ALWAYS) is None


def _inside(instant, window):
    local = instant.astimezone(NY)
    minute = local.hour * 60 + local.minute
    return window.always or (local.weekday() in window.days
                             and window.start_minute <= minute < window.end_minute)


@given(last_offset=st.integers(-10 * 86400, 10 * 86400), gap_hours=st.integers(0, 96),
       window=st.sampled_from([ALWAYS, WEEKDAYS, parse_window("Sat,Sun 07:00-08:00")]))
def test_the_wait_is_a_whole_gap_and_inside_the_window(last_offset, gap_hours, window):
    now = at("2026-03-09T15:00Z")
    last, gap = now + timedelta(seconds=last_offset), timedelta(hours=gap_hours)
    later = min_gap_until(last, gap, now, NY, window)
    if now - last >= gap:
        assert later is None
        return
    assert later >= last + gap and later > now and _inside(later, window)
    if _inside(last + gap, window):
        assert later == last + gap
    else:
        assert not _inside(later - timedelta(minutes=1), window)   # the window's opening
