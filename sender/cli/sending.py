"""Planning and sending: plan, simulate, send, worker, status, resolve, campaigns."""

from __future__ import annotations

import gc
import signal
import sys
import threading
from datetime import UTC, datetime

import click

from .. import brake, dispatch, plan, recovery, subscribers
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
    rules = plan.rule_changes(drip, now=moment)
    rows = plan.upcoming(drip, now=moment, days=days, limit=limit,
                         segment=parse_segment(segment) if segment else None)
    if as_json:
        echo_json({"upcoming": [r.to_dict() for r in rows], "campaign_changes": changes,
                   "rule_changes": rules})
        return
    if rules:
        click.echo("Conditions, goals and branches edited in the campaign files:")
        for r in rules:
            where = f"{r['campaign']}/{r['step']}" if r["step"] else r["campaign"]
            click.echo(f"  {where} {r['rule']}: {r['from']!r} -> {r['to']!r}: {r['effect']}")
        click.echo("")
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
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE",
              help="A field she gives when she signs up, e.g. stage=pregnant or "
                   "due_date=2026-06-01; repeat for several.")
@click.option("--set-later", "set_later", multiple=True, metavar="'TIME KEY=VALUE'",
              help="A field set later, e.g. '2026-05-20 birth_date=2026-05-18' (TIME in her "
                   "zone); repeat for several.")
@click.option("--tag-later", "tag_later", multiple=True, metavar="'TIME TAG'",
              help="A tag added later, e.g. '2026-04-01 client'; repeat for several.")
@click.option("--no-clicks", is_flag=True,
              help="She never clicks: show where the sunset rule (DRIP_SUNSET_AFTER) asks her "
                   "\"still want these?\" and what it then cancels.")
@json_option
@pass_state
def simulate(state, signup, timezone, fields, set_later, tag_later, no_clicks, as_json):
    """The exact send times for a hypothetical subscriber who confirms at --signup (local and
    UTC), and what becomes of each email: sent, skipped (a step's condition) or cancelled (a
    campaign's goal), by the rules the send path uses.

    \b
    Example:
      drip simulate --signup "2026-03-07 23:30" --timezone America/New_York
      drip simulate --signup "2026-03-02 10:00" --timezone America/Los_Angeles \\
          --field stage=pregnant --field due_date=2026-06-01 \\
          --set-later "2026-05-20 birth_date=2026-05-18" --tag-later "2026-08-01 client"
      drip simulate --signup "2026-03-07 23:30" --timezone America/New_York --no-clicks
    """
    from ..joining import parse_fields
    from ..simulation import Later

    tz = subscribers.zone(timezone)
    when = parse_instant(signup, tz)

    def later(option, text, kind):
        moment, _, rest = text.strip().rpartition(" ")
        if not moment or not rest:
            raise click.BadParameter(f"{text!r}: give a time and what happens, e.g. "
                                     + ("'2026-05-20 birth_date=2026-05-18'" if kind == "field"
                                        else "'2026-04-01 client'"), param_hint=option)
        at = parse_instant(moment, tz)
        if kind == "tag":
            return Later(at, "tag", rest)
        [(key, value)] = parse_fields([rest]).items()
        return Later(at, "field", key, value)

    events = [later("--set-later", t, "field") for t in set_later]
    events += [later("--tag-later", t, "tag") for t in tag_later]
    rows = plan.simulate(state.drip, signup=when.astimezone(tz).replace(tzinfo=None),
                         timezone=timezone, clicks=not no_clicks, fields=parse_fields(fields),
                         later=events)
    if as_json:
        echo_json([r.to_dict() for r in rows])
        return
    echo_table([(r.campaign, r.step, fmt_local(r.local_time), fmt_utc(r.due_at), r.outcome,
                 r.reason if r.outcome != "sent" else r.subject + (f" ({r.reason})" if r.reason
                                                                   else "")
                 + (f"; then: {r.branch['message']}" if r.branch else "")) for r in rows],
               ("CAMPAIGN", "STEP", "LOCAL", "UTC", "STATE", "SUBJECT OR WHY"))
    for event in sorted(events):
        what = f"{event.key}={event.value}" if event.kind == "field" else f"tag {event.key}"
        click.echo(f"later: {fmt_local(event.at.astimezone(tz))} ({fmt_utc(event.at)}): {what}")


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
    _tune_gc()
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
            what = item["would"]
            detail = f"{item['subject']!r}" if what == "send" else item.get("error", "")
            click.echo(f"would {what.split(':')[0]} #{item['id']} {item['campaign']}/{item['step']} "
                       f"to {item['to']} (due {item['due_at']}) {detail}".rstrip()
                       + (f" ({what.split(': ', 1)[1]})" if ": " in what else ""))
        click.echo(f"{len(report.would_send)} due; {report.changes} campaign changes pending")
        if report.template_errors:
            raise SystemExit(1)
        return
    _print_report(report)
    for paused in brake.active(drip.store):
        click.echo(f"  {paused['campaign']} is paused by the complaint brake ({paused['waiting']} "
                   "email(s) wait): see `drip status`", err=True)
    if report.trouble:
        raise SystemExit(1)


