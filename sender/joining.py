"""Who may join the list, and with what details: one set of rules for the signup form,
`drip subscribers add` and a CSV import.

A person's details (address, name, time zone, fields, tags) are checked by
``check_details`` with the same limits however they arrive; the rule for text itself is
``subscribers.check_text``. The CLI and an import show its messages, which name the value;
the form (``read_signup``) words the same refusals for the person filling it in, without
repeating what she typed, and adds its own rules: the consent box is ticked, the form's
source is a plain word, at most ``MAX_FORM_FIELDS`` extra fields. ``sign_up`` then decides what the signup
does to the address, looked up once: a new address becomes pending, someone who
unsubscribed is asked to confirm again, a pending one may get the confirmation again, and
everyone else stays as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import subscribers
from .errors import DripError, HeaderInjection, InvalidInput
from .message import normalize_email
from .models import Consent
from .schedule import zone

MAX_FIELD_LENGTH = subscribers.MAX_FIELD_LENGTH   # characters in one field's value
MAX_FIELD_NAME = 40             # characters in a field's name
FIELD_NAME = re.compile(rf"[A-Za-z][A-Za-z0-9_-]{{0,{MAX_FIELD_NAME - 1}}}")
MAX_FORM_FIELDS = 10            # extra fields one form signup may carry
FORM_KEYS = ("email", "name", "consent", "source", "timezone")
SOURCE = re.compile(r"[A-Za-z0-9_./:-]{1,100}")
TICKED = {"on", "yes", "true", "1", "checked", "y"}
NO_CONFIRMATION = ("no confirmation campaign: add a campaign file with [entry] on = \"signup\", "
                   "or add the subscriber with --confirmed")


@dataclass(frozen=True)
class Details:
    """A person's details, checked and cleaned (None: not given)."""

    email: str | None = None
    name: str | None = None
    timezone: str | None = None
    fields: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)


@dataclass(frozen=True)
class Signup:
    """One signup from the form, checked: the address normalised, blank fields left out."""

    email: str
    name: str | None = None
    timezone: str | None = None
    source: str = "signup-form"
    fields: dict = field(default_factory=dict)


# --- a person's details, wherever they come from ------------------------------------------
check_text = subscribers.check_text   # any text a person gives: one line, no '=?' (headers)


def check_address(text):
    """The address trimmed and lowercased; InvalidInput says why it is not one."""
    try:
        return normalize_email(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}: a valid email address looks like name@example.com") from None


def check_field(key, value):
    """A field's value checked (``check_text``) and trimmed; at most MAX_FIELD_LENGTH
    characters."""
    check_text(f"field {key!r}", value)
    value = str(value).strip()
    if len(value) > MAX_FIELD_LENGTH:
        raise InvalidInput(f"field {key!r} is longer than {MAX_FIELD_LENGTH} characters")
    return value


def check_field_name(key):
    if not isinstance(key, str) or not FIELD_NAME.fullmatch(key):
        raise InvalidInput(f"field name {str(key)[:40]!r} is not allowed: a letter, then letters, "
                           "digits, _ or -, at most 40 characters (e.g. stage or due_date)")
    return key


def check_name(name):
    """A name with its spaces tidied (None: not given); at most 200 characters."""
    return subscribers._clean_name(name)


def check_tags(tags):
    """Tags, each one word without commas, in order and without repeats."""
    return subscribers._clean_tags(tags)


def check_timezone(name):
    """An IANA time zone name, or None when none was given."""
    name = (name or "").strip() or None
    if name is not None:
        zone(name)
    return name


def check_details(*, email=None, name=None, timezone=None, fields=None, tags=()):
    """Every detail given, checked in one go with the rules all ways in share; the first
    problem raises InvalidInput with the message the CLI and an import show.
    Nothing is looked up: the answer is the same for an address on the list or not."""
    return Details(
        email=check_address(email) if email is not None else None,
        name=check_name(name),
        timezone=check_timezone(timezone),
        fields={check_field_name(key): check_field(key, value)
                for key, value in (fields or {}).items()},
        tags=check_tags(tags))


def parse_fields(pairs):
    """['stage=postpartum', 'weeks=6'] -> {'stage': 'postpartum', 'weeks': '6'}; the values
    as given, for ``check_details`` to check before it trims them."""
    fields = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"field {pair!r} must look like key=value, e.g. stage=postpartum")
        fields[key] = value
    return fields


