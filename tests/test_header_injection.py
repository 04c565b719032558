"""Header injection through what a subscriber types (issue 10).

A name such as ``=?utf-8?q?Bob=0D=0ABcc:_x@evil.example?=`` has no CR or LF, yet on Python
releases without the fix for CVE-2024-6923 the ``email`` package decodes it while building
the message and writes a raw CR LF (a ``Bcc:`` line, or a new Subject and body). These
tests push such values, and control characters, through every way in (the signup form,
``drip subscribers add``, CSV import) and check every way out (the subject, the outbox
files, a real SMTP server on loopback), then the last guard on the serialised header block.
Legitimate names of every shape must still arrive intact.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses

import pytest
import requests

# Modules, not names: a name missing here fails one test, not the whole file.
from sender import headers
from sender import message as mime
from sender.errors import HeaderInjection, InvalidInput
from sender.lists import import_csv
from sender.models import Consent
from sender.subscribers import confirm
from tests.conftest import at
from tests.providers.conftest import free_port, make_message
from tests.web.conftest import start_server  # noqa: F401  (the loopback WSGI server fixture)

NOW = "2026-03-02T18:00Z"          # a Monday, 10:00 in Los Angeles: inside the send window


def _b64_word(text):
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


# (id, value, words that the refusal must contain)
HOSTILE = [
    ("q-encoded-bcc", "=?utf-8?q?Bob=0D=0ABcc:_x@evil.example?=", "=?"),
    ("b-encoded-bcc", _b64_word("Bob\r\nBcc: x@evil.example"), "=?"),
    ("b-encoded-upper", "Ana " + _b64_word("\r\nBcc: x@evil.example").upper(), "=?"),
    ("encoded-new-body", "=?utf-8?q?Hi=0D=0A=0D=0AYou_won_a_prize?=", "=?"),
    ("bare-opener", "Ana =? Lopez", "=?"),
    ("nul", "Ana\x00Lopez", "control character"),
    ("escape", "Ana\x1b[31mLopez", "control character"),
    ("tab", "Ana\tLopez", "control character"),
    ("delete", "Ana\x7fLopez", "control character"),
    ("c1-csi", "Ana\x9bLopez", "control character"),
    ("next-line", "Ana\x85Bcc: x@evil.example", "line break"),
    ("line-separator", "Ana\u2028Bcc: x@evil.example", "line break"),
    ("paragraph-separator", "Ana\u2029Bcc: x@evil.example", "line break"),
    ("crlf", "Ana\r\nBcc: x@evil.example", "line break"),
]
HOSTILE_IDS = [h[0] for h in HOSTILE]

LONG_NAME = ("Ångström-Müller Zoë " * 11)[:199] + "x"
LEGIT = [
    "Zoë Ångström-Müller",
    "Tom & Jerry",
    "O'Brien",
    "李小龍",
    "🏋️‍♀️ Strong Mama 💪🏽",
    "𝓩𝓸𝓮 😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
    LONG_NAME,
    'Ana "Nani" Lopez',
    "Lopez, Ana",
    "Ana (Nani) Lopez; Bea",
    "Bob <x@evil.example>",
    "Bob, x@evil.example",
    "Ana = Lopez ?",
]

ALLOWED = {"from", "to", "reply-to", "subject", "date", "message-id", "mime-version",
           "content-type", "content-transfer-encoding", "list-unsubscribe",
           "list-unsubscribe-post", "list-id", "feedback-id"}


def test_the_legit_names_are_what_they_claim():
    assert len(LONG_NAME) == 200 and all(" ".join(n.split()) == n for n in LEGIT)
    assert any(ord(c) > 0xFFFF for c in LEGIT[5])


# --- what a sent message must look like ----------------------------------------------------
def display_name(head, header="To"):
    """The display name in a raw header block, decoded the RFC 2047 way: the space between
    two adjacent encoded words is dropped (section 6.2). The email package's address parser
    keeps it, so a long name split over several encoded words would gain spaces there."""
    unfolded = head.decode("ascii").replace("\r\n ", " ").replace("\r\n\t", "\t")
    [value] = re.findall(rf"(?im)^{header}: (.*)$", unfolded)
    [(name, _)] = getaddresses([value])
    return str(make_header(decode_header(name)))


def check_raw(raw, *, to, name=None, subject=None):
    """Scan the raw bytes and parse them: one To (``to``), no Bcc or Cc, only our header
    names, no bare CR or LF in the header block, and both parts of the body there."""
    assert b"\r\n\r\n" in raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r" not in head.replace(b"\r\n", b"") and b"\n" not in head.replace(b"\r\n", b"")
    assert all(32 <= b < 127 or b == 9 for b in head.replace(b"\r\n", b"")), head
    names = [line.split(b":", 1)[0].decode().lower() for line in head.split(b"\r\n")
             if line[:1] not in (b" ", b"\t")]
    assert names.count("to") == 1 and "bcc" not in names and "cc" not in names, names
    assert set(names) <= ALLOWED, names
    assert len(names) == len(set(names)), names
    assert not re.search(rb"(?im)^(bcc|cc)\s*:", raw)
    [to_line] = re.findall(rb"(?im)^to:(.*(?:\r\n[ \t].*)*)", head)
    assert b"@evil.example" not in to_line        # a name that looks like an address stays a name
    parsed = message_from_bytes(raw, policy=policy.default)
    assert not parsed.defects, parsed.defects
    [recipient] = parsed["To"].addresses
    assert recipient.addr_spec == to
    if name is not None:
        assert display_name(head) == name
        assert re.sub(r"\s", "", recipient.display_name) == re.sub(r"\s", "", name)
    if subject is not None:
        assert parsed["Subject"] == subject
    assert parsed.get_all("Bcc") is None and parsed.get_all("Cc") is None
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and html is not None
    return parsed, plain.get_content(), html.get_content()


def set_welcome_subject(project):
    """The fixture's welcome email, with the whole name and a field in its subject."""
    path = project / "campaigns" / "welcome.toml"
    text = path.read_text()
    old = 'subject = "Welcome{% if subscriber.first_name %}, {{ subscriber.first_name }}{% endif %}"'
    assert old in text
    path.write_text(text.replace(old, 'subject = "Welcome, {{ subscriber.name }} from '
                                      '{{ subscriber.fields.get(\'city\', \'nowhere\') }}"'))


