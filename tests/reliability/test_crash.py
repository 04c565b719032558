"""The crash harness in the test suite: a short run here, a long one on demand
(`bash scripts/reliability.sh --long`)."""

from __future__ import annotations

import os

import pytest

from tests.reliability.crash import run_trials

TRIALS = int(os.environ.get("DRIP_RELIABILITY_TRIALS", "20"))
SEED = int(os.environ.get("DRIP_RELIABILITY_SEED", "20261125"))


@pytest.mark.reliability
@pytest.mark.parametrize("senders,slow", [(1, 0.0), (2, 0.0), (2, 0.2)],
                         ids=["one-sender", "two-senders", "two-senders-slow-provider"])
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(capsys, tmp_path, senders, slow):
    """Each trial starts ``senders`` processes together and kills them at random moments;
    with ``slow``, that share of the provider's answers comes after DRIP_HTTP_TIMEOUT."""
    counts = run_trials(TRIALS, SEED, workdir=tmp_path, senders=senders, slow=slow)
    with capsys.disabled():
        print("\n" + counts.line(f"crash senders={senders} slow={slow}"))
    assert counts.trials == TRIALS and counts.killed > 0
    assert counts.deliveries >= TRIALS * 6
    assert counts.integrity_failures == 0
    assert counts.lost == 0, counts.line()
    assert counts.duplicated == 0, counts.line()
