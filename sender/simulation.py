"""`drip simulate`: the path of one made-up subscriber through the campaigns, worked out by the
engine's own rules without a store.

She signs up and confirms at one moment, with the fields given; later a field may be set
(``--set-later``) or a tag added (``--tag-later``). Each email then goes the way the send
path takes it: at its due time (``sequence.planned_times``, date anchors included), unless
the campaign's goal is reached (cancelled, ``exit``) or the step's condition is not met
(skipped, ``when``: ``step_rules.decide``), and never within DRIP_MIN_GAP of the last one
(moved later, as ``dispatch`` does). A field set later re-plans her sequences as
`drip subscribers add` does (``sequence.catch_up_shift`` and ``reconcile``), and a tag added
later may reach a goal or enter a campaign on that tag. It assumes each email goes the moment
it is due, and that she clicks (``clicks=False``: the sunset rule's path, ``sunset.py``).

A step with ``then`` is followed when it is sent, as ``branches.follow`` does: ``then_when``
read from her record at that moment; taken, she enters the target campaign then (its times
from that moment, in her zone and its window; once per campaign) and the rest of the campaign
she leaves is cancelled with the branch's words (``then = "end"``: only that). As in the send
path, a later step of that campaign that falls due with the branching step (one batch) waits
``branches.RECHECK`` while the branch is settled (``branches.waiting_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from . import branches, joining, ledger, step_rules
from .campaigns import END
from .identity import TRANSACTIONAL, stream_of
from .models import Delivery, Enrollment, Subscriber
from .schedule import fit_window, min_gap_until, zone
from .sequence import catch_up_shift, planned_times, reconcile

SENT, SKIPPED, CANCELLED = "sent", "skipped", "cancelled"
HORIZON = timedelta(days=3 * 365)     # a path stops here, whatever is left
MOVED = "moved later: too soon after her last email (DRIP_MIN_GAP)"


@dataclass(frozen=True, order=True)
class Later:
    """Something that happens to her after she signed up: a field set or a tag added."""

    at: object          # aware UTC datetime
    kind: str           # "field" or "tag"
    key: str            # the field's name, or the tag
    value: str = ""     # the field's value


@dataclass
class Step:
    """One email on her path: its time and what becomes of it."""

    campaign: str
    step: str
    due_at: object
    outcome: str            # SENT, SKIPPED or CANCELLED
    reason: str = ""        # SKIPPED, CANCELLED: the rule, in words; SENT: why it was moved
    branch: dict | None = None  # a step with ``then``, once sent: what was decided (``_branch``)


def path(drip, *, signup, timezone, fields=None, later=(), clicks=True):
    """Her path as ``Step`` rows in time order, and the person as she ends (tags, fields).
    ``signup`` is an aware time; ``later`` are ``Later`` events. A field given or set later
    is checked by the rules every way in shares (``joining``), at the time it is given:
    InvalidInput names it."""
    tz = zone(timezone)
    given = joining.check_details(fields=fields or {}, now=signup).fields
    person = Subscriber(id=0, uid="simulated", email="someone@example.com", name="",
                        timezone=timezone, status="active", fields=given, created_at=signup)
    run = _Run(drip, person, tz, clicks)
    run.sign_up(signup)
    events = sorted(later)
    while True:
        due = run.next_due()
        if events and (due is None or events[0].at <= due.due_at):
            run.apply(events.pop(0))
        elif due is not None and due.due_at <= signup + HORIZON:
            run.claim(due)
            run.process(due)
        else:
            break
    return sorted(run.steps(), key=lambda s: (s.due_at, s.campaign)), person


class _Run:
    def __init__(self, drip, person, tz, clicks):
        self.drip, self.person, self.tz, self.clicks = drip, person, tz, clicks
        self.rows = []              # Delivery objects, in the order written
        self.enrolled = {}          # campaign id -> Enrollment
        self.last_sent = None       # the last email that counts for the minimum gap
        self.batch, self.batch_at = {}, None   # rows claimed together: id -> due time then
        self.branch_of = {}         # row id -> what its step's branch decided

    # --- writing rows ---------------------------------------------------------------------
    def _row(self, campaign, step, due, state="scheduled", message=""):
        row = Delivery(id=len(self.rows) + 1, subscriber_id=0, campaign=campaign, step=step,
                       due_at=due, state=state, last_error=message or None)
        self.rows.append(row)
        return row

    def _enrol(self, campaign, at):
        if campaign.id in self.enrolled:
            return
        enrollment = Enrollment(0, campaign.id, at)
        self.enrolled[campaign.id] = enrollment
        for step, due in planned_times(campaign, enrollment, self.person, self.drip.settings):
            self._row(campaign.id, step.id, due)

    def sign_up(self, at):
        campaigns = self.drip.campaigns
        confirmation = campaigns.confirmation
        if confirmation is not None:
            window = confirmation.window_or(self.drip.settings.send_window)
            self._row(confirmation.id, confirmation.steps[0].id, fit_window(at, self.tz, window))
        for campaign in campaigns.entered_on("confirm", self.person):
            self._enrol(campaign, at)
        self._reach_goals()

    # --- the send path ---------------------------------------------------------------------
    def next_due(self):
        waiting = [r for r in self.rows if r.state == "scheduled"]
        return min(waiting, key=lambda r: (r.due_at, r.id)) if waiting else None

    def claim(self, row):
        """A run at ``row``'s due time claims what is due then in one batch; a row written
        since (a branch's target) is claimed by the next batch of that run."""
        if row.id not in self.batch or row.due_at != self.batch_at:
            self.batch_at = row.due_at
            self.batch = {r.id: r.due_at for r in self.rows
                          if r.state == "scheduled" and r.due_at <= row.due_at}

    def process(self, row):
        drip, at = self.drip, row.due_at
        campaign = drip.campaigns.get(row.campaign)
        step = campaign.step(row.step) if campaign is not None else None
        if step is None:
            row.state = CANCELLED
            return
        waits = self._waits_for_branch(campaign, row)
        if waits:
            row.due_at, row.reason, row.last_error = (at + branches.RECHECK, ledger.BRANCH_PENDING,
                                                      waits)
            return
        confirmation = campaign.entry_on == "signup"
        if not confirmation:
            decision = step_rules.decide(campaign, step, self.person, self._facts(campaign, step))
            if decision is not None and decision.action == step_rules.CANCEL:
                self._cancel(campaign.id, decision.code, decision.message)
                return
            if decision is not None and decision.action == step_rules.SKIP:
                row.state, row.reason, row.last_error = SKIPPED, decision.code, decision.message
                return
        if stream_of(campaign, step) != TRANSACTIONAL:
            window = campaign.window_or(drip.settings.send_window)
            later = min_gap_until(self.last_sent, drip.settings.min_gap, at, self.tz, window)
            if later is not None:
                row.due_at, row.reason = later, ledger.MIN_GAP
                return
        row.state, row.sent_at = SENT, at
        if not confirmation:
            self.last_sent = at
        if step.then:
            self._branch(row, campaign, step, at)

    def _waits_for_branch(self, campaign, row):
        """Why ``row`` waits (``branches.waiting_for``): a step of hers with ``then`` placed
        before it in its campaign, claimed in the same batch and due no later, is not
        settled yet when the batch is looked at."""
        if row.id not in self.batch:
            return ""
        positions = {s.id: i for i, s in enumerate(campaign.steps)}
        for other in self.rows:
            first = campaign.step(other.step) if other.campaign == campaign.id else None
            if (first is not None and first.then and other.id in self.batch
                    and other.step != row.step and self.batch[other.id] <= self.batch[row.id]
                    and positions[first.id] < positions.get(row.step, -1)):
                return (f"waits for {campaign.id}/{first.id}: its then = {first.then!r} may end "
                        "this campaign for her")
        return ""

    def _branch(self, row, campaign, step, at):
        """Follow the branch of ``step``, just sent to her at ``at`` (``branches._follow``)."""
        person = self.person
        facts = self._facts_of([step.then_when]) if step.then_when is not None else {}
        if step.then_when is not None and not step.then_when.matches(person, facts):
            code = ledger.BRANCH_NOT_TAKEN
            words = branches.message(campaign, step, code, person)
        else:
            code = ledger.ENDED if step.then == END else ledger.BRANCHED
            words = branches.message(campaign, step, code)
            target = self.drip.campaigns.get(step.then) if code == ledger.BRANCHED else None
            if code == ledger.BRANCHED and target is None:     # its file does not load: it waits
                code, words = "", f"waits: campaign {step.then!r} does not load"
            else:
                if target is not None:
                    self._enrol(target, at)
                self._cancel(campaign.id, code, words)
        self.branch_of[row.id] = {
            "taken": code, "then": step.then,
            "then_when": str(step.then_when) if step.then_when is not None else None,
            "message": words}

    def _facts(self, campaign, step):
        """What the rules' store terms would read: her progress and clicks so far (a click
        on every email sent, unless ``clicks`` is off)."""
        return self._facts_of(step_rules.segments_of([(campaign, step)]))

    def _facts_of(self, segments):
        facts = {}
        for term in (t for s in segments for t in s.terms):
            mine = [r for r in self.rows if r.campaign == term.key]
            if term.kind == "campaign" and term.key in self.enrolled:
                active = any(r.state == "scheduled" for r in mine)
                facts[term.key] = {0: "active" if active else "finished"}
            elif term.kind == "campaign":
                facts[term.key] = {}
            elif term.kind == "clicked":
                hit = self.clicks and any(r.state == SENT and (not term.value or r.step == term.value)
                                          for r in mine)
                facts[("clicked", term.key, term.value)] = {0} if hit else set()
        return facts

    def _cancel(self, campaign_id, code, message):
        for row in self.rows:
            if row.campaign == campaign_id and row.state == "scheduled":
                row.state, row.reason, row.last_error = CANCELLED, code, message

    def _reach_goals(self):
        for campaign_id in list(self.enrolled):
            campaign = self.drip.campaigns.get(campaign_id)
            goal = step_rules.goal_of(campaign) if campaign is not None else None
            if goal is not None and goal.matches(self.person, self._facts(campaign, None)):
                self._cancel(campaign_id, ledger.GOAL_REACHED, step_rules.goal_message(campaign))

    # --- what happens later ----------------------------------------------------------------
    def apply(self, event):
        person, at = self.person, event.at
        if event.kind == "tag":
            person.tags = joining.check_tags([*person.tags, event.key])
            self._reach_goals()
            for campaign in self.drip.campaigns.entered_on("tag", person):
                self._enrol(campaign, at)
            return
        value = joining.check_details(fields={event.key: event.value}, now=at).fields[event.key]
        person.fields = {**person.fields, event.key: value}
        self._reach_goals()
        for campaign_id, enrollment in self.enrolled.items():
            campaign = self.drip.campaigns.get(campaign_id)
            if campaign is None or event.key not in campaign.anchor_fields:
                continue
            rows = [r for r in self.rows if r.campaign == campaign_id]
            shift = catch_up_shift(campaign, enrollment, person, self.drip.settings, rows, at)
            if shift is not None:
                enrollment.shift_seconds = shift
            for change in reconcile(self.drip, person, enrollment, campaign, at, apply=False,
                                    rows=rows):
                self._change(change)

    def _change(self, change):
        row = next((r for r in self.rows if r.campaign == change.campaign
                    and r.step == change.step), None)
        if change.action == "move":
            row.due_at = change.due_at
        elif change.action == "cancel":
            row.state, row.last_error = CANCELLED, change.reason
        elif change.action in ("add", "skip"):
            self._row(change.campaign, change.step, change.due_at,
                      "scheduled" if change.action == "add" else SKIPPED, change.reason)

    def steps(self):
        return [Step(r.campaign, r.step, r.due_at, r.state,
                     r.last_error or (MOVED if r.reason == ledger.MIN_GAP else ""),
                     self.branch_of.get(r.id))
                for r in self.rows]

