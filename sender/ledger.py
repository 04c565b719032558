"""The delivery ledger: the only code that changes a delivery's state, and its vocabulary.

A delivery is one email to one subscriber (a campaign step). Its states::

    scheduled --claim--> sending --sent-----------> sent (sent_at in the future: held at
        ^                   |                          the provider, ``send_ahead.py``)
        |                   +--failed-------------> failed
        |                   +--skip---------------> skipped
        |                   +--cancel-------------> cancelled
        +-------------------+  retry_later, hold, defer_for_gap, release, send_again

A scheduled row may also be moved, cancelled (an unsubscribe, a bounce, a removed step) or
skipped (its subscriber left); a signup after an unsubscribe restores what that cancelled;
mail held at a provider is cancelled there for good or, by a pause, scheduled again.

Each operation below is one transition. It takes the store and adds no transaction of its
own (the caller's boundaries stand; a claim is one atomic statement in the store), writes
a reason code from the fixed vocabulary in the ``reason`` column beside the message for
people in ``last_error``, and is guarded: a claimed row (``sending``) changes only while it
still carries the caller's lease, any other row only while it is still in the state the
caller read. Each returns whether it applied (False: the row changed meanwhile, e.g.
another run took the claim over).

Code decides by ``reason``, never by the words of ``last_error`` (``tests/test_structure.py``
checks both rules).
"""

from __future__ import annotations

SCHEDULED, SENDING, SENT, FAILED, SKIPPED, CANCELLED = (
    "scheduled", "sending", "sent", "failed", "skipped", "cancelled")
STATES = (SCHEDULED, SENDING, SENT, FAILED, SKIPPED, CANCELLED)

# Reason codes (the ``reason`` column).
UNSUBSCRIBED = "unsubscribed"          # cancelled by an unsubscribe (our link or the provider's)
SUPPRESSED = "suppressed"              # cancelled by a bounce or complaint
CONFIRMED = "confirmed"                # the confirmation email, no longer needed
SUBSCRIBER_ENDED = "subscriber_ended"  # skipped: the subscriber left before it was due
SUBSCRIBER_CHANGED = "subscriber_changed"  # skipped at hand-off: no longer active
STEP_GONE = "step_gone"                # cancelled: its campaign or step was removed
NOT_HANDED = "not_handed"              # a crashed claim that never reached the provider
NOT_RECEIVED = "not_received"          # handed during a crash; the provider says it never got it
NEEDS_DECISION = "needs_decision"      # the provider cannot say whether it went out
UNCONFIRMED = "unconfirmed"            # handed, no answer yet: settled with the provider later
RETRYING = "retrying"                  # scheduled again after a temporary provider failure
TEMPLATE_ERROR = "template_error"      # waits: its email cannot be rendered (fix the file)
CAMPAIGN_ERROR = "campaign_error"      # waits: its campaign file does not load (fix the file)
MIN_GAP = "min_gap"                    # later: it would follow another email within DRIP_MIN_GAP
BAD_DATA = "bad_data"                  # failed: the subscriber's stored data cannot be sent
REJECTED = "rejected"                  # failed: the provider refused it
GAVE_UP = "gave_up"                    # failed: still failing after DRIP_MAX_ATTEMPTS
HELD_CANCELLED = "held_cancelled"      # scheduled again: held at the provider, cancelled by a pause
RESOLVED_SENT = "resolved_sent"        # the coach said it went out (`drip resolve --as sent`)
RESOLVED_RESEND = "resolved_resend"    # the coach said to send it again (`--as resend`)
STEP_ADDED_LATE = "step_added_late"    # skipped: a step added behind where the subscriber is
BROADCAST_CANCELLED = "broadcast_cancelled"  # cancelled: the coach cancelled its broadcast
BROADCAST_MISSED = "broadcast_missed"  # cancelled: she was paused when her broadcast fell due
CONDITION_NOT_MET = "condition_not_met"  # skipped: she did not match the step's `when`
GOAL_REACHED = "goal_reached"          # cancelled: she reached the campaign's goal (`exit`)
SUNSET_WAIT = "sunset_wait"            # later: she is asked "still want these?" (sunset.py)
SUNSET = "sunset"                      # cancelled: no answer to "still want these?" in time
BRANCHED = "branched"                  # she moved into another campaign (a step's `then`)
ENDED = "ended"                        # her sequence ended after a step (`then = "end"`)
BRANCH_NOT_TAKEN = "branch_not_taken"  # sent; she did not match its `then_when`: she stays
BRANCH_PENDING = "branch_pending"      # later: a step with `then` before it is not settled yet
REASONS = (UNSUBSCRIBED, SUPPRESSED, CONFIRMED, SUBSCRIBER_ENDED, SUBSCRIBER_CHANGED, STEP_GONE,
           NOT_HANDED, NOT_RECEIVED, NEEDS_DECISION, UNCONFIRMED, RETRYING, TEMPLATE_ERROR,
           CAMPAIGN_ERROR, MIN_GAP, BAD_DATA, REJECTED, GAVE_UP, HELD_CANCELLED, RESOLVED_SENT,
           RESOLVED_RESEND, STEP_ADDED_LATE, BROADCAST_CANCELLED, BROADCAST_MISSED,
           CONDITION_NOT_MET, GOAL_REACHED, SUNSET_WAIT, SUNSET, BRANCHED, ENDED, BRANCH_NOT_TAKEN,
           BRANCH_PENDING)