# --- (a) the public signup form -------------------------------------------------------------
@pytest.mark.parametrize("case_id,value,reason", HOSTILE, ids=HOSTILE_IDS)
def test_the_signup_form_refuses_hostile_names_and_fields(start_server, case_id, value, reason):  # noqa: F811
    server = start_server()
    url = f"{server.url}/subscribe"
    attempts = [("name", {"name": value}), ("field", {"city": value})]
    for n, (_, extra) in enumerate(attempts):
        data = {"email": f"form{n}@example.com", "consent": "yes", **extra}
        page = requests.post(url, data=data, timeout=10)
        assert page.status_code == 400, page.text
        assert "Please check the form" in page.text and reason in page.text
        body = {"email": f"json{n}@example.com", "consent": True, **extra}
        answer = requests.post(url, json=body, timeout=10)
        assert answer.status_code == 400
        assert answer.json()["ok"] is False and reason in answer.json()["message"]
        multipart = requests.post(url, files={k: (None, v) for k, v in data.items()}, timeout=10)
        assert multipart.status_code == 400
    drip = server.drip()
    assert drip.store.subscriber_counts() == {}
    assert list(drip.store.deliveries()) == []
    assert server.emails() == []


def test_the_signup_form_keeps_legit_names_and_the_confirmation_is_clean(start_server):  # noqa: F811
    server = start_server()
    for n, name in enumerate(LEGIT):
        email = f"person{n}@example.com"
        answer = requests.post(f"{server.url}/subscribe", timeout=10,
                               json={"email": email, "name": name, "consent": True,
                                     "city": f"Oslo {name}"})
        assert answer.status_code == 200, (name, answer.text)
        person = server.drip().store.get_subscriber(email=email)
        assert person.name == name and person.fields == {"city": f"Oslo {name}"}
        path = next(p for p in server.outbox.glob("*.eml")
                    if message_from_bytes(p.read_bytes(), policy=policy.default)["To"]
                    .addresses[0].addr_spec == email)
        check_raw(path.read_bytes(), to=email, name=name, subject="Please confirm")
    assert len(server.emails()) == len(LEGIT)


