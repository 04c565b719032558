"""`drip broadcast ...` end to end: a coach writes a Markdown broadcast, previews it, sends a
test, schedules it for "Tue 09:00 local" to a segment, and `drip send --now ...` run forward
delivers it once to each chosen person at 09:00 in her zone; then status and the report."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import timedelta
from email import message_from_bytes, policy

import pytest

from sender.config import Settings
from sender.drip import Drip
from tests.broadcast_support import NINE_LOCAL, ZONES, person, with_macros
from tests.conftest import at

NAME = "2026-03-02-bellevue-workshop"
BODY = """+++
subject = "A workshop in Bellevue"
preheader = "Small group, bring a mat."
segment = "tag:local"
+++

Hi {{ subscriber.first_name or "there" }},

A **two-hour** workshop in Bellevue. {{ m.button("https://example.com/book", "Save a spot") }}
"""


@pytest.fixture
def coach(run, env, project):
    """The CLI, and the list: one reader tagged ``local`` per zone, and four who must not
    get it (outside the segment, paused, pending, unsubscribed)."""
    with_macros(project)
    drip = Drip(Settings.from_env(env))
    try:
        chosen = {key: person(drip, f"{key}@example.com", timezone=tz, tags=["local"]).email
                  for key, tz in ZONES.items()}
        person(drip, "outside@example.com", timezone=ZONES["la"])
        person(drip, "paused@example.com", tags=["local"], status="paused")
        person(drip, "pending@example.com", tags=["local"], status="pending")
        person(drip, "gone@example.com", tags=["local"], status="unsubscribed")
    finally:
        drip.close()
    return run, chosen


def outbox(project):
    found = {}
    for path in sorted((project / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[path.name] = message
    return found


def test_write_preview_test_schedule_and_deliver_at_nine_local(coach, project, env):
    run, chosen = coach
    made = run("broadcast", "new", "Bellevue workshop", "--now", "2026-03-02T18:00Z")
    assert made.exit_code == 0, made.output
    path = project / "broadcasts" / f"{NAME}.md"
    assert path.is_file() and f"Wrote {path}" in made.output
    path.write_text(BODY, encoding="utf-8")            # the coach writes her email

    listed = run("broadcast", "list", "--json")
    assert [(b["name"], b["state"]) for b in json.loads(listed.output)] == [(NAME, "draft")]

    shown = run("broadcast", "preview", NAME, "--output", "build/preview", "--now", "2026-03-02T18:00Z")
    assert shown.exit_code == 0, shown.output
    page = (project / "build" / "preview" / f"broadcast-{NAME}.html").read_text()
    assert "A workshop in Bellevue" in page
    ana = (project / "build" / "preview" / f"broadcast.{NAME}.send.ana-postpartum.html").read_text()
    assert "Hi Ana," in ana and "<strong>two-hour</strong>" in ana and "Save a spot" in ana

    tested = run("broadcast", "test", NAME, "--to", "me@example.com", "--now", "2026-03-02T18:00Z")
    assert tested.exit_code == 0, tested.output
    [test_mail] = outbox(project).values()
    assert test_mail["Subject"] == "[TEST] A workshop in Bellevue"
    assert test_mail["To"].addresses[0].addr_spec == "me@example.com"

    # Not on a terminal and no --yes: refused as bad usage, nothing recorded.
    refused = run("broadcast", "schedule", NAME, "Tue 09:00 local", "--now", "2026-03-05T12:00Z")
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert "scheduled" not in run("broadcast", "list").output
    done = run("broadcast", "schedule", NAME, "Tue 09:00 local", "--yes", "--now", "2026-03-05T12:00Z")
    assert done.exit_code == 0, done.output
    assert ("reaches 5 active subscribers in segment tag:local; left out: 1 paused, 1 pending, "
            "1 unsubscribed") in done.output

    # `drip send` run forward: every hour, and at each reader's 09:00.
    times = {at("2026-03-09T18:00Z") + timedelta(hours=h) for h in range(30)} | set(NINE_LOCAL.values())
    for now in sorted(times):
        sent = run("send", "--now", now.isoformat())
        assert sent.exit_code == 0, sent.output
    mail = {name: m for name, m in outbox(project).items() if name.startswith(f"broadcast.{NAME}.send.")}
    got = {m["To"].addresses[0].addr_spec: m for m in mail.values()}
    assert sorted(got) == sorted(chosen.values())                      # each once, nobody else
    for key, address in chosen.items():
        assert message_from_bytes(got[address].as_bytes(), policy=policy.default)["Date"].datetime \
            == NINE_LOCAL[key], key
        assert got[address]["Subject"] == "A workshop in Bellevue"

    status = json.loads(run("broadcast", "status", NAME, "--json", "--now", "2026-03-11T00:00Z").output)
    assert (status["state"], status["audience"], status["counts"]["sent"]) == ("sent", 5, 5)

    drip = Drip(Settings.from_env(env))
    try:
        row = next(d for d in drip.store.deliveries(campaign=f"broadcast.{NAME}"))
        drip.store.add_event(provider="outbox", type="opened", occurred_at=at("2026-03-10T10:00Z"),
                             received_at=at("2026-03-10T10:00Z"), raw={}, delivery_id=row.id,
                             subscriber_id=row.subscriber_id)
    finally:
        drip.close()
    report = json.loads(run("report", "--json", "--now", "2026-03-11T00:00Z").output)
    [line] = report["broadcasts"]
    assert (line["name"], line["state"], line["sent"], line["opened"]) == (NAME, "sent", 5, 1)
    assert not any(c["id"].startswith("broadcast.") for c in report["campaigns"])
    assert run("report", "--html", "report.html").exit_code == 0
    assert NAME in (project / "report.html").read_text()

    again = run("broadcast", "cancel", NAME)
    assert again.exit_code == 1 and "sent already" in again.output and "Traceback" not in again.output


def test_send_now_then_cancel_and_clear_errors(coach, project):
    run, chosen = coach
    (project / "broadcasts").mkdir()
    (project / "broadcasts" / f"{NAME}.md").write_text(BODY, encoding="utf-8")
    now = "2026-03-10T18:00Z"
    sent = run("broadcast", "send", NAME, "--yes", "--now", now)
    assert sent.exit_code == 0 and "5 deliveries due now" in sent.output, sent.output
    cancelled = run("broadcast", "cancel", NAME, "--now", now)
    assert cancelled.exit_code == 0 and "Cancelled 5 scheduled" in cancelled.output
    assert run("send", "--now", now).exit_code == 0
    assert not [n for n in outbox(project) if n.startswith("broadcast.")]
    status = json.loads(run("broadcast", "status", NAME, "--json").output)
    assert (status["state"], status["counts"]["cancelled"]) == ("cancelled", 5)

    for args, words in [
        (("broadcast", "schedule", "nope", "Tue 09:00 local", "--yes"), "no broadcast 'nope'"),
        (("broadcast", "schedule", NAME, "Tue 25:00 local", "--yes"), "not a time of day"),
        (("broadcast", "status", "nope"), "has not been scheduled"),
        (("broadcast", "new", ""), "title on one line"),
    ]:
        result = run(*args)
        assert result.exit_code == 1 and words in result.output, (args, result.output)
        assert "Traceback" not in result.output
    (project / "broadcasts" / "2026-04-01-broken.md").write_text("+++\nsubjet = 'x'\n+++\nHi\n")
    broken = run("broadcast", "list")
    assert broken.exit_code == 1 and "subjet: unknown key" in broken.output


def _on_a_terminal(args, env, cwd, answer):
    """Run ``python -m sender ARGS`` with a pseudo-terminal as stdin and stdout, answer the
    question once it is asked, and return (exit code, everything it printed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "sender", *args], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env={**os.environ, **env})
    os.close(slave)
    seen, answered, deadline = b"", False, time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:          # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"Go ahead?" in seen:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=max(deadline - time.monotonic(), 1)), seen.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_on_a_terminal_it_asks_first(coach, project, env):
    (project / "broadcasts").mkdir()
    (project / "broadcasts" / f"{NAME}.md").write_text(BODY, encoding="utf-8")
    args = ("broadcast", "send", NAME, "--now", "2026-03-10T18:00Z")
    code, said = _on_a_terminal(args, env, project, "n")
    assert code == 1 and "reaches 5 active subscribers" in said and "Nothing was scheduled" in said
    drip = Drip(Settings.from_env(env))
    try:
        assert drip.store.get_broadcast(NAME) is None
        code, said = _on_a_terminal(args, env, project, "y")
        assert code == 0 and "5 deliveries due now" in said, said
        assert len(list(drip.store.deliveries(campaign=f"broadcast.{NAME}"))) == 5
    finally:
        drip.close()
