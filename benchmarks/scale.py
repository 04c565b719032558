"""Scale on one machine (SQLite) and beyond (PostgreSQL): the README's figures.

    python benchmarks/scale.py                                   # small, under two minutes
    python benchmarks/scale.py --sizes 10000,100000,1000000 --due 10000
    python benchmarks/scale.py --postgres --pg-deliveries 20000  # 1 vs 4 workers
    python benchmarks/scale.py --sizes 200000 --only import      # the import figures only

It runs on the repository's own ``campaigns/`` and ``templates/`` (the shipped ones), in a
folder on a RAM disk (``--base``, /dev/shm where there is one), so the figures are the
program's and not the disk's. For each list size N, fresh subprocesses (so each peak-memory
and CPU figure is its own):

* import: N generated rows through `drip subscribers import` (the CLI, as a person runs
  it), against the baseline ``sqlite-utils insert DB subscribers FILE --csv`` on the same
  file on the same disk: wall time and CPU time (user + system, from
  ``getrusage(RUSAGE_CHILDREN)``) of each, and drip's as a multiple of the baseline's;
* import with ``--enroll glute-progression`` (a shipped campaign of nine steps) into another
  database: rows/s, then the first `drip plan` and the first `drip send` tick on it, each
  with its peak memory (neither may examine the enrolments one by one);
* operations: a ledger with one future email per subscriber, then a ``drip send`` tick
  with nothing due (baseline: a trivial query), ``--due`` deliveries claimed and sent to
  the outbox, ``drip status`` and ``drip plan`` (7 and 60 days, first 1000 rows), with
  the SQLite query plan of the claim.

Peak memory is the subprocess's maximum resident set size (``ru_maxrss``). The last
columns give each figure as a multiple of the smallest size's, to show how it grows.
Figures, never pass/fail: this is not a test.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)   # a Monday, 09:00 in Los Angeles
CAMPAIGN = "glute-progression"                     # shipped: nine steps, weekdays only


def environ(root, **overrides):
    from tests.support import base_env

    return base_env(root, DRIP_SEND_WINDOW="always", **overrides)


def make_project(workdir):
    """The shipped campaigns and templates, copied into the work folder."""
    root = Path(workdir) / "project"
    if not root.exists():
        root.mkdir(parents=True)
        shutil.copytree(REPO / "campaigns", root / "campaigns")
        shutil.copytree(REPO / "templates", root / "templates")
    return root


def write_csv(path, count):
    """A realistic list: name, time zone, tags, two fields; written as a stream."""
    zones = ["America/New_York", "Europe/Madrid", "America/Los_Angeles", ""]
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Email", "Name", "Time zone", "Tags", "Stage", "Weeks", "Signed up"])
        for i in range(count):
            writer.writerow([f"person{i}@example.com", f"Person {i}", zones[i % 4],
                             "postpartum strength" if i % 3 else "pregnant",
                             "postpartum" if i % 3 else "pregnant", str(i % 40),
                             f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"])


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat=1):
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, result


# --- child processes -----------------------------------------------------------------------
def run_timed(command, env=None, cwd=None):
    """Run ``command``; (wall seconds, CPU seconds of the process and its children, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


# `drip` as `python -m sender` does it, writing its peak memory (KiB) to $DRIP_BENCH_PEAK.
DRIP_WITH_PEAK = (
    "import atexit, os, resource, runpy; "
    "atexit.register(lambda: open(os.environ['DRIP_BENCH_PEAK'], 'w').write("
    "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))); "
    "runpy.run_module('sender', run_name='__main__')")


def drip_env(workdir, db):
    root = make_project(workdir)
    return root, {**os.environ, "PYTHONPATH": str(REPO),
                  **environ(root, DRIP_DATABASE=db, DRIP_OUTBOX_DIR=Path(workdir) / "outbox")}


def import_figures(workdir, path, size):
    """`drip subscribers import` (plain, then with --enroll) against sqlite-utils, each in a
    subprocess on the same file and disk."""
    baseline_db = Path(workdir) / "sqlite-utils.db"
    base_wall, base_cpu, _ = run_timed([sys.executable, "-m", "sqlite_utils", "insert",
                                        str(baseline_db), "subscribers", str(path), "--csv"])
    figures = {"baseline_wall_s": base_wall, "baseline_cpu_s": base_cpu,
               "baseline_rows_per_s": size / base_wall}
    for kind, db, extra in (("plain", Path(workdir) / "drip.db", []),
                            ("enrol", Path(workdir) / "enrolled.db", ["--enroll", CAMPAIGN])):
        root, env = drip_env(workdir, db)
        peak = Path(workdir) / f"peak-{kind}"
        env["DRIP_BENCH_PEAK"] = str(peak)
        drip = [sys.executable, "-c", DRIP_WITH_PEAK]
        run_timed(drip + ["migrate"], env=env, cwd=root)          # what `drip init` does
        wall, cpu, out = run_timed(drip + ["subscribers", "import", str(path), "--consent",
                                           "benchmark", "--now", NOW.isoformat(), "--json",
                                           *extra], env=env, cwd=root)
        report = json.loads(out)
        assert report["imported"] == size and not report["rejected"], report
        figures[kind] = {"wall_s": wall, "cpu_s": cpu, "rows_per_s": size / wall,
                         "peak_mb": int(peak.read_text()) / 1024,
                         "cpu_rows_per_s": size / cpu, "enrolled": report["enrolled"],
                         "wall_vs_baseline": wall / base_wall, "cpu_vs_baseline": cpu / base_cpu}
    return figures


def child_first(args):
    """The first `drip plan` or `drip send` tick after a bulk import with --enroll."""
    from sender import plan
    from sender.config import Settings
    from sender.dispatch import send_due
    from sender.drip import Drip

    root = make_project(args.workdir)
    drip = Drip(Settings.from_env(environ(root, DRIP_DATABASE=args.db,
                                          DRIP_OUTBOX_DIR=Path(args.workdir) / "outbox")))
    start = time.perf_counter()
    if args.child == "plan":              # what `drip plan` does
        changes = plan.pending_changes(drip, now=NOW)
        rows = plan.upcoming(drip, now=NOW, days=7, limit=1000)
        result = {"changes": len(changes), "rows": len(rows)}
    else:                                 # one `drip send` tick
        report = send_due(drip, now=NOW)
        result = {"changes": report.changes, "sent": report.sent}
    result["seconds"] = time.perf_counter() - start
    result["peak_mb"] = peak_mb()
    drip.close()
    return result


def child_ops(args):
    from sender import plan, status
    from sender.config import Settings
    from sender.dispatch import send_due
    from sender.drip import Drip

    root = make_project(args.workdir)
    drip = Drip(Settings.from_env(environ(root, DRIP_DATABASE=args.db,
                                          DRIP_OUTBOX_DIR=Path(args.workdir) / "outbox")))
    store = drip.store
    for campaign in drip.campaigns:
        store.set_meta(f"campaign-fingerprint:{campaign.id}", campaign.fingerprint())
    first, later = (step.id for step in drip.campaigns.get(CAMPAIGN).steps[:2])
    # One future email per subscriber (spread over 60 days), so the ledger is as long as
    # the list; then nothing is due.
    start = time.perf_counter()
    after, due_ids = 0, []
    while page := store.subscriber_page(after_id=after, limit=20000):
        store.add_deliveries([{"subscriber_id": p.id, "campaign": CAMPAIGN, "step": later,
                               "due_at": NOW + timedelta(days=1, minutes=p.id % 86400)}
                              for p in page], now=NOW)
        if len(due_ids) < args.due:
            due_ids += [p.id for p in page][:args.due - len(due_ids)]
        after = page[-1].id
    setup_s = time.perf_counter() - start
    trivial, _ = timed(lambda: store.conn.execute("SELECT COUNT(*) FROM meta").fetchone(), 5)
    empty_s, empty = timed(lambda: send_due(drip, now=NOW), 5)
    assert empty.sent == 0
    store.add_deliveries([{"subscriber_id": i, "campaign": CAMPAIGN, "step": first,
                           "due_at": NOW - timedelta(hours=1)} for i in due_ids], now=NOW)
    claim_plan = [row[3] for row in store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT d.id FROM deliveries d JOIN subscribers s "
        "ON s.id = d.subscriber_id WHERE d.state = 'scheduled' AND d.due_at <= ? "
        "AND s.status = CASE WHEN d.campaign = ? THEN 'pending' ELSE 'active' END "
        "ORDER BY d.due_at, d.id LIMIT 100", ("2026-03-02T17:00:00Z", "confirmation"))]
    send_s, report = timed(lambda: send_due(drip, now=NOW))
    status_s, data = timed(lambda: status.status(drip, now=NOW), 3)
    plan7_s, rows7 = timed(lambda: plan.upcoming(drip, now=NOW, days=7, limit=1000), 3)
    plan60_s, rows60 = timed(lambda: plan.upcoming(drip, now=NOW, days=60, limit=1000), 3)
    changes_s, _ = timed(lambda: plan.pending_changes(drip, now=NOW), 3)
    drip.close()
    return {"ledger_setup_s": setup_s, "trivial_query_s": trivial, "empty_tick_s": empty_s,
            "empty_tick_vs_trivial": empty_s / trivial, "sent": report.sent, "send_s": send_s,
            "send_per_s": report.sent / send_s if send_s else 0, "status_s": status_s,
            "status_subscribers": sum(data["subscribers"].values()),
            "plan7_s": plan7_s, "plan7_rows": len(rows7), "plan60_s": plan60_s,
            "plan60_rows": len(rows60), "plan_changes_s": changes_s,
            "claim_uses_due_index": any("deliveries_due" in line for line in claim_plan),
            "claim_plan": claim_plan, "peak_mb": peak_mb()}


