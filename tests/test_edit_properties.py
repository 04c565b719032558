"""Editing a live campaign never sends a step twice or in a burst (issue 13), as a property
over random programs (Hypothesis): campaign edits (insert, remove and reorder steps, change
delays, add or remove ``when``, ``exit`` and ``then``) between sends at random times, pauses
and resumes, and a goal's tag added, against three subscribers on a real SQLite file, sent
through the real outbox (counted as it is handed each message).

After every step of a program:

- no delivery is handed to the provider twice;
- no two campaign emails reach one person within DRIP_MIN_GAP;
- `drip plan` (``plan.pending_changes``) lists exactly the changes the send then applies
  (``sequence.campaign_changes``), and each is in the ledger as planned: a step inserted
  before one already sent, or whose time has passed, is recorded skipped, and never sent;
- nothing of a campaign she left (its goal, a branch, its end) is scheduled for her again.

The number of examples comes from the Hypothesis profile (tests/conftest.py): a fifth of
it, so CI's deterministic profile runs 20 programs and `scripts/reliability.sh --long` 200.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sender import ledger, plan, subscribers
from sender.config import Settings
from sender.dispatch import send_due
from sender.drip import Drip
from sender.providers.outbox.sending import OutboxProvider
from sender.sequence import campaign_changes
from tests.conftest import FIXTURES, at, base_env

START = at("2026-03-02T18:00Z")
GAP = timedelta(hours=1)
EXAMPLES = max(10, settings.default.max_examples // 5)
PEOPLE = (("ana@example.com", "pregnant"), ("bea@example.com", "postpartum"),
          ("cai@example.com", None))
SEGMENTS = ("field:stage=pregnant", "not field:stage=pregnant", "tag:client")


class CountingOutbox(OutboxProvider):
    """The real outbox, counting each message it is handed by delivery id."""

    def __init__(self, directory):
        super().__init__(directory)
        self.handed = {}

    def send(self, messages):
        for message in messages:
            self.handed[message.delivery_id] = self.handed.get(message.delivery_id, 0) + 1
        return super().send(messages)


# --- the campaign being edited -----------------------------------------------------------------
def toml(steps, exit_segment):
    lines = ['window = "always"', "[campaign]", 'name = "Sequence"']
    if exit_segment:
        lines.append(f'exit = "{exit_segment}"')
    lines += ["[entry]", 'on = "confirm"']
    templates = ("course/one", "course/two")
    for number, step in enumerate(steps):
        lines += ["[[steps]]", f'id = "{step["id"]}"', f'template = "{templates[number % 2]}"',
                  f'subject = "Step {step["id"]}"', f'delay = "{step["hours"]}h"']
        if step["when"]:
            lines.append(f'when = "{step["when"]}"')
        if step["then"]:
            lines.append(f'then = "{step["then"]}"')
    return "\n".join(lines) + "\n"


OTHER = """window = "always"
[campaign]
name = "Other"
[entry]
on = "tag"
tags = ["never-given"]
[[steps]]
id = "o1"
template = "course/two"
subject = "Other one"
delay = "2h"
[[steps]]
id = "o2"
template = "course/one"
subject = "Other two"
delay = "1d"
"""

OPS = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 6), st.integers(0, 72)),
    st.tuples(st.just("remove"), st.integers(0, 6)),
    st.tuples(st.just("swap"), st.integers(0, 6), st.integers(0, 6)),
    st.tuples(st.just("delay"), st.integers(0, 6), st.integers(0, 72)),
    st.tuples(st.just("when"), st.integers(0, 6), st.sampled_from((None, *SEGMENTS))),
    st.tuples(st.just("exit"), st.sampled_from((None, "tag:client"))),
    st.tuples(st.just("then"), st.integers(0, 6), st.sampled_from((None, "other", "end"))),
    st.tuples(st.just("send"), st.integers(0, 60)),
    st.tuples(st.just("send"), st.integers(0, 60)),
    st.tuples(st.just("pause"), st.integers(0, 2)),
    st.tuples(st.just("resume"), st.integers(0, 2)),
    st.tuples(st.just("client"), st.integers(0, 2)),
)


def edit(steps, exit_segment, op, fresh):
    """The campaign after ``op`` (steps are dicts; ``fresh`` names an inserted step)."""
    steps = [dict(s) for s in steps]
    kind = op[0]
    if kind == "insert":
        steps.insert(op[1] % (len(steps) + 1), {"id": fresh, "hours": op[2], "when": None,
                                                "then": None})
    elif kind == "remove" and len(steps) > 1:
        steps.pop(op[1] % len(steps))
    elif kind == "swap":
        i, j = op[1] % len(steps), op[2] % len(steps)
        steps[i], steps[j] = steps[j], steps[i]
    elif kind == "delay":
        steps[op[1] % len(steps)]["hours"] = op[2]
    elif kind == "when":
        steps[op[1] % len(steps)]["when"] = op[2]
    elif kind == "then":
        steps[op[1] % len(steps)]["then"] = op[2]
    elif kind == "exit":
        exit_segment = op[1]
    return steps, exit_segment


# --- the checks ----------------------------------------------------------------------------------
def check_plan_is_applied(drip, now):
    """What `drip plan` lists is what the send's first step applies, and each change is in
    the ledger as listed."""
    planned = plan.pending_changes(drip, now=now)
    applied = campaign_changes(drip, now, apply=True)
    emails = {p.id: p.email for p in drip.store.get_subscribers(
        [c.subscriber_id for c in applied]).values()}
    assert planned == [{"email": emails[c.subscriber_id], "campaign": c.campaign, "step": c.step,
                        "action": c.action, "due_at": _iso(c.due_at),
                        "old_due_at": _iso(c.old_due_at), "reason": c.reason} for c in applied]
    for change in applied:
        [row] = [d for d in drip.store.deliveries(subscriber_id=change.subscriber_id,
                                                  campaign=change.campaign) if d.step == change.step]
        expected = {"add": ("scheduled", change.due_at), "skip": ("skipped", change.due_at),
                    "move": ("scheduled", change.due_at), "cancel": ("cancelled", row.due_at)}
        assert (row.state, row.due_at) == expected[change.action], change
        if change.action == "skip":
            assert row.reason == ledger.STEP_ADDED_LATE
    assert campaign_changes(drip, now, apply=False) == []


def _iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def check_sent(drip, outbox):
    """Nothing handed twice; no two campaign emails to one person within DRIP_MIN_GAP; a step
    recorded skipped (added late) never went; nothing scheduled in a campaign she left."""
    twice = {d: n for d, n in outbox.handed.items() if n > 1}
    assert not twice, twice
    rows = list(drip.store.deliveries())
    by_id = {r.id: r for r in rows}
    assert all(by_id[d].state == "sent" for d in outbox.handed if d in by_id)
    times = {}
    for row in rows:
        if row.state == "sent" and row.campaign != "confirmation":
            times.setdefault(row.subscriber_id, []).append(row.sent_at)
        if row.reason == ledger.STEP_ADDED_LATE:
            assert row.state == "skipped" and row.id not in outbox.handed
    for sent_at in times.values():
        sent_at.sort()
        gaps = [b - a for a, b in zip(sent_at, sent_at[1:], strict=False)]
        assert all(gap >= GAP for gap in gaps), sent_at
    left = {(r.subscriber_id, r.campaign) for r in rows if r.reason in ledger.LEFT_CAMPAIGN}
    assert not [r for r in rows if (r.subscriber_id, r.campaign) in left
                and r.state == "scheduled"]


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=st.lists(OPS, min_size=3, max_size=14))
# Always among them: a step added after she branched, after her sequence ended, after she
# reached the goal, and one inserted before a step already sent.
@example(ops=[("then", 1, "other"), ("send", 30), ("insert", 4, 72), ("send", 5), ("send", 60)])
@example(ops=[("then", 1, "end"), ("send", 30), ("insert", 4, 72), ("send", 50)])
@example(ops=[("exit", "tag:client"), ("send", 2), ("client", 0), ("insert", 3, 48), ("send", 3)])
@example(ops=[("send", 30), ("insert", 0, 1), ("swap", 0, 3), ("delay", 2, 0), ("send", 1)])
def test_random_edits_never_send_a_step_twice_or_in_a_burst(ops):
    root = Path(tempfile.mkdtemp(prefix="drip-edits-"))
    try:
        project = root / "project"
        shutil.copytree(FIXTURES / "project", project)
        for other in ("course", "welcome"):
            (project / "campaigns" / f"{other}.toml").unlink()
        (project / "campaigns" / "other.toml").write_text(OTHER, encoding="utf-8")
        path = project / "campaigns" / "seq.toml"
        steps = [{"id": f"s{n}", "hours": h, "when": None, "then": None}
                 for n, h in enumerate((1, 24, 24, 48))]
        exit_segment = None
        path.write_text(toml(steps, exit_segment), encoding="utf-8")
        env = base_env(project, DRIP_MIN_GAP="1h", DRIP_SEND_WINDOW="always")
        outbox = CountingOutbox(project / "outbox")
        opened = []

        def open_drip():
            drip = Drip(Settings.from_env(env), provider=outbox)
            opened.append(drip)
            return drip

        drip = open_drip()
        people = [subscribers.add_subscriber(drip, email, now=START, confirmed=True,
                                             fields={"stage": stage} if stage else {}).subscriber
                  for email, stage in PEOPLE]
        now = START
        for number, op in enumerate(ops):
            kind = op[0]
            if kind in ("insert", "remove", "swap", "delay", "when", "exit", "then"):
                steps, exit_segment = edit(steps, exit_segment, op, f"n{number}")
                path.write_text(toml(steps, exit_segment), encoding="utf-8")
                drip = open_drip()
            elif kind == "send":
                now += timedelta(hours=op[1])
                check_plan_is_applied(drip, now)
                send_due(drip, now=now)
            else:
                person = drip.store.get_subscriber(id=people[op[1]].id)
                now += timedelta(minutes=5)
                if kind == "pause":
                    subscribers.pause(drip, person, now=now)
                elif kind == "resume":
                    subscribers.resume(drip, person, now=now)
                else:
                    subscribers.add_subscriber(drip, person.email, now=now, tags=["client"],
                                               confirmed=True)
            check_sent(drip, outbox)
        # Then time runs on to the end of every sequence.
        for _ in range(4):
            now += timedelta(days=3)
            check_plan_is_applied(drip, now)
            send_due(drip, now=now)
            check_sent(drip, outbox)
    finally:
        for drip in opened:
            drip.close()
        shutil.rmtree(root, ignore_errors=True)
