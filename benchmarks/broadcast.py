"""Broadcast benchmark: a Markdown broadcast to the whole list, written and handed to the
outbox, against the sequence send path measured in the same process at the same time.

    python benchmarks/broadcast.py                    # 20,000 people (~1.5 min); and 10,000
    python benchmarks/broadcast.py --people 100000    # the full run: 10,000 and 100,000
    python benchmarks/broadcast.py --people 5000 --profile   # where the broadcast's hand-off goes
                                   # (its waits for its turns show as lock acquire; the profiler
                                   # slows it, so the ratio of that run means nothing)

The broadcast is the shipped example (``broadcasts/2026-03-10-bellevue-workshop.md``: the
shipped layout and templates), sent now (``broadcast_runs.send_now``) to PEOPLE active
subscribers added as an import adds them, with the names and stages ``benchmarks/engine.py``
uses. The baseline is ``engine.py``'s: PEOPLE due sequence emails (the shipped glute steps,
its ``bulk_ledger`` set-up) in a second database. Both are in a folder on a RAM disk
(/dev/shm) when there is one. Measured:

* writing the broadcast's rows: ``send_now``, the audience read a page at a time and its
  ledger rows written a page at a time;
* the hand-off: ``send_due`` (claim, render, write the .eml file, record) of the broadcast
  and of the sequence emails, each one call that sends everything, the two taking turns a
  batch at a time (``Turns``) so that whatever else the machine does weighs on both alike;
  each one's own wall and CPU time summed over its turns; emails per second, the ratio
  (target: the broadcast at least 1.0x the sequence rate);
* peak memory (the process's maximum RSS: the broadcast's set-up, its rows, both hand-offs;
  the baseline's set-up runs in a process of its own) of a run at 10,000 people and of one
  at PEOPLE, each in its own process: it should stay flat;
* whether the broadcast was rendered once (``template_plan``) and filled in per person.

Every delivery of both must end stored as sent and written as a file; the run exits 1
otherwise.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import engine  # noqa: E402  (benchmarks/engine.py: the sequence baseline and its set-up)

from sender import broadcast_runs, broadcasts, step_render  # noqa: E402
from sender.dispatch import send_due  # noqa: E402
from sender.drip import Drip  # noqa: E402
from sender.models import Consent  # noqa: E402

NAME = "2026-03-10-bellevue-workshop"   # the shipped example
SMALL = 10_000                           # the size memory is compared against
CHUNK = 5_000                            # people added a chunk at a time, as an import does


class Turns:
    """Two runs that take turns a batch at a time: each run's ``stop`` (asked by ``send_due``
    between batches) hands over to the other and waits for its turn back. The wall and CPU
    time (``time.thread_time``) of each run's own turns are summed apart."""

    def __init__(self, first, second):
        self.other = {first: second, second: first}
        self.turn, self.done = first, set()
        self.cond = threading.Condition()
        self.wall = {first: 0.0, second: 0.0}
        self.cpu = {first: 0.0, second: 0.0}
        self.clocks = {}

    def _wait(self, name):
        with self.cond:
            self.cond.wait_for(lambda: self.turn == name)
        self.clocks[name] = (time.perf_counter(), time.thread_time())

    def _pause(self, name):
        wall, cpu = self.clocks.pop(name)
        self.wall[name] += time.perf_counter() - wall
        self.cpu[name] += time.thread_time() - cpu

    def _hand_over(self, name, finished=False):
        self._pause(name)
        with self.cond:
            if finished:
                self.done.add(name)
            if self.other[name] not in self.done:
                self.turn = self.other[name]
                self.cond.notify_all()

    def run(self, name, work):
        """``work(stop)`` in this thread, in turns; what it returns."""
        self._wait(name)
        try:
            return work(lambda: self._switch(name))
        finally:
            self._hand_over(name, finished=True)

    def _switch(self, name):
        self._hand_over(name)
        self._wait(name)
        return False


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def add_people(drip, count):
    """``count`` active subscribers with ``engine.person``'s names and fields."""
    consent = Consent(source="benchmark", at=engine.NOW, confirmed_at=engine.NOW)
    for start in range(0, count, CHUNK):
        rows = []
        for n in range(start, min(start + CHUNK, count)):
            subscriber, _ = engine.person(n)
            rows.append({"email": subscriber.email, "name": subscriber.name, "timezone": None,
                         "tags": [], "fields": subscriber.fields, "status": "active",
                         "consent": consent})
        drip.store.add_subscribers(rows, now=engine.NOW)