# Codes that say she left a campaign for good: no step of it is added for her afterwards.
LEFT_CAMPAIGN = (GOAL_REACHED, BRANCHED, ENDED)
# Scheduled deliveries waiting because of a problem (shown by `drip status`).
WAITING_ON_A_PROBLEM = (RETRYING, TEMPLATE_ERROR, CAMPAIGN_ERROR)


def needs_decision(store, *, campaign=None, step=None):
    """Deliveries waiting for the coach's decision (``drip resolve``), oldest first."""
    return [d for d in store.deliveries(campaign=campaign, states=(SENDING,))
            if d.reason == NEEDS_DECISION and (step is None or d.step == step)]


def _code(code):
    if code is not None and code not in REASONS:
        raise ValueError(f"unknown reason code {code!r}")
    return code


def _claimed(store, delivery, **changes):
    """Change a row being sent, only while it carries the caller's claim (its lease)."""
    return store.update_delivery(delivery.id, expect_state=SENDING, expect_lease=delivery.lease,
                                 **changes)


def _unchanged(store, delivery, expect, **changes):
    """Change a row not being sent, only while it is still in the state ``expect``."""
    return store.update_delivery(delivery.id, expect_state=expect, **changes)


# --- new rows ------------------------------------------------------------------------------
def schedule(store, rows, *, now):
    """New deliveries, each ``scheduled`` at its ``due_at`` (dicts with subscriber_id,
    campaign, step, due_at). A (subscriber, campaign, step) that has a row already keeps it.
    Returns how many were added."""
    return store.add_deliveries([_row(r, SCHEDULED) for r in rows], now=now)


def schedule_for(store, subscriber_ids, campaign, steps, *, now):
    """``schedule`` for many subscribers enrolled together whose steps fall due at the same
    times (``steps``: [(step id, due_at)]): one ``scheduled`` row per subscriber and step,
    written in bulk (an import with ``--enroll``). Returns how many were added."""
    return store.add_enrolled_deliveries(subscriber_ids, campaign, steps, now=now)


def record_skipped(store, rows, *, now):
    """New deliveries that are ``skipped`` from the start, each with its ``message`` (a step
    added to a campaign behind where the subscriber is). Returns how many were added."""
    return store.add_deliveries([{**_row(r, SKIPPED, r["message"]), "reason": STEP_ADDED_LATE}
                                 for r in rows], now=now)


def _row(row, state, message=None):
    return {"subscriber_id": row["subscriber_id"], "campaign": row["campaign"],
            "step": row["step"], "due_at": row["due_at"], "state": state, "last_error": message}


# --- claims --------------------------------------------------------------------------------
def claim(store, now, limit, *, pending_campaign=None, subscriber_id=None, due_by=None):
    """Atomically move up to ``limit`` due rows to ``sending`` under a fresh lease and
    return them (``Store.claim_due``: two callers never get the same row)."""
    return store.claim_due(now, limit, pending_campaign=pending_campaign,
                           subscriber_id=subscriber_id, due_by=due_by)


def take_over_stale(store, claimed_before, now):
    """Atomically give rows left in ``sending`` since before ``claimed_before`` (a crashed
    or stuck run) a fresh lease, and return them: their old claimer can write no more."""
    return store.take_over_stale(claimed_before, now)


def renew_claim(store, lease, at):
    """Keep a long batch's claim fresh: ``claimed_at = at`` on its rows still being sent."""
    return store.renew_lease(lease, at)


def handed(store, delivery, *, at, key):
    """The hand-off of a claimed row begins (``handed_at``), in the request named ``key``."""
    return _claimed(store, delivery, handed_at=at, handoff_key=key)


