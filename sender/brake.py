"""The brake: a campaign whose spam complaints or hard bounces pass their limit is paused.

Gmail and Yahoo start refusing a sender's mail when more than 0.3% of it is reported as
spam; the brake stops a campaign well before that (DRIP_BRAKE_COMPLAINT_RATE, 0.1% by
default), and when too many of its emails bounce for good (DRIP_BRAKE_BOUNCE_RATE, 2%).

How it counts: of the campaign's emails sent in the last DRIP_BRAKE_WINDOW (7 days), the
share that drew a complaint, and the share that bounced for good, from the provider events
drip stores anyway (``events.py`` calls ``watch`` after recording a complaint or bounce).
Fewer than DRIP_BRAKE_MIN_EVENTS complaints (or bounces) never trip it, however few emails
went out, so one unhappy reader of a small list does not stop it.

What it does: the campaign's deliveries wait, scheduled, and nothing more of it is handed to
a provider (the store's claim skips a braked campaign); every other campaign goes on.
`drip status` and `drip status --check` say which and why. Only `drip campaigns resume`
lifts it, and from then on the rates are counted afresh (mail sent before the resume no
longer counts, so its late complaints cannot trip the brake again at once).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from .errors import InvalidInput
from .models import iso

log = logging.getLogger("drip.brake")


@dataclass(frozen=True)
class Limits:
    complaint_rate: float      # a fraction: 0.001 is 0.1%
    bounce_rate: float
    window: timedelta
    min_events: int

    def to_dict(self):
        return {"complaint_rate": self.complaint_rate, "bounce_rate": self.bounce_rate,
                "window_days": self.window / timedelta(days=1), "min_events": self.min_events}


@dataclass(frozen=True)
class Health:
    """A campaign's emails sent between ``since`` and ``until`` and what came of them."""

    campaign: str
    sent: int
    complained: int
    bounced: int
    since: datetime
    until: datetime

    @property
    def complaint_rate(self):
        return self.complained / self.sent if self.sent else 0.0

    @property
    def bounce_rate(self):
        return self.bounced / self.sent if self.sent else 0.0

    def to_dict(self):
        data = asdict(self)
        data.update(since=iso(self.since), until=iso(self.until),
                    complaint_rate=self.complaint_rate, bounce_rate=self.bounce_rate)
        return data


def limits(settings):
    return Limits(complaint_rate=settings.brake_complaint_rate,
                  bounce_rate=settings.brake_bounce_rate, window=settings.brake_window,
                  min_events=settings.brake_min_events)


def percent(fraction):
    """0.001 -> '0.1%': a limit as the coach set it."""
    return f"{fraction * 100:.4g}%"


def health(store, campaign, *, limits, now, resumed_at=None):
    since = now - limits.window
    if resumed_at is not None and resumed_at > since:
        since = resumed_at
    counts = store.campaign_health(campaign, since=since, until=now)
    return Health(campaign, counts["sent"], counts["complained"], counts["bounced"], since, now)


def tripped(health, limits):
    """Why the brake stops this campaign, in plain words, or None. A rate trips it when it
    reaches its limit and the events behind it number at least ``min_events``."""
    checks = (("complaints", "people marked it as spam", health.complained, limits.complaint_rate),
              ("hard bounces", "addresses bounced for good", health.bounced, limits.bounce_rate))
    for name, meaning, count, limit in checks:
        if count >= limits.min_events and count >= limit * health.sent - 1e-9:
            rate = count / health.sent
            return (f"{name} reached {rate * 100:.1f}% of the emails sent since "
                    f"{iso(health.since)} ({count} of {health.sent}: {meaning}); the limit is "
                    f"{percent(limit)}")
    return None


def watch(drip, campaigns, *, now):
    """Check ``campaigns`` (those a complaint or bounce just came in for) and brake each one
    whose rates trip it. Returns the campaigns braked now."""
    store = drip.store
    known = {b["campaign"]: b for b in store.campaign_brakes()}
    bounds = limits(drip.settings)
    braked = []
    for campaign in sorted(set(campaigns)):
        entry = known.get(campaign)
        if entry is not None and entry["resumed_at"] is None:
            continue                                   # braked already
        state = health(store, campaign, limits=bounds, now=now,
                       resumed_at=entry["resumed_at"] if entry else None)
        reason = tripped(state, bounds)
        if reason and store.brake_campaign(campaign, reason=reason, details=state.to_dict(),
                                           now=now):
            log.warning("campaign %s paused by the brake: %s", campaign, reason)
            braked.append(campaign)
    return braked


def active(store):
    """The brakes that hold now, as the store lists them."""
    return [b for b in store.campaign_brakes() if b["resumed_at"] is None]


def resume(drip, campaign, *, now):
    """Lift the brake on ``campaign``; returns how many of its emails were waiting. Raises
    InvalidInput, saying what to do, for a campaign that is unknown or not braked."""
    store = drip.store
    waiting = next((b["waiting"] for b in active(store) if b["campaign"] == campaign), 0)
    if store.resume_campaign(campaign, now=now):
        return waiting
    if drip.campaigns.get(campaign) is None and not any(
            b["campaign"] == campaign for b in store.campaign_brakes()):
        raise InvalidInput(f"there is no campaign {campaign!r}; `drip campaigns` lists them")
    raise InvalidInput(f"{campaign} is not paused by the brake; `drip status` lists the paused "
                       "campaigns")


def overview(drip, *, now):
    """Each campaign's rates in the window beside the limits: {"limits", "campaigns": [...]}
    (for `drip report`)."""
    store = drip.store
    bounds = limits(drip.settings)
    entries = {b["campaign"]: b for b in store.campaign_brakes()}
    names = [c.id for c in drip.campaigns] + sorted(set(entries) - {c.id for c in drip.campaigns})
    rows = []
    for name in names:
        entry = entries.get(name)
        paused = entry is not None and entry["resumed_at"] is None
        state = health(store, name, limits=bounds, now=now,
                       resumed_at=entry["resumed_at"] if entry else None)
        row = state.to_dict()
        row.update(paused=paused, reason=entry["reason"] if paused else None)
        rows.append(row)
    return {"limits": bounds.to_dict(), "campaigns": rows}


def overview_text(data):
    """One line per campaign: each rate, its count and its limit."""
    bounds = data["limits"]
    lines = [f"The brake (over the last {bounds['window_days']:g} days, at least "
             f"{bounds['min_events']} events; Gmail's own limit for complaints is 0.3%):"]
    for row in data["campaigns"]:
        line = (f"  {row['campaign']}: complaints {row['complaint_rate'] * 100:.2f}% "
                f"({row['complained']} of {row['sent']}; limit {percent(bounds['complaint_rate'])}), "
                f"hard bounces {row['bounce_rate'] * 100:.2f}% ({row['bounced']} of {row['sent']}; "
                f"limit {percent(bounds['bounce_rate'])})")
        if row["paused"]:
            line += f"; PAUSED: `drip campaigns resume {row['campaign']}`"
        lines.append(line)
    return "\n".join(lines)
