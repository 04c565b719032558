"""The rules of a step beyond its timing (``sender/step_rules.py``): which subject of an A/B
step a subscriber gets, whether a step applies and whether a goal is reached; the numbers
behind an A/B verdict (``sender/ab_report.py``); and what campaign loading refuses."""

from __future__ import annotations

from collections import Counter

import pytest

from sender import ab_report, step_rules
from sender.campaigns import load_campaigns
from sender.errors import CampaignError
from sender.models import Subscriber
from sender.segments import parse_segment
from tests.journey_fixture import journey_project


def person(sid, **fields):
    return Subscriber(id=sid, uid=f"u{sid}", email=f"p{sid}@example.com", name="",
                      timezone=None, status="active", tags=list(fields.pop("tags", [])),
                      fields=fields)


# --- A/B: one subject per subscriber ---------------------------------------------------------
def test_the_variant_is_the_same_every_time_for_the_same_person_and_step():
    first = [step_rules.variant_index("journey", "booking", sid, 2) for sid in range(1, 200)]
    again = [step_rules.variant_index("journey", "booking", sid, 2) for sid in range(1, 200)]
    assert first == again
    # Another step (or campaign) is an independent draw, not the same split again.
    other = [step_rules.variant_index("journey", "other", sid, 2) for sid in range(1, 200)]
    assert first != other


@pytest.mark.parametrize("count", [2, 3, 4])
def test_the_variants_split_the_list_roughly_evenly(count):
    people = 6000
    split = Counter(step_rules.variant_index("journey", "booking", sid, count)
                    for sid in range(1, people + 1))
    assert set(split) == set(range(count))
    expected = people / count
    # Far inside what chance allows (a binomial's spread here is under 1.5%).
    assert all(abs(n - expected) < 0.06 * expected for n in split.values()), split


def test_the_chosen_step_carries_her_subject_and_every_other_part_unchanged(project):
    campaigns = load_campaigns(journey_project(project) / "campaigns")
    booking = campaigns.get("journey").step("booking")
    assert booking.subjects == ("Book a call",
                                "Your next step, {{ subscriber.first_name or 'friend' }}")
    seen = set()
    for sid in range(1, 40):
        chosen = step_rules.chosen_step(campaigns.get("journey"), booking, person(sid))
        index = step_rules.variant_index("journey", "booking", sid, 2)
        assert chosen.subject == booking.subjects[index]
        assert (chosen.id, chosen.template, chosen.delay) == (booking.id, booking.template,
                                                              booking.delay)
        seen.add(chosen.subject)
    assert len(seen) == 2
    intro = campaigns.get("journey").step("intro")
    assert step_rules.chosen_step(campaigns.get("journey"), intro, person(1)) is intro


def test_every_variant_can_be_had_for_checking(project):
    campaign = load_campaigns(journey_project(project) / "campaigns").get("journey")
    booking, intro = campaign.step("booking"), campaign.step("intro")
    assert [s.subject for s in step_rules.variants_of(booking)] == list(booking.subjects)
    assert step_rules.variants_of(intro) == [intro]


def test_variant_labels_are_letters():
    assert [step_rules.variant_label(i) for i in range(3)] == ["A", "B", "C"]


# --- conditions and goals --------------------------------------------------------------------
def test_a_step_applies_only_to_who_matches_its_condition(project):
    campaign = load_campaigns(journey_project(project) / "campaigns").get("journey")
    pregnant = campaign.step("pregnant")
    ana, bea = person(1, stage="pregnant"), person(2, stage="postpartum")
    assert step_rules.decide(campaign, pregnant, ana, {}) is None
    skip = step_rules.decide(campaign, pregnant, bea, {})
    assert skip.action == "skip" and skip.code == "condition_not_met"
    assert "field:stage=pregnant" in skip.message


def test_a_goal_reached_ends_the_step_before_its_condition_is_looked_at(project):
    campaign = load_campaigns(journey_project(project) / "campaigns").get("journey")
    client = person(3, stage="postpartum", tags=["client"])
    decision = step_rules.decide(campaign, campaign.step("pregnant"), client, {})
    assert decision.action == "cancel" and decision.code == "goal_reached"
    assert "tag:client" in decision.message


def test_click_terms_read_the_facts_given_and_refuse_to_guess_without_them():
    segment = parse_segment("clicked:journey/booking and not clicked:other")
    assert [(t.kind, t.key, t.value) for t in segment.terms] == [
        ("clicked", "journey", "booking"), ("clicked", "other", "")]
    facts = {("clicked", "journey", "booking"): {1, 2}, ("clicked", "other", ""): {2}}
    assert segment.matches(person(1), facts) is True
    assert segment.matches(person(2), facts) is False       # clicked the other campaign
    assert segment.matches(person(3), facts) is False       # never clicked
    with pytest.raises(Exception, match="clicked:journey"):
        segment.matches(person(1))


