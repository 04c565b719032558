"""`drip why EMAIL [CAMPAIGN/STEP]` on the command line: the text, the same content as JSON,
exit codes, and stored text that cannot break a line or drive the terminal."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest

from sender import dispatch, subscribers
from sender.cli.common import fmt_local, fmt_utc
from sender.cli.why import shown
from sender.models import utc
from tests.conftest import at

NOW = at("2026-03-02T18:00Z")


@pytest.fixture
def ana(run, drip):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, name="Ana",
                                        timezone="Europe/Madrid", confirmed=True).subscriber
    dispatch.send_due(drip, now=NOW)
    [hello] = [d for d in drip.store.deliveries(subscriber_id=person.id) if d.step == "hello"]
    drip.store.add_event(provider="outbox", type="opened", occurred_at=NOW + timedelta(hours=1),
                         received_at=NOW + timedelta(hours=1), raw={}, delivery_id=hello.id,
                         subscriber_id=person.id)
    return person


def leaves(data, zone):
    """Each value of the JSON as the text prints it: times as local and UTC, text as shown."""
    if isinstance(data, dict) and set(data) == {"utc", "local"}:
        local = datetime.fromisoformat(data["local"])
        yield fmt_utc(utc(data["utc"]))
        yield fmt_local(local.astimezone(zone))
    elif isinstance(data, dict):
        for value in data.values():
            yield from leaves(value, zone)
    elif isinstance(data, list):
        for value in data:
            yield from leaves(value, zone)
    elif isinstance(data, str):
        yield shown(data)
    elif isinstance(data, int) and not isinstance(data, bool):
        yield str(data)


def test_the_text_and_the_json_hold_the_same_content(run, ana):
    text = run("why", "ana@example.com", "--now", "2026-03-02T19:00Z")
    as_json = run("why", "ana@example.com", "--now", "2026-03-02T19:00Z", "--json")
    assert text.exit_code == 0 and as_json.exit_code == 0, text.output + as_json.output
    data = json.loads(as_json.output)
    from zoneinfo import ZoneInfo

    missing = [v for v in leaves(data, ZoneInfo(data["subscriber"]["zone"])) if v not in text.output]
    assert missing == []
    steps = [(e["campaign"], e["step"], e["state"]) for e in data["emails"]]
    assert steps == [("welcome", "hello", "sent"), ("course", "one", "scheduled"),
                     ("course", "two", "scheduled")]
    hello = data["emails"][0]
    assert hello["provider"]["name"] == "outbox" and hello["provider"]["message_id"]
    assert [e["type"] for e in hello["events"]] == ["opened"]
    assert "welcome/hello" in text.output and "opened" in text.output
    assert "Sun 2026-03-01" not in text.output


def test_a_campaign_and_step_show_only_that_email(run, ana):
    result = run("why", "ana@example.com", "course/two", "--now", "2026-03-02T19:00Z", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(e["campaign"], e["step"]) for e in data["emails"]] == [("course", "two")]
    text = run("why", "ana@example.com", "course/two", "--now", "2026-03-02T19:00Z")
    assert "course/two" in text.output and "welcome/hello" not in text.output


@pytest.mark.parametrize("target", ["course", "course/", "/two", "a/b/c", "course/t wo"])
def test_a_malformed_campaign_step_is_bad_usage(run, ana, target):
    result = run("why", "ana@example.com", target)
    assert result.exit_code == 2, result.output
    assert "CAMPAIGN/STEP" in result.output and "Traceback" not in result.output


def test_a_missing_subscriber_or_email_is_a_clear_error(run, ana):
    result = run("why", "nobody@example.com")
    assert result.exit_code == 1 and "no subscriber 'nobody@example.com'" in result.output
    other = run("why", "ana@example.com", "course/nine")
    assert other.exit_code == 1 and "Traceback" not in other.output
    assert "course/nine" in other.output and "course/one" in other.output   # what she has


def test_hostile_stored_text_stays_on_one_line(run, ana, project, drip):
    name = "Ana\r\nBcc: x@evil.example\x1b[31m\u2028red"
    error = "boom\nInjected: yes\x07"
    with sqlite3.connect(project / "drip.db") as db:
        db.execute("UPDATE subscribers SET name = ? WHERE id = ?", (name, ana.id))
        db.execute("UPDATE deliveries SET last_error = ?, provider = ? WHERE subscriber_id = ? "
                   "AND step = 'hello'", (error, "out\nbox", ana.id))
        db.execute("UPDATE events SET provider = ? WHERE subscriber_id = ?", ("evil\rprov", ana.id))
    result = run("why", "ana@example.com", "--now", "2026-03-02T19:00Z")
    assert result.exit_code == 0, result.output
    for bad in ("\r", "\x1b", "\x07", "\u2028", "\nBcc", "\nInjected", "\nbox"):
        assert bad not in result.output
    for value in (name, error, "out\nbox", "evil\rprov"):
        assert repr(value) in result.output
    as_json = run("why", "ana@example.com", "--now", "2026-03-02T19:00Z", "--json")
    assert "\u2028" not in as_json.output and "\x1b" not in as_json.output
    data = json.loads(as_json.output)
    assert data["subscriber"]["name"] == name
    assert data["emails"][0]["message"] == error and data["emails"][0]["provider"]["name"] == "out\nbox"
