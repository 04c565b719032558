"""The import's quick paths decide exactly as the full rules do.

An import checks every value of every row, so the checks have quick paths: a plain ASCII
address, printable text without '=?', a tag without spaces, and a whole row of plain text
read in one go (``csv_rows.RowReader``). Each must accept exactly what the full rule
accepts, give the same result, and leave every refusal (and its wording) to the full rule.
"""

from __future__ import annotations

import string

from hypothesis import example, given
from hypothesis import strategies as st

from sender import columns, joining
from sender.csv_rows import RowReader
from sender.errors import InvalidInput
from sender.message import check_header_value, normalize_email
from tests.lists.conftest import NOW


def outcome(check, value):
    try:
        return ("ok", check(value))
    except InvalidInput as exc:
        return ("refused", type(exc).__name__, str(exc))


def full_address(text):
    """The address rule without the quick path (``joining.check_address`` as it was)."""
    try:
        return normalize_email(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}: a valid email address looks like name@example.com") from None


def full_tags(tags):
    cleaned = []
    for tag in tags:
        check_header_value("tag", tag)
        tag = tag.strip()
        if not tag or any(c.isspace() for c in tag) or "," in tag:
            raise InvalidInput(f"tag {tag!r} must be one word without commas")
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


# Characters near the edges of the rules: dots, hyphens, '=?', spaces of every kind, line
# and paragraph separators, controls, non-ASCII letters, a surrogate and a noncharacter.
EDGES = ("aZ09._+-@=?!#$%&'*/^`{|}~,;\"() \t\r\n\x00\x1f\x7f\x85\xa0\u2028\u2029\u3000"
         "\u00e9\u00df\u0130\u212a\ud800\ufdd0\uffff")
text = st.text(alphabet=st.sampled_from(EDGES) | st.characters(), max_size=40)
label = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=70)
address = st.builds(lambda local, labels: f"{local}@{'.'.join(labels)}",
                    st.text(alphabet=string.ascii_letters + string.digits + "._+-=?!#",
                            min_size=0, max_size=70),
                    st.lists(label, min_size=1, max_size=4)) | text


@given(address)
def test_a_plain_address_is_accepted_as_the_full_rule_accepts_it(value):
    assert outcome(joining.check_address, value) == outcome(full_address, value)


@given(text)
def test_plain_text_passes_as_the_header_rule_lets_it(value):
    assert outcome(lambda v: joining.check_text("name", v), value) == outcome(
        lambda v: check_header_value("name", v), value)


@given(st.lists(text, max_size=4))
def test_tags_are_checked_as_before(tags):
    assert outcome(joining.check_tags, tags) == outcome(full_tags, tags)


def test_the_quick_paths_are_taken_for_plain_values():
    assert joining.check_address("Ana.B+news@Mail.Example.COM") == "ana.b+news@mail.example.com"
    assert joining._PLAIN_ADDRESS.fullmatch("ana@example.com")
    for refused in ("ana@example.com\n", "a..b@example.com", ".a@example.com", "a@-x.com",
                    "a@x.c0m", "a=?b@example.com", f"{'a' * 65}@example.com",
                    f"a@{'b' * 64}.com"):
        assert not joining._PLAIN_ADDRESS.fullmatch(refused), refused


HEADER = ["Email", "Name", "First name", "Last name", "Time zone", "Tags", "Signed up",
          "Confirm time", "Status", "Stage", "Notes"]
ZONES = ["", "Europe/Madrid", "America/New_York", "Mars/Olympus", " Europe/Madrid "]
DATES = ["", "2025-01-31", "2026-01-31T09:00Z", "2025-06-01 08:15:22 UTC", "2099-01-01",
         "31/01/2025", "not a date"]
STATUSES = ["", "active", "Subscribed", "cold", "unsubscribed", "pending", "bounced"]
cell = st.sampled_from(["", " ", "Ana", "Ana Lopez", "  spaced  out  ", "x" * 201, "y" * 1001,
                        "=?utf-8?q?x?=", "a\tb", "caf\u00e9", "a,b", '"A","B C"', "one two",
                        "ok@example.com", "OK@Example.com", "bad@@example.com"]) | text
row = st.tuples(
    st.sampled_from(["ana@example.com", "Bo@Example.org", "", " x@example.com ", "no-at",
                     "a@b.c", "\u00e9@example.com", "a@\u00e9xample.com"]) | text,
    cell, cell, cell, st.sampled_from(ZONES) | text, cell, st.sampled_from(DATES),
    st.sampled_from(DATES), st.sampled_from(STATUSES), cell, cell,
).flatmap(lambda values: st.integers(min_value=1, max_value=len(values) + 1).map(
    lambda width: list(values[:width])))


@given(row)
@example(["Ana@Example.com", "Ana Lopez", "", "", "Europe/Madrid", '"Core Rehab","Pelvic"',
          "", "2025-06-01 08:15:22 UTC", "Subscribed", "postpartum", "  notes  "])
@example(["bo@example.com", "", "Bo", "Smith", "", "one two two", "2025-01-31", "", "", "", ""])
@example(["cy@example.com", "Cy", "", "", " Mars/Olympus ", "", "", "", "", "", ""])
@example(["di@example.com", "Di", "", "", "", "a,b c", "2099-01-01", "", "", "x" * 1001, ""])
def test_a_row_read_quickly_is_the_row_read_in_full(values):
    quick = RowReader(HEADER, columns.map_columns(HEADER), NOW)
    full = RowReader(HEADER, columns.map_columns(HEADER), NOW)
    assert quick.quick
    assert outcome(quick, values) == outcome(full._full, values)
    if values[0] in ("Ana@Example.com", "bo@example.com"):      # the quick path itself
        assert quick._plain(values) == full._full(values)


def test_a_column_read_by_what_it_holds_takes_the_full_path():
    header = ["email", "state"]
    reader = RowReader(header, columns.map_columns(header), NOW)
    assert not reader.quick
    assert reader(["ana@example.com", "Oregon"])["fields"] == {"state": "Oregon"}
