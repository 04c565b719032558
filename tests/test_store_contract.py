"""The storage contract: every engine must pass these (see sender/store/base.py).

Engines are listed in ``ENGINES``; each entry makes a fresh, empty store.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sender.errors import InvalidInput
from sender.models import Consent
from sender.store import SQLiteStore
from tests.conftest import at

NOW = at("2026-03-02T10:00Z")


def _sqlite(tmp_path, request):
    return SQLiteStore(tmp_path / "contract.db")


def _postgres(tmp_path, request):
    # A fresh database on the throwaway server from tests/pgserver.py (skipped with the
    # reason when PostgreSQL is not installed).
    from sender.store.postgres import PostgresStore

    return PostgresStore(request.getfixturevalue("postgres_url"))


ENGINES = {"sqlite": _sqlite, "postgres": _postgres}


@pytest.fixture(params=sorted(ENGINES))
def store(request, tmp_path):
    made = ENGINES[request.param](tmp_path, request)
    yield made
    made.close()


def add(store, email="ana@example.com", status="active", **kwargs):
    defaults = dict(name="Ana", timezone="Europe/Madrid", tags=["a"], fields={"stage": "postpartum"},
                    status=status, consent=Consent(source="form", at=NOW, text="v1", ip="127.0.0.1"),
                    now=NOW)
    defaults.update(kwargs)
    return store.add_subscriber(email, **defaults)


def schedule(store, subscriber, *steps, campaign="course", due=NOW):
    rows = [{"subscriber_id": subscriber.id, "campaign": campaign, "step": s, "due_at": due}
            for s in steps]
    return store.add_deliveries(rows, now=NOW)


def test_migrations_reach_latest(store):
    assert store.schema_version() >= 3


def test_subscriber_round_trip(store):
    person = add(store)
    again = store.get_subscriber(email="ana@example.com")
    assert again.id == person.id and again.uid == person.uid and len(person.uid) >= 16
    assert again.name == "Ana" and again.timezone == "Europe/Madrid"
    assert again.tags == ["a"] and again.fields == {"stage": "postpartum"}
    assert again.consent.source == "form" and again.consent.at == NOW
    assert again.consent.text == "v1" and again.consent.ip == "127.0.0.1"
    assert store.get_subscriber(uid=person.uid).email == "ana@example.com"
    assert store.get_subscriber(id=person.id).email == "ana@example.com"
    assert store.get_subscriber(email="nobody@example.com") is None


def test_email_is_unique(store):
    add(store)
    with pytest.raises(InvalidInput, match="already a subscriber"):
        add(store)
    assert store.subscriber_counts() == {"active": 1}


def test_update_subscriber(store):
    person = add(store)
    later = NOW + timedelta(hours=1)
    updated = store.update_subscriber(person.id, now=later, status="paused", paused_at=later,
                                      tags=["a", "b"], fields={"stage": "pregnant"})
    assert updated.status == "paused" and updated.paused_at == later
    assert updated.tags == ["a", "b"] and updated.fields == {"stage": "pregnant"}
    assert updated.updated_at == later


def test_list_and_filter(store):
    add(store, "a@example.com", tags=["x"])
    add(store, "b@example.com", status="pending", tags=["y"])
    add(store, "c@example.com", tags=["x", "y"])
    assert [p.email for p in store.list_subscribers()] == ["a@example.com", "b@example.com",
                                                           "c@example.com"]
    assert [p.email for p in store.list_subscribers(status="active")] == ["a@example.com",
                                                                          "c@example.com"]
    assert [p.email for p in store.list_subscribers(tag="y")] == ["b@example.com", "c@example.com"]
    assert [p.email for p in store.list_subscribers(limit=1)] == ["a@example.com"]
    assert store.subscriber_counts() == {"active": 2, "pending": 1}


def test_enrollment_once(store):
    person = add(store)
    assert store.enroll(person.id, "course", NOW) is not None
    assert store.enroll(person.id, "course", NOW + timedelta(days=1)) is None
    store.set_enrollment_shift(person.id, "course", 3600)
    [enrollment] = list(store.enrollments(subscriber_id=person.id))
    assert (enrollment.campaign, enrollment.enrolled_at, enrollment.shift_seconds) == \
        ("course", NOW, 3600)


def test_one_delivery_per_subscriber_campaign_step(store):
    person = add(store)
    assert schedule(store, person, "one", "two") == 2
    assert schedule(store, person, "one", "three") == 1
    rows = list(store.deliveries(subscriber_id=person.id))
    assert sorted(d.step for d in rows) == ["one", "three", "two"]


def test_claim_takes_due_rows_once(store):
    person = add(store)
    schedule(store, person, "one", due=NOW - timedelta(minutes=1))
    schedule(store, person, "later", due=NOW + timedelta(hours=1))
    first = store.claim_due(NOW, 10)
    assert [d.step for d in first] == ["one"]
    assert first[0].state == "sending" and first[0].claimed_at == NOW
    assert store.claim_due(NOW, 10) == []
    assert store.get_delivery(first[0].id).state == "sending"


def test_claim_respects_limit_and_order(store):
    person = add(store)
    for minutes in (5, 1, 3):
        schedule(store, person, f"s{minutes}", due=NOW - timedelta(minutes=minutes))
    assert [d.step for d in store.claim_due(NOW, 2)] == ["s5", "s3"]
    assert [d.step for d in store.claim_due(NOW, 2)] == ["s1"]


def test_claim_only_for_active_or_pending_confirmation(store):
    active = add(store, "a@example.com")
    paused = add(store, "p@example.com", status="paused")
    pending = add(store, "n@example.com", status="pending")
    for person in (active, paused, pending):
        schedule(store, person, "one", due=NOW)
    schedule(store, pending, "confirm", campaign="confirmation", due=NOW)
    claimed = store.claim_due(NOW, 10, pending_campaign="confirmation")
    assert sorted((d.subscriber_id, d.campaign) for d in claimed) == sorted(
        [(active.id, "course"), (pending.id, "confirmation")])


def test_skip_ended(store):
    gone = add(store, "gone@example.com", status="unsubscribed")
    schedule(store, gone, "one", due=NOW)
    schedule(store, gone, "two", due=NOW + timedelta(days=1))
    assert store.skip_ended(NOW) == 1
    states = {d.step: (d.state, d.last_error) for d in store.deliveries(subscriber_id=gone.id)}
    assert states == {"one": ("skipped", "subscriber is unsubscribed"), "two": ("scheduled", None)}


def test_update_delivery_with_expected_state(store):
    person = add(store)
    schedule(store, person, "one")
    [row] = store.claim_due(NOW, 1)
    assert store.update_delivery(row.id, expect_state="scheduled", state="sent") is False
    assert store.update_delivery(row.id, expect_state="sending", state="sent", sent_at=NOW,
                                 attempts=1, provider="outbox", provider_message_id="x")
    stored = store.get_delivery(row.id)
    assert (stored.state, stored.sent_at, stored.attempts, stored.provider_message_id) == \
        ("sent", NOW, 1, "x")


def test_cancel_pending_leaves_sent_alone(store):
    person = add(store)
    schedule(store, person, "one", "two")
    schedule(store, person, "x", campaign="other")
    [row] = store.claim_due(NOW, 1)
    store.update_delivery(row.id, state="sent", sent_at=NOW)
    assert store.cancel_pending(person.id, "why", campaign="course") == 1
    assert store.cancel_pending(person.id, "why") == 1
    states = sorted((d.campaign, d.step, d.state) for d in store.deliveries(subscriber_id=person.id))
    assert states == [("course", "one", "sent"), ("course", "two", "cancelled"),
                      ("other", "x", "cancelled")]


def test_stale_sending_and_counts(store):
    person = add(store)
    schedule(store, person, "one", "two", due=NOW)
    schedule(store, person, "three", due=NOW + timedelta(days=2))
    claimed = store.claim_due(NOW, 1)
    assert [d.id for d in store.stale_sending(NOW + timedelta(minutes=1))] == [claimed[0].id]
    assert store.stale_sending(NOW) == []
    assert store.delivery_counts() == {"scheduled": 2, "sending": 1}
    assert store.count_due(NOW) == 1
    assert store.next_due() == NOW


def test_last_sent_at(store):
    person = add(store)
    schedule(store, person, "one", "two")
    schedule(store, person, "confirm", campaign="confirmation")
    rows = {d.step: d for d in store.deliveries(subscriber_id=person.id)}
    store.update_delivery(rows["one"].id, state="sent", sent_at=NOW)
    store.update_delivery(rows["confirm"].id, state="sent", sent_at=NOW + timedelta(hours=1))
    assert store.last_sent_at(person.id) == NOW + timedelta(hours=1)
    assert store.last_sent_at(person.id, exclude_campaign="confirmation") == NOW


def test_transaction_rolls_back(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            add(store)
            raise RuntimeError("boom")
    assert store.get_subscriber(email="ana@example.com") is None


def test_meta(store):
    assert store.get_meta("k") is None
    store.set_meta("k", "1")
    store.set_meta("k", "2")
    assert store.get_meta("k") == "2"


# --- lists: bulk insert, pages, erasure, recent deliveries (sender/lists.py) -------------
def _rows(*emails, **extra):
    return [{"email": e, "name": e.split("@")[0], "timezone": None, "tags": ["imp"],
             "fields": {"src": "csv"}, "status": "active",
             "consent": Consent(source="old list", at=NOW), **extra} for e in emails]


def test_add_subscribers_in_bulk_leaves_existing_alone(store):
    add(store, "a@example.com", name="Original")
    signed = NOW - timedelta(days=30)
    assert store.add_subscribers(_rows("a@example.com", "b@example.com", "c@example.com",
                                       created_at=signed), now=NOW) == 2
    assert store.add_subscribers(_rows("b@example.com"), now=NOW) == 0
    assert store.add_subscribers([], now=NOW) == 0
    found = store.subscribers_by_email(["a@example.com", "b@example.com", "zz@example.com"])
    assert sorted(found) == ["a@example.com", "b@example.com"]
    assert found["a@example.com"].name == "Original"
    b = found["b@example.com"]
    assert (b.status, b.tags, b.fields, b.consent.source, b.consent.at, b.created_at) == \
        ("active", ["imp"], {"src": "csv"}, "old list", NOW, signed)
    assert len({p.uid for p in store.list_subscribers()}) == 3


def test_subscriber_page_filters_and_walks_in_id_order(store):
    store.add_subscribers(_rows(*(f"p{i}@example.com" for i in range(5))), now=NOW)
    add(store, "old@example.com", tags=["x"], status="paused")
    store.update_subscriber(store.get_subscriber(email="p1@example.com").id, now=NOW,
                            tags=["x"])
    first = store.subscriber_page(limit=2)
    second = store.subscriber_page(after_id=first[-1].id, limit=10)
    assert [p.email for p in first + second] == [f"p{i}@example.com" for i in range(5)] + \
        ["old@example.com"]
    assert [p.email for p in store.subscriber_page(tag="x")] == ["p1@example.com",
                                                                "old@example.com"]
    assert [p.email for p in store.subscriber_page(status="paused")] == ["old@example.com"]
    assert store.subscriber_page(created_from=NOW + timedelta(seconds=1)) == []
    assert len(store.subscriber_page(created_from=NOW, created_before=NOW + timedelta(1))) == 6


def test_erase_subscriber_removes_everything_but_the_hash(store):
    person = add(store)
    other = add(store, "bo@example.com")
    schedule(store, person, "one", "two")
    schedule(store, other, "one")
    store.enroll(person.id, "course", NOW)
    [delivery] = [d for d in store.deliveries(subscriber_id=person.id) if d.step == "one"]
    store.add_event(provider="outbox", type="opened", occurred_at=NOW, received_at=NOW,
                    raw={"to": "ana@example.com"}, delivery_id=delivery.id)
    store.add_event(provider="outbox", type="clicked", occurred_at=NOW, received_at=NOW,
                    raw={}, subscriber_id=person.id, provider_event_id="e2")
    deleted = store.erase_subscriber(person.id, erased_hash="h1", key_id="k1", now=NOW)
    assert deleted == {"deliveries": 2, "enrollments": 1, "events": 2}
    assert store.get_subscriber(email="ana@example.com") is None
    assert list(store.deliveries(subscriber_id=person.id)) == []
    assert list(store.enrollments(subscriber_id=person.id)) == []
    assert store.events() == []
    assert [d.subscriber_id for d in store.deliveries()] == [other.id]
    assert store.erased_hashes(["h1", "h2"]) == {"h1"}
    # Someone who was never on the list: only the hash is recorded.
    assert store.erase_subscriber(None, erased_hash="h2", key_id="k2", now=NOW) == \
        {"deliveries": 0, "enrollments": 0, "events": 0}
    assert store.erased_hashes(["h1", "h2", "h3"]) == {"h1", "h2"}
    assert store.erased_key_ids() == {"k1": 1, "k2": 1}


def test_last_deliveries_latest_first(store):
    person = add(store)
    for minutes in (5, 1, 3):
        schedule(store, person, f"s{minutes}", due=NOW - timedelta(minutes=minutes))
    for row in store.deliveries():
        store.update_delivery(row.id, state="failed", last_error="x")
    assert [d.step for d in store.last_deliveries("failed", 2)] == ["s1", "s3"]
    assert store.last_deliveries("sent", 5) == []


def test_migrations_match_between_engines():
    from sender.store.migrations import MIGRATIONS
    from sender.store.postgres import PG_MIGRATIONS

    assert [name for name, _ in PG_MIGRATIONS] == [m.__name__ for m in MIGRATIONS]


def test_claim_ahead_stamps_the_real_claim_time(store):
    person = add(store)
    schedule(store, person, "soon", due=NOW + timedelta(hours=20))
    assert store.claim_due(NOW, 10) == []
    [row] = store.claim_due(NOW, 10, due_by=NOW + timedelta(days=2))
    assert row.step == "soon" and row.claimed_at == NOW
    # So a crash during the hand-off is found by the usual claim timeout, not after the horizon.
    assert [d.id for d in store.stale_sending(NOW + timedelta(minutes=11))] == [row.id]