def release(store, delivery):
    """A claimed row goes back to the schedule untouched (the run stops before sending it,
    or its subscriber paused)."""
    return _claimed(store, delivery, state=SCHEDULED, handed_at=None, handoff_key=None)


# --- what came of a claim ------------------------------------------------------------------
def sent(store, delivery, *, at, attempts, provider, provider_message_id):
    """The provider took it. ``at`` later than now means the provider holds it until then
    (``drip send --ahead``); ``held_cancelled`` and ``held_rescheduled`` undo that."""
    return _claimed(store, delivery, state=SENT, sent_at=at, attempts=attempts,
                    provider=provider, provider_message_id=provider_message_id,
                    last_error=None, reason=None)


def failed(store, delivery, code, message, *, attempts=None, provider=None):
    """It will not be sent (``code``: REJECTED, GAVE_UP, BAD_DATA)."""
    more = {k: v for k, v in (("attempts", attempts), ("provider", provider)) if v is not None}
    return _claimed(store, delivery, state=FAILED, reason=_code(code), last_error=message, **more)


def retry_later(store, delivery, *, due, message, attempts, provider):
    """A temporary failure: tried again at ``due``, as a new request."""
    return _claimed(store, delivery, state=SCHEDULED, due_at=due, attempts=attempts,
                    provider=provider, handed_at=None, handoff_key=None, reason=RETRYING,
                    last_error=message)


def unconfirmed(store, delivery, message, *, provider):
    """No clear answer: it may have gone. It stays ``sending``, handed, and is settled with
    the provider once its claim is stale. Its attempts keep the count its request was made
    with, so a replay rebuilds the very same request."""
    return _claimed(store, delivery, attempts=delivery.attempts, provider=provider,
                    reason=UNCONFIRMED, last_error=message)


def hold(store, delivery, code, message, *, due):
    """Its email cannot be built (``code``: TEMPLATE_ERROR, CAMPAIGN_ERROR): it waits,
    scheduled at ``due``, until the file is fixed."""
    return _claimed(store, delivery, state=SCHEDULED, due_at=due, reason=_code(code),
                    last_error=message)


def defer_for_gap(store, delivery, due):
    """It would follow another email too soon (``schedule.min_gap_until``): scheduled at
    ``due`` instead."""
    return _claimed(store, delivery, state=SCHEDULED, due_at=due, reason=MIN_GAP,
                    last_error=None)


def wait_for_answer(store, delivery, *, due, message):
    """Her "still want these?" email is out (``sunset.py``): a claimed row waits, scheduled
    at ``due`` (SUNSET_WAIT), when it is looked at again."""
    return _claimed(store, delivery, state=SCHEDULED, due_at=due, reason=SUNSET_WAIT,
                    last_error=message)


def skip(store, delivery, code, message):
    """A claimed row that must not go (``code``: SUBSCRIBER_CHANGED, CONDITION_NOT_MET: the
    step's condition, named in ``message``, does not hold for her when it falls due)."""
    return _claimed(store, delivery, state=SKIPPED, reason=_code(code), last_error=message)


def cancel(store, delivery, code, message):
    """Never to be sent (``code``: STEP_GONE, GOAL_REACHED): a claimed row while its claim
    holds, a scheduled one while it is still scheduled."""
    if delivery.state == SENDING:
        return _claimed(store, delivery, state=CANCELLED, reason=_code(code), last_error=message)
    return _unchanged(store, delivery, SCHEDULED, state=CANCELLED, reason=_code(code),
                      last_error=message)


# --- after a crash, and the coach's decisions ---------------------------------------------
def send_again(store, delivery, code, message, *, due=None):
    """A claimed row provably not sent goes back to the schedule, as a new request
    (``code``: NOT_HANDED, NOT_RECEIVED, RESOLVED_RESEND); at ``due`` if given."""
    when = {} if due is None else {"due_at": due}
    return _claimed(store, delivery, state=SCHEDULED, handed_at=None, handoff_key=None,
                    reason=_code(code), last_error=message, **when)


def wait_for_decision(store, delivery, message):
    """Nobody can tell whether it went: it stays ``sending`` until ``drip resolve``."""
    return _claimed(store, delivery, reason=NEEDS_DECISION, last_error=message)


def marked_sent(store, delivery, *, at, message):
    """The coach says it went out (``drip resolve --as sent``)."""
    return _claimed(store, delivery, state=SENT, sent_at=at, reason=RESOLVED_SENT,
                    last_error=message)


# --- rows not being sent -------------------------------------------------------------------
def skip_ended(store, now):
    """Skip the due scheduled rows of subscribers who unsubscribed, bounced or complained
    (SUBSCRIBER_ENDED). Returns how many."""
    return store.skip_ended(now)


