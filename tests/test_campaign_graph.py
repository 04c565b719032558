"""The campaign graph (issue 13): `drip campaigns` shows each campaign's steps with their
delays, conditions, A/B subjects and the goal that ends it, as text and as JSON, and
`drip preview` draws it as a page per campaign."""

from __future__ import annotations

import json

from sender.preview import build_site
from tests.journey_fixture import journey_project


def test_drip_campaigns_shows_conditions_variants_and_the_goal(run, project):
    journey_project(project)
    result = run("campaigns")
    assert result.exit_code == 0, result.output
    text = result.output
    block = text[text.index("journey:"):]
    assert "exit when: tag:client" in block
    assert "when field:stage=pregnant" in block and "when not field:stage=pregnant" in block
    assert "when clicked:journey/booking" in block
    assert "A: Book a call" in block
    assert "B: Your next step, {{ subscriber.first_name or 'friend' }}" in block
    # Each step shows its delay and what it counts from.
    lines = {line.split()[0]: line for line in block.splitlines()[1:] if line.startswith("  ")
             and not line.startswith("   ")}
    assert lines["intro"].split()[1:4] == ["+1h", "after", "enrolment"]
    assert lines["booking"].split()[1:4] == ["+2d", "after", "postpartum"]


def test_drip_campaigns_json_carries_the_whole_graph(run, project):
    journey_project(project)
    result = run("campaigns", "--json")
    assert result.exit_code == 0, result.output
    [journey] = [c for c in json.loads(result.output) if c["id"] == "journey"]
    assert journey["exit"] == "tag:client"
    steps = {s["id"]: s for s in journey["steps"]}
    assert list(steps) == ["intro", "pregnant", "postpartum", "booking", "last"]
    assert steps["pregnant"]["when"] == "field:stage=pregnant" and steps["intro"]["when"] is None
    assert steps["booking"]["subjects"] == [
        {"variant": "A", "subject": "Book a call"},
        {"variant": "B", "subject": "Your next step, {{ subscriber.first_name or 'friend' }}"}]
    assert steps["booking"]["subject"] == "Book a call"
    assert (steps["booking"]["delay"], steps["booking"]["after"]) == ("2d", "postpartum")
    assert steps["intro"]["after"] == "enrolment"
    # The JSON of a campaign without any of it keeps the same shape.
    [confirmation] = [c for c in json.loads(result.output) if c["id"] == "confirmation"]
    assert confirmation["exit"] is None and confirmation["steps"][0]["subjects"] == []


def test_the_preview_site_draws_each_campaign_graph(project, make_drip, env, tmp_path):
    journey_project(project)
    drip = make_drip(env)
    build_site(drip, tmp_path / "site")
    page = (tmp_path / "site" / "graph-journey.html").read_text(encoding="utf-8")
    assert "<svg" in page and "Journey" in page
    assert "field:stage=pregnant" in page and "clicked:journey/booking" in page
    assert "Book a call" in page and "tag:client" in page
    # Escaped, never markup: a subject is text.
    assert "{{ subscriber.first_name or &#x27;friend&#x27; }}" in page
    assert "<script" not in page
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert 'href="graph-journey.html"' in index
