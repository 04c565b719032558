"""The bytes of an OutgoingMessage as it is sent (the outbox, SMTP), written directly.

They are the bytes the ``email`` package writes for the EmailMessage of ``to_mime()``: the
same header lines in the same order (ours folded by ``headers.py``, the others by the
package, each folded once per distinct value and kept), the same ``multipart/alternative``
(text, then HTML, quoted-printable) inside a ``multipart/mixed`` when there are attachments,
the same base64 for an attachment (written once per file and kept). Quoted-printable works
line by line, and most lines of a step's emails are the same for everyone, so each encoded
line is kept too (two generations, so the lines still in use stay and the rest age out).

The package draws boundaries at random; ours come from the Message-ID, so the same message
is the same bytes (a recovery rebuilds exactly what an interrupted hand-off sent). Like the
package's, they are ``=`` signs around digits, which quoted-printable and base64 bodies can
never contain on a line of their own. The header block passes ``check_header_block`` before
anything is returned.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime

from .headers import LINE_LENGTH, check_header_block, fold_address, fold_text


class VerbatimHeader(UnstructuredHeader):
    """A header written exactly as given, on one line. The email package would turn a long
    URL with no space to fold at into RFC 2047 encoded words, which List-Unsubscribe must
    never be, and would fold a long Message-ID; RFC 5322 allows such a line up to 998
    characters."""

    def fold(self, *, policy):
        value = str(self)
        if not (value.isascii() and value.isprintable()) or len(self.name) + 2 + len(value) > 998:
            return super().fold(policy=policy)
        return f"{self.name}: {value}{policy.linesep}"


_REGISTRY = HeaderRegistry()
for _name in ("list-unsubscribe", "message-id"):
    _REGISTRY.map_to_type(_name, VerbatimHeader)
# Everything else folds at 78 characters, so encoded words stay within RFC 2047's 75.
MIME_POLICY = policy.SMTP.clone(header_factory=_REGISTRY)

CRLF = b"\r\n"
_TEXT_PART = (b'Content-Type: text/plain; charset="utf-8"\r\n'
              b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
_HTML_PART = (b'Content-Type: text/html; charset="utf-8"\r\n'
              b"Content-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n\r\n")
# Names a message's own headers may not repeat: the package refuses a second one of some,
# so such a message is left to it (``_package_bytes``), which says so as it always has.
_OURS = frozenset({"from", "to", "reply-to", "subject", "date", "message-id", "mime-version",
                   "content-type", "content-transfer-encoding"})
_VERBATIM = frozenset({"list-unsubscribe", "message-id"})      # VerbatimHeader
KEPT = 4096             # folded header lines, attachments (fewer), encoded lines per generation


def boundary(message_id, part):
    """The boundary of ``part`` ("alternative" or "mixed") for ``message_id``: the package's
    form (15 '=', 19 digits, '=='), the digits from a hash of the two."""
    digest = hashlib.sha256(f"{part}|{message_id}".encode("utf-8", "replace")).digest()
    return f"{'=' * 15}{int.from_bytes(digest[:8], 'big') % 10 ** 19:019d}=="


class _Kept:
    """A bounded memo: ``get(key, make)``; when full it starts again."""

    def __init__(self, size=KEPT):
        self.size, self.items = size, {}

    def get(self, key, make):
        found = self.items.get(key)
        if found is None:
            if len(self.items) >= self.size:
                self.items = {}
            found = self.items[key] = make(key)
        return found


# Quoted-printable as the package writes a body (quoprimime.body_encode, lines of at most
# 78 characters with the soft break): bytes outside printable ASCII and tab, and '=', are
# written =XX; a long line is cut before 77 characters, never inside an =XX; a space or tab
# ending a line is written =20 / =09 (or moved after a soft break when there is no room).
_SAFE = frozenset(b" !\"#$%&'()*+,-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                  b"abcdefghijklmnopqrstuvwxyz{|}~\t")
_QUOTED = [chr(c) if c in _SAFE else f"={c:02X}" for c in range(256)]


def quote_chars(text):
    """The characters of ``text`` (one line) quoted, before the line is cut."""
    return text.encode("utf-8").decode("latin-1").translate(_QUOTED)


def cut(line, width=LINE_LENGTH):
    """A quoted line cut into lines of at most ``width`` with soft breaks, as bytes with CR LF
    between them (quoprimime.body_encode's loop, line for line)."""
    out = []
    start, last_start = 0, len(line) - 1 - width
    while start <= last_start:
        stop = start + width - 1
        if line[stop - 2] == "=":
            out.append(line[start:stop - 1])
            start = stop - 2
        elif line[stop - 1] == "=":
            out.append(line[start:stop])
            start = stop - 1
        else:
            out.append(line[start:stop] + "=")
            start = stop
    if line and line[-1] in " \t":
        room = start - last_start
        quoted = f"={ord(line[-1]):02X}"
        if room >= 3:
            end = quoted
        elif room == 2:
            end = line[-1] + "=\r\n"
        else:
            end = "=\r\n" + quoted
        out.append(line[start:-1] + end)
    else:
        out.append(line[start:])
    return "\r\n".join(out).encode("ascii")


def encode_line(line):
    """One line (UTF-8 bytes, no line break) as the package's quoted-printable writes it."""
    return cut(line.decode("latin-1").translate(_QUOTED))


def quoted_printable(text):
    """``text`` as the body of a quoted-printable part: what ``set_content(text,
    cte="quoted-printable")`` then ``as_bytes()`` write (its lines, each line break CR LF)."""
    lines = text.encode("utf-8").splitlines()
    return CRLF.join([*map(encode_line, lines), b""]) if lines else CRLF


class _Lines:
    """Quoted-printable, a line at a time, each distinct line encoded once while in use."""

    def __init__(self, size=KEPT):
        self.size, self.new, self.old = size, {}, {}
        self.lock = threading.Lock()

    def encode(self, text):
        new, old = self.new, self.old
        out = []
        for line in text.encode("utf-8").splitlines():
            encoded = new.get(line)
            if encoded is None:
                encoded = old.get(line)
                if encoded is None:
                    encoded = encode_line(line)
                new[line] = encoded
                if len(new) >= self.size:
                    with self.lock:
                        self.old, self.new = self.new, {}
                    new, old = self.new, self.old
            out.append(encoded)
        out.append(b"")
        return CRLF.join(out) if len(out) > 1 else CRLF


_BREAK = re.compile(r"\r\n|\r|\n")
_SLOT = "\ue00f"


class Prepared:
    """The quoted-printable body of a text with slots, its fixed lines encoded once:
    ``items`` are strings and slots (``slot(values)`` gives the text that goes there);
    ``encode(values)`` quotes only what the slots give, and cuts only the lines they are on."""

    def __init__(self, items):
        slots = [item for item in items if not isinstance(item, str)]
        text = "".join(item if isinstance(item, str) else _SLOT for item in items)
        if _SLOT in "".join(item for item in items if isinstance(item, str)):
            raise ValueError("the text holds U+E00F")
        lines = _BREAK.split(text)
        if text.endswith(("\n", "\r")):
            lines.pop()
        self.plan, fixed, position = [], [], 0
        for line in lines:
            if _SLOT not in line:
                fixed.append(encode_line(line.encode("utf-8")))
                continue
            if fixed:
                self.plan.append(CRLF.join([*fixed, b""]))
                fixed = []
            pieces = line.split(_SLOT)
            count = len(pieces) - 1
            line_slots = slots[position:position + count]
            position += count
            # [piece, slot, piece, slot, ... piece]: the slots' places filled per person
            self.plan.append((pieces, [quote_chars(p) for p in pieces], line_slots))
        if fixed:
            self.plan.append(CRLF.join([*fixed, b""]))

    def encode(self, values):
        if not self.plan:
            return CRLF
        out = []
        for item in self.plan:
            if item.__class__ is bytes:
                out.append(item)
                continue
            pieces, quoted, slots = item
            filled = [slot(values) for slot in slots]
            joined = [quoted[0]]
            for value, piece in zip(filled, quoted[1:], strict=True):
                if "\n" in value or "\r" in value:          # a slot made more lines
                    out.append(quoted_printable(_interleave(pieces, filled)))
                    break
                joined += (quote_chars(value), piece)
            else:
                out += (cut("".join(joined)), CRLF)
        return b"".join(out)


def _interleave(pieces, filled):
    out = [pieces[0]]
    for value, piece in zip(filled, pieces[1:], strict=True):
        out += (value, piece)
    return "".join(out)


_LINES = _Lines()
_ADDRESSES = _Kept()
_SUBJECTS = _Kept()
_DATES = _Kept(64)
_HEADERS = _Kept()
_ATTACHMENTS = _Kept(16)


def _fold_package(name, value):
    """``Name: value`` as the package folds it (what ``msg[name] = value`` then writes)."""
    policy = MIME_POLICY
    return policy.fold_binary(*policy.header_store_parse(name, value))


def _address_line(key):
    name, display, username, domain = key
    return fold_address(name, Address(display, username, domain)).folded.encode("ascii")


def _date_line(key):
    return _fold_package("Date", format_datetime(key[0]))


def _verbatim(name, value):
    if value.isascii() and value.isprintable() and "=?" not in value \
            and len(name) + 2 + len(value) <= 998:
        return f"{name}: {value}\r\n".encode("ascii")
    return _fold_package(name, value)


def _attachment(key):
    filename, content_type, data = key
    part = EmailMessage(policy=MIME_POLICY)
    maintype, subtype = content_type.split("/", 1)
    part.set_content(data, maintype=maintype, subtype=subtype, filename=filename)
    if "content-disposition" not in part:
        part["Content-Disposition"] = "attachment"
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=MIME_POLICY).flatten(
        part, unixfrom=False, linesep="\r\n")
    return out.getvalue()


