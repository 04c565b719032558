#!/usr/bin/env bash
# Write new reference images for the screenshot tests (tests/content/reference/): every email
# at 600 and 375 px in headless Chromium, and every page of the guide PDF. Run it after a
# deliberate change to the templates, the pictures or the guide, look at the new images
# (git diff --stat tests/content/reference; open them), and commit them with the change.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv-test/bin/python}"
rm -rf tests/content/reference/emails tests/content/reference/guide
DRIP_UPDATE_REFERENCES=1 "$python" -m pytest -q -p no:cacheprovider \
    tests/content/test_email_screenshots.py tests/content/test_guide_pages.py "$@"
echo "New references in tests/content/reference/: look at them before you commit them."
