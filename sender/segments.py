"""Segments: a tiny filter language for choosing subscribers.

A segment is one or more terms joined by ``and``; ``not`` in front of a term
inverts it::

    tag:postpartum                     has the tag
    field:stage=postpartum             the field has exactly this value
    field:stage                        the field is set (to anything non-empty)
    status:active                      the status is exactly this
    signup>=2026-01-01                 signed up on or after (also >, <, <=)
    signup<2026-03-01T12:00Z           a date is midnight UTC; a time needs its zone
    campaign:glute-progression         enrolled in the campaign (campaign:ID=enrolled too)
    campaign:glute-progression=active  enrolled, with emails of it still to come
    campaign:glute-progression=finished  enrolled, every email of it settled
    clicked:glute-progression/booking  clicked a link in that email (clicks only, never opens)
    clicked:glute-progression          clicked a link in any email of the campaign

    tag:postpartum and field:stage=postpartum and not tag:vip

``or`` joins alternatives, and ``and`` binds first (there are no brackets)::

    not field:stage=pregnant or field:due_date       not pregnant, or pregnant with a due date

Quote a value with spaces: ``field:city="New York"``.

Used by ``drip subscribers list|export --segment``, ``drip plan --segment``, a
broadcast's ``segment`` and the ``segment`` key of a campaign's ``[entry]`` table. The
``campaign:`` terms read the store: ``select`` looks them up with one query per page of
people; a campaign's ``[entry]`` segment may not use them (``parse_segment(progress=False)``).
The ``clicked:`` terms read the store the same way (one query per term per page or batch);
opens never count, as Apple Mail's privacy protection "opens" every email it downloads.
A step's ``when`` and a campaign's ``exit`` use the language too (``step_rules.py``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import InvalidInput
from .models import SUBSCRIBER_STATUSES

_SIGNUP = re.compile(r"signup(>=|<=|>|<)(.+)")
PROGRESS = ("enrolled", "active", "finished")
HELP = ('e.g. "tag:postpartum and field:stage=postpartum and status:active and '
        'signup>=2026-01-01" (terms: tag:NAME, field:KEY=VALUE, field:KEY, status:NAME, '
        'signup>=DATE, signup<DATE, campaign:ID, campaign:ID=active|finished, '
        'clicked:CAMPAIGN/STEP, clicked:CAMPAIGN; join with "and", give alternatives with "or" '
        '("and" binds first), invert with "not")')


@dataclass(frozen=True)
class Term:
    kind: str        # "tag", "field", "status", "signup", "campaign", "clicked"
    key: str
    op: str          # "=" (tag, status, field value), "set" (field present), or a comparison
    value: object
    negate: bool = False

    def matches(self, subscriber, facts=None):
        if self.kind == "campaign":
            if facts is None or self.key not in facts:
                raise InvalidInput(f"campaign:{self.key} needs the enrolments from the store: "
                                   "use it with drip subscribers list/export or a broadcast")
            progress = facts[self.key].get(subscriber.id)
            hit = progress is not None and self.value in ("enrolled", progress)
        elif self.kind == "clicked":
            hit = _clicked(self, subscriber, facts)
        elif self.kind == "tag":
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
    terms: tuple             # every term, of every alternative
    groups: tuple = None     # the alternatives (joined by "or"), each a tuple of terms all
                             # of which must hold; None: one alternative, ``terms``

    def __post_init__(self):
        if self.groups is None:
            object.__setattr__(self, "groups", (tuple(self.terms),))

    def __str__(self):
        return self.text

    def matches(self, subscriber, facts=None):
        """Whether ``subscriber`` is in the segment; ``facts`` (from ``facts``) answers the
        ``campaign:`` and ``clicked:`` terms."""
        return any(all(term.matches(subscriber, facts) for term in group) for group in self.groups)

    def requiring(self, text, terms):
        """This segment with ``terms`` also required in every alternative (``text`` is how
        they read: "status:active")."""
        groups = tuple((*terms, *group) for group in self.groups)
        # The text is for people (there are no brackets to parse): "status:active and (a or b)".
        joined = self.text if len(self.groups) == 1 else f"({self.text})"
        return Segment(f"{text} and {joined}", tuple(t for g in groups for t in g), groups)

    @property
    def campaigns(self):
        """The campaign ids its ``campaign:`` terms name."""
        return sorted({term.key for term in self.terms if term.kind == "campaign"})

    def facts(self, store, subscribers):
        """What the ``campaign:`` terms need for ``subscribers`` (a page of them): one query
        per campaign named, {campaign: {subscriber id: "active" | "finished"}}; and the
        ``clicked:`` terms, one query each, {("clicked", campaign, step): {subscriber id}}."""
        ids = [s.id for s in subscribers]
        found = {campaign: store.campaign_progress(ids, campaign) if ids else {}
                 for campaign in self.campaigns}
        found.update(click_facts(store, ids, self.clicks))
        return found

    @property
    def clicks(self):
        """The (campaign, step) pairs its ``clicked:`` terms name (step "" for any step)."""
        return sorted({(term.key, term.value) for term in self.terms if term.kind == "clicked"})

    @property
    def reads_store(self):
        """Whether matching needs ``facts`` (it has ``campaign:`` or ``clicked:`` terms)."""
        return any(term.kind in ("campaign", "clicked") for term in self.terms)

    def prefilter(self):
        """Store-side filters that every match satisfies (the rest is checked in Python):
        with alternatives, only what all of them require, each bound as loose as the
        loosest alternative's."""
        found = [_prefilter(group) for group in self.groups]
        common = dict(found[0])
        for other in found[1:]:
            for key, value in list(common.items()):
                if key not in other:
                    del common[key]
                elif key == "created_from":
                    common[key] = min(value, other[key])
                elif key == "created_before":
                    common[key] = max(value, other[key])
                elif other[key] != value:
                    del common[key]
        return common


