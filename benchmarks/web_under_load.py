"""The web endpoints while a provider is slow: does a `drip send` ever make a signup or an
unsubscribe wait?

    python benchmarks/web_under_load.py                  # provider answers in 5 s, 100 + 100
    python benchmarks/web_under_load.py --latency 2 --people 50    # a quicker run

A real `drip serve` and a real `drip send` run against one SQLite database; the provider is
a Postmark-style API on loopback that takes ``--latency`` seconds to answer each request.
While `drip send` has a batch in flight, ``--people`` one-click unsubscribes and as many
signups are sent one after another, and each answer's time is measured. The baseline is
the same requests against the same server before `drip send` starts (same process, same
database). Afterwards the ledger is checked: every unsubscribe was applied, and no message
reached the provider for anyone after her unsubscribe committed (a message may only have
been handed over before: its ``handed_at`` is not later than her ``withdrawn_at``). The run
exits 1 if any request failed or any message broke that rule.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sender import subscribers  # noqa: E402
from sender.config import Settings  # noqa: E402
from sender.drip import Drip  # noqa: E402
from sender.tokens import UNSUBSCRIBE  # noqa: E402
from tests.providers.loopback import FakeApi, free_port, speaks, wait_for_port  # noqa: E402

DRIP = [sys.executable, "-m", "sender"]


def settings_for(root, api_url, port):
    return {
        "DRIP_DATABASE": str(root / "drip.db"),
        "DRIP_PROVIDER": "postmark",
        "POSTMARK_SERVER_TOKEN": "pm-bench-token-1234",
        "POSTMARK_API_URL": api_url,
        "DRIP_HTTP_TIMEOUT": "30",
        "DRIP_FROM": "Coach Bench <coach@bench.drip.test>",
        "DRIP_POSTAL_ADDRESS": "1 Bench Road, Redmond, WA 98052, USA",
        "DRIP_BASE_URL": f"http://127.0.0.1:{port}",
        "DRIP_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
        "DRIP_TIMEZONE": "America/Los_Angeles",
        "DRIP_SEND_WINDOW": "always",
        "DRIP_MIN_GAP": "0",
        "DRIP_SIGNUP_LIMIT_IP": "100000",
        "DRIP_CAMPAIGNS_DIR": str(REPO / "campaigns"),
        "DRIP_TEMPLATES_DIR": str(REPO / "templates"),
        "DRIP_LOG_FORMAT": "text",
    }


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def timed_requests(base_url, tokens, emails):
    """One unsubscribe, then one signup, in turn; the seconds each took and any failures."""
    unsubscribes, signups, failures = [], [], []
    session = requests.Session()
    for token, email in zip(tokens, emails, strict=True):
        began = time.perf_counter()
        answer = session.post(f"{base_url}/unsubscribe/{token}",
                              data={"List-Unsubscribe": "One-Click"}, timeout=30)
        unsubscribes.append(time.perf_counter() - began)
        if answer.status_code != 200:
            failures.append(f"unsubscribe answered {answer.status_code}")
        began = time.perf_counter()
        answer = session.post(f"{base_url}/subscribe", timeout=30,
                              json={"email": email, "name": "Reader", "consent": "yes"})
        signups.append(time.perf_counter() - began)
        if answer.status_code != 200:
            failures.append(f"signup answered {answer.status_code}: {answer.text[:80]}")
    return unsubscribes, signups, failures


def people(drip, prefix, count, now):
    added = [subscribers.add_subscriber(drip, f"{prefix}{i}@bench.drip.test", now=now,
                                        confirmed=True).subscriber for i in range(count)]
    return added, [drip.signer.make(UNSUBSCRIBE, person.uid) for person in added]


def after_unsubscribe(drip, unsubscribed, received):
    """Messages that reached the provider for someone after her unsubscribe committed."""
    late = []
    for person in unsubscribed:
        stored = drip.store.get_subscriber(id=person.id)
        if stored.status != "unsubscribed":
            late.append(f"{person.email}: not unsubscribed ({stored.status})")
            continue
        withdrawn = stored.consent.withdrawn_at
        for delivery in drip.store.deliveries(subscriber_id=person.id):
            if delivery.provider_message_id in received[person.email] and (
                    delivery.handed_at is None or delivery.handed_at > withdrawn):
                late.append(f"{person.email}: {delivery.campaign}/{delivery.step} handed at "
                            f"{delivery.handed_at}, after {withdrawn}")
        if len(received[person.email]) > sum(d.state == "sent" for d in drip.store.deliveries(
                subscriber_id=person.id)):
            late.append(f"{person.email}: the provider got more than the ledger handed over")
    return late


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per provider answer")
    parser.add_argument("--people", type=int, default=100, help="unsubscribes (and signups)")
    parser.add_argument("--backlog", type=int, default=2000,
                        help="other subscribers whose welcome email is due, to keep the sender busy")
    args = parser.parse_args(argv)

    api = FakeApi()
    api.latency = args.latency
    postmark, received_ids = speaks("postmark"), {}

    def answer(seen):
        reply = postmark(seen)
        if seen.path == "/email/batch":
            for item, result in zip(seen.json(), reply.body, strict=True):
                received_ids.setdefault(item["To"].rsplit("<", 1)[-1].rstrip(">"), set()).add(
                    result["MessageID"])
        return reply

    api.default = answer
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="drip-web-bench-") as tmp:
        root = Path(tmp)
        env = settings_for(root, api.url, port)
        run_env = {**os.environ, **env}
        subprocess.run([*DRIP, "migrate"], env=run_env, check=True, capture_output=True)
        drip = Drip(Settings.from_env(env))
        now = datetime.now(UTC).replace(microsecond=0)
        quiet, quiet_tokens = people(drip, "quiet", args.people, now)
        busy, busy_tokens = people(drip, "busy", args.people, now)
        warm, warm_tokens = people(drip, "warm", 1, now)
        people(drip, "backlog", args.backlog, now)
        # The quiet group's and the backlog's welcome emails are due too; the quiet group
        # unsubscribes before anything is sent, which cancels theirs.
        serve = subprocess.Popen([*DRIP, "serve", "--port", str(port)], env=run_env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sender = None
        try:
            if not wait_for_port(port, serve):
                sys.exit(f"drip serve did not start: {serve.stderr.read().decode()[-400:]}")
            base = env["DRIP_BASE_URL"]
            # Not timed: the first requests load the campaigns and templates.
            timed_requests(base, warm_tokens, ["new-warm@bench.drip.test"])
            quiet_unsub, quiet_signup, failures = timed_requests(
                base, quiet_tokens, [f"new-quiet{i}@bench.drip.test" for i in range(args.people)])
            sender = subprocess.Popen([*DRIP, "send"], env=run_env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while not any(r.path == "/email/batch" for r in api.requests):
                if time.monotonic() > deadline or sender.poll() is not None:
                    sys.exit("drip send never reached the provider")
                time.sleep(0.02)
            busy_unsub, busy_signup, more = timed_requests(
                base, busy_tokens, [f"new-busy{i}@bench.drip.test" for i in range(args.people)])
            failures += more
            in_flight_after = sender.poll() is None
            out, err = sender.communicate(timeout=600)
            if sender.returncode != 0:
                failures.append(f"drip send exited {sender.returncode}: {err.decode()[-400:]}")
        finally:
            if sender is not None and sender.poll() is None:
                sender.kill()
            serve.terminate()     # it drains its background sends (confirmations) first
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait(30)
            api.close()
        everyone = quiet + busy + warm
        late = after_unsubscribe(drip, everyone, {p.email: received_ids.get(p.email, set())
                                                  for p in everyone})
        handed = sum(len(ids) for ids in received_ids.values())
        drip.close()

    rows = [("unsubscribe", quiet_unsub, busy_unsub), ("signup", quiet_signup, busy_signup)]
    print(f"provider latency {args.latency:g} s; {args.people} unsubscribes and {args.people} "
          f"signups while `drip send` had a request in flight (still sending when the last "
          f"answered: {'yes' if in_flight_after else 'no'}); {handed} messages handed over")
    print(f"{'request':<12} {'idle p50':>9} {'idle p99':>9} {'sending p50':>12} "
          f"{'sending p99':>12} {'max':>8} {'ratio p99':>10}")
    summary = {}
    for name, idle, loaded in rows:
        idle_p99, loaded_p99 = percentile(idle, 0.99), percentile(loaded, 0.99)
        print(f"{name:<12} {percentile(idle, .5) * 1000:>7.1f}ms {idle_p99 * 1000:>7.1f}ms "
              f"{percentile(loaded, .5) * 1000:>10.1f}ms {loaded_p99 * 1000:>10.1f}ms "
              f"{max(loaded) * 1000:>6.1f}ms {loaded_p99 / idle_p99:>9.2f}x")
        summary[name] = {"idle_p99_ms": round(idle_p99 * 1000, 1),
                         "sending_p99_ms": round(loaded_p99 * 1000, 1)}
    print(f"messages handed over for someone after her unsubscribe committed: {len(late)}")
    for line in late[:10]:
        print(f"  {line}")
    for line in failures[:10]:
        print(f"  failed: {line}")
    print(json.dumps({"latency_s": args.latency, "people": args.people, "late": len(late),
                      "failures": len(failures), **summary}))
    return 1 if late or failures or not in_flight_after else 0


if __name__ == "__main__":
    sys.exit(main())
