"""Who gets a broadcast, and writing its deliveries into the ledger.

Only active subscribers get a broadcast (active means confirmed: double opt-in, or added or
imported as confirmed), and its segment decides which of them. People are read a page at a
time (``segments.select``; its ``campaign:`` terms take one query per page), and each page's
deliveries are written in one transaction, made by the database from the people's ids
(``ledger.schedule_for``: one statement per due time in the page, a single one for a moment),
so memory stays flat however long the list and no row is built in Python. The ledger keeps
one row per (subscriber, campaign, step): writing a broadcast's rows again adds only the
people who were not there, never a second email.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from . import ledger
from .errors import InvalidInput
from .schedule import zone
from .segments import Segment, Term, select

PAGE = 1000


@dataclass
class Reach:
    """How many people a broadcast reaches, and how many of its segment it leaves out, by
    status."""

    segment: str
    active: int = 0
    left_out: Counter = field(default_factory=Counter)

    def to_dict(self):
        return {"segment": self.segment, "reaches": self.active, "left_out": dict(self.left_out)}

    def text(self):
        shown = f"{self.active:,} active subscriber{'s' if self.active != 1 else ''}"
        where = f"in segment {self.segment}" if self.segment != "everyone" else "(everyone active)"
        out = ", ".join(f"{n:,} {status}" for status, n in sorted(self.left_out.items()))
        return f"{shown} {where}" + (f"; left out: {out}" if out else "")


def _active(segment):
    active = Term("status", "", "=", "active")
    if segment is None:
        return Segment("status:active", (active,))
    return segment.requiring("status:active", (active,))


def reach(store, broadcast):
    """Count who the broadcast reaches now (one pass over the segment, a page at a time)."""
    found = Reach(broadcast.segment.text if broadcast.segment else "everyone")
    for person in select(store, broadcast.segment, page=PAGE):
        if person.status == "active":
            found.active += 1
        else:
            found.left_out[person.status] += 1
    return found


def zone_of(subscriber, settings):
    """Her zone, or DRIP_TIMEZONE when she has none (or a stored one that is not a zone)."""
    try:
        return zone(subscriber.timezone or settings.timezone_name)
    except InvalidInput:
        return zone(settings.timezone_name)


def write_rows(drip, broadcast, when, day, *, now):
    """Write a ``scheduled`` delivery for every active subscriber in the segment, each due at
    ``when`` on ``day`` in her zone (a moment: the same instant for all). Returns (the
    audience, how many rows were new)."""
    store, settings = drip.store, drip.settings
    step = broadcast.steps[0].id
    audience = added = 0
    page = {}            # due time -> the ids of this page's people due then

    def flush():
        nonlocal added
        with store.transaction():
            for due, ids in page.items():
                added += ledger.schedule_for(store, ids, broadcast.id, [(step, due)], now=now)
        page.clear()

    for person in select(store, _active(broadcast.segment), page=PAGE):
        audience += 1
        due = when.due(day, zone_of(person, settings)) if when.local else when.at
        page.setdefault(due, []).append(person.id)
        if audience % PAGE == 0:
            flush()
    if page:
        flush()
    return audience, added
