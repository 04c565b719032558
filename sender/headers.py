"""Header lines written by us, and the last check on the header block we send.

From, To, Reply-To and Subject are encoded and folded here and handed to the ``email``
package as finished lines (``Written``): it stores them as they are and never parses them,
so it never decodes an RFC 2047 encoded word in them. Before Python 3.11.10 / 3.12.5
(CVE-2024-6923) it could decode ``=?utf-8?q?Bob=0D=0ABcc:...?=`` in a name and write the
CR LF back raw, as a new header line.

Plain text is written as it is when it is printable ASCII made of words that fit on a line;
anything else becomes UTF-8 encoded words (RFC 2047) of at most 75 characters, cut
between characters (never inside one), one per folded line of at most 78.
"""

from __future__ import annotations

import base64
import re

from .errors import HeaderInjection, InvalidInput

LINE_LENGTH = 78        # RFC 5322: lines SHOULD be at most 78 characters
WORD_LENGTH = 75        # RFC 2047: an encoded word is at most 75 characters
_WORD_OVERHEAD = len("=?utf-8?q??=")

# What str.splitlines() splits on: each of these can end a header line somewhere.
_LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# C0 controls (tab included), DEL, C1 controls, the line and paragraph separators, and '=?'.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Lone surrogates (JSON can carry them; no encoding can store them) and noncharacters.
_NOT_TEXT = re.compile("[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
# Every character that may not go into a header, as one class (a scan without alternatives
# runs at twice the speed of one with '=?' as another branch: that is looked for apart).
_NOT_IN_HEADERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufdd0-\ufdef"
                             r"\ufffe\uffff]")


def header_problem(text):
    """Why ``text`` may not go into an email header, or None when it may."""
    if _NOT_IN_HEADERS.search(text) is None and "=?" not in text:     # the usual case
        return None
    if any(c in text for c in _LINE_BREAKS):
        return "contains a line break, which could inject headers"
    if _NOT_TEXT.search(text):
        return "is not valid text (it holds a lone surrogate or a noncharacter)"
    control = _CONTROL.search(text)
    if control:
        return (f"contains a control character (U+{ord(control.group()):04X}), which is not "
                "allowed in email headers")
    return "contains '=?', which mail software reads as the start of an encoded word"


# A subject, preheader or title as a file writes it (before templating): longer than this is
# a mistake, never a subject anyone reads.
LONGEST_HEADER_TEXT = 300


def header_text_problem(text):
    """Why a subject, preheader or title written in a campaign or broadcast file can never go
    into a header (a line break, a control character, '=?', or far too long), or None."""
    if len(text) > LONGEST_HEADER_TEXT:
        return f"is {len(text):,} characters long; write at most {LONGEST_HEADER_TEXT} characters"
    return header_problem(text)


# --- writing ---------------------------------------------------------------------------------
class Written(str):
    """A header line we encoded and folded ourselves. Having a ``name``, it is stored by
    the ``email`` package as it is and written with ``fold()``; as a string it is the
    readable value."""

    defects = ()

    def __new__(cls, name, text, folded):
        header = super().__new__(cls, text)
        header.name, header.folded = name, folded
        return header

    def fold(self, *, policy):
        return self.folded.replace("\r\n", policy.linesep)


_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")     # RFC 5322 atext
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
# Bytes a Q-encoded word may carry as they are in any header (RFC 2047 5(3)); the rest are =XX.
_Q_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


def _q_length(data):
    return sum(1 if b in _Q_PLAIN or b == 0x20 else 3 for b in data)


def _q(data):
    return "".join(chr(b) if b in _Q_PLAIN else "_" if b == 0x20 else f"={b:02X}" for b in data)


