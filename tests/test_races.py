"""An unsubscribe or pause racing a batch that is being sent."""

from __future__ import annotations

import threading
import time

import pytest

from sender import subscribers
from sender.config import Settings
from sender.dispatch import SendReport, _send_batch, send_due
from sender.drip import Drip
from sender.providers.base import ACCEPTED, SendResult
from tests.conftest import at

SIGNUP = at("2026-03-02T18:00Z")


def test_unsubscribe_committed_after_claim_drops_the_message(drip, project):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    batch = drip.store.claim_due(SIGNUP, 10, pending_campaign="confirmation")
    assert [d.step for d in batch] == ["hello"]
    subscribers.unsubscribe(drip, person, now=SIGNUP)          # commits between claim and hand-off
    report = SendReport()
    _send_batch(drip, batch, SIGNUP, report, "confirmation")
    assert report.sent == 0 and report.skipped == 1
    assert not list((project / "outbox").glob("*.eml"))
    [row] = drip.store.deliveries(subscriber_id=person.id, campaign="welcome")
    assert row.state == "skipped" and row.last_error == "subscriber is unsubscribed"


def test_pause_committed_after_claim_puts_the_message_back(drip, project):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    batch = drip.store.claim_due(SIGNUP, 10, pending_campaign="confirmation")
    subscribers.pause(drip, person, now=SIGNUP)
    _send_batch(drip, batch, SIGNUP, SendReport(), "confirmation")
    [row] = drip.store.deliveries(subscriber_id=person.id, campaign="welcome")
    assert row.state == "scheduled"
    assert not list((project / "outbox").glob("*.eml"))


class SlowRecordingProvider:
    """Records when each message was handed over, and lets a racing unsubscribe start mid-call."""

    name = "recording"
    batch_size = 10
    max_schedule_ahead = None

    def __init__(self, on_send):
        self.on_send = on_send
        self.received = []

    def send(self, messages):
        self.received.append((time.monotonic(), [m.to.addr_spec for m in messages]))
        self.on_send()
        return [SendResult(m.delivery_id, ACCEPTED, provider_message_id="x") for m in messages]

    def reconcile(self, delivery, message_id):
        return "unknown", None

    def close(self):
        pass


@pytest.fixture(params=["sqlite", "postgres"])
def race_env(request, env):
    if request.param == "sqlite":
        return env
    url = request.getfixturevalue("postgres_url")
    return {**env, "DRIP_DATABASE": url}


def test_unsubscribe_arriving_during_hand_off_waits_for_it(race_env, make_drip):
    env = race_env
    started, committed = threading.Event(), threading.Event()
    seen = {}

    def race():
        other = Drip(Settings.from_env(env))   # its own connection, as the web server would have
        try:
            person = other.store.get_subscriber(email="ana@example.com")
            started.set()
            subscribers.unsubscribe(other, person, now=SIGNUP)
            committed.set()
        finally:
            other.close()

    threads = []

    def on_send():
        thread = threading.Thread(target=race)
        thread.start()
        threads.append(thread)
        started.wait(5)
        # While the hand-off is open the unsubscribe must not be able to commit. Give it
        # half a second to try (without the lock it commits in milliseconds).
        seen["committed_during_hand_off"] = committed.wait(0.5)

    provider = SlowRecordingProvider(on_send)
    drip = make_drip(env, provider=provider)
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    report = send_due(drip, now=SIGNUP)
    for thread in threads:
        thread.join(30)
    assert report.sent == 1
    assert seen["committed_during_hand_off"] is False
    assert committed.is_set()                      # and it went through right after
    later = send_due(drip, now=SIGNUP.replace(month=4))
    assert later.sent == 0 and len(provider.received) == 1
    states = {d.step: d.state for d in drip.store.deliveries()}
    assert states == {"hello": "sent", "one": "cancelled", "two": "cancelled"}


def test_erasure_committed_after_claim_drops_the_message(drip, project):
    from sender.lists import erase

    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    batch = drip.store.claim_due(SIGNUP, 10, pending_campaign="confirmation")
    erase(drip, "ana@example.com", now=SIGNUP)                # commits between claim and hand-off
    report = SendReport()
    _send_batch(drip, batch, SIGNUP, report, "confirmation")
    assert report.sent == 0
    assert not list((project / "outbox").glob("*.eml"))
    assert drip.store.get_subscriber(email="ana@example.com") is None
    assert list(drip.store.deliveries()) == []
