"""The MIME bytes written directly (``mime_writer``) are the bytes the ``email`` package
writes for the same message: same header order and folding, same quoted-printable and
base64 bodies, same part layout. Only the boundaries differ (the package draws them at
random), so the comparison reads them from each message and names them in order."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sender import mime_writer
from sender.errors import HeaderInjection
from sender.headers import check_header_block, fold_address, fold_text, header_problem
from sender.message import MIME_POLICY, Attachment, OutgoingMessage, address

DATE = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def reference_bytes(message):
    """The message as the ``email`` package writes it: an EmailMessage built field by field
    (today's ``OutgoingMessage._build``), then ``as_bytes()``."""
    from email.message import EmailMessage
    from email.utils import format_datetime

    msg = EmailMessage(policy=MIME_POLICY)
    msg["From"] = fold_address("From", message.sender)
    msg["To"] = fold_address("To", message.to)
    if message.reply_to and message.reply_to != message.sender:
        msg["Reply-To"] = fold_address("Reply-To", message.reply_to)
    msg["Subject"] = fold_text("Subject", message.subject)
    msg["Date"] = format_datetime(message.date)
    msg["Message-ID"] = message.message_id
    for name, value in message.headers.items():
        msg[name] = value
    msg.set_content(message.text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(message.html, subtype="html", cte="quoted-printable")
    if message.attachments:
        msg.make_mixed()
        for item in message.attachments:
            maintype, subtype = item.content_type.split("/", 1)
            msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)
    return msg.as_bytes()


def named_boundaries(raw):
    """``raw`` with each boundary replaced by BOUNDARY-1, BOUNDARY-2... in order of use."""
    for number, boundary in enumerate(dict.fromkeys(re.findall(rb'boundary="([^"]+)"', raw)), 1):
        raw = raw.replace(boundary, b"BOUNDARY-%d" % number)
    return raw


def make(**changes):
    fields = dict(
        delivery_id=7, message_id="<glute.why-flat.uid000000000001@example.com>",
        sender=address("coach@example.com", "Coach Example"),
        reply_to=address("coach@example.com", "Coach Example"),
        to=address("ana@example.com", "Ana Souza"), subject="Why your butt looks flatter",
        html="<!DOCTYPE html><html><body><p>Hi Ana,</p></body></html>", text="Hi Ana,\n",
        date=DATE,
        headers={"List-Unsubscribe": "<https://mail.example.com/unsubscribe/InVpZCI.abc_DEF-12>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                 "List-Id": '"Glute progression" <glute-progression.example.com>',
                 "Feedback-ID": "glute-progression:why-flat:marketing:example"},
    )
    fields.update(changes)
    return OutgoingMessage(**fields)


def assert_same(message):
    written = mime_writer.message_bytes(message)
    assert named_boundaries(written) == named_boundaries(reference_bytes(message))
    head = written.partition(b"\r\n\r\n")[0]
    check_header_block(head, to=message.to.addr_spec, extra=message.headers)
    assert message.as_bytes() == written


LONG_LINE = "word " * 40 + "end"
SHAPES = {
    "plain": {},
    "non-ASCII name and subject, folded": dict(
        to=address("zoe@example.com", "Zoë-Maëlle Nguyễn Thị Ánh Þórhildur Włodarczyk-Øyen de la "
                   "Cruz-Sánchez"),
        subject="Ünïcödé subject that is long enough to fold over two lines or even three, "
                "with 李小龍 and an emoji 💪 at the end"),
    "a separate Reply-To": dict(reply_to=address("help@example.com", "Help Desk")),
    "no Reply-To": dict(reply_to=None),
    "a name with quotes and an ampersand": dict(to=address("t@example.com", 'Tom & "Jerry"')),
    "long List-Id and a non-ASCII one": dict(headers={
        "List-Id": '"A campaign name that goes on and on for quite a while indeed" '
                   "<a-campaign-name-that-goes-on.example.com>",
        "Feedback-ID": "Kampagne für Mütter:schritt:marketing:example"}),
    "a List-Unsubscribe longer than a line": dict(headers={
        "List-Unsubscribe": "<https://mail.example.com/unsubscribe/" + "x" * 200 + ">"}),
    "a List-Unsubscribe over 998 characters": dict(headers={
        "List-Unsubscribe": "<https://mail.example.com/unsubscribe/" + "y" * 1000 + ">"}),
    "bodies quoted-printable must wrap and escape": dict(
        text=f"{LONG_LINE}\n\ttabbed line with trailing space \nequals = sign\n\n\nZoë 💪\n"
             + "x" * 75 + "=\n" + "y" * 74 + "= \n" + "z" * 76 + "\t\n",
        html="<p style=\"color: red\">" + "é" * 120 + "</p>\r\n<p>crlf</p>\rlone cr\n\n"),
    "empty text and one-line html": dict(text="", html="<p>x</p>"),
    "a non-UTC date": dict(date=datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=-8)))),
    "an attachment": dict(attachments=[Attachment("pelvic-floor-guide.pdf", "application/pdf",
                                                  b"%PDF-1.7\n" + bytes(range(256)) * 9)]),
    "two attachments, one with a long non-ASCII name": dict(attachments=[
        Attachment("guide.pdf", "application/pdf", b"%PDF-1.4 " * 30),
        Attachment("Übungsplan für die ersten Wochen nach der Geburt, ausführlich.txt",
                   "text/plain", "Zoë\n".encode())]),
}


