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


def test_last_sent(store):
    person, other, never = add(store), add(store, "other@example.com"), add(store, "never@example.com")
    schedule(store, person, "one", "two")
    schedule(store, other, "one")
    schedule(store, never, "one")
    schedule(store, person, "confirm", campaign="confirmation")
    rows = {d.step: d for d in store.deliveries(subscriber_id=person.id)}
    store.update_delivery(rows["one"].id, state="sent", sent_at=NOW)
    store.update_delivery(rows["confirm"].id, state="sent", sent_at=NOW + timedelta(hours=1))
    theirs = next(d for d in store.deliveries(subscriber_id=other.id))
    store.update_delivery(theirs.id, state="sent", sent_at=NOW - timedelta(days=2))
    everyone = [person.id, other.id, never.id]
    assert store.last_sent(everyone) == {person.id: NOW + timedelta(hours=1),
                                         other.id: NOW - timedelta(days=2)}
    assert store.last_sent(everyone, exclude_campaign="confirmation") == {
        person.id: NOW, other.id: NOW - timedelta(days=2)}
    assert store.last_sent([]) == {}


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


# --- claims as leases, hand-off marks, webhook tokens, rate-limit pruning -----------------------
def test_each_claim_carries_its_own_lease_and_only_it_may_write(store):
    person = add(store)
    schedule(store, person, "one", "two")
    first = store.claim_due(NOW, 1)
    second = store.claim_due(NOW, 1)
    assert first[0].lease and second[0].lease and first[0].lease != second[0].lease
    row = first[0]
    assert not store.update_delivery(row.id, expect_lease="someone-else", state="sent")
    assert store.update_delivery(row.id, expect_state="sending", expect_lease=row.lease,
                                 handed_at=NOW, handoff_key="req-1")
    again = store.get_delivery(row.id)
    assert (again.state, again.handed_at, again.handoff_key) == ("sending", NOW, "req-1")


def test_taking_over_stale_claims_is_exclusive_and_fences_the_old_claimer(store):
    person = add(store)
    schedule(store, person, "one", "two", "three")
    old = store.claim_due(NOW, 2)
    later = NOW + timedelta(minutes=20)
    taken = store.take_over_stale(NOW + timedelta(minutes=10), later)
    assert sorted(d.id for d in taken) == sorted(d.id for d in old)
    assert {d.claimed_at for d in taken} == {later}
    assert {d.lease for d in taken} != {d.lease for d in old}
    # A second recovery finds nothing left to take; the first claimer's writes no longer match.
    assert store.take_over_stale(NOW + timedelta(minutes=10), later) == []
    assert not store.update_delivery(old[0].id, expect_state="sending", expect_lease=old[0].lease,
                                     state="scheduled")
    assert store.update_delivery(taken[0].id, expect_state="sending", expect_lease=taken[0].lease,
                                 state="scheduled")


def test_a_new_claim_clears_the_last_hand_off(store):
    person = add(store)
    schedule(store, person, "one")
    [row] = store.claim_due(NOW, 1)
    store.update_delivery(row.id, expect_lease=row.lease, handed_at=NOW, handoff_key="k")
    store.update_delivery(row.id, expect_lease=row.lease, state="scheduled")   # a retry
    [again] = store.claim_due(NOW + timedelta(minutes=1), 1)
    assert (again.handed_at, again.handoff_key) == (None, None)


def test_cancel_pending_stores_the_reason_code(store):
    person = add(store)
    schedule(store, person, "one")
    store.cancel_pending(person.id, "unsubscribed at postmark", code="unsubscribed")
    [row] = store.deliveries(subscriber_id=person.id)
    assert (row.state, row.reason, row.last_error) == ("cancelled", "unsubscribed",
                                                       "unsubscribed at postmark")


def test_webhook_tokens_are_accepted_once_and_forgotten_later(store):
    assert store.remember_token("mailgun", "tok-1", now=NOW, keep_seconds=3600)
    assert not store.remember_token("mailgun", "tok-1", now=NOW, keep_seconds=3600)
    assert store.remember_token("sendgrid", "tok-1", now=NOW, keep_seconds=3600)
    later = NOW + timedelta(hours=2)
    assert store.remember_token("mailgun", "tok-2", now=later, keep_seconds=3600)
    assert store.remember_token("mailgun", "tok-1", now=later, keep_seconds=3600)  # pruned


