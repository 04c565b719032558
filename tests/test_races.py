"""An unsubscribe or pause racing a batch that is being sent."""

from __future__ import annotations

import threading
import time

import pytest

from sender import subscribers
from sender.config import Settings
from sender.dispatch import SendReport, _send_batch, send_due
from sender.drip import Drip
from sender.providers.base import ACCEPTED, Provider, SendResult
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


class SlowRecordingProvider(Provider):
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


def test_unsubscribe_during_a_slow_hand_off_commits_at_once(race_env, make_drip):
    """The provider call holds no database lock: an unsubscribe that arrives while the provider
    is still answering commits at once. The message in flight was marked handed before it, so
    it counts as sent before the unsubscribe; nothing is handed over after it."""
    env = race_env
    committed = threading.Event()
    seen = {}

    def race():
        other = Drip(Settings.from_env(env))   # its own connection, as the web server would have
        try:
            person = other.store.get_subscriber(email="ana@example.com")
            subscribers.unsubscribe(other, person, now=SIGNUP)
            committed.set()
        finally:
            other.close()

    def on_send():
        thread = threading.Thread(target=race)
        thread.start()
        # The provider has not answered yet; the unsubscribe must not wait for it.
        seen["committed_during_hand_off"] = committed.wait(10)
        thread.join(10)

    provider = SlowRecordingProvider(on_send)
    drip = make_drip(env, provider=provider)
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    report = send_due(drip, now=SIGNUP)
    assert seen["committed_during_hand_off"] is True
    assert report.sent == 1
    later = send_due(drip, now=SIGNUP.replace(month=4))
    assert later.sent == 0 and len(provider.received) == 1
    states = {d.step: d.state for d in drip.store.deliveries()}
    assert states == {"hello": "sent", "one": "cancelled", "two": "cancelled"}
    assert drip.store.get_subscriber(email="ana@example.com").status == "unsubscribed"


def test_erasure_committed_after_claim_drops_the_message(drip, project):
    from sender.erasure import erase

    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    batch = drip.store.claim_due(SIGNUP, 10, pending_campaign="confirmation")
    erase(drip, "ana@example.com", now=SIGNUP)                # commits between claim and hand-off
    report = SendReport()
    _send_batch(drip, batch, SIGNUP, report, "confirmation")
    assert report.sent == 0
    assert not list((project / "outbox").glob("*.eml"))
    assert drip.store.get_subscriber(email="ana@example.com") is None
    assert list(drip.store.deliveries()) == []


class OneAtATime(Provider):
    """Sends one message per request (like SMTP, or SendGrid with one connection) and calls
    ``during(n, message)`` while the n-th request is in flight."""

    name = "one-at-a-time"
    batch_size = 10

    def __init__(self, during=None, reconcile_as="not_sent"):
        self.during = during or (lambda n, message: None)
        self.reconcile_as = reconcile_as
        self.received = []

    def handoff_chunks(self, messages):
        return [[m] for m in messages]

    def send(self, messages):
        results = []
        for message in messages:
            self.during(len(self.received), message)
            self.received.append(message.to.addr_spec)
            results.append(SendResult(message.delivery_id, ACCEPTED, provider_message_id="x"))
        return results

    def reconcile(self, delivery, message_id):
        return self.reconcile_as, None


def test_an_unsubscribe_stops_the_rest_of_her_batch(race_env, make_drip):
    """Requests go one at a time: an unsubscribe that commits while the first is in flight
    stops her email later in the same batch (each hand-off re-reads the status)."""
    env = race_env

    def unsubscribe_cy(n, message):
        if n == 0:
            other = Drip(Settings.from_env(env))
            try:
                subscribers.unsubscribe(other, subscribers.get(other, "cy@example.com"), now=SIGNUP)
            finally:
                other.close()

    provider = OneAtATime(unsubscribe_cy)
    drip = make_drip(env, provider=provider)
    for name in ("ana", "bo", "cy"):
        subscribers.add_subscriber(drip, f"{name}@example.com", now=SIGNUP, confirmed=True)
    report = send_due(drip, now=SIGNUP)
    assert provider.received == ["ana@example.com", "bo@example.com"]
    assert report.sent == 2 and report.skipped == 1
    cy = subscribers.get(drip, "cy@example.com")
    assert {d.state for d in drip.store.deliveries(subscriber_id=cy.id)} <= {"skipped", "cancelled"}


def test_a_long_run_keeps_its_later_claims_fresh(race_env, make_drip):
    """A run that has been sending for longer than DRIP_CLAIM_TIMEOUT claims its next batch
    with the time it really is, so a second run started then does not take that batch for
    an abandoned one (and resend it while the first run's request is still in flight)."""
    env = {**race_env, "DRIP_CLAIM_TIMEOUT": "10m"}
    in_flight, second_done = threading.Event(), threading.Event()
    elapsed = {"seconds": 0.0}

    def slow_second_batch(n, message):
        if n == 2:                      # the first request of the second batch
            in_flight.set()
            second_done.wait(30)

    first = OneAtATime(slow_second_batch)
    first.batch_size = 2
    drip = make_drip(env, provider=first)
    for name in ("ana", "bo", "cy", "di"):
        subscribers.add_subscriber(drip, f"{name}@example.com", now=SIGNUP, confirmed=True)

    def clock():
        return elapsed["seconds"]

    def run_first():
        own = Drip(Settings.from_env(env), provider=first)
        try:
            send_due(own, now=SIGNUP, clock=clock,
                     progress=lambda n: elapsed.update(seconds=elapsed["seconds"] + 15 * 60))
        finally:
            own.close()

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert in_flight.wait(30)
        # Fifteen minutes into the first run, a second run starts (cron, a worker).
        second = OneAtATime(reconcile_as="not_sent")
        report = send_due(make_drip(env, provider=second), now=SIGNUP.replace(minute=16))
        assert second.received == [] and report.recovered == 0, (second.received, report)
    finally:
        second_done.set()
        thread.join(30)
    assert sorted(first.received) == ["ana@example.com", "bo@example.com", "cy@example.com",
                                      "di@example.com"]
    rows = [d for d in make_drip(env).store.deliveries() if d.campaign == "welcome"]
    assert {d.state for d in rows} == {"sent"}
