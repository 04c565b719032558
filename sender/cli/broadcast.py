"""``drip broadcast ...``: one-off emails to a segment, written in Markdown in broadcasts/."""

from __future__ import annotations

import sys
import webbrowser
from pathlib import Path

import click

from .. import broadcast_runs as runs
from .. import broadcasts, preview
from ..broadcast_audience import reach
from ..broadcast_schedule import check_not_past, parse_when
from ..providers.base import ACCEPTED, SCHEDULED
from ..samples import SAMPLES, get_sample
from .common import (
    DripGroup,
    echo_json,
    echo_table,
    fmt_utc,
    json_option,
    now_option,
    pass_state,
    resolve_now,
)

STATES = ("scheduled", "sending", "sent", "failed", "skipped", "cancelled")


@click.group("broadcast", cls=DripGroup)
def broadcast_group():
    """One-off emails to a segment, written in Markdown (newsletters), in broadcasts/.

    \b
    Example:
      drip broadcast new "Bellevue workshop"
      drip broadcast preview 2026-03-10-bellevue-workshop --open
      drip broadcast test 2026-03-10-bellevue-workshop --to me@example.com
      drip broadcast schedule 2026-03-10-bellevue-workshop "Tue 09:00 local"
    """


@broadcast_group.command("new")
@click.argument("title")
@now_option
@pass_state
def new_command(state, title, now):
    """Write broadcasts/YYYY-MM-DD-TITLE.md (today's date) with a starter front matter.

    \b
    Example:
      drip broadcast new "Bellevue workshop"
    """
    settings = state.drip.settings
    today = resolve_now(now).astimezone(settings.timezone).date()
    path = broadcasts.new_file(settings, title, today=today)
    click.echo(f"Wrote {path}. Edit it, then `drip broadcast preview {path.stem}`.")


@broadcast_group.command("list")
@json_option
@pass_state
def list_command(state, as_json):
    """Every broadcast file with its state (draft until scheduled), its time and its counts.

    \b
    Example:
      drip broadcast list
    """
    drip = state.drip
    found, broken = broadcasts.load_all(drip.settings)
    records = {r["name"]: r for r in drip.store.list_broadcasts()}
    rows = []
    for name in sorted({*(b.slug for b in found), *broken, *records}):
        record = records.get(name)
        counts = drip.store.campaign_state_counts(broadcasts.campaign_id(name)) if record else {}
        item = {"name": name, "state": record["state"] if record else "draft",
                "when": record["when_text"] if record else None,
                "first_at": record["first_at"].isoformat() if record else None,
                "audience": record["audience"] if record else None, "counts": counts,
                "problems": broken.get(name, [])}
        if record is None and name in broken:
            item["state"] = "does not load"
        rows.append(item)
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo(f"No broadcasts in {broadcasts.folder(drip.settings)}; "
                   "`drip broadcast new TITLE` writes one.")
    else:
        echo_table([(r["name"], r["state"], r["when"] or "-",
                     ", ".join(f"{n} {s}" for s, n in sorted(r["counts"].items())) or "-")
                    for r in rows], ("NAME", "STATE", "WHEN", "DELIVERIES"))
        for problems in broken.values():
            for problem in problems:
                click.echo(f"does not load: {problem}", err=True)
    if broken:
        raise SystemExit(1)


@broadcast_group.command("preview")
@click.argument("name")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/preview"), show_default=True, help="Folder to write into.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the browser.")
@now_option
@pass_state
def preview_command(state, name, output, open_browser, now):
    """Render NAME for every sample subscriber into the preview site
    (build/preview/broadcast-NAME.html: desktop and phone width, plain text, headers).

    \b
    Example:
      drip broadcast preview 2026-03-10-bellevue-workshop --open
    """
    drip = state.drip
    broadcast = broadcasts.load(drip.settings, name)
    page = preview.build_broadcast(drip, broadcast, output, now=resolve_now(now))
    click.echo(f"Wrote {page} ({len(SAMPLES)} sample subscribers).")
    if open_browser:
        webbrowser.open(page.resolve().as_uri())


@broadcast_group.command("test")
@click.argument("name")
@click.option("--to", "to", required=True, metavar="EMAIL", help="Where the test goes.")
@click.option("--sample", type=click.Choice([s.key for s in SAMPLES]), default=SAMPLES[0].key,
              show_default=True, help="Whose details fill it in.")
@now_option
@pass_state
def test_command(state, name, to, sample, now):
    """Send NAME once to EMAIL through DRIP_PROVIDER, marked [TEST], filled in for a sample
    subscriber. Nothing is recorded in the ledger.

    \b
    Example:
      drip broadcast test 2026-03-10-bellevue-workshop --to me@example.com
    """
    drip = state.drip
    broadcast = broadcasts.load(drip.settings, name)
    message, result = preview.send_broadcast_test(drip, broadcast, to, now=resolve_now(now),
                                                  sample=get_sample(sample))
    click.echo(f"Test of {broadcast.slug} ({message.subject}) to {message.to} via "
               f"{drip.settings.provider}: {result.outcome}"
               + (f" ({result.error})" if result.error else ""))
    if result.outcome not in (ACCEPTED, SCHEDULED):
        raise SystemExit(1)