@pytest.mark.parametrize("text", ["clicked:", "clicked:/step", "clicked:a/b/c", "clicked:a/"])
def test_a_malformed_click_term_is_refused_with_the_syntax(text):
    with pytest.raises(Exception, match="clicked:CAMPAIGN"):
        parse_segment(text)


# --- the numbers behind an A/B verdict ----------------------------------------------------
def test_the_two_proportion_test_matches_the_textbook_value():
    # 30 of 100 against 50 of 100: z = 2.887, two-sided p = 0.0039.
    assert ab_report.two_proportion_p(30, 100, 50, 100) == pytest.approx(0.00389, abs=2e-5)
    assert ab_report.two_proportion_p(10, 100, 10, 100) == pytest.approx(1.0)


def test_fishers_exact_test_matches_the_textbook_value():
    # The tea-tasting style table [[1, 9], [11, 3]]: two-sided p = 0.002759.
    assert ab_report.fisher_exact_p(1, 9, 11, 3) == pytest.approx(0.002759, abs=2e-6)
    assert ab_report.fisher_exact_p(3, 3, 3, 3) == pytest.approx(1.0)


def test_small_counts_use_fishers_test_and_say_not_yet_meaningful():
    verdict = ab_report.verdict([{"variant": "A", "sent": 12, "clicked": 3},
                                 {"variant": "B", "sent": 11, "clicked": 1}])
    assert verdict["test"] == "fisher" and not verdict["meaningful"]
    assert "not yet meaningful" in verdict["note"] and "p = " in verdict["note"]


def test_a_clear_difference_names_the_leader():
    verdict = ab_report.verdict([{"variant": "A", "sent": 400, "clicked": 40},
                                 {"variant": "B", "sent": 400, "clicked": 80}])
    assert verdict["test"] == "z" and verdict["meaningful"]
    assert verdict["note"].startswith("B leads") and verdict["p"] < 0.05


def test_nothing_sent_yet_is_not_meaningful():
    verdict = ab_report.verdict([{"variant": "A", "sent": 0, "clicked": 0},
                                 {"variant": "B", "sent": 0, "clicked": 0}])
    assert not verdict["meaningful"] and "not yet meaningful" in verdict["note"]


# --- what loading refuses -------------------------------------------------------------------
BROKEN = """[campaign]
name = "Broken"
exit = "clicked:nowhere/step"

[[steps]]
id = "one"
template = "course/one"
subject = "One"
subjects = ["A", "B"]
when = "bogus:thing"

[[steps]]
id = "two"
template = "course/one"
subjects = ["Only one"]

[[steps]]
id = "three"
template = "course/one"
subjects = ["Same", "Same", ""]
when = "clicked:broken/four"
"""

SIGNUP_WITH_RULES = """[campaign]
name = "Confirm"
exit = "tag:client"

[entry]
on = "signup"

[[steps]]
id = "confirm"
template = "system/confirm"
subject = "Please confirm"
when = "field:stage"
"""


def test_loading_reports_every_problem_with_the_new_keys_at_once(project):
    folder = project / "campaigns"
    (folder / "broken.toml").write_text(BROKEN, encoding="utf-8")
    (folder / "confirmation.toml").write_text(SIGNUP_WITH_RULES, encoding="utf-8")
    with pytest.raises(CampaignError) as caught:
        load_campaigns(folder, templates_dir=project / "templates")
    text = str(caught.value)
    broken, confirm = folder / "broken.toml", folder / "confirmation.toml"
    for expected in (
            f"{broken}: steps[1].subjects: give either subject or subjects, not both",
            f"{broken}: steps[1].when: segment 'bogus:thing'",
            f"{broken}: steps[2].subjects: an A/B test needs at least two subjects",
            f"{broken}: steps[3].subjects: each subject must be a non-empty string",
            f"{broken}: steps[3].subjects: 'Same' is given twice",
            f"{broken}: campaign.exit: clicked:nowhere/step: there is no campaign 'nowhere'",
            f"{broken}: steps[3].when: clicked:broken/four: campaign 'broken' has no step 'four'",
            f"{confirm}: campaign.exit: the confirmation campaign",
            f"{confirm}: steps[1].when: the confirmation email",
    ):
        assert expected in text, f"missing {expected!r} in:\n{text}"


def test_a_good_journey_loads_with_its_rules(project):
    campaign = load_campaigns(journey_project(project) / "campaigns",
                              templates_dir=project / "templates").get("journey")
    assert str(campaign.goal) == "tag:client"
    assert str(campaign.step("pregnant").when) == "field:stage=pregnant"
    assert campaign.step("intro").when is None and campaign.step("intro").subjects == ()
    assert campaign.step("booking").subject == "Book a call"     # the first, for old readers