def _b_length(size):
    return 4 * -(-size // 3)


def encoded_words(text, first=WORD_LENGTH):
    """``text`` as UTF-8 encoded words: each at most 75 characters (the first at most
    ``first``), each holding whole characters. Q or B, whichever is shorter for ``text``."""
    data = text.encode()
    use_q = _q_length(data) <= _b_length(len(data))
    room = min(first, WORD_LENGTH) - _WORD_OVERHEAD
    words, chunk = [], bytearray()
    cost = 0                            # the Q length of chunk (B's follows from its size)
    for char in text:
        piece = char.encode()
        if chunk:
            grown = cost + _q_length(piece) if use_q else _b_length(len(chunk) + len(piece))
            if grown > room:
                words.append(_word(chunk, use_q))
                chunk, cost, room = bytearray(), 0, WORD_LENGTH - _WORD_OVERHEAD
        chunk += piece
        cost += _q_length(piece) if use_q else 0
    if chunk:
        words.append(_word(chunk, use_q))
    return words


def _word(data, use_q):
    data = bytes(data)
    return f"=?utf-8?q?{_q(data)}?=" if use_q else f"=?utf-8?b?{base64.b64encode(data).decode()}?="


def _fold(name, tokens):
    """``Name: token token ...``, folded before a token wherever the line would pass 78
    characters (a token longer than a line gets a line of its own)."""
    lines, empty = [f"{name}:"], True          # empty: no token on the current line yet
    for token in tokens:
        if token and not empty and len(lines[-1]) + 1 + len(token) > LINE_LENGTH:
            lines.append("")
        lines[-1] += " " + token
        empty = empty and not token
    return "\r\n".join(lines) + "\r\n"


def _short(folded):
    return all(len(line) <= LINE_LENGTH for line in folded.split("\r\n"))


def fold_text(name, text):
    """An unstructured header (Subject) with ``text`` as its value."""
    if _PRINTABLE.fullmatch(text) and "=?" not in text:
        folded = _fold(name, text.split(" "))
        if _short(folded):
            return Written(name, text, folded)
    words = encoded_words(text, LINE_LENGTH - len(name) - 2) if text else []
    return Written(name, text, _fold(name, words))


def fold_address(name, address):
    """An address header (From, To, Reply-To) for one ``Address``; its display name is
    written as text, encoded unless it is plain words."""
    spec, display = _ascii_spec(address), address.display_name
    if not display:
        return Written(name, spec, _fold(name, [spec]))
    words = display.split(" ")
    if not (all(_ATOM.fullmatch(w) for w in words) and "=?" not in display
            and _short(_fold(name, words))):
        words = encoded_words(display, LINE_LENGTH - len(name) - 2)
    return Written(name, str(address), _fold(name, [*words, f"<{spec}>"]))


def _ascii_spec(address):
    """The address as headers carry it: a non-ASCII domain in punycode."""
    spec = address.addr_spec
    if spec.isascii():
        return spec
    try:
        domain = address.domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    if not domain or not address.username.isascii():
        raise InvalidInput(f"{spec!r} cannot be written in an email header: use an address "
                           "with an ASCII part before the @ and a valid domain")
    return f"{address.username}@{domain}"


# --- the last guard --------------------------------------------------------------------------
OUR_HEADERS = frozenset({
    "from", "to", "reply-to", "subject", "date", "message-id", "mime-version", "content-type",
    "content-transfer-encoding", "list-unsubscribe", "list-unsubscribe-post", "list-id",
    "feedback-id"})
REQUIRED = ("from", "to", "subject", "date", "message-id", "mime-version", "content-type")
_FIELD_NAME = re.compile(rb"[!-9;-~]+")             # RFC 5322 ftext
_UNSAFE = re.compile(rb"[^\t\x20-\x7e]")             # all but printable 7-bit text and tab
# To as we write it: an address alone, or words (atoms, encoded words) and <address>. Atoms
# hold no '<', '>', ',', '@', ':', ';' or quote, so the angle brackets hold the one address.
_WORD = rb"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_TO = re.compile(rb"[ \t]*(?:(?:" + _WORD + rb"[ \t]+)+<(?P<named>[^<>\s]+)>|(?P<bare>[^<>\s]+))[ \t]*")


def check_header_block(head, *, to, extra=()):
    """The last check before a message leaves, on its serialised header block (the bytes
    before the blank line): printable 7-bit text with CR LF only between lines; only the
    header names we set (OUR_HEADERS and ``extra``), each once, and none missing; no Bcc
    or Cc; exactly one To address, and it is ``to``. Raises HeaderInjection otherwise."""

    def refuse(why):
        raise HeaderInjection(f"refused to send the message for {to}: {why}; nothing was sent",
                              reason=why)

    fields = {}
    name = None
    for line in head.split(b"\r\n"):
        bad = _UNSAFE.search(line)
        if bad:
            char = bad.group()
            refuse("its header block has a bare CR or LF" if char in b"\r\n"
                   else f"its header block has the byte {char!r}")
        if line[:1] in (b" ", b"\t") and name is not None:
            fields[name][-1] += line
            continue
        field, colon, value = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(field):
            refuse(f"a line of its header block is not a header: {line[:40]!r}")
        name = field.decode().lower()
        fields.setdefault(name, []).append(value)
    allowed = OUR_HEADERS | {n.lower() for n in extra}
    for name, values in fields.items():
        if name in ("bcc", "cc") or name not in allowed:
            refuse(f"it has a {name.title()} header, which we never set")
        if len(values) > 1:
            refuse(f"it has {len(values)} {name.title()} headers")
    for name in REQUIRED:
        if name not in fields:
            refuse(f"it has no {name.title()} header")
    found = _TO.fullmatch(fields["to"][0])
    if not found or (found["named"] or found["bare"]).decode().lower() != to.lower():
        refuse(f"its To header is not exactly {to}: {fields['to'][0][:80]!r}")