def test_rate_hits_are_pruned_and_erased_by_key(store):
    for key in ("ip:10.0.0.1", "email:ana@example.com", "email:bo@example.com"):
        assert store.rate_limit(key, now=NOW, window_seconds=3600, limit=5)
    assert store.forget_rate_hits(keys=["email:ana@example.com", "ip:10.0.0.1"]) == 2
    assert store.rate_limit("email:cy@example.com", now=NOW + timedelta(hours=3),
                            window_seconds=3600, limit=5)
    assert store.forget_rate_hits(before=NOW + timedelta(hours=1)) == 1   # bo's first hit


# --- the complaint and bounce brake (sender/brake.py) ----------------------------------------
def test_a_braked_campaign_is_never_claimed_counted_due_or_next(store):
    ana, bo = add(store), add(store, "bo@example.com")
    schedule(store, ana, "one", "two", campaign="course", due=NOW - timedelta(minutes=5))
    schedule(store, bo, "hello", campaign="welcome", due=NOW - timedelta(minutes=1))
    assert store.brake_campaign("course", reason="complaints", details={"sent": 40}, now=NOW)
    assert not store.brake_campaign("course", reason="again", details={}, now=NOW)  # already
    assert store.count_due(NOW) == 1
    assert store.next_due() == NOW - timedelta(minutes=1)
    claimed = store.claim_due(NOW, 10)
    assert [(d.campaign, d.step) for d in claimed] == [("welcome", "hello")]
    assert store.claim_due(NOW, 10, subscriber_id=ana.id) == []
    assert store.claim_due(NOW, 10, due_by=NOW + timedelta(days=1)) == []
    assert {d.state for d in store.deliveries(campaign="course")} == {"scheduled"}   # waiting
    [brake] = store.campaign_brakes()
    assert (brake["campaign"], brake["reason"], brake["details"], brake["braked_at"],
            brake["resumed_at"], brake["waiting"]) == ("course", "complaints", {"sent": 40}, NOW,
                                                       None, 2)
    later = NOW + timedelta(hours=1)
    assert store.resume_campaign("course", now=later)
    assert not store.resume_campaign("course", now=later)       # not braked any more
    assert not store.resume_campaign("welcome", now=later)      # never braked
    assert store.campaign_brakes()[0]["resumed_at"] == later
    assert store.count_due(NOW) == 2
    assert [d.step for d in store.claim_due(NOW, 10)] == ["one", "two"]
    # Braked again later: a new episode, from its own time.
    assert store.brake_campaign("course", reason="bounces", details={}, now=later)
    assert store.campaign_brakes()[0]["resumed_at"] is None
    assert store.campaign_brakes()[0]["reason"] == "bounces"


def test_campaign_health_counts_sent_complaints_and_bounces_in_a_window(store):
    people = [add(store, f"p{n}@example.com") for n in range(5)]
    for person in people:
        schedule(store, person, "one", campaign="course")
        schedule(store, person, "hello", campaign="welcome")
    rows = {(d.subscriber_id, d.campaign): d for d in store.deliveries()}
    for n, person in enumerate(people):
        for campaign in ("course", "welcome"):
            store.update_delivery(rows[(person.id, campaign)].id, state="sent",
                                  sent_at=NOW - timedelta(days=n))
    course = [rows[(p.id, "course")] for p in people]

    def event(delivery, kind, key):
        store.add_event(provider="postmark", type=kind, occurred_at=NOW, received_at=NOW, raw={},
                        delivery_id=delivery.id, subscriber_id=delivery.subscriber_id,
                        provider_event_id=key)

    event(course[0], "complained", "c0")
    event(course[0], "complained", "c0-again")       # the same email: counted once
    event(course[1], "bounced", "b1")
    event(course[4], "complained", "c4")             # sent four days ago
    event(rows[(people[2].id, "welcome")], "complained", "w2")    # another campaign
    assert store.campaign_health("course", since=NOW - timedelta(days=3), until=NOW) == {
        "sent": 4, "complained": 1, "bounced": 1}
    assert store.campaign_health("course", since=NOW - timedelta(days=7), until=NOW) == {
        "sent": 5, "complained": 2, "bounced": 1}
    assert store.campaign_health("welcome", since=NOW - timedelta(days=7), until=NOW) == {
        "sent": 5, "complained": 1, "bounced": 0}
    assert store.campaign_health("nothing", since=NOW - timedelta(days=7), until=NOW) == {
        "sent": 0, "complained": 0, "bounced": 0}


