"""`drip events sync`: pull suppression lists from the provider's API and apply them.

For coaches who cannot host the webhook endpoint. Bounces, complaints and
unsubscribes the provider holds become the same events a webhook would bring
(recorded once per address and kind, so running it again changes nothing), and
suppress or unsubscribe the subscribers we have. Addresses we do not know are
counted and left alone. What to ask each provider is in its folder
(``sender/providers/<name>/suppressions.py``), through its own configured client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .errors import ConfigError, InvalidInput
from .events import Event, apply_events
from .message import normalize_email
from .providers import get_provider, registry
from .providers.webhook import parse_time

SYNCABLE = registry.with_part("suppressions")


@dataclass
class SyncResult:
    provider: str
    found: dict = field(default_factory=dict)      # kind -> addresses listed
    unknown: int = 0
    recorded: int = 0
    suppressed: int = 0
    unsubscribed: int = 0

    def to_dict(self):
        return dict(self.__dict__)


def sync(drip, provider=None, *, now, stream=None):
    """Pull the suppression lists of ``provider`` (default: DRIP_PROVIDER) and apply them.
    ``stream`` names a message stream where the provider keeps one list per stream."""
    provider = provider or drip.settings.provider
    if provider not in SYNCABLE:
        raise ConfigError(f"`drip events sync` works with {', '.join(SYNCABLE)}; "
                          f"{provider!r} keeps no suppression list to pull")
    api = get_provider(drip.settings, provider)
    try:
        events, result = _events(drip.store, provider,
                                 registry.part(provider, "suppressions").rows(api, stream=stream),
                                 now=now)
    finally:
        api.close()
    applied = apply_events(drip, events, now=now)
    result.recorded = applied.recorded
    result.suppressed = applied.suppressed
    result.unsubscribed = applied.unsubscribed
    return result


def _events(store, provider, rows, *, now):
    """The events for the listed addresses we know, and the counts so far."""
    result = SyncResult(provider)
    events = []
    for kind, address, created, item in rows:
        result.found[kind] = result.found.get(kind, 0) + 1
        try:
            email = normalize_email(address or "")
        except InvalidInput:
            result.unknown += 1
            continue
        if store.get_subscriber(email=email) is None:
            result.unknown += 1
            continue
        try:
            when = parse_time(created, now)
        except ValueError:
            when = now
        events.append(Event(provider=provider, type=kind, occurred_at=when, raw=_storable(item),
                            provider_event_id=f"sync:{kind}:{email}", email=email))
    return events, result


def _storable(item):
    """The provider's item as JSON any store keeps: a number JSON cannot hold (1e400 and
    NaN parse as floats no store takes as JSON) is kept as its text, 'Infinity' or 'NaN'."""
    return json.loads(json.dumps(item), parse_constant=str)
