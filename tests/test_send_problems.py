"""When sending meets a problem the coach can fix, drip says so: `drip send` exits 1 with what
it tried and when it tries again, `drip status` shows the waiting mail, `drip status --check`
exits 1 for a monitor, and the worker keeps running instead of exiting."""

from __future__ import annotations

import json
import logging
import socket
import threading

from sender import subscribers
from sender.providers.base import Provider
from sender.worker import run_worker
from tests.conftest import at

SIGNUP = at("2026-03-02T18:00Z")


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]       # nothing listens here once the socket is closed


def test_an_unreachable_provider_is_a_failure_with_the_retry_time(env, make_drip, run):
    provider = {"DRIP_PROVIDER": "postmark", "POSTMARK_SERVER_TOKEN": "pm-down",
                "POSTMARK_API_URL": f"http://127.0.0.1:{_closed_port()}"}
    drip = make_drip({**env, **provider})
    for name in ("ana", "bo", "cy"):
        subscribers.add_subscriber(drip, f"{name}@example.com", now=SIGNUP, confirmed=True)
    result = run("send", "--now", "2026-03-02T18:00Z", extra_env=provider)
    assert result.exit_code == 1, result.output
    assert "0 sent, 0 failed, 3 to retry" in result.output
    assert f"connection to {provider['POSTMARK_API_URL']} failed" in result.output
    assert "tried again from 2026-03-02" in result.output
    rows = [d for d in make_drip(env).store.deliveries() if d.campaign == "welcome"]
    assert {(d.state, d.reason, d.attempts) for d in rows} == {("scheduled", "retrying", 1)}
    status = json.loads(run("status", "--json", "--now", "2026-03-02T18:01Z").output)
    assert status["waiting"]["count"] == 3
    assert all("failed (ConnectionError)" in w["error"] for w in status["waiting"]["first"])
    check = run("status", "--check", "--now", "2026-03-02T18:01Z")
    assert check.exit_code == 1 and "3 email(s) waiting on a problem (retrying)" in check.output


def test_status_check_is_quiet_when_all_is_well_and_speaks_of_overdue_mail(env, make_drip, run):
    drip = make_drip(env)
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    assert run("send", "--now", "2026-03-02T18:00Z").exit_code == 0
    fine = run("status", "--check", "--now", "2026-03-02T18:01Z")
    assert fine.exit_code == 0 and fine.output.startswith("ok")
    # Nobody ran a sender for two weeks: the next emails are long overdue.
    late = run("status", "--check", "--json", "--now", "2026-03-16T18:00Z")
    assert late.exit_code == 1
    assert any("is `drip send`" in p for p in json.loads(late.output)["problems"])


def test_dry_run_renders_and_names_the_recipients(project, env, make_drip, run):
    drip = make_drip(env)
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=SIGNUP, confirmed=True)
    ok = run("send", "--dry-run", "--now", "2026-03-02T18:00Z")
    assert ok.exit_code == 0, ok.output
    assert "would send" in ok.output and "Ana <ana@example.com>" in ok.output
    (project / "templates" / "emails" / "welcome" / "hello.html").write_text(
        "<p>{{ subscriber.nickname }}</p>\n")
    broken = run("send", "--dry-run", "--now", "2026-03-02T18:00Z")
    assert broken.exit_code == 1 and "would wait" in broken.output
    assert "nickname" in broken.output
    assert {d.state for d in make_drip(env).store.deliveries()} == {"scheduled"}   # unchanged
    assert not list((project / "outbox").glob("*.eml"))


class _Refusing(Provider):
    """A provider whose key is refused on every request."""

    name = "refusing"

    def __init__(self, stop):
        self.stop, self.calls = stop, 0

    def send(self, messages):
        from sender.errors import ProviderError

        self.calls += 1
        if self.calls == 2:
            self.stop.set()
        raise ProviderError("the provider refused the request (401); check THE_KEY")


def test_the_worker_keeps_running_through_a_provider_error(env, make_drip, caplog):
    stop = threading.Event()
    provider = _Refusing(stop)
    drip = make_drip(env, provider=provider)
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    with caplog.at_level(logging.ERROR, logger="drip.worker"):
        runs = run_worker(drip, clock=lambda: SIGNUP, stop=stop, interval=0.01)
    assert provider.calls == 2 and runs == 2
    assert "check THE_KEY" in caplog.text
    assert {d.state for d in drip.store.deliveries() if d.campaign == "welcome"} == {"scheduled"}


def test_a_broken_campaign_file_holds_only_its_own_emails(project, env, make_drip, run):
    """`drip send` from cron starts cold: a campaign file broken since the last run is left
    out, its emails wait (never cancelled), confirmations and the other campaigns go."""
    drip = make_drip(env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    course = project / "campaigns" / "course.toml"
    good = course.read_text()
    course.write_text(good + "\n[[steps]\nbroken = \n")
    subscribers.add_subscriber(make_drip(env), "sam@example.com", now=SIGNUP)   # pending
    result = run("send", "--now", "2026-03-09T18:00Z")          # a week on: course is due
    assert result.exit_code == 1, result.output
    assert "course.toml" in result.output
    rows = {(d.campaign, d.step): d for d in make_drip(env).store.deliveries(subscriber_id=ana.id)}
    assert rows[("welcome", "hello")].state == "sent"
    course_rows = [d for (c, _), d in rows.items() if c == "course"]
    assert course_rows and {(d.state, d.reason) for d in course_rows if d.due_at <= at(
        "2026-03-09T18:00Z")} <= {("scheduled", "campaign_error")}
    assert all(d.state != "cancelled" for d in course_rows)
    outbox = [p.read_bytes() for p in (project / "outbox").glob("*.eml")]
    assert any(b"sam@example.com" in m for m in outbox)          # the confirmation went
    assert run("campaigns").exit_code == 1
    assert run("check").exit_code == 1
    check = run("status", "--check", "--now", "2026-03-09T18:00Z")
    assert check.exit_code == 1 and "campaign file course does not load" in check.output
    course.write_text(good)
    later = run("send", "--now", "2026-03-10T18:20Z")      # past DRIP_MIN_GAP after the welcome
    assert later.exit_code == 0, later.output
    rows = make_drip(env).store.deliveries(subscriber_id=ana.id, campaign="course")
    assert "sent" in {d.state for d in rows}


def test_dry_run_says_a_braked_campaign_waits(env, make_drip, run):
    drip = make_drip(env)
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    drip.store.brake_campaign("welcome", reason="complaints", details={"rate": 0.01}, now=SIGNUP)
    result = run("send", "--dry-run", "--now", "2026-03-02T18:00Z")
    assert "would wait" in result.output and "complaint brake" in result.output
    assert "would send" not in result.output


def test_the_welcome_email_with_the_guide_is_never_held_by_the_gap(project, env, make_drip):
    """A second campaign entered on confirm whose first email is due at once must not push the
    welcome email (the guide she asked for) back by DRIP_MIN_GAP: it is transactional."""
    (project / "campaigns" / "bonus.toml").write_text(
        'window = "always"\n[campaign]\nname = "Bonus"\n[entry]\non = "confirm"\n'
        '[[steps]]\nid = "hello"\ntemplate = "course/one"\nsubject = "A bonus"\ndelay = "0"\n')
    drip = make_drip(env)
    ana = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    from sender.dispatch import send_due

    send_due(drip, now=SIGNUP)
    rows = {(d.campaign, d.step): d.state for d in drip.store.deliveries(subscriber_id=ana.id)}
    assert rows[("welcome", "hello")] == "sent"
