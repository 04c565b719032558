#!/usr/bin/env bash
# Install the outside programs the tests drive, once; later runs find them and skip.
# Each block says which tests need it. Tests that need a missing tool are skipped
# with a reason, never silently.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools
