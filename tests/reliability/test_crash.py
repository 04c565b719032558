"""The crash harness in the test suite: a short run here, a long one on demand
(`bash scripts/reliability.sh --long`)."""

from __future__ import annotations

import os

import pytest

from tests.reliability import journeys
from tests.reliability.crash import run_trials

TRIALS = int(os.environ.get("DRIP_RELIABILITY_TRIALS", "20"))
SEED = int(os.environ.get("DRIP_RELIABILITY_SEED", "20261125"))


@pytest.mark.reliability
@pytest.mark.parametrize("senders,slow", [(1, 0.0), (2, 0.0), (2, 0.2)],
                         ids=["one-sender", "two-senders", "two-senders-slow-provider"])
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(capsys, tmp_path, senders, slow):
    """Each trial starts ``senders`` processes together and kills them at random moments;
    with ``slow``, that share of the provider's answers comes after DRIP_HTTP_TIMEOUT. A
    broadcast to the whole list is written and sent during the trials, and some people
    unsubscribe while the processes run."""
    counts = run_trials(TRIALS, SEED, workdir=tmp_path, senders=senders, slow=slow)
    with capsys.disabled():
        print("\n" + counts.line(f"crash senders={senders} slow={slow}"))
    assert counts.trials == TRIALS and counts.killed > 0
    assert counts.deliveries >= TRIALS * 6
    assert counts.integrity_failures == 0
    assert counts.lost == 0, counts.line()
    assert counts.duplicated == 0, counts.line()
    # The broadcast: everyone on the list when it was scheduled has one row, and it went once
    # to each who stayed; nothing reached anyone after her unsubscribe committed.
    assert counts.broadcast_rows > 0 and counts.broadcast_state == "sent"
    assert counts.broadcast_sent >= counts.broadcast_rows - counts.unsubscribed
    assert counts.left_out == 0 and counts.twice == 0, counts.line()
    assert counts.unsubscribed > 0
    assert counts.after_unsubscribe == 0, counts.line()
    # The per-person rules (journeys.py): a step with a condition, A/B subjects, a branch into
    # another campaign and a goal reached while the processes run, each honoured once.
    assert counts.journey["branched"] > 0 and counts.journey["clients"] > 0, counts.line()
    assert {k: counts.journey[k] for k in journeys.FAILURES} == dict.fromkeys(journeys.FAILURES, 0)
