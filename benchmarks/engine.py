"""Engine benchmark: sending to the outbox against a naive pipeline, and an empty tick.

    python benchmarks/engine.py                 # 10,000 due deliveries; tick at 1,000,000 rows
    python benchmarks/engine.py --due 2000 --rows 100000   # a quicker run
    python benchmarks/engine.py --due 5000 --rows 0 --profile   # where the send's time goes

Figures are reported beside a baseline measured in the same process:

* rendering: the naive pipeline written here (for every email: Jinja, then CSS inlining,
  then markdownify, then the ``email`` package, one .eml file each) against drip's
  (``compose``: each step rendered once and filled in, the MIME bytes written directly,
  one .eml file each), CPU per email (``time.process_time``) over the same emails: the
  shipped glute steps, names that need escaping and encoding, and the three ``stage``
  values the templates branch on;
* sending: ``send_due`` of DUE deliveries like those to the outbox (claim, render, write,
  record), in a folder on a RAM disk when there is one (/dev/shm): CPU per email against
  the naive pipeline's, deliveries per second, and how many steps and emails could not be
  rendered once and went the per-person way;
* empty tick: a `send_due` that finds nothing due, with ROWS scheduled rows, against the
  same tick on a ledger 100 times smaller. A ratio near 1 means the due query uses the
  index and does not scan.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import css_inline
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from markdownify import markdownify
from markupsafe import Markup

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sender import step_render  # noqa: E402
from sender.compose import compose  # noqa: E402
from sender.config import Settings  # noqa: E402
from sender.dispatch import send_due  # noqa: E402
from sender.drip import Drip  # noqa: E402
from sender.models import Subscriber, iso  # noqa: E402
from sender.schedule import parse_instant  # noqa: E402

NOW = parse_instant("2026-03-02T18:00Z")
GLUTE_STEPS = ["why-flat", "alignment", "walking", "foundation", "hip-thrust", "penguin",
               "wall-single-leg-deadlift", "elevated-clamshell", "form-check-and-routine"]
NAMES = ["Ana Souza", "Zoë Ångström-Müller", "Tom & Jerry", "O'Brien", "李小龍", "", "Sam",
         "Maximiliane Wilhelmina von Hohenzollern-Sigmaringen"]
STAGES = [{"stage": "pregnant"}, {"stage": "postpartum"}, {}]


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


def person(n):
    """Subscriber number ``n`` of the benchmark (its id is n + 1), and the step it is due."""
    return (Subscriber(id=n + 1, uid=f"uid{n:012d}", email=f"p{n}@example.com",
                       name=NAMES[n % len(NAMES)], timezone=None, status="active", tags=[],
                       fields=dict(STAGES[n % len(STAGES)])),
            GLUTE_STEPS[n % len(GLUTE_STEPS)])


def bulk_ledger(db_path, subscribers_count, steps_each, due, *, spread=False):
    """Fill a fresh database quickly with raw SQL: benchmark set-up, not the code measured.
    Each subscriber gets ``steps_each`` glute steps from the first, or (``spread``) the one
    step ``person`` gives it."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN")
    stamp = iso(NOW)
    people = [person(n)[0] for n in range(subscribers_count)]
    conn.executemany(
        "INSERT INTO subscribers (uid, email, name, fields, status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'active', ?, ?)",
        ((p.uid, p.email, p.name, json.dumps(p.fields), stamp, stamp) for p in people))
    rows = ((n + 1, step, iso(due + timedelta(days=7 * i)), stamp)
            for n in range(subscribers_count)
            for i, step in enumerate([person(n)[1]] if spread else GLUTE_STEPS[:steps_each]))
    conn.executemany(
        "INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, created_at) "
        "VALUES (?, 'glute-progression', ?, ?, 'scheduled', ?)", rows)
    conn.execute("COMMIT")
    conn.close()


