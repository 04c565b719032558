"""The brake: a campaign whose complaint or hard-bounce rate reaches its limit is paused (its
mail waits, the rest of the list goes on), `drip status` says why, and only
`drip campaigns resume` lets it go again."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sender import brake, subscribers
from sender.dispatch import send_due
from sender.events import BOUNCED, COMPLAINED, Event, apply_events
from tests.conftest import at

SIGNUP = at("2026-03-02T18:00Z")       # Monday 10:00 in Los Angeles
COURSE_ONE = at("2026-03-05T18:00Z")   # course/one is due for everyone who signed up then
COURSE_TWO = at("2026-03-12T18:00Z")   # course/two, a week later
LIMITS = {"DRIP_BRAKE_COMPLAINT_RATE": "5%", "DRIP_BRAKE_MIN_EVENTS": "2"}


@pytest.fixture
def braking(env, make_drip, run):
    """A list of 40 who got the welcome email and course/one, with the brake at 5% and at
    least 2 events; ``run`` uses the same settings."""
    env.update(LIMITS)
    drip = make_drip(env)
    for n in range(40):
        subscribers.add_subscriber(drip, f"p{n}@example.com", now=SIGNUP, confirmed=True)
    assert send_due(drip, now=SIGNUP).sent == 40
    assert send_due(drip, now=COURSE_ONE).sent == 40
    return drip


def course_rows(drip, step):
    return sorted((d for d in drip.store.deliveries(campaign="course") if d.step == step),
                  key=lambda d: d.id)


def report(drip, delivery, kind, n, when):
    person = drip.store.get_subscriber(id=delivery.subscriber_id)
    event = Event(provider="postmark", type=kind, occurred_at=when, raw={"n": n},
                  provider_event_id=f"{kind}-{n}", delivery_id=delivery.id, email=person.email)
    return apply_events(drip, [event], now=when)


def outbox_names(project):
    return sorted(p.name for p in (project / "outbox").glob("*.eml"))


def test_complaints_pause_the_campaign_at_the_threshold_and_only_a_command_resumes_it(
        braking, run, project):
    drip = braking
    sent = course_rows(drip, "one")
    first = COURSE_ONE + timedelta(hours=2)
    report(drip, sent[0], COMPLAINED, 1, first)               # 1 of 40: under the minimum
    assert drip.store.campaign_brakes() == []
    report(drip, sent[1], COMPLAINED, 2, first)               # 2 of 40 = 5%: the limit
    [held] = drip.store.campaign_brakes()
    assert held["campaign"] == "course" and held["resumed_at"] is None
    assert held["details"]["complained"] == 2 and held["details"]["sent"] == 40
    assert "complaint" in held["reason"] and "5.0%" in held["reason"]

    check = run("status", "--check", "--json", "--now", COURSE_TWO.isoformat())
    assert check.exit_code == 1
    problems = json.loads(check.output)["problems"]
    assert any("course" in p and "drip campaigns resume course" in p for p in problems)
    shown = run("status", "--now", COURSE_TWO.isoformat()).output
    assert "paused by the brake: course" in shown and "38 email(s) waiting" in shown

    # A week on: course/two is due for the 38 who did not complain, and someone new signs up.
    subscribers.add_subscriber(drip, "new@example.com", now=COURSE_TWO - timedelta(hours=1),
                               confirmed=True)
    before = outbox_names(project)
    result = send_due(drip, now=COURSE_TWO)
    assert result.sent == 1                                   # the newcomer's welcome email
    added = sorted(set(outbox_names(project)) - set(before))
    assert len(added) == 1 and added[0].startswith("welcome.hello.")
    newcomer = drip.store.get_subscriber(email="new@example.com").id
    waiting = [d for d in course_rows(drip, "two") if d.subscriber_id != newcomer]
    # Waiting, not failed; the two who complained are suppressed, their mail cancelled.
    assert sorted(d.state for d in waiting) == ["cancelled"] * 2 + ["scheduled"] * 38
    assert drip.store.count_due(COURSE_TWO) == 0              # nothing looks overdue
    assert send_due(drip, now=COURSE_TWO + timedelta(hours=1)).sent == 0

    resumed = run("campaigns", "resume", "course", "--now", (COURSE_TWO + timedelta(hours=2)).isoformat())
    assert resumed.exit_code == 0, resumed.output
    # The 38 course/two emails and the newcomer's two course emails (not due yet) waited.
    assert "course resumed: 40 waiting email(s)" in resumed.output
    assert drip.store.campaign_brakes()[0]["resumed_at"] == COURSE_TWO + timedelta(hours=2)
    assert send_due(drip, now=COURSE_TWO + timedelta(hours=3)).sent == 38
    after = [d for d in course_rows(drip, "two") if d.subscriber_id != newcomer]
    assert sorted(d.state for d in after) == ["cancelled"] * 2 + ["sent"] * 38
    assert run("status", "--check", "--now", (COURSE_TWO + timedelta(hours=3)).isoformat()).exit_code == 0

    # Counted afresh from the resume: another late complaint about course/one (sent before
    # it) does not pause the campaign again.
    report(drip, sent[2], COMPLAINED, 3, COURSE_TWO + timedelta(hours=4))
    assert drip.store.campaign_brakes()[0]["resumed_at"] is not None


def test_resume_needs_a_braked_campaign(braking, run):
    result = run("campaigns", "resume", "course")
    assert result.exit_code == 1 and "course is not paused" in result.output
    result = run("campaigns", "resume", "nope")
    assert result.exit_code == 1 and "no campaign 'nope'" in result.output


def test_hard_bounces_pause_the_campaign(braking, env, make_drip):
    env.update({"DRIP_BRAKE_BOUNCE_RATE": "5%"})
    drip = make_drip(env)
    sent = course_rows(drip, "one")
    when = COURSE_ONE + timedelta(hours=1)
    report(drip, sent[0], BOUNCED, 1, when)
    assert drip.store.campaign_brakes() == []
    report(drip, sent[1], BOUNCED, 2, when)
    [held] = drip.store.campaign_brakes()
    assert held["campaign"] == "course" and "hard bounce" in held["reason"]
    assert held["details"]["bounced"] == 2


def test_a_replayed_complaint_counts_once(braking):
    sent = course_rows(braking, "one")
    when = COURSE_ONE + timedelta(hours=1)
    for _ in range(3):
        report(braking, sent[0], COMPLAINED, 1, when)         # the provider retries one event
    assert braking.store.campaign_brakes() == []


def test_mail_sent_outside_the_window_is_not_counted(braking):
    sent = course_rows(braking, "one")
    late = COURSE_ONE + timedelta(days=8)                     # the window is 7 days
    report(braking, sent[0], COMPLAINED, 1, late)
    report(braking, sent[1], COMPLAINED, 2, late)
    assert braking.store.campaign_brakes() == []


def test_small_numbers_need_the_minimum_count(env, make_drip):
    env.update({"DRIP_BRAKE_COMPLAINT_RATE": "5%"})          # at least 3 events (the default)
    drip = make_drip(env)
    for n in range(4):
        subscribers.add_subscriber(drip, f"p{n}@example.com", now=SIGNUP, confirmed=True)
    send_due(drip, now=SIGNUP)
    send_due(drip, now=COURSE_ONE)
    sent = course_rows(drip, "one")
    for n in range(2):                                        # 2 of 4 = 50%, but only two
        report(drip, sent[n], COMPLAINED, n, COURSE_ONE + timedelta(hours=1))
    assert drip.store.campaign_brakes() == []
    report(drip, sent[2], COMPLAINED, 2, COURSE_ONE + timedelta(hours=1))
    assert [b["campaign"] for b in drip.store.campaign_brakes()] == ["course"]


@pytest.mark.parametrize("sent,complained,bounced,expected", [
    (3000, 3, 0, "complaints"),      # 0.1% exactly, with the 3 the minimum asks for
    (3001, 3, 0, None),              # just under 0.1%
    (1000, 2, 0, None),              # 0.2%, but two are too few to judge
    (100, 0, 2, None),               # 2% of hard bounces, two are too few
    (100, 0, 3, "hard bounces"),     # 3%: over the 2% limit
    (0, 0, 0, None),
])
def test_default_limits(env, make_drip, sent, complained, bounced, expected):
    limits = brake.limits(make_drip(env).settings)
    assert (limits.complaint_rate, limits.bounce_rate, limits.min_events) == (0.001, 0.02, 3)
    assert limits.window == timedelta(days=7)
    health = brake.Health("course", sent=sent, complained=complained, bounced=bounced,
                          since=SIGNUP, until=COURSE_ONE)
    reason = brake.tripped(health, limits)
    assert (reason is not None) == (expected is not None)
    if expected:
        assert expected in reason


def test_bad_brake_settings_name_the_setting(env, make_drip):
    from sender.errors import ConfigError

    for name, value in (("DRIP_BRAKE_COMPLAINT_RATE", "lots"), ("DRIP_BRAKE_BOUNCE_RATE", "150%"),
                        ("DRIP_BRAKE_MIN_EVENTS", "0"), ("DRIP_BRAKE_WINDOW", "soon")):
        with pytest.raises(ConfigError, match=name):
            make_drip({**env, name: value})


def test_report_shows_the_rates_beside_the_limits(braking, run, tmp_path):
    sent = course_rows(braking, "one")
    report(braking, sent[0], COMPLAINED, 1, COURSE_ONE + timedelta(hours=1))
    now = (COURSE_ONE + timedelta(hours=2)).isoformat()
    data = json.loads(run("report", "--json", "--now", now).output)
    rows = {r["campaign"]: r for r in data["brake"]["campaigns"]}
    assert data["brake"]["limits"] == {"complaint_rate": 0.05, "bounce_rate": 0.02,
                                       "window_days": 7.0, "min_events": 2}
    assert rows["course"]["sent"] == 40 and rows["course"]["complained"] == 1
    assert rows["course"]["complaint_rate"] == pytest.approx(0.025)
    assert rows["course"]["paused"] is False
    assert (rows["welcome"]["sent"], rows["welcome"]["complained"]) == (40, 0)
    text = run("report", "--now", now).output
    assert "course: complaints 2.50% (1 of 40; limit 5%)" in text
    assert "hard bounces 0.00% (0 of 40; limit 2%)" in text
    page = tmp_path / "report.html"
    assert run("report", "--html", str(page), "--now", now).exit_code == 0
    assert "<td>course</td><td>40</td><td>1 (2.50%)</td><td>0 (0.00%)</td><td>sending</td>" \
        in page.read_text()
