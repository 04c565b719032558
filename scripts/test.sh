#!/usr/bin/env bash
# Run the whole test suite on a fresh machine (Python 3.11+).
# Makes its own virtual environment (.venv-test), installs drip with its test extras
# and the outside tools the tests drive (scripts/install-test-tools.sh), then runs pytest.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k schedule
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${DRIP_TEST_VENV:-.venv-test}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
bash scripts/install-test-tools.sh
exec "$VENV/bin/python" -m pytest "$@"
