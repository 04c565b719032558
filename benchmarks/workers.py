"""Workers benchmark: 1 against 4 `drip worker` processes on PostgreSQL, sending through a
loopback provider that answers each request after 50 ms, as a distant API would.

    python benchmarks/workers.py --provider sendgrid --deliveries 2000 --rounds 3
    python benchmarks/workers.py --deliveries 50000 --rounds 3 --sqlite

Two kinds of provider. SendGrid takes one message a request, four requests at a time per
worker: a worker mostly waits for the network, the case the target is about (the work is
I/O-bound there). Postmark (the default) takes 500 a request: a worker then spends about
twice as long on its CPU as on the wait, and on a small machine the cores, not the
workers, set the ceiling.

For each case: a throwaway PostgreSQL server (as the tests start one: ``tests/support.py``),
a fresh database with N active subscribers, each with one delivery due; the loopback
server of ``tests/providers/loopback.py`` (the one the provider tests and
``benchmarks/providers.py`` use); then W real `drip worker --exit-when-idle` processes
started at once. A figure is N over the seconds from starting the processes to the last
one's exit (their start-up included); N over the seconds the server was busy with them (from
the first request's arrival to the last one's answer); and, where each worker holds one
connection (Postmark), the rate while every worker was sending (from the last worker's first
request to the first worker's last: no start-up, no finish, the rate long-running workers
keep up); and the ratio of 4 workers to 1 of each, against the target of 3x. With
``--rounds`` the pair runs again (every other round in the other order) and the medians are
reported. CPU is each side's: the workers', PostgreSQL's (every server process, counted
after the seeding connection ended) and this process's (the loopback API, which answers a
Postmark batch without decoding it: ``answer_quickly``).

Only what really went counts: every delivery must be stored as sent, with the provider's
message id, and the server must have received each exactly once (every request body is
decoded after the run); otherwise the problems are printed and the run exits with status 1,
with no figure for that case.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.providers.loopback import KEYS, FakeApi, Reply, speaks  # noqa: E402
from tests.support import PostgresServer, base_env, seed  # noqa: E402

TARGET = 3.0


def environ(root, database, api, extra, provider):
    setting = {"postmark": ("POSTMARK_API_URL", "POSTMARK_SERVER_TOKEN"),
               "sendgrid": ("SENDGRID_API_URL", "SENDGRID_API_KEY")}[provider]
    return base_env(root, DRIP_DATABASE=database, DRIP_SEND_WINDOW="always",
                    DRIP_PROVIDER=provider, **{setting[0]: api.url, setting[1]: KEYS[provider]},
                    **extra)


# Where each provider takes mail: Postmark a batch of up to 500, SendGrid one message.
SEND_PATH = {"postmark": "/email/batch", "sendgrid": "/v3/mail/send"}


# In a batch's JSON an unescaped quote only ever opens or closes a string, so these bytes
# occur once per message and never inside a value (a quote inside one is written \").
_ITEM = re.compile(rb'"To": ?"((?:[^"\\]|\\.)*)"')


def answer_quickly():
    """Postmark's answer to a batch, as ``speaks("postmark")`` gives it (an item per message:
    ErrorCode 0, "OK", a fresh MessageID, its To), made without decoding the batch: each To
    is copied as the request wrote it, already a JSON string. A distant provider's CPU is not
    ours, and on two cores the loopback server's decoding of every batch took about 6% of
    the CPU the workers could have used. The run is still checked in full: every request
    body is decoded after the run (``received``)."""
    counter = iter(range(1, 10**9))

    def postmark(seen):
        if seen.path != "/email/batch":
            return speaks("postmark")(seen)
        items = b",".join(b'{"ErrorCode":0,"Message":"OK","MessageID":"pm-%d","To":"%s"}'
                          % (next(counter), to) for to in _ITEM.findall(seen.body))
        return Reply(200, raw=b"[" + items + b"]")

    return postmark


def received(api, provider):
    """How often the server received each delivery id (from our metadata)."""
    ids = Counter()
    for seen in api.requests:
        if seen.method == "POST" and seen.path == SEND_PATH[provider]:
            body = seen.json()
            ids.update(int(item["Metadata"]["delivery_id"]) for item in body) \
                if provider == "postmark" else ids.update(
                int(p["custom_args"]["delivery_id"]) for p in body["personalizations"])
    return ids


def stored(database):
    """{delivery id: (state, provider_message_id)} as the ledger holds them."""
    from sender.store import open_store

    store = open_store(database)
    try:
        return {d.id: (d.state, d.provider_message_id) for d in store.deliveries()}
    finally:
        store.close()


def server_cpu(data_dir):
    """CPU seconds the PostgreSQL server has used so far: the postmaster's own, its finished
    children's (each connection's backend once it exits) and its living children's (the
    backends still connected, autovacuum, the WAL and background writers); 0 for SQLite
    (``data_dir`` None)."""
    if data_dir is None:
        return 0.0
    pid = (Path(data_dir) / "postmaster.pid").read_text().split()[0]
    ticks = sum(_cpu_fields(pid)[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _cpu_fields(entry.name)
            if fields and fields[1] == int(pid):        # its parent is the postmaster
                ticks += fields[11] + fields[12]
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_fields(pid):
    """The numeric fields of /proc/PID/stat after the command name (state first, as 0), or
    [] for a process that has gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return [0, *(int(f) for f in text.rsplit(")", 1)[1].split()[1:])]


