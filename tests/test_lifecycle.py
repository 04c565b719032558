"""Subscribers through their life: add, confirm, pause, resume, unsubscribe; campaign edits."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest

from sender import joining, subscribers
from sender.dispatch import send_due
from sender.errors import DripError, HeaderInjection, InvalidInput
from sender.providers.base import Provider
from tests.conftest import at

SIGNUP = at("2026-03-02T18:00Z")   # Monday 10:00 in Los Angeles (the default zone)


def states(drip, person):
    return {(d.campaign, d.step): d.state for d in drip.store.deliveries(subscriber_id=person.id)}


def dues(drip, person, campaign="course"):
    return {d.step: d.due_at for d in drip.store.deliveries(subscriber_id=person.id, campaign=campaign)}


def outbox(project):
    return sorted((project / "outbox").glob("*.eml"))


def test_pending_subscriber_gets_confirmation_then_nothing_else(drip, project):
    result = subscribers.add_subscriber(drip, " Ana@Example.COM ", now=SIGNUP, name="Ana",
                                        consent_source="form", consent_text="v1")
    person = result.subscriber
    assert (person.email, person.status, result.confirmation_queued) == ("ana@example.com", "pending", True)
    assert person.consent.source == "form" and person.consent.at == SIGNUP
    report = send_due(drip, now=SIGNUP)
    assert report.sent == 1
    [eml] = outbox(project)
    msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
    body = msg.get_body(("plain",)).get_content()
    assert "https://mail.example.com/confirm/" in body
    assert states(drip, person) == {("confirmation", "confirm"): "sent"}
    # Nothing more while pending, however long we wait.
    assert send_due(drip, now=SIGNUP + timedelta(days=30)).sent == 0


def test_repeated_signup_sends_one_confirmation_per_window(drip):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP).subscriber
    send_due(drip, now=SIGNUP)
    again = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP + timedelta(minutes=10))
    assert again.confirmation_queued is False and again.created is False
    later = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP + timedelta(hours=2))
    assert later.confirmation_queued is True
    assert send_due(drip, now=SIGNUP + timedelta(hours=2)).sent == 1
    rows = list(drip.store.deliveries(subscriber_id=person.id))
    assert len(rows) == 1 and rows[0].attempts == 1


def test_confirm_enrols_and_schedules_each_step(drip):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP).subscriber
    entered = subscribers.confirm(drip, person, now=SIGNUP + timedelta(hours=1))
    assert sorted(entered) == ["course", "welcome"]
    assert states(drip, person)[("confirmation", "confirm")] == "cancelled"
    # Confirmed Monday 11:00 PST: three days on at the same local hour, then a week on,
    # when the clocks have moved to PDT.
    assert dues(drip, person) == {"one": at("2026-03-05T19:00Z"),     # Thu 11:00 PST
                                  "two": at("2026-03-12T18:00Z")}     # Thu 11:00 PDT
    assert subscribers.confirm(drip, drip.store.get_subscriber(id=person.id), now=SIGNUP) == []


def test_readding_updates_and_never_duplicates(drip):
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, name="Ana", tags=["a"],
                               fields={"stage": "pregnant"}, confirmed=True)
    result = subscribers.add_subscriber(drip, "ANA@example.com", now=SIGNUP, name="Ana B", tags=["b"],
                                        fields={"weeks": "6"}, timezone="Europe/Madrid", confirmed=True)
    person = result.subscriber
    assert result.created is False
    assert (person.name, person.tags, person.timezone) == ("Ana B", ["a", "b"], "Europe/Madrid")
    assert person.fields == {"stage": "pregnant", "weeks": "6"}
    assert len(list(drip.store.list_subscribers())) == 1
    assert len(list(drip.store.deliveries(subscriber_id=person.id))) == 3


def test_readding_an_unsubscribed_person_does_not_resubscribe(drip):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    subscribers.unsubscribe(drip, person, now=SIGNUP)
    result = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    assert result.subscriber.status == "unsubscribed" and "sign up again" in result.note


def test_unsubscribe_cancels_every_pending_email(drip, project):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    send_due(drip, now=SIGNUP)
    cancelled = subscribers.unsubscribe(drip, person, now=SIGNUP + timedelta(days=1))
    assert cancelled == 2
    assert states(drip, person) == {("welcome", "hello"): "sent", ("course", "one"): "cancelled",
                                    ("course", "two"): "cancelled"}
    stored = drip.store.get_subscriber(id=person.id)
    assert stored.status == "unsubscribed" and stored.consent.withdrawn_at == SIGNUP + timedelta(days=1)
    assert send_due(drip, now=SIGNUP + timedelta(days=60)).sent == 0
    assert len(outbox(project)) == 1


def test_unsubscribed_between_claim_windows_is_skipped(drip):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    # Status changed behind the ledger's back (as a provider event might): rows due are skipped.
    drip.store.update_subscriber(person.id, now=SIGNUP, status="complained")
    report = send_due(drip, now=SIGNUP + timedelta(days=4))
    assert report.sent == 0 and report.skipped == 2


def test_pause_holds_and_resume_shifts_by_the_time_paused(drip):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    send_due(drip, now=SIGNUP)
    before = dues(drip, person)
    assert subscribers.pause(drip, person, now=SIGNUP + timedelta(days=1))
    assert send_due(drip, now=SIGNUP + timedelta(days=9)).sent == 0   # "one" was due on day 3
    person = drip.store.get_subscriber(id=person.id)
    assert subscribers.resume(drip, person, now=SIGNUP + timedelta(days=15))
    after = dues(drip, person)
    # Paused for 14 days: each remaining step moves 14 days later on the local calendar,
    # at the same local hour although the clocks changed (PST -> PDT) in between.
    la = ZoneInfo("America/Los_Angeles")
    for step in ("one", "two"):
        old_wall = before[step].astimezone(la).replace(tzinfo=None)
        assert after[step].astimezone(la).replace(tzinfo=None) == old_wall + timedelta(days=14)
    assert after["one"] - before["one"] == timedelta(days=14, hours=-1)
    assert drip.store.get_subscriber(id=person.id).status == "active"
    assert send_due(drip, now=after["one"]).sent == 1


def test_pause_and_resume_refuse_wrong_status(drip):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP).subscriber
    assert subscribers.pause(drip, person, now=SIGNUP) is False
    assert subscribers.resume(drip, person, now=SIGNUP) is False


def test_bad_input_is_rejected_with_reason_and_nothing_stored(drip):
    with pytest.raises(InvalidInput, match="exactly one @"):
        subscribers.add_subscriber(drip, "ana.example.com", now=SIGNUP)
    with pytest.raises(HeaderInjection, match="line break"):
        subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, name="Ana\r\nBcc: x@y.z")
    with pytest.raises(InvalidInput, match="IANA"):
        subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, timezone="Nowhere/Land")
    with pytest.raises(InvalidInput, match="key=value"):
        joining.parse_fields(["stage"])
    assert list(drip.store.list_subscribers()) == []


@pytest.mark.parametrize("fields, problem", [
    ({"my notes!": "x"}, "field name 'my notes!' is not allowed"),
    ({"due\x01date": "x"}, "is not allowed"),
    ({"stage": "x" * 1001}, "longer than 1000 characters"),
    ({"stage": "=?utf-8?q?x?="}, "=?"),
])
def test_every_caller_of_add_subscriber_gets_the_shared_rules(drip, fields, problem):
    """The rules live in joining.py and add_subscriber applies them itself, so a way in
    that forgets to check first (the dashboard's form did) cannot store what the form,
    the CLI and the import refuse."""
    with pytest.raises(InvalidInput) as refused:
        subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, fields=fields)
    assert problem in str(refused.value)
    assert list(drip.store.list_subscribers()) == []


def test_no_confirmation_campaign_needs_confirmed(project, make_drip, env):
    (project / "campaigns" / "confirmation.toml").unlink()
    drip = make_drip(env)
    with pytest.raises(DripError, match="--confirmed"):
        subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP)


# --- campaign edits -------------------------------------------------------------------------

def _edit(project, old, new):
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text().replace(old, new))


def test_inserted_earlier_step_is_not_blasted_and_sent_steps_never_resend(project, env, make_drip):
    drip = make_drip(env)
    early = subscribers.add_subscriber(drip, "early@example.com", now=SIGNUP, confirmed=True).subscriber
    send_due(drip, now=SIGNUP)                     # welcome
    send_due(drip, now=at("2026-03-05T18:00Z"))   # course/one, Thursday 10:00 PST
    late = subscribers.add_subscriber(drip, "late@example.com", now=at("2026-03-05T18:30Z"),
                                      confirmed=True).subscriber
    send_due(drip, now=at("2026-03-05T18:30Z"))
    # The coach inserts a step between "one" and "two", and a new first step.
    _edit(project, '[[steps]]\nid = "two"', '[[steps]]\nid = "between"\ntemplate = "course/one"\n'
          'subject = "Between"\ndelay = "1d"\n\n[[steps]]\nid = "two"')
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text().replace('[[steps]]\nid = "one"', '[[steps]]\nid = "zero"\n'
                                             'template = "course/one"\nsubject = "Zero"\ndelay = "0"\n\n'
                                             '[[steps]]\nid = "one"', 1))
    drip = make_drip(env)
    now = at("2026-03-06T12:00Z")
    from sender.plan import pending_changes
    preview = pending_changes(drip, now=now)
    assert {(c["email"], c["step"], c["action"]) for c in preview} >= {
        ("early@example.com", "zero", "skip"), ("late@example.com", "zero", "skip")}
    # Nothing changed yet: plan is a dry run.
    assert ("course", "zero") not in states(drip, early)
    report = send_due(drip, now=now)
    assert report.changes == len(preview)
    early_states = states(drip, early)
    assert early_states[("course", "zero")] == "skipped"      # before a sent step
    assert early_states[("course", "one")] == "sent"           # never resent
    assert early_states[("course", "between")] in ("scheduled", "sent")
    late_states = states(drip, late)
    assert late_states[("course", "zero")] == "skipped"        # its time had passed
    assert report.sent <= 2                                    # nobody got a burst
    # Applying again changes nothing.
    assert send_due(drip, now=now).changes == 0


def test_removed_step_is_cancelled_and_moved_delay_reschedules(project, env, make_drip):
    drip = make_drip(env)
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    send_due(drip, now=SIGNUP)
    text = (project / "campaigns" / "course.toml").read_text()
    head, _, _ = text.partition('[[steps]]\nid = "two"')
    (project / "campaigns" / "course.toml").write_text(head.replace('delay = "3d"', 'delay = "4d"'))
    drip = make_drip(env)
    send_due(drip, now=SIGNUP + timedelta(hours=1))
    rows = {d.step: d for d in drip.store.deliveries(subscriber_id=person.id, campaign="course")}
    assert rows["two"].state == "cancelled" and "removed" in rows["two"].last_error
    assert rows["one"].due_at == at("2026-03-06T18:00Z")   # Friday 10:00 PST, 4 days on


# --- sending ----------------------------------------------------------------------------------

def test_message_headers_and_parts(drip, project):
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, name="Zoë Ångström", confirmed=True)
    send_due(drip, now=SIGNUP)
    [eml] = outbox(project)
    raw = eml.read_bytes()
    msg = message_from_bytes(raw, policy=policy.default)
    for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe",
                   "List-Unsubscribe-Post"):
        assert len(msg.get_all(header)) == 1, header
    assert msg["Subject"] == "Welcome, Zoë"
    assert b"=?utf-8?" in raw.split(b"\n\n")[0]          # RFC 2047 for the non-ASCII subject/name
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = msg["List-Unsubscribe"]
    assert unsub.startswith("<https://mail.example.com/unsubscribe/") and unsub.endswith(">")
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for part in (text, html):
        assert "123 Example St, Redmond, WA 98052, USA" in part
        assert unsub[1:-1] in part
    assert msg["Message-ID"].startswith("<welcome.hello.") and msg["Message-ID"].endswith("@example.com>")


def test_html_in_names_is_escaped(drip, project):
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, name="<script>alert(1)</script>",
                               confirmed=True)
    send_due(drip, now=SIGNUP)
    msg = message_from_bytes(outbox(project)[0].read_bytes(), policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_retry_keeps_message_id_and_outbox_never_duplicates(drip, project):
    from sender.compose import compose
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    campaign = drip.campaigns.get("welcome")
    first = compose(drip, person, campaign, campaign.steps[0], now=SIGNUP, delivery_id=1)
    again = compose(drip, person, campaign, campaign.steps[0], now=SIGNUP + timedelta(hours=1), delivery_id=1)
    assert first.message_id == again.message_id
    drip.provider.send([first])
    drip.provider.send([again])
    assert len(outbox(project)) == 1


def test_crash_after_handoff_is_reconciled_not_resent(drip, project):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    # Simulate a crash: claimed, handed to the outbox, never recorded.
    [claimed] = drip.store.claim_due(SIGNUP, 1, pending_campaign="confirmation")
    from sender.compose import compose
    campaign = drip.campaigns.get(claimed.campaign)
    drip.provider.send([compose(drip, person, campaign, campaign.step(claimed.step), now=SIGNUP,
                                delivery_id=claimed.id)])
    # Another run within the claim timeout leaves it alone; after it, reconciles.
    assert send_due(drip, now=SIGNUP + timedelta(minutes=1)).recovered == 0
    report = send_due(drip, now=SIGNUP + timedelta(minutes=11))
    assert report.recovered == 1
    assert drip.store.get_delivery(claimed.id).state == "sent"
    assert len(outbox(project)) == 1


def test_crash_before_handoff_is_sent_once(drip, project):
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    [claimed] = drip.store.claim_due(SIGNUP, 1, pending_campaign="confirmation")
    report = send_due(drip, now=SIGNUP + timedelta(minutes=11))
    assert report.recovered == 1 and report.sent == 1
    assert drip.store.get_delivery(claimed.id).state == "sent"
    assert len(outbox(project)) == 1


def test_min_gap_spreads_catch_up_after_downtime(drip, project):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    # Nobody ran drip send for three weeks: welcome, one and two are all due.
    report = send_due(drip, now=SIGNUP + timedelta(days=21))
    assert report.sent == 1 and report.deferred == 2
    rows = {d.step: d for d in drip.store.deliveries(subscriber_id=person.id)}
    assert rows["hello"].state == "sent"
    assert rows["one"].due_at >= SIGNUP + timedelta(days=21, hours=20)
    sent_days = []
    moment = SIGNUP + timedelta(days=21)
    for _ in range(24 * 6):
        moment += timedelta(hours=1)
        if send_due(drip, now=moment).sent:
            sent_days.append(moment)
    assert len(sent_days) == 2
    assert sent_days[1] - sent_days[0] >= timedelta(hours=20)


class FlakyProvider(Provider):
    """A provider that answers from a script of outcomes (it stands in for the API's answers)."""

    name = "scripted"
    batch_size = 10
    max_schedule_ahead = None

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls = []

    def send(self, messages):
        from sender.providers.base import SendResult
        results = []
        for message in messages:
            outcome, kwargs = self.outcomes.pop(0)
            self.calls.append(message.message_id)
            results.append(SendResult(message.delivery_id, outcome, **kwargs))
        return results

    def reconcile(self, delivery, message_id):
        return "unknown", None

    def close(self):
        pass


def test_retry_backoff_then_give_up(env, make_drip):
    provider = FlakyProvider([("retry", {"error": "503", "retry_after": 600})] * 2
                             + [("retry", {"error": "503"})] * 3)
    drip = make_drip({**env, "DRIP_MAX_ATTEMPTS": "3"}, provider=provider)
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    report = send_due(drip, now=SIGNUP)
    assert report.retried == 1
    [row] = drip.store.deliveries(subscriber_id=person.id, campaign="welcome")
    assert row.state == "scheduled" and row.attempts == 1 and row.last_error == "503"
    assert row.due_at >= SIGNUP + timedelta(seconds=600)          # Retry-After honoured
    assert send_due(drip, now=SIGNUP + timedelta(seconds=599)).retried == 0
    send_due(drip, now=row.due_at)
    [row] = drip.store.deliveries(subscriber_id=person.id, campaign="welcome")
    send_due(drip, now=row.due_at)
    [row] = drip.store.deliveries(subscriber_id=person.id, campaign="welcome")
    assert row.state == "failed" and row.attempts == 3 and "gave up after 3 attempts" in row.last_error
    assert len(set(provider.calls)) == 1 and len(provider.calls) == 3


def test_rejected_address_is_suppressed(env, make_drip):
    provider = FlakyProvider([("rejected", {"error": "inactive recipient", "suppress": True})])
    drip = make_drip(env, provider=provider)
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    report = send_due(drip, now=SIGNUP)
    assert report.failed == 1 and "inactive recipient" in report.errors[0]
    assert drip.store.get_subscriber(id=person.id).status == "bounced"
    course = drip.store.deliveries(subscriber_id=person.id, campaign="course")
    assert {d.state for d in course} == {"cancelled"}


def test_crash_before_the_hand_off_is_sent_again_without_a_decision(env, make_drip):
    provider = FlakyProvider([("accepted", {})])
    drip = make_drip(env, provider=provider)
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    [claimed] = drip.store.claim_due(SIGNUP, 1, pending_campaign="confirmation")
    # Killed here: claimed, but the hand-off never began, so no provider can have it.
    report = send_due(drip, now=SIGNUP + timedelta(minutes=11))
    assert report.undecided == 0 and report.recovered == 1 and report.sent == 1
    assert len(provider.calls) == 1
    assert drip.store.get_delivery(claimed.id).state == "sent"


def test_undecided_crash_is_reported_not_resent(env, make_drip):
    provider = FlakyProvider([("accepted", {})])
    drip = make_drip(env, provider=provider)
    subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True)
    [claimed] = drip.store.claim_due(SIGNUP, 1, pending_campaign="confirmation")
    # Killed after the hand-off began: the provider may have it.
    assert drip.store.update_delivery(claimed.id, expect_lease=claimed.lease, handed_at=SIGNUP,
                                      handoff_key="k1")
    report = send_due(drip, now=SIGNUP + timedelta(minutes=11))
    assert report.undecided == 1 and provider.calls == []
    row = drip.store.get_delivery(claimed.id)
    assert row.state == "sending" and "drip resolve" in row.last_error
    from sender.dispatch import resolve
    resolve(drip, claimed.id, "resend", now=SIGNUP + timedelta(minutes=12))
    assert send_due(drip, now=SIGNUP + timedelta(minutes=12)).sent == 1
    assert drip.store.get_delivery(claimed.id).state == "sent"


def test_a_broken_template_holds_only_its_own_step(project, env, make_drip):
    """One broken email waits (it is not failed), with the file and line in `drip status`;
    the confirmation email and the other steps keep going, and it goes once fixed."""
    template = project / "templates" / "emails" / "welcome" / "hello.html"
    good = template.read_text()
    template.write_text("<p>line one</p>\n<p>{{ subscriber.nickname }}</p>\n")
    drip = make_drip(env)
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    subscribers.add_subscriber(drip, "sam@example.com", now=SIGNUP)        # pending
    report = send_due(drip, now=SIGNUP)
    assert report.held == 1 and report.sent == 1 and report.trouble
    assert "welcome/hello.html, line 2" in report.template_errors[0]
    assert "nickname" in report.template_errors[0]
    row = next(d for d in drip.store.deliveries(subscriber_id=person.id) if d.step == "hello")
    assert (row.state, row.reason) == ("scheduled", "template_error")
    assert "line 2" in row.last_error
    sent = [p.read_bytes() for p in (project / "outbox").glob("*.eml")]
    assert len(sent) == 1 and b"sam@example.com" in sent[0]       # the confirmation went
    from sender.status import status
    data = status(drip, now=SIGNUP)
    assert data["waiting"]["count"] == 1 and data["problems"]
    assert send_due(drip, now=SIGNUP + timedelta(minutes=5)).held == 0   # not before its retry
    template.write_text(good)
    later = send_due(drip, now=SIGNUP + timedelta(minutes=16))
    assert later.sent == 1 and later.held == 0
    assert states(drip, person)[("welcome", "hello")] == "sent"
    assert status(drip, now=SIGNUP + timedelta(minutes=16))["waiting"]["count"] == 0


def test_unsubscribed_person_signing_up_again_continues_where_they_left(drip, project):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    send_due(drip, now=SIGNUP)
    send_due(drip, now=SIGNUP + timedelta(days=3, hours=1))          # welcome, one
    left = SIGNUP + timedelta(days=5)
    subscribers.unsubscribe(drip, person, now=left)
    # The coach re-adding them changes nothing; their own new signup does, after confirming.
    again = subscribers.add_subscriber(drip, "ana@example.com", now=left + timedelta(days=1))
    assert again.subscriber.status == "unsubscribed" and again.confirmation_queued is False
    back = left + timedelta(days=20)
    result = subscribers.add_subscriber(drip, "ana@example.com", now=back, consent_source="web form",
                                        ip="127.0.0.1", resubscribe=True)
    assert result.subscriber.status == "pending" and result.confirmation_queued
    assert result.subscriber.consent.source == "web form" and result.subscriber.consent.at == back
    subscribers.confirm(drip, result.subscriber, now=back)
    person = drip.store.get_subscriber(id=person.id)
    assert person.status == "active" and person.consent.withdrawn_at is None
    rows = {d.step: d for d in drip.store.deliveries(subscriber_id=person.id) if d.campaign != "confirmation"}
    assert rows["hello"].state == "sent" and rows["one"].state == "sent"     # never again
    assert rows["two"].state == "scheduled" and rows["two"].due_at > back
    assert send_due(drip, now=rows["two"].due_at).sent == 1


def test_bounced_address_never_comes_back_through_a_signup(drip):
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    subscribers.suppress(drip, person, "bounced", now=SIGNUP, reason="hard bounce")
    result = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, resubscribe=True)
    assert result.subscriber.status == "bounced" and not result.confirmation_queued


def test_a_resumed_sequence_shows_no_campaign_change_afterwards(env, make_drip):
    """After pause and resume nothing in the campaign files changed: `drip plan` and the next
    `drip send` must not report a change for the email that is simply due."""
    from sender.plan import pending_changes

    drip = make_drip(env)
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    subscribers.pause(drip, person, now=SIGNUP + timedelta(hours=1))
    subscribers.resume(drip, subscribers.get(drip, "ana@example.com"),
                       now=SIGNUP + timedelta(hours=2))
    assert pending_changes(drip, now=SIGNUP + timedelta(hours=2, minutes=30)) == []
    assert send_due(drip, now=SIGNUP + timedelta(hours=2, minutes=30)).changes == 0
