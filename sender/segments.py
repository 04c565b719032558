"""Segments: a tiny filter language for choosing subscribers.

A segment is one or more terms joined by ``and``; ``not`` in front of a term
inverts it::

    tag:postpartum                     has the tag
    field:stage=postpartum             the field has exactly this value
    field:stage                        the field is set (to anything non-empty)
    status:active                      the status is exactly this
    signup>=2026-01-01                 signed up on or after (also >, <, <=)
    signup<2026-03-01T12:00Z           a date is midnight UTC; a time needs its zone

    tag:postpartum and field:stage=postpartum and not tag:vip

Quote a value with spaces: ``field:city="New York"``. There is no ``or``:
give each alternative its own campaign or run the export twice.

Used by ``drip subscribers list|export --segment``, ``drip plan --segment`` and
the ``segment`` key of a campaign's ``[entry]`` table.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import InvalidInput
from .models import SUBSCRIBER_STATUSES

_SIGNUP = re.compile(r"signup(>=|<=|>|<)(.+)")
HELP = ('e.g. "tag:postpartum and field:stage=postpartum and status:active and '
        'signup>=2026-01-01" (terms: tag:NAME, field:KEY=VALUE, field:KEY, status:NAME, '
        'signup>=DATE, signup<DATE; join with "and", invert with "not")')


@dataclass(frozen=True)
class Term:
    kind: str        # "tag", "field", "status", "signup"
    key: str
    op: str          # "=" (tag, status, field value), "set" (field present), or a comparison
    value: object
    negate: bool = False

    def matches(self, subscriber):
        if self.kind == "tag":
            hit = self.value in subscriber.tags
        elif self.kind == "status":
            hit = subscriber.status == self.value
        elif self.kind == "field":
            current = subscriber.fields.get(self.key)
            if self.op == "set":
                hit = current not in (None, "")
            else:
                hit = current is not None and str(current) == self.value
        else:
            created = subscriber.created_at
            hit = created is not None and {
                ">=": created >= self.value, ">": created > self.value,
                "<": created < self.value, "<=": created <= self.value}[self.op]
        return hit != self.negate


@dataclass(frozen=True)
class Segment:
    text: str
    terms: tuple

    def __str__(self):
        return self.text

    def matches(self, subscriber):
        return all(term.matches(subscriber) for term in self.terms)

    def prefilter(self):
        """Store-side filters that every match satisfies (the rest is checked in Python)."""
        found = {}
        for term in self.terms:
            if term.negate:
                continue
            if term.kind in ("status", "tag") and term.kind not in found:
                found[term.kind] = term.value
            elif term.kind == "signup":
                if term.op in (">=", ">"):
                    found["created_from"] = max(term.value, found.get("created_from", term.value))
                else:
                    found["created_before"] = min(term.value,
                                                  found.get("created_before", term.value))
        return found


def parse_segment(text):
    """Parse segment text; InvalidInput says what is wrong and shows the syntax."""
    if text is None or not str(text).strip():
        raise InvalidInput(f"the segment is empty; {HELP}")
    if any(ord(c) < 32 or ord(c) == 127 for c in str(text)):
        raise InvalidInput(f"segment {text!r}: control characters are not allowed; {HELP}")
    try:
        words = shlex.split(str(text))
    except ValueError as exc:
        raise InvalidInput(f"segment {text!r}: {exc}; {HELP}") from None
    terms, expect_term, negate = [], True, False
    for word in words:
        lowered = word.lower()
        if not expect_term:
            if lowered != "and":
                raise InvalidInput(f"segment {text!r}: expected 'and' before {word!r}; {HELP}")
            expect_term = True
            continue
        if lowered == "not" and not negate:
            negate = True
            continue
        terms.append(_term(word, negate, text))
        expect_term, negate = False, False
    if expect_term:
        raise InvalidInput(f"segment {text!r} ends with {words[-1]!r}; {HELP}")
    return Segment(str(text).strip(), tuple(terms))


def _term(word, negate, text):
    kind, sep, rest = word.partition(":")
    if sep and kind == "tag" and rest:
        return Term("tag", "", "=", rest, negate)
    if sep and kind == "status" and rest:
        if rest not in SUBSCRIBER_STATUSES:
            raise InvalidInput(f"segment {text!r}: status {rest!r} is not one of "
                               f"{', '.join(SUBSCRIBER_STATUSES)}")
        return Term("status", "", "=", rest, negate)
    if sep and kind == "field" and rest:
        key, eq, value = rest.partition("=")
        if not key:
            raise InvalidInput(f"segment {text!r}: {word!r} needs a field name, "
                               "e.g. field:stage=postpartum")
        return Term("field", key, "=" if eq else "set", value, negate)
    match = _SIGNUP.fullmatch(word)
    if match:
        return Term("signup", "", match[1], _instant(match[2], text), negate)
    raise InvalidInput(f"segment {text!r}: {word!r} is not a term; {HELP}")


def _instant(value, text):
    try:
        if len(value) == 10:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment = moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):     # also a date at the very edge of the calendar
        moment = None
    if moment is None:
        raise InvalidInput(f"segment {text!r}: {value!r} is not a date (2026-01-31) or a time "
                           "with its zone (2026-01-31T09:00Z)")
    return moment


def combine(segment=None, *, status=None, tag=None):
    """A segment from --segment text plus the --status and --tag shortcuts, or None."""
    parts = [segment] if segment else []
    if status:
        parts.append(f"status:{status}")
    if tag:
        parts.append(f"tag:{shlex.quote(tag)}")
    return parse_segment(" and ".join(parts)) if parts else None


def select(store, segment=None, *, page=1000):
    """Every subscriber in the segment (everyone without one), in id order, read page by
    page so memory stays flat however long the list."""
    filters = segment.prefilter() if segment else {}
    after = 0
    while True:
        rows = store.subscriber_page(after_id=after, limit=page, **filters)
        for subscriber in rows:
            if segment is None or segment.matches(subscriber):
                yield subscriber
        if len(rows) < page:
            return
        after = rows[-1].id
