"""The delivery ledger (sender/ledger.py): each transition stores its state, its reason code
and its message, holds only under its guard, and code decides by the code, never the words."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sender import ledger, subscribers
from sender.dispatch import send_due
from sender.models import Consent
from sender.providers.base import ACCEPTED, REJECTED, RETRY, SCHEDULED, Provider, SendResult
from sender.store import SQLiteStore
from tests.conftest import at

NOW = at("2026-03-02T18:00Z")            # Monday 10:00 in Los Angeles (the default zone)
LATER = NOW + timedelta(hours=2)


# --- each transition against both databases ------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "ledger.db")
    else:
        from sender.store.postgres import PostgresStore
        made = PostgresStore(request.getfixturevalue("postgres_url"))
    yield made
    made.close()


def person(store, email="ana@example.com"):
    return store.add_subscriber(email, name="Ana", timezone=None, tags=[], fields={},
                                status="active", now=NOW,
                                consent=Consent(source="form", at=NOW, text="v1", ip=None))


def scheduled(store, *steps, campaign="course"):
    who = person(store)
    assert ledger.schedule(store, [{"subscriber_id": who.id, "campaign": campaign, "step": s,
                                    "due_at": NOW} for s in steps], now=NOW) == len(steps)
    return who, {d.step: d for d in store.deliveries(subscriber_id=who.id)}


def claimed(store):
    scheduled(store, "one")
    [row] = ledger.claim(store, NOW, 10)
    assert (row.state, row.lease) == ("sending", row.lease) and row.lease
    return row


# What each transition of a claimed row stores: (operation, (state, reason, last_error)).
OUTCOMES = {
    "sent": (lambda s, d: ledger.sent(s, d, at=LATER, attempts=1, provider="outbox",
                                      provider_message_id="m-1"),
             ("sent", None, None)),
    "rejected": (lambda s, d: ledger.failed(s, d, ledger.REJECTED, "550 no such user",
                                            attempts=1, provider="outbox"),
                 ("failed", "rejected", "550 no such user")),
    "retry_later": (lambda s, d: ledger.retry_later(s, d, due=LATER, message="503", attempts=1,
                                                    provider="outbox"),
                    ("scheduled", "retrying", "503")),
    "unconfirmed": (lambda s, d: ledger.unconfirmed(s, d, "timed out", provider="outbox"),
                    ("sending", "unconfirmed", "timed out")),
    "hold": (lambda s, d: ledger.hold(s, d, ledger.TEMPLATE_ERROR, "waiting: fix it", due=LATER),
             ("scheduled", "template_error", "waiting: fix it")),
    "defer_for_gap": (lambda s, d: ledger.defer_for_gap(s, d, LATER), ("scheduled", "min_gap", None)),
    "skip": (lambda s, d: ledger.skip(s, d, ledger.SUBSCRIBER_CHANGED, "subscriber is paused"),
             ("skipped", "subscriber_changed", "subscriber is paused")),
    "cancel": (lambda s, d: ledger.cancel(s, d, ledger.STEP_GONE, "the step no longer exists"),
               ("cancelled", "step_gone", "the step no longer exists")),
    "send_again": (lambda s, d: ledger.send_again(s, d, ledger.NOT_RECEIVED, "never got it"),
                   ("scheduled", "not_received", "never got it")),
    "wait_for_decision": (lambda s, d: ledger.wait_for_decision(s, d, "decide"),
                          ("sending", "needs_decision", "decide")),
    "marked_sent": (lambda s, d: ledger.marked_sent(s, d, at=LATER, message="by the coach"),
                    ("sent", "resolved_sent", "by the coach")),
    "release": (lambda s, d: ledger.release(s, d), ("scheduled", None, None)),
}


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_each_outcome_of_a_claim_is_stored_with_its_code(store, outcome):
    operation, expected = OUTCOMES[outcome]
    row = claimed(store)
    assert ledger.handed(store, row, at=NOW, key="k-1")
    assert operation(store, row) is True
    after = store.get_delivery(row.id)
    assert (after.state, after.reason, after.last_error) == expected
    if outcome in ("retry_later", "send_again", "release"):   # the next hand-off: a new request
        assert (after.handed_at, after.handoff_key) == (None, None)


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_a_claim_taken_over_by_another_run_changes_nothing(store, outcome):
    operation, _ = OUTCOMES[outcome]
    row = claimed(store)
    [taken] = ledger.take_over_stale(store, NOW + timedelta(minutes=11), NOW + timedelta(minutes=11))
    assert taken.id == row.id and taken.lease != row.lease
    before = store.get_delivery(row.id)
    assert operation(store, row) is False
    assert store.get_delivery(row.id) == before


def test_rows_not_being_sent_change_only_in_the_state_they_were_read_in(store):
    who, rows = scheduled(store, "one", "two", "three")
    assert ledger.move(store, rows["one"], LATER) is True
    assert store.get_delivery(rows["one"].id).due_at == LATER
    ledger.claim(store, LATER, 10)                        # all three are being sent now
    assert ledger.move(store, rows["two"], NOW) is False
    assert ledger.cancel(store, rows["two"], ledger.STEP_GONE, "removed") is False
    assert store.get_delivery(rows["two"].id).state == "sending"
    # Held at the provider: only a row still sent with a future send time can be undone.
    [one, two, three] = [store.get_delivery(rows[s].id) for s in ("one", "two", "three")]
    assert ledger.sent(store, one, at=LATER + timedelta(days=1), attempts=1, provider="p",
                       provider_message_id="m-1")
    assert ledger.sent(store, two, at=LATER + timedelta(days=1), attempts=1, provider="p",
                       provider_message_id="m-2")
    held_one, held_two = store.get_delivery(one.id), store.get_delivery(two.id)
    assert ledger.held_rescheduled(store, held_one, "cancelled there by a pause") is True
    assert ledger.held_cancelled(store, held_one, ledger.UNSUBSCRIBED, "cancelled") is False
    one = store.get_delivery(one.id)
    assert (one.state, one.reason, one.sent_at, one.provider_message_id, one.attempts) == (
        "scheduled", "held_cancelled", None, None, 1)
    assert ledger.held_cancelled(store, held_two, ledger.SUPPRESSED, "cancelled there") is True
    two = store.get_delivery(two.id)
    assert (two.state, two.reason, two.sent_at) == ("cancelled", "suppressed", None)
    # A settled row is scheduled afresh only from the state it was read in.
    assert ledger.failed(store, three, ledger.GAVE_UP, "gave up", attempts=5, provider="p")
    settled = store.get_delivery(three.id)
    assert ledger.schedule_again(store, held_two, due=LATER) is False   # read while still sent
    assert ledger.schedule_again(store, settled, due=LATER) is True
    three = store.get_delivery(three.id)
    assert (three.state, three.due_at, three.attempts, three.reason, three.last_error) == (
        "scheduled", LATER, 0, None, None)


def test_a_signup_again_restores_by_the_code_not_the_words(store):
    who, rows = scheduled(store, "one", "two", "three", "four")
    # A provider-side unsubscribe writes its own words; the code is what counts (a step
    # removed with a message that happens to say "unsubscribed" stays cancelled).
    assert ledger.cancel(store, rows["three"], ledger.STEP_GONE, "unsubscribed") is True
    assert ledger.cancel_pending_for(store, who.id, ledger.UNSUBSCRIBED,
                                     "unsubscribed at postmark") == 3
    assert ledger.restore_after_resubscribe(store, who.id, campaign="course") == 3
    after = {d.step: (d.state, d.reason, d.last_error) for d in store.deliveries(subscriber_id=who.id)}
    assert after == {"one": ("scheduled", None, None), "two": ("scheduled", None, None),
                     "four": ("scheduled", None, None),
                     "three": ("cancelled", "step_gone", "unsubscribed")}


def test_a_bounce_is_never_undone_by_a_signup(store):
    who, rows = scheduled(store, "one")
    assert ledger.cancel_pending_for(store, who.id, ledger.SUPPRESSED, "unsubscribed words") == 1
    assert ledger.restore_after_resubscribe(store, who.id, campaign="course") == 0
    assert store.get_delivery(rows["one"].id).state == "cancelled"


def test_an_unknown_code_is_refused(store):
    row = claimed(store)
    with pytest.raises(ValueError, match="unknown reason code 'oops'"):
        ledger.skip(store, row, "oops", "text")
    assert store.get_delivery(row.id).state == "sending"


# --- the codes a run records ----------------------------------------------------------------
class Scripted(Provider):
    """A provider answering from a script (it stands in for a provider's API), able to hold
    mail for later and cancel it."""

    name = "scripted"
    batch_size = 10
    max_schedule_ahead = timedelta(days=3)

    def __init__(self, outcomes=()):
        self.outcomes = list(outcomes)
        self.cancelled = []

    def send(self, messages):
        results = []
        for message in messages:
            outcome, kwargs = self.outcomes.pop(0) if self.outcomes else (
                SCHEDULED if message.send_at else ACCEPTED, {})
            results.append(SendResult(message.delivery_id, outcome, **kwargs))
        return results

    def reconcile(self, delivery, message_id):
        return "unknown", None

    def cancel_scheduled(self, delivery):
        self.cancelled.append(delivery.id)
        return True


def rows_of(drip, who, campaign):
    return {d.step: d for d in drip.store.deliveries(subscriber_id=who.id, campaign=campaign)}


def test_a_refusal_and_giving_up_are_recorded_with_their_codes(env, make_drip):
    provider = Scripted([(REJECTED, {"error": "550 no such user"}), (RETRY, {"error": "503"})])
    drip = make_drip({**env, "DRIP_MAX_ATTEMPTS": "1"}, provider=provider)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    bea = subscribers.add_subscriber(drip, "bea@example.com", now=NOW, confirmed=True).subscriber
    report = send_due(drip, now=NOW)
    assert report.failed == 2
    [refused] = rows_of(drip, ana, "welcome").values()
    [given_up] = rows_of(drip, bea, "welcome").values()
    assert (refused.state, refused.reason, refused.last_error) == ("failed", "rejected",
                                                                   "550 no such user")
    assert (given_up.state, given_up.reason, given_up.last_error) == (
        "failed", "gave_up", "gave up after 1 attempts: 503")


def test_an_email_held_back_by_the_min_gap_says_so(env, make_drip):
    drip = make_drip({**env, "DRIP_MIN_GAP": "20h"}, provider=Scripted())
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    report = send_due(drip, now=NOW + timedelta(days=21))     # welcome, one and two all due
    assert (report.sent, report.deferred) == (1, 2)
    course = rows_of(drip, ana, "course")
    assert {(d.state, d.reason) for d in course.values()} == {("scheduled", "min_gap")}
    assert all(d.due_at >= NOW + timedelta(days=21, hours=20) for d in course.values())


def test_held_mail_cancelled_by_a_bounce_is_recorded_as_suppressed(env, make_drip):
    provider = Scripted()
    drip = make_drip(env, provider=provider)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    send_due(drip, now=NOW)                                           # the welcome email
    send_due(drip, now=NOW + timedelta(days=2), ahead=timedelta(days=2))
    [one] = [d for d in rows_of(drip, ana, "course").values() if d.step == "one"]
    assert one.state == "sent" and one.sent_at > NOW + timedelta(days=2)      # held there
    subscribers.suppress(drip, drip.store.get_subscriber(id=ana.id), "bounced",
                         now=NOW + timedelta(days=2), reason="postmark reported bounced")
    one = drip.store.get_delivery(one.id)
    assert provider.cancelled == [one.id]
    assert (one.state, one.reason, one.sent_at) == ("cancelled", "suppressed", None)


def test_a_confirmation_asked_for_again_carries_no_old_code(env, make_drip):
    drip = make_drip(env, provider=Scripted())
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=NOW).subscriber
    subscribers.confirm(drip, ana, now=NOW)        # confirmed before the email went out
    [confirmation] = rows_of(drip, ana, "confirmation").values()
    assert (confirmation.state, confirmation.reason) == ("cancelled", "confirmed")
    subscribers.unsubscribe(drip, drip.store.get_subscriber(id=ana.id), now=NOW)
    again = subscribers.add_subscriber(drip, "ana@example.com", now=LATER, resubscribe=True)
    assert again.subscriber.status == "pending" and again.confirmation_queued
    [confirmation] = rows_of(drip, ana, "confirmation").values()
    assert (confirmation.state, confirmation.reason, confirmation.attempts) == (
        "scheduled", None, 0)


def test_a_step_added_behind_her_is_recorded_skipped_with_its_code(store):
    who = person(store)
    row = {"subscriber_id": who.id, "campaign": "course", "step": "zero", "due_at": NOW,
           "message": "step added before a step already sent"}
    assert ledger.record_skipped(store, [row], now=NOW) == 1
    [stored] = store.deliveries(subscriber_id=who.id)
    assert (stored.state, stored.reason, stored.last_error) == (
        "skipped", ledger.STEP_ADDED_LATE, "step added before a step already sent")
