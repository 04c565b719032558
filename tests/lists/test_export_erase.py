"""Export (CSV escaping, JSONL, filters, one person's data) and erasure on request."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

from sender import erasure, lists
from sender.errors import InvalidInput
from sender.segments import parse_segment
from sender.subscribers import add_subscriber, confirm
from tests.conftest import SECRET, base_env
from tests.lists.conftest import NOW, errors


def _add(drip, email, **kwargs):
    kwargs.setdefault("confirmed", True)
    return add_subscriber(drip, email, now=NOW, **kwargs).subscriber


def _csv(drip, segment=None):
    out = io.StringIO()
    lists.export_csv(drip, out, segment)
    return list(csv.reader(io.StringIO(out.getvalue())))


def test_csv_export_neutralises_formulas(drip):
    _add(drip, "ana@example.com", name="=HYPERLINK(\"http://x\")", tags=["a"],
         fields={"plus": "+1", "minus": "-2", "at": "@SUM(A1)", "plain": "ok", "inner": "a=b"})
    person = drip.store.get_subscriber(email="ana@example.com")
    # Control characters are refused on the way in; stored ones (from before) still export safely.
    drip.store.update_subscriber(person.id, now=NOW,
                                 fields={**person.fields, "tab": "\tx", "cr": "\rx"})
    header, row = _csv(drip)
    values = dict(zip(header, row, strict=True))
    assert values["name"] == "'=HYPERLINK(\"http://x\")"
    assert (values["plus"], values["minus"], values["at"], values["tab"], values["cr"]) == \
        ("'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx")
    assert (values["plain"], values["inner"], values["email"], values["tags"]) == \
        ("ok", "a=b", "ana@example.com", "a")
    assert header[:10] == list(lists.EXPORT_COLUMNS)
    # JSONL is for programs: values are exact.
    out = io.StringIO()
    assert lists.export_jsonl(drip, out) == 1
    record = json.loads(out.getvalue())
    assert record["name"] == "=HYPERLINK(\"http://x\")" and record["fields"]["plus"] == "+1"


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\t1", "'\t1"),
    ("\r1", "'\r1"), ("1=1", "1=1"), ("", ""), (None, ""), (" =1", " =1"),
])
def test_neutralise(value, expected):
    assert lists.neutralise(value) == expected


def test_export_filters_and_round_trip(drip, tmp_path, make_drip, csv_file):
    _add(drip, "a@example.com", name="A", tags=["postpartum"], fields={"stage": "postpartum"})
    _add(drip, "b@example.com", name="B", tags=["pregnant"], fields={"stage": "pregnant"})
    _add(drip, "c@example.com", name="C", tags=["postpartum"], fields={"name": "clash"})
    rows = _csv(drip, parse_segment("tag:postpartum and field:stage=postpartum"))
    assert [r[0] for r in rows[1:]] == ["a@example.com"]
    header, *rows = _csv(drip)
    assert header[10:] == ["field:name", "stage"]
    path = tmp_path / "export.csv"
    with open(path, "w", newline="", encoding="utf-8") as out:
        lists.export_csv(drip, out)
    other = make_drip(base_env(tmp_path.parent / "project", DRIP_DATABASE=tmp_path / "other.db"))
    report = lists.import_csv(other, path, consent="moved from the old install", now=NOW)
    assert (report.imported, report.rejected) == (3, 0)
    moved = {p.email: p for p in other.store.list_subscribers()}
    assert moved["c@example.com"].fields == {"name": "clash"}
    assert moved["a@example.com"].fields == {"stage": "postpartum"}
    assert moved["b@example.com"].tags == ["pregnant"]


def test_cli_export(run, drip, project):
    _add(drip, "a@example.com", name="A", tags=["x"])
    _add(drip, "b@example.com", name="-B")
    result = run("subscribers", "export", "--tag", "x")
    assert result.exit_code == 0
    assert [r[0] for r in csv.reader(io.StringIO(result.output))] == ["email", "a@example.com"]
    result = run("subscribers", "export", "--format", "jsonl", "--status", "active")
    assert [json.loads(line)["email"] for line in result.output.splitlines()] == \
        ["a@example.com", "b@example.com"]
    result = run("subscribers", "export", "-o", "out.csv")
    assert "2 subscribers written to out.csv" in result.output
    content = (project / "out.csv").read_bytes()
    assert b"b@example.com,'-B," in content and content.endswith(b"\r\n")
    bad = run("subscribers", "export", "--segment", "tag:x tag:y")
    assert bad.exit_code == 1 and "expected 'and' or 'or' before 'tag:y'" in bad.output


def test_export_one_persons_data(run, drip, project):
    person = _add(drip, "ana@example.com", name="Ana", fields={"stage": "postpartum"},
                  consent_source="blog form")
    drip.store.add_event(provider="outbox", type="opened", occurred_at=NOW, received_at=NOW,
                         raw={"email": "ana@example.com"}, subscriber_id=person.id)
    _add(drip, "bo@example.com")
    result = run("subscribers", "export", "--email", "Ana@Example.com")
    data = json.loads(result.output)
    assert data["subscriber"]["email"] == "ana@example.com"
    assert data["subscriber"]["fields"] == {"stage": "postpartum"}
    assert data["subscriber"]["consent"]["source"] == "blog form"
    assert sorted(e["campaign"] for e in data["enrollments"]) == ["course", "welcome"]
    assert sorted(d["step"] for d in data["deliveries"]) == ["hello", "one", "two"]
    assert [(e["type"], e["raw"]) for e in data["events"]] == [
        ("opened", {"email": "ana@example.com"})]
    assert "bo@example.com" not in result.output
    missing = run("subscribers", "export", "--email", "nobody@example.com")
    assert missing.exit_code == 1 and "no subscriber 'nobody@example.com'" in missing.output
    mixed = run("subscribers", "export", "--email", "ana@example.com", "--tag", "x")
    assert mixed.exit_code == 2


# --- erasure -------------------------------------------------------------------------------
def _table(drip, name):
    return [tuple(r) for r in drip.store.conn.execute(f"SELECT * FROM {name}")]


def test_erase_removes_data_history_and_outbox_copies(drip, project):
    from sender.dispatch import send_due

    person = _add(drip, "ana@example.com", name="Ana")
    other = _add(drip, "bo@example.com", name="Bo")
    report = send_due(drip, now=NOW.replace(hour=17))
    assert report.sent == 2
    outbox = project / "outbox"
    assert len(list(outbox.glob("*.eml"))) == 2
    drip.store.add_event(provider="outbox", type="opened", occurred_at=NOW, received_at=NOW,
                         raw={"to": "ana@example.com"},
                         delivery_id=next(drip.store.deliveries(subscriber_id=person.id)).id)
    result = erasure.erase(drip, "ANA@example.com", now=NOW)
    assert result.found and result.files_removed == 1
    assert result.deleted == {"deliveries": 3, "enrollments": 2, "events": 1}
    assert drip.store.get_subscriber(email="ana@example.com") is None
    assert {r[1] for r in _table(drip, "deliveries")} == {other.id}
    assert {r[0] for r in _table(drip, "enrollments")} == {other.id}
    assert _table(drip, "events") == []
    [eml] = outbox.glob("*.eml")
    assert b"bo@example.com" in eml.read_bytes()
    # Only the keyed hash is kept: not the address, and not its plain SHA-256.
    [(digest, key_id, erased_at)] = _table(drip, "erased")
    assert digest == erasure.erasure_hash(SECRET, "ana@example.com")
    assert digest != hashlib.sha256(b"ana@example.com").hexdigest()
    assert (key_id, erased_at) == (erasure.erasure_key_id(SECRET), "2026-03-02T10:00:00Z")
    dump = "\n".join(drip.store.conn.iterdump())
    assert "ana@example.com" not in dump and "Ana" not in dump


def test_an_erased_person_is_not_imported_or_added_again(drip, csv_file, do_import):
    _add(drip, "ana@example.com")
    erasure.erase(drip, "ana@example.com", now=NOW)
    report = do_import(csv_file("email\nbo@example.com\nAna@Example.com\n"))
    assert errors(report) == [(3, "ana@example.com asked to be erased; not imported")]
    assert [p.email for p in drip.store.list_subscribers()] == ["bo@example.com"]
    with pytest.raises(InvalidInput, match="ana@example.com asked to be erased"):
        add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
    with pytest.raises(InvalidInput, match="asked to be erased"):
        add_subscriber(drip, "ana@example.com", now=NOW)
    assert drip.store.get_subscriber(email="ana@example.com") is None
    # Signing up again themselves (the web form) is their own new consent.
    again = add_subscriber(drip, "ana@example.com", now=NOW, resubscribe=True).subscriber
    assert again.status == "pending"
    confirm(drip, again, now=NOW)
    assert drip.store.get_subscriber(email="ana@example.com").status == "active"


def test_erasing_someone_not_on_the_list_records_them(drip, csv_file, do_import):
    result = erasure.erase(drip, "never@example.com", now=NOW)
    assert not result.found and result.deleted == {"deliveries": 0, "enrollments": 0, "events": 0}
    assert len(_table(drip, "erased")) == 1
    assert do_import(csv_file("email\nnever@example.com\n")).rejected == 1
    assert drip.store.subscriber_counts() == {}


def test_a_new_secret_key_is_warned_about(drip, make_drip, project, csv_file):
    erasure.erase(drip, "ana@example.com", now=NOW)
    rotated = make_drip(base_env(project, DRIP_SECRET_KEY="another-secret-key-" + "x" * 40))
    report = lists.import_csv(rotated, csv_file("email\nbo@example.com\n"), consent="form",
                              now=NOW)
    assert report.warnings == ["1 erasure record(s) were made with a different DRIP_SECRET_KEY "
                               "and cannot be checked; those people could be imported again"]


def test_cli_delete(run, drip):
    _add(drip, "ana@example.com")
    result = run("subscribers", "delete", "ana@example.com", input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert drip.store.get_subscriber(email="ana@example.com") is not None
    result = run("subscribers", "delete", "ana@example.com", input="y\n")
    assert "Erased ana@example.com: 3 deliveries, 2 enrolments" in result.output
    assert drip.store.get_subscriber(email="ana@example.com") is None
    result = run("subscribers", "delete", "ana@example.com", "--yes", "--json")
    assert json.loads(result.output)["found"] is False
    added = run("subscribers", "add", "ana@example.com", "--confirmed")
    assert added.exit_code == 1 and "asked to be erased" in added.output
    assert drip.store.subscriber_counts() == {}
