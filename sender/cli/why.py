"""``drip why EMAIL [CAMPAIGN/STEP]``: what happened or will happen to each email of one
person, and why (``sender/why.py``). The text and ``--json`` print the same data; stored
text that could break a line or drive the terminal is printed quoted, on its line."""

from __future__ import annotations

import json
import re
from datetime import datetime

import click

from .. import subscribers
from ..why import explain
from ..why import one_line as shown
from .common import fmt_local, fmt_utc, json_option, now_option, pass_state, resolve_now

FROM_FILE = "(from the campaign file as it is now)"
_TARGET = re.compile(r"([^/\s]+)/([^/\s]+)")


def _target(ctx, param, value):
    if value is None:
        return None
    match = _TARGET.fullmatch(value) if value.isprintable() else None
    if match is None:
        raise click.BadParameter(f"{shown(value)} is not CAMPAIGN/STEP: give a campaign id and a "
                                 "step id with one slash, e.g. course/one (`drip campaigns` "
                                 "lists them)")
    return match.groups()


@click.command("why")
@click.argument("email")
@click.argument("target", required=False, metavar="[CAMPAIGN/STEP]", callback=_target)
@now_option
@json_option
@pass_state
def why_command(state, email, target, now, as_json):
    """Why each email of one subscriber went, waits or will not go.

    For each email of hers (every stored one, in order, and the steps still to come): how
    she entered its campaign, the step's condition, its time on her clock and in UTC, the
    send window, the minimum gap, a pause, an unsubscribe or a bounce, the provider's
    answer and the events recorded for it. It shows what drip stored; what it reads from a
    campaign file says so ("as it is now"): the file may have been edited after.

    \b
    Example:
      drip why ana@example.com
      drip why ana@example.com glute-progression/week-3 --json
    """
    drip = state.drip
    person = subscribers.get(drip, email)
    campaign, step = target or (None, None)
    data = explain(drip, person, now=resolve_now(now), campaign=campaign, step=step).to_dict()
    if as_json:
        click.echo(json_text(data))
        return
    for line in text_lines(data):
        click.echo(line)


def json_text(data):
    """``data`` as JSON, with every character that is not printable escaped (JSON leaves
    DEL, C1 controls, U+2028 and the like as they are)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return "".join(c if c.isprintable() or c == "\n" else _escaped(c) for c in text)


def _escaped(char):
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def text_lines(data):
    person = data["subscriber"]
    zone = person["zone"]
    yield f"{shown(person['email'])}  {shown(person['name'])}  [{shown(person['status'])}]"
    yield from _fields("  ", zone, (
        ("time zone", zone), ("status", person["status_note"]), ("problem", person["problem"]),
        ("signed up", person["signed_up"]), ("consent", person["consent"]),
        ("confirmed", person["confirmed"]), ("paused since", person["paused"]),
        ("withdrawn", person["withdrawn"])))
    for event in person["status_events"]:
        yield f"  recorded: {_event(event, zone)}"
    yield f"  DRIP_MIN_GAP: {shown(data['min_gap'])} at least between two campaign emails to her"
    yield f"  as of: {data['now']}" + (f"; only {shown(data['target'])}" if data["target"] else "")
    for part in data["campaigns"]:
        yield ""
        yield f"campaign {shown(part['id'])}: {shown(part['name'] or '(no campaign file)')}"
        entry = part["entry"]
        yield from _fields("  ", zone, (
            (f"entry {FROM_FILE}", entry["rule"]), ("enrolled", entry["enrolled"]),
            ("", entry["note"]), ("", entry["shift"]),
            (f"send window {FROM_FILE}", part["window"]), (f"goal {FROM_FILE}", part["goal"]),
            ("problem", part["problem"])))
    for email in data["emails"]:
        yield ""
        yield from _email_lines(email, zone)
    for event in data["other_events"]:
        yield f"event about her, no email: {_event(event, zone)}"


def _email_lines(email, zone):
    number = f"  (delivery {email['delivery_id']})" if email["delivery_id"] is not None else ""
    subject = f"  {shown(email['subject'])}" if email["subject"] is not None else ""
    yield f"{shown(email['campaign'])}/{shown(email['step'])}: {shown(email['state'])}{number}{subject}"
    reason = email["reason"] and shown(email["reason"])
    if reason and email["reason_text"] not in email["why"]:
        reason += f": {shown(email['reason_text'])}"
    yield from _fields("  ", zone, (
        ("planned for" if email["planned"] else "due", email["due"]), ("why", email["why"]),
        ("reason", reason), ("message", email["message"]),
        (f"condition {FROM_FILE}", email["condition"]),
        (f"send window {FROM_FILE}", email["window"]), ("minimum gap", _gap(email["min_gap"], zone)),
        ("file", email["file_change"]), ("file time", email["file_due"]),
        ("row written", email["written"])))
    provider = email["provider"]
    if provider is not None:
        yield "  sending: " + "; ".join(
            f"{label} {_value(provider[key], zone)}" for label, key in (
                ("provider", "name"), ("message id", "message_id"), ("attempts", "attempts"),
                ("claimed", "claimed"), ("handed", "handed"), ("sent", "sent"))
            if provider[key] is not None)
    for event in email["events"]:
        yield f"  event: {_event(event, zone)}"


def _gap(gap, zone):
    if gap["applies"] is None:
        return None
    said = "applies" if gap["applies"] else "does not apply (the confirmation or welcome email)"
    if gap["deferred"]:
        said += "; moved later for it"
    before = gap["previous"]
    if before:
        said += (f"; her email before it: {shown(before['campaign'])}/{shown(before['step'])} "
                 f"sent {_value(before['sent'], zone)}")
    return said


def _fields(indent, zone, pairs):
    for label, value in pairs:
        if value is not None:
            shown_value = _value(value, zone)
            yield f"{indent}{label}: {shown_value}" if label else f"{indent}{shown_value}"


def _value(value, zone):
    if isinstance(value, dict):             # a moment: her clock, then UTC
        from zoneinfo import ZoneInfo

        local = datetime.fromisoformat(value["local"]).astimezone(ZoneInfo(zone))
        return f"{fmt_local(local)} ({fmt_utc(local)})"
    return shown(value)


def _event(event, zone):
    return f"{shown(event['type'])} ({shown(event['provider'])}) at {_value(event['at'], zone)}"
