"""List-Id and Feedback-ID on every message, and the stream each email belongs to, as the
outbox writes them (the .eml files pass the last header check before they are written)."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from sender import subscribers
from sender.compose import compose
from sender.dispatch import send_due
from sender.identity import MARKETING, TRANSACTIONAL, org_domain, sender_id, stream_of
from tests.conftest import at

SIGNUP = at("2026-03-02T18:00Z")   # Monday 10:00 in Los Angeles


def emails(project):
    found = {}
    for path in sorted((project / "outbox").glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[msg["Message-ID"].split(".")[0].lstrip("<") + "/" + msg["Message-ID"].split(".")[1]] = msg
    return found


def test_every_email_in_the_outbox_carries_list_id_and_feedback_id(drip, project):
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=SIGNUP, confirmed=True)
    subscribers.add_subscriber(drip, "bo@example.com", now=SIGNUP)          # pending
    send_due(drip, now=SIGNUP)
    send_due(drip, now=at("2026-03-05T18:00Z"))                              # course/one is due
    found = emails(project)
    assert sorted(found) == ["confirmation/confirm", "course/one", "welcome/hello"]
    expected = {
        "confirmation/confirm": ('"Confirm your subscription" <confirmation.example.com>',
                                 "confirmation:confirm:transactional:example"),
        "welcome/hello": ('"Welcome" <welcome.example.com>', "welcome:hello:transactional:example"),
        "course/one": ('"Course" <course.example.com>', "course:one:marketing:example"),
    }
    for key, (list_id, feedback) in expected.items():
        msg = found[key]
        assert msg.get_all("List-Id") == [list_id], key
        assert msg.get_all("Feedback-ID") == [feedback], key
        assert len(msg.get_all("List-Unsubscribe")) == 1


def test_streams_split_transactional_from_marketing(drip, shipped, make_drip, env):
    campaigns = drip.campaigns
    assert stream_of(campaigns.get("confirmation"), campaigns.get("confirmation").steps[0]) == TRANSACTIONAL
    assert stream_of(campaigns.get("welcome"), campaigns.get("welcome").steps[0]) == TRANSACTIONAL
    assert {stream_of(campaigns.get("course"), s) for s in campaigns.get("course").steps} == {MARKETING}
    # The shipped campaigns: the confirmation and the welcome email with the guide are
    # transactional, the glute progression is marketing.
    real = make_drip({**env, "DRIP_CAMPAIGNS_DIR": str(shipped / "campaigns"),
                      "DRIP_TEMPLATES_DIR": str(shipped / "templates")}).campaigns
    kinds = {(c.id, stream_of(c, s)) for c in real for s in c.steps}
    assert ("confirmation", TRANSACTIONAL) in kinds and ("welcome", TRANSACTIONAL) in kinds
    assert ("glute-progression", MARKETING) in kinds
    assert ("glute-progression", TRANSACTIONAL) not in kinds


@pytest.mark.parametrize("domain,expected", [
    ("example.com", "example"), ("mail.coach-example.com", "coachexample"),
    ("ab.io", "abdrip"), ("coach.co.uk", "coach"),
    ("a-very-long-name-for-a-coaching-business.com", "averylongnamefo")])
def test_sender_id_is_5_to_15_letters_and_digits_from_the_from_domain(domain, expected):
    assert sender_id(domain) == expected
    assert 5 <= len(sender_id(domain)) <= 15


def test_org_domain():
    assert org_domain("mg.coach.example.com") == "example.com"
    assert org_domain("send.coach.co.uk") == "coach.co.uk"
    assert org_domain("Example.COM.") == "example.com"


def test_a_campaign_name_that_cannot_be_a_plain_phrase_is_left_out(drip, project):
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text().replace('name = "Course"', 'name = "Zoë\'s \\"core\\" course"'))
    person = subscribers.add_subscriber(drip, "ana@example.com", now=SIGNUP, confirmed=True).subscriber
    from sender.drip import Drip

    fresh = Drip(drip.settings)
    try:
        campaign = fresh.campaigns.get("course")
        message = compose(fresh, person, campaign, campaign.steps[0], now=SIGNUP, delivery_id=9)
        assert message.headers["List-Id"] == "<course.example.com>"
        assert message.stream == MARKETING
        head = message.as_bytes().split(b"\r\n\r\n")[0]      # passes the last header check
        assert b"List-Id: <course.example.com>" in head
        assert b"Feedback-ID: course:one:marketing:example" in head
    finally:
        fresh.close()
