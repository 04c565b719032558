"""Provider benchmark: messages per second through each provider module.

    python benchmarks/providers.py              # about 20-30 s
    python benchmarks/providers.py --quick      # fewer messages

Each provider module (payload, HTTP session, parsing) sends emails of a realistic size
(about 15 KB of HTML) to a loopback server that speaks its API (the one the tests use),
answering at once (0 ms) or after 50 ms, as a distant API would. With the module's
defaults: Postmark 500 per request, 1 in flight; SendGrid and Mailgun one per request,
4 in flight (DRIP_CONCURRENCY); Resend 100 per request at 5 requests a second
(DRIP_RATE_LIMIT). SMTP runs against aiosmtpd when it is installed.

"allowed" is what the batch size, requests in flight, rate limit and latency permit:
batch x min(rate limit, in flight / latency); "-" means no bound at 0 ms latency.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sender.providers import DEFAULT_CONCURRENCY, DEFAULT_RATE  # noqa: E402
from tests.providers.conftest import FakeApi, make_message, make_provider, speaks  # noqa: E402

FILLER = "<p>" + "Gentle core work after birth, one breath at a time. " * 6 + "</p>\n"


def messages(count):
    out = []
    for n in range(1, count + 1):
        message = make_message(n)
        message.html = message.html + FILLER * 45          # about 15 KB, like a real email
        out.append(message)
    return out


def allowed(name, batch, latency):
    rate = DEFAULT_RATE.get(name)
    in_flight = DEFAULT_CONCURRENCY.get(name, 1)
    per_second = [r for r in (rate, in_flight / latency if latency else None) if r]
    return batch * min(per_second) if per_second else None


def run_http(name, count, latency):
    api = FakeApi()
    api.default = speaks(name)
    api.latency = latency
    provider = make_provider(name, api.url, rate_limit=DEFAULT_RATE.get(name),
                             concurrency=DEFAULT_CONCURRENCY.get(name, 1), sleep=time.sleep)
    batch = provider.batch_size
    items = messages(count)
    try:
        provider.send(items[:1])                              # warm the connection
        start = time.perf_counter()
        for i in range(0, count, batch):
            results = provider.send(items[i:i + batch])
            assert all(r.outcome == "accepted" for r in results), results[0]
        elapsed = time.perf_counter() - start
    finally:
        provider.close()
        api.close()
    per_request = batch if name in ("postmark", "resend") else 1
    return count / elapsed, allowed(name, per_request, latency)


def run_smtp(count, latency):
    try:
        import asyncio

        from aiosmtpd.controller import Controller
    except ImportError:
        return None, None
    from sender.providers.smtp import SmtpProvider
    from tests.providers.conftest import free_port

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            if latency:
                await asyncio.sleep(latency)
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    provider = SmtpProvider("127.0.0.1", port, security="none", timeout=10)
    items = messages(count)
    try:
        provider.send(items[:1])
        start = time.perf_counter()
        for i in range(0, count, provider.batch_size):
            provider.send(items[i:i + provider.batch_size])
        elapsed = time.perf_counter() - start
    finally:
        provider.close()
        controller.stop()
    return count / elapsed, (1 / latency if latency else None)


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
    rows = []
    total = time.perf_counter()
    for name, cases in plan.items():
        for latency, count in cases.items():
            count = max(int(count * scale), 10)
            if name == "smtp":
                rate, bound = run_smtp(count, latency)
                if rate is None:
                    rows.append((name, f"{latency * 1000:.0f} ms", count, "n/a (no aiosmtpd)", ""))
                    continue
            else:
                rate, bound = run_http(name, count, latency)
            rows.append((name, f"{latency * 1000:.0f} ms", count, f"{rate:,.0f}",
                         f"{bound:,.0f}" if bound else "-"))
    headers = ("provider", "latency", "messages", "msgs/s", "allowed msgs/s")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).rjust(w) if i >= 2 else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    print(f"\n{time.perf_counter() - total:.1f} s in all; 50,000 emails at the slowest "
          "rate above would take " + _eta(rows))


def _eta(rows):
    slow = [(r[0], float(r[3].replace(",", ""))) for r in rows
            if r[1] == "50 ms" and r[3][0].isdigit()]
    name, rate = min(slow, key=lambda x: x[1])
    return f"{50000 / rate / 60:.0f} min ({name})."


if __name__ == "__main__":
    main()