# --- (b) drip subscribers add ---------------------------------------------------------------
@pytest.mark.parametrize("case_id,value,reason", HOSTILE, ids=HOSTILE_IDS)
def test_the_cli_refuses_hostile_names_fields_and_tags(run, drip, case_id, value, reason):
    for argv in (["--name", value], ["--field", f"city={value}"], ["--tag", f"vip{value}x"]):
        result = run("subscribers", "add", "ana@example.com", *argv, "--confirmed",
                     "--now", NOW)
        if argv[0] == "--tag" and any(c.isspace() for c in value):
            assert result.exit_code == 1 and "Traceback" not in result.output
            continue
        assert result.exit_code == 1, (argv, result.output)
        assert reason in result.output and "Traceback" not in result.output
    assert list(drip.store.list_subscribers()) == []
    assert run("send", "--now", NOW).exit_code == 0
    assert list(drip.store.deliveries()) == []


# --- (c) CSV import -------------------------------------------------------------------------
def test_csv_import_reports_each_hostile_row_with_its_line_and_imports_the_rest(run, project, drip):
    rows = ["email,name,city,tags", "first@example.com,Ana,Oslo,vip"]
    expected = {}
    for n, (_, value, reason) in enumerate(HOSTILE):
        cell = '"' + value.replace('"', '""') + '"'
        column = ("name", "city", "tags")[n % 3]
        cells = {"name": "Bea", "city": "Rome", "tags": "vip"}
        cells[column] = cell if column != "tags" else '"x' + value.replace('"', '""') + '"'
        line = len(rows) + 1 + sum(r.count("\n") for r in rows)
        rows.append(f"bad{n}@example.com,{cells['name']},{cells['city']},{cells['tags']}")
        expected[line] = (column, reason)
    rows.append("last@example.com,Zoë Ångström-Müller,Zürich,")
    path = project / "people.csv"
    path.write_bytes(("\n".join(rows) + "\n").encode())
    report = import_csv(drip, path, consent="old list", now=at(NOW))
    found = {p.line: p.reason for p in report.errors}
    assert set(found) == set(expected), found
    for line, (column, reason) in expected.items():
        if column == "tags" and reason not in found[line]:
            assert "one word" in found[line], found[line]       # whitespace: not one word
        else:
            assert reason in found[line], (line, found[line])
    assert report.imported == 2 and report.rejected == len(HOSTILE)
    people = {p.email: p for p in drip.store.list_subscribers()}
    assert sorted(people) == ["first@example.com", "last@example.com"]
    assert people["last@example.com"].name == "Zoë Ångström-Müller"
    result = run("subscribers", "import", str(path), "--consent", "old list", "--now", NOW)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"people.csv: line {min(expected)}: " in result.output


# --- (d) a subject with the name in it: the outbox, and a real SMTP server --------------------
def add_everyone(run, hostile_through_cli=True):
    """Each legit name through the CLI (confirmed, with a city field); each hostile value too,
    which must be refused. Returns {email: name}."""
    people = {}
    for n, name in enumerate(LEGIT):
        email = f"reader{n}@example.com"
        result = run("subscribers", "add", email, "--name", name, "--field", f"city=Oslo {n}",
                     "--confirmed", "--now", NOW)
        assert result.exit_code == 0, result.output
        people[email] = name
    if hostile_through_cli:
        for n, (_, value, _) in enumerate(HOSTILE):
            assert run("subscribers", "add", f"evil{n}@example.com", "--name", value,
                       "--confirmed", "--now", NOW).exit_code == 1
            assert run("subscribers", "add", f"evil{n}@example.com", "--name", "Eve",
                       "--field", f"city={value}", "--confirmed", "--now", NOW).exit_code == 1
    return people


def test_a_subject_with_the_name_in_it_reaches_the_outbox_clean(run, project, drip):
    set_welcome_subject(project)
    people = add_everyone(run)
    result = run("send", "--now", NOW)
    assert result.exit_code == 0, result.output
    files = sorted((project / "outbox").glob("*.eml"))
    assert len(files) == len(people)
    seen = set()
    for path in files:
        raw = path.read_bytes()
        to = message_from_bytes(raw, policy=policy.default)["To"].addresses[0].addr_spec
        n = int(to.removeprefix("reader").split("@")[0])
        parsed, plain, html = check_raw(raw, to=to, name=people[to],
                                        subject=f"Welcome, {people[to]} from Oslo {n}")
        assert "your guide" in plain and "your guide" in html
        assert "/unsubscribe/" in plain
        seen.add(to)
    assert seen == set(people)