def test_renewing_a_lease_keeps_a_long_batch_fresh(store):
    person = add(store)
    schedule(store, person, "one", "two", "three")
    batch = store.claim_due(NOW, 2)
    other = store.claim_due(NOW, 1)
    later = NOW + timedelta(minutes=30)
    assert store.renew_lease(batch[0].lease, later) == 2
    # Only the other claim looks stale now; a row recorded already is not renewed.
    assert [d.id for d in store.stale_sending(NOW + timedelta(minutes=10))] == [other[0].id]
    store.update_delivery(batch[0].id, expect_lease=batch[0].lease, state="sent")
    assert store.renew_lease(batch[0].lease, later) == 1


# --- the admin dashboard (sender/web/admin) ---------------------------------------------------
def test_admin_passwords_are_stored_per_name_and_replaced(store):
    assert store.has_admin_users() is False
    assert store.admin_password("coach") is None
    store.set_admin_password("coach", "$argon2id$one", now=NOW)
    store.set_admin_password("coach", "$argon2id$two", now=NOW + timedelta(hours=1))
    store.set_admin_password("helper", "$argon2id$three", now=NOW)
    assert store.has_admin_users() is True
    assert store.admin_password("coach") == "$argon2id$two"
    assert store.admin_password("helper") == "$argon2id$three"
    assert store.admin_password("Coach") is None


def test_admin_sessions_are_looked_up_touched_and_ended(store):
    store.add_admin_session("hash-a", name="coach", csrf="csrf-a", now=NOW)
    store.add_admin_session("hash-b", name="coach", csrf="csrf-b", now=NOW)
    store.add_admin_session("hash-c", name="helper", csrf="csrf-c", now=NOW - timedelta(hours=2))
    assert store.admin_session("hash-a") == {"name": "coach", "csrf": "csrf-a", "created_at": NOW,
                                             "seen_at": NOW}
    assert store.admin_session("nothing") is None
    later = NOW + timedelta(minutes=5)
    store.touch_admin_session("hash-a", now=later)
    assert store.admin_session("hash-a")["seen_at"] == later
    assert store.admin_session("hash-a")["created_at"] == NOW
    # Pruning the idle ones, then one session, then every session of a name.
    assert store.end_admin_sessions(seen_before=NOW - timedelta(hours=1)) == 1
    assert store.admin_session("hash-c") is None
    assert store.end_admin_sessions(token_hash="hash-a") == 1
    assert store.admin_session("hash-a") is None and store.admin_session("hash-b") is not None
    assert store.end_admin_sessions(name="coach") == 1
    assert store.admin_session("hash-b") is None


def test_the_audit_log_keeps_who_did_what_and_when_newest_first(store):
    person = add(store)
    first = store.add_audit(at=NOW, user="coach", action="login", ip="127.0.0.1")
    store.add_audit(at=NOW + timedelta(minutes=1), user="coach", action="pause",
                    subscriber_id=person.id, details={"cancelled": 0})
    store.add_audit(at=NOW + timedelta(minutes=2), user="helper", action="campaign resume",
                    target="course")
    entries = store.audit_log(limit=10)
    assert [(e["user"], e["action"]) for e in entries] == [
        ("helper", "campaign resume"), ("coach", "pause"), ("coach", "login")]
    assert entries[0]["target"] == "course" and entries[0]["subscriber_id"] is None
    assert entries[1]["at"] == NOW + timedelta(minutes=1) and entries[1]["details"] == {"cancelled": 0}
    assert entries[2]["ip"] == "127.0.0.1" and entries[2]["id"] == first
    assert [e["action"] for e in store.audit_log(limit=10, subscriber_id=person.id)] == ["pause"]
    assert [e["action"] for e in store.audit_log(limit=1, before_id=entries[0]["id"])] == ["pause"]
    # An erasure leaves the entries (they hold the id only, never the address).
    store.erase_subscriber(person.id, erased_hash="h", key_id="k", now=NOW)
    assert [e["action"] for e in store.audit_log(limit=10, subscriber_id=person.id)] == ["pause"]


