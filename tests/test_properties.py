"""Property-based tests (Hypothesis): addresses, header encoding, token signing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import getaddresses

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from sender.errors import InvalidInput
from sender.message import OutgoingMessage, address, check_header_value, normalize_email
from sender.tokens import CONFIRM, UNSUBSCRIBE, Signer, TokenInvalid

LOCAL = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N"), include_characters="._+-"),
                min_size=1, max_size=30)
LABEL = st.text(alphabet=st.characters(codec="ascii", categories=("Ll", "N")), min_size=1, max_size=15)
BREAKS = ["\r", "\n", "\r\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"]


@given(local=LOCAL, labels=st.lists(LABEL, min_size=1, max_size=3), tld=st.sampled_from(["com", "org", "de"]))
def test_valid_addresses_normalise_idempotently(local, labels, tld):
    assume(not local.startswith(".") and not local.endswith(".") and ".." not in local)
    raw = f"  {local.upper()}@{'.'.join(labels)}.{tld.upper()} "
    normalised = normalize_email(raw)
    assert normalised == normalised.strip().lower()
    assert normalize_email(normalised) == normalised
    assert normalised.count("@") == 1


@given(st.text(max_size=60))
def test_normalize_email_either_accepts_or_explains(text):
    try:
        result = normalize_email(text)
    except InvalidInput as exc:
        assert str(exc)
    else:
        assert "@" in result and not any(c.isspace() for c in result)


@given(before=st.text(max_size=20), brk=st.sampled_from(BREAKS), after=st.text(max_size=20))
def test_any_line_break_in_a_header_value_is_rejected(before, brk, after):
    with pytest.raises(InvalidInput, match="line break"):
        check_header_value("Subject", before + brk + after)


def test_internationalised_domain_becomes_punycode():
    assert normalize_email("Ana@Bücher.Example") == "ana@xn--bcher-kva.example"
    with pytest.raises(InvalidInput, match="non-ASCII before the @"):
        normalize_email("zoë@example.com")


# Text a subscriber may have: no control characters, no line separators, no '=?' (refused).
PLAIN = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=20)
SAFE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
                    max_size=120).filter(lambda s: s.strip() and "=?" not in s)


@given(before=st.text(max_size=20), control=st.characters(categories=("Cc",)), after=st.text(max_size=20))
def test_any_control_character_is_rejected(before, control, after):
    with pytest.raises(InvalidInput, match="line break|control character"):
        check_header_value("name", before + control + after)


@given(before=PLAIN, after=PLAIN)
def test_an_encoded_word_opener_is_rejected_and_plain_text_is_not(before, after):
    assume("=?" not in before + after and not before.endswith("=") and not after.startswith("?"))
    assert check_header_value("name", before + after) == before + after
    with pytest.raises(InvalidInput, match="encoded word"):
        check_header_value("name", before + "=?" + after)
ASTRAL = ["\U0001F600", "\U0001D4E9", "\U00020000", "\U0001F3CB\U0001F3FD"]


def astral_examples(test):
    """Names and subjects of astral-plane characters (4 bytes each in UTF-8) of many lengths:
    where an encoded word once came out at 76 characters."""
    for n in (1, 2, 3, 5, 8, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 30, 31, 45,
              46, 47, 48, 60, 90, 119, 120):
        char = ASTRAL[n % len(ASTRAL)]
        test = example(subject=(char * n)[:120], name=(ASTRAL[0] * n)[:120])(test)
        test = example(subject="Hi " + "\U0001F600" * (n - 1), name=("Zo\u00eb " + char * n)[:120])(test)
    return test


def rfc2047_display_name(head):
    """The To display name decoded the RFC 2047 way (the space between two adjacent encoded
    words is dropped, which the email package's address parser does not do)."""
    unfolded = head.decode("ascii").replace("\r\n ", " ")
    [value] = re.findall(r"(?m)^To: (.*)$", unfolded)
    [(name, _)] = getaddresses([value])
    return str(make_header(decode_header(name)))


@astral_examples
@given(subject=SAFE_TEXT, name=SAFE_TEXT)
def test_headers_round_trip_through_a_mime_parser(subject, name):
    message = OutgoingMessage(
        delivery_id=1, message_id="<a.b.c@example.com>", sender=address("coach@example.com", "Coach"),
        reply_to=address("coach@example.com", "Coach"), to=address("ana@example.com", name),
        subject=subject, html="<p>hi</p>", text="hi\n", date=datetime(2026, 3, 2, tzinfo=UTC),
        headers={"List-Unsubscribe": "<https://mail.example.com/unsubscribe/t>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    raw = message.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(b < 128 for b in head), "headers must be 7-bit (RFC 2047 for anything else)"
    assert all(len(line) <= 78 for line in head.split(b"\r\n")), head
    for word in re.findall(rb"=\?[^?]+\?[qQbB]\?[^?]*\?=", head):
        assert len(word) <= 75, word
        # each word holds whole characters: it decodes on its own
        (text, charset), = decode_header(word.decode())
        text.decode(charset)
    assert b"List-Unsubscribe: <https://mail.example.com/unsubscribe/t>\r\n" in head
    parsed = message_from_bytes(raw, policy=policy.default)
    assert " ".join(parsed["Subject"].split()) == " ".join(subject.split())
    assert parsed["To"].addresses[0].addr_spec == "ana@example.com"
    assert rfc2047_display_name(head) == name
    for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert len(parsed.get_all(header)) == 1


SIGNER = Signer("property-secret-" + "x" * 32)
UIDS = st.text(alphabet="0123456789abcdef", min_size=8, max_size=32)


@given(uid=UIDS, purpose=st.sampled_from([CONFIRM, UNSUBSCRIBE]))
def test_token_round_trip(uid, purpose):
    now = datetime.now(UTC)
    assert SIGNER.read(purpose, SIGNER.make(purpose, uid), now=now) == uid


@given(uid=UIDS, position=st.integers(min_value=0, max_value=200), char=st.sampled_from("AbZ09-_."))
def test_any_altered_token_is_refused(uid, position, char):
    token = SIGNER.make(UNSUBSCRIBE, uid)
    position %= len(token)
    assume(token[position] != char)
    altered = token[:position] + char + token[position + 1:]
    try:
        value = SIGNER.read(UNSUBSCRIBE, altered, now=datetime.now(UTC))
    except TokenInvalid:
        return
    # base64 padding bits can make two spellings decode the same: then it must be the same uid.
    assert value == uid


@given(uid=UIDS, days=st.integers(min_value=8, max_value=3650))
def test_confirm_tokens_expire_after_a_week(uid, days):
    token = SIGNER.make(CONFIRM, uid)
    with pytest.raises(TokenInvalid):
        SIGNER.read(CONFIRM, token, now=datetime.now(UTC) + timedelta(days=days))