def gone(pid, timeout=10.0):
    """Wait until process ``pid`` (the seeding's PostgreSQL backend) has exited and been
    reaped, so the CPU it used is counted before the workers start, not in their figure."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_case(workdir, name, database, count, workers, latency, extra, data_dir=None,
             provider="postmark"):
    """Seed, start ``workers`` processes at once, wait for all; returns the figures, or None
    with the problems printed."""
    from sender.config import Settings
    from sender.drip import Drip

    root = workdir / name
    shutil.copytree(REPO / "tests" / "fixtures" / "project", root)
    api = FakeApi()
    answer = answer_quickly() if provider == "postmark" else speaks(provider)
    arrivals = []

    def timed(seen):
        arrived = time.perf_counter()
        reply = answer(seen)
        items = reply.raw.count(b'"ErrorCode":') if reply.raw else int(seen.path == SEND_PATH[provider])
        arrivals.append((arrived, seen.client, items))
        return reply

    api.default, api.latency = timed, latency
    env = environ(root, database, api, extra, provider)
    try:
        drip = Drip(Settings.from_env(env))
        seed(drip, count, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
        backend = getattr(drip.store.conn, "info", None)
        backend = backend.backend_pid if data_dir is not None else None
        drip.close()
        if backend is not None:
            gone(backend)       # its CPU is the seeding's, not the workers'
        command = [sys.executable, "-m", "sender", "worker", "--interval", "0.5",
                   "--exit-when-idle"]
        child_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
        cpu = (children_cpu(), server_cpu(data_dir), time.process_time())
        start = time.perf_counter()
        procs = [subprocess.Popen(command, cwd=root, env=child_env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(workers)]
        outputs = [p.communicate(timeout=1800) for p in procs]
        elapsed = time.perf_counter() - start
        cpu = (children_cpu() - cpu[0], server_cpu(data_dir) - cpu[1],
               time.process_time() - cpu[2])
        times = [t for t, _, _ in arrivals]
        span = max(times) + latency - min(times) if arrivals else elapsed
        steady = all_sending(arrivals, workers)
        requests = sum(1 for s in api.requests if s.path == SEND_PATH[provider])
        got = received(api, provider)
    finally:
        api.close()
    problems = [f"worker {n} exited {p.returncode}: {err.strip()[-500:]}"
                for n, (p, (_, err)) in enumerate(zip(procs, outputs, strict=True)) if p.returncode]
    per_worker = [sum(int(n) for n in re.findall(r"^(\d+) sent", out, re.M)) for out, _ in outputs]
    rows = stored(database)
    problems += [f"delivery {i}: received {n} times" for i, n in sorted(got.items()) if n > 1]
    problems += [f"delivery {i}: stored {state}" for i, (state, _) in sorted(rows.items())
                 if state != "sent"]
    problems += [f"delivery {i}: stored as sent but never received"
                 for i, (state, _) in sorted(rows.items()) if state == "sent" and i not in got]
    problems += [f"delivery {i}: sent without the provider's message id"
                 for i, (state, mid) in sorted(rows.items()) if state == "sent" and not mid]
    problems += [f"delivery {i}: received but not in the ledger" for i in sorted(set(got) - set(rows))]
    if len(rows) != count:
        problems.append(f"the ledger holds {len(rows)} deliveries, not {count}")
    if sum(per_worker) != count:
        problems.append(f"the workers report {sum(per_worker)} sent, not {count}")
    if problems:
        print(f"{name}: {len(problems)} problem(s):", file=sys.stderr)
        for line in problems[:10]:
            print(f"  {line}", file=sys.stderr)
        return None
    return {"workers": workers, "sent": count, "seconds": elapsed, "per_s": count / elapsed,
            "sending_s": span, "sending_per_s": count / span, "per_worker": per_worker,
            "all_sending_s": steady[0], "all_sending_per_s": steady[1],
            "requests": requests, "cpu_workers_s": cpu[0], "cpu_database_s": cpu[1],
            "cpu_api_s": cpu[2], "cores_busy": sum(cpu) / elapsed}


def all_sending(arrivals, workers):
    """(seconds, messages a second) while every worker was sending: from the moment the last
    of them made its first request to the moment the first of them made its last, counting
    the messages of the requests that arrived in between. Each worker holds one connection
    (its HTTP session), so the connection a request came on says whose it was; (0, None)
    when there were more connections than workers, or the window is empty."""
    by_client = {}
    for arrived, client, _ in arrivals:
        by_client.setdefault(client, []).append(arrived)
    if len(by_client) != workers:
        return 0.0, None
    start = max(min(times) for times in by_client.values())
    end = min(max(times) for times in by_client.values())
    if end <= start:
        return 0.0, None
    sent = sum(items for arrived, _, items in arrivals if start <= arrived < end)
    return end - start, sent / (end - start)


def compare(cases, many):
    """Print each case; returns the ratios (many workers to one): from the start of the
    processes, while sending, and while all send."""
    one, more = cases.get(1), cases.get(many)
    for workers, r in sorted(cases.items()):
        shown = "FAILED" if r is None else (
            f"{r['sent']:,} sent; {r['per_s']:,.0f} msgs/s from start ({r['seconds']:.1f} s), "
            f"{r['sending_per_s']:,.0f} msgs/s while sending ({r['sending_s']:.1f} s), "
            f"{r['all_sending_per_s'] or 0:,.0f} msgs/s while all {workers} send "
            f"({r['all_sending_s']:.1f} s); "
            f"{r['requests']} requests; per worker {r['per_worker']}")
        print(f"  {workers} worker(s): {shown}")
        if r is not None:
            print(f"    CPU per 1,000 messages: workers {r['cpu_workers_s'] * 1000 / r['sent']:.2f} s, "
                  f"database {r['cpu_database_s'] * 1000 / r['sent']:.2f} s, loopback API "
                  f"{r['cpu_api_s'] * 1000 / r['sent']:.2f} s; {r['cores_busy']:.2f} of "
                  f"{os.cpu_count()} cores busy on average")
    if not (one and more):
        return None
    ratios = (more["per_s"] / one["per_s"], more["sending_per_s"] / one["sending_per_s"],
              more["all_sending_per_s"] / one["all_sending_per_s"]
              if more["all_sending_per_s"] and one["all_sending_per_s"] else None)
    print(f"  {many} workers vs 1: {ratios[0]:.2f}x from start, {ratios[1]:.2f}x while sending, "
          + (f"{ratios[2]:.2f}x while all send" if ratios[2] else "no window where all sent"))
    return ratios


RATES = (("from start", "per_s"), ("while sending", "sending_per_s"),
         ("while all send", "all_sending_per_s"))


def summarise(rounds, many, target=None):
    """Over paired rounds (one worker, then ``many``, each on a fresh database): the median
    of each rate and of the rounds' ratios, with the range of the ratios; the target's
    verdict on the medians when given. Returns the median ratios (None where a round failed
    or had no window)."""
    medians = []
    print(f"  median of {len(rounds)} paired rounds:")
    for index, (label, key) in enumerate(RATES):
        ones = [r[1][key] for r in rounds if r.get(1) and r[1][key]]
        mores = [r[many][key] for r in rounds if r.get(many) and r[many][key]]
        ratios = [r["ratios"][index] for r in rounds if r.get("ratios") and r["ratios"][index]]
        if not ratios and key == "all_sending_per_s":
            medians.append(None)
            print(f"    {label}: not measured (a worker sends on several connections at "
                  "once, so a request does not say whose it is)")
            continue
        if len(ratios) != len(rounds):
            medians.append(None)
            print(f"    {label}: not every round gave a figure")
            continue
        middle = statistics.median(ratios)
        medians.append(middle)
        print(f"    {label}: 1 worker {statistics.median(ones):,.0f} msgs/s, {many} workers "
              f"{statistics.median(mores):,.0f} msgs/s, {middle:.2f}x (rounds {min(ratios):.2f}x "
              f"to {max(ratios):.2f}x)" + ("" if target is None else
                                          f"; target {target:.0f}x "
                                          f"{'met' if middle >= target else 'NOT met'}"))
    return medians


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--provider", choices=sorted(SEND_PATH), default="postmark",
                        help="postmark: batches of 500 (the workers' CPU is most of the time, "
                             "on a small machine); sendgrid: one message a request, 4 at a "
                             "time per worker (the wait for the network is most of it)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="Paired rounds (1 worker, then --workers), each on a fresh "
                             "database; the medians are reported beside each round.")
    parser.add_argument("--sqlite", action="store_true",
                        help="Also 1 against 2 processes on one SQLite file.")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="A setting for the workers, e.g. DRIP_CONCURRENCY=2 (repeatable).")
    parser.add_argument("--json", help="Also write the figures to this file.")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.set)
    workdir = Path(tempfile.mkdtemp(prefix="drip-bench-workers-"))
    figures = {"postgresql": [], "sqlite": []}
    try:
        server = PostgresServer().start()
        try:
            for number in range(args.rounds):
                cases = {}
                # Every other round the other way round, so that neither case always runs
                # second; each case on a fresh database that replaces the last one, so no
                # earlier case's autovacuum runs during (and is counted in) the next.
                for workers in (1, args.workers)[::1 if number % 2 == 0 else -1]:
                    database = server.create_database("bench")
                    cases[workers] = run_case(
                        workdir, f"r{number}pg{workers}", database, args.deliveries, workers,
                        args.latency, extra, data_dir=server.data, provider=args.provider)
                figures["postgresql"].append(cases)
        finally:
            server.stop()
        if args.sqlite:
            for number in range(args.rounds):
                cases = {}
                for workers in (1, 2)[::1 if number % 2 == 0 else -1]:
                    cases[workers] = run_case(
                        workdir, f"r{number}sqlite{workers}",
                        str(workdir / f"r{number}sqlite{workers}.db"), args.deliveries, workers,
                        args.latency, extra, provider=args.provider)
                figures["sqlite"].append(cases)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.deliveries:,} due deliveries through a loopback "
          f"{'Postmark' if args.provider == 'postmark' else 'SendGrid'} answering in "
          f"{args.latency * 1000:.0f} ms per request; {os.cpu_count()} CPUs"
          + (f"; {extra}" if extra else ""))
    for engine, many, target in (("postgresql", args.workers, TARGET), ("sqlite", 2, None)):
        if not figures[engine]:
            continue
        print("PostgreSQL" if engine == "postgresql" else "SQLite (one file)")
        for number, cases in enumerate(figures[engine]):
            if args.rounds > 1:
                print(f" round {number + 1}")
            cases["ratios"] = compare(cases, many)
        summarise(figures[engine], many, target)
    failed = any(r is None for rounds in figures.values() for cases in rounds
                 for key, r in cases.items() if key != "ratios")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    if failed:
        print("\nFAILED: not every delivery went exactly once (see above).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
