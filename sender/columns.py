"""What each column of an imported CSV file is, from its header.

drip's own export and the usual exports of Kit, Mailchimp, MailerLite and Substack are
recognised without ``--map``. ``map_columns`` gives one target per column:

- ``email``, ``name``, ``first_name``, ``last_name`` (first and last are joined into the
  name), ``timezone``, ``tags``, ``signed_up`` (the signup time), ``status``, ``skip``, or
  ``("field", key)`` for a custom field: these can also be asked for with ``--map``;
- ``signed_up_fallback``: another signup time, used when the signup column is empty
  (Mailchimp's CONFIRM_TIME when OPTIN_TIME is blank);
- targets read by what the cell holds (``resolve``): ``state`` (a status word is a status,
  anything else, such as a region, stays a field), ``subscribed`` (yes/no is a status, a
  date a signup time), ``email_disabled`` (Substack: true means they turned emails off);
- ``unsubscribed`` and ``cleaned``: the column only exists in Mailchimp's export of people
  who unsubscribed or bounced, so every row of such a file is unsubscribed or cleaned.

A status that is not an active one keeps the person out of the import: nobody who
unsubscribed, bounced or complained becomes active here.
"""

from __future__ import annotations

import csv
import re
import unicodedata

from . import joining
from .errors import DripError, InvalidInput


class ImportFailed(DripError):
    """The file cannot be imported at all (no email column, wrong encoding, ...)."""


# Header (normalised by _norm) -> target.
_ALIASES = {
    "email": {"email", "e mail", "email address", "mail", "e mail address"},
    "name": {"name", "full name"},
    "first_name": {"first name", "firstname", "fname", "given name"},
    "last_name": {"last name", "lastname", "lname", "surname", "family name"},
    "timezone": {"timezone", "time zone", "tz"},
    "tags": {"tags", "tag"},
    "status": {"status"},
    "state": {"state"},
    "subscribed": {"subscribed"},
    "email_disabled": {"email disabled"},
    "unsubscribed": {"unsub time"},
    "cleaned": {"clean time"},
}
# Signup times, best first: the first one present is the signup column, the others fill in
# when it is empty.
SIGNUP_COLUMNS = ("signed up", "signup date", "signup time", "subscribed at", "optin time",
                  "joined", "created at", "confirm time")
# Used for tags only when the file has no tags column (MailerLite has groups, not tags).
_TAGS_OTHERWISE = {"groups"}
# Columns drip sets itself (they appear in an export); an import does not take them over.
IGNORED_COLUMNS = {"uid", "id", "consent source", "consent at", "consent text", "consent ip",
                   "confirmed at", "withdrawn at", "paused at", "updated at"}
# Targets --map accepts by name.
MAP_TARGETS = {"email", "name", "first_name", "last_name", "timezone", "tags", "signed_up",
               "status", "skip"}
ACTIVE_WORDS = {"", "active", "subscribed", "confirmed", "cold"}
# Words a platform uses for a subscriber's status (Kit: active, cold, inactive, cancelled,
# bounced, complained; Mailchimp: subscribed, unsubscribed, cleaned, pending,
# transactional; MailerLite: active, unsubscribed, unconfirmed, bounced, junk).
STATUS_WORDS = ACTIVE_WORDS - {""} | {
    "inactive", "cancelled", "canceled", "unsubscribed", "bounced", "complained", "cleaned",
    "pending", "unconfirmed", "transactional", "junk", "blocked", "spam", "archived"}
_BY_VALUE = BY_VALUE = {"state", "subscribed", "email_disabled", "unsubscribed", "cleaned"}
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TAG_SPLIT = re.compile(r"[,;|\s]+")
_TAG_LIST_SPLIT = re.compile(r"[,;|]")


def _norm(header):
    return " ".join(header.strip().lower().replace("_", " ").replace("-", " ").split())


def _field_key(header):
    """A column header as a field name: 'Due Date' -> 'due_date'."""
    return _norm(header).replace(" ", "_")


