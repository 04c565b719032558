"""The sunset rule: stop mailing someone who no longer reads the emails, after asking her.

With ``DRIP_SUNSET_AFTER = N`` (0, the default, turns it off), a subscriber who has not
clicked in N emails in a row sent to her gets, instead of her next email, one "still want
these?" email (``sunset_email.py``; a ledger row of its own, ``system.sunset``/``ask-K``
for her K-th question, so two senders or a crash never send it twice). While it is out her
other emails wait (SUNSET_WAIT), looked at again daily (``RECHECK``). Then:

- she presses "yes, keep them" (``keep``, from the page at ``/keep/TOKEN``), or clicks a
  link in any other email of hers: her mail resumes, and the count starts again from then;
- no answer within ``DRIP_SUNSET_WAIT``: her status becomes ``sunset`` and every email
  still to come is cancelled (SUNSET) (``subscribers.sunset``). A signup with fresh consent
  brings her back like a resubscribe.

Clicks only: opens never count (Apple Mail's privacy protection "opens" every email it
downloads), and a provider's tracked click on the question itself counts only through our
own page (a mail scanner may follow it). What counts: every email sent to her, broadcasts
too, but the confirmation, the welcome email and the question (``step_rules.sunset_counts``).

The verdicts are worked out for a whole batch with one query (``Store.engagement``) by
``batch_facts`` and returned by ``step_rules.decide``; the send path applies them through the
ledger (``apply`` while the batch is gathered, ``after_batch`` once it is written).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from . import ledger, step_rules
from . import subscribers as subscriber_ops
from .events import CLICKED
from .identity import TRANSACTIONAL, stream_of
from .models import ENDED_STATUSES, iso
from .schedule import fit_window
from .sequence import subscriber_zone
from .sunset_email import CAMPAIGN, SUBJECT, step_id

RECHECK = timedelta(days=1)     # how often an email waiting for her answer is looked at again
KEEP_SOURCE = "keep"            # the ``raw`` source of the click our page records
# What ``keep`` found.
KEPT, ALREADY, EARLIER, EXPIRED, NOT_ASKED = "kept", "already", "earlier", "expired", "not_asked"


def enabled(settings):
    return settings.sunset_after > 0


def _uncounted(drip):
    """(campaign ids, (campaign, step) pairs) whose emails never count: the confirmation
    campaign's, and the transactional steps of the others (the welcome email)."""
    campaigns = [c for c in drip.campaigns if c.entry_on == "signup"]
    steps = [(c.id, s.id) for c in drip.campaigns if c.entry_on != "signup" for s in c.steps
             if stream_of(c, s) == TRANSACTIONAL]
    return [c.id for c in campaigns], steps


def engagement(drip, subscriber_ids):
    """{subscriber id: what ``Store.engagement`` says of her}: one query per batch."""
    campaigns, steps = _uncounted(drip)
    return drip.store.engagement(subscriber_ids, question=CAMPAIGN, uncounted_campaigns=campaigns,
                                 uncounted_steps=steps)


def batch_facts(drip, deliveries, people, now):
    """{step_rules.SUNSET_FACT: {subscriber id: Decision or None}} for the people of
    ``deliveries`` whose email counts; {} when the rule is off or none counts."""
    if not enabled(drip.settings):
        return {}
    ids = set()
    for delivery in deliveries:
        campaign = drip.campaigns.get(delivery.campaign)
        step = campaign.step(delivery.step) if campaign else None
        if step is not None and delivery.subscriber_id in people \
                and step_rules.sunset_counts(campaign, step):
            ids.add(delivery.subscriber_id)
    if not ids:
        return {}
    found = engagement(drip, ids)
    return {step_rules.SUNSET_FACT: {sid: verdict(found[sid], people[sid], drip.settings, now)
                                     for sid in ids if sid in found}}


def open_question(found, subscriber):
    """Her latest question while it still stands: not one from before she signed up again."""
    ask = found["ask"]
    since = subscriber.consent.confirmed_at
    if ask is None or (since is not None and (ask.sent_at or ask.due_at) < since):
        return None
    return ask


def answered(found, ask):
    engaged = found["engaged_at"]
    return ask.sent_at is not None and engaged is not None and engaged >= ask.sent_at


def verdict(found, subscriber, settings, now):
    """What becomes of a counted email of hers due at ``now`` (``found``: her row of
    ``Store.engagement``): None, it goes; or the Decision (WAIT, ASK, STOP)."""
    ask = open_question(found, subscriber)
    if ask is not None and ask.state in (ledger.SCHEDULED, ledger.SENDING):
        return step_rules.Decision(step_rules.WAIT, ledger.SUNSET_WAIT,
                                   f"her question {ask.step} is about to go", due=now + RECHECK)
    if ask is not None and ask.state == ledger.SENT and not answered(found, ask):
        deadline = ask.sent_at + settings.sunset_wait
        if now < deadline:
            return step_rules.Decision(
                step_rules.WAIT, ledger.SUNSET_WAIT,
                f"asked {ask.step} at {iso(ask.sent_at)}; no answer yet, she stops at "
                f"{iso(deadline)}", due=min(deadline, now + RECHECK))
        return step_rules.Decision(
            step_rules.STOP, ledger.SUNSET,
            f"asked {ask.step} at {iso(ask.sent_at)}; no answer by {iso(deadline)}")
    if found["unclicked"] >= settings.sunset_after:
        ask_step = step_id(found["asked"] + 1)
        return step_rules.Decision(
            step_rules.ASK, ledger.SUNSET_WAIT,
            f"{found['unclicked']} emails in a row without a click (DRIP_SUNSET_AFTER = "
            f"{settings.sunset_after}): she is asked {ask_step} first", due=now + RECHECK,
            ask=ask_step)
    return None


