"""`drip subscribers import`: mapping, encodings, every bad-input case with its line
number, dry runs, re-runs and enrolment. Every test checks what was stored."""

from __future__ import annotations

import codecs
import json
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
    path = csv_file("email,name\nrene@example.com,Ren\u00e9e\nbo@example.com,Bo\n", encoding="cp1252")
    report = do_import(path)
    assert errors(report) == [(2, "not valid utf-8 (invalid continuation byte: byte 0xe9 at "
                                  "byte 21 of the line); not imported")]
    assert "--encoding" in report.warnings[0]
    assert list(stored(drip)) == ["bo@example.com"]
    again = do_import(path, encoding="cp1252")
    assert (again.imported, again.existing, again.rejected) == (1, 1, 0)
    assert drip.store.get_subscriber(email="rene@example.com").name == "Ren\u00e9e"


def test_every_undecodable_line_is_reported_and_the_rest_imports(drip, csv_file, do_import):
    path = csv_file(b"email,name\n"
                    b"ana@example.com,Ana\n"
                    b"rene@example.com,Ren\xe9e\n"             # 3: Latin-1, not UTF-8
                    b"bo@example.com,Bo\n"
                    b"zoe@example.com,Zo\xc3\n"                # 5: a sequence cut short
                    b'multi@example.com,"two\nlines \xff"\n'   # 6-7: one row, bad byte on 7
                    b"cy@example.com,\xc3\xa7y\n"              # 8: valid UTF-8
                    b"\xfe\xfe@example.com,X\n"                # 9
                    b"dee@example.com,Dee\n")
    report = do_import(path)
    found = errors(report)
    assert [line for line, _ in found] == [3, 5, 7, 9]
    assert found[1] == (5, "not valid utf-8 (invalid continuation byte: byte 0xc3 at byte 19 of "
                           "the line); not imported")
    assert found[3] == (9, "not valid utf-8 (invalid start byte: byte 0xfe at byte 1 of the "
                           "line); not imported")
    assert (report.rows, report.imported, report.rejected) == (8, 4, 4)
    assert sorted(stored(drip)) == ["ana@example.com", "bo@example.com", "cy@example.com",
                                    "dee@example.com"]
    assert drip.store.get_subscriber(email="cy@example.com").name == "\u00e7y"
    assert report.warnings == ["4 lines are not valid utf-8 (each is listed with its line "
                               "number); if the file was saved in another encoding, run the "
                               "import again with --encoding, e.g. --encoding cp1252: people "
                               "already imported are left as they are"]


def test_latin1_file_without_and_with_its_encoding(drip, csv_file, do_import):
    names = ["Ana", "Ren\u00e9e", "Bo", "Jos\u00e9", "Zo\u00eb", "Cy"]
    path = csv_file("email,name\n" + "".join(f"p{i}@example.com,{n}\n" for i, n in enumerate(names)),
                    encoding="latin-1")
    first = do_import(path)
    assert [line for line, _ in errors(first)] == [3, 5, 6]
    assert all("not valid utf-8" in reason for _, reason in errors(first))
    assert sorted(stored(drip)) == ["p0@example.com", "p2@example.com", "p5@example.com"]
    again = do_import(path, encoding="latin-1")
    assert (again.imported, again.existing, again.rejected, again.warnings) == (3, 3, 0, [])
    assert {p.email: p.name for p in drip.store.list_subscribers()} == {
        f"p{i}@example.com": n for i, n in enumerate(names)}


def test_bytes_the_given_encoding_does_not_define(drip, csv_file, do_import):
    # 0x81 and 0x8d have no character in cp1252.
    path = csv_file(b"email,name\na@example.com,\x81\nb@example.com,B\xe9\nc@example.com,\x8d\n")
    report = do_import(path, encoding="cp1252")
    assert errors(report) == [
        (2, "not valid cp1252 (character maps to <undefined>: byte 0x81 at byte 15 of the "
            "line); not imported"),
        (4, "not valid cp1252 (character maps to <undefined>: byte 0x8d at byte 15 of the "
            "line); not imported")]
    assert {p.email: p.name for p in drip.store.list_subscribers()} == {"b@example.com": "B\u00e9"}


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_wide_encodings_report_bad_lines_too(drip, csv_file, do_import, codec):
    order = "utf-32-le" if codec == "utf-32" else ("utf-16-le" if codec == "utf-16" else codec)
    lone = "\ud800".encode(order, "surrogatepass")   # half of a surrogate pair: not decodable
    bom = {"utf-16": codecs.BOM_UTF16_LE, "utf-32": codecs.BOM_UTF32_LE}.get(codec, b"")
    path = csv_file(bom + "email;name\nana@example.com;\u00c1na\r\n".encode(order)
                    + "bad@example.com;B".encode(order) + lone + "\n".encode(order)
                    + "cy@example.com;\u010a\u0a0a\u0d0a\n".encode(order)  # 0x0a bytes in letters
                    + "bo@example.com;Bo\n".encode(order))
    report = do_import(path, encoding=codec)
    assert [line for line, _ in errors(report)] == [3]
    assert errors(report)[0][1].startswith(f"not valid {codec} (")
    assert {p.email: p.name for p in drip.store.list_subscribers()} == {
        "ana@example.com": "\u00c1na", "cy@example.com": "\u010a\u0a0a\u0d0a", "bo@example.com": "Bo"}


