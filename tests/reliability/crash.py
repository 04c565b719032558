"""Crash anywhere: kill `drip send` and `drip worker` with SIGKILL at random moments,
restart, and compare the ledger with what the provider received.

    .venv-test/bin/python -m tests.reliability.crash --trials 300 --seed 7

Each trial adds a few subscribers (so there is always work in flight), starts a real
`drip send --now T` or `drip worker` process against a loopback Postmark, kills it after a
random delay, and checks `PRAGMA integrity_check`. Sends use clock values after the
real clock, so a worker's claims (real clock) look old to them, and each `send --now`
is 11 minutes after the last, past DRIP_CLAIM_TIMEOUT: interrupted hand-offs are
reconciled through Postmark's message search by our delivery id.

The project also has a broadcast to the whole list, scheduled a quarter of the way in for two
seconds later on the real clock: the first process after that (a `drip send --now` at once,
a worker once the time comes) writes its rows, and the trials after it send them, killed
like the rest. And in some trials a subscriber unsubscribes while the processes run (the
harness, through the library, in its own transaction): someone whose email a process has
claimed at that moment when there is one, so that it lands between the claim and the
hand-off; what of hers had been handed over by the time it commits is noted inside that
transaction.

At the end, clean runs finish the work, and the counts are compared:

  lost        a due delivery that is neither sent nor waiting for a decision, or that the
              ledger calls sent while the provider never got it;
  duplicated  a delivery the provider received more than once;
  undecided   a delivery left for `drip resolve` because nothing could tell;
  left_out    someone on the list (and never unsubscribed) when the broadcast was scheduled,
              with no row of it (``twice``: someone with two);
  after_unsubscribe  a message the provider got for someone that was not handed over before
              her unsubscribe committed (not among her rows marked handed then, or handed
              again since).
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

from sender import broadcast_runs, broadcasts, subscribers
from sender.config import Settings
from sender.drip import Drip
from tests.broadcast_support import write_broadcast
from tests.reliability import journeys
from tests.reliability.recorder import PostmarkRecorder

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "project"
TOKEN = "pm-crash-harness-token"
BROADCAST = "crash-news"


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
    broadcast_rows: int = 0
    broadcast_sent: int = 0
    broadcast_state: str = ""
    broadcast_in_trials: int = 0     # of the broadcast's rows, those the provider got during the trials
    left_out: int = 0
    twice: int = 0
    unsubscribed: int = 0
    after_unsubscribe: int = 0
    journey: dict = None             # the per-person rules' counts (journeys.tally)

    def line(self, label="crash"):
        return (f"{label}: seed={self.seed} trials={self.trials} killed={self.killed} "
                f"deliveries={self.deliveries} lost={self.lost} duplicated={self.duplicated} "
                f"undecided={self.undecided} integrity_failures={self.integrity_failures} "
                f"broadcast={self.broadcast_sent}/{self.broadcast_rows} ({self.broadcast_state}, "
                f"{self.broadcast_in_trials} during the trials) "
                f"left_out={self.left_out} twice={self.twice} unsubscribed={self.unsubscribed} "
                f"after_unsubscribe={self.after_unsubscribe} "
                + " ".join(f"{k}={v}" for k, v in (self.journey or {}).items()))

    def failures(self):
        return (self.lost + self.duplicated + self.integrity_failures + self.left_out + self.twice
                + self.after_unsubscribe + (self.broadcast_state != "sent")
                + sum((self.journey or {}).get(k, 0) for k in journeys.FAILURES))


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_trials(trials, seed, *, people_per_trial=6, max_kill_after=1.2, workdir=None, log=print,
               senders=1, slow=0.0, unsubscribe_odds=0.4, client_odds=0.3):
    """``senders`` processes are started together in each trial and killed at their own
    random moments; with ``slow`` that share of the provider's answers comes after the HTTP
    timeout (the batch accepted all the same), so the outcome is unknown to the sender.
    In ``unsubscribe_odds`` of the trials someone unsubscribes while they run, and in
    ``client_odds`` someone reaches the journey's goal (``journeys.py``)."""
    rng = random.Random(seed)
    counts = Counts(seed=seed)
    owned = workdir is None
    root = Path(workdir or tempfile.mkdtemp(prefix="drip-crash-"))
    project = root / "project"
    shutil.copytree(FIXTURE, project)
    journeys.install(project)
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
    if os.environ.get("PYTHONPATH"):          # the processes run the same drip as the harness
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    drip = Drip(Settings.from_env(env))
    real_now = datetime.now(UTC).replace(microsecond=0)
    enrolled = real_now - timedelta(days=30)      # everyone's sequence is due by now
    moment = real_now + timedelta(days=1)         # the --now of `drip send` trials
    write_broadcast(project, BROADCAST, subject="News for everyone")
    person = 0
    writing_from = None       # how many people were on the list when it was scheduled
    unsubscribed = {}         # person number -> {delivery id: handed_at} as her unsubscribe commits
    picker = random.Random(seed + 2)   # whom to unsubscribe (the main sequence stays as it was)
    clients = {}              # person number -> her journey rows being sent or sent as her tag commits
    try:
        for trial in range(trials):
            for _ in range(people_per_trial):
                subscribers.add_subscriber(drip, f"p{person}@example.com", now=enrolled, confirmed=True,
                                           fields=journeys.fields(person))
                person += 1
            moment += timedelta(minutes=11)
            # The processes of one trial share a clock: all `send --now` the same moment, or
            # all workers on the real clock. (A sender a day ahead of a live worker would take
            # its fresh claims for stale ones: that is clock skew beyond DRIP_CLAIM_TIMEOUT,
            # which no lease can survive.)
            if trial == trials // 4:
                scheduled = datetime.now(UTC)
                broadcast_runs.schedule(drip, broadcasts.load(drip.settings, BROADCAST),
                                        iso(scheduled + timedelta(seconds=2)), now=scheduled)
                writing_from = person
            if rng.random() < 0.3:
                args = ["worker", "--interval", "0.2"]
            else:
                args = ["send", "--now", iso(moment)]
            events = []
            for _ in range(senders):
                events.append((rng.uniform(0.05, max_kill_after), subprocess.Popen(
                    [sys.executable, "-m", "sender", *args], env=env, cwd=project,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)))
            if rng.random() < unsubscribe_odds and len(unsubscribed) < person:
                events.append((rng.uniform(0.02, max_kill_after), "unsubscribe"))
            if rng.random() < client_odds:
                events.append((rng.uniform(0.02, max_kill_after), "client"))
            started = time.monotonic()
            for at, what in sorted(events, key=lambda e: e[0]):
                wait = max(at - (time.monotonic() - started), 0.001)
                if what == "client":
                    time.sleep(wait)     # a seeded random moment, like the kills
                    chosen = _pick(drip, picker, person, {**unsubscribed, **clients})
                    if chosen not in clients:
                        clients[chosen] = journeys.become_client(drip, f"p{chosen}@example.com",
                                                                 now=moment)
                    continue
                if what == "unsubscribe":
                    time.sleep(wait)     # a seeded random moment, like the kills: not a synchronisation
                    chosen = _pick(drip, picker, person, unsubscribed)
                    unsubscribed[chosen] = _unsubscribe(drip, f"p{chosen}@example.com", now=moment)
                    continue
                try:
                    what.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    os.killpg(what.pid, signal.SIGKILL)
                    what.wait()
                    counts.killed += 1
            counts.trials += 1
            if not _integrity_ok(project / "drip.db"):
                counts.integrity_failures += 1
                log(f"trial {trial}: integrity_check failed")
        with recorder.lock:
            during = set(recorder.received)
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
        with recorder.lock:
            counts.journey = journeys.tally(drip, dict(recorder.received), dict(recorder.subjects),
                                            {f"p{n}@example.com": ids for n, ids in clients.items()})
        _tally_broadcast(drip, recorder, counts, writing_from, unsubscribed)
        counts.broadcast_in_trials = sum(1 for row in drip.store.deliveries(
            campaign=broadcasts.campaign_id(BROADCAST)) if str(row.id) in during)
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


