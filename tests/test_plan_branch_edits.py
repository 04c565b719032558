"""`drip plan` shows an edit to a step's branch (``then``, ``then_when``) before `drip send`
applies it: the old and new rule, how many people with that step still to come it concerns,
and for ``then_when`` how many of them meet the new condition now. A campaign without branches
keeps its fingerprint."""

from __future__ import annotations

import json

from sender import subscribers
from sender.campaigns import load_campaigns
from sender.dispatch import send_due
from tests.conftest import FIXTURES, at
from tests.test_branches import branch_project

NOW = at("2026-03-02T18:00Z")
PLAN_AT = "2026-03-02T18:30Z"     # before anyone's first email of start


def setup(project, make_drip, env):
    branch_project(project)
    drip = make_drip(env)
    for email, stage in (("ana@example.com", "postpartum"), ("bea@example.com", "pregnant"),
                         ("cy@example.com", "")):
        subscribers.add_subscriber(drip, email, now=NOW, confirmed=True,
                                   fields={"stage": stage} if stage else {})
    send_due(drip, now=NOW)           # nothing of start is due yet; its rules are recorded
    return drip


def edit(project, old, new):
    path = project / "campaigns" / "start.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def rule_changes(run):
    result = run("plan", "--now", PLAN_AT, "--json")
    assert result.exit_code == 0, result.output
    return {(r["step"], r["rule"]): r for r in json.loads(result.output)["rule_changes"]}


def test_a_changed_then_when_shows_whom_it_concerns_and_who_meets_it(project, make_drip, env,
                                                                     run):
    drip = setup(project, make_drip, env)
    assert rule_changes(run) == {}
    edit(project, 'then_when = "field:stage=postpartum"', 'then_when = "field:stage=pregnant"')
    rules = rule_changes(run)
    assert set(rules) == {("b", "then_when")}
    change = rules[("b", "then_when")]
    assert (change["campaign"], change["from"], change["to"], change["people"],
            change["meet_now"]) == ("start", "field:stage=postpartum", "field:stage=pregnant", 3, 1)
    assert "1 of 3 people" in change["effect"] and "next" in change["effect"]
    text = run("plan", "--now", PLAN_AT).output
    assert "start/b then_when: 'field:stage=postpartum' -> 'field:stage=pregnant'" in text
    # Nothing is changed by the plan; the next send records the new rule, and then the plan
    # has nothing left to show.
    assert {d.reason for d in drip.store.deliveries(campaign="start")} == {None}
    assert run("send", "--now", PLAN_AT).exit_code == 0
    assert rule_changes(run) == {}


def test_a_branch_added_changed_or_removed_shows_old_and_new(project, make_drip, env, run):
    setup(project, make_drip, env)
    edit(project, 'then = "next"\nthen_when = "field:stage=postpartum"\n', "")
    edit(project, 'subject = "C"', 'subject = "C"\nthen = "end"')
    rules = rule_changes(run)
    assert set(rules) == {("b", "then"), ("b", "then_when"), ("c", "then")}
    removed, gone, added = rules[("b", "then")], rules[("b", "then_when")], rules[("c", "then")]
    assert (removed["from"], removed["to"], removed["people"]) == ("next", None, 3)
    assert "no branch any more" in removed["effect"]
    assert (gone["from"], gone["to"]) == ("field:stage=postpartum", None)
    assert (added["from"], added["to"], added["people"], added["meet_now"]) == (None, "end", 3, 3)
    assert "ends" in added["effect"]


def test_a_then_edit_changes_the_fingerprint_and_none_other_does(project):
    # The fixture's campaigns have no branch: their fingerprints are what they always were.
    loaded = {c.id: c.fingerprint() for c in load_campaigns(FIXTURES / "project" / "campaigns")}
    assert loaded == {"confirmation": "daaa54ee925a2420", "course": "5699fa9a3e526f03",
                      "welcome": "71525fa3db0834e2"}
    branch_project(project)
    before = load_campaigns(project / "campaigns").get("start").fingerprint()
    path = project / "campaigns" / "start.toml"
    text = path.read_text(encoding="utf-8")
    for old, new in (('then = "next"', 'then = "end"'),
                     ('"field:stage=postpartum"', '"field:stage=pregnant"')):
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        assert load_campaigns(project / "campaigns").get("start").fingerprint() != before
