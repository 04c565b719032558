"""The dashboard at scale: the subscriber list and the overview with 1,000,000 subscribers.

    python benchmarks/admin.py                        # 1,000,000 subscribers (~3 min to build)
    python benchmarks/admin.py --size 100000          # quicker
    python benchmarks/admin.py --keep /tmp/admin-db   # keep (and reuse) the built databases

A SQLite database is filled directly (executemany) with SIZE subscribers who signed up over
three years (ids in signup order, as a real list grows), in the statuses a list of that age
has, each with two ledger rows (the confirmation or welcome email sent; the first course
email sent, or scheduled over the next weeks for the newest). Then the dashboard answers
real requests in the same process (Werkzeug's test client against ``create_app``, logged
in), each page timed REPEAT times (median and best), beside a baseline in the same
process: the same pages on a list 100 times smaller. Last, every SQL statement the list and
the overview run is printed with SQLite's query plan, and a plan that reads a whole table
without an index is flagged.

Figures, never pass/fail: this is not a test. The goal is under 200 ms for the list and
the overview at 1,000,000 subscribers.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sender import browse  # noqa: E402
from sender.config import Settings  # noqa: E402
from sender.drip import Drip  # noqa: E402
from sender.models import iso  # noqa: E402
from sender.schedule import parse_instant  # noqa: E402
from sender.segments import parse_segment  # noqa: E402
from sender.store import SQLiteStore  # noqa: E402
from sender.web.admin import auth, data  # noqa: E402

NOW = parse_instant("2026-03-02T18:00Z")
PASSWORD = "benchmark password 123"
YEARS = 3
STATUSES = [("active", 80), ("pending", 4), ("paused", 2), ("unsubscribed", 13), ("bounced", 1)]


def environ(root):
    from tests.support import base_env

    return base_env(root, DRIP_SEND_WINDOW="always", DRIP_TIMEZONE="America/Chicago")


def build(path, size):
    """Fill a fresh database at ``path`` with ``size`` subscribers and their ledger rows."""
    store = SQLiteStore(path)           # the schema, through the migrations
    conn = store.conn
    rng = random.Random(size)
    weights = [w for _, w in STATUSES]
    names = [s for s, _ in STATUSES]
    span = YEARS * 365 * 86400
    zones = ["America/Chicago", "America/New_York", "Europe/Madrid", None]
    batch, ledger = [], []

    def flush():
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO subscribers (id, uid, email, name, timezone, status, tags, fields, "
            "consent_source, consent_at, confirmed_at, withdrawn_at, paused_at, created_at, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
        conn.executemany(
            "INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, attempts, "
            "provider, sent_at, created_at) VALUES (?,?,?,?,?,?,?,?,?)", ledger)
        conn.execute("COMMIT")
        batch.clear()
        ledger.clear()

    for i in range(1, size + 1):
        created = NOW - timedelta(seconds=span * (size - i) / size + rng.random() * 60)
        status = rng.choices(names, weights)[0]
        confirmed = None if status == "pending" else created + timedelta(minutes=rng.randint(1, 600))
        withdrawn = (confirmed + timedelta(days=rng.randint(1, 200))
                     if status == "unsubscribed" else None)
        if withdrawn is not None and withdrawn > NOW:
            withdrawn = NOW - timedelta(minutes=rng.randint(1, 600))
        tag = "postpartum" if i % 3 else "pregnant"
        batch.append((i, f"{i:024x}", f"person{i}@example.com", f"Person {i}",
                      zones[i % 4], status, json.dumps([tag]), json.dumps({"stage": tag}),
                      "form:website", iso(created), iso(confirmed), iso(withdrawn),
                      iso(NOW) if status == "paused" else None, iso(created), iso(created)))
        if confirmed is None:
            ledger.append((i, "confirmation", "confirm", iso(created), "sent", 1, "outbox",
                           iso(created), iso(created)))
        else:
            ledger.append((i, "welcome", "hello", iso(confirmed), "sent", 1, "outbox",
                           iso(confirmed), iso(confirmed)))
            due = confirmed + timedelta(days=3)
            if due > NOW and status == "active":
                ledger.append((i, "course", "one", iso(due), "scheduled", 0, None, None,
                               iso(confirmed)))
            elif due <= NOW and status != "bounced":
                ledger.append((i, "course", "one", iso(due), "sent", 1, "outbox", iso(due),
                               iso(confirmed)))
        if len(batch) >= 20_000:
            flush()
    flush()
    conn.execute("ANALYZE")
    store.close()


def database(workdir, size, keep):
    path = Path(workdir) / f"admin-{size}.db"
    if keep and path.exists():
        return path, 0.0
    for leftover in Path(workdir).glob(f"admin-{size}.db*"):
        leftover.unlink()
    start = time.perf_counter()
    build(path, size)
    return path, time.perf_counter() - start


class Dashboard:
    """The web app on one database, logged in, answering in this process."""

    def __init__(self, root, path):
        from werkzeug.test import Client

        from sender.web import create_app

        env = {**environ(root), "DRIP_DATABASE": str(path)}
        self.settings = Settings.from_env(env)
        drip = Drip(self.settings)
        auth.set_password(drip.store, "coach", PASSWORD, now=NOW)
        drip.close()
        self.app = create_app(self.settings, clock=lambda: NOW)
        self.client = Client(self.app)
        form = self.client.get("/admin/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        answer = self.client.post("/admin/login", data={"csrf": token, "name": "coach",
                                                        "password": PASSWORD})
        assert answer.status_code == 303, answer.text

    def time(self, path, repeat):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            answer = self.client.get(path)
            body = answer.get_data()
            times.append(time.perf_counter() - start)
            assert answer.status_code == 200, (path, answer.status_code, body[:300])
        return statistics.median(times), min(times), body

    def close(self):
        self.app.close()


def pages(size):
    middle = size // 2
    return [
        ("list: first page", "/admin/subscribers"),
        ("list: a page in the middle", f"/admin/subscribers?after={middle}"),
        ("list: status:paused", "/admin/subscribers?segment=status:paused"),
        ("list: tag:pregnant and field:stage", "/admin/subscribers?segment=tag:pregnant+and+field:stage"),
        ("list: search 'person4242'", "/admin/subscribers?q=person4242"),
        ("list: search, no match (a full window)", "/admin/subscribers?q=nobody-at-all"),
        ("list: exact address", f"/admin/subscribers?q=person{middle}@example.com"),
        ("overview, per day", "/admin/"),
        ("overview, per week", "/admin/?period=week"),
    ]


def plans(root, path):
    """Every statement the list and the overview run, with its query plan."""
    env = {**environ(root), "DRIP_DATABASE": str(path)}
    drip = Drip(Settings.from_env(env))
    statements = []
    drip.store.conn.set_trace_callback(statements.append)
    browse.page(drip.store)
    browse.page(drip.store, segment=parse_segment("status:paused"))
    browse.page(drip.store, segment=parse_segment("tag:pregnant and field:stage"))
    browse.page(drip.store, text="nobody-at-all")
    data.overview(drip, now=NOW, period="week")
    drip.store.conn.set_trace_callback(None)
    seen, result = set(), []
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        shape = re.sub(r"'[^']*'|\b\d+\b", "?", sql)
        if shape in seen:
            continue
        seen.add(shape)
        plan = [row[3] for row in drip.store.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        result.append((sql, plan))
    drip.close()
    return result


def whole_table(plan):
    """Plan lines that read a whole table with no index at all."""
    return [line for line in plan if re.match(r"SCAN (subscribers|deliveries|events)\b", line)
            and "INDEX" not in line]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", metavar="FOLDER",
                        help="Build the databases here and reuse them on the next run.")
    args = parser.parse_args()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="drip-admin-"))
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "project"
    if not root.exists():
        shutil.copytree(REPO / "tests" / "fixtures" / "project", root)
    try:
        small = max(args.size // 100, 1000)
        figures = {}
        for size in (small, args.size):
            path, took = database(workdir, size, bool(args.keep))
            if took:
                print(f"built {size:,} subscribers in {took:.0f} s "
                      f"({path.stat().st_size / 1e6:,.0f} MB)")
            dashboard = Dashboard(root, path)
            for name, url in pages(size):
                dashboard.time(url, 1)        # the first answer also loads the campaigns
                figures[(size, name)] = dashboard.time(url, args.repeat)
            dashboard.close()
        print(f"\nAnswer times, median (best) of {args.repeat}, whole request in process:")
        print(f"{'page':44} {small:>12,} {args.size:>16,}   ratio")
        for name, _ in pages(args.size):
            base, big = figures[(small, name)], figures[(args.size, name)]
            print(f"{name:44} {base[0] * 1000:7.1f} ms {big[0] * 1000:8.1f} ms "
                  f"({big[1] * 1000:5.1f})  {big[0] / base[0]:5.2f}x")
        print(f"\nQuery plans at {args.size:,} subscribers:")
        flagged = 0
        for sql, plan in plans(root, workdir / f"admin-{args.size}.db"):
            print("  " + " ".join(sql.split())[:150])
            for line in plan:
                print(f"      {line}")
            flagged += len(whole_table(plan))
        print(f"\n{flagged} plan line(s) read a whole table without an index.")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sqlite3.enable_callback_tracebacks(True)
    main()