def _prefilter(terms):
    """The store-side filters one alternative's terms imply."""
    found = {}
    for term in terms:
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


def parse_segment(text, *, progress=True):
    """Parse segment text; InvalidInput says what is wrong and shows the syntax. Without
    ``progress`` the ``campaign:`` terms are refused (where no store is at hand)."""
    if text is None or not str(text).strip():
        raise InvalidInput(f"the segment is empty; {HELP}")
    if any(ord(c) < 32 or ord(c) == 127 for c in str(text)):
        raise InvalidInput(f"segment {text!r}: control characters are not allowed; {HELP}")
    try:
        words = shlex.split(str(text))
    except ValueError as exc:
        raise InvalidInput(f"segment {text!r}: {exc}; {HELP}") from None
    groups, terms, expect_term, negate = [], [], True, False
    for number, word in enumerate(words):
        lowered = word.lower()
        if lowered == "or" and not negate:
            if number == 0:
                raise InvalidInput(f"segment {text!r} starts with 'or'; {HELP}")
            if expect_term:
                raise InvalidInput(f"segment {text!r}: a term is missing before 'or' "
                                   f"('{words[number - 1]}' before 'or'); {HELP}")
            groups.append(tuple(terms))
            terms, expect_term = [], True
            continue
        if not expect_term:
            if lowered != "and":
                raise InvalidInput(f"segment {text!r}: expected 'and' or 'or' before {word!r}; {HELP}")
            expect_term = True
            continue
        if lowered == "not" and not negate:
            negate = True
            continue
        term = _term(word, negate, text)
        if term.kind == "clicked" and not progress:
            raise InvalidInput(f"segment {text!r}: {word!r}: clicks cannot be used here (only "
                               "tags, fields, status and signup dates)")
        if term.kind == "campaign" and not progress:
            raise InvalidInput(f"segment {text!r}: {word!r}: campaign progress cannot be used "
                               "here (only tags, fields, status and signup dates)")
        terms.append(term)
        expect_term, negate = False, False
    if expect_term:
        raise InvalidInput(f"segment {text!r} ends with {words[-1]!r}; {HELP}")
    groups.append(tuple(terms))
    return Segment(str(text).strip(), tuple(t for group in groups for t in group), tuple(groups))


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
    if sep and kind == "clicked":
        campaign, slash, step = rest.partition("/")
        if not campaign or (slash and not step) or "/" in step:
            raise InvalidInput(f"segment {text!r}: {word!r}: use clicked:CAMPAIGN/STEP (a click "
                               "in that email) or clicked:CAMPAIGN (in any of its emails)")
        return Term("clicked", campaign, "=", step, negate)
    if sep and kind == "campaign" and rest:
        campaign, eq, value = rest.partition("=")
        value = value if eq else "enrolled"
        if not campaign or value not in PROGRESS:
            raise InvalidInput(f"segment {text!r}: {word!r}: use campaign:ID, campaign:ID=active "
                               "(emails still to come) or campaign:ID=finished (every email "
                               "settled)")
        return Term("campaign", campaign, "=", value, negate)
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
    parts = []
    if status:
        parts.append(f"status:{status}")
    if tag:
        parts.append(f"tag:{shlex.quote(tag)}")
    extra = parse_segment(" and ".join(parts)) if parts else None
    if not segment:
        return extra
    parsed = parse_segment(segment)
    return parsed.requiring(extra.text, extra.terms) if extra else parsed


def select(store, segment=None, *, page=1000):
    """Every subscriber in the segment (everyone without one), in id order, read page by
    page so memory stays flat however long the list."""
    filters = segment.prefilter() if segment else {}
    after = 0
    while True:
        rows = store.subscriber_page(after_id=after, limit=page, **filters)
        facts = segment.facts(store, rows) if segment is not None and segment.reads_store else None
        for subscriber in rows:
            if segment is None or segment.matches(subscriber, facts):
                yield subscriber
        if len(rows) < page:
            return
        after = rows[-1].id


def click_facts(store, subscriber_ids, clicks):
    """{("clicked", campaign, step): {subscriber id}} for ``clicks`` ((campaign, step) pairs,
    step "" for any step): which of ``subscriber_ids`` have a recorded click there, one
    query per pair."""
    ids = list(subscriber_ids)
    return {("clicked", campaign, step): store.clicked_among(ids, campaign, step or None)
            if ids else set() for campaign, step in clicks}


def _clicked(term, subscriber, facts):
    key = ("clicked", term.key, term.value)
    if facts is None or key not in facts:
        where = f"{term.key}/{term.value}" if term.value else term.key
        raise InvalidInput(f"clicked:{where} needs the recorded clicks from the store: use it "
                           "with drip subscribers list/export, a broadcast, or a step's when")
    return subscriber.id in facts[key]