def test_period_counts_count_each_span_between_its_edges(store):
    day = timedelta(days=1)
    rows = [{"email": f"p{i}@example.com", "status": "active", "created_at": NOW + i * day,
             "consent": Consent(source="t", at=NOW, confirmed_at=NOW + (i + 1) * day)}
            for i in range(4)]
    store.add_subscribers(rows, now=NOW)
    people = store.subscriber_page()
    store.update_subscriber(people[0].id, now=NOW, withdrawn_at=NOW + 2 * day + timedelta(hours=5))
    store.update_subscriber(people[1].id, now=NOW, confirmed_at=None)
    schedule(store, people[0], "a", due=NOW)
    schedule(store, people[1], "a", "b", due=NOW + day)
    schedule(store, people[2], "a", due=NOW + 3 * day)
    for row in store.deliveries(subscriber_id=people[0].id):
        store.update_delivery(row.id, state="sent", sent_at=NOW + timedelta(hours=1))
    edges = [NOW + i * day for i in range(5)]        # four days
    assert store.period_counts("signups", edges) == [1, 1, 1, 1]
    assert store.period_counts("confirmations", edges) == [0, 1, 0, 1]   # p1 unconfirmed
    assert store.period_counts("unsubscribes", edges) == [0, 0, 1, 0]
    assert store.period_counts("sent", edges) == [1, 0, 0, 0]
    assert store.period_counts("due", edges) == [0, 2, 0, 1]            # scheduled only
    assert store.period_counts("signups", [NOW, NOW + 10 * day]) == [4]
    assert store.period_counts("signups", [NOW]) == []
    with pytest.raises(ValueError):
        store.period_counts("subscribers; DROP TABLE subscribers", edges)


def test_subscriber_page_searches_text_within_an_id_window(store):
    add(store, "ana.lopez@example.com", name="Ana López")
    add(store, "bo@example.com", name="Bo Ana")
    add(store, "cy@example.com", name="Cy", status="paused")
    add(store, "dee@anamail.example", name="Dee")
    ids = [p.id for p in store.subscriber_page()]
    assert [p.email for p in store.subscriber_page(text="ana")] == [
        "ana.lopez@example.com", "bo@example.com", "dee@anamail.example"]
    assert [p.email for p in store.subscriber_page(text="LÓPEZ")] == ["ana.lopez@example.com"]
    assert [p.email for p in store.subscriber_page(text="ANA", limit=1)] == ["ana.lopez@example.com"]
    assert [p.email for p in store.subscriber_page(text="%")] == []           # not a wildcard
    assert [p.email for p in store.subscriber_page(text="_")] == []
    assert [p.email for p in store.subscriber_page(after_id=ids[0], until_id=ids[2])] == [
        "bo@example.com", "cy@example.com"]
    assert [p.email for p in store.subscriber_page(text="ana", until_id=ids[2])] == [
        "ana.lopez@example.com", "bo@example.com"]
    assert [p.email for p in store.subscriber_page(text="cy", status="paused")] == ["cy@example.com"]


def test_count_subscribers_by_status_agrees_with_the_grouped_counts(store):
    add(store, "a@example.com")
    add(store, "b@example.com", status="paused")
    add(store, "c@example.com")
    assert [store.count_subscribers(s) for s in ("active", "paused", "pending")] == [2, 1, 0]
    assert store.subscriber_counts() == {"active": 2, "paused": 1}


def test_next_steps_count_each_persons_earliest_scheduled_email(store):
    ana, bo, cy = add(store), add(store, "bo@example.com"), add(store, "cy@example.com")
    for person, start in ((ana, NOW), (bo, NOW), (cy, NOW)):
        store.add_deliveries([{"subscriber_id": person.id, "campaign": "course", "step": s,
                               "due_at": start + timedelta(days=i)}
                              for i, s in enumerate(("one", "two", "three"))], now=NOW)
    [ana_one] = [d for d in store.deliveries(subscriber_id=ana.id) if d.step == "one"]
    store.update_delivery(ana_one.id, state="sent", sent_at=NOW)
    store.cancel_pending(cy.id, "gone", code="unsubscribed")
    schedule(store, cy, "hello", campaign="welcome")
    assert store.next_steps("course") == {"one": 1, "two": 1}
    assert store.next_steps("welcome") == {"hello": 1}
    assert store.next_steps("nothing") == {}


def test_a_taken_over_row_no_longer_waits_for_a_decision(store):
    """While a recovery settles a row it is not open to `drip resolve`: the takeover clears
    the needs-decision mark, which the recovery sets again only if it cannot tell."""
    person = add(store)
    schedule(store, person, "one")
    [row] = store.claim_due(NOW, 1)
    store.update_delivery(row.id, expect_lease=row.lease, handed_at=NOW, reason="needs_decision")
    [taken] = store.take_over_stale(NOW + timedelta(minutes=11), NOW + timedelta(minutes=20))
    assert taken.reason is None and store.get_delivery(row.id).reason is None