# --- the naive pipeline: every email from scratch ----------------------------------------------
class Naive:
    """What sending took before rendering once: for every email its context, the subject and
    preheader compiled, the body and the layout rendered by Jinja, the CSS inlined, the text
    part made by markdownify, an EmailMessage built and serialised, one .eml file written."""

    def __init__(self, drip, folder):
        self.drip, self.folder = drip, folder
        self.env = drip.templates
        self.settings = drip.settings
        self.inliner = css_inline.CSSInliner(keep_at_rules=True)
        folder.mkdir(parents=True, exist_ok=True)

    def send(self, subscriber, campaign, step, number):
        settings, env = self.settings, self.env
        unsubscribe = URLSafeSerializer(settings.secret_key, salt="drip-unsubscribe-v2")
        context = {
            "subscriber": {"email": subscriber.email, "name": subscriber.name,
                           "first_name": subscriber.first_name,
                           "fields": dict(subscriber.fields), "tags": list(subscriber.tags)},
            "coach": vars(settings.coach).copy(), "guide_url": settings.guide_url,
            "unsubscribe_url": f"{settings.base_url}/unsubscribe/{unsubscribe.dumps(subscriber.uid)}",
            "postal_address": settings.postal_address,
            "campaign": {"id": campaign.id, "name": campaign.name},
            "step": {"id": step.id, "number": step.number, "total": len(campaign.steps)},
            "is_test": False,
        }
        if campaign.entry_on == "signup":
            confirm = URLSafeTimedSerializer(settings.secret_key, salt="drip-confirm")
            context["confirm_url"] = f"{settings.base_url}/confirm/{confirm.dumps(subscriber.uid)}"
        text_env = env.overlay(autoescape=False)
        context["subject"] = text_env.from_string(step.subject).render(context).strip()
        context["preheader"] = text_env.from_string(step.preheader).render(context).strip()
        body = env.get_template(f"emails/{step.template}.html").render(context)
        page = env.get_template("emails/_layout.html").render({**context, "body": Markup(body)})
        html = self.inliner.inline(page)
        text = markdownify(body, heading_style="ATX", bullets="-", strip=["img"])
        text = env.get_template("emails/_layout.txt").render({**context, "body": text})
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = settings.sender
        local, _, domain = subscriber.email.rpartition("@")
        msg["To"] = Address(subscriber.name, local, domain)
        msg["Subject"] = context["subject"]
        msg["Date"] = format_datetime(NOW)
        msg["Message-ID"] = f"<{campaign.id}.{step.id}.{subscriber.uid}@{settings.sender.domain}>"
        msg["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(text, cte="quoted-printable")
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
        (self.folder / f"{number}.eml").write_bytes(msg.as_bytes())


def cpu_per_email(count, send):
    """CPU seconds per email of ``send(n)`` for n in range(count)."""
    started = time.process_time()
    for n in range(count):
        send(n)
    return (time.process_time() - started) / count


def rendering(folder, count):
    """CPU per email over the same ``count`` emails: (naive, drip from a cold start (every
    step planned and rendered once first), drip again (warm))."""
    folder.mkdir(parents=True, exist_ok=True)
    naive_drip, drip = Drip(settings_for(folder)), Drip(settings_for(folder))
    campaign = drip.campaigns.get("glute-progression")
    naive = Naive(naive_drip, folder / "naive")
    ours = folder / "drip"
    ours.mkdir()

    def send_naive(n):
        subscriber, step = person(n)
        naive.send(subscriber, campaign, campaign.step(step), n)

    def send_drip(n):
        subscriber, step = person(n)
        message = compose(drip, subscriber, campaign, campaign.step(step), now=NOW, delivery_id=n)
        (ours / f"{n}.eml").write_bytes(message.as_bytes())

    return (cpu_per_email(count, send_naive), cpu_per_email(count, send_drip),
            cpu_per_email(count, send_drip))


def sending(folder, due_count, *, profile=False):
    """(CPU per email, wall seconds, the render-once counts) of ``send_due`` for
    ``due_count`` deliveries spread like ``person``."""
    folder.mkdir(parents=True, exist_ok=True)
    drip = Drip(settings_for(folder))
    drip.store.schema_version()  # opening the store creates the schema
    bulk_ledger(drip.settings.database, due_count, 1, NOW - timedelta(minutes=1), spread=True)
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    report = send_due(drip, now=NOW)
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    assert report.sent == due_count, report.to_dict()
    written = sum(1 for _ in (folder / "outbox").glob("*.eml"))
    assert written == due_count, f"{written} .eml files for {due_count} sent"
    sent = drip.store.delivery_counts().get("sent", 0)
    assert sent == due_count, f"the ledger holds {sent} sent for {due_count}"
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        if os.environ.get("DRIP_PROFILE_CALLERS"):
            pstats.Stats(profiler).print_callers(os.environ["DRIP_PROFILE_CALLERS"])
    counts = step_render.stats(drip.templates)
    drip.close()
    return cpu / due_count, wall, counts


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
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="scheduled rows for the empty tick (0: skip it)")
    parser.add_argument("--naive", type=int, default=2_000,
                        help="emails rendered by each pipeline for the CPU comparison")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the database and the outbox go (default: /dev/shm, a RAM disk)")
    parser.add_argument("--profile", action="store_true", help="profile the send, print the top costs")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="drip-bench-", dir=args.dir))
    try:
        naive, cold, warm = rendering(folder / "render", args.naive)
        per_email, wall, counts = sending(folder / "send", args.due, profile=args.profile)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"render + MIME + one .eml file each, {args.naive:,} emails (shipped glute steps)")
    print(f"  naive pipeline: {naive * 1000:6.2f} ms CPU per email  {1 / naive:9,.0f} emails/s")
    print(f"  drip, cold:     {cold * 1000:6.2f} ms CPU per email  {1 / cold:9,.0f} emails/s"
          f"   ratio {naive / cold:5.1f}x less CPU per email (each step planned first)")
    print(f"  drip, warm:     {warm * 1000:6.2f} ms CPU per email  {1 / warm:9,.0f} emails/s"
          f"   ratio {naive / warm:5.1f}x less CPU per email (the same emails again)")
    print(f"send {args.due:,} due deliveries to the outbox in {args.dir or tempfile.gettempdir()} "
          "(claim, render, write, record)")
    print(f"  drip send:      {per_email * 1000:6.2f} ms CPU per email  "
          f"{args.due / wall:9,.0f} deliveries/s ({wall:.2f} s wall; {1 / per_email:,.0f}/s "
          "on one core by CPU time; target: 3,000/s)")
    print(f"  ratio:          {naive / per_email:6.1f}x less CPU per email than the naive pipeline "
          "(target: 20x)")
    print(f"  rendered once:  {len(counts.once)} steps, {len(counts.fell_back)} fell back"
          f"{': ' + '; '.join(f'{k}: {v}' for k, v in counts.fell_back.items()) if counts.fell_back else ''}")
    print(f"  emails:         {counts.emails_once:,} filled in, {counts.emails_per_person:,} "
          f"rendered per person{' ' + str(dict(counts.person_reasons)) if counts.person_reasons else ''}")
    if args.rows:
        small, large, plan = empty_tick(args.rows)
        print(f"empty send tick (nothing due), {args.rows:,} scheduled rows")
        print(f"  {args.rows // 100:,} rows: {small * 1000:7.2f} ms   {args.rows:,} rows: "
              f"{large * 1000:7.2f} ms   ratio {large / small:.2f}x for 100x the rows")
        print(f"  due query plan: {plan}")


if __name__ == "__main__":
    main()