def _pick(drip, picker, person, unsubscribed):
    """Someone with an email claimed right now (between the claim and the hand-off), or else
    anyone still subscribed."""
    claimed = {d.subscriber_id for d in drip.store.deliveries(states=("sending",))}
    numbers = sorted(int(p.email[1:].split("@")[0]) for p in
                     drip.store.get_subscribers(list(claimed)).values() if p.status == "active")
    return picker.choice(numbers or [n for n in range(person) if n not in unsubscribed])


def _unsubscribe(drip, email, *, now):
    """Unsubscribe her, and inside the same transaction (holding the write lock, so no sender
    can mark anything of hers in between) note her rows handed over so far."""
    person = drip.store.get_subscriber(email=email)
    with drip.store.transaction():
        subscribers.unsubscribe(drip, person, now=now)
        return {d.id: d.handed_at for d in drip.store.deliveries(subscriber_id=person.id)
                if d.handed_at is not None}


def _tally_broadcast(drip, recorder, counts, writing_from, unsubscribed):
    store = drip.store
    campaign = broadcasts.campaign_id(BROADCAST)
    rows = list(store.deliveries(campaign=campaign))
    with recorder.lock:
        received = dict(recorder.received)
    counts.broadcast_rows = len(rows)
    counts.broadcast_sent = sum(1 for r in rows if r.state == "sent" and received.get(str(r.id)))
    counts.broadcast_state = (store.get_broadcast(BROADCAST) or {}).get("state", "none")
    per_person = {}
    for row in rows:
        per_person[row.subscriber_id] = per_person.get(row.subscriber_id, 0) + 1
    counts.twice = sum(1 for n in per_person.values() if n > 1)
    for n in range(writing_from or 0):
        if n in unsubscribed:
            continue
        if store.get_subscriber(email=f"p{n}@example.com").id not in per_person:
            counts.left_out += 1
    counts.unsubscribed = len(unsubscribed)
    for n, handed in unsubscribed.items():
        her = store.get_subscriber(email=f"p{n}@example.com")
        for row in store.deliveries(subscriber_id=her.id):
            if not received.get(str(row.id)):
                continue
            if row.id not in handed or row.handed_at != handed[row.id]:
                counts.after_unsubscribe += 1


def _tally(drip, recorder, counts, moment):
    rows = list(drip.store.deliveries())
    counts.deliveries = len(rows)
    with recorder.lock:
        received = dict(recorder.received)
    counts.duplicated = sum(1 for n in received.values() if n > 1)
    people = drip.store.get_subscribers(list({row.subscriber_id for row in rows}))
    for row in rows:
        got = received.get(str(row.id), 0)
        if row.state == "sending":
            counts.undecided += 1
        elif row.state == "sent" and got == 0:
            counts.lost += 1
        elif row.state == "skipped" and people[row.subscriber_id].status == "unsubscribed":
            continue     # claimed, then dropped at the hand-off: she had unsubscribed meanwhile
        elif row.state == "skipped" and row.reason == "condition_not_met":
            continue     # a step with `when` she does not fit (journeys.py checks which)
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
    bad = counts.failures()
    print(f"{counts.deliveries - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
