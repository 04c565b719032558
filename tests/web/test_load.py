"""200 concurrent signups on loopback: each stored once with its consent, none failing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests


def test_200_concurrent_signups(server, record_property):
    unique = [f"person{i}@example.com" for i in range(170)]
    twice = unique[:20]                                   # sent twice, at the same time
    bots = [f"bot{i}@example.com" for i in range(10)]     # honeypot filled
    jobs = [{"email": a, "consent": "yes", "name": f"P {a[:8]}", "source": "load"}
            for a in unique + twice]
    jobs += [{"email": a, "consent": "yes", "website": "x"} for a in bots]
    assert len(jobs) == 200

    def post(data):
        with requests.Session() as session:
            return session.post(f"{server.url}/subscribe", data=data, timeout=60).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=200) as pool:
        codes = list(pool.map(post, jobs))
    elapsed = time.monotonic() - started
    record_property("signups_200_seconds", round(elapsed, 2))
    print(f"200 concurrent signups: {elapsed:.2f}s, failures: {sum(c != 200 for c in codes)}")

    assert codes == [200] * 200
    drip = server.drip()
    stored = list(drip.store.list_subscribers())
    assert sorted(s.email for s in stored) == sorted(unique)
    for subscriber in stored:
        assert subscriber.status == "pending"
        assert subscriber.consent.source == "form:load"
        assert subscriber.consent.ip == "127.0.0.1"
        assert subscriber.consent.at == server.clock.now
        assert subscriber.consent.text.startswith("[v1] ")
    confirmations = [m["To"].addresses[0].addr_spec for m in server.emails()]
    assert sorted(confirmations) == sorted(unique)
    states = drip.store.delivery_counts()
    assert states == {"sent": 170}
