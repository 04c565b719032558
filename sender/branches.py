"""Branches between campaigns: a step with ``then = "CAMPAIGN"`` moves her into that campaign
once its email is sent to her, and ``then = "end"`` ends her sequence there; with
``then_when = "SEGMENT"`` only if she matches it at that moment.

Following a branch is, for one sent row of such a step: enrol her in the target campaign
(``sequence.enroll``, at the moment of the send, in her own time zone and the target's send
window, as `drip enroll` does; an enrolment is once per subscriber and campaign), cancel
her pending emails of the campaign she leaves (BRANCHED or ENDED, with the step in the
message), and mark the sent row with what was decided (BRANCHED, ENDED or
BRANCH_NOT_TAKEN: ``ledger.branch_followed``). A row with that mark is never followed
again, so a branch is taken once.

When:

- the send path records a chunk that holds such a step in one transaction with the
  branches of the rows it records sent (``dispatch._send_batch``): never one without the
  other;
- a row can also become ``sent`` outside the send path: an interrupted hand-off that
  recovery settles as sent, or `drip resolve --as sent`. Before recovery, each run notes
  the ids of such rows of branching steps in the store (``SCAN_KEY``: those recovery will
  take, and those waiting for the coach; ``note_waiting``); after recovery it follows the
  noted rows that are sent by then and keeps noting those still being sent (``catch_up``).
  A crash anywhere leaves the note, so the next run finishes the work.

A later step of hers in the same campaign waits (BRANCH_PENDING, looked at again after
``RECHECK``) while a step with ``then`` before it is not settled, whether it is being sent
by this run or another (``waiting_for``): the branch may cancel it.

A step skipped by its own ``when`` does not branch: ``when`` and ``then`` together read
"those who get this email move on". Her stored record decides ``then_when`` when the
branch is followed (normally the moment the email is recorded sent).
"""

from __future__ import annotations

from datetime import timedelta

from . import ledger, step_rules
from .campaigns import END
from .models import ENDED_STATUSES
from .sequence import enroll

SCAN_KEY = "branches:to-check"     # in the store's meta: the ids of rows to follow once sent
RECHECK = timedelta(minutes=5)     # how soon a step waiting for a branch is looked at again
MARKS = (ledger.BRANCHED, ledger.ENDED, ledger.BRANCH_NOT_TAKEN)


def branching(drip):
    """{(campaign id, step id): (campaign, step)} of every loaded step with ``then``."""
    return {(c.id, s.id): (c, s) for c in drip.campaigns for s in c.steps if s.then}


def among(drip, deliveries):
    """The deliveries of steps with ``then``."""
    steps = branching(drip)
    return [d for d in deliveries if (d.campaign, d.step) in steps] if steps else []


def message(campaign, step, code, subscriber=None):
    """The stored words of a branch decision, naming the step and its keys."""
    where = f"{campaign.id}/{step.id}"
    rule = f"then = {step.then!r}" + (f", then_when = {str(step.then_when)!r}"
                                      if step.then_when is not None else "")
    if code == ledger.BRANCHED:
        return f"moved into {step.then} when {where} was sent ({rule})"
    if code == ledger.ENDED:
        return f"sequence ended when {where} was sent ({rule})"
    if subscriber is not None and subscriber.status in ENDED_STATUSES:
        return f"not taken: she was {subscriber.status} when {where} was sent ({rule})"
    return f"not taken: she did not match then_when when {where} was sent ({rule})"


def follow(drip, deliveries, now):
    """Follow the branch of each of ``deliveries`` (rows of steps with ``then``) that is sent
    and not yet followed, in one transaction (the caller's, when it has one: the send path
    records the rows in it). Returns how many pending emails were cancelled."""
    store = drip.store
    steps = branching(drip)
    with store.transaction():
        rows = [store.get_delivery(d.id) for d in deliveries]
        rows = [r for r in rows if r is not None and r.state == ledger.SENT
                and r.reason not in MARKS and (r.campaign, r.step) in steps]
        if not rows:
            return 0
        people = store.get_subscribers(list({r.subscriber_id for r in rows}))
        segments = []
        for row in rows:
            then_when = steps[(row.campaign, row.step)][1].then_when
            if then_when is not None and then_when not in segments:
                segments.append(then_when)
        facts = step_rules.batch_facts(store, segments, list(people.values())) if segments else {}
        cancelled = 0
        for row in rows:
            subscriber = people.get(row.subscriber_id)
            if subscriber is not None:
                campaign, step = steps[(row.campaign, row.step)]
                cancelled += _follow(drip, row, subscriber, campaign, step, facts, now)
    return cancelled


