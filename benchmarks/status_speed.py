"""How long `drip status --json` takes on a big list: the README's status figure.

    python benchmarks/status_speed.py                      # 1,000,000 subscribers and deliveries
    python benchmarks/status_speed.py --size 100000 --repeat 21

Builds a SQLite database of ``--size`` subscribers with one delivery each (a realistic mix:
most people active, most mail scheduled for the coming weeks, a third sent, a few failed,
cancelled, due now, overdue, waiting on a problem or on a decision), then times what `drip
status --json` does after opening the database (the report and its JSON) ``--repeat``
times, and prints the median against a baseline in the same run: the same report with the
queries drip used before stored counts (GROUP BY over the whole list and ledger, and the
due counts that read each due row). Then each query status ran, with SQLite's plan. The
database is built in one statement per table, so the counting triggers run for every row.
Figures, never pass/fail: this is not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)

# One statement per table; n is 1..size. Statuses: 90% active, 4% pending, 4% unsubscribed,
# 1% paused, 1% bounced. Deliveries: 1,000 due in the last hour, 100 overdue by a day, 35%
# sent, 1% each failed and cancelled, 50 waiting on a problem, 3 waiting on a decision,
# the rest scheduled over the next 60 days.
SUBSCRIBERS = """
WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < :size)
INSERT INTO subscribers (uid, email, name, status, created_at, updated_at)
SELECT printf('%024x', n), 'person' || n || '@example.com', 'Person ' || n,
       CASE WHEN n % 100 < 90 THEN 'active' WHEN n % 100 < 94 THEN 'pending'
            WHEN n % 100 < 98 THEN 'unsubscribed' WHEN n % 100 = 98 THEN 'paused'
            ELSE 'bounced' END, '2025-06-01T00:00:00Z', '2025-06-01T00:00:00Z'
FROM k
"""
DELIVERIES = """
WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < :size)
INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, reason, last_error,
                        claimed_at, handed_at, created_at)
SELECT n, 'course', 'two',
       CASE WHEN n <= 1000 THEN strftime('%Y-%m-%dT%H:%M:%SZ', :now, '-' || (n % 60) || ' minutes')
            WHEN n <= 1100 THEN strftime('%Y-%m-%dT%H:%M:%SZ', :now, '-1 day')
            WHEN n % 100 < 35 THEN strftime('%Y-%m-%dT%H:%M:%SZ', :now, '-' || (n % 60 + 2) || ' days')
            ELSE strftime('%Y-%m-%dT%H:%M:%SZ', :now, '+' || (n % 86400) || ' minutes') END,
       CASE WHEN n <= 1100 THEN 'scheduled' WHEN n <= 1150 THEN 'scheduled'
            WHEN n <= 1153 THEN 'sending' WHEN n % 100 < 35 THEN 'sent'
            WHEN n % 100 = 35 THEN 'failed' WHEN n % 100 = 36 THEN 'cancelled'
            ELSE 'scheduled' END,
       CASE WHEN n BETWEEN 1101 AND 1150 THEN 'retrying'
            WHEN n BETWEEN 1151 AND 1153 THEN 'needs_decision'
            WHEN n % 100 = 35 THEN 'rejected' END,
       CASE WHEN n BETWEEN 1101 AND 1150 THEN 'provider said 503'
            WHEN n BETWEEN 1151 AND 1153 THEN 'interrupted during hand-off'
            WHEN n % 100 = 35 THEN 'provider rejected the address' END,
       CASE WHEN n BETWEEN 1151 AND 1153 THEN :now END,
       CASE WHEN n BETWEEN 1151 AND 1153 THEN :now END,
       '2025-06-01T00:00:00Z'
FROM k
"""

# What drip counted with before the stored counts (m010).
OLD_SUBSCRIBER_COUNTS = "SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status"
OLD_DELIVERY_COUNTS = "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state"
OLD_COUNT_DUE = ("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'scheduled' AND due_at <= ? "
                 "AND campaign NOT IN (SELECT campaign FROM campaign_brakes "
                 "WHERE resumed_at IS NULL)")


def build(path, size):
    from sender.models import iso
    from sender.store import SQLiteStore

    store = SQLiteStore(path)
    start = time.perf_counter()
    with store.transaction():
        store.conn.execute(SUBSCRIBERS, {"size": size})
        store.conn.execute(DELIVERIES, {"size": size, "now": iso(NOW)})
    seconds = time.perf_counter() - start
    store.close()
    return seconds


def old_queries(store):
    """The store as it counted before: the same report, the old queries."""
    def grouped(sql):
        return lambda: {row[0]: row[1] for row in store.conn.execute(sql)}

    store.subscriber_counts = grouped(OLD_SUBSCRIBER_COUNTS)
    store.delivery_counts = grouped(OLD_DELIVERY_COUNTS)
    store.count_due = lambda now: store.conn.execute(OLD_COUNT_DUE, (now.strftime(
        "%Y-%m-%dT%H:%M:%SZ"),)).fetchone()[0]


def median_ms(drip, repeat):
    from sender.status import status

    times, data = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        data = status(drip, now=NOW)
        json.dumps(data, default=str)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, data


def plans(drip):
    """Each SELECT status runs, with SQLite's plan for it."""
    from sender.status import status

    statements = []
    drip.store.conn.set_trace_callback(statements.append)
    status(drip, now=NOW)
    drip.store.conn.set_trace_callback(None)
    found = {}
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT") and sql not in found:
            found[sql] = [row[3] for row in drip.store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
    return found


def main():
    from sender.config import Settings
    from sender.drip import Drip
    from tests.support import base_env

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000,
                        help="Subscribers, and deliveries (one each); default 1,000,000.")
    parser.add_argument("--repeat", type=int, default=11, help="Runs of each (default 11).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = parser.parse_args()
    shm = Path("/dev/shm")
    workdir = Path(tempfile.mkdtemp(prefix="drip-status-", dir=shm if shm.is_dir() else None))
    try:
        root = workdir / "project"
        shutil.copytree(REPO / "tests" / "fixtures" / "project", root)
        db = workdir / "drip.db"
        built = build(db, args.size)
        print(f"built {args.size:,} subscribers and {args.size:,} deliveries in {built:.1f}s "
              f"({db.stat().st_size / 2**20:.0f} MB, {workdir})", file=sys.stderr)
        drip = Drip(Settings.from_env(base_env(root, DRIP_DATABASE=str(db))))
        new_ms, new = median_ms(drip, args.repeat)
        query_plans = plans(drip)
        old_queries(drip.store)
        old_ms, old = median_ms(drip, args.repeat)
        drip.close()
        same = {k: new[k] for k in ("subscribers", "deliveries", "due_now", "overdue")} == \
            {k: old[k] for k in ("subscribers", "deliveries", "due_now", "overdue")}
        print(f"drip status --json at {args.size:,} subscribers and deliveries "
              f"(median of {args.repeat}, after opening):")
        print(f"  stored counts (now):    {new_ms:8.1f} ms")
        print(f"  GROUP BY counts (old):  {old_ms:8.1f} ms")
        print(f"  old / now:              {old_ms / new_ms:8.1f}x   (same figures: {same})")
        print(f"  subscribers {new['subscribers']}; deliveries {new['deliveries']}; due now "
              f"{new['due_now']}, overdue {new['overdue']}, waiting {new['waiting']['count']}, "
              f"needs decision {len(new['needs_decision'])}")
        print("\nqueries and their plans:")
        for sql, plan in query_plans.items():
            print("  " + " ".join(sql.split())[:150])
            for line in plan:
                print(f"      {line}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
