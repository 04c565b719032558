#!/usr/bin/env bash
# The main job, end to end, on the embedded default (SQLite + the local outbox).
# Makes .venv, installs drip, writes a starter settings file and the database
# under build/demo/, adds subscribers in three time zones, runs ten weeks of the
# schedule forward with --now, and leaves real .eml files in build/demo/outbox/.
# The install is skipped when .venv already holds drip installed from this
# pyproject.toml (the stamp below; the install is editable, so code changes need none).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
STAMP=.venv/.drip-install-stamp
WANT="$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest(), sys.version.split()[0])') $PWD"
if [ -x .venv/bin/drip ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ]; then
    echo "== drip is installed in .venv (pyproject.toml unchanged): skipping pip install"
else
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
    echo "$WANT" > "$STAMP"
fi
DEMO=build/demo
rm -rf "$DEMO" && mkdir -p "$DEMO"
drip() { .venv/bin/drip --env-file "$DEMO/.env" "$@"; }
DRIP_DATABASE="$DEMO/drip.db" .venv/bin/drip init --path "$DEMO/.env" >/dev/null
# Relative paths in a settings file are relative to its folder: the database and the outbox
# live beside it, the campaigns and templates are the repository's.
cat >> "$DEMO/.env" <<SETTINGS
DRIP_DATABASE=drip.db
DRIP_OUTBOX_DIR=outbox
DRIP_CAMPAIGNS_DIR=$PWD/campaigns
DRIP_TEMPLATES_DIR=$PWD/templates
SETTINGS

START=2026-03-02T17:00Z      # a Monday
echo "== Adding subscribers ($START)"
drip subscribers add ana@example.com --name "Ana Lima" --timezone America/Los_Angeles \
    --field stage=postpartum --consent "signup form, blog sidebar" --confirmed --now "$START"
drip subscribers add mei@example.com --name "Mei" --timezone Asia/Tokyo \
    --field stage=pregnant --consent "in person, Bellevue class" --confirmed --now "$START"
drip subscribers add sam@example.com --timezone Europe/London \
    --consent "signup form" --now "$START"

echo; echo "== When would someone who signs up on Saturday night in New York get each email?"
drip simulate --signup "2026-03-07 23:30" --timezone America/New_York

echo; echo "== The plan for the next 70 days"
drip plan --days 70 --now "$START" | tail -n 8

echo; echo "== Sending, day by day, for ten weeks"
for day in $(seq 0 70); do
    now=$(.venv/bin/python -c "import datetime as d; print((d.datetime(2026,3,2,17,tzinfo=d.timezone.utc)+d.timedelta(days=$day)).strftime('%Y-%m-%dT%H:%MZ'))")
    drip send --now "$now"
    if [ "$day" = 1 ]; then
        echo "   (sam confirms by hand on day 1)"
        drip subscribers confirm sam@example.com --now "$now"
    fi
    if [ "$day" = 20 ]; then drip subscribers pause mei@example.com --now "$now"; fi
    if [ "$day" = 27 ]; then drip subscribers resume mei@example.com --now "$now"; fi
done

echo; echo "== Status"
drip status --now 2026-05-12T00:00Z
echo; echo "== One subscriber's history"
drip subscribers show mei@example.com
echo; echo "== The outbox: $(ls "$DEMO/outbox" | wc -l) .eml files in $DEMO/outbox"
ls "$DEMO/outbox" | head -n 5