@pytest.fixture
def smtp_inbox():
    """A plain SMTP server on loopback (aiosmtpd): (list of (rcpt_tos, data), port)."""
    pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed (pip install -e '.[test]')")
    from aiosmtpd.controller import Controller

    received = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            received.append((list(envelope.rcpt_tos), envelope.content))
            return "250 2.0.0 queued"

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    yield received, port
    controller.stop()


def smtp_env(port):
    return {"DRIP_PROVIDER": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
            "SMTP_SECURITY": "none"}


def test_a_subject_with_the_name_in_it_reaches_an_smtp_server_clean(run, project, drip, smtp_inbox):
    received, port = smtp_inbox
    set_welcome_subject(project)
    people = add_everyone(run)
    result = run("send", "--now", NOW, extra_env=smtp_env(port))
    assert result.exit_code == 0, result.output
    assert len(received) == len(people)
    for rcpt_tos, data in received:
        [to] = rcpt_tos                                   # the envelope: exactly one recipient
        assert to in people
        n = int(to.removeprefix("reader").split("@")[0])
        check_raw(data, to=to, name=people[to], subject=f"Welcome, {people[to]} from Oslo {n}")
        assert not re.search(rb"(?im)^bcc\s*:", data)
    assert sorted(r[0][0] for r in received) == sorted(people)


@pytest.mark.parametrize("field", ["name", "city"])
@pytest.mark.parametrize("case_id,value,reason", HOSTILE[:6], ids=HOSTILE_IDS[:6])
def test_hostile_text_already_in_the_database_is_never_sent(run, project, drip, smtp_inbox, field,
                                                            case_id, value, reason):
    """Text stored before this fix (or written by hand) reaches compose without the input
    checks: it must never be sent, to the outbox or over SMTP."""
    received, port = smtp_inbox
    set_welcome_subject(project)
    name, fields = ("Eve", {"city": value}) if field == "city" else (value, {"city": "Oslo"})
    eve = drip.store.add_subscriber("eve@example.com", name=name, timezone=None, tags=[],
                                    fields=fields, status="pending",
                                    consent=Consent(source="old", at=at(NOW)), now=at(NOW))
    confirm(drip, eve, now=at(NOW))
    for extra in ({}, smtp_env(port)):
        result = run("send", "--now", NOW, extra_env=extra)
        assert "Traceback" not in result.output
        [row] = [d for d in drip.store.deliveries(subscriber_id=eve.id) if d.campaign == "welcome"]
        assert row.state != "sent"
        assert reason in result.output or reason in (row.last_error or ""), result.output
    assert list((project / "outbox").glob("*.eml")) == []
    assert received == []


# --- the pieces ----------------------------------------------------------------------------
@pytest.mark.parametrize("case_id,value,reason", HOSTILE, ids=HOSTILE_IDS)
def test_one_rule_for_every_way_in(case_id, value, reason):
    from sender.joining import check_text

    with pytest.raises(HeaderInjection, match=re.escape(reason)):
        check_text("name", value)
    with pytest.raises(InvalidInput, match=re.escape(reason)):
        mime.check_header_value("Subject", value)


@pytest.mark.parametrize("case_id,value,reason", HOSTILE, ids=HOSTILE_IDS)
def test_a_message_refuses_hostile_display_names_and_subjects(case_id, value, reason):
    """What JSON-API providers read (the fields of OutgoingMessage) is checked on creation."""
    good = make_message(1)
    changes = [{"subject": value},
               {"headers": {**good.headers, "List-Unsubscribe": f"<https://x.example/{value}>"}}]
    if "\r" not in value and "\n" not in value:      # Address() itself refuses CR and LF
        changes += [{"to": Address(value, "reader1", "example.org")},
                    {"sender": Address(value, "coach", "example.com")},
                    {"reply_to": Address(value, "reply", "example.com")}]
    for change in changes:
        fields = {**good.__dict__, **change}
        with pytest.raises(HeaderInjection, match=re.escape(reason)):
            mime.OutgoingMessage(**fields)


