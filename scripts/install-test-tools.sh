#!/usr/bin/env bash
# Install the outside programs the tests drive, once; later runs find them and skip.
# Each block says which tests need it. Tests that need a missing tool are skipped
# with a reason, never silently.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools
export DEBIAN_FRONTEND=noninteractive

# apt-get, once per run and only when something is missing; a failure is reported and the
# tests that need the package skip (or fail) with the reason instead of stopping here.
apt_updated=""
apt_install() {
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "cannot install $* (needs root and apt-get)" >&2
        return 0
    fi
    if [ -z "$apt_updated" ]; then
        apt-get update -qq || echo "apt-get update failed" >&2
        apt_updated=1
    fi
    apt-get install -y -qq "$@" >/dev/null || echo "could not install $*" >&2
}

# Stoplight Prism: serves the provider API specs in ../shared/provider-specs as validating
# mocks for the contract tests in tests/providers (needs node and npm).
if [ ! -x .tools/prism/node_modules/.bin/prism ]; then
    if command -v npm >/dev/null 2>&1; then
        npm install --prefix .tools/prism --no-audit --no-fund --loglevel=error @stoplight/prism-cli@5 \
            || echo "could not install Prism: the contract tests in tests/providers will be skipped" >&2
    else
        echo "npm not found: the Prism contract tests in tests/providers will be skipped" >&2
    fi
fi

# Headless Chromium and its driver (Debian packages): the browser test of the signup
# form in tests/web/test_browser.py. Only as root and where apt-get exists.
if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium chromium-driver
fi

# PostgreSQL server programs (initdb, pg_ctl): the store contract suite and the
# multi-worker tests on PostgreSQL (tests/pgserver.py starts a throwaway server in a
# temporary folder). Only as root and where apt-get exists.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql
fi

# Pango and fonts for WeasyPrint (Debian packages): the guide PDF in tests/content/test_guide.py
# and `drip guide build`. Only as root and where apt-get exists.
if ! ldconfig -p 2>/dev/null | grep 'libpangoft2-1.0.so.0' >/dev/null; then
    apt_install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core
fi

# Cairo (Debian package libcairo2): cairosvg draws the SVG pictures as PNG for email
# (sender/images.py; tests/content/test_image_pipeline.py, tests/web/test_assets.py, and
# `drip preview`, `drip assets publish`, `drip serve`). Only as root and where apt-get exists.
if ! ldconfig -p 2>/dev/null | grep 'libcairo.so.2' >/dev/null; then
    apt_install libcairo2
fi

# pdftoppm (Debian package poppler-utils): the guide's pages as images, measured and compared
# with their references in tests/content/test_guide_pages.py. Only as root and where apt-get exists.
if ! command -v pdftoppm >/dev/null 2>&1; then
    apt_install poppler-utils
fi