# --- a signup through the form --------------------------------------------------------------
def read_signup(values):
    """A ``Signup`` from the fields a signup form sent (a dict of str, without the fields
    the web side keeps for itself); InvalidInput with the message to show the person.

    The rules are ``check_details``'s, but the refusals are worded for the person filling
    in the form and never repeat what she typed (the CLI and an import name the value)."""
    email = _worded(check_address, values.get("email", ""),
                    otherwise="Please enter a valid email address.")
    if values.get("consent", "").strip().lower() not in TICKED:
        raise InvalidInput("Please tick the box to agree to receive the emails.")
    source = values.get("source", "").strip() or "signup-form"
    if not SOURCE.fullmatch(source):
        raise InvalidInput("The form's source field may hold letters, digits and ._/:- only.")
    extra = {key: value for key, value in values.items() if key not in FORM_KEYS}
    if len(extra) > MAX_FORM_FIELDS:
        raise InvalidInput(f"The form sent more than {MAX_FORM_FIELDS} extra fields.")
    name = _worded(check_name, values.get("name", ""), what="Your name",
                   otherwise="Please shorten your name to one line of up to 200 characters.")
    timezone = _worded(check_timezone, values.get("timezone"),
                       otherwise="We do not know that time zone. Please choose yours from the "
                                 "list, or 'Not sure'.")
    fields = {}
    for key, value in extra.items():
        _worded(check_field_name, key,
                otherwise="The form sent a field whose name is not allowed: field names are a "
                          "letter, then letters, digits, _ or - (at most 40 characters).")
        value = _worded(lambda v, key=key: check_field(key, v), value, what=f"The field {key!r}",
                        otherwise=f"The field {key!r} is too long (one line, up to "
                                  f"{MAX_FIELD_LENGTH} characters).")
        if value:
            fields[key] = value
    return Signup(email=email, name=name or None, timezone=timezone, source=source,
                  fields=fields)


def _worded(check, value, *, otherwise, what=None):
    """``check(value)``, with a refusal worded for the form: text that may not go into an
    email says ``what`` and why (``reason``: without the value), anything else ``otherwise``."""
    try:
        return check(value)
    except HeaderInjection as exc:
        if what is None:
            raise InvalidInput(otherwise) from None
        raise InvalidInput(f"{what} {exc.reason}; please remove it.") from None
    except InvalidInput:
        raise InvalidInput(otherwise) from None


def consent_record(settings):
    """What the person agreed to, with the wording's version: '[v1] Yes, send me ...'."""
    return f"[v{settings.consent_version}] {settings.consent_text}"


def sign_up(drip, signup, *, ip, now):
    """Store one signup from the form; returns the id of the subscriber whose confirmation
    is now due, or None. The address is looked up once.

    A new address (or one erased on request: the person signs up herself) becomes pending
    with its consent record. Someone who unsubscribed gets a fresh consent record and the
    confirmation, and on confirming continues where she stopped. A pending address keeps
    her name, fields and consent record, and may get the confirmation again (at most once
    an hour). Active and paused subscribers, and bounced or complained addresses, stay
    exactly as they are. A signup never changes an existing subscriber's name or fields:
    the person signing up may be a stranger. Every case runs in one write transaction and
    sends nothing, so the time taken does not tell the cases apart."""
    if drip.campaigns.confirmation is None:
        raise DripError(NO_CONFIRMATION)
    store = drip.store
    consent = Consent(source=f"form:{signup.source}", at=now, text=consent_record(drip.settings),
                      ip=ip)
    with store.transaction():
        person = store.get_subscriber(email=signup.email)
        if person is None:
            person = store.add_subscriber(
                signup.email, name=signup.name or "", timezone=signup.timezone, tags=[],
                fields=dict(signup.fields), status="pending", consent=consent, now=now)
        elif person.status == "unsubscribed":
            # Bounced and complained addresses never come back this way.
            person = store.update_subscriber(
                person.id, now=now, status="pending", consent_source=consent.source,
                consent_at=now, consent_text=consent.text, consent_ip=ip, confirmed_at=None)
        elif person.status != "pending":
            return None
        queued = subscribers.queue_confirmation(drip, person, now=now)
    return person.id if queued else None
