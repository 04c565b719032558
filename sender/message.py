"""The outgoing message: addresses, headers and parts, ready for any provider.

Providers with a JSON API read the fields; the outbox, SMTP and MIME-based APIs
use ``to_mime()``. Every value bound for a header is checked for CR and LF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime

from .errors import HeaderInjection, InvalidInput


class VerbatimHeader(UnstructuredHeader):
    """A header written exactly as given, on one line. The email package would turn a long
    URL with no space to fold at into RFC 2047 encoded words, which List-Unsubscribe must
    never be, and would fold a long Message-ID; RFC 5322 allows such a line up to 998
    characters."""

    def fold(self, *, policy):
        value = str(self)
        if not value.isascii() or len(self.name) + 2 + len(value) > 998:
            return super().fold(policy=policy)
        return f"{self.name}: {value}{policy.linesep}"


_HEADERS = HeaderRegistry()
for _name in ("list-unsubscribe", "message-id"):
    _HEADERS.map_to_type(_name, VerbatimHeader)
# Everything else folds at 78 characters, so encoded words stay within RFC 2047's 75.
MIME_POLICY = policy.SMTP.clone(header_factory=_HEADERS)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]{2,}")


def check_header_value(name, value):
    """Reject CR, LF (and other line breaks) in a value that reaches a header."""
    if value is not None and re.search(r"[\r\n\x0b\x0c\x85\u2028\u2029]", str(value)):
        raise HeaderInjection(f"{name} contains a line break, which could inject headers: "
                              f"{str(value)[:60]!r}")
    return value


def normalize_email(text):
    """Trim and lowercase an address; raise InvalidInput with the reason when it is not one."""
    raw = str(text)
    check_header_value("email address", raw)
    value = raw.strip()
    if not value:
        raise InvalidInput("email address is empty")
    if any(c.isspace() for c in value) or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{value!r} is not an email address (it contains spaces)")
    if value.count("@") != 1:
        raise InvalidInput(f"{value!r} is not an email address (it needs exactly one @)")
    local, domain = value.split("@")
    if not local.isascii():
        raise InvalidInput(f"{value!r}: non-ASCII before the @ is not supported by most providers")
    if len(local) > 64 or len(value) > 254:
        raise InvalidInput(f"{value!r} is too long to be an email address")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"{value!r}: {domain!r} is not a valid domain") from None
    value = f"{local}@{domain}".lower()
    if not _EMAIL.fullmatch(value) or ".." in value or local.startswith(".") \
            or local.endswith(".") or domain.startswith(("-", ".")):
        raise InvalidInput(f"{value!r} is not an email address")
    return value


def address(email, name=""):
    check_header_value("name", name)
    local, _, domain = email.rpartition("@")
    return Address(display_name=name or "", username=local, domain=domain)


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class OutgoingMessage:
    """One email to one person, as every provider needs it."""

    delivery_id: int | None
    message_id: str
    sender: Address
    reply_to: Address
    to: Address
    subject: str
    html: str
    text: str
    date: datetime
    headers: dict = field(default_factory=dict)
    tag: str = ""
    metadata: dict = field(default_factory=dict)
    attachments: list = field(default_factory=list)
    send_at: datetime | None = None

    def __post_init__(self):
        check_header_value("Subject", self.subject)
        check_header_value("Message-ID", self.message_id)
        for name, value in self.headers.items():
            check_header_value(name, name)
            check_header_value(name, value)

    def to_mime(self):
        """A standard ``multipart/alternative`` EmailMessage: text first, then HTML."""
        msg = EmailMessage(policy=MIME_POLICY)
        msg["From"] = self.sender
        msg["To"] = self.to
        if self.reply_to and self.reply_to != self.sender:
            msg["Reply-To"] = self.reply_to
        msg["Subject"] = self.subject
        msg["Date"] = format_datetime(self.date)
        msg["Message-ID"] = self.message_id
        for name, value in self.headers.items():
            msg[name] = value
        msg.set_content(self.text, subtype="plain", cte="quoted-printable")
        msg.add_alternative(self.html, subtype="html", cte="quoted-printable")
        if self.attachments:
            msg.make_mixed()
            for item in self.attachments:
                maintype, subtype = item.content_type.split("/", 1)
                msg.add_attachment(item.data, maintype=maintype, subtype=subtype,
                                   filename=item.filename)
        return msg

    def as_bytes(self):
        return self.to_mime().as_bytes()