def checked(drip, folder, campaign, people, report):
    """The problems with a finished run: anything not stored as sent or not written as a file."""
    problems = []
    if report.sent != people:
        problems.append(f"{campaign}: send_due reported {report.sent} sent for {people}")
    counts = drip.store.campaign_state_counts(campaign)
    if counts != {"sent": people}:
        problems.append(f"{campaign}: the ledger holds {counts} for {people} people")
    written = sum(1 for _ in os.scandir(folder / "outbox"))
    if written != people:
        problems.append(f"{campaign}: {written} .eml files for {people} people")
    return problems


def measure(folder, people, *, profile=False):
    """Set up both databases, write the broadcast's rows, then hand off both in turns."""
    (folder / "broadcast").mkdir(parents=True)
    (folder / "sequence").mkdir(parents=True)
    setup = Drip(engine.settings_for(folder / "broadcast"))
    add_people(setup, people)
    broadcast = broadcasts.load(setup.settings, NAME)
    started, cpu = time.perf_counter(), time.process_time()
    broadcast_runs.send_now(setup, broadcast, now=engine.NOW)
    write_wall, write_cpu = time.perf_counter() - started, time.process_time() - cpu
    setup.close()
    after_rows = peak_mb()
    # The baseline's set-up holds all its people in a list: it runs in a process of its own,
    # so that the peak measured here is drip's.
    subprocess.run([sys.executable, __file__, "--setup-sequence", str(folder / "sequence"),
                    str(people)], check=True)

    turns, found, problems = Turns("broadcast", "sequence"), {}, []
    profiler = cProfile.Profile() if profile else None

    def hand_off(name):
        drip = Drip(engine.settings_for(folder / name))    # its own connection, in its thread
        try:
            if profiler and name == "broadcast":
                report = turns.run(name, lambda stop: profiler.runcall(
                    send_due, drip, now=engine.NOW, stop=stop))
            else:
                report = turns.run(name, lambda stop: send_due(drip, now=engine.NOW, stop=stop))
            campaign = broadcast.id if name == "broadcast" else "glute-progression"
            problems.extend(checked(drip, folder / name, campaign, people, report))
            if name == "broadcast":
                stats = step_render.stats(drip.templates)
                found.update(rendered_once=any(NAME in str(n) for n in stats.once)
                             and not stats.emails_per_person, emails_once=stats.emails_once,
                             emails_per_person=stats.emails_per_person,
                             fell_back={str(k): v for k, v in stats.fell_back.items()})
        except Exception as exc:          # noqa: BLE001 - reported, and the run exits 1
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            drip.close()

    threads = [threading.Thread(target=hand_off, args=(name,)) for name in ("broadcast", "sequence")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(20)
    found.update(people=people, write_s=write_wall, write_cpu_s=write_cpu, rows_peak_mb=after_rows,
                 send_s=turns.wall["broadcast"], send_cpu_s=turns.cpu["broadcast"],
                 sequence_s=turns.wall["sequence"], sequence_cpu_s=turns.cpu["sequence"],
                 peak_mb=peak_mb(), problems=problems)
    return found


def setup_sequence(folder, people):
    """``engine.py``'s set-up: ``people`` due glute emails, one each, in a fresh database."""
    drip = Drip(engine.settings_for(folder))
    drip.store.schema_version()          # opening the store creates the schema
    engine.bulk_ledger(drip.settings.database, people, 1, engine.NOW - timedelta(minutes=1),
                       spread=True)
    drip.close()


def child(args):
    folder = Path(tempfile.mkdtemp(prefix="drip-bench-broadcast-", dir=args.dir))
    try:
        found = measure(folder, args.child, profile=args.profile)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(found))


