"""Engine benchmark: claim + render + hand-off throughput, and an empty `drip send` tick.

    python benchmarks/engine.py                 # 10,000 due deliveries; tick at 1,000,000 rows
    python benchmarks/engine.py --due 2000 --rows 100000   # a quicker run

Figures are reported beside a baseline measured in the same process:

* throughput: the full pipeline (claim, render with the shipped templates, build the MIME
  message, write the .eml, record the result) against the hand-off alone (writing the
  same number of pre-built messages to the outbox);
* empty tick: a `send_due` that finds nothing due, with ROWS scheduled rows, against the
  same tick on a ledger 100 times smaller. A ratio near 1 means the due query uses the
  index and does not scan.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sender.compose import compose  # noqa: E402
from sender.config import Settings  # noqa: E402
from sender.dispatch import send_due  # noqa: E402
from sender.drip import Drip  # noqa: E402
from sender.models import iso  # noqa: E402
from sender.providers.outbox import OutboxProvider  # noqa: E402
from sender.schedule import parse_instant  # noqa: E402

NOW = parse_instant("2026-03-02T18:00Z")


def settings_for(folder):
    return Settings.from_env({
        "DRIP_DATABASE": str(folder / "bench.db"),
        "DRIP_OUTBOX_DIR": str(folder / "outbox"),
        "DRIP_FROM": "Coach Example <coach@example.com>",
        "DRIP_POSTAL_ADDRESS": "123 Example St, Redmond, WA 98052, USA",
        "DRIP_BASE_URL": "https://mail.example.com",
        "DRIP_SECRET_KEY": "benchmark-secret-0123456789abcdefghijklmnop",
        "DRIP_CAMPAIGNS_DIR": str(REPO / "campaigns"),
        "DRIP_TEMPLATES_DIR": str(REPO / "templates"),
        "DRIP_MIN_GAP": "0",
    })


def bulk_ledger(db_path, subscribers_count, steps_each, due):
    """Fill a fresh database quickly with raw SQL: benchmark set-up, not the code measured."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN")
    stamp = iso(NOW)
    conn.executemany(
        "INSERT INTO subscribers (uid, email, name, status, created_at, updated_at) "
        "VALUES (?, ?, ?, 'active', ?, ?)",
        ((f"uid{n:012d}", f"p{n}@example.com", f"Person {n}", stamp, stamp)
         for n in range(subscribers_count)))
    conn.executemany(
        "INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, created_at) "
        "VALUES (?, 'glute-progression', ?, ?, 'scheduled', ?)",
        ((n + 1, step, iso(due + timedelta(days=7 * i)), stamp)
         for n in range(subscribers_count)
         for i, step in enumerate(["why-flat", "alignment", "walking", "foundation", "hip-thrust",
                                   "penguin", "wall-single-leg-deadlift", "elevated-clamshell",
                                   "form-check-and-routine"][:steps_each])))
    conn.execute("COMMIT")
    conn.close()


def throughput(due_count):
    folder = Path(tempfile.mkdtemp(prefix="drip-bench-"))
    try:
        drip = Drip(settings_for(folder))
        drip.store.schema_version()  # opening the store creates the schema
        bulk_ledger(drip.settings.database, due_count, 1, NOW - timedelta(minutes=1))
        started = time.perf_counter()
        report = send_due(drip, now=NOW)
        pipeline = time.perf_counter() - started
        assert report.sent == due_count, report.to_dict()

        # Baseline: only the hand-off, for the same number of pre-built messages.
        person = drip.store.get_subscriber(id=1)
        campaign = drip.campaigns.get("glute-progression")
        message = compose(drip, person, campaign, campaign.steps[0], now=NOW, delivery_id=1)
        outbox = OutboxProvider(folder / "baseline")
        started = time.perf_counter()
        for n in range(due_count):
            message.message_id = f"<baseline.{n}@example.com>"
            outbox.send([message])
        baseline = time.perf_counter() - started
        drip.close()
        return pipeline, baseline
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def empty_tick(rows):
    def one(row_count):
        folder = Path(tempfile.mkdtemp(prefix="drip-bench-"))
        try:
            drip = Drip(settings_for(folder))
            drip.store.schema_version()
            steps = 9
            bulk_ledger(drip.settings.database, max(row_count // steps, 1), steps,
                        NOW + timedelta(days=30))
            send_due(drip, now=NOW)   # the first tick records campaign fingerprints
            timings = []
            for _ in range(5):
                started = time.perf_counter()
                report = send_due(drip, now=NOW)
                timings.append(time.perf_counter() - started)
                assert report.sent == 0
            plan = " ".join(r[3] for r in drip.store.conn.execute(
                "EXPLAIN QUERY PLAN SELECT d.id FROM deliveries d JOIN subscribers s "
                "ON s.id = d.subscriber_id WHERE d.state = 'scheduled' AND d.due_at <= ?", (iso(NOW),)))
            drip.close()
            return min(timings), plan
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    small, _ = one(max(rows // 100, 1000))
    large, plan = one(rows)
    return small, large, plan


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--due", type=int, default=10_000, help="due deliveries to send")
    parser.add_argument("--rows", type=int, default=1_000_000, help="scheduled rows for the empty tick")
    args = parser.parse_args()

    pipeline, baseline = throughput(args.due)
    print(f"send {args.due:,} due deliveries (outbox, shipped templates)")
    print(f"  pipeline: {pipeline:7.2f} s  {args.due / pipeline:9,.0f} deliveries/s")
    print(f"  baseline: {baseline:7.2f} s  {args.due / baseline:9,.0f} messages/s (hand-off only)")
    print(f"  ratio:    pipeline takes {pipeline / baseline:.1f}x the hand-off alone")
    small, large, plan = empty_tick(args.rows)
    print(f"empty send tick (nothing due), {args.rows:,} scheduled rows")
    print(f"  {args.rows // 100:,} rows: {small * 1000:7.2f} ms   {args.rows:,} rows: {large * 1000:7.2f} ms"
          f"   ratio {large / small:.2f}x for 100x the rows")
    print(f"  due query plan: {plan}")


if __name__ == "__main__":
    main()
