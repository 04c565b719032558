"""Branches between campaigns (``then``, ``then_when``; ``sender/branches.py``): what loading
refuses, and through the real send path on SQLite and PostgreSQL that a branch moves her once
into the target (from the moment of the send, in its window), cancels the rest of the campaign
she leaves with the reason, and is finished by the next run whichever way the step became
sent (the send path, a recovered hand-off, `drip resolve`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sender import branches, campaign_graph, ledger, plan, subscribers, why
from sender.campaigns import load_campaigns
from sender.dispatch import resolve, send_due
from sender.errors import CampaignError
from sender.handoff import SendReport, compose_for
from sender.recovery import recover_stale
from sender.timeline import REASON_TEXT
from tests.conftest import at, base_env

SIGNUP = at("2026-03-02T18:00Z")       # Monday 10:00 in Los Angeles

START = """window = "always"
[campaign]
name = "Start"
[entry]
on = "confirm"
[[steps]]
id = "a"
template = "course/one"
subject = "A"
delay = "1h"
[[steps]]
id = "b"
template = "course/two"
subject = "B"
delay = "1d"
then = "{then}"
{then_when}
[[steps]]
id = "c"
template = "course/one"
subject = "C"
delay = "1d"
"""

NEXT = """window = "Mon-Fri 09:00-17:00"
[campaign]
name = "Next"
[entry]
on = "tag"
tags = ["next-only"]
[[steps]]
id = "n1"
template = "course/two"
subject = "N1"
delay = "0"
[[steps]]
id = "n2"
template = "course/one"
subject = "N2"
delay = "2d"
"""


def branch_project(project, *, then="next", then_when='then_when = "field:stage=postpartum"'):
    for other in ("course", "welcome"):
        (project / "campaigns" / f"{other}.toml").unlink()
    (project / "campaigns" / "start.toml").write_text(START.format(then=then, then_when=then_when),
                                                      encoding="utf-8")
    (project / "campaigns" / "next.toml").write_text(NEXT, encoding="utf-8")
    return project


@pytest.fixture(params=["sqlite", "postgres"])
def bdrip(request, project, make_drip):
    branch_project(project)
    database = (str(project / "drip.db") if request.param == "sqlite"
                else request.getfixturevalue("postgres_url"))
    return make_drip(base_env(project, DRIP_DATABASE=database, DRIP_MIN_GAP="0"))


def add(drip, address, stage):
    return subscribers.add_subscriber(drip, address, now=SIGNUP, confirmed=True,
                                      fields={"stage": stage}).subscriber


def rows(drip, person, campaign):
    return {d.step: d for d in drip.store.deliveries(subscriber_id=person.id, campaign=campaign)}


def outbox_steps(project):
    return sorted(p.name for p in (project / "outbox").glob("*.eml"))


# --- loading ---------------------------------------------------------------------------------
def write(project, name, text):
    (project / "campaigns" / f"{name}.toml").write_text(text, encoding="utf-8")


def one_step(then=None, extra=""):
    then_line = f'then = "{then}"' if then else ""
    return (f'[entry]\non = "tag"\ntags = ["t"]\n[[steps]]\nid = "s"\ntemplate = "course/one"\n'
            f'subject = "S"\n{then_line}\n{extra}\n')


def test_loading_reports_every_branch_problem_at_once_with_file_and_key(project):
    campaigns = project / "campaigns"
    write(project, "ghost", one_step("nowhere"))
    write(project, "selfish", one_step("selfish"))
    write(project, "ping", one_step("pong"))
    write(project, "pong", one_step("ping"))
    write(project, "into-confirm", one_step("confirmation"))
    write(project, "dangling", one_step(extra='then_when = "tag:x"'))
    write(project, "badwhen", one_step("end", extra='then_when = "shoe:size=4"'))
    write(project, "badname", one_step("Not An Id"))
    with pytest.raises(CampaignError) as caught:
        load_campaigns(campaigns)
    problems = caught.value.problems
    text = "\n".join(problems)

    def has(file, key, words):
        return any(p.startswith(f"{campaigns / file}: {key}") and words in p for p in problems)

    assert has("ghost.toml", "steps[1].then", "there is no campaign 'nowhere'"), text
    assert has("selfish.toml", "steps[1].then", "loop (selfish then selfish)"), text
    assert has("ping.toml", "steps[1].then", "loop (ping then pong then ping)"), text
    assert sum("then pong then ping" in p or "then ping then pong" in p for p in problems) == 1
    assert has("into-confirm.toml", "steps[1].then", "is the confirmation campaign"), text
    assert has("dangling.toml", "steps[1].then_when", "only goes with then"), text
    assert has("badwhen.toml", "steps[1].then_when", ""), text
    assert has("badname.toml", "steps[1].then", 'or "end"'), text


def test_the_confirmation_email_cannot_branch(project):
    campaigns = project / "campaigns"
    (campaigns / "confirmation.toml").write_text(
        (campaigns / "confirmation.toml").read_text() + 'then = "course"\n', encoding="utf-8")
    with pytest.raises(CampaignError) as caught:
        load_campaigns(campaigns)
    assert caught.value.problems == [
        f"{campaigns / 'confirmation.toml'}: steps[1].then: the confirmation email cannot move "
        "anyone into another campaign (whoever confirms enters the campaigns on confirm); "
        "remove then"]


def test_a_tolerant_load_holds_a_loop_and_whatever_branches_into_it(project):
    write(project, "ping", one_step("pong"))
    write(project, "pong", one_step("ping"))
    write(project, "feeder", one_step("ping"))
    loaded = load_campaigns(project / "campaigns", tolerant=True)
    assert {"ping", "pong", "feeder"} <= set(loaded.broken)
    assert "does not load" in loaded.broken["feeder"][0]
    assert loaded.get("course") is not None and loaded.get("ping") is None


def test_the_keys_load_and_the_graph_shows_the_branch(project):
    branch_project(project)
    loaded = load_campaigns(project / "campaigns")
    b = loaded.get("start").step("b")
    assert (b.then, str(b.then_when)) == ("next", "field:stage=postpartum")
    item = campaign_graph.graph(loaded.get("start"))
    step = next(s for s in item["steps"] if s["id"] == "b")
    assert step["then"] == "next" and step["then_when"] == "field:stage=postpartum"
    lines = "\n".join(campaign_graph.text(item))
    assert "then: into next if field:stage=postpartum (the rest of this campaign is cancelled)" \
        in lines
    assert "then" in campaign_graph.page(item) and "graph-next.html" in campaign_graph.page(item)


# --- the send path ---------------------------------------------------------------------------
def test_a_branch_moves_her_once_and_cancels_the_rest_of_the_campaign(bdrip, project):
    ana, bea = add(bdrip, "ana@example.com", "postpartum"), add(bdrip, "bea@example.com", "pregnant")
    b_due = rows(bdrip, ana, "start")["b"].due_at
    send_due(bdrip, now=SIGNUP + timedelta(hours=2))            # a goes to both
    report = send_due(bdrip, now=b_due)        # b goes; ana branches, and n1 is due at once
    assert report.sent == 3 and report.cancelled == 1

    mine = rows(bdrip, ana, "start")
    assert (mine["b"].state, mine["b"].reason) == ("sent", ledger.BRANCHED)
    assert (mine["c"].state, mine["c"].reason) == ("cancelled", ledger.BRANCHED)
    assert "moved into next when start/b was sent" in mine["c"].last_error
    # Enrolled at the send, in the target's window (Mon-Fri 09:00-17:00 in Los Angeles):
    # b went Tuesday 11:00 local, so n1 is due at once and n2 two days later, in the window.
    [enrolment] = [e for e in bdrip.store.enrollments(subscriber_id=ana.id) if e.campaign == "next"]
    assert enrolment.enrolled_at == b_due
    target = rows(bdrip, ana, "next")
    assert target["n1"].due_at == b_due and target["n2"].due_at == b_due + timedelta(days=2)

    hers = rows(bdrip, bea, "start")        # not postpartum: she stays, marked so
    assert (hers["b"].state, hers["b"].reason) == ("sent", ledger.BRANCH_NOT_TAKEN)
    assert hers["c"].state == "scheduled"
    assert not [e for e in bdrip.store.enrollments(subscriber_id=bea.id) if e.campaign == "next"]

    # Following again (a catch-up, a second call) changes nothing: the mark says it is done.
    bdrip.store.set_meta(branches.SCAN_KEY, f"{mine['b'].id},{hers['b'].id}")
    assert branches.catch_up(bdrip, b_due + timedelta(days=1)) == 0
    assert branches.follow(bdrip, [mine["b"], hers["b"]], b_due + timedelta(days=1)) == 0
    assert len(list(bdrip.store.deliveries(subscriber_id=ana.id, campaign="next"))) == 2
    assert branches.noted(bdrip.store) == set()

    # The rest: bea gets c, ana gets the target's emails and never c.
    send_due(bdrip, now=b_due + timedelta(days=3))
    assert rows(bdrip, bea, "start")["c"].state == "sent"
    assert {s: d.state for s, d in rows(bdrip, ana, "next").items()} == {"n1": "sent", "n2": "sent"}
    assert rows(bdrip, ana, "start")["c"].state == "cancelled"


def test_then_end_ends_the_sequence(project, make_drip):
    branch_project(project, then="end", then_when="")
    drip = make_drip(base_env(project, DRIP_MIN_GAP="0"))
    ana = add(drip, "ana@example.com", "pregnant")
    send_due(drip, now=SIGNUP + timedelta(days=2))
    mine = rows(drip, ana, "start")
    assert (mine["b"].state, mine["b"].reason) == ("sent", ledger.ENDED)
    assert (mine["c"].state, mine["c"].reason) == ("cancelled", ledger.ENDED)
    assert rows(drip, ana, "next") == {}
    assert "sequence ended when start/b was sent" in mine["c"].last_error


def test_a_step_skipped_by_its_condition_does_not_branch(project, make_drip):
    branch_project(project, then_when='when = "field:stage=pregnant"')
    drip = make_drip(base_env(project, DRIP_MIN_GAP="0"))
    ana = add(drip, "ana@example.com", "postpartum")
    send_due(drip, now=SIGNUP + timedelta(days=3))
    mine = rows(drip, ana, "start")
    assert (mine["b"].state, mine["b"].reason) == ("skipped", ledger.CONDITION_NOT_MET)
    # c came in the same batch as b: it waited while b was being settled, then goes.
    assert (mine["c"].state, mine["c"].reason) == ("scheduled", ledger.BRANCH_PENDING)
    send_due(drip, now=SIGNUP + timedelta(days=3) + branches.RECHECK)
    assert rows(drip, ana, "start")["c"].state == "sent" and rows(drip, ana, "next") == {}


def test_an_edit_after_she_branched_adds_nothing_for_her(project, make_drip):
    branch_project(project)
    drip = make_drip(base_env(project, DRIP_MIN_GAP="0"))
    ana, bea = add(drip, "ana@example.com", "postpartum"), add(drip, "bea@example.com", "pregnant")
    now = SIGNUP + timedelta(days=1, hours=2)
    send_due(drip, now=now)
    path = project / "campaigns" / "start.toml"
    path.write_text(path.read_text() + '[[steps]]\nid = "d"\ntemplate = "course/two"\n'
                    'subject = "D"\ndelay = "3d"\n', encoding="utf-8")
    drip = make_drip(base_env(project, DRIP_MIN_GAP="0"))
    changes = plan.pending_changes(drip, now=now)
    assert [(c["email"], c["step"], c["action"]) for c in changes] == [
        ("bea@example.com", "d", "add")]
    send_due(drip, now=now)
    assert "d" not in rows(drip, ana, "start") and rows(drip, bea, "start")["d"].state == "scheduled"


# --- crashes: the branch is finished by the next run, once -----------------------------------
def _crash_after_handing(drip, person, step, now):
    """Claim her ``step``, mark it handed and hand it to the outbox, then stop as a killed
    process would: nothing recorded."""
    [row] = [d for d in ledger.claim(drip.store, now, 10, subscriber_id=person.id)
             if d.step == step]
    for other in ledger.claim(drip.store, now, 10):       # nothing else of this batch goes
        ledger.release(drip.store, other)
    campaign = drip.campaigns.get(row.campaign)
    message = compose_for(drip, row, person, campaign, campaign.step(step), now, now)
    ledger.handed(drip.store, row, at=now, key="crash")
    drip.provider.send([message])
    return row


def test_a_hand_off_interrupted_by_a_crash_branches_when_recovery_settles_it(bdrip, project):
    ana = add(bdrip, "ana@example.com", "postpartum")
    send_due(bdrip, now=SIGNUP + timedelta(hours=2))
    b_due = rows(bdrip, ana, "start")["b"].due_at
    _crash_after_handing(bdrip, ana, "b", b_due)
    assert rows(bdrip, ana, "start")["b"].state == "sending"
    later = b_due + bdrip.settings.claim_timeout + timedelta(minutes=1)
    send_due(bdrip, now=later)
    mine = rows(bdrip, ana, "start")
    assert (mine["b"].state, mine["b"].reason) == ("sent", ledger.BRANCHED)
    assert (mine["c"].state, mine["c"].reason) == ("cancelled", ledger.BRANCHED)
    assert set(rows(bdrip, ana, "next")) == {"n1", "n2"}
    assert sum(1 for name in outbox_steps(project) if ".b." in name) == 1
    assert branches.noted(bdrip.store) == set()


def test_a_crash_after_recovery_is_finished_by_the_next_run(bdrip):
    ana = add(bdrip, "ana@example.com", "postpartum")
    send_due(bdrip, now=SIGNUP + timedelta(hours=2))
    b_due = rows(bdrip, ana, "start")["b"].due_at
    _crash_after_handing(bdrip, ana, "b", b_due)
    later = b_due + bdrip.settings.claim_timeout + timedelta(minutes=1)
    # The run notes the waiting row and settles it as sent, then dies before following it.
    branches.note_waiting(bdrip, later)
    recover_stale(bdrip, later, SendReport())
    mine = rows(bdrip, ana, "start")
    assert (mine["b"].state, mine["b"].reason, mine["c"].state) == ("sent", None, "scheduled")
    send_due(bdrip, now=later + timedelta(minutes=1))
    mine = rows(bdrip, ana, "start")
    assert (mine["b"].reason, mine["c"].state) == (ledger.BRANCHED, "cancelled")
    assert set(rows(bdrip, ana, "next")) == {"n1", "n2"}


def test_resolve_as_sent_branches_at_the_next_run(project, make_drip):
    branch_project(project)
    drip = make_drip(base_env(project, DRIP_MIN_GAP="0"))
    ana = add(drip, "ana@example.com", "postpartum")
    send_due(drip, now=SIGNUP + timedelta(hours=2))
    b_due = rows(drip, ana, "start")["b"].due_at
    row = _crash_after_handing(drip, ana, "b", b_due)
    current = drip.store.get_delivery(row.id)
    ledger.wait_for_decision(drip.store, current, "the provider cannot tell")
    later = b_due + timedelta(minutes=1)       # before its claim is stale: it waits for the coach
    send_due(drip, now=later)                  # a run notes it
    assert branches.noted(drip.store) == {row.id}
    assert drip.store.get_delivery(row.id).state == "sending"
    resolve(drip, row.id, "sent", now=later)
    assert rows(drip, ana, "start")["c"].state == "scheduled"
    send_due(drip, now=later + timedelta(minutes=1))
    mine = rows(drip, ana, "start")
    assert (mine["b"].state, mine["b"].reason, mine["c"].state) == ("sent", ledger.BRANCHED,
                                                                    "cancelled")
    assert branches.noted(drip.store) == set()


def test_why_shows_the_branch_taken(bdrip):
    ana = add(bdrip, "ana@example.com", "postpartum")
    send_due(bdrip, now=SIGNUP + timedelta(days=3))
    found = why.explain(bdrip, ana, now=SIGNUP + timedelta(days=3)).to_dict()
    by_step = {(e["campaign"], e["step"]): e for e in found["emails"]}
    b, c = by_step[("start", "b")], by_step[("start", "c")]
    assert b["reason"] == ledger.BRANCHED and b["branch"] == {
        "then": "next", "then_when": "field:stage=postpartum"}
    assert "moved into next when start/b was sent" in b["message"]
    assert c["state"] == "cancelled" and c["reason_text"] == REASON_TEXT[ledger.BRANCHED]
    assert "next" in {p["id"] for p in found["campaigns"]}