def run_child(args, people, *, profile=False):
    command = [sys.executable, __file__, "--child", str(people), "--dir", args.dir or ""]
    if profile:
        command.append("--profile")
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=None if profile else subprocess.PIPE,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"the run at {people:,} people failed:\n{(done.stderr or '')[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000, help="active subscribers it goes to")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the databases and outboxes go (default: /dev/shm, a RAM disk)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the broadcast's hand-off, print the top costs")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--setup-sequence", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dir = args.dir or None
    if args.setup_sequence:
        return setup_sequence(Path(args.setup_sequence[0]), int(args.setup_sequence[1]))
    if args.child:
        return child(args)

    small = run_child(args, SMALL) if args.people > SMALL else None
    big = run_child(args, args.people, profile=args.profile)
    people = args.people
    write_rate, send_rate = people / big["write_s"], people / big["send_s"]
    both_rate = people / (big["write_s"] + big["send_s"])
    sequence_rate = people / big["sequence_s"]
    print(f"broadcast {NAME} (Markdown, shipped layout) to {people:,} active subscribers; "
          f"SQLite and outbox in {args.dir or tempfile.gettempdir()}")
    print(f"  write its rows:  {big['write_s']:7.2f} s  {write_rate:9,.0f} rows/s   "
          f"({big['write_cpu_s'] / people * 1000:.3f} ms CPU a row)")
    print(f"  hand off:        {big['send_s']:7.2f} s  {send_rate:9,.0f} emails/s "
          f"({big['send_cpu_s'] / people * 1000:.3f} ms CPU an email)")
    print(f"  both:            {big['write_s'] + big['send_s']:7.2f} s  {both_rate:9,.0f} emails/s")
    print(f"  sequence emails: {big['sequence_s']:7.2f} s  {sequence_rate:9,.0f} emails/s "
          f"({big['sequence_cpu_s'] / people * 1000:.3f} ms CPU an email; send_due of {people:,} "
          "due glute emails, in turns with the broadcast)")
    print(f"  ratio:           hand-off {send_rate / sequence_rate:.2f}x the sequence rate "
          f"({big['sequence_cpu_s'] / big['send_cpu_s']:.2f}x by CPU); rows and hand-off together "
          f"{both_rate / sequence_rate:.2f}x (target: at least 1.0x)")
    print(f"  rendered once:   {'yes' if big['rendered_once'] else 'NO'}: "
          f"{big['emails_once']:,} emails filled in, {big['emails_per_person']:,} rendered per person"
          f"{' ' + str(big['fell_back']) if big['fell_back'] else ''}")
    runs = [r for r in (small, big) if r]
    print("  peak memory:     " + "   ".join(f"{r['people']:,} people: {r['peak_mb']:.0f} MB "
                                           f"({r['rows_peak_mb']:.0f} MB with its rows written)"
                                           for r in runs)
          + (f"   ({big['peak_mb'] / small['peak_mb']:.2f}x for "
             f"{people / SMALL:g}x the people)" if small else ""))
    if args.profile:
        print("  (profiled: the broadcast ran under cProfile, so its rates and the ratio are not "
              "comparable)")
    problems = [p for r in runs for p in r["problems"]]
    if not big["rendered_once"]:
        problems.append("the broadcast was not rendered once")
    for problem in problems:
        print(f"  FAILED: {problem}")
    print(json.dumps({"people": people, "write_rows_per_s": round(write_rate),
                      "handoff_per_s": round(send_rate), "sequence_per_s": round(sequence_rate),
                      "ratio": round(send_rate / sequence_rate, 2),
                      "ratio_cpu": round(big["sequence_cpu_s"] / big["send_cpu_s"], 2),
                      "peak_mb": {r["people"]: round(r["peak_mb"]) for r in runs},
                      "failures": len(problems)}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