def _tune_gc():
    """In a `drip send` or `drip worker` process of its own (not a command run inside another
    program, such as the tests), look at young objects every 20,000 allocations instead of
    700. A batch makes tens of thousands of short-lived objects, which reference counting
    frees at once, and almost no cycles; the default scanned them over and over: 6 to 9% of a
    worker's CPU, with the same peak memory. (Not for `drip serve`: each web request leaves a
    cycle holding its parsed form, which the default frees sooner.)"""
    if getattr(click.get_current_context().find_root().command, "own_process", False):
        gc.set_threshold(20_000, 50, 100)


def _print_report(report):
    parts = [f"{report.sent} sent", f"{report.failed} failed", f"{report.retried} to retry"]
    for name in ("skipped", "deferred", "cancelled", "recovered", "undecided", "unconfirmed",
                 "held", "changes"):
        value = getattr(report, name)
        if value:
            parts.append(f"{value} {name}")
    if report.sent or report.failed or report.retried or len(parts) > 3 or sys.stdout.isatty():
        click.echo(", ".join(parts))
    for error in report.errors[:10]:
        click.echo(f"  failed: {error}", err=True)
    for error in report.retry_errors[:5]:
        click.echo(f"  not sent yet: {error}", err=True)
    if report.retried:
        click.echo(f"  {report.retried} will be tried again from {fmt_utc(report.next_retry)} "
                   "(`drip send` or the worker does it; `drip status` shows them)", err=True)
    for error in report.template_errors[:5]:
        click.echo(f"  waiting until this is fixed: {error}", err=True)
    if report.undecided:
        click.echo("  some deliveries need a decision: see `drip status`", err=True)


@click.command()
@click.option("--interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Longest sleep between checks, in seconds.")
@click.option("--exit-when-idle", is_flag=True,
              help="Stop once a run sends nothing and nothing more is due (batch jobs, tests); "
                   "an error then stops it too, with exit 1.")
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
    _tune_gc()
    run_worker(drip, clock=lambda: datetime.now(UTC).replace(microsecond=0), stop=stop,
               interval=interval, on_report=_print_report, exit_when_idle=exit_when_idle)
    click.echo("drip worker: stopped", err=True)


@click.command()
@now_option
@click.option("--check", is_flag=True,
              help="For monitoring: print only the problems and exit 1 when mail is stuck, "
                   "failing, waiting on a problem or on a decision (0 when all is well).")
@json_option
@pass_state
def status(state, now, check, as_json):
    """Counts by state, the next due email, recent failures, and mail that waits on a
    problem (a provider that is down, an email that cannot be rendered) or on a decision.

    \b
    Examples:
      drip status --json
      drip status --check      # in a monitoring job: exit 1 when something needs you
    """
    data = status_report(state.drip, now=resolve_now(now))
    if check:
        if as_json:
            echo_json({"ok": not data["problems"], "problems": data["problems"]})
        else:
            for problem in data["problems"]:
                click.echo(f"problem: {problem}")
            if not data["problems"]:
                click.echo("ok: nothing stuck, failing or waiting")
        if data["problems"]:
            raise SystemExit(1)
        return
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
    for item in data["paused"]:
        click.echo(f"paused by the brake: {item['campaign']} since {item['since']}, "
                   f"{item['waiting']} email(s) waiting: {item['reason']}; "
                   f"`drip campaigns resume {item['campaign']}` when it is dealt with")
    for item in data["recent_failures"]:
        click.echo(f"failed #{item['id']} {item['email']} {item['campaign']}/{item['step']}: "
                   f"{item['error']}")
    for campaign, broken in data["broken_campaigns"].items():
        click.echo(f"campaign file {campaign} does not load (its emails wait): {broken[0]}")
    waiting = data["waiting"]
    for item in waiting["first"]:
        click.echo(f"waiting #{item['id']} {item['email']} {item['campaign']}/{item['step']} "
                   f"(next try {item['next_try']}): {item['error']}")
    if waiting["count"] > len(waiting["first"]):
        click.echo(f"  ... {waiting['count'] - len(waiting['first'])} more waiting")
    for item in data["needs_decision"]:
        click.echo(f"needs decision #{item['id']} {item['email']} "
                   f"{item['campaign']}/{item['step']}: run "
                   f"`drip resolve {item['id']} --as sent|resend`")
    if len(data["needs_decision"]) > 1:
        click.echo("  (or all at once: `drip resolve --all --as sent|resend`, "
                   "narrowed with --campaign and --step)")