def test_display_names_are_written_as_text_never_decoded():
    """Defence in depth: even a name that reaches the header writer with an encoded word in
    it comes out as the same literal text, one address, no new line."""
    for value in [v for _, v, r in HOSTILE if r == "=?"] + LEGIT:
        folded = headers.fold_address("To", Address(value, "ana", "example.com")).folded
        assert folded.endswith("\r\n") and "\r" not in folded[:-2].replace("\r\n ", "")
        assert "\n" not in folded[:-2].replace("\r\n ", "")
        raw = (folded + "Subject: x\r\n\r\nbody\r\n").encode("ascii")
        parsed = message_from_bytes(raw, policy=policy.default)
        [recipient] = parsed["To"].addresses
        assert recipient.addr_spec == "ana@example.com"
        assert display_name(raw.split(b"\r\n\r\n")[0]) == value
        assert parsed.get_all("Bcc") is None and parsed.get_payload() == "body\r\n"
        for line in folded.split("\r\n"):
            assert len(line) <= 78 or line.strip().startswith("<"), line
        for word in re.findall(r"=\?[^?]+\?[qQbB]\?[^?]*\?=", folded):
            assert len(word) <= 75, word


def test_the_last_guard_passes_what_we_build_and_refuses_a_tampered_header_block():
    message = make_message(1)
    head = message.as_bytes().split(b"\r\n\r\n", 1)[0]
    extra = tuple(message.headers)
    headers.check_header_block(head, to="reader1@example.org", extra=extra)    # ours passes
    tampered = {
        "bcc": head.replace(b"\r\nSubject:", b"\r\nBcc: x@evil.example\r\nSubject:"),
        "cc": head + b"\r\nCc: x@evil.example",
        "second-to": head + b"\r\nTo: x@evil.example",
        "to-changed": head.replace(b"reader1@example.org", b"x@evil.example"),
        "two-addresses": head.replace(b"<reader1@example.org>",
                                      b"<reader1@example.org>, x@evil.example"),
        "second-subject": head + b"\r\nSubject: You won",
        "unknown-header": head + b"\r\nX-Evil: 1",
        "bare-lf": head.replace(b"Subject: Week 1", b"Subject: Week\nBcc: x@evil.example"),
        "bare-cr": head.replace(b"Subject: Week 1", b"Subject: Week\rBcc: x@evil.example"),
        "nul": head.replace(b"Subject: Week 1", b"Subject: Week\x00 1"),
        "not-a-header": head + b"\r\nthis is not a header",
        "no-date": re.sub(rb"\r\nDate: [^\r]*", b"", head),
    }
    for case, block in tampered.items():
        assert block != head, case
        with pytest.raises(HeaderInjection):
            headers.check_header_block(block, to="reader1@example.org", extra=extra)
    # A message whose headers were changed after it was checked is refused when serialised.
    message.headers["Bcc"] = "x@evil.example"
    with pytest.raises(HeaderInjection, match="Bcc"):
        message.as_bytes()
    with pytest.raises(HeaderInjection, match="Bcc"):
        message.to_mime()


def test_the_last_guard_catches_the_email_package_writing_a_decoded_line_break():
    """On a Python without the CVE-2024-6923 fix the email package itself writes the Bcc
    line; the guard refuses that block. (On a fixed Python there is no such line.)"""
    msg = EmailMessage(policy=mime.MIME_POLICY)
    msg["From"] = "coach@example.com"
    msg["To"] = "Ana <ana@example.com>"
    msg["Subject"] = "=?utf-8?q?Hi=0D=0ABcc:_y@evil.example?="
    msg["Date"] = "Mon, 02 Mar 2026 18:00:00 +0000"
    msg["Message-ID"] = "<a.b.c@example.com>"
    msg.set_content("hi")
    head = msg.as_bytes().split(b"\r\n\r\n", 1)[0]
    if re.search(rb"(?im)^bcc:", head):
        with pytest.raises(HeaderInjection):
            headers.check_header_block(head, to="ana@example.com")
    else:
        headers.check_header_block(head, to="ana@example.com")


def test_providers_refuse_rather_than_send_when_the_guard_trips(tmp_path, smtp_inbox):
    from sender.providers.base import REJECTED
    from sender.providers.outbox.sending import OutboxProvider
    from sender.providers.smtp.sending import SmtpProvider

    received, port = smtp_inbox
    bad, good = make_message(1), make_message(2)
    bad.headers["Bcc"] = "x@evil.example"           # changed after the creation checks
    outbox = OutboxProvider(tmp_path / "outbox")
    first, second = outbox.send([bad, good])
    assert first.outcome == REJECTED and not first.suppress and "Bcc" in first.error
    assert [p.name for p in (tmp_path / "outbox").glob("*.eml")] == [second.provider_message_id]
    smtp = SmtpProvider("127.0.0.1", port, security="none", timeout=5)
    try:
        first, second = smtp.send([bad, good])
    finally:
        smtp.close()
    assert first.outcome == REJECTED and "Bcc" in first.error
    assert [r[0] for r in received] == [["reader2@example.org"]]


