"""A signup's response time says nothing about whether the address is on the list.

The provider is a loopback Postmark API answering after 200 ms. The confirmation
goes out from the app's background sender, so a new address is answered as fast as
one already on the list, and every new address still gets its confirmation.
"""

from __future__ import annotations

import statistics
import time

import requests

from sender import subscribers
from tests.providers.loopback import FakeApi, Reply, speaks

LATENCY = 0.2
ROUNDS = 20
MAX_MEDIAN_GAP = 0.015


def test_new_and_existing_addresses_are_answered_alike(start_server):
    api = FakeApi()
    api.default = speaks("postmark")
    try:
        server = start_server(DRIP_PROVIDER="postmark", POSTMARK_SERVER_TOKEN="pm-token",
                              POSTMARK_API_URL=api.url)
        drip = server.drip()
        known = [f"known{i}@example.com" for i in range(ROUNDS)]
        for address in known:
            subscribers.add_subscriber(drip, address, now=server.clock.now, confirmed=True,
                                       consent_source="import")
        fresh = [f"new{i}@example.com" for i in range(ROUNDS)]
        timings = {"new": [], "known": []}
        api.latency = LATENCY
        with requests.Session() as session:
            def post(address):
                started = time.perf_counter()
                answer = session.post(f"{server.url}/subscribe", timeout=10,
                                      data={"email": address, "consent": "yes"})
                elapsed = time.perf_counter() - started
                assert answer.status_code == 200
                return answer.text, elapsed

            warm_up, _ = post("warm-up@example.com")
            for new, old in zip(fresh, known, strict=True):
                text, elapsed = post(new)
                timings["new"].append(elapsed)
                assert text == warm_up
                text, elapsed = post(old)
                timings["known"].append(elapsed)
                assert text == warm_up
        api.latency = 0
        server.drain()
        gap = abs(statistics.median(timings["new"]) - statistics.median(timings["known"]))
        assert gap < MAX_MEDIAN_GAP, {k: [round(t * 1000, 1) for t in v]
                                      for k, v in timings.items()}
        sent_to = {item["To"] for seen in api.requests if seen.path == "/email/batch"
                   for item in seen.json()}
        assert set(fresh) <= sent_to
        assert not sent_to & set(known)
        drip = server.drip()
        for address in fresh:
            person = drip.store.get_subscriber(email=address)
            [confirmation] = drip.store.deliveries(subscriber_id=person.id)
            assert (confirmation.campaign, confirmation.state) == ("confirmation", "sent")
    finally:
        api.close()


def test_bad_details_are_refused_alike_for_known_and_new_addresses(server):
    drip = server.drip()
    subscribers.add_subscriber(drip, "known@example.com", now=server.clock.now, confirmed=True,
                               consent_source="import")
    for bad in ({"name": "=?utf-8?q?x?="}, {"timezone": "Mars/Olympus_Mons"},
                {"city": "Oslo\x0b"}):
        answers = [requests.post(f"{server.url}/subscribe", timeout=10,
                                 data={"email": address, "consent": "yes", **bad})
                   for address in ("known@example.com", "unknown@example.com")]
        assert [a.status_code for a in answers] == [400, 400], bad
        assert answers[0].text == answers[1].text
    assert server.drip().store.get_subscriber(email="unknown@example.com") is None


def test_a_failed_background_send_leaves_the_confirmation_for_drip_send(start_server):
    api = FakeApi()
    api.default = lambda seen: Reply(401, {"ErrorCode": 10, "Message": "Bad or missing token"})
    try:
        server = start_server(DRIP_PROVIDER="postmark", POSTMARK_SERVER_TOKEN="pm-wrong",
                              POSTMARK_API_URL=api.url)
        answer = requests.post(f"{server.url}/subscribe", timeout=10,
                               data={"email": "ana@example.com", "consent": "yes"})
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        drip = server.drip()
        ana = drip.store.get_subscriber(email="ana@example.com")
        [confirmation] = drip.store.deliveries(subscriber_id=ana.id)
        assert api.requests, "the background sender did not try the provider"
        assert (confirmation.campaign, confirmation.state) == ("confirmation", "scheduled")
    finally:
        api.close()