def test_written_bytes_are_the_email_packages_for_every_shape_of_message():
    for label, changes in SHAPES.items():
        try:
            assert_same(make(**changes))
        except AssertionError as exc:
            raise AssertionError(f"{label}: {exc}") from None


def test_boundaries_come_from_the_message_id_so_the_same_message_is_the_same_bytes():
    one, again = make(), make()
    assert one.as_bytes() == again.as_bytes()
    other = make(message_id="<glute.why-flat.uid000000000002@example.com>")
    assert re.findall(rb'boundary="([^"]+)"', one.as_bytes()) != \
        re.findall(rb'boundary="([^"]+)"', other.as_bytes())
    with_pdf = make(attachments=SHAPES["an attachment"]["attachments"])
    outer, inner = dict.fromkeys(re.findall(rb'boundary="([^"]+)"', with_pdf.as_bytes()))
    assert outer != inner
    # The EmailMessage for providers that need one serialises to the same bytes.
    for message in (one, with_pdf):
        assert message.to_mime().as_bytes() == message.as_bytes()


def test_a_header_added_after_the_message_was_made_still_meets_the_last_guard():
    message = make()
    message.headers["Bcc"] = "x@evil.example"
    with pytest.raises(HeaderInjection, match="Bcc"):
        mime_writer.message_bytes(message)
    message = make()
    message.headers["Subject"] = "Second subject"      # the package refuses a second one
    with pytest.raises(ValueError, match="Subject"):
        mime_writer.message_bytes(message)


HEADER_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=90).filter(
    lambda s: header_problem(s) is None)
BODY = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)


VERBATIM = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), min_size=1,
                   max_size=120).filter(lambda s: header_problem(s) is None)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(subject=HEADER_TEXT, name=HEADER_TEXT, text=BODY, html=BODY, unsubscribe=VERBATIM,
       list_id=HEADER_TEXT.filter(bool), local=st.from_regex(r"[a-z0-9.]{1,30}", fullmatch=True))
@example(subject="", name="", text="", html="", unsubscribe=" <x> ", list_id="x", local="a")
@example(subject="a" * 200, name="O'Brien <b>Bold</b>", text=" " * 80 + "\n", html="=" * 100,
         unsubscribe="<https://mail.example.com/u/" + "t" * 70 + ">", list_id="Zoë " * 30,
         local="uid")
def test_written_bytes_match_for_any_subject_name_and_bodies(subject, name, text, html,
                                                             unsubscribe, list_id, local):
    assert_same(make(subject=subject, to=address("ana@example.com", name), text=text, html=html,
                     message_id=f"<{local}@example.com>",
                     headers={"List-Unsubscribe": unsubscribe, "List-Id": list_id}))


def test_each_line_is_quoted_as_the_package_quotes_it():
    """Every byte, at every place around the 78-character cut, before a trailing space, tab
    or '=': the line encoder against ``quoprimime.body_encode``."""
    from email import quoprimime

    for byte in set(range(256)) - {10, 13}:
        for length in range(0, 170):
            for tail in (b"", b" ", b"\t", b"=", b"  ", b"\xc3\xa9 ", b"=\t"):
                line = b"x" * length + bytes([byte]) + tail
                expected = quoprimime.body_encode(line.decode("latin-1"), 78)
                assert mime_writer.encode_line(line) == expected.replace("\n", "\r\n").encode(), line
