#!/usr/bin/env bash
# The reliability suite: crash anywhere (SIGKILL at random moments), a flaky provider,
# several senders and workers at once, clock trouble, hostile input, secrets, and the
# property-based tests.
#
#   bash scripts/reliability.sh          # the short version (what CI runs inside the tests)
#   bash scripts/reliability.sh --long   # 300 crash trials, 1000 examples per property
#   DRIP_RELIABILITY_SEED=42 bash scripts/reliability.sh --long   # replay a seed
#
# Each part prints what it tried and the counts (trials, deliveries, lost, duplicated,
# undecided); the run fails on any loss, duplicate or broken database.
set -euo pipefail
cd "$(dirname "$0")/.."
export DRIP_RELIABILITY_SEED=${DRIP_RELIABILITY_SEED:-$(date +%s)}
if [ "${1:-}" = "--long" ]; then
    export DRIP_RELIABILITY_TRIALS=${DRIP_RELIABILITY_TRIALS:-300}
    export DRIP_HYPOTHESIS_PROFILE=long
fi
echo "reliability: seed=$DRIP_RELIABILITY_SEED trials=${DRIP_RELIABILITY_TRIALS:-20}"
exec bash scripts/test.sh tests/reliability tests/test_properties.py tests/test_edit_properties.py tests/test_schedule.py \
    tests/lists/test_csv_properties.py tests/test_races.py tests/test_database_faults.py \
    tests/test_concurrency.py -q