def test_settings_refuse_an_encoded_word_in_the_from_name(run):
    result = run("status", extra_env={"DRIP_FROM": "=?utf-8?q?Co=0D=0ABcc:_x?= <coach@example.com>"})
    assert result.exit_code == 1 and "DRIP_FROM" in result.output and "=?" in result.output



def test_one_hostile_legacy_row_fails_alone_and_the_batch_goes_on(run, project, drip):
    """A subscriber stored before this fix with '=?' in her name: her email fails with the
    reason, the others due in the same batch are sent, and the run says what failed."""
    set_welcome_subject(project)
    eve = drip.store.add_subscriber("eve@example.com", name=HOSTILE[0][1], timezone=None, tags=[],
                                    fields={"city": "Oslo"}, status="pending",
                                    consent=Consent(source="old", at=at(NOW)), now=at(NOW))
    confirm(drip, eve, now=at(NOW))
    for n in range(3):
        person = drip.store.add_subscriber(f"ok{n}@example.com", name=f"Ok {n}", timezone=None,
                                           tags=[], fields={"city": "Oslo"}, status="pending",
                                           consent=Consent(source="old", at=at(NOW)), now=at(NOW))
        confirm(drip, person, now=at(NOW))
    result = run("send", "--now", NOW)
    assert result.exit_code == 1 and "eve@example.com" in result.output
    rows = {d.subscriber_id: d for d in drip.store.deliveries() if d.campaign == "welcome"}
    assert (rows[eve.id].state, rows[eve.id].reason) == ("failed", "bad_data")
    assert sorted(d.state for i, d in rows.items() if i != eve.id) == ["sent"] * 3
    assert len(list((project / "outbox").glob("*.eml"))) == 3


# A row written by hand or by a broken tool: the address with a line break, fields that are
# not a JSON object, tags that are not a list. Only that person's email fails.
BROKEN_ROWS = {
    "address with a line break": ("email", "'eve@example.com' || char(13) || char(10) || "
                                           "'Bcc: x@evil.example'", "email address"),
    "fields not JSON": ("fields", "'{not json'", "fields"),
    "fields a list": ("fields", "'[[\"a\", \"b\"]]'", "fields"),
    "tags not a list": ("tags", "'{\"a\": 1}'", "tags"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_ROWS))
def test_a_row_broken_in_the_database_fails_alone(case, run, project, drip):
    column, value, named = BROKEN_ROWS[case]
    people = []
    for n in range(3):
        person = drip.store.add_subscriber(f"p{n}@example.com", name=f"P {n}", timezone=None,
                                           tags=[], fields={}, status="pending",
                                           consent=Consent(source="old", at=at(NOW)), now=at(NOW))
        confirm(drip, person, now=at(NOW))
        people.append(person)
    with sqlite3.connect(project / "drip.db") as db:
        db.execute(f"UPDATE subscribers SET {column} = {value} WHERE id = ?", (people[0].id,))
    result = run("send", "--now", NOW)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert named in result.output and "\nBcc" not in result.output   # stored text stays one line
    again = run("send", "--now", NOW)      # nothing was left claimed: nothing to do, no crash
    assert again.exit_code == 0 and "Traceback" not in again.output, again.output
    rows = {d.subscriber_id: d for d in drip.store.deliveries() if d.campaign == "welcome"}
    assert (rows[people[0].id].state, rows[people[0].id].reason) == ("failed", "bad_data")
    assert [rows[p.id].state for p in people[1:]] == ["sent", "sent"]
    assert len(list((project / "outbox").glob("*.eml"))) == 2


def test_a_row_with_unreadable_fields_says_so_in_a_data_request(run, project, drip):
    person = drip.store.add_subscriber("p0@example.com", name="P", timezone=None, tags=[],
                                       fields={"city": "Oslo"}, status="active",
                                       consent=Consent(source="old", at=at(NOW)), now=at(NOW))
    with sqlite3.connect(project / "drip.db") as db:
        db.execute("UPDATE subscribers SET fields = '{not json' WHERE id = ?", (person.id,))
    result = run("subscribers", "export", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    [row] = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert row["email"] == "p0@example.com" and row["fields"] == {}
    assert row["problem"] == "its stored fields are not a JSON object ('{not json')"
