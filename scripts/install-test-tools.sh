#!/usr/bin/env bash
# Install the outside programs the tests drive, once; later runs find them and skip.
# Each block says which tests need it. Tests that need a missing tool are skipped
# with a reason, never silently.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools

# Stoplight Prism: serves the provider API specs in ../shared/provider-specs as validating
# mocks for the contract tests in tests/providers (needs node and npm).
if [ ! -x .tools/prism/node_modules/.bin/prism ]; then
    if command -v npm >/dev/null 2>&1; then
        npm install --prefix .tools/prism --no-audit --no-fund --loglevel=error @stoplight/prism-cli@5
    else
        echo "npm not found: the Prism contract tests in tests/providers will be skipped" >&2
    fi
fi

# Headless Chromium and its driver (Debian packages): the browser test of the signup
# form in tests/web/test_browser.py. Only as root and where apt-get exists.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq chromium chromium-driver
    else
        echo "chromium not found: the browser test in tests/web will be skipped" >&2
    fi
fi

# PostgreSQL server programs (initdb, pg_ctl): the store contract suite and the
# multi-worker tests on PostgreSQL (tests/pgserver.py starts a throwaway server in a
# temporary folder). Only as root and where apt-get exists.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq postgresql
    else
        echo "PostgreSQL not found: the PostgreSQL tests will be skipped" >&2
    fi
fi

# Pango and fonts for WeasyPrint (Debian packages): the guide PDF in tests/content/test_guide.py
# and `drip guide build`. Only as root and where apt-get exists.
if ! ldconfig -p 2>/dev/null | grep 'libpangoft2-1.0.so.0' >/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 \
            libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core
    else
        echo "Pango not found: drip guide build and the guide tests will fail;" \
             "apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b" >&2
    fi
fi
