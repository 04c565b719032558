"""The shipped stage content: a pregnant reader gets the short pregnancy sequence and not the
postpartum glute progression; everyone else (postpartum, or stage not given) gets the glute
progression exactly as before; the glute emails carry cesarean notes only for a reader whose
``birth`` field says ``cesarean``; and all of it passes ``drip check`` and renders once."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest

from sender import joining, step_render, subscribers
from sender.checks import check_project
from sender.compose import compose, template_context
from sender.dispatch import send_due
from sender.html_scan import Page
from sender.render import render_template
from sender.samples import SAMPLES, Sample
from sender.schedule import parse_delay
from tests.conftest import at, base_env
from tests.test_render_once import assert_reference

from .conftest import needs_shipped

pytestmark = needs_shipped

LOS_ANGELES = ZoneInfo("America/Los_Angeles")
SIGNUP = at("2026-03-02T18:00Z")          # Monday 10:00 in Los Angeles (the default zone)
GLUTE = "glute-progression"
PREGNANCY = "pregnancy"
GLUTE_STEPS = ["why-flat", "alignment", "walking", "foundation", "hip-thrust", "penguin",
               "wall-single-leg-deadlift", "elevated-clamshell", "form-check-and-routine"]
CESAREAN_STEPS = {"why-flat", "walking", "foundation", "elevated-clamshell"}
CESAREAN_NOTE = "After a cesarean"


def _sample(key, **fields):
    base = SAMPLES[0].subscriber
    return Sample(key, key, replace(base, uid=f"sample-{key}", fields=dict(fields)))


CESAREAN = _sample("cesarean", stage="postpartum", birth="cesarean")
CESAREAN_NO_STAGE = _sample("cesarean-no-stage", birth="cesarean")
OTHER_BIRTH = _sample("other-birth", stage="postpartum", birth="vaginal")


@pytest.fixture
def shipped_drip(shipped, make_drip):
    return make_drip(base_env(shipped))


def _sign_up_and_confirm(drip, email, **fields):
    """The form's path: read the fields the form sent, store the signup, confirm the link."""
    values = {"email": email, "name": "Reader", "consent": "on", **fields}
    person_id = subscribers.sign_up(drip, joining.read_signup(values), ip="127.0.0.1", now=SIGNUP)
    person = drip.store.get_subscriber(id=person_id)
    entered = subscribers.confirm(drip, person, now=SIGNUP + timedelta(hours=1))
    return person, entered


def _schedule(drip, person, campaign):
    return [(d.step, d.due_at, d.state)
            for d in drip.store.deliveries(subscriber_id=person.id, campaign=campaign)]


def _local(rows):
    """The rows' due times on the reader's wall clock (Los Angeles, the default zone)."""
    return [due.astimezone(LOS_ANGELES).replace(tzinfo=None) for _s, due, _state in rows]


def _weekly(first, count):
    """``count`` times a week apart on the wall clock (across the change to daylight saving
    time on March 8), from ``first``."""
    return [datetime.fromisoformat(first) + timedelta(weeks=n) for n in range(count)]


# --- who enters what ---------------------------------------------------------------------------
def test_a_pregnant_reader_enters_the_pregnancy_sequence_and_not_the_glute_progression(shipped,
                                                                                        shipped_drip):
    drip = shipped_drip
    person, entered = _sign_up_and_confirm(drip, "pia@example.com", stage="pregnant",
                                           due_date="2026-06-01")
    assert sorted(entered) == [GLUTE, "pregnancy", "welcome"]
    # The glute progression waits for six weeks after her due date (date anchors, issue 13).
    assert _local(_schedule(drip, person, GLUTE))[0] == datetime(2026, 7, 13, 8, 0)
    pregnancy = drip.campaigns.get(PREGNANCY)
    rows = _schedule(drip, person, PREGNANCY)
    assert [step for step, _due, _state in rows] == [s.id for s in pregnancy.steps]
    assert {state for _s, _d, state in rows} == {"scheduled"}
    assert _local(rows) == _weekly("2026-03-05 11:00", len(rows))   # 3 days after confirming, then weekly
    # What goes out: the welcome email at once, then the pelvic floor email with the pregnancy
    # stop signs, and nothing from the glute progression.
    assert send_due(drip, now=SIGNUP + timedelta(hours=1)).sent == 1
    assert send_due(drip, now=rows[0][1]).sent == 1
    sent = [message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted((shipped / "outbox").glob("*.eml"))]
    assert sorted(m["Subject"] for m in sent) == sorted(
        [pregnancy.steps[0].subject, drip.campaigns.get("welcome").steps[0].subject])
    [email] = [m for m in sent if m["Subject"] == pregnancy.steps[0].subject]
    text = email.get_body(("plain",)).get_content()
    assert "Stop signs in pregnancy" in text and "contractions" in text and "Disclaimer" in text


@pytest.mark.parametrize("fields", [{"stage": "postpartum"}, {},
                                    {"stage": "postpartum", "birth": "cesarean"}],
                         ids=["postpartum", "no-stage", "cesarean"])
def test_everyone_else_gets_the_glute_progression_as_before(shipped_drip, fields):
    drip = shipped_drip
    person, entered = _sign_up_and_confirm(drip, "ana@example.com", **fields)
    assert sorted(entered) == [GLUTE, "welcome"]
    assert _schedule(drip, person, PREGNANCY) == []
    rows = _schedule(drip, person, GLUTE)
    assert [step for step, _due, _state in rows] == GLUTE_STEPS
    assert _local(rows) == _weekly("2026-03-05 11:00", len(rows))   # 3 days after confirming, then weekly


