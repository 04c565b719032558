"""The import's bulk paths (issue 14): what they write is what the row-by-row rules write.

Addresses repeated across batches, and again within a later batch, are each reported against
the line that had the address first; the page cache and temporary storage the import tunes
SQLite with (``SQLiteStore.bulk_writes``) are put back afterwards, even when the import
fails; the import leaves Python's cycle collector as it found it; and the stored counts
stay exact.
"""

from __future__ import annotations

import gc
import secrets
import sqlite3
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sender import lists
from sender.columns import ImportFailed
from sender.csv_lines import Lines, open_lines
from sender.models import Consent
from tests.lists.conftest import NOW, errors
from tests.test_row_counts import check


def test_an_address_repeated_across_and_within_batches_names_its_first_line(drip, csv_file,
                                                                            do_import):
    first = [f"p{i}@example.com,P{i}\n" for i in range(lists.BATCH)]    # lines 2 .. BATCH + 1
    # The second batch has p3 (line 5) twice, then a new address twice.
    second = ["p3@example.com,again\n", "new@example.com,New\n", "p3@example.com,thrice\n",
              "new@example.com,twice\n"]
    path = csv_file("email,name\n" + "".join(first + second))
    report = do_import(path)
    after = lists.BATCH + 1
    assert errors(report) == [
        (after + 1, "p3@example.com is a duplicate of line 5"),
        (after + 3, "p3@example.com is a duplicate of line 5"),
        (after + 4, "new@example.com is a duplicate of line " + str(after + 2))]
    assert (report.imported, report.rejected) == (lists.BATCH + 1, 3)
    assert drip.store.get_subscriber(email="p3@example.com").name == "P3"
    assert drip.store.get_subscriber(email="new@example.com").name == "New"
    assert drip.store.subscriber_counts() == {"active": lists.BATCH + 1}


def pragmas(drip):
    conn = drip.store.conn
    return tuple(conn.execute(f"PRAGMA {name}").fetchone()[0]
                 for name in ("cache_size", "temp_store", "foreign_keys"))


def test_the_connection_and_the_collector_are_as_before_after_an_import(drip, csv_file,
                                                                        do_import):
    before = pragmas(drip)
    inside = []
    report = do_import(csv_file("email\nana@example.com\n"),
                       progress=lambda n: inside.append((pragmas(drip), gc.isenabled())))
    assert report.imported == 1
    (cache, temp, keys), collecting = inside[0]
    assert before[2] == 1                                         # checked as a rule ...
    assert cache != before[0] and temp == 2 and keys == 0 and not collecting  # ... not here
    assert pragmas(drip) == before and gc.isenabled()
    gc.disable()
    try:
        do_import(csv_file("email\nbo@example.com\n", name="two.csv"))
        assert not gc.isenabled()            # left off, as it was
    finally:
        gc.enable()


def test_settings_come_back_when_the_import_fails(drip, csv_file, do_import):
    before = pragmas(drip)
    with pytest.raises(ImportFailed, match="is empty"):
        do_import(csv_file(""))
    assert pragmas(drip) == before and gc.isenabled()