# --- the parent ----------------------------------------------------------------------------
def run_child(kind, **options):
    command = [sys.executable, __file__, "--child", kind]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode:
        raise SystemExit(f"{kind} child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def sqlite_sizes(sizes, due, keep, base, only=None):
    results = []
    for size in sizes:
        workdir = Path(tempfile.mkdtemp(prefix=f"drip-bench-{size}-", dir=base))
        try:
            path, db = workdir / "list.csv", workdir / "drip.db"
            write_csv(path, size)
            imported = import_figures(workdir, path, size)
            enrolled = workdir / "enrolled.db"
            result = {"size": size, "import": imported, "db_mb": db.stat().st_size / 2**20,
                      "enrolled_db_mb": enrolled.stat().st_size / 2**20}
            if only != "import":
                result["first"] = {kind: run_child(kind, workdir=workdir, db=enrolled)
                                   for kind in ("plan", "send")}
                result["ops"] = run_child("ops", workdir=workdir, db=db, due=min(due, size))
            results.append(result)
            print(f"  {size:>9,}: done", file=sys.stderr)
        finally:
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
    return results


def print_sqlite(results):
    base = results[0]
    print("\nImport, SQLite on the same disk: drip against `sqlite-utils insert ... --csv`")
    print(f"{'subscribers':>11} {'drip rows/s':>11} {'wall s':>7} {'CPU s':>6} "
          f"{'MB':>4} {'sqlite-utils rows/s':>19} {'wall s':>7} {'CPU s':>6} {'wall x':>6} "
          f"{'CPU x':>6} {'--enroll rows/s':>15} {'CPU s':>6} {'MB':>4} {'enrolled':>9}")
    for r in results:
        i = r["import"]
        p, e = i["plain"], i["enrol"]
        print(f"{r['size']:>11,} {p['rows_per_s']:>11,.0f} {p['wall_s']:>7.1f} {p['cpu_s']:>6.1f} "
              f"{p['peak_mb']:>4.0f} {i['baseline_rows_per_s']:>19,.0f} "
              f"{i['baseline_wall_s']:>7.1f} {i['baseline_cpu_s']:>6.1f} "
              f"{p['wall_vs_baseline']:>6.2f} {p['cpu_vs_baseline']:>6.2f} "
              f"{e['rows_per_s']:>15,.0f} {e['cpu_s']:>6.1f} {e['peak_mb']:>4.0f} "
              f"{e['enrolled']:>9,}")
    print(f"(x: drip's time as a multiple of sqlite-utils'; below 1 is faster. --enroll "
          f"{CAMPAIGN}: {len(_steps())} steps per person enrolled)")
    print(f"{'subscribers':>11} {'drip CPU rows/s':>15} {'--enroll CPU rows/s':>19} "
          f"{'sqlite-utils CPU rows/s':>23}  (rows per CPU second: the figure a busy machine "
          "does not change)")
    for r in results:
        i = r["import"]
        print(f"{r['size']:>11,} {i['plain']['cpu_rows_per_s']:>15,.0f} "
              f"{i['enrol']['cpu_rows_per_s']:>19,.0f} {r['size'] / i['baseline_cpu_s']:>23,.0f}")
    if "ops" not in base:
        return
    print("\nThe first `drip plan` and `drip send` tick after the import with --enroll")
    print(f"{'subscribers':>11} {'plan s':>7} {'plan MB':>8} {'changes':>8} {'send tick s':>11} "
          f"{'send MB':>8} {'changes':>8} {'db MB':>7}")
    for r in results:
        plan, send = r["first"]["plan"], r["first"]["send"]
        print(f"{r['size']:>11,} {plan['seconds']:>7.2f} {plan['peak_mb']:>8.0f} "
              f"{plan['changes']:>8,} {send['seconds']:>11.2f} {send['peak_mb']:>8.0f} "
              f"{send['changes']:>8,} {r['enrolled_db_mb']:>7.0f}")
    print("\nOperations, SQLite, one machine")
    print(f"{'subscribers':>11} {'empty tick ms':>13} {'claim+send':>16} {'status ms':>9} "
          f"{'plan 7d ms':>10} {'plan 60d ms':>11} {'ops MB':>7} {'db MB':>6}")
    for r in results:
        o = r["ops"]
        print(f"{r['size']:>11,} {o['empty_tick_s'] * 1000:>13.1f} "
              f"{o['sent']:>6,} in {o['send_s']:>5.1f}s {o['status_s'] * 1000:>9.1f} "
              f"{o['plan7_s'] * 1000:>10.1f} {o['plan60_s'] * 1000:>11.1f} {o['peak_mb']:>7.0f} "
              f"{r['db_mb']:>6.0f}")
    print(f"\nGrowth against {base['size']:,} subscribers (1.0 = flat):")
    print(f"{'subscribers':>11} {'list':>6} {'import rows/s':>13} {'--enroll':>8} "
          f"{'first plan':>10} {'first send':>10} {'empty tick':>10} {'send/s':>7} "
          f"{'status':>7} {'plan 7d':>8} {'ops MB':>7}")
    for r in results:
        i, o, f, bi, bo, bf = (r["import"], r["ops"], r["first"], base["import"], base["ops"],
                               base["first"])
        print(f"{r['size']:>11,} {r['size'] / base['size']:>6.0f} "
              f"{i['plain']['rows_per_s'] / bi['plain']['rows_per_s']:>13.2f} "
              f"{i['enrol']['rows_per_s'] / bi['enrol']['rows_per_s']:>8.2f} "
              f"{f['plan']['seconds'] / bf['plan']['seconds']:>10.2f} "
              f"{f['send']['seconds'] / bf['send']['seconds']:>10.2f} "
              f"{o['empty_tick_s'] / bo['empty_tick_s']:>10.2f} "
              f"{o['send_per_s'] / bo['send_per_s']:>7.2f} {o['status_s'] / bo['status_s']:>7.2f} "
              f"{o['plan7_s'] / bo['plan7_s']:>8.2f} {o['peak_mb'] / bo['peak_mb']:>7.2f}")
    last = results[-1]["ops"]
    print(f"\nclaim query plan at {results[-1]['size']:,}: " + "; ".join(last["claim_plan"])
          + f" (uses deliveries_due: {last['claim_uses_due_index']})")


def _steps():
    import tomllib

    return tomllib.loads((REPO / "campaigns" / f"{CAMPAIGN}.toml").read_text())["steps"]


def seed(drip, count, due):
    """``count`` active subscribers, each with the shipped campaign's first step due."""
    from sender import ledger
    from sender.models import Consent

    store, step = drip.store, drip.campaigns.get(CAMPAIGN).steps[0].id
    for start in range(0, count, 5000):
        store.add_subscribers([{"email": f"w{i}@example.com", "status": "active",
                                "consent": Consent(source="benchmark", at=due)}
                               for i in range(start, min(start + 5000, count))], now=due)
    after = 0
    while page := store.subscriber_page(after_id=after, limit=5000):
        ledger.schedule_for(store, [p.id for p in page], CAMPAIGN, [(step, due)], now=due)
        after = page[-1].id
    for campaign in drip.campaigns:
        store.set_meta(f"campaign-fingerprint:{campaign.id}", campaign.fingerprint())


def postgres_workers(count):
    from sender.config import Settings
    from sender.drip import Drip
    from tests.support import PostgresServer, run_workers

    server = PostgresServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="drip-bench-pg-"))
    results = {}
    try:
        for workers in (1, 4):
            root = make_project(workdir / f"w{workers}")
            env = environ(root, DRIP_DATABASE=server.create_database(f"bench{workers}"))
            drip = Drip(Settings.from_env(env))
            seed(drip, count, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
            drip.close()
            start = time.perf_counter()
            sent = run_workers(env, root, workers)
            elapsed = time.perf_counter() - start
            results[workers] = {"sent": sum(sent), "seconds": elapsed, "per_s": sum(sent) / elapsed,
                                "per_worker": sent}
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nPostgreSQL, {count:,} deliveries to the outbox ({os.cpu_count()} CPUs)")
    for workers, r in results.items():
        print(f"  {workers} worker(s): {r['sent']:,} sent in {r['seconds']:.1f}s = "
              f"{r['per_s']:,.0f}/s  (per worker: {r['per_worker']})")
    print(f"  4 workers vs 1: {results[4]['per_s'] / results[1]['per_s']:.2f}x")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000",
                        help="List sizes, comma separated (default 10000,50000).")
    parser.add_argument("--due", type=int, default=1000,
                        help="Deliveries due at once for the claim+send figure (default 1000).")
    parser.add_argument("--postgres", action="store_true",
                        help="Also measure 1 and 4 workers on a throwaway PostgreSQL server.")
    parser.add_argument("--pg-deliveries", type=int, default=2000)
    parser.add_argument("--json", help="Also write every figure to this file.")
    parser.add_argument("--keep", action="store_true", help="Keep the work folders.")
    parser.add_argument("--base", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="Where the work folders go (default /dev/shm, a RAM disk, where "
                             "there is one).")
    parser.add_argument("--only", choices=["import"],
                        help="Only the import figures (plain, --enroll, sqlite-utils).")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for name in ("workdir", "db"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child_first(args) if args.child in ("plan", "send") else child_ops(args)
        print(json.dumps(result))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"drip scale benchmark: sizes {sizes}, {args.due} due, Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} (above the CPU count, wall times include waiting for a "
          "CPU: compare CPU times)", file=sys.stderr)
    figures = {"sqlite": sqlite_sizes(sizes, args.due, args.keep, args.base, args.only)}
    print_sqlite(figures["sqlite"])
    if args.postgres:
        figures["postgres"] = postgres_workers(args.pg_deliveries)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
