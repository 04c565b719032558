"""One page of the subscriber list, for a person looking at it: search text, a segment, and
keyset paging that costs the same on page 1 and page 20,000.

A page is read with ``store.subscriber_page`` (id > the last id shown, in id order, never
an OFFSET). Text and the segment's status, tag and signup terms are filtered by the
database; the rest of a segment (fields, ``not``) by ``Segment.matches``. So that a search
that matches no one never reads a million rows in one request, a page looks at ids in a
window of at most ``WINDOW`` and at most ``BUDGET`` rows; when either runs out before the
page is full, the page says how far it looked and where the next one carries on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InvalidInput
from .message import normalize_email

PAGE = 50
WINDOW = 50_000     # ids looked at per page
BUDGET = 5_000      # rows read into Python per page
CHUNK = 500


@dataclass
class Page:
    people: list = field(default_factory=list)
    next_after: int | None = None    # where the next page starts; None: nothing after it
    looked_to: int | None = None     # set when the page stopped looking before it was full
    exact: object = None             # the subscriber whose address is the search text


def page(store, *, segment=None, text=None, after=0, size=PAGE, window=WINDOW, budget=BUDGET):
    """Up to ``size`` subscribers after id ``after`` in ``segment`` whose address or name
    contains ``text``."""
    text = (text or "").strip() or None
    filters = segment.prefilter() if segment else {}
    result = Page(exact=_exact(store, text) if after == 0 else None)
    until = min(after + window, 2**63 - 1)     # ids stay within a 64-bit column
    cursor, read = after, 0
    while True:
        limit = min(CHUNK, budget - read) if segment is not None else size + 1 - len(result.people)
        rows = store.subscriber_page(after_id=cursor, limit=limit, until_id=until, text=text,
                                     **filters)
        read += len(rows)
        for person in rows:
            if segment is None or segment.matches(person):
                result.people.append(person)
                if len(result.people) > size:
                    result.people.pop()
                    result.next_after = result.people[-1].id
                    return result
        if len(rows) < limit:
            break                      # the window is done
        cursor = rows[-1].id
        if read >= budget:
            result.looked_to = result.next_after = cursor
            return result
    if store.subscriber_page(after_id=until, limit=1):
        result.looked_to = result.next_after = until
    return result


def _exact(store, text):
    if not text or "@" not in text:
        return None
    try:
        return store.get_subscriber(email=normalize_email(text))
    except InvalidInput:
        return None
