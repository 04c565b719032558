"""Provider benchmark: messages per second through each provider module.

    python benchmarks/providers.py              # about 20-30 s
    python benchmarks/providers.py --quick      # fewer messages

Needs only the bench extras: ``pip install -e '.[bench]'``.

Each provider module (payload, HTTP session, parsing) sends emails of a realistic size
(about 15 KB of HTML) to a loopback server that speaks its API (the one the tests use),
answering at once (0 ms) or after 50 ms, as a distant API would. With the module's
defaults: Postmark 500 per request, 1 in flight; SendGrid and Mailgun one per request,
4 in flight (DRIP_CONCURRENCY); Resend 100 per request at 5 requests a second
(DRIP_RATE_LIMIT). SMTP runs against aiosmtpd, strict about the greeting as Postfix is.

Only what really went counts. Each message is a delivery claimed from a real SQLite
ledger; each result is recorded there (sent, or failed with its reason); a message counts
only when the ledger has it as ``sent`` and the loopback server received it, once. Any
message rejected, failed, not received or received twice is reported and the run exits
with status 1, printing no figure for that case.

"allowed" is what the batch size, requests in flight, rate limit and latency permit:
batch x min(rate limit, in flight / latency); "-" means no bound at 0 ms latency.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from email import message_from_bytes
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sender.models import Consent  # noqa: E402
from sender.providers.base import ACCEPTED  # noqa: E402
from sender.providers.mailgun.sending import MailgunProvider  # noqa: E402
from sender.providers.postmark.sending import PostmarkProvider  # noqa: E402
from sender.providers.resend.sending import ResendProvider  # noqa: E402
from sender.providers.sendgrid.sending import SendGridProvider  # noqa: E402
from sender.store import open_store  # noqa: E402
from tests.providers.loopback import NOW, FakeApi, make_message, make_provider, speaks  # noqa: E402

FILLER = "<p>" + "Gentle core work after birth, one breath at a time. " * 6 + "</p>\n"
MAILGUN_ID = re.compile(rb'name="v:delivery_id"\r\n\r\n(\d+)\r\n')
MESSAGE_ID = re.compile(r"<course\.one\.uid(\d+)@example\.com>")
# Per provider: requests per second and requests in flight when the settings leave them empty.
HTTP_PROVIDERS = (PostmarkProvider, SendGridProvider, MailgunProvider, ResendProvider)
DEFAULT_RATE = {p.name: p.default_rate for p in HTTP_PROVIDERS if p.default_rate}
DEFAULT_CONCURRENCY = {p.name: p.default_concurrency for p in HTTP_PROVIDERS}


class Ledger:
    """A real SQLite store with ``count`` due deliveries claimed for sending, as a run claims
    them; ``record`` stores each result, ``sent()`` reads back the ids stored as sent."""

    def __init__(self, count):
        self.folder = Path(tempfile.mkdtemp(prefix="drip-bench-providers-"))
        self.store = open_store(str(self.folder / "bench.db"))
        consent = Consent(source="benchmark", at=NOW)
        self.store.add_subscribers([{"email": f"reader{n}@example.org", "status": "active",
                                     "consent": consent} for n in range(count)], now=NOW)
        people = self.store.subscribers_by_email([f"reader{n}@example.org" for n in range(count)])
        self.store.add_deliveries([{"subscriber_id": p.id, "campaign": "course", "step": "one",
                                    "due_at": NOW} for p in people.values()], now=NOW)
        self.claimed = self.store.claim_due(NOW, count)
        if len(self.claimed) != count:
            raise SystemExit(f"benchmark set-up: claimed {len(self.claimed)} of {count} deliveries")

    def messages(self):
        out = []
        for delivery in self.claimed:
            message = make_message(delivery.id)
            message.html = message.html + FILLER * 45          # about 15 KB, like a real email
            out.append(message)
        return out

    def record(self, provider, results):
        with self.store.transaction():
            for r in results:
                if r.outcome == ACCEPTED:
                    self.store.update_delivery(r.delivery_id, expect_state="sending", state="sent",
                                               attempts=1, sent_at=NOW, provider=provider,
                                               provider_message_id=r.provider_message_id, last_error=None)
                else:
                    self.store.update_delivery(r.delivery_id, expect_state="sending", state="failed",
                                               attempts=1, provider=provider,
                                               last_error=f"{r.outcome}: {r.error}")

    def sent(self):
        return {d.id for d in self.store.deliveries(states=("sent",))}

    def failures(self):
        return [f"delivery {d.id}: {d.last_error}" for d in self.store.deliveries(states=("failed",))]

    def close(self):
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def received_ids(name, requests):
    """Delivery ids the loopback API received, each as often as it came (from our metadata)."""
    ids = Counter()
    for seen in requests:
        if seen.method != "POST":
            continue
        if name == "mailgun":
            ids.update(int(n) for n in MAILGUN_ID.findall(seen.body))
            continue
        body = seen.json()
        if name == "postmark":
            ids.update(int(item["Metadata"]["delivery_id"]) for item in body)
        elif name == "sendgrid":
            ids.update(int(p["custom_args"]["delivery_id"]) for p in body["personalizations"])
        elif name == "resend":
            ids.update(int(tag["value"]) for item in (body if isinstance(body, list) else [body])
                       for tag in item["tags"] if tag["name"] == "delivery_id")
    return ids


def check(name, latency, ledger, received, timed_ids, elapsed):
    """Messages per second that really went (stored as sent, received once), or None with the
    problems printed when anything was rejected, failed, lost or duplicated."""
    sent = ledger.sent()
    claimed = {d.id for d in ledger.claimed}
    problems = ledger.failures()
    problems += [f"delivery {i}: received {n} times" for i, n in sorted(received.items()) if n > 1]
    problems += [f"delivery {i}: stored as sent but never received"
                 for i in sorted(sent - set(received))]
    problems += [f"delivery {i}: neither sent nor failed" for i in sorted(claimed - sent)
                 if not any(p.startswith(f"delivery {i}:") for p in problems)]
    problems += [f"delivery {i}: received but not claimed" for i in sorted(set(received) - claimed)]
    if problems:
        print(f"{name} at {latency * 1000:.0f} ms: {len(sent & set(received))} of {len(claimed)} "
              f"really sent; {len(problems)} problem(s):", file=sys.stderr)
        for line in problems[:10]:
            print(f"  {line}", file=sys.stderr)
        return None
    return len(timed_ids & sent & set(received)) / elapsed


def allowed(name, batch, latency):
    rate = DEFAULT_RATE.get(name)
    in_flight = DEFAULT_CONCURRENCY.get(name, 1)
    per_second = [r for r in (rate, in_flight / latency if latency else None) if r]
    return batch * min(per_second) if per_second else None


def timed_sends(provider, ledger, batch):
    """Send the first message alone (warming the connection), then the rest in batches;
    returns the ids sent in the timed part and the seconds it took. Results are recorded
    in the ledger after the clock stops."""
    items = ledger.messages()
    ledger.record(provider.name, provider.send(items[:1]))
    results, start = [], time.perf_counter()
    for i in range(1, len(items), batch):
        results += provider.send(items[i:i + batch])
    elapsed = time.perf_counter() - start
    ledger.record(provider.name, results)
    return {m.delivery_id for m in items[1:]}, elapsed


def run_http(name, count, latency):
    api = FakeApi()
    api.default = speaks(name)
    api.latency = latency
    provider = make_provider(name, api.url, rate_limit=DEFAULT_RATE.get(name),
                             concurrency=DEFAULT_CONCURRENCY.get(name, 1), sleep=time.sleep)
    ledger = Ledger(count + 1)
    try:
        timed, elapsed = timed_sends(provider, ledger, provider.batch_size)
    finally:
        provider.close()
        api.close()
    try:
        rate = check(name, latency, ledger, received_ids(name, api.requests), timed, elapsed)
    finally:
        ledger.close()
    per_request = provider.batch_size if name in ("postmark", "resend") else 1
    return rate, allowed(name, per_request, latency)


def run_smtp(count, latency):
    from sender.providers.smtp.sending import SmtpProvider
    from tests.providers.smtp_server import Recorder, StrictController

    mailbox = Recorder(latency=latency)
    controller = StrictController(mailbox)
    controller.start()
    provider = SmtpProvider("127.0.0.1", controller.port, security="none", timeout=10)
    ledger = Ledger(count + 1)
    try:
        timed, elapsed = timed_sends(provider, ledger, provider.batch_size)
    finally:
        provider.close()
        controller.stop()
    received = Counter(int(MESSAGE_ID.fullmatch(message_from_bytes(r.content)["Message-ID"]).group(1))
                       for r in mailbox.received)
    try:
        rate = check("smtp", latency, ledger, received, timed, elapsed)
    finally:
        ledger.close()
    return rate, (1 / latency if latency else None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Fewer messages.")
    args = parser.parse_args(argv)
    scale = 0.25 if args.quick else 1.0
    # Message counts sized so that each case takes a few seconds at most.
    plan = {
        "postmark": {0.0: 3000, 0.05: 3000},
        "sendgrid": {0.0: 1000, 0.05: 400},
        "mailgun": {0.0: 1000, 0.05: 400},
        "resend": {0.0: 1000, 0.05: 1000},
        "smtp": {0.0: 500, 0.05: 60},
    }
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        parser.exit(2, "benchmarks/providers.py: aiosmtpd is missing (the SMTP server); "
                       "install the bench extras: pip install -e '.[bench]'\n")
    rows, failed = [], []
    total = time.perf_counter()
    for name, cases in plan.items():
        for latency, count in cases.items():
            count = max(int(count * scale), 10)
            if name == "smtp":
                rate, bound = run_smtp(count, latency)
            else:
                rate, bound = run_http(name, count, latency)
            if rate is None:
                failed.append(f"{name} at {latency * 1000:.0f} ms")
            rows.append((name, f"{latency * 1000:.0f} ms", count,
                         "FAILED" if rate is None else f"{rate:,.0f}", f"{bound:,.0f}" if bound else "-"))
    headers = ("provider", "latency", "messages", "msgs/s", "allowed msgs/s")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).rjust(w) if i >= 2 else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    if failed:
        print(f"\nFAILED: not every message went ({', '.join(failed)}; see above), so those "
              "cases have no figure.", file=sys.stderr)
        return 1
    print(f"\n{time.perf_counter() - total:.1f} s in all, every message stored as sent and "
          "received once; 50,000 emails at the slowest rate above would take " + _eta(rows))
    return 0


def _eta(rows):
    slow = [(r[0], float(r[3].replace(",", ""))) for r in rows
            if r[1] == "50 ms" and r[3][0].isdigit()]
    name, rate = min(slow, key=lambda x: x[1])
    return f"{50000 / rate / 60:.0f} min ({name})."


if __name__ == "__main__":
    sys.exit(main())
