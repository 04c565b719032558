"""Crash anywhere: kill `drip send` and `drip worker` with SIGKILL at random moments,
restart, and compare the ledger with what the provider received.

    .venv-test/bin/python -m tests.reliability.crash --trials 300 --seed 7

Each trial adds a few subscribers (so there is always work in flight), starts a real
`drip send --now T` or `drip worker` process against a loopback Postmark, kills it after a
random delay, and checks `PRAGMA integrity_check`. Sends use clock values after the
real clock, so a worker's claims (real clock) look old to them, and each `send --now`
is 11 minutes after the last, past DRIP_CLAIM_TIMEOUT: interrupted hand-offs are
reconciled through Postmark's message search by our delivery id. At the end, clean runs
finish the work, and the counts are compared:

  lost        a due delivery that is neither sent nor waiting for a decision, or that the
              ledger calls sent while the provider never got it;
  duplicated  a delivery the provider received more than once;
  undecided   a delivery left for `drip resolve` because nothing could tell.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sender import subscribers
from sender.config import Settings
from sender.drip import Drip
from tests.reliability.recorder import PostmarkRecorder

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "project"
TOKEN = "pm-crash-harness-token"


@dataclass
class Counts:
    seed: int
    trials: int = 0
    killed: int = 0
    deliveries: int = 0
    lost: int = 0
    duplicated: int = 0
    undecided: int = 0
    integrity_failures: int = 0

    def line(self, label="crash"):
        return (f"{label}: seed={self.seed} trials={self.trials} killed={self.killed} "
                f"deliveries={self.deliveries} lost={self.lost} duplicated={self.duplicated} "
                f"undecided={self.undecided} integrity_failures={self.integrity_failures}")


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_trials(trials, seed, *, people_per_trial=6, max_kill_after=1.2, workdir=None, log=print,
               senders=1, slow=0.0):
    """``senders`` processes are started together in each trial and killed at their own
    random moments; with ``slow`` that share of the provider's answers comes after the HTTP
    timeout (the batch accepted all the same), so the outcome is unknown to the sender."""
    rng = random.Random(seed)
    counts = Counts(seed=seed)
    owned = workdir is None
    root = Path(workdir or tempfile.mkdtemp(prefix="drip-crash-"))
    project = root / "project"
    shutil.copytree(FIXTURE, project)
    recorder = PostmarkRecorder(latency=0.01, rng=random.Random(seed + 1) if slow else None,
                                odds={"slow": slow}, slow_seconds=0.6)
    env = {
        "DRIP_DATABASE": str(project / "drip.db"),
        "DRIP_PROVIDER": "postmark",
        "POSTMARK_SERVER_TOKEN": TOKEN,
        "POSTMARK_API_URL": recorder.url,
        "DRIP_FROM": "Coach Example <coach@example.com>",
        "DRIP_POSTAL_ADDRESS": "123 Example St, Redmond, WA 98052, USA",
        "DRIP_BASE_URL": "https://mail.example.com",
        "DRIP_ALLOW_EXAMPLE_VALUES": "true",   # a test setup: Postmark here is a loopback recorder
        "DRIP_SECRET_KEY": "crash-harness-secret-0123456789abcdefghijkl",
        "DRIP_CAMPAIGNS_DIR": str(project / "campaigns"),
        "DRIP_TEMPLATES_DIR": str(project / "templates"),
        "DRIP_SEND_WINDOW": "always",
        "DRIP_MIN_GAP": "0",
        "DRIP_CLAIM_TIMEOUT": "10m",
        "DRIP_HTTP_TIMEOUT": "0.3",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    drip = Drip(Settings.from_env(env))
    real_now = datetime.now(UTC).replace(microsecond=0)
    enrolled = real_now - timedelta(days=30)      # everyone's sequence is due by now
    moment = real_now + timedelta(days=1)         # the --now of `drip send` trials
    person = 0
    try:
        for trial in range(trials):
            for _ in range(people_per_trial):
                subscribers.add_subscriber(drip, f"p{person}@example.com", now=enrolled, confirmed=True)
                person += 1
            moment += timedelta(minutes=11)
            # The processes of one trial share a clock: all `send --now` the same moment, or
            # all workers on the real clock. (A sender a day ahead of a live worker would take
            # its fresh claims for stale ones: that is clock skew beyond DRIP_CLAIM_TIMEOUT,
            # which no lease can survive.)
            if rng.random() < 0.3:
                args = ["worker", "--interval", "0.2"]
            else:
                args = ["send", "--now", iso(moment)]
            procs = []
            for _ in range(senders):
                procs.append((subprocess.Popen(
                    [sys.executable, "-m", "sender", *args], env=env, cwd=project,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True),
                    rng.uniform(0.05, max_kill_after)))
            started = time.monotonic()
            for proc, kill_after in sorted(procs, key=lambda p: p[1]):
                try:
                    proc.wait(timeout=max(kill_after - (time.monotonic() - started), 0.001))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    counts.killed += 1
            counts.trials += 1
            if not _integrity_ok(project / "drip.db"):
                counts.integrity_failures += 1
                log(f"trial {trial}: integrity_check failed")
        # Finish: clean runs past every claim timeout, until nothing is due.
        for _ in range(5):
            moment += timedelta(minutes=11)
            done = subprocess.run([sys.executable, "-m", "sender", "send", "--now", iso(moment)],
                                  env=env, cwd=project, capture_output=True, text=True, timeout=300)
            if done.returncode not in (0, 1):
                raise RuntimeError(done.stderr)
        if slow:
            recorder.odds = {}           # the provider recovers; the finishing runs settle all
            for _ in range(3):
                moment += timedelta(minutes=11)
                subprocess.run([sys.executable, "-m", "sender", "send", "--now", iso(moment)],
                               env=env, cwd=project, capture_output=True, text=True, timeout=300)
        _tally(drip, recorder, counts, moment)
        return counts
    finally:
        drip.close()
        recorder.close()
        if owned:
            shutil.rmtree(root, ignore_errors=True)


def _integrity_ok(path):
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _tally(drip, recorder, counts, moment):
    rows = list(drip.store.deliveries())
    counts.deliveries = len(rows)
    with recorder.lock:
        received = dict(recorder.received)
    counts.duplicated = sum(1 for n in received.values() if n > 1)
    for row in rows:
        got = received.get(str(row.id), 0)
        if row.state == "sending":
            counts.undecided += 1
        elif row.state == "sent" and got == 0:
            counts.lost += 1
        elif row.state not in ("sent", "cancelled") and row.due_at <= moment:
            counts.lost += 1


def main():
    parser = argparse.ArgumentParser(description="Crash drip at random moments; count lost and "
                                                 "duplicated deliveries.")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--senders", type=int, default=1,
                        help="processes started together in each trial")
    parser.add_argument("--slow", type=float, default=0.0,
                        help="share of provider answers that come after the HTTP timeout")
    args = parser.parse_args()
    print(f"crash harness: seed={args.seed} trials={args.trials} senders={args.senders} "
          f"slow={args.slow}", flush=True)
    counts = run_trials(args.trials, args.seed, senders=args.senders, slow=args.slow)
    print(counts.line(f"crash senders={args.senders} slow={args.slow}"))
    bad = counts.lost + counts.duplicated + counts.integrity_failures
    print(f"{counts.deliveries - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
