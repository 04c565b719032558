"""``drip subscribers ...``: add, list, show, unsubscribe, pause, resume, confirm."""

from __future__ import annotations

import itertools
import json

import click

from .. import joining, subscribers
from ..segments import HELP as SEGMENT_HELP
from ..segments import combine, select
from .common import (
    DripGroup,
    echo_json,
    echo_table,
    fmt_local,
    fmt_utc,
    json_option,
    now_option,
    pass_state,
    resolve_now,
)


@click.group("subscribers", cls=DripGroup)
def subscribers_group():
    """Add, list and manage subscribers.

    \b
    Example:
      drip subscribers add ana@example.com --name "Ana" --timezone Europe/Madrid --confirmed
    """


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", help="Their name (used to greet them).")
@click.option("--timezone", help="IANA time zone, e.g. America/New_York (default DRIP_TIMEZONE).")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE",
              help="A custom field, e.g. stage=postpartum (its name: a letter, then letters, "
                   "digits, _ or -); repeat for several.")
@click.option("--consent", help="How they agreed, e.g. 'signup form on the blog'.")
@click.option("--confirmed", is_flag=True,
              help="They have confirmed already: make them active and enrol them now.")
@now_option
@json_option
@pass_state
def subscribers_add(state, email, name, timezone, tags, fields, consent, confirmed, now,
                    as_json):
    """Add a subscriber, or update the one with this address.

    Without --confirmed the person is pending and gets a confirmation email at the
    next `drip send`. The details are checked by the rules the signup form and the
    import use (sender/joining.py).

    \b
    Example:
      drip subscribers add ana@example.com --name Ana --field stage=postpartum \\
          --consent "in person, 2026-03-01" --confirmed
    """
    fields = joining.parse_fields(fields)
    before = state.drip.store.get_subscriber(email=joining.check_address(email))
    result = subscribers.add_subscriber(
        state.drip, email, now=resolve_now(now), name=name, timezone=timezone, tags=tags,
        fields=fields, consent_source=consent, confirmed=confirmed)
    person = result.subscriber
    if as_json:
        echo_json({**person.to_dict(), "created": result.created, "enrolled": result.enrolled,
                   "confirmation_queued": result.confirmation_queued, "note": result.note,
                   "changed": subscribers.changes(before, person)})
        return
    click.echo(f"{'Added' if result.created else 'Updated'} {person.email} ({person.status})")
    if result.enrolled:
        click.echo(f"Enrolled in: {', '.join(result.enrolled)}")
    if result.confirmation_queued:
        click.echo("Confirmation email queued; it goes out at the next `drip send`.")
    if result.note:
        click.echo(result.note)


@subscribers_group.command("list")
@click.option("--status", help="Only this status (pending, active, paused, unsubscribed, ...).")
@click.option("--tag", help="Only subscribers with this tag.")
@click.option("--segment", help=f"Only subscribers in this segment, {SEGMENT_HELP}.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@json_option
@pass_state
def subscribers_list(state, status, tag, segment, limit, as_json):
    """List subscribers.

    \b
    Example:
      drip subscribers list --status active --json
      drip subscribers list --segment "tag:postpartum and field:stage=postpartum"
    """
    if segment:
        people = list(itertools.islice(
            select(state.drip.store, combine(segment, status=status, tag=tag)), limit))
    else:
        people = state.drip.store.list_subscribers(status=status, tag=tag, limit=limit)
    if as_json:
        echo_json([p.to_dict() for p in people])
        return
    rows = [(p.email, p.name, p.status, p.timezone or "-", ",".join(p.tags)) for p in people]
    echo_table(rows, ("EMAIL", "NAME", "STATUS", "TIMEZONE", "TAGS"))
    if not rows:
        click.echo("No subscribers yet. Add one with `drip subscribers add`.")


@subscribers_group.command("show")
@click.argument("email")
@json_option
@pass_state
def subscribers_show(state, email, as_json):
    """Show one subscriber with their past and upcoming emails (local and UTC times).

    \b
    Example:
      drip subscribers show ana@example.com
    """
    drip = state.drip
    person = subscribers.get(drip, email)
    history = list(drip.store.deliveries(subscriber_id=person.id))
    tz = subscribers.zone(person.timezone or drip.settings.timezone_name)
    if as_json:
        echo_json({**person.to_dict(), "deliveries": [
            {**d.to_dict(), "local_due": d.due_at.astimezone(tz).isoformat()} for d in history]})
        return
    click.echo(f"{person.email}  {person.name}  [{person.status}]")
    click.echo(f"time zone {tz.key}; tags {', '.join(person.tags) or '-'}; "
               f"fields {json.dumps(person.fields, ensure_ascii=False)}")
    consent = person.consent
    click.echo(f"consent: {consent.source or '-'} at {fmt_utc(consent.at)}; "
               f"confirmed {fmt_utc(consent.confirmed_at)}; withdrawn "
               f"{fmt_utc(consent.withdrawn_at)}")
    rows = [(d.campaign, d.step, d.state, fmt_local(d.due_at.astimezone(tz)), fmt_utc(d.due_at),
             fmt_utc(d.sent_at), d.last_error or "") for d in history]
    echo_table(rows, ("CAMPAIGN", "STEP", "STATE", "LOCAL", "UTC", "SENT", "NOTE"))


def _status_command(name, action, verb, help_text):
    @subscribers_group.command(name, help=help_text)
    @click.argument("email")
    @now_option
    @json_option
    @pass_state
    def command(state, email, now, as_json):
        drip = state.drip
        person = subscribers.get(drip, email)
        outcome = action(drip, person, now=resolve_now(now))
        if outcome is False:
            raise click.ClickException(f"{person.email} is {person.status}; nothing to {name}")
        if as_json:
            after = subscribers.get(drip, person.email)
            extra = {"cancelled": outcome} if name == "unsubscribe" else {}
            echo_json({**after.to_dict(), **extra, "changed": subscribers.changes(person, after)})
            return
        extra = f"; {outcome} pending emails cancelled" if name == "unsubscribe" else ""
        click.echo(f"{person.email} {verb}{extra}")

    return command


_status_command("unsubscribe", subscribers.unsubscribe, "unsubscribed",
                "Unsubscribe someone: every pending email is cancelled at once. With --json: the "
                "subscriber after the change, what changed, and how many emails were cancelled."
                "\n\n\b\nExample:\n  drip subscribers unsubscribe ana@example.com --json")
_status_command("pause", subscribers.pause, "paused",
                "Hold someone's sequence until `resume`.\n\n"
                "\b\nExample:\n  drip subscribers pause ana@example.com")
_status_command("resume", subscribers.resume, "resumed",
                "Resume a paused sequence; the rest moves later by the time paused.\n\n"
                "\b\nExample:\n  drip subscribers resume ana@example.com")
_status_command("confirm", lambda d, p, now: subscribers.confirm(d, p, now=now) or
                p.status == "pending", "confirmed",
                "Confirm a pending subscriber by hand (they confirmed another way).\n\n"
                "\b\nExample:\n  drip subscribers confirm ana@example.com")