def _confirm(drip, broadcast, what, yes):
    """Print who it reaches; ask on a terminal unless ``yes``; refuse (exit 2) otherwise."""
    found = reach(drip.store, broadcast)
    click.echo(f"{broadcast.slug} ({broadcast.subject}) {what} reaches {found.text()}.")
    if yes:
        return found
    if not sys.stdin.isatty():
        raise click.UsageError("not on a terminal: add --yes to send without asking")
    if not click.confirm("Go ahead?", default=False):
        click.echo("Nothing was scheduled.")
        raise SystemExit(1)
    return found


yes_option = click.option("--yes", is_flag=True, help="Do not ask (for scripts).")


@broadcast_group.command("schedule")
@click.argument("name")
@click.argument("when", required=False)
@yes_option
@now_option
@pass_state
def schedule_command(state, name, when, yes, now):
    """Schedule NAME at WHEN (or its front matter's `when`): a moment,
    "2026-03-10 09:00 America/Los_Angeles", or a local time for every reader,
    "Tue 09:00 local" (each gets it at that hour in her own zone, within about 26 hours
    across the world). Prints how many it reaches and asks first (--yes for scripts).
    `drip send` delivers it. Scheduling again before it starts moves it.

    \b
    Example:
      drip broadcast schedule 2026-03-10-bellevue-workshop "Tue 09:00 local"
    """
    drip = state.drip
    at = resolve_now(now)
    broadcast = broadcasts.load(drip.settings, name)
    chosen = parse_when(when) if when else runs.when_of(broadcast, None)
    check_not_past(chosen, at)
    timing = runs.timing(chosen, now=at)
    span = (f"{fmt_utc(timing.first_at)} to {fmt_utc(timing.last_at)}" if chosen.local
            else fmt_utc(timing.first_at))
    _confirm(drip, broadcast, f"at {chosen.text} ({span})", yes)
    record = runs.schedule(drip, broadcast, chosen.text, now=at)
    click.echo(f"Scheduled {record['name']}: {record['state']}, first due "
               f"{fmt_utc(record['first_at'])}; `drip send` delivers it.")


@broadcast_group.command("send")
@click.argument("name")
@yes_option
@now_option
@pass_state
def send_command(state, name, yes, now):
    """Send NAME now: writes a delivery for everyone it reaches, due now; `drip send` (or
    the worker) hands them to the provider. Prints how many it reaches and asks first.

    \b
    Example:
      drip broadcast send 2026-03-10-bellevue-workshop --yes && drip send
    """
    drip = state.drip
    at = resolve_now(now)
    broadcast = broadcasts.load(drip.settings, name)
    _confirm(drip, broadcast, "now", yes)
    record = runs.send_now(drip, broadcast, now=at)
    click.echo(f"{record['name']}: {record['audience']} deliveries due now; run `drip send`.")


@broadcast_group.command("cancel")
@click.argument("name")
@now_option
@pass_state
def cancel_command(state, name, now):
    """Stop what of NAME has not gone: scheduled emails are cancelled, and mail a provider
    holds for later is cancelled there where the provider allows it.

    \b
    Example:
      drip broadcast cancel 2026-03-10-bellevue-workshop
    """
    done = runs.cancel(state.drip, name, now=resolve_now(now))
    click.echo(f"Cancelled {done['cancelled']} scheduled and {done['held_cancelled']} held at "
               f"the provider; {done['sent']} sent already"
               + (f", {done['in_flight']} being handed over now" if done["in_flight"] else "")
               + (f", {done['held_left']} held at the provider could not be cancelled"
                  if done["held_left"] else "") + ".")


@broadcast_group.command("status")
@click.argument("name")
@json_option
@now_option
@pass_state
def status_command(state, name, as_json, now):
    """NAME's state, its time, how many it was written for, and its emails by state.

    \b
    Example:
      drip broadcast status 2026-03-10-bellevue-workshop --json
    """
    record, counts = runs.status(state.drip, name, now=resolve_now(now))
    data = {"name": record["name"], "state": record["state"], "when": record["when_text"],
            "first_at": record["first_at"].isoformat(), "last_at": record["last_at"].isoformat(),
            "audience": record["audience"], "counts": {s: counts.get(s, 0) for s in STATES}}
    if as_json:
        echo_json(data)
        return
    click.echo(f"{data['name']}: {data['state']}, {data['when']} ({fmt_utc(record['first_at'])}"
               f" to {fmt_utc(record['last_at'])}), written for {data['audience']}")
    click.echo(", ".join(f"{n} {s}" for s, n in data["counts"].items()))
