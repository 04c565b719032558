"""`drip subscribers import`: mapping, encodings, every bad-input case with its line
number, dry runs, re-runs and enrolment. Every test checks what was stored."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sender import lists
from sender.errors import InvalidInput
from tests.conftest import at
from tests.lists.conftest import NOW, errors, stored


def test_columns_by_header_with_bom_and_semicolons(drip, csv_file, do_import):
    path = csv_file("\ufeffE-mail;Name;Time Zone;Tags;Stage;Due Date;Signed up\r\n"
                    "Ana@Example.com;Ana  Lopez;Europe/Madrid;postpartum, strength;postpartum;"
                    "2026-01-05;2025-06-01\r\n"
                    "bo@example.com;Bo;;;;;\r\n")
    report = do_import(path)
    assert (report.rows, report.imported, report.existing, report.rejected) == (2, 2, 0, 0)
    assert report.columns == {"E-mail": "email", "Name": "name", "Time Zone": "timezone",
                              "Tags": "tags", "Stage": "field:stage", "Due Date": "field:due_date",
                              "Signed up": "signed_up"}
    ana = drip.store.get_subscriber(email="ana@example.com")
    assert (ana.name, ana.timezone, ana.tags, ana.fields, ana.status) == (
        "Ana Lopez", "Europe/Madrid", ["postpartum", "strength"],
        {"stage": "postpartum", "due_date": "2026-01-05"}, "active")
    assert ana.created_at == at("2025-06-01T00:00Z")
    assert (ana.consent.source, ana.consent.at) == ("signup form on the old site", NOW)
    bo = drip.store.get_subscriber(email="bo@example.com")
    assert (bo.name, bo.timezone, bo.tags, bo.fields, bo.created_at) == ("Bo", None, [], {}, NOW)
    # Not enrolled without --enroll: nothing is scheduled.
    assert list(drip.store.deliveries()) == [] and list(drip.store.enrollments()) == []


def test_comma_file_with_quotes_and_map(drip, csv_file, do_import):
    path = csv_file('Email Address,Full Name,Notes,Kid\n'
                    'ana@example.com,"Lopez, Ana",call her,Sam\n')
    report = do_import(path, mapping=lists.parse_map(["Email Address=email", "Notes=skip",
                                                      "Kid=field:child"]))
    assert report.imported == 1
    ana = drip.store.get_subscriber(email="ana@example.com")
    assert (ana.name, ana.fields) == ("Lopez, Ana", {"child": "Sam"})


def test_other_encoding(drip, csv_file, do_import):
    path = csv_file("email,name\nrene@example.com,Ren\u00e9e\n", encoding="cp1252")
    with pytest.raises(lists.ImportFailed, match=r"line 2: the file is not valid utf-8 .*"
                                                 r"--encoding cp1252"):
        do_import(path)
    assert drip.store.subscriber_counts() == {}
    assert do_import(path, encoding="cp1252").imported == 1
    assert drip.store.get_subscriber(email="rene@example.com").name == "Ren\u00e9e"


def test_utf16_with_bom(drip, csv_file, do_import):
    path = csv_file("email;name\nana@example.com;\u00c1na\n".encode("utf-16"))
    assert do_import(path, encoding="utf-16").imported == 1
    assert drip.store.get_subscriber(email="ana@example.com").name == "\u00c1na"


BAD_ROWS = [
    ("not-an-address,X,,,", "'not-an-address' is not an email address (it needs exactly one @)"),
    ("ana@example.com,Dup,,,", "ana@example.com is a duplicate of line 2"),
    (",No Email,,,", "the email column is empty"),
    ("tz@example.com,T,Mars/Olympus,,", "unknown time zone 'Mars/Olympus'"),
    ("date@example.com,D,,,yesterday", "signup date 'yesterday' is not a date"),
    ("future@example.com,F,,,2030-01-01", "signup date '2030-01-01' is in the future"),
    ("many@example.com,M,,,,extra", "6 values but the header has 5 columns"),
    ('crlf@example.com,"Line\rbreak",,,', "name contains a line break"),
    ("tag@example.com,G,,\"bad'tag,\",", None),
]


def test_every_bad_row_is_reported_with_its_line_and_the_rest_imports(drip, csv_file, do_import):
    lines = ["email,name,timezone,tags,signed_up", "ana@example.com,Ana,,,"]
    lines += [row for row, _ in BAD_ROWS[:-1]]
    lines.append("good@example.com,Good,,,")
    report = do_import(csv_file("\n".join(lines) + "\n"))
    found = errors(report)
    assert [line for line, _ in found] == list(range(3, 3 + len(BAD_ROWS) - 1))
    for (line, reason), (_, expected) in zip(found, BAD_ROWS, strict=False):
        assert expected in reason, (line, reason)
    assert (report.rows, report.imported, report.rejected) == (len(lines) - 1, 2, len(found))
    assert sorted(stored(drip)) == ["ana@example.com", "good@example.com"]
    assert drip.store.get_subscriber(email="ana@example.com").name == "Ana"


def test_field_problems(drip, csv_file, do_import):
    path = csv_file('email,notes,status\n'
                    'long@example.com,' + "x" * 1001 + ',\n'
                    'crlf@example.com,"two\nlines",\n'
                    'gone@example.com,,unsubscribed\n'
                    'maybe@example.com,,pending\n'
                    'ok@example.com,fine,active\n')
    report = do_import(path)
    assert errors(report) == [
        (2, "field 'notes' is longer than 1000 characters"),
        (3, "field 'notes' contains a line break, which could inject headers: 'two\\nlines'"),
        # The quoted value spans lines 3-4, so the next record starts on line 5.
        (5, "status is 'unsubscribed': only active subscribers are imported (an unsubscribed, "
            "bounced or complained person must not be mailed)"),
        (6, "status is 'pending': they never confirmed; not imported"),
    ]
    assert list(stored(drip)) == ["ok@example.com"]
    assert drip.store.get_subscriber(email="ok@example.com").fields == {"notes": "fine"}


def test_bad_tags_and_blank_lines(drip, csv_file, do_import):
    path = csv_file("email,tags\n\nana@example.com,\"a;b  c|a\"\n\n,\nbo@example.com,\"x,y\"\n")
    report = do_import(path)
    assert report.rejected == 0 and report.imported == 2 and report.rows == 2
    assert drip.store.get_subscriber(email="ana@example.com").tags == ["a", "b", "c"]
    assert drip.store.get_subscriber(email="bo@example.com").tags == ["x", "y"]


@pytest.mark.parametrize("content, message", [
    ("", "is empty: the first line must name the columns"),
    ("name,city\nAna,Madrid\n", "no email column in the header (name, city); name one with --map"),
    ("email,e-mail\na@example.com,b@example.com\n", "columns 1 and 2 ('e-mail') both map to email"),
])
def test_files_that_cannot_be_imported(drip, csv_file, do_import, content, message):
    with pytest.raises(lists.ImportFailed) as failure:
        do_import(csv_file(content))
    assert message in str(failure.value)
    assert drip.store.subscriber_counts() == {}


def test_map_errors(drip, csv_file, do_import):
    path = csv_file("email,name\na@example.com,A\n")
    with pytest.raises(lists.ImportFailed, match=r"--map names no column in the header: "
                                                 r"mail address \(the columns are: email, name\)"):
        do_import(path, mapping=lists.parse_map(["Mail Address=email"]))
    with pytest.raises(InvalidInput, match="must look like 'Column Header=target'"):
        lists.parse_map(["email"])
    with pytest.raises(lists.ImportFailed, match="unknown encoding 'klingon'"):
        do_import(path, encoding="klingon")
    with pytest.raises(InvalidInput, match="say how these people consented"):
        do_import(path, consent=" ")
    assert drip.store.subscriber_counts() == {}


def test_dry_run_writes_nothing(drip, csv_file, do_import):
    path = csv_file("email\na@example.com\nb@example.com\nbad\na@example.com\n")
    report = do_import(path, dry_run=True)
    assert (report.imported, report.rejected, report.dry_run) == (2, 2, True)
    assert errors(report)[1] == (5, "a@example.com is a duplicate of line 2")
    assert drip.store.subscriber_counts() == {}


def test_rerunning_the_same_import_changes_nothing(drip, csv_file, do_import):
    path = csv_file("email,name,tags,stage\na@example.com,A,x,one\nb@example.com,B,,two\n"
                    "bad,,,\n")
    first = do_import(path)
    before = stored(drip)
    again = do_import(path, now=NOW + timedelta(days=1))
    assert (first.imported, first.existing) == (2, 0)
    assert (again.imported, again.existing, again.rejected) == (0, 2, 1)
    assert stored(drip) == before


def test_existing_subscribers_are_left_alone(drip, csv_file, do_import):
    from sender.subscribers import add_subscriber, unsubscribe

    person = add_subscriber(drip, "a@example.com", now=NOW, name="Kept", confirmed=True).subscriber
    unsubscribe(drip, person, now=NOW)
    report = do_import(csv_file("email,name\na@example.com,Changed\n"), enroll_in=["course"])
    kept = drip.store.get_subscriber(email="a@example.com")
    assert (report.existing, report.enrolled, kept.name, kept.status) == (1, 0, "Kept",
                                                                         "unsubscribed")


def test_enroll_only_when_asked_and_only_once(drip, csv_file, do_import):
    path = csv_file("email\na@example.com\nb@example.com\n")
    assert do_import(path).enrolled == 0
    assert list(drip.store.enrollments()) == []
    report = do_import(path, enroll_in=["course"])
    assert (report.imported, report.existing, report.enrolled) == (0, 2, 2)
    rows = sorted((d.campaign, d.step) for d in drip.store.deliveries())
    assert rows == [("course", "one"), ("course", "one"), ("course", "two"), ("course", "two")]
    assert do_import(path, enroll_in=["course"]).enrolled == 0
    assert len(list(drip.store.deliveries())) == 4
    with pytest.raises(InvalidInput, match="--enroll nope: no such campaign"):
        do_import(path, enroll_in=["nope"])
    with pytest.raises(InvalidInput, match="that is the confirmation campaign"):
        do_import(path, enroll_in=["confirmation"])


def test_many_rows_stream_in_batches(drip, csv_file, do_import):
    rows = "".join(f"p{i}@example.com,P{i}\n" for i in range(lists.BATCH * 2 + 7))
    path = csv_file("email,name\n" + rows + "p5@example.com,again\n")
    seen = []
    report = do_import(path, progress=seen.append)
    assert report.imported == lists.BATCH * 2 + 7
    assert errors(report) == [(lists.BATCH * 2 + 9, "p5@example.com is a duplicate of line 7")]
    assert sum(seen) == path.stat().st_size
    assert drip.store.subscriber_counts() == {"active": lists.BATCH * 2 + 7}


def test_cli_import(run, drip, project):
    (project / "list.csv").write_text("email;name\nana@example.com;Ana\nbad;B\n", encoding="utf-8")
    result = run("subscribers", "import", "list.csv", "--consent", "paper form", "--dry-run")
    assert result.exit_code == 1
    assert "list.csv: line 3: 'bad' is not an email address" in result.output
    assert "2 rows: 1 would import, 0 already on the list, 1 rejected" in result.output
    assert drip.store.subscriber_counts() == {}
    result = run("subscribers", "import", "list.csv", "--consent", "paper form")
    assert "1 imported" in result.output
    assert drip.store.get_subscriber(email="ana@example.com").consent.source == "paper form"
    missing = run("subscribers", "import", "list.csv")
    assert missing.exit_code == 2 and "Missing option '--consent'" in missing.output
    failed = run("subscribers", "import", "list.csv", "--consent", "x", "--map", "Nope=email")
    assert failed.exit_code == 1 and "--map names no column in the header: nope" in failed.output