@click.command()
@click.argument("delivery_id", type=int, required=False)
@click.option("--as", "decision", type=click.Choice(["sent", "resend"]), required=True,
              help="sent: it went out, record it; resend: it did not, send it again.")
@click.option("--all", "every", is_flag=True,
              help="Every delivery waiting for a decision (narrow it with --campaign/--step).")
@click.option("--campaign", help="With --all: only this campaign's deliveries.")
@click.option("--step", help="With --all and --campaign: only this step's deliveries.")
@now_option
@json_option
@pass_state
def resolve(state, delivery_id, decision, every, campaign, step, now, as_json):
    """Decide about deliveries a crash left unconfirmed (see `drip status`): one by its id,
    or all of them (of a campaign, or one step) with --all.

    \b
    Examples:
      drip resolve 42 --as sent
      drip resolve --all --campaign glute-progression --step why-flat --as resend
    """
    if (delivery_id is None) == (not every):
        raise click.UsageError("give either a delivery id or --all")
    if (campaign or step) and not every:
        raise click.UsageError("--campaign and --step go with --all")
    if step and not campaign:
        raise click.UsageError("--step needs --campaign")
    moment = resolve_now(now)
    if every:
        ids = recovery.resolve_many(state.drip, decision, now=moment, campaign=campaign,
                                    step=step)
    else:
        recovery.resolve(state.drip, delivery_id, decision, now=moment)
        ids = [delivery_id]
    if as_json:
        echo_json({"decision": decision, "deliveries": ids})
        return
    if not ids:
        click.echo("no delivery is waiting for a decision"
                   + (f" in {campaign}{'/' + step if step else ''}" if campaign else ""))
    for resolved in ids:
        click.echo(f"delivery {resolved}: {decision}")


@click.group("campaigns", invoke_without_command=True)
@json_option
@pass_state
@click.pass_context
def campaigns_command(ctx, state, as_json):
    """List the campaigns and their steps, as loaded from DRIP_CAMPAIGNS_DIR: each step's
    delay and what it counts from, its condition (when), its subjects (A/B variants), and
    the goal that ends the campaign (exit).

    \b
    Example:
      drip campaigns
      drip campaigns resume glute-progression
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..campaign_graph import graph, text

    campaigns = state.drip.campaigns
    data = [graph(c, state.drip.settings.send_window) for c in campaigns]
    data += [{"id": cid, "broken": problems} for cid, problems in campaigns.broken.items()]
    if as_json:
        echo_json(data)
    else:
        for item in data:
            if "broken" in item:
                click.echo(f"{item['id']}: BROKEN, left out until fixed (its emails wait):", err=True)
                for problem in item["broken"]:
                    click.echo(f"  {problem}", err=True)
                continue
            for line in text(item):
                click.echo(line)
    if campaigns.broken:
        raise SystemExit(1)



@campaigns_command.command("resume")
@click.argument("campaign")
@now_option
@json_option
@pass_state
def campaigns_resume(state, campaign, now, as_json):
    """Let a campaign that the brake paused (too many spam complaints or hard bounces)
    send again; its waiting emails go at the next `drip send`. Find out why it was
    paused first (`drip status`, `drip report`).

    \b
    Example:
      drip campaigns resume glute-progression
    """
    waiting = brake.resume(state.drip, campaign, now=resolve_now(now))
    if as_json:
        echo_json({"campaign": campaign, "resumed": True, "waiting": waiting})
        return
    click.echo(f"{campaign} resumed: {waiting} waiting email(s) go at the next `drip send`; the "
               "brake counts its rates afresh from now")


COMMANDS = [plan_command, simulate, send, worker, status, resolve, campaigns_command]