def test_the_entries_are_written_as_segments(shipped_drip):
    campaigns = shipped_drip.campaigns
    pregnant, postpartum, unknown, expecting = (
        replace(SAMPLES[0].subscriber, fields=f) for f in
        ({"stage": "pregnant"}, {"stage": "postpartum"}, {},
         {"stage": "pregnant", "due_date": "2026-06-01"}))
    readers = (pregnant, postpartum, unknown, expecting)
    assert [campaigns.get(PREGNANCY).accepts(p) for p in readers] == [True, False, False, True]
    # A pregnant reader who gave no date never gets postpartum exercises: nothing would say
    # when her baby came. With a due date, the glute progression waits for six weeks after it.
    assert [campaigns.get(GLUTE).accepts(p) for p in readers] == [False, True, True, True]
    assert "pregnancy sequence" in campaigns.get(PREGNANCY).description.lower()


# --- the pregnancy emails --------------------------------------------------------------------------
def _body(drip, campaign, step, subscriber):
    context = template_context(drip, subscriber, campaign, step)
    return render_template(drip.templates, f"emails/{step.template}.html", context)


def test_the_pregnancy_sequence_is_three_or_four_weekly_emails_with_safety_beside_the_exercises(
        shipped_drip):
    drip = shipped_drip
    campaign = drip.campaigns.get(PREGNANCY)
    assert 3 <= len(campaign.steps) <= 4
    assert all(s.template.startswith("pregnancy/") for s in campaign.steps)
    assert all(s.delay == parse_delay("1w") for s in campaign.steps[1:])
    exercise = [s for s in campaign.steps if s.exercise]
    assert len(exercise) >= 2
    reader = SAMPLES[1].subscriber          # the pregnant sample
    for step in exercise:
        body = _body(drip, campaign, step, reader)
        [block] = Page.parse(body).safety_blocks
        assert "stop signs" in block["heading"].lower() and "disclaimer" in block["text"].lower()
        # The pregnancy stop signs (ACOG's list in SAFETY.md), not only the postpartum ones.
        for sign in ("contractions", "fluid", "dizz", "calf", "chest pain", "balance"):
            assert sign in block["text"].lower(), (step.id, sign)
        # Beside the instructions: the block comes before the first "Setup" or "How to".
        first = min(i for i in (body.find("<strong>Setup"), body.find("<h2>How to")) if i >= 0)
        assert body.find('class="safety"') < first, step.id


def test_the_pregnancy_glute_work_adapts_lying_on_the_back_and_single_leg_balance(shipped_drip):
    drip = shipped_drip
    campaign = drip.campaigns.get(PREGNANCY)
    text = " ".join(re.sub(r"\s+", " ", _body(drip, campaign, s, SAMPLES[1].subscriber))
                    for s in campaign.steps)
    assert "16 weeks" in text and "propped" in text          # the incline, from about 16 weeks
    assert "wall or" in text and "chair" in text              # a hand on a wall or a chair
    assert "doming" in text                                   # regress, do not push through


@pytest.mark.parametrize("extra", [(), (CESAREAN, CESAREAN_NO_STAGE, OTHER_BIRTH)], ids=["samples", "birth"])
def test_drip_check_passes_on_the_shipped_content_with_every_reader(shipped_drip, extra):
    assert check_project(shipped_drip, samples=SAMPLES + tuple(extra)) == []


# --- the cesarean notes ----------------------------------------------------------------------------
def test_the_cesarean_notes_show_only_for_a_cesarean_birth(shipped_drip):
    drip = shipped_drip
    campaign = drip.campaigns.get(GLUTE)
    for step in campaign.steps:
        with_note = _body(drip, campaign, step, CESAREAN.subscriber)
        assert (CESAREAN_NOTE in with_note) == (step.id in CESAREAN_STEPS), step.id
        assert (CESAREAN_NOTE in _body(drip, campaign, step, CESAREAN_NO_STAGE.subscriber)) == (
            step.id in CESAREAN_STEPS), step.id
        for sample in (*SAMPLES, OTHER_BIRTH):
            assert CESAREAN_NOTE not in _body(drip, campaign, step, sample.subscriber), (step.id, sample.key)
        # Nothing else changes: the same email without the note.
        plain = _body(drip, campaign, step, replace(CESAREAN.subscriber, fields={"stage": "postpartum"}))
        assert re.sub(r'\s*<div class="tip cesarean">.*?</div>', "", with_note, flags=re.S).split() == \
            plain.split(), step.id


def test_every_step_still_renders_once_for_every_reader(shipped_drip):
    drip = shipped_drip
    steps = [(c, s) for c in drip.campaigns for s in c.steps]
    for campaign, step in steps:
        for sample in (*SAMPLES, CESAREAN, CESAREAN_NO_STAGE, OTHER_BIRTH):
            assert_reference(drip, sample.subscriber, campaign, step)
    stats = step_render.stats(drip.templates)
    assert stats.fell_back == {}, stats.fell_back
    assert {f"emails/{s.template}.html" for _, s in steps} <= stats.once
    assert stats.emails_per_person == 0
    message = compose(drip, CESAREAN.subscriber, drip.campaigns.get(GLUTE),
                      drip.campaigns.get(GLUTE).step("foundation"), now=SIGNUP)
    assert CESAREAN_NOTE in message.html and CESAREAN_NOTE in message.text
