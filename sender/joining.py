"""Who may join the list, and with what details: one set of rules for the signup form,
`drip subscribers add` and a CSV import.

A person's details (address, name, time zone, fields, tags) are checked by
``check_details`` with the same limits however they arrive; the rule for text itself is
``check_text``. The CLI and an import show its messages, which name the value;
the form (``read_signup``) words the same refusals for the person filling it in, without
repeating what she typed, and adds its own rules: the consent box is ticked, the form's
source is a plain word, at most ``MAX_FORM_FIELDS`` extra fields. What a signup then does
to the address is ``subscribers.sign_up``; ``subscribers.add_subscriber`` applies these
rules too, so no way in skips them. This module reads nothing and writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from .errors import HeaderInjection, InvalidInput
from .message import check_header_value, normalize_email
from .schedule import zone

MAX_NAME_LENGTH = 200           # characters in a name
MAX_FIELD_LENGTH = 1000         # characters in one field's value
MAX_FIELD_NAME = 40             # characters in a field's name
FIELD_NAME = re.compile(rf"[A-Za-z][A-Za-z0-9_-]{{0,{MAX_FIELD_NAME - 1}}}")
MAX_FORM_FIELDS = 10            # extra fields one form signup may carry
FORM_KEYS = ("email", "name", "consent", "source", "timezone")
SOURCE = re.compile(r"[A-Za-z0-9_./:-]{1,100}")
TICKED = {"on", "yes", "true", "1", "checked", "y"}
# The stage fields the shipped campaigns read (``campaigns/*.toml``): ``stage`` is one of
# STAGES (any case, stored lowercase); ``due_date`` and ``birth_date`` are dates written
# YYYY-MM-DD, within sensible bounds of the moment they are given (``now``). A blank value
# means "not given".
STAGES = ("pregnant", "postpartum")
DATE_FIELDS = ("due_date", "birth_date")
STAGE_FIELDS = ("stage", *DATE_FIELDS)
DUE_AHEAD = timedelta(days=305)           # about ten months: a due date further ahead is a typo
DUE_BEHIND = timedelta(days=366)          # a due date more than a year ago: give the birth date
BIRTH_BEHIND_YEARS = 20                   # a birth date decades ago is a typo in the year
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Fast paths (an import checks millions of values): a value these match passes the full
# rules below unchanged, so it is accepted without them; any other value takes the full
# rules, which decide and word the refusal.
# - a plain ASCII address: dot-separated atoms of letters, digits, _ + - before the @ (at
#   most 64 characters), then labels of up to 63 letters, digits and inner hyphens, the
#   last one letters only (normalize_email accepts it as it is, lowercased);
_PLAIN_ADDRESS = re.compile(
    r"(?=[^@]{1,64}@)[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
# - a tag with no white space (str.isspace, which \s matches in a str pattern) or comma.
_NOT_IN_TAG = re.compile(r"[\s,]")


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
def check_text(label, value):
    """The one rule for text a subscriber gives us (a name, a field, a tag), whichever way
    it comes. It may end up in a header (a subject can show the name), so a line break or
    any other control character (C0, DEL, C1, U+2028, U+2029) is refused, and so is '=?',
    which opens an RFC 2047 encoded word. Raises HeaderInjection (an InvalidInput) saying
    which and why."""
    # Printable text holds no control character, line or paragraph separator, surrogate or
    # noncharacter (all are non-printable); without '=?' too it passes as it is.
    if type(value) is str and value.isprintable() and "=?" not in value:
        return value
    return check_header_value(label, value)


def check_address(text):
    """The address trimmed and lowercased; InvalidInput says why it is not one."""
    if type(text) is str and len(text) <= 254 and _PLAIN_ADDRESS.fullmatch(text):
        return text.lower()
    try:
        return normalize_email(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}: a valid email address looks like name@example.com") from None


def check_field(key, value, *, now=None):
    """A field's value checked (``check_text``) and trimmed; at most MAX_FIELD_LENGTH
    characters. The stage fields (STAGE_FIELDS) are checked by ``check_stage_field`` too,
    their dates against ``now`` (the bounds are left out without it)."""
    check_text(f"field {key!r}", value)
    value = str(value).strip()
    if len(value) > MAX_FIELD_LENGTH:
        raise InvalidInput(f"field {key!r} is longer than {MAX_FIELD_LENGTH} characters")
    if key in STAGE_FIELDS and value:
        value = check_stage_field(key, value, now=now)
    return value


class FieldRuleError(InvalidInput):
    """A stage field's value breaks its rule: the message names the field and the value (for
    the CLI and an import); ``for_person`` says it to the person filling in the form."""

    def __init__(self, message, for_person):
        super().__init__(message)
        self.for_person = for_person


def parse_date(value):
    """A date written YYYY-MM-DD, or None for anything else (never raises: the schedule reads
    stored values with it, and a value stored before these rules counts as not given)."""
    if type(value) is not str or not _ISO_DATE.fullmatch(value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def check_stage_field(key, value, *, now=None):
    """``stage``, ``due_date`` or ``birth_date`` checked and cleaned (``value`` trimmed, not
    blank); FieldRuleError says what is wrong. A date is within bounds of ``now`` on any clock
    on earth: a birth date of "today" in Kiribati (UTC+14) is not in the future."""
    label = key.replace("_", " ")
    if key == "stage":
        if value.lower() not in STAGES:
            raise FieldRuleError(f"field 'stage' is {value[:40]!r}: it must be pregnant or "
                                 "postpartum (or left out)",
                                 "Please choose pregnant or postpartum, or leave it blank.")
        return value.lower()
    day = parse_date(value)
    if day is None:
        raise FieldRuleError(f"field {key!r} is {value[:40]!r}: write the date as YYYY-MM-DD, "
                             "e.g. 2026-06-01",
                             f"Please give the {label} as a date (year-month-day), or leave it "
                             "blank.")
    if now is None:
        return value
    latest = (now + timedelta(hours=14)).date()      # the date at UTC+14 ...
    earliest = (now - timedelta(hours=12)).date()    # ... and at UTC-12
    if key == "due_date" and day > latest + DUE_AHEAD:
        raise FieldRuleError(f"field 'due_date' is {value}, more than 10 months ahead: check the "
                             "year", "That due date is more than ten months away; please check "
                                     "the year.")
    if key == "due_date" and day < earliest - DUE_BEHIND:
        raise FieldRuleError(f"field 'due_date' is {value}, more than a year ago: check the year, "
                             "or give birth_date instead",
                             "That due date is more than a year ago; please check it, or give "
                             "the birth date instead.")
    if key == "birth_date" and day > latest:
        raise FieldRuleError(f"field 'birth_date' is {value}, in the future: check it, or give it "
                             "as due_date", "That birth date is in the future; please check it, "
                                            "or give it as your due date.")
    if key == "birth_date" and day < _years_before(earliest, BIRTH_BEHIND_YEARS):
        raise FieldRuleError(f"field 'birth_date' is {value}, more than {BIRTH_BEHIND_YEARS} years "
                             "ago: check the year",
                             "That birth date is more than 20 years ago; please check the year.")
    return value


def _years_before(day, years):
    """The same day ``years`` earlier (29 February: the 28th)."""
    return day.replace(year=day.year - years, day=min(day.day, 28) if day.month == 2 else day.day)


def check_stage_fields(fields, now):
    """The stage fields among ``fields`` (a dict of trimmed values) checked in place, each
    cleaned; for the import's quick path, which has trimmed the values already."""
    for key in STAGE_FIELDS:
        value = fields.get(key)
        if value:
            fields[key] = check_stage_field(key, value, now=now)
    return fields


