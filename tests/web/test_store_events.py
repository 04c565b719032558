"""The store methods the web endpoints added, run over every engine in the contract suite."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.test_store_contract import ENGINES, NOW, add, schedule


@pytest.fixture(params=sorted(ENGINES))
def store(request, tmp_path):
    made = ENGINES[request.param](tmp_path, request)
    yield made
    made.close()


def test_events_are_recorded_once_per_provider_event_id(store):
    ana = add(store)
    schedule(store, ana, "s1")
    [delivery] = store.deliveries(subscriber_id=ana.id)
    kwargs = dict(provider="postmark", type="opened", occurred_at=NOW, received_at=NOW,
                  raw={"RecordType": "Open"}, delivery_id=delivery.id, subscriber_id=ana.id)
    assert store.add_event(**kwargs, provider_event_id="e1") is True
    assert store.add_event(**kwargs, provider_event_id="e1") is False
    assert store.add_event(**{**kwargs, "provider": "sendgrid"}, provider_event_id="e1") is True
    assert store.add_event(**kwargs) is True and store.add_event(**kwargs) is True
    events = store.events(delivery_id=delivery.id)
    assert len(events) == 4
    assert events[0]["raw"] == {"RecordType": "Open"} and events[0]["occurred_at"] == NOW
    assert store.events(type="bounced") == []


def test_events_summary_counts_distinct_deliveries(store):
    ana, bea = add(store), add(store, email="bea@example.com")
    schedule(store, ana, "s1")
    schedule(store, bea, "s1")
    rows = list(store.deliveries())
    for row in rows:
        store.update_delivery(row.id, state="sent", sent_at=NOW, provider_message_id=f"m{row.id}")
    for n, row in enumerate([rows[0], rows[0], rows[1]]):
        store.add_event(provider="p", type="opened", occurred_at=NOW, received_at=NOW, raw={},
                        delivery_id=row.id, provider_event_id=str(n))
    assert store.events_summary() == {("course", "s1"): {"sent": 2, "opened": 2}}
    assert store.find_delivery(f"m{rows[1].id}").id == rows[1].id
    assert store.find_delivery("nope") is None


def test_claim_due_for_one_subscriber(store):
    ana, bea = add(store), add(store, email="bea@example.com")
    schedule(store, ana, "s1")
    schedule(store, bea, "s1")
    [claimed] = store.claim_due(NOW, 10, subscriber_id=bea.id)
    assert claimed.subscriber_id == bea.id
    assert [d.subscriber_id for d in store.claim_due(NOW, 10)] == [ana.id]


def test_rate_limit_window(store):
    hit = dict(window_seconds=3600, limit=2)
    assert store.rate_limit("ip:1", now=NOW, **hit)
    assert store.rate_limit("ip:1", now=NOW + timedelta(minutes=30), **hit)
    assert not store.rate_limit("ip:1", now=NOW + timedelta(minutes=59), **hit)
    assert store.rate_limit("ip:2", now=NOW, **hit)
    assert store.rate_limit("ip:1", now=NOW + timedelta(minutes=61), **hit)
    assert not store.rate_limit("ip:1", now=NOW + timedelta(minutes=62), **hit)