# --- counting in bulk (SQLite: the insert triggers are dropped for a bulk insert and made
# again, and the rows counted once, in the same transaction) ------------------------------
def triggers(store):
    return dict(store._x("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall())


def people(prefix, count, *, bad_at=None):
    consent = Consent(source="test", at=NOW)
    return [{"email": None if i == bad_at else f"{prefix}{i}@example.com", "status": "active",
             "consent": consent} for i in range(count)]


def test_bulk_inserts_count_each_new_row_once_and_keep_the_triggers(drip):
    store = drip.store
    before = triggers(store)
    assert {"subscribers_counted_insert", "deliveries_counted_insert"} <= set(before)
    assert store.add_subscribers(people("a", 1200), now=NOW) == 1200
    assert store.add_subscribers(people("a", 3) + people("b", 2), now=NOW) == 2   # 3 known
    ids = [p.id for p in store.subscriber_page(limit=5000)]
    steps = [("one", NOW), ("two", NOW + timedelta(days=2))]
    assert store.add_enrolled_deliveries(ids, "course", steps, now=NOW) == 2404
    assert store.add_enrolled_deliveries(ids[:10], "course", steps, now=NOW) == 0  # there
    assert check(store) == ({"active": 1202}, {"scheduled": 2404})
    assert triggers(store) == before
    # The triggers count what is written outside the bulk paths, as before.
    store.add_subscriber("c@example.com", name="C", timezone=None, tags=[], fields={},
                         status="pending", consent=Consent(source="test", at=NOW), now=NOW)
    assert check(store) == ({"active": 1202, "pending": 1}, {"scheduled": 2404})


def test_a_bulk_insert_refused_part_way_is_counted_as_far_as_it_went(drip):
    """Its second statement is refused (a NOT NULL column); the caller carries on in the same
    transaction and commits: the first statement's rows are there, and counted."""
    store = drip.store
    before = triggers(store)
    with store.transaction():
        with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
            store.add_subscribers(people("a", 700, bad_at=600), now=NOW)
        assert triggers(store) == before          # made again at once
    assert check(store) == ({"active": 500}, {})
    assert triggers(store) == before


def test_a_bulk_insert_rolled_back_takes_its_count_with_it(drip):
    store = drip.store
    store.add_subscribers(people("a", 3), now=NOW)
    with pytest.raises(sqlite3.IntegrityError):
        store.add_subscribers(people("b", 700, bad_at=600), now=NOW)
    assert check(store) == ({"active": 3}, {})
    assert store.count_subscribers("active") == 3


# --- reading a UTF-8 file a block at a time ------------------------------------------------
def read_all(path, monkeypatch, block):
    """Every line and every undecodable line noted, reading as an import does: the first line,
    then the rest by blocks of ``block`` bytes (None: line by line)."""
    with monkeypatch.context() as patch:
        if block is None:
            patch.setattr(Lines, "__iter__", lambda self: self)
        else:
            patch.setattr(Lines, "BLOCK", block)
        with open_lines(path, None, None) as text:
            first = next(text, None)
            lines = [first, *text] if first is not None else []
            return lines, dict(text.bad), text.bad_count


piece = st.sampled_from([b"a", b"\xc3\xa9", b"\xe2\x82\xac", b",", b'"', b"\r", b"\r\n", b"\n",
                         b"\xff", b"\xc3", b"\xef\xbb\xbf", b" ", b"\x85", b"z" * 50])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(piece, max_size=80), block=st.sampled_from([1, 2, 7, 64, 1 << 16]))
def test_reading_by_block_gives_the_lines_and_the_bad_lines_of_reading_by_line(
        tmp_path, monkeypatch, body, block):
    path = tmp_path / "list.csv"
    path.write_bytes(b"".join(body))
    by_line = read_all(path, monkeypatch, block=None)
    assert read_all(path, monkeypatch, block=block) == by_line


def test_an_undecodable_line_in_a_later_block_is_rejected_with_its_number(
        drip, csv_file, do_import, monkeypatch):
    monkeypatch.setattr(Lines, "BLOCK", 100)
    rows = [f"p{i}@example.com,P{i}\n".encode() for i in range(40)]
    rows[30] = b"p30@example.com,Jos\xe9\n"                 # latin-1, on line 32
    path = csv_file(b"email,name\n" + b"".join(rows) + b"last@example.com,Last")
    report = do_import(path)
    assert errors(report) == [(32, "not valid utf-8 (invalid continuation byte: byte 0xe9 at "
                                   "byte 20 of the line); not imported")]
    assert report.imported == 40 and drip.store.get_subscriber(email="last@example.com")
    assert drip.store.get_subscriber(email="p31@example.com").name == "P31"


def test_a_row_whose_random_uid_is_taken_goes_in_with_another(drip, monkeypatch):
    """The bulk insert passes over rows it cannot add (OR IGNORE); one passed over because
    its uid clashed with another's (a 96-bit random value) is added again with a new uid."""
    store = drip.store
    first = store.add_subscriber("a@example.com", name="A", timezone=None, tags=[], fields={},
                                 status="active", consent=Consent(source="test", at=NOW), now=NOW)
    taken = bytes.fromhex(first.uid)
    fresh, calls = secrets.token_bytes, []

    def clashing_once(n):                 # the batch's uids: the first one is taken
        calls.append(n)
        return taken + fresh(n - len(taken)) if len(calls) == 1 else fresh(n)

    monkeypatch.setattr(secrets, "token_bytes", clashing_once)
    assert store.add_subscribers(people("b", 3), now=NOW) == 3
    assert calls[0] == 36 and len(calls) >= 2          # a new uid was drawn for b0
    uids = {p.email: p.uid for p in store.list_subscribers()}
    assert len(set(uids.values())) == 4 and uids["a@example.com"] == first.uid
    assert check(store) == ({"active": 4}, {})
