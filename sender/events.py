"""Delivery events in one small vocabulary, and what each one does.

Every provider reports events in its own words; its webhook module
(``sender/providers/<name>/webhook.py``) maps them to ours. An event is recorded
against the delivery it is about (found through the
``delivery_id`` we put in each message's metadata, or the provider's message id),
with the raw payload kept. Hard bounces and complaints suppress the address for
good; a provider-side unsubscribe unsubscribes. Events carrying the provider's
own event id are applied once, however often the provider retries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from . import brake
from . import subscribers as subscriber_ops
from .errors import InvalidInput
from .message import normalize_email
from .models import ENDED_STATUSES

DELIVERED = "delivered"
OPENED = "opened"
CLICKED = "clicked"
BOUNCED = "bounced"
COMPLAINED = "complained"
UNSUBSCRIBED = "unsubscribed"
TYPES = (DELIVERED, OPENED, CLICKED, BOUNCED, COMPLAINED, UNSUBSCRIBED)

@dataclass
class Event:
    """One provider event in our words. ``raw`` is the provider's payload, kept as sent."""

    provider: str
    type: str
    occurred_at: datetime
    raw: dict = field(default_factory=dict)
    provider_event_id: str | None = None
    delivery_id: int | None = None
    provider_message_id: str | None = None
    email: str | None = None


@dataclass
class Applied:
    recorded: int = 0
    duplicates: int = 0
    unmatched: int = 0
    suppressed: int = 0
    unsubscribed: int = 0
    braked: list = field(default_factory=list)     # campaigns the brake paused just now

    def to_dict(self):
        return dict(self.__dict__)


def _as_int(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _match(store, event):
    """(delivery, subscriber) for an event: our delivery id first, then the provider's
    message id, then the address."""
    delivery = None
    delivery_id = _as_int(event.delivery_id)
    if delivery_id is not None:
        delivery = store.get_delivery(delivery_id)
    if delivery is None and event.provider_message_id:
        delivery = store.find_delivery(event.provider_message_id)
    email = None
    if event.email:
        try:
            email = normalize_email(event.email)
        except InvalidInput:
            email = None
    if delivery is not None:
        subscriber = store.get_subscriber(id=delivery.subscriber_id)
        if email and subscriber and subscriber.email != email:
            # The metadata names someone else: trust the address the provider reports.
            delivery, subscriber = None, store.get_subscriber(email=email)
        return delivery, subscriber
    return None, store.get_subscriber(email=email) if email else None


def last_sent(store, subscriber_id):
    """The subscriber's most recently sent delivery: where someone who leaves left."""
    sent = [d for d in store.deliveries(subscriber_id=subscriber_id, states=("sent",))
            if d.sent_at]
    return max(sent, key=lambda d: (d.sent_at, d.id)) if sent else None


def _before_latest_consent(event, subscriber):
    """Whether an unsubscribe event happened before the person's latest consent: she signed
    up again after it, and that choice stands."""
    return (event.type == UNSUBSCRIBED and event.occurred_at is not None
            and subscriber.consent.at is not None and event.occurred_at < subscriber.consent.at)


def apply_events(drip, events, *, now):
    """Act on ``events`` (from a webhook or a sync) and record them; then let the brake
    look at the campaigns that drew a new complaint or hard bounce (``brake.watch``).

    The effect comes first and the record after, each in its own transaction: a
    suppression may ask the provider to cancel emails it holds, which must not
    happen under the database's write lock. Effects are idempotent, so a crash in
    between, or the provider retrying, never loses or doubles one.
    """
    store = drip.store
    result = Applied()
    watched = set()          # campaigns with a new complaint or bounce: the brake looks at them
    for event in events:
        if event.type not in TYPES:
            raise ValueError(f"unknown event type {event.type!r}")
        delivery, subscriber = _match(store, event)
        seen = bool(event.provider_event_id) and store.event_seen(event.provider,
                                                                  event.provider_event_id)
        current = store.get_subscriber(id=subscriber.id) if subscriber else None
        if subscriber is None:
            result.unmatched += 1
        elif seen or _before_latest_consent(event, current):
            # A provider's retry of an event already acted on, or an old event about someone
            # who has signed up again since: recorded, never acted on twice.
            pass
        elif event.type in (BOUNCED, COMPLAINED, UNSUBSCRIBED):
            if delivery is None:
                delivery = last_sent(store, subscriber.id)
            if event.type == UNSUBSCRIBED and current.status not in ENDED_STATUSES:
                subscriber_ops.unsubscribe(drip, current, now=now,
                                           reason=f"unsubscribed at {event.provider}")
                result.unsubscribed += 1
            elif event.type in (BOUNCED, COMPLAINED) and current.status != event.type:
                subscriber_ops.suppress(drip, current, event.type, now=now,
                                        reason=f"{event.provider} reported {event.type}")
                result.suppressed += 1
        added = store.add_event(
            provider=event.provider, type=event.type, occurred_at=event.occurred_at or now,
            received_at=now, raw=event.raw, provider_event_id=event.provider_event_id,
            delivery_id=delivery.id if delivery else None,
            subscriber_id=subscriber.id if subscriber else None)
        if added:
            result.recorded += 1
            if event.type in (BOUNCED, COMPLAINED) and delivery is not None:
                watched.add(delivery.campaign)
            if event.type == CLICKED and current is not None and not seen:
                # A click may be a campaign's goal (exit = "clicked:..."): it ends at once.
                subscriber_ops.reach_goals(drip, current)
        else:
            result.duplicates += 1
    if watched:
        result.braked = brake.watch(drip, watched, now=now)
    return result


def record_unsubscribe(drip, subscriber, *, now, source="link"):
    """Our own one-click unsubscribe: end the mail at once, and record it for the report
    against the last email the person was sent."""
    store = drip.store
    cancelled = subscriber_ops.unsubscribe(drip, subscriber, now=now)
    with store.transaction():
        if not store.events(subscriber_id=subscriber.id, type=UNSUBSCRIBED):
            delivery = last_sent(store, subscriber.id)
            store.add_event(provider="drip", type=UNSUBSCRIBED, occurred_at=now, received_at=now,
                            raw={"source": source}, delivery_id=delivery.id if delivery else None,
                            subscriber_id=subscriber.id)
    return cancelled
