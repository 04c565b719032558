"""A flaky provider: random 500, 503, 429 (with and without Retry-After), answers slower than
the timeout, dropped connections (before and after accepting) and malformed JSON. Every
delivery still ends sent or failed with a reason, backoff is honoured, and nothing arrives
twice."""

from __future__ import annotations

import os
import random
from datetime import timedelta

from sender import subscribers
from sender.config import Settings
from sender.dispatch import send_due
from sender.providers import get_provider
from tests.conftest import at, base_env
from tests.reliability.recorder import PostmarkRecorder

SEED = int(os.environ.get("DRIP_RELIABILITY_SEED", "20261125"))
ODDS = {"500": 0.08, "503": 0.08, "429": 0.06, "429-retry-after": 0.06, "slow": 0.05, "drop": 0.05,
        "drop-after-accept": 0.05, "bad-json": 0.05}


def test_every_delivery_ends_sent_or_failed_without_duplicates(project, make_drip, capsys):
    recorder = PostmarkRecorder(rng=random.Random(SEED), odds=ODDS, slow_seconds=1.5)
    try:
        env = base_env(project, DRIP_PROVIDER="postmark", POSTMARK_SERVER_TOKEN="pm-flaky",
                       POSTMARK_API_URL=recorder.url, DRIP_HTTP_TIMEOUT="0.5", DRIP_MIN_GAP="0",
                       DRIP_SEND_WINDOW="always", DRIP_MAX_ATTEMPTS="8")
        provider = get_provider(Settings.from_env(env))
        provider.batch_size = 4          # many small requests, so there are many to fault
        drip = make_drip(env, provider=provider)
        start = at("2026-03-02T18:00Z")
        for n in range(40):
            subscribers.add_subscriber(drip, f"p{n}@example.com", now=start, confirmed=True)
        moment = start + timedelta(days=30)
        retried_rows = {}
        for _ in range(60):
            send_due(drip, now=moment)
            for row in drip.store.deliveries(states=("scheduled",)):
                if row.attempts:
                    retried_rows[row.id] = (moment, row.due_at, row.last_error)
            if not drip.store.count_due(moment + timedelta(days=1)) and not list(
                    drip.store.deliveries(states=("sending",))):
                break
            moment += timedelta(minutes=15)
        rows = list(drip.store.deliveries())
        states = {r.state for r in rows}
        with capsys.disabled():
            print(f"\nflaky provider: seed={SEED} requests={recorder.requests} "
                  f"faults={dict(recorder.faults)} deliveries={len(rows)} "
                  f"sent={sum(r.state == 'sent' for r in rows)} "
                  f"failed={sum(r.state == 'failed' for r in rows)} "
                  f"duplicated={sum(1 for n in recorder.received.values() if n > 1)}")
        assert states <= {"sent", "failed"}, states
        assert all(r.last_error for r in rows if r.state == "failed")
        assert all(n == 1 for n in recorder.received.values()), "a delivery reached the provider twice"
        sent_ids = {str(r.id) for r in rows if r.state == "sent"}
        assert sent_ids <= set(recorder.received), "the ledger says sent but the provider never got it"
        assert sum(recorder.faults.values()) >= 10
        for claimed_at, due_at, error in retried_rows.values():
            # Backoff: a retried delivery is never due again at once; a Retry-After of 120 s
            # is honoured.
            assert due_at > claimed_at, error
    finally:
        recorder.close()