def _check_field_name(key, position, raw, *, asked):
    """The field a column becomes must have a name the form and `drip subscribers add`
    accept too (``joining.check_field_name``); ImportFailed names the column and the --map
    that would import it."""
    try:
        joining.check_field_name(key)
    except InvalidInput as exc:
        fix = repr(f"{raw.strip()}=field:{_suggested_name(key if asked else raw)}")
        where = f"--map for column {position} ({raw!r})" if asked else \
            f"column {position} ({raw!r})"
        raise ImportFailed(f"{where}: {exc}; name the field with --map {fix}, or leave the "
                           f"column out with --map {raw.strip() + '=skip'!r}") from None


def _suggested_name(header):
    """A field name that follows the rule, made from a header: 'Week #' -> 'week'."""
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    name = ""
    for word in re.findall(r"[a-z0-9]+", ascii_text.lower()):
        if len(name) + len(word) + 1 > joining.MAX_FIELD_NAME:
            break
        name = f"{name}_{word}" if name else word
    if not name[:1].isalpha():
        name = f"field_{name}".rstrip("_")[:joining.MAX_FIELD_NAME]
    return name


def reserved_headers():
    """Normalised headers an import reads as something other than a field."""
    return ({n for names in _ALIASES.values() for n in names} | set(SIGNUP_COLUMNS)
            | _TAGS_OTHERWISE | IGNORED_COLUMNS)


def parse_map(pairs):
    """['E-mail Address=email', 'Stage=field:stage', 'Notes=skip'] -> {'e mail address': ...}."""
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.rpartition("=")
        if not sep or not source.strip() or not target.strip():
            raise InvalidInput(f"--map {pair!r} must look like 'Column Header=target', e.g. "
                               "'E-mail Address=email'")
        mapping[_norm(source)] = target.strip()
    return mapping


def _asked(wanted):
    if wanted.startswith("field:"):
        return ("field", wanted[6:].strip())
    return wanted.lower() if wanted.lower() in MAP_TARGETS else ("field", wanted)


def _by_header(key, raw):
    if key.startswith("field:"):
        return ("field", _field_key(raw.strip()[6:]))
    if key in IGNORED_COLUMNS or not key:
        return "skip"
    if key in SIGNUP_COLUMNS:
        return "signed_up_fallback"     # settled in _settle
    return next((t for t, names in _ALIASES.items() if key in names),
                ("tags" if key in _TAGS_OTHERWISE else ("field", _field_key(raw))))


def _settle(targets, keys, header, asked):
    """Where several columns could be one thing: the best signup column is the signup time
    (one named with --map first), a full name beats a first name, tags beat groups."""
    if "signed_up" not in targets:
        ranked = sorted((SIGNUP_COLUMNS.index(keys[i]), i) for i, t in enumerate(targets)
                        if t == "signed_up_fallback" and i not in asked)
        if ranked:
            targets[ranked[0][1]] = "signed_up"
    for i, key in enumerate(keys):
        if i in asked:
            continue
        if targets[i] == "first_name" and "name" in targets:
            targets[i] = ("field", _field_key(header[i]))
        elif key in _TAGS_OTHERWISE and targets.count("tags") > 1:
            targets[i] = ("field", _field_key(header[i]))


