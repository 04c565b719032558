"""Scale on one machine (SQLite) and beyond (PostgreSQL): the README's figures.

    python benchmarks/scale.py                                   # small, under a minute
    python benchmarks/scale.py --sizes 10000,100000,1000000 --due 10000
    python benchmarks/scale.py --postgres --pg-deliveries 20000  # 1 vs 4 workers

For each list size N, two fresh subprocesses (so each peak-memory figure is its own):

* import: N generated rows through ``lists.import_csv`` (rows/s), against a baseline
  in the same process: only reading the same file with the csv module;
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


def environ(root, **overrides):
    from tests.support import base_env

    return base_env(root, DRIP_SEND_WINDOW="always", **overrides)


def make_project(workdir):
    root = Path(workdir) / "project"
    if not root.exists():
        shutil.copytree(REPO / "tests" / "fixtures" / "project", root)
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
def child_import(args):
    from sender import lists
    from sender.config import Settings
    from sender.drip import Drip

    root = make_project(args.workdir)
    drip = Drip(Settings.from_env(environ(root, DRIP_DATABASE=args.db)))

    def parse_only():
        with open(args.csv, newline="", encoding="utf-8") as f:
            return sum(1 for _ in csv.reader(f))

    baseline, _ = timed(parse_only)
    seconds, report = timed(lambda: lists.import_csv(drip, args.csv, consent="benchmark",
                                                     now=NOW))
    drip.close()
    return {"rows": report.imported, "import_s": seconds, "rows_per_s": report.imported / seconds,
            "csv_parse_s": baseline, "import_vs_parse": seconds / baseline,
            "peak_mb": peak_mb()}


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
    # One future email per subscriber (spread over 60 days), so the ledger is as long as
    # the list; then nothing is due.
    start = time.perf_counter()
    after, due_ids = 0, []
    while page := store.subscriber_page(after_id=after, limit=20000):
        store.add_deliveries([{"subscriber_id": p.id, "campaign": "course", "step": "two",
                               "due_at": NOW + timedelta(days=1, minutes=p.id % 86400)}
                              for p in page], now=NOW)
        if len(due_ids) < args.due:
            due_ids += [p.id for p in page][:args.due - len(due_ids)]
        after = page[-1].id
    setup_s = time.perf_counter() - start
    trivial, _ = timed(lambda: store.conn.execute("SELECT COUNT(*) FROM meta").fetchone(), 5)
    empty_s, empty = timed(lambda: send_due(drip, now=NOW), 5)
    assert empty.sent == 0
    store.add_deliveries([{"subscriber_id": i, "campaign": "course", "step": "one",
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


def sqlite_sizes(sizes, due, keep):
    results = []
    for size in sizes:
        workdir = Path(tempfile.mkdtemp(prefix=f"drip-bench-{size}-"))
        try:
            path, db = workdir / "list.csv", workdir / "drip.db"
            write_csv(path, size)
            imported = run_child("import", workdir=workdir, csv=path, db=db)
            ops = run_child("ops", workdir=workdir, db=db, due=min(due, size))
            results.append({"size": size, "import": imported, "ops": ops,
                            "db_mb": db.stat().st_size / 2**20})
            print(f"  {size:>9,}: done", file=sys.stderr)
        finally:
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
    return results


def print_sqlite(results):
    base = results[0]
    print("\nSQLite, one machine")
    print(f"{'subscribers':>11} {'import rows/s':>13} {'vs csv-only':>11} {'import MB':>9} "
          f"{'empty tick ms':>13} {'claim+send':>16} {'status ms':>9} {'plan 7d ms':>10} "
          f"{'plan 60d ms':>11} {'ops MB':>7} {'db MB':>6}")
    for r in results:
        i, o = r["import"], r["ops"]
        print(f"{r['size']:>11,} {i['rows_per_s']:>13,.0f} {i['import_vs_parse']:>10.1f}x "
              f"{i['peak_mb']:>9.0f} {o['empty_tick_s'] * 1000:>13.1f} "
              f"{o['sent']:>6,} in {o['send_s']:>5.1f}s {o['status_s'] * 1000:>9.1f} "
              f"{o['plan7_s'] * 1000:>10.1f} {o['plan60_s'] * 1000:>11.1f} {o['peak_mb']:>7.0f} "
              f"{r['db_mb']:>6.0f}")
    print(f"\nGrowth against {base['size']:,} subscribers (1.0 = flat):")
    print(f"{'subscribers':>11} {'list':>6} {'import rows/s':>13} {'import MB':>9} "
          f"{'empty tick':>10} {'send/s':>7} {'status':>7} {'plan 7d':>8} {'ops MB':>7}")
    for r in results:
        i, o, bi, bo = r["import"], r["ops"], base["import"], base["ops"]
        print(f"{r['size']:>11,} {r['size'] / base['size']:>6.0f} "
              f"{i['rows_per_s'] / bi['rows_per_s']:>13.2f} {i['peak_mb'] / bi['peak_mb']:>9.2f} "
              f"{o['empty_tick_s'] / bo['empty_tick_s']:>10.2f} "
              f"{o['send_per_s'] / bo['send_per_s']:>7.2f} {o['status_s'] / bo['status_s']:>7.2f} "
              f"{o['plan7_s'] / bo['plan7_s']:>8.2f} {o['peak_mb'] / bo['peak_mb']:>7.2f}")
    last = results[-1]["ops"]
    print(f"\nclaim query plan at {results[-1]['size']:,}: " + "; ".join(last["claim_plan"])
          + f" (uses deliveries_due: {last['claim_uses_due_index']})")


def postgres_workers(count):
    from sender.config import Settings
    from sender.drip import Drip
    from tests.support import PostgresServer, run_workers, seed

    server = PostgresServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="drip-bench-pg-"))
    results = {}
    try:
        for workers in (1, 4):
            root = workdir / f"w{workers}"
            shutil.copytree(REPO / "tests" / "fixtures" / "project", root)
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
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for name in ("workdir", "csv", "db"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child_import(args) if args.child == "import" else child_ops(args)
        print(json.dumps(result))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"drip scale benchmark: sizes {sizes}, {args.due} due, Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs", file=sys.stderr)
    figures = {"sqlite": sqlite_sizes(sizes, args.due, args.keep)}
    print_sqlite(figures["sqlite"])
    if args.postgres:
        figures["postgres"] = postgres_workers(args.pg_deliveries)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
