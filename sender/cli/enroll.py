"""``drip enroll``: existing subscribers into a campaign added later."""

from __future__ import annotations

import click

from ..enrolment import enroll_segment
from ..segments import HELP as SEGMENT_HELP
from ..segments import parse_segment
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

SHOWN = 10   # addresses listed for "already enrolled"


@click.command("enroll")
@click.argument("campaign")
@click.option("--segment", required=True,
              help=f"Who: subscribers in this segment, {SEGMENT_HELP}; 'status:active' for "
                   "everyone.")
@click.option("--dry-run", is_flag=True,
              help="Show who would go in and when each one's first email is due; change nothing.")
@now_option
@json_option
@pass_state
def enroll_command(state, campaign, segment, dry_run, now, as_json):
    """Put existing subscribers into CAMPAIGN (one added after they signed up, say); each
    one's sequence starts now, its first email in their send window.

    Only active subscribers whom the campaign's entry (tags, segment) accepts go in; anyone
    in it already is left alone, so a second run enrols nobody. DRIP_MIN_GAP may still hold
    a first email back for someone who just got another.

    \b
    Example:
      drip enroll pelvic-floor --segment "tag:postpartum" --dry-run
      drip enroll pelvic-floor --segment "tag:postpartum and signup<2026-03-01"
    """
    result = enroll_segment(state.drip, campaign, parse_segment(segment), now=resolve_now(now),
                            dry_run=dry_run)
    if as_json:
        echo_json(result.to_dict())
        return
    verb = "Would enrol" if dry_run else "Enrolled"
    if result.enrolled:
        click.echo(f"{verb} {len(result.enrolled)} subscriber(s) in {result.campaign}; "
                   "each one's first email:")
        echo_table([(fmt_utc(e.due_at), fmt_local(e.local_time), e.email, f"{e.campaign}/{e.step}",
                     e.subject) for e in result.enrolled], ("UTC", "LOCAL", "TO", "EMAIL", "SUBJECT"))
    else:
        click.echo(f"{verb} nobody in {result.campaign}.")
    if result.already:
        shown = ", ".join(result.already[:SHOWN]) + (", ..." if len(result.already) > SHOWN else "")
        click.echo(f"Already enrolled, left alone: {len(result.already)} ({shown})")
    click.echo(_left_out(result.left_out))
    if dry_run:
        click.echo("Nothing was changed (--dry-run); run it again without --dry-run to enrol them.")


def _left_out(counts):
    statuses = ", ".join(f"{n} {why}" for why, n in sorted(counts.items()) if why != "not_accepted")
    parts = [f"{statuses} (only active subscribers are enrolled)"] if statuses else []
    if counts.get("not_accepted"):
        parts.append(f"{counts['not_accepted']} not accepted by the campaign's entry "
                     "(tags or segment)")
    return "Left out: " + ("; ".join(parts) if parts else "nobody")
