"""`drip plan` shows what an edit to a live campaign does to the people in it before `drip send`
applies it: a changed date anchor (their emails move), a changed condition (``when``) or goal
(``exit``): whom it concerns, and how many meet the new rule now."""

from __future__ import annotations

import json

from sender import subscribers
from sender.dispatch import send_due
from tests.conftest import at
from tests.test_date_anchors import progress_project

NOW = at("2026-03-02T18:00Z")


def setup(project, drip_for):
    progress_project(project)
    drip = drip_for()
    for email, fields, tags in (("ana@example.com", {"birth_date": "2026-02-16"}, ()),
                                ("bea@example.com", {"stage": "postpartum"}, ("client",)),
                                ("cy@example.com", {}, ())):
        subscribers.add_subscriber(drip, email, now=NOW, confirmed=True, fields=fields, tags=tags)
    send_due(drip, now=NOW)              # the welcome emails; the campaigns' rules are recorded
    return drip


def edit(project, old, new):
    path = project / "campaigns" / "progress.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def plan(run):
    result = run("plan", "--now", "2026-03-03T18:00Z", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_changed_anchor_shows_whose_emails_move_and_send_applies_it(project, make_drip, env, run):
    drip = setup(project, lambda: make_drip(env))
    before = {d.id: d.due_at for d in drip.store.deliveries(campaign="progress")}
    edit(project, 'delay = "6w"', 'delay = "8w"')
    shown = plan(run)["campaign_changes"]
    # Only Ana has a date: her three emails move two weeks later; the others' stay.
    assert {(c["email"], c["step"], c["action"]) for c in shown} == {
        ("ana@example.com", s, "move") for s in ("one", "two", "three")}
    [one] = [c for c in shown if c["step"] == "one"]
    assert (one["old_due_at"], one["due_at"]) == ("2026-03-30T07:00:00Z", "2026-04-13T07:00:00Z")
    # Nothing changed yet.
    assert {d.id: d.due_at for d in drip.store.deliveries(campaign="progress")} == before
    assert run("send", "--now", "2026-03-03T18:00Z").exit_code == 0
    ana = drip.store.get_subscriber(email="ana@example.com")
    assert [d.due_at.isoformat() for d in drip.store.deliveries(subscriber_id=ana.id,
                                                                 campaign="progress")] == [
        "2026-04-13T07:00:00+00:00", "2026-04-20T07:00:00+00:00", "2026-04-27T07:00:00+00:00"]
    assert plan(run)["campaign_changes"] == []


def test_an_edited_condition_or_goal_shows_whom_it_concerns(project, make_drip, env, run):
    setup(project, lambda: make_drip(env))
    assert plan(run)["rule_changes"] == []
    edit(project, 'subject = "Two"', 'subject = "Two"\nwhen = "field:stage=postpartum"')
    edit(project, 'name = "Progress"', 'name = "Progress"\nexit = "tag:client"')
    rules = {(r["step"], r["rule"]): r for r in plan(run)["rule_changes"]}
    assert set(rules) == {(None, "exit"), ("two", "when")}
    goal = rules[(None, "exit")]
    assert (goal["from"], goal["to"], goal["people"], goal["meet_now"]) == (None, "tag:client", 3, 1)
    when = rules[("two", "when")]
    assert (when["from"], when["to"], when["people"], when["meet_now"]) == (
        None, "field:stage=postpartum", 3, 1)
    assert "2 of 3 people" in when["effect"]
    text = run("plan", "--now", "2026-03-03T18:00Z").output
    assert "progress/two when: None -> 'field:stage=postpartum'" in text
    # Applied by the next send (Bea's goal ends her campaign at her next email); then the
    # plan has nothing left to show.
    assert run("send", "--now", "2026-03-03T18:00Z").exit_code == 0
    assert plan(run)["rule_changes"] == []
