"""The per-person rules of issue 13 in the crash harness (``crash.py``): a campaign whose steps
have a condition (``when``), A/B subjects and a branch into another campaign (``then`` with
``then_when``), and a goal (``exit = "tag:client"``) that the harness reaches for someone
while the processes run, as another process would (a tag added through the library, in its
own transaction). What of hers was being sent or sent as that commits is noted inside it.

At the end ``tally`` checks what the ledger and the provider say against the rules:

  condition_wrong  an email of the step with ``when`` that reached someone it does not fit;
  ab_wrong         an A/B email whose subject is not the variant drawn for her;
  branch_lost      a sent branch step never followed (no mark on its row), or followed the
                   wrong way (she matched then_when and is not in the target, or the reverse);
  after_branch     an email of the campaign she left that reached her after the branch;
  after_goal       an email of the campaign that reached her after her goal's tag committed,
                   not among those being sent or sent at that moment.
"""

from __future__ import annotations

from sender import branches, ledger, step_rules, subscribers

CAMPAIGN, TARGET = "journey", "onward"
FAILURES = ("condition_wrong", "ab_wrong", "branch_lost", "after_branch", "after_goal")
STEP_WHEN, STEP_AB, STEP_BRANCH, STEP_LAST = "j-stage", "j-ab", "j-branch", "j-last"

JOURNEY = f"""window = "always"
[campaign]
name = "Journey"
exit = "tag:client"
[entry]
on = "confirm"
[[steps]]
id = "{STEP_WHEN}"
template = "course/one"
subject = "For your pregnancy"
delay = "0"
when = "field:stage=pregnant"
[[steps]]
id = "{STEP_AB}"
template = "course/two"
subjects = ["Pick A", "Pick B"]
delay = "0"
[[steps]]
id = "{STEP_BRANCH}"
template = "course/one"
subject = "Where next"
delay = "0"
then = "{TARGET}"
then_when = "field:stage=postpartum"
[[steps]]
id = "{STEP_LAST}"
template = "course/two"
subject = "The last one here"
delay = "0"
"""

ONWARD = """window = "always"
[campaign]
name = "Onward"
[entry]
on = "tag"
tags = ["never-given"]
[[steps]]
id = "o1"
template = "course/one"
subject = "Onward one"
delay = "0"
[[steps]]
id = "o2"
template = "course/two"
subject = "Onward two"
delay = "1h"
"""


def install(project):
    (project / "campaigns" / f"{CAMPAIGN}.toml").write_text(JOURNEY, encoding="utf-8")
    (project / "campaigns" / f"{TARGET}.toml").write_text(ONWARD, encoding="utf-8")


def fields(number):
    """Every other person is pregnant (gets the step with ``when``) or postpartum (branches)."""
    return {"stage": "pregnant" if number % 2 == 0 else "postpartum"}


def become_client(drip, email, *, now):
    """Add her goal's tag and, in the same transaction (holding the write lock, so no sender
    marks anything of hers in between), note her journey rows being sent or sent."""
    person = drip.store.get_subscriber(email=email)
    with drip.store.transaction():
        subscribers.add_subscriber(drip, email, now=now, tags=["client"], confirmed=True)
        return {d.id for d in drip.store.deliveries(subscriber_id=person.id, campaign=CAMPAIGN)
                if d.state in (ledger.SENDING, ledger.SENT)}


def tally(drip, received, subjects, clients):
    """The counts above, from the ledger and what the provider got (``received``: delivery id
    -> times, ``subjects``: delivery id -> subject); ``clients``: email -> the ids noted."""
    store = drip.store
    journey = drip.campaigns.get(CAMPAIGN)
    counts = {"branched": 0, "clients": len(clients), "condition_wrong": 0, "ab_wrong": 0,
              "branch_lost": 0, "after_branch": 0, "after_goal": 0}
    rows = {}
    for row in store.deliveries(campaign=CAMPAIGN):
        rows.setdefault(row.subscriber_id, {})[row.step] = row
    people = store.get_subscribers(list(rows))
    onward = {e.subscriber_id for e in store.enrollments(campaign=TARGET)}
    for sid, mine in rows.items():
        person = people[sid]
        got = {step for step, row in mine.items() if received.get(str(row.id))}
        stage = person.fields.get("stage")
        if STEP_WHEN in got and stage != "pregnant":
            counts["condition_wrong"] += 1
        ab = mine.get(STEP_AB)
        if ab is not None and STEP_AB in got:
            drawn = step_rules.subject_for(journey, journey.step(STEP_AB), person)
            counts["ab_wrong"] += subjects.get(str(ab.id)) != drawn
        branch = mine.get(STEP_BRANCH)
        if branch is not None and branch.state == ledger.SENT:
            taken = branch.reason in (ledger.BRANCHED, ledger.ENDED)
            if branch.reason not in branches.MARKS or taken != (sid in onward):
                counts["branch_lost"] += 1
            if branch.reason == ledger.BRANCH_NOT_TAKEN and stage == "postpartum" \
                    and person.status == "active":
                counts["branch_lost"] += 1
            if taken:
                counts["branched"] += 1
                counts["after_branch"] += STEP_LAST in got
        noted = clients.get(person.email)
        if noted is not None:
            counts["after_goal"] += sum(1 for row in mine.values()
                                        if received.get(str(row.id)) and row.id not in noted)
    return counts
