"""After a crash: take over the deliveries a dead or stuck run left in ``sending`` and
settle each one with the provider, and the coach's decisions (``drip resolve``) on what
nobody can tell.

A stale row is first taken over like a claim (atomically, with a fresh lease), so two runs
never settle the same row and the old claimer can no longer write to it. A row never
marked handed never reached a provider: it goes back to the schedule. A handed row is
settled by replaying the identical request (a provider with idempotency keys: Resend),
or by asking the provider (``Provider.reconcile``); only a provable "not sent" is sent
again.
"""

from __future__ import annotations

from dataclasses import replace

from . import ledger
from .compose import message_id
from .errors import DripError
from .handoff import compose_for, record_all, write_counted
from .providers.base import (
    ACCEPTED,
    RECONCILED_NOT_SENT,
    RECONCILED_SENT,
    RETRY,
    SCHEDULED,
    UNKNOWN,
)

NEEDS_DECISION = ("interrupted during hand-off and the provider cannot tell whether it was "
                  "sent; decide with `drip resolve {id} --as sent|resend`")


def recover_stale(drip, now, report, stamp=None):
    """Settle deliveries a crashed or stuck run left in ``sending``. They are first taken
    over like a claim (a fresh lease, atomically), so two runs never settle the same row,
    and the old claimer can no longer write to them. Then:

    - never handed to the provider (no ``handed_at``): back to the schedule;
    - handed, with a provider that replays an identical request harmlessly (Resend's
      Idempotency-Key): the identical request again, and its answer recorded;
    - handed, otherwise: the provider is asked; only a clear "not sent" is sent again,
      and what nobody can tell waits for ``drip resolve``.
    """
    store, provider = drip.store, drip.provider
    stale = ledger.take_over_stale(store, now - drip.settings.claim_timeout,
                                   stamp() if stamp else now)
    if not stale:
        return
    handed, batch, counted = [], ledger.Batch(store), {}
    for delivery in stale:
        if delivery.handed_at is None:
            ledger.send_again(batch, delivery, ledger.NOT_HANDED,
                              "interrupted before hand-off; sending again")
            counted[delivery.id] = ("recovered", None)
        else:
            handed.append(delivery)
    write_counted(batch, counted, report)
    if not handed:
        return
    if provider.replay_window is not None:
        handed = _replay(drip, handed, now, report)
    # The provider is asked about each row outside any transaction; the verdicts are
    # written together (a row left unwritten by a crash here is taken over again later).
    batch, counted = ledger.Batch(store), {}
    people = store.get_subscribers([d.subscriber_id for d in handed])
    for delivery in handed:
        counted[delivery.id] = _reconcile(drip, batch, delivery, people.get(delivery.subscriber_id))
    write_counted(batch, counted, report)


def _reconcile(drip, batch, delivery, subscriber):
    """The provider's verdict on a handed row, gathered in ``batch``; returns the report's
    counter it adds to once written (see ``write_counted``)."""
    provider = drip.provider
    campaign = drip.campaigns.get(delivery.campaign)
    step = campaign.step(delivery.step) if campaign else None
    if step is None or subscriber is None:
        verdict, provider_id = provider.reconcile(delivery, None)
    else:
        mid = message_id(campaign, step, subscriber, drip.settings.sender)
        verdict, provider_id = provider.reconcile(delivery, mid)
    if verdict == RECONCILED_SENT:
        ledger.sent(batch, delivery, at=delivery.handed_at, attempts=delivery.attempts + 1,
                    provider=provider.name, provider_message_id=provider_id)
        return ("recovered", None)
    if verdict == RECONCILED_NOT_SENT:
        ledger.send_again(batch, delivery, ledger.NOT_RECEIVED,
                          "interrupted during hand-off and the provider never got it; "
                          "sending again")
        return ("recovered", None)
    ledger.wait_for_decision(batch, delivery, NEEDS_DECISION.format(id=delivery.id))
    return ("undecided", None)