def map_columns(header, mapping=None):
    """Decide what each column is: a list with one target per column (see the module
    docstring). ``mapping`` (from parse_map) overrides the header's meaning."""
    mapping = dict(mapping or {})
    keys = [_norm(raw) for raw in header]
    targets, asked = [], set()
    for position, (raw, key) in enumerate(zip(header, keys, strict=True)):
        if key in mapping:
            targets.append(_asked(mapping.pop(key)))
            asked.add(position)
        else:
            targets.append(_by_header(key, raw))
    _settle(targets, keys, header, asked)
    taken = {}
    for position, (raw, target) in enumerate(zip(header, targets, strict=True), start=1):
        if target in ("skip", "signed_up_fallback"):
            continue
        label = target if isinstance(target, str) else f"field {target[1]}"
        if isinstance(target, tuple) and not target[1]:
            raise ImportFailed(f"column {position} ({raw!r}) needs a field name")
        if isinstance(target, tuple):
            _check_field_name(target[1], position, raw, asked=position - 1 in asked)
        if label in taken:
            raise ImportFailed(f"columns {taken[label]} and {position} ({raw!r}) both map to "
                               f"{label}; use --map '{raw.strip()}=skip' or rename one")
        taken[label] = position
    if mapping:
        raise ImportFailed(f"--map names no column in the header: {', '.join(sorted(mapping))} "
                           f"(the columns are: {', '.join(h.strip() for h in header)})")
    if "email" not in targets:
        raise ImportFailed(f"no email column in the header ({', '.join(h.strip() for h in header)}); "
                           "name one with --map, e.g. --map 'E-mail Address=email'")
    return targets


def resolve(target, value, header):
    """The target and value of one cell, for the targets whose meaning depends on what the
    cell holds; other targets come back as they are."""
    if target not in _BY_VALUE:
        return target, value
    word = value.lower()
    if target == "state":
        return ("status", value) if word in STATUS_WORDS else (("field", _field_key(header)), value)
    if target == "subscribed":
        if word in _TRUE:
            return "skip", value
        if word in _FALSE:
            return "status", "unsubscribed"
        if word in STATUS_WORDS:
            return "status", value
        if _DATE.match(value):
            return "signed_up_fallback", value
        return ("field", _field_key(header)), value
    if target == "email_disabled":
        if word in _TRUE:
            return "status", "unsubscribed"
        if word in _FALSE or not word:
            return "skip", value
        return ("field", _field_key(header)), value
    if target in ("unsubscribed", "cleaned"):
        return "status", target
    return target, value


def split_tags(value):
    """Tags from one cell. A quoted list ("Tag A","Tag B", as Mailchimp writes it) or a
    comma-separated one (Kit, MailerLite) keeps each tag whole, spaces becoming '-'
    ('Core Rehab' -> 'Core-Rehab'); without commas or quotes, spaces separate tags too
    (drip's own export)."""
    if '"' in value:
        try:
            pieces = next(csv.reader([value], skipinitialspace=True), [])
        except csv.Error:
            pieces = _TAG_LIST_SPLIT.split(value.replace('"', ""))
    elif "," in value:
        pieces = _TAG_LIST_SPLIT.split(value)
    else:
        return [t for t in _TAG_SPLIT.split(value) if t]
    return ["-".join(p.replace(",", " ").split()) for p in pieces if p.strip()]


def full_name(name, first, last):
    """The name to keep: a full name column, else first and last name joined."""
    given = name or first
    if last and (given.casefold() == last.casefold()
                 or given.casefold().endswith(" " + last.casefold())):
        return given
    return " ".join(p for p in (given, last) if p)


_MEANING = {
    "email": "email", "name": "name", "first_name": "name (first part)",
    "last_name": "name (last part)", "timezone": "time zone", "tags": "tags",
    "signed_up": "signup time", "status": "status (only active people are imported)",
    "skip": "skipped",
    "state": "status if it is a status word (active, cancelled, bounced, ...), else field {key}",
    "subscribed": "status if yes/no, signup time if a date, else field {key}",
    "email_disabled": "status unsubscribed where it is true",
    "unsubscribed": "status unsubscribed: a list of people who unsubscribed; none is imported",
    "cleaned": "status cleaned: a list of addresses that bounced; none is imported",
}


def describe(columns):
    """[(header, what it becomes)] for a report's ``columns`` ({header: target code})."""
    primary = next((h for h, code in columns.items() if code == "signed_up"), None)
    described = []
    for header, code in columns.items():
        if code.startswith("field:"):
            text = f"field {code[6:]}"
        elif code == "signed_up_fallback":
            text = f"signup time when {primary} is empty" if primary else "signup time"
        else:
            text = _MEANING.get(code, code).format(key=_field_key(header))
        described.append((header, text))
    return described