def cancel_pending_for(store, subscriber_id, code, message, *, campaign=None):
    """Cancel every scheduled row of a subscriber (of one campaign, if given), e.g.
    UNSUBSCRIBED, SUPPRESSED, CONFIRMED, GOAL_REACHED (her goal, named in ``message``, ends
    that campaign). Returns how many."""
    return store.cancel_pending(subscriber_id, message, campaign=campaign, code=_code(code))


def move(store, delivery, due):
    """A scheduled row is now due at ``due`` (a campaign edit, a pause, a return)."""
    return _unchanged(store, delivery, SCHEDULED, due_at=due)


def answered(store, delivery, *, due):
    """She answered "yes, keep them": a row waiting for her answer (SUNSET_WAIT) is due at
    ``due``, no longer waiting."""
    if delivery.reason != SUNSET_WAIT:
        return False
    return _unchanged(store, delivery, SCHEDULED, due_at=due, reason=None, last_error=None)


def schedule_again(store, delivery, *, due):
    """A settled row (sent, failed, skipped or cancelled) is scheduled afresh at ``due`` with
    its attempts counted from zero (a confirmation email asked for again)."""
    return _unchanged(store, delivery, delivery.state, state=SCHEDULED, due_at=due, attempts=0,
                      last_error=None, reason=None)


def restore_after_resubscribe(store, subscriber_id, *, campaign):
    """A subscriber who unsubscribed (or whose mail the sunset rule stopped) signs up again:
    the rows of ``campaign`` that her unsubscribe cancelled (UNSUBSCRIBED, whoever recorded
    it) or the sunset rule cancelled (SUNSET) are scheduled again. Returns how many."""
    rows = store.deliveries(subscriber_id=subscriber_id, campaign=campaign, states=(CANCELLED,))
    return sum(_unchanged(store, row, CANCELLED, state=SCHEDULED, last_error=None, reason=None,
                          provider_message_id=None)
               for row in list(rows) if row.reason in (UNSUBSCRIBED, SUNSET))


def wait_for_branch(store, delivery, *, due, message):
    """A claimed row placed after a step with ``then`` that is not settled yet waits,
    scheduled at ``due`` (BRANCH_PENDING): that branch may cancel it (``branches.py``)."""
    return _claimed(store, delivery, state=SCHEDULED, due_at=due, reason=BRANCH_PENDING,
                    last_error=message)


def branch_followed(store, delivery, code, message):
    """The branch of a sent row (a step with ``then``) has been followed (``code``: BRANCHED,
    ENDED, BRANCH_NOT_TAKEN, named in ``message``); the row stays ``sent``. Its reason is the
    mark that the branch was settled, so it is followed once (``branches.py``)."""
    return _unchanged(store, delivery, SENT, reason=_code(code), last_error=message)


def held_cancelled(store, delivery, code, message):
    """A row held at the provider (``sent``, ``sent_at`` in the future) was cancelled there
    for good (``code``: UNSUBSCRIBED, SUPPRESSED)."""
    return _unchanged(store, delivery, SENT, state=CANCELLED, sent_at=None, reason=_code(code),
                      last_error=message)


def held_rescheduled(store, delivery, message):
    """A row held at the provider was cancelled there by a pause: scheduled again
    (HELD_CANCELLED), so a resume moves it later. Its attempt stays counted, so the next
    hand-off is a new request (a new key), not a replay of the cancelled one."""
    return _unchanged(store, delivery, SENT, state=SCHEDULED, sent_at=None,
                      provider_message_id=None, reason=HELD_CANCELLED, last_error=message)


# --- many rows at once ---------------------------------------------------------------------
class Batch:
    """Transitions of many rows written together. Give it to any operation above in place of
    the store (``ledger.sent(batch, delivery, ...)``): the change is gathered, under exactly
    the guard the operation names, and the operation returns None. ``write()`` then writes
    everything gathered in one transaction, one statement per kind of change
    (``Store.update_deliveries``), each row still only under its own guard, and returns the
    ids of the rows whose guard failed (the row changed meanwhile, e.g. another run took the
    claim over): the caller reports those, never counting them as written."""

    def __init__(self, store):
        self.store, self.changes = store, []

    def update_delivery(self, delivery_id, *, expect_state=None, expect_lease=None, **changes):
        self.changes.append((delivery_id, expect_state, expect_lease, changes))

    def write(self):
        changes, self.changes = self.changes, []
        if not changes:
            return []
        done = self.store.update_deliveries(changes)
        return [delivery_id for delivery_id, *_ in changes if delivery_id not in done]
