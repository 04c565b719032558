"""Reading a signup from a request: the fields, the honeypot, the consent, the limits.

Nothing here sends or stores; ``app.py`` does that through ``sender.subscribers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import HeaderInjection, InvalidInput
from ..message import normalize_email
from ..subscribers import check_text

HONEYPOT = "website"          # hidden from people; bots fill it in
RESERVED = {"email", "name", "consent", "source", "timezone", "redirect", HONEYPOT}
MAX_FIELDS = 10
MAX_FIELD_LENGTH = 500
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
SOURCE = re.compile(r"[A-Za-z0-9_./:-]{1,100}")
TICKED = {"on", "yes", "true", "1", "checked", "y"}
RATE_WINDOW_SECONDS = 3600


@dataclass
class Signup:
    email: str
    name: str | None = None
    timezone: str | None = None
    source: str = "signup-form"
    fields: dict = field(default_factory=dict)
    bot: bool = False


def _text(value):
    if isinstance(value, bool):
        return "true" if value else ""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise InvalidInput("every field must be text")
    return value


def read_signup(data):
    """A ``Signup`` from the submitted fields (a dict of str); raises InvalidInput with a
    message fit to show the person who filled in the form."""
    values = {str(k): _text(v) for k, v in data.items()}
    if values.get(HONEYPOT, "").strip():
        return Signup(email="", bot=True)
    try:
        email = normalize_email(values.get("email", ""))
    except InvalidInput:
        raise InvalidInput("Please enter a valid email address.") from None
    if values.get("consent", "").strip().lower() not in TICKED:
        raise InvalidInput("Please tick the box to agree to receive the emails.")
    _check(values.get("name", ""), "name", "Your name")
    name = values.get("name", "").strip() or None
    if name and len(name) > 200:
        raise InvalidInput("Please shorten your name to one line of up to 200 characters.")
    source = values.get("source", "").strip() or "signup-form"
    if not SOURCE.fullmatch(source):
        raise InvalidInput("The form's source field may hold letters, digits and ._/:- only.")
    extra = {k: v for k, v in values.items() if k not in RESERVED}
    if len(extra) > MAX_FIELDS:
        raise InvalidInput(f"The form sent more than {MAX_FIELDS} extra fields.")
    fields = {}
    for key, value in extra.items():
        if not FIELD_NAME.fullmatch(key):
            raise InvalidInput(f"The field name {key[:40]!r} is not allowed.")
        _check(value, f"field {key}", f"The field {key!r}")
        value = value.strip()
        if len(value) > MAX_FIELD_LENGTH:
            raise InvalidInput(f"The field {key!r} is too long (one line, up to "
                               f"{MAX_FIELD_LENGTH} characters).")
        if value:
            fields[key] = value
    return Signup(email=email, name=name, timezone=values.get("timezone", "").strip() or None,
                  source=source, fields=fields)


def _check(value, label, what):
    """subscribers.check_text, with its refusal worded for the person filling in the form."""
    try:
        check_text(label, value)
    except HeaderInjection as exc:
        raise InvalidInput(f"{what} {exc.reason}; please remove it.") from None


def consent_text(settings):
    """What the person agreed to, with the wording's version: '[v1] Yes, send me ...'."""
    return f"[v{settings.get('DRIP_CONSENT_VERSION')}] {settings.get('DRIP_CONSENT_TEXT')}"