def _follow(drip, row, subscriber, campaign, step, facts, now):
    store = drip.store
    wanted = subscriber.status not in ENDED_STATUSES and (
        step.then_when is None or step.then_when.matches(subscriber, facts))
    if not wanted:
        ledger.branch_followed(store, row, ledger.BRANCH_NOT_TAKEN,
                               message(campaign, step, ledger.BRANCH_NOT_TAKEN, subscriber))
        return 0
    code = ledger.ENDED if step.then == END else ledger.BRANCHED
    if code == ledger.BRANCHED:
        target = drip.campaigns.get(step.then)
        if target is None:        # its file went away since this step was sent: look later
            _note(store, noted(store) | {row.id})
            return 0
        enroll(drip, subscriber, target, now)
    words = message(campaign, step, code)
    cancelled = ledger.cancel_pending_for(store, subscriber.id, code, words, campaign=campaign.id)
    ledger.branch_followed(store, row, code, words)
    return cancelled


def noted(store):
    """The ids of the rows noted for a catch-up (``SCAN_KEY``)."""
    value = store.get_meta(SCAN_KEY) or ""
    return {int(part) for part in value.split(",") if part.strip().isdigit()}


def _note(store, ids):
    value = ",".join(str(i) for i in sorted(ids))
    if (store.get_meta(SCAN_KEY) or "") != value:
        store.set_meta(SCAN_KEY, value)


def note_waiting(drip, now):
    """Before recovery: note (``SCAN_KEY``) the rows of branching steps that recovery may
    settle as sent (claimed before DRIP_CLAIM_TIMEOUT ago) and those waiting for the coach's
    decision (`drip resolve`), so their branches are followed even after a crash."""
    steps = branching(drip)
    if not steps:
        return
    store = drip.store
    rows = [*store.stale_sending(now - drip.settings.claim_timeout), *ledger.needs_decision(store)]
    ids = {r.id for r in rows if (r.campaign, r.step) in steps}
    if ids:
        with store.transaction():
            known = noted(store)
            if not ids <= known:
                _note(store, known | ids)


def catch_up(drip, now):
    """Follow the branches of the noted rows that are sent now; keep noting those still being
    sent. Returns how many pending emails were cancelled."""
    store = drip.store
    ids = noted(store)
    if not ids:
        return 0
    rows = [r for r in (store.get_delivery(i) for i in sorted(ids)) if r is not None]
    cancelled = follow(drip, rows, now)
    with store.transaction():
        current = [store.get_delivery(i) for i in sorted(noted(store))]
        _note(store, {r.id for r in current if r is not None and (
            r.state == ledger.SENDING or (r.state == ledger.SENT and r.reason not in MARKS
                                          and (r.campaign, r.step) in branching(drip)))})
    return cancelled


def waiting_for(drip, batch):
    """{delivery id: why} for the claimed rows of ``batch`` that must wait for a branch: a
    step of hers placed after a step with ``then`` that is not settled yet (scheduled, due
    no later, or being sent, in this batch too), since that branch may cancel it. They are
    looked at again after ``RECHECK``. One read per campaign with branches in the batch."""
    steps = branching(drip)
    if not steps:
        return {}
    wanted = {}
    for delivery in batch:
        if any(c == delivery.campaign for c, _ in steps):
            wanted.setdefault(delivery.campaign, []).append(delivery)
    waiting = {}
    for campaign_id, rows in wanted.items():
        positions = {s.id: i for i, s in enumerate(drip.campaigns.get(campaign_id).steps)}
        theirs = {}
        for row in drip.store.enrolment_deliveries(campaign_id, list({d.subscriber_id for d in rows})):
            if (campaign_id, row.step) in steps and row.state in (ledger.SCHEDULED, ledger.SENDING):
                theirs.setdefault(row.subscriber_id, []).append(row)
        for delivery in rows:
            for first in theirs.get(delivery.subscriber_id, ()):
                if (first.step != delivery.step and first.due_at <= delivery.due_at
                        and positions.get(first.step, -1) < positions.get(delivery.step, -1)):
                    waiting[delivery.id] = (f"waits for {campaign_id}/{first.step}: its then = "
                                            f"{steps[(campaign_id, first.step)][1].then!r} may "
                                            "end this campaign for her")
                    break
    return waiting
