"""One subscriber's timeline (sender/timeline.py): every email with its local and UTC time,
its state and the why that is stored with it."""

from __future__ import annotations

from datetime import timedelta

from sender import dispatch, subscribers
from sender.brake import resume
from sender.events import record_unsubscribe
from sender.timeline import timeline
from tests.conftest import at

NOW = at("2026-03-02T18:00Z")     # a Monday, 10:00 in Los Angeles


def steps(line):
    return [(e.campaign, e.step, e.state) for e in line.entries]


def test_each_email_has_its_times_state_subject_and_why(drip):
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, name="Ana",
                                     timezone="Europe/Madrid", confirmed=True).subscriber
    dispatch.send_due(drip, now=NOW)
    line = timeline(drip, ana, now=NOW)
    assert line.zone == "Europe/Madrid"
    assert steps(line) == [("welcome", "hello", "sent"), ("course", "one", "scheduled"),
                           ("course", "two", "scheduled")]
    hello, one, _ = line.entries
    assert hello.subject == "Welcome, Ana" and hello.why == "sent through outbox"
    assert hello.sent.utc == NOW and hello.sent.local.utcoffset() == timedelta(hours=1)
    stored = {d.step: d for d in drip.store.deliveries(subscriber_id=ana.id)}
    assert one.due.utc == stored["one"].due_at
    assert one.due.local == stored["one"].due_at.astimezone(one.due.local.tzinfo)
    assert one.due.local.tzinfo.key == "Europe/Madrid"
    assert one.why == "scheduled" and one.subject == "Lesson one"
    data = line.to_dict()
    assert data["entries"][1]["due"]["utc"] == stored["one"].due_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data["entries"][1]["due"]["local"].endswith("+01:00")


def test_the_why_follows_pause_unsubscribe_and_provider_events(drip):
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    dispatch.send_due(drip, now=NOW)
    subscribers.pause(drip, ana, now=NOW)
    paused = drip.store.get_subscriber(id=ana.id)
    held = [e.why for e in timeline(drip, paused, now=NOW).pending]
    assert held == ["held while she is paused; resuming moves it later by the time paused"] * 2

    subscribers.resume(drip, paused, now=NOW + timedelta(days=1))
    [hello] = [d for d in drip.store.deliveries(subscriber_id=ana.id) if d.step == "hello"]
    drip.store.add_event(provider="outbox", type="opened", occurred_at=NOW + timedelta(hours=2),
                         received_at=NOW + timedelta(hours=2), raw={}, delivery_id=hello.id,
                         subscriber_id=ana.id)
    record_unsubscribe(drip, drip.store.get_subscriber(id=ana.id), now=NOW + timedelta(days=2))
    line = timeline(drip, drip.store.get_subscriber(id=ana.id), now=NOW + timedelta(days=2))
    assert steps(line) == [("welcome", "hello", "sent"), ("course", "one", "cancelled"),
                           ("course", "two", "cancelled")]
    first, one, _ = line.entries
    assert [(e["type"], e["provider"]) for e in first.events] == [("opened", "outbox"),
                                                                   ("unsubscribed", "drip")]
    assert one.reason == "unsubscribed" and one.why == "cancelled because she unsubscribed"
    assert one.last_error == "unsubscribed"
    assert line.other_events == []


def test_waiting_mail_says_what_holds_it(drip):
    bo = subscribers.add_subscriber(drip, "bo@example.com", now=NOW).subscriber
    [confirm] = timeline(drip, bo, now=NOW).entries
    assert confirm.campaign == "confirmation" and confirm.why.startswith("due now")
    subscribers.confirm(drip, bo, now=NOW)
    bo = drip.store.get_subscriber(id=bo.id)
    drip.store.brake_campaign("course", reason="complaints", details={}, now=NOW)
    line = timeline(drip, bo, now=NOW)
    by_step = {e.step: e for e in line.entries}
    assert by_step["confirm"].why == "no longer needed: she confirmed"
    assert by_step["one"].why == "waits: its campaign is paused by the complaint brake"
    assert by_step["hello"].why.startswith("due now")
    resume(drip, "course", now=NOW)
    [row] = [d for d in drip.store.deliveries(subscriber_id=bo.id) if d.step == "one"]
    drip.store.update_delivery(row.id, reason="template_error", last_error="line 3: oops")
    by_step = {e.step: e for e in timeline(drip, bo, now=NOW).entries}
    assert by_step["one"].why == "waiting: its template does not render (fix the file)"
    assert by_step["one"].last_error == "line 3: oops"


def test_every_reason_code_reads_as_a_sentence():
    from sender import ledger
    from sender.timeline import REASON_TEXT

    assert set(REASON_TEXT) == set(ledger.REASONS)


def test_a_refused_email_shows_the_providers_words(drip):
    from sender import ledger

    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    [row] = [d for d in drip.store.deliveries(subscriber_id=ana.id) if d.step == "hello"]
    drip.store.update_delivery(row.id, state="failed", reason=ledger.REJECTED,
                               last_error="postmark: 406 inactive recipient")
    drip.store.update_delivery(
        next(d.id for d in drip.store.deliveries(subscriber_id=ana.id) if d.step == "one"),
        state="sent", sent_at=NOW, reason=ledger.RESOLVED_SENT)
    by_step = {e.step: e for e in timeline(drip, ana, now=NOW).entries}
    assert by_step["hello"].why == "failed: the provider refused it: postmark: 406 inactive recipient"
    assert by_step["one"].why == "marked as sent by the coach (`drip resolve`)"