def _replay(drip, handed, now, report):
    """Send each interrupted request again exactly as it was (same members, same bodies,
    same key), for a provider that answers a repeated key with its first answer instead
    of sending again. Returns the deliveries that could not be replayed this way."""
    store, provider = drip.store, drip.provider
    left, groups = [], {}
    for delivery in handed:
        groups.setdefault(delivery.handoff_key, []).append(delivery)
    people = store.get_subscribers([d.subscriber_id for d in handed])
    confirmation = drip.campaigns.confirmation
    pending_campaign = confirmation.id if confirmation else None
    for key, group in groups.items():
        messages = _rebuild(drip, group, people, pending_campaign, now)
        if messages is None or provider.handoff_keys(messages) != [key] * len(messages):
            left += group      # not the request that was sent: ask the provider instead
            continue
        by_id = {d.id: d for d in group}
        # A replay the provider cannot take now (busy, limited) says nothing of the first
        # request, which may have gone: it is no new request to schedule with a new key, but
        # stays handed, to be replayed with the same key at the next look.
        results = provider.send(messages)
        later = {r.delivery_id for r in results if r.outcome == RETRY}
        results = [replace(r, outcome=UNKNOWN) if r.delivery_id in later else r for r in results]
        record_all(drip, messages, results, by_id, now, report, people)
        report.recovered += sum(1 for r in results if r.outcome in (ACCEPTED, SCHEDULED))
        # The replay was the way to know; if even it cannot tell (the provider kept the key
        # with another body, or is still busy with it), the coach decides.
        batch, counted = ledger.Batch(store), {}
        for message, result in zip(messages, results, strict=True):
            if result.outcome == UNKNOWN and message.delivery_id not in later:
                delivery = by_id[message.delivery_id]       # the claim this run holds
                ledger.wait_for_decision(batch, delivery, NEEDS_DECISION.format(id=delivery.id))
                counted[delivery.id] = ("undecided", None)
                report.unconfirmed -= 1
        write_counted(batch, counted, report)
    return left


def _rebuild(drip, group, people, pending_campaign, now):
    """The messages of an interrupted request, or None when they can no longer be the same
    (too old for the provider's memory, a subscriber gone or no longer wanted, a step
    removed, a template that no longer renders)."""
    provider = drip.provider
    messages = []
    for delivery in sorted(group, key=lambda d: (d.due_at, d.id)):
        if now - delivery.handed_at > provider.replay_window:
            return None
        subscriber = people.get(delivery.subscriber_id)
        wanted = "pending" if delivery.campaign == pending_campaign else "active"
        campaign = drip.campaigns.get(delivery.campaign)
        step = campaign.step(delivery.step) if campaign else None
        if subscriber is None or subscriber.status != wanted or step is None:
            return None
        at = max(delivery.due_at, delivery.handed_at)
        try:
            messages.append(compose_for(drip, delivery, subscriber, campaign, step, at,
                                     delivery.handed_at))
        except DripError:
            return None
    return messages


def resolve(drip, delivery_id, decision, *, now):
    """The coach's decision on a delivery left in ``sending``: "sent" or "resend"."""
    store = drip.store
    delivery = store.get_delivery(delivery_id)
    if delivery is None:
        raise DripError(f"no delivery {delivery_id} (see `drip status`)")
    if delivery.state != ledger.SENDING or delivery.reason != ledger.NEEDS_DECISION:
        what = delivery.state if delivery.state != ledger.SENDING else "being sent right now"
        raise DripError(f"delivery {delivery_id} is {what}, not waiting for a decision")
    if decision == "sent":
        done = ledger.marked_sent(store, delivery,
                                  at=delivery.handed_at or delivery.claimed_at or now,
                                  message="marked sent by the coach")
    else:
        done = ledger.send_again(store, delivery, ledger.RESOLVED_RESEND,
                                 "resend chosen by the coach", due=now)
    if not done:
        raise DripError(f"delivery {delivery_id} changed while deciding; run `drip status` "
                        "and try again")


def resolve_many(drip, decision, *, now, campaign=None, step=None):
    """The same decision for every delivery waiting for one (of a campaign, or one step);
    returns their ids."""
    ids = [d.id for d in ledger.needs_decision(drip.store, campaign=campaign, step=step)]
    for delivery_id in ids:
        resolve(drip, delivery_id, decision, now=now)
    return ids