def check_field_name(key):
    if not isinstance(key, str) or not FIELD_NAME.fullmatch(key):
        raise InvalidInput(f"field name {str(key)[:40]!r} is not allowed: a letter, then letters, "
                           "digits, _ or -, at most 40 characters (e.g. stage or due_date)")
    return key


def check_name(name):
    """A name with its spaces tidied (None: not given); at most MAX_NAME_LENGTH characters."""
    if name is None:
        return None
    check_text("name", name)
    name = " ".join(name.split())
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name is longer than {MAX_NAME_LENGTH} characters")
    return name


def check_tags(tags):
    """Tags, each one word without commas, in order and without repeats."""
    cleaned = []
    for tag in tags:
        check_text("tag", tag)
        tag = tag.strip()
        if not tag or _NOT_IN_TAG.search(tag):
            raise InvalidInput(f"tag {tag!r} must be one word without commas")
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


def check_timezone(name):
    """An IANA time zone name, or None when none was given."""
    name = (name or "").strip() or None
    if name is not None:
        zone(name)
    return name


def check_details(*, email=None, name=None, timezone=None, fields=None, tags=(), now=None):
    """Every detail given, checked in one go with the rules all ways in share; the first
    problem raises InvalidInput with the message the CLI and an import show (the dates of
    the stage fields against ``now``). Nothing is looked up: the answer is the same for an
    address on the list or not."""
    return Details(
        email=check_address(email) if email is not None else None,
        name=check_name(name),
        timezone=check_timezone(timezone),
        fields={check_field_name(key): check_field(key, value, now=now)
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
def read_signup(values, *, now=None):
    """A ``Signup`` from the fields a signup form sent (a dict of str, without the fields
    the web side keeps for itself); InvalidInput with the message to show the person. The
    dates of the stage fields are checked against ``now``.

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
        value = _worded(lambda v, key=key: check_field(key, v, now=now), value,
                        what=f"The field {key!r}",
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
    except FieldRuleError as exc:
        raise InvalidInput(exc.for_person) from None
    except HeaderInjection as exc:
        if what is None:
            raise InvalidInput(otherwise) from None
        raise InvalidInput(f"{what} {exc.reason}; please remove it.") from None
    except InvalidInput:
        raise InvalidInput(otherwise) from None


def consent_record(settings):
    """What the person agreed to, with the wording's version: '[v1] Yes, send me ...'."""
    return f"[v{settings.consent_version}] {settings.consent_text}"