def _head(message):
    lines = [_ADDRESSES.get(("From", *_parts(message.sender)), _address_line),
             fold_address("To", message.to).folded.encode("ascii")]
    if message.reply_to and message.reply_to != message.sender:
        lines.append(_ADDRESSES.get(("Reply-To", *_parts(message.reply_to)), _address_line))
    lines.append(_SUBJECTS.get(message.subject,
                               lambda s: fold_text("Subject", s).folded.encode("ascii")))
    lines.append(_DATES.get((message.date, message.date.utcoffset()), _date_line))
    lines.append(_verbatim("Message-ID", message.message_id))
    for name, value in message.headers.items():
        if name.lower() in _VERBATIM:
            lines.append(_verbatim(name, value))
        else:
            lines.append(_HEADERS.get((name, value), lambda key: _fold_package(*key)))
    return lines


def _parts(address):
    return address.display_name, address.username, address.domain


def message_bytes(message):
    """The message as it is sent, CR LF line ends; HeaderInjection (nothing written) when
    the header block fails the last guard."""
    if any(name.lower() in _OURS for name in message.headers):
        raw = _package_bytes(message)
        head = raw.partition(b"\r\n\r\n")[0]
    else:
        lines = _head(message)
        mid = message.message_id
        alternative = boundary(mid, "alternative").encode("ascii")
        body = [b"--", alternative, CRLF, _TEXT_PART, _body(message, message.text, 1),
                b"\r\n--", alternative, CRLF, _HTML_PART, _body(message, message.html, 0),
                b"\r\n--", alternative, b"--\r\n"]
        inner = b'Content-Type: multipart/alternative;\r\n boundary="%s"\r\n' % alternative
        if message.attachments:
            mixed = boundary(mid, "mixed").encode("ascii")
            lines.append(b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="%s"\r\n'
                         % mixed)
            body = [b"--", mixed, CRLF, inner, CRLF, *body]
            for item in message.attachments:
                key = (item.filename, item.content_type, item.data)
                body += [b"\r\n--", mixed, CRLF, _ATTACHMENTS.get(key, _attachment)]
            body += [b"\r\n--", mixed, b"--\r\n"]
        else:
            lines += [b"MIME-Version: 1.0\r\n", inner]
        head = b"".join(lines)[:-2]
        raw = b"".join([head, b"\r\n\r\n", *body])
    check_header_block(head, to=message.to.addr_spec, extra=message.headers)
    return raw


def _body(message, text, which):
    """A part's quoted-printable body: encoded already when the message came with it
    (``encoded_bodies``, from rendering once) for this very text, else encoded here."""
    given = message.encoded_bodies
    encoded = given.body(which, text) if given is not None else None
    return encoded if encoded is not None else _LINES.encode(text)


def _package_bytes(message):
    return message._build().as_bytes()