# --- the send path -----------------------------------------------------------------------------
class Outcome:
    """What a batch's sunset verdicts leave to do once its rows are written: the questions to
    schedule, the people whose mail stops."""

    def __init__(self):
        self.asks, self.stops = {}, {}

    def __bool__(self):
        return bool(self.asks or self.stops)


def apply(batch, delivery, decision, outcome):
    """Record a sunset verdict on a claimed ``delivery`` in ``batch`` (a ``ledger.Batch``);
    returns the report's counter for it."""
    if decision.action == step_rules.STOP:
        ledger.cancel(batch, delivery, ledger.SUNSET, decision.message)
        outcome.stops[delivery.subscriber_id] = decision.message
        return "cancelled"
    ledger.wait_for_answer(batch, delivery, due=decision.due, message=decision.message)
    if decision.action == step_rules.ASK:
        outcome.asks[delivery.subscriber_id] = decision.ask
    return "deferred"


def after_batch(drip, outcome, now):
    """Schedule the questions (one row per person and question: a second sender's, or a
    rerun's, adds nothing) and stop the mail of those who did not answer. Returns how many
    emails were cancelled."""
    store = drip.store
    if outcome.asks:
        ledger.schedule(store, [{"subscriber_id": sid, "campaign": CAMPAIGN, "step": ask,
                                 "due_at": now} for sid, ask in outcome.asks.items()], now=now)
    cancelled = 0
    for sid, message in outcome.stops.items():
        person = store.get_subscriber(id=sid)
        if person is not None:
            cancelled += subscriber_ops.sunset(drip, person, now=now, reason=message)
    return cancelled


# --- her answer --------------------------------------------------------------------------------
def keep(drip, subscriber, *, now, made_at=None):
    """She pressed "yes, keep them" (``made_at``: when her link was made, None for any):
    recorded once as her click on the question, and her waiting emails are due again now (in
    their send windows). Returns KEPT, or why nothing changed: ALREADY (answered before),
    EARLIER (a link from an earlier question), EXPIRED (the wait is over, or her mail has
    stopped), NOT_ASKED."""
    store = drip.store
    with store.transaction():
        person = store.get_subscriber(id=subscriber.id)
        if person is None:
            return NOT_ASKED
        found = engagement(drip, [person.id]).get(person.id)
        ask = open_question(found, person) if found else None
        if ask is None or ask.state != ledger.SENT:
            return EXPIRED if person.status in ENDED_STATUSES else NOT_ASKED
        if made_at is not None and ask.created_at is not None \
                and made_at < ask.created_at - timedelta(seconds=1):
            return EARLIER
        if any(e["provider"] == "drip" for e in store.events(delivery_id=ask.id, type=CLICKED)):
            return ALREADY
        if person.status in ENDED_STATUSES or now >= ask.sent_at + drip.settings.sunset_wait:
            return EXPIRED
        store.add_event(provider="drip", type=CLICKED, occurred_at=now, received_at=now,
                        raw={"source": KEEP_SOURCE, "question": ask.step},
                        provider_event_id=f"keep-{ask.id}", delivery_id=ask.id,
                        subscriber_id=person.id)
        _wake(drip, person, now)
    return KEPT


def _wake(drip, person, now):
    """Her emails waiting for her answer are due now, each in its campaign's send window."""
    store, settings = drip.store, drip.settings
    tz = subscriber_zone(person, settings)
    for row in list(store.deliveries(subscriber_id=person.id, states=(ledger.SCHEDULED,))):
        if row.reason != ledger.SUNSET_WAIT:
            continue
        campaign = drip.campaigns.get(row.campaign)
        window = campaign.window_or(settings.send_window) if campaign else None
        ledger.answered(store, row, due=fit_window(now, tz, window) if window else now)



# --- what-if -----------------------------------------------------------------------------------
def never_clicks(drip, emails):
    """``emails`` (``plan.PlannedEmail``, in time order, for one person) as they go for
    someone who never clicks (`drip simulate --no-clicks`): after DRIP_SUNSET_AFTER counted
    emails the next is replaced by her question, at its time, and every counted email from
    there on is cancelled (she never answers). Unchanged while the rule is off."""
    settings = drip.settings
    if not enabled(settings):
        return list(emails)
    result, sent, asked = [], 0, False
    for email in emails:
        campaign = drip.campaigns.get(email.campaign)
        step = campaign.step(email.step) if campaign else None
        if step is None or not step_rules.sunset_counts(campaign, step):
            result.append(email)
        elif sent < settings.sunset_after:
            result.append(email)
            sent += 1
        else:
            if not asked:
                result.append(dataclasses.replace(email, campaign=CAMPAIGN, step=step_id(1),
                                                  subject=SUBJECT))
                asked = True
            result.append(dataclasses.replace(email, state="cancelled"))
    return result
