"""The outgoing message: addresses, headers and parts, ready for any provider.

Providers with a JSON API read the fields; the outbox and SMTP send ``as_bytes()``, written
directly (``mime_writer``); ``to_mime()`` gives the same message as an EmailMessage. Three
layers keep a header from being injected:

- every value bound for a header is checked when the message is made (``header_problem``:
  no line break or other control character, and no ``=?``, the opener of an RFC 2047
  encoded word, which mail software decodes);
- From, To, Reply-To and Subject are encoded and folded by us (``headers.py``) and handed
  to the ``email`` package as finished lines, so it never parses or decodes them (before
  3.11.10 / 3.12.5 it could write a decoded CR LF back raw: CVE-2024-6923);
- the serialised header block is checked before it leaves (``check_header_block``); the
  outbox and SMTP turn a refusal into a failed delivery, and nothing is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from . import mime_writer
from .errors import HeaderInjection, InvalidInput
from .headers import check_header_block, fold_address, fold_text, header_problem
from .mime_writer import MIME_POLICY, VerbatimHeader  # noqa: F401  (the policy, as before)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]{2,}")


def check_header_value(name, value):
    """Refuse a value bound for a header that holds a line break or any other control
    character, or '=?' (see ``header_problem``); HeaderInjection names it and says why."""
    if value is not None:
        text = str(value)
        problem = header_problem(text)
        if problem:
            raise HeaderInjection(f"{name} {problem}: {text[:60]!r}", reason=problem)
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
    check_header_value("email address", email)
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
    attempt: int = 0        # the delivery's hand-offs so far: a new one gets a new request key
    stream: str = "marketing"      # or "transactional" (identity.py): the provider's stream
    # The quoted-printable bodies when rendering once can make them (``step_render.
    # EncodedBodies``, each encoded when first asked for); used by ``as_bytes`` only while html
    # and text are the very strings rendered.
    encoded_bodies: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        # JSON-API providers read these fields and build the headers themselves: each value
        # gets the same check as the text a subscriber types. All of them clean (the usual
        # case) is one scan of them joined by spaces (a space neither makes nor hides a
        # problem); otherwise each is checked, and the first with a problem named.
        texts = [self.subject, self.message_id, self.tag]
        for value in (self.sender, self.reply_to, self.to):
            if value:
                # The address's parts: ``addr_spec`` joins them, quoting the local part when
                # it needs it (which adds only '"' and '\\'), and takes longer to make.
                texts += (value.display_name, value.username, value.domain)
        for pair in (*self.headers.items(), *self.metadata.items()):
            texts += pair
        if header_problem(" ".join(map(str, texts))) is None:
            return
        check_header_value("Subject", self.subject)
        check_header_value("Message-ID", self.message_id)
        for label, value in (("From", self.sender), ("Reply-To", self.reply_to), ("To", self.to)):
            if value:
                check_header_value(f"the {label} name", value.display_name)
                check_header_value(f"the {label} address", value.addr_spec)
        for name, value in self.headers.items():
            check_header_value(name, name)
            check_header_value(name, value)
        check_header_value("tag", self.tag)
        for key, value in self.metadata.items():
            check_header_value("metadata", key)
            check_header_value(f"metadata {key}", value)

    def to_mime(self):
        """A standard ``multipart/alternative`` EmailMessage: text first, then HTML; its
        headers pass the last guard (``check_header_block``). Its boundaries come from the
        Message-ID (``mime_writer.boundary``): it serialises to the bytes of ``as_bytes``."""
        msg = self._build()
        head = b"".join(msg.policy.fold_binary(n, v) for n, v in msg.raw_items())
        self._guard(head.removesuffix(b"\r\n"))
        return msg

    def as_bytes(self):
        """The message as it is sent (CR LF line ends), after the last guard: the bytes
        ``to_mime().as_bytes()`` gives, written directly (``mime_writer``)."""
        return mime_writer.message_bytes(self)

    def _guard(self, head):
        check_header_block(head, to=self.to.addr_spec, extra=self.headers)

    def _build(self):
        msg = EmailMessage(policy=MIME_POLICY)
        msg["From"] = fold_address("From", self.sender)
        msg["To"] = fold_address("To", self.to)
        if self.reply_to and self.reply_to != self.sender:
            msg["Reply-To"] = fold_address("Reply-To", self.reply_to)
        msg["Subject"] = fold_text("Subject", self.subject)
        msg["Date"] = format_datetime(self.date)
        msg["Message-ID"] = self.message_id
        for name, value in self.headers.items():
            msg[name] = value
        msg.set_content(self.text, subtype="plain", cte="quoted-printable")
        msg.add_alternative(self.html, subtype="html", cte="quoted-printable")
        alternative = msg
        if self.attachments:
            msg.make_mixed()
            for item in self.attachments:
                maintype, subtype = item.content_type.split("/", 1)
                msg.add_attachment(item.data, maintype=maintype, subtype=subtype,
                                   filename=item.filename)
            msg.set_boundary(mime_writer.boundary(self.message_id, "mixed"))
            alternative = msg.get_payload()[0]
        alternative.set_boundary(mime_writer.boundary(self.message_id, "alternative"))
        return msg