def test_header_in_another_encoding_stops_before_anything_is_imported(drip, csv_file, do_import):
    path = csv_file("e-mail,pr\u00e9nom\na@example.com,A\n", encoding="latin-1")
    with pytest.raises(lists.ImportFailed, match=r"line 1 \(the header\) is not valid utf-8 .*"
                                                 r"--encoding cp1252"):
        do_import(path)
    assert drip.store.subscriber_counts() == {}


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
    path = csv_file("email,name,tags,stage\na@example.com,A,x,pregnant\nb@example.com,B,,postpartum\n"
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


def test_cli_reports_every_undecodable_line(run, drip, project):
    (project / "list.csv").write_bytes(b"email;name\na@example.com;Ren\xe9e\nb@example.com;B\n"
                                       b"c@example.com;Jos\xe9\n")
    result = run("subscribers", "import", "list.csv", "--consent", "paper form")
    assert result.exit_code == 1
    assert ("list.csv: line 2: not valid utf-8 (invalid continuation byte: byte 0xe9 at byte 18 "
            "of the line); not imported") in result.stderr
    assert "list.csv: line 4: not valid utf-8" in result.stderr
    assert "warning: 2 lines are not valid utf-8" in result.stderr
    assert "3 rows: 1 imported, 0 already on the list, 2 rejected" in result.stdout
    assert list(stored(drip)) == ["b@example.com"]
    data = json.loads(run("subscribers", "import", "list.csv", "--consent", "paper form",
                          "--encoding", "latin-1", "--dry-run", "--json").stdout)
    assert (data["imported"], data["existing"], data["rejected"], data["errors"]) == (2, 1, 0, [])
    assert data["stopped"] is None
    data = json.loads(run("subscribers", "import", "list.csv", "--consent", "paper form",
                          "--json").stdout)
    assert [e["line"] for e in data["errors"]] == [2, 4] and data["existing"] == 1


@pytest.mark.parametrize("header, suggestion", [
    ("Pregnancy week #", "'Pregnancy week #=field:pregnancy_week'"),
    ("Due\x01Date", "'Due\\x01Date=field:due_date'"),
    ("a=?b", "'a=?b=field:a_b'"),
    ("2nd Phone", "'2nd Phone=field:field_2nd_phone'"),
    ("What is your due date, or your baby's birthday?", "=field:what_is_your_due_date_or_your_baby_s"),
])
def test_a_header_that_is_no_field_name_stops_the_import_before_anything_is_stored(
        drip, csv_file, do_import, run, header, suggestion):
    """A column becomes a field named after its header only when that name follows the
    rule the form and `drip subscribers add` use (joining.check_field_name); otherwise the
    import stops at the header, naming the column and the --map that names the field."""
    quoted = '"' + header.replace('"', '""') + '"'
    path = csv_file(f"email,Stage,{quoted}\nana@example.com,postpartum,2026-06-12\n")
    for dry_run in (True, False):
        with pytest.raises(lists.ImportFailed) as failure:
            do_import(path, dry_run=dry_run)
        message = str(failure.value)
        assert f"column 3 ({header!r})" in message and "not allowed" in message, message
        assert "--map " + suggestion in message or suggestion in message, message
    assert drip.store.subscriber_counts() == {}

    # The --map it suggests imports the file; the field can then be changed the usual way.
    target = suggestion.split("=field:")[1].rstrip("'")
    report = do_import(path, mapping={lists._norm(header): f"field:{target}"})
    assert report.imported == 1
    ana = drip.store.get_subscriber(email="ana@example.com")
    assert ana.fields == {"stage": "postpartum", target: "2026-06-12"}
    result = run("subscribers", "add", "ana@example.com", "--field", f"{target}=2026-06-13",
                 "--now", "2026-03-02T10:00Z")
    assert result.exit_code == 0, result.output
    assert drip.store.get_subscriber(email="ana@example.com").fields[target] == "2026-06-13"


@pytest.mark.parametrize("asked", ["field:my notes!", "field:due\x01date", "field:a?b",
                                   "pregnancy_week_#", "field:" + "x" * 41])
def test_a_map_to_a_field_name_that_is_not_allowed_is_refused(drip, csv_file, do_import, asked):
    path = csv_file("email,notes\nbob@example.com,hi\n")
    with pytest.raises(lists.ImportFailed) as failure:
        do_import(path, mapping=lists.parse_map([f"notes={asked}"]))
    message = str(failure.value)
    assert message.startswith("--map for column 2 ('notes')") and "not allowed" in message, message
    assert "--map 'notes=field:" in message
    assert drip.store.subscriber_counts() == {}


def test_cli_import_with_a_header_that_is_no_field_name(run, drip, project):
    (project / "list.csv").write_text("email,Week #\nana@example.com,12\n", encoding="utf-8")
    result = run("subscribers", "import", "list.csv", "--consent", "paper form")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "column 2 ('Week #')" in result.output
    assert "--map 'Week #=field:week'" in result.output
    assert drip.store.subscriber_counts() == {}
    result = run("subscribers", "import", "list.csv", "--consent", "paper form",
                 "--map", "Week #=field:week")
    assert result.exit_code == 0, result.output
    assert drip.store.get_subscriber(email="ana@example.com").fields == {"week": "12"}
