"""Clock trouble: a clock that steps backwards, a sender down for a week, DST on the way."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sender import subscribers
from sender.dispatch import send_due
from tests.conftest import at

SIGNUP = at("2026-03-02T18:00Z")


def test_clock_stepping_backwards_resends_nothing_and_loses_nothing(env, make_drip, project):
    drip = make_drip({**env, "DRIP_MIN_GAP": "0"})
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    assert send_due(drip, now=SIGNUP + timedelta(days=3, hours=2)).sent == 2   # welcome, one
    # The clock jumps back: nothing already sent goes again, nothing breaks.
    assert send_due(drip, now=SIGNUP + timedelta(days=1)).sent == 0
    assert send_due(drip, now=SIGNUP - timedelta(days=10)).sent == 0
    # When time moves on again the rest of the sequence goes out, once.
    assert send_due(drip, now=SIGNUP + timedelta(days=11)).sent == 1
    assert {d.state for d in drip.store.deliveries(subscriber_id=person.id)} == {"sent"}
    assert len(list((project / "outbox").glob("*.eml"))) == 3


def test_min_gap_holds_when_the_clock_went_backwards(drip):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    welcome_sent = SIGNUP + timedelta(days=3, hours=2)
    send_due(drip, now=welcome_sent)            # welcome goes; "one" is held by the gap
    # The clock steps back a day, to a moment before the welcome was sent.
    assert send_due(drip, now=welcome_sent - timedelta(days=1)).sent == 0
    rows = {d.step: d for d in drip.store.deliveries(subscriber_id=person.id)}
    assert rows["hello"].sent_at == welcome_sent
    assert rows["one"].state == "scheduled"
    assert rows["one"].due_at >= welcome_sent + timedelta(hours=20)


def test_week_of_downtime_across_a_dst_change_catches_up_one_a_day(env, make_drip, project):
    drip = make_drip({**env, "DRIP_SEND_WINDOW": "daily 09:00-17:00"})
    la = ZoneInfo("America/Los_Angeles")
    for n in range(5):
        subscribers.add_subscriber(drip, f"p{n}@example.com", now=at("2026-03-02T18:00Z"), confirmed=True)
    # Nothing ran from before the first email until after the last: three weeks, DST included.
    moment = at("2026-03-23T17:00Z")
    per_person_day = {}
    for _ in range(24 * 4):
        send_due(drip, now=moment)
        moment += timedelta(hours=1)
    for row in drip.store.deliveries(states=("sent",)):
        day = row.sent_at.astimezone(la).date()
        per_person_day.setdefault((row.subscriber_id, day), 0)
        per_person_day[(row.subscriber_id, day)] += 1
    assert max(per_person_day.values()) == 1          # never two emails to one person in a day
    assert {d.state for d in drip.store.deliveries()} == {"sent"}
    for row in drip.store.deliveries(campaign="course"):
        local = row.sent_at.astimezone(la)
        assert 9 <= local.hour < 17                    # still inside the local window
