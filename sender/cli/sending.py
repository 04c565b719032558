"""Planning and sending: plan, simulate, send, worker, status, resolve, campaigns."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime

import click

from .. import dispatch, plan, subscribers
from ..errors import InvalidInput
from ..schedule import parse_duration, parse_instant
from ..segments import parse_segment
from ..status import status as status_report
from ..worker import run_worker
from .common import (
    echo_json,
    echo_table,
    fmt_local,
    fmt_utc,
    json_option,
    now_option,
    pass_state,
    resolve_now,
)


# --- planning ------------------------------------------------------------------------------
@click.command("plan")
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True,
              help="How far ahead to look.")
@click.option("--segment", help="Only emails to subscribers in this segment, e.g. "
                                "'tag:postpartum and status:active' (see `drip subscribers list`).")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Show at most this many emails.")
@now_option
@json_option
@pass_state
def plan_command(state, days, segment, limit, now, as_json):
    """What goes out in the next N days, to whom, and what edited campaign files would
    change for existing subscribers (nothing is changed until `drip send`).

    \b
    Example:
      drip plan --days 30
    """
    drip = state.drip
    moment = resolve_now(now)
    changes = plan.pending_changes(drip, now=moment)
    rows = plan.upcoming(drip, now=moment, days=days, limit=limit,
                         segment=parse_segment(segment) if segment else None)
    if as_json:
        echo_json({"upcoming": [r.to_dict() for r in rows], "campaign_changes": changes})
        return
    if changes:
        click.echo(f"Campaign files changed: {len(changes)} change(s) for existing subscribers "
                   "at the next `drip send`:")
        for c in changes:
            when = c["due_at"] or c["old_due_at"] or ""
            note = f" ({c['reason']})" if c["reason"] else ""
            click.echo(f"  {c['action']:<6} {c['email']} {c['campaign']}/{c['step']} {when}{note}")
        click.echo("")
    echo_table([(fmt_utc(r.due_at), fmt_local(r.local_time), r.email,
                 f"{r.campaign}/{r.step}", r.subject) for r in rows],
               ("UTC", "LOCAL", "TO", "EMAIL", "SUBJECT"))
    click.echo(f"{len(rows)} email(s) in the next {days} day(s)"
               + (f" (the first {limit}; use --limit for more)." if len(rows) == limit else "."))


@click.command()
@click.option("--signup", required=True, metavar="TIME",
              help="Signup time in the given zone, e.g. '2026-03-07 23:30'.")
@click.option("--timezone", required=True, help="IANA time zone, e.g. America/New_York.")
@json_option
@pass_state
def simulate(state, signup, timezone, as_json):
    """The exact send times for a hypothetical subscriber who confirms at --signup.

    \b
    Example:
      drip simulate --signup "2026-03-07 23:30" --timezone America/New_York
    """
    tz = subscribers.zone(timezone)
    when = parse_instant(signup, tz)
    rows = plan.simulate(state.drip, signup=when.astimezone(tz).replace(tzinfo=None),
                         timezone=timezone)
    if as_json:
        echo_json([r.to_dict() for r in rows])
        return
    echo_table([(r.campaign, r.step, fmt_local(r.local_time), fmt_utc(r.due_at), r.subject)
                for r in rows], ("CAMPAIGN", "STEP", "LOCAL", "UTC", "SUBJECT"))


# --- sending -------------------------------------------------------------------------------
@click.command()
@now_option
@click.option("--dry-run", is_flag=True, help="Show what would go, send nothing.")
@click.option("--limit", type=click.IntRange(min=1), help="Send at most this many.")
@click.option("--ahead", metavar="DURATION",
              help="Also hand emails due within this time (e.g. 48h) to the provider, which "
                   "sends each at its exact due time (sendgrid, mailgun, resend).")
@json_option
@pass_state
def send(state, now, dry_run, limit, ahead, as_json):
    """Send every email that is due, through DRIP_PROVIDER.

    Safe to run from cron every few minutes; two runs at once never send the same
    email twice. With --ahead the provider holds emails due soon and sends them on
    time even when this machine is off; unsubscribing or pausing cancels them.

    \b
    Example:
      drip send --dry-run
      drip send --limit 500
      drip send --ahead 48h
    """
    drip = state.drip
    moment = resolve_now(now)
    try:
        horizon = parse_duration(ahead) if ahead else None
    except (InvalidInput, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--ahead") from None
    show_bar = sys.stdout.isatty() and not as_json and not dry_run
    total = drip.store.count_due(moment) if show_bar else 0
    if show_bar and total:
        with click.progressbar(length=min(total, limit or total), label="Sending") as bar:
            report = dispatch.send_due(drip, now=moment, limit=limit, progress=bar.update,
                                       ahead=horizon)
    else:
        report = dispatch.send_due(drip, now=moment, limit=limit, dry_run=dry_run, ahead=horizon)
    if as_json:
        echo_json(report.to_dict())
        return
    if dry_run:
        for item in report.would_send:
            click.echo(f"would send #{item['id']} {item['campaign']}/{item['step']} "
                       f"(due {item['due_at']})")
        click.echo(f"{len(report.would_send)} due; {report.changes} campaign changes pending")
        return
    _print_report(report)
    if report.failed:
        raise SystemExit(1)


def _print_report(report):
    parts = [f"{report.sent} sent", f"{report.failed} failed", f"{report.retried} to retry"]
    for name in ("skipped", "deferred", "cancelled", "recovered", "undecided", "unconfirmed",
                 "changes"):
        value = getattr(report, name)
        if value:
            parts.append(f"{value} {name}")
    if report.sent or report.failed or report.retried or len(parts) > 3 or sys.stdout.isatty():
        click.echo(", ".join(parts))
    for error in report.errors[:10]:
        click.echo(f"  failed: {error}", err=True)
    if report.undecided:
        click.echo("  some deliveries need a decision: see `drip status`", err=True)


@click.command()
@click.option("--interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Longest sleep between checks, in seconds.")
@click.option("--exit-when-idle", is_flag=True,
              help="Stop once a run sends nothing and nothing more is due (batch jobs, tests).")
@pass_state
def worker(state, interval, exit_when_idle):
    """Keep sending: sleep until the next due email, send, repeat. Stops cleanly on
    Ctrl-C or SIGTERM after finishing the batch in hand.

    \b
    Example:
      drip worker --interval 30
    """
    drip = state.drip
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"drip worker: sending through {drip.provider.name}; Ctrl-C to stop", err=True)
    run_worker(drip, clock=lambda: datetime.now(UTC).replace(microsecond=0), stop=stop,
               interval=interval, on_report=_print_report, exit_when_idle=exit_when_idle)
    click.echo("drip worker: stopped", err=True)


@click.command()
@now_option
@json_option
@pass_state
def status(state, now, as_json):
    """Counts by state, the next due email and recent failures.

    \b
    Example:
      drip status --json
    """
    data = status_report(state.drip, now=resolve_now(now))
    if as_json:
        echo_json(data)
        return
    subs = data["subscribers"]
    click.echo("subscribers: " + (", ".join(f"{v} {k}" for k, v in sorted(subs.items()))
                                  or "none"))
    dels = data["deliveries"]
    click.echo("deliveries:  " + (", ".join(f"{v} {k}" for k, v in sorted(dels.items()))
                                  or "none"))
    click.echo(f"due now:     {data['due_now']}")
    click.echo(f"next due:    {data['next_due'] or '-'}")
    for item in data["recent_failures"]:
        click.echo(f"failed #{item['id']} {item['email']} {item['campaign']}/{item['step']}: "
                   f"{item['error']}")
    for item in data["needs_decision"]:
        click.echo(f"needs decision #{item['id']} {item['email']} "
                   f"{item['campaign']}/{item['step']}: run "
                   f"`drip resolve {item['id']} --as sent|resend`")


@click.command()
@click.argument("delivery_id", type=int)
@click.option("--as", "decision", type=click.Choice(["sent", "resend"]), required=True,
              help="sent: it went out, record it; resend: it did not, send it again.")
@now_option
@pass_state
def resolve(state, delivery_id, decision, now):
    """Decide about a delivery a crash left unconfirmed (see `drip status`).

    \b
    Example:
      drip resolve 42 --as sent
    """
    dispatch.resolve(state.drip, delivery_id, decision, now=resolve_now(now))
    click.echo(f"delivery {delivery_id}: {decision}")


@click.command("campaigns")
@json_option
@pass_state
def campaigns_command(state, as_json):
    """List the campaigns and their steps, as loaded from DRIP_CAMPAIGNS_DIR.

    \b
    Example:
      drip campaigns
    """
    campaigns = state.drip.campaigns
    data = [{"id": c.id, "name": c.name, "entry": c.entry_on, "tags": list(c.entry_tags),
             "window": str(c.window_or(state.drip.settings.send_window)),
             "steps": [{"id": s.id, "delay": str(s.delay), "subject": s.subject,
                        "template": s.template} for s in c.steps]} for c in campaigns]
    if as_json:
        echo_json(data)
        return
    for item in data:
        click.echo(f"{item['id']}: {item['name']} (on {item['entry']}; window {item['window']})")
        for step in item["steps"]:
            click.echo(f"  {step['id']:<24} +{step['delay']:<5} {step['subject']}")



COMMANDS = [plan_command, simulate, send, worker, status, resolve, campaigns_command]
