"""One page of the subscriber list (sender/browse.py): search, segment, keyset paging, and a
bounded amount of reading per page."""

from __future__ import annotations

from sender.browse import page
from sender.models import Consent
from sender.segments import parse_segment
from tests.conftest import at

NOW = at("2026-03-02T18:00Z")


def fill(store, count, extra=None):
    rows = []
    for i in range(count):
        row = {"email": f"p{i:03}@example.com", "name": f"Person {i}", "status": "active",
               "consent": Consent(source="t", at=NOW), "tags": ["even"] if i % 2 == 0 else [],
               "fields": {"stage": "postpartum"} if i % 10 == 0 else {}}
        row.update((extra or {}).get(i, {}))
        rows.append(row)
    store.add_subscribers(rows, now=NOW)
    return [p.id for p in store.subscriber_page(limit=count)]


def emails(result):
    return [p.email for p in result.people]


def test_pages_follow_one_another_without_gaps_or_repeats(drip):
    fill(drip.store, 23)
    seen, after = [], 0
    while after is not None:
        result = page(drip.store, after=after, size=5)
        seen += emails(result)
        assert result.looked_to is None
        after = result.next_after
    assert seen == [f"p{i:03}@example.com" for i in range(23)]


def test_search_and_segment_filter_in_the_database_and_in_python(drip):
    fill(drip.store, 40, {7: {"name": "Ana Ruiz"}, 31: {"email": "ana@example.org"}})
    assert emails(page(drip.store, text="ANA")) == ["p007@example.com", "ana@example.org"]
    tagged = page(drip.store, segment=parse_segment("tag:even and field:stage=postpartum"))
    assert emails(tagged) == [f"p{i:03}@example.com" for i in (0, 10, 20, 30)]
    odd = page(drip.store, segment=parse_segment("not tag:even"), text="person 1", size=3)
    assert emails(odd) == ["p001@example.com", "p011@example.com", "p013@example.com"]
    exact = page(drip.store, text=" Ana@Example.org ")
    assert exact.exact.email == "ana@example.org"
    assert page(drip.store, text="not an address").exact is None


def test_a_search_that_finds_little_stops_looking_and_says_where_to_go_on(drip):
    ids = fill(drip.store, 60, {55: {"name": "Zoë"}})
    first = page(drip.store, text="zoë", window=20)
    assert first.people == [] and first.looked_to == first.next_after == ids[0] - 1 + 20
    walked, after = [], 0
    while after is not None:
        result = page(drip.store, text="zoë", after=after, window=20)
        walked += emails(result)
        after = result.next_after
    assert walked == ["p055@example.com"]
    # A segment checked in Python reads at most `budget` rows per page.
    result = page(drip.store, segment=parse_segment("field:stage=none"), budget=25)
    assert result.people == [] and result.looked_to == ids[24]
    assert page(drip.store, segment=parse_segment("field:stage=none"),
                after=ids[24], budget=100).next_after is None
