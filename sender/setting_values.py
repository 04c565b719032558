"""How a setting's text becomes its value: the parsers the settings table names (a
``Setting``'s ``parse=``).

Each takes the text and returns the value, or raises InvalidInput (or ValueError) saying what
is wrong, with an example; ``Setting.value_of`` adds the setting's name and how to set it.
Time zones, send windows, durations and host lists are parsed by ``schedule.py`` and
``safeurl.py``, which the table names directly.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlparse

from .errors import InvalidInput
from .headers import header_problem
from .schedule import parse_duration


def path(value):
    """A file or folder."""
    return Path(value)


def choice(options):
    def parse(value):
        if value not in options:
            raise InvalidInput(f"{value!r} is not one of {', '.join(options)}")
        return value

    return parse


def database(value):
    """DRIP_DATABASE: a SQLite file (a path, or sqlite://PATH) or a postgresql:// URL."""
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in ("", "sqlite", "postgresql", "postgres"):
        raise InvalidInput(f"unsupported database URL scheme {scheme!r}; use a file path for "
                           "SQLite (e.g. drip.db) or postgresql://user@host/dbname")
    return value


def address(value):
    if any(c in value for c in "\r\n"):
        raise InvalidInput("must be on one line")
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise InvalidInput(f"{value!r} is not an email address, e.g. Coach <coach@example.com>")
    problem = header_problem(value)
    if problem:
        raise InvalidInput(f"{value!r} {problem}; write the name as plain text, e.g. "
                           "Zoë Coach <coach@example.com>")
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def url(value):
    """The public base URL: https (http only on this machine), without a trailing slash."""
    parsed = urlparse(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise InvalidInput(f"{value!r} is not a URL, e.g. https://mail.example.com")
    if parsed.scheme == "http" and parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise InvalidInput(f"{value!r} must use https:// (one-click unsubscribe needs HTTPS)")
    return value.rstrip("/")


def api_url(value):
    """A provider's API base URL: http(s) and a host."""
    try:
        parsed = urlparse(value)
        good = parsed.scheme in ("https", "http") and bool(parsed.hostname)
    except ValueError:
        good = False
    if not good or any(c.isspace() for c in value):
        raise InvalidInput(f"{value!r} is not an http(s) URL with a host, e.g. "
                           "https://api.example.com")
    return value


_URL_CHARS = re.compile(r"[!#$%&*+,./0-9:;=?@A-Z_a-z~-]+")   # no quotes, brackets, spaces


def https_url(value):
    """An https URL safe to put in a page's HTML and CSS as it is, or "" for none."""
    text = str(value)
    parsed = urlparse(text)
    if text and (parsed.scheme != "https" or not parsed.netloc or not _URL_CHARS.fullmatch(text)):
        raise InvalidInput(f"{value!r} is not an https:// URL (no spaces, quotes or brackets), "
                           "e.g. https://coach.example.com/logo.png")
    return text


_COLOUR = re.compile(r"#(?:[0-9a-f]{3}|[0-9a-f]{6})")
_FONT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{0,79}")


def colour(value):
    text = str(value).lower()
    if not _COLOUR.fullmatch(text):
        raise InvalidInput(f"{value!r} is not a colour: write #rgb or #rrggbb, e.g. #8a4a36")
    return text


def font(value):
    text = str(value)
    if text and not _FONT.fullmatch(text):
        raise InvalidInput(f"{value!r} is not a font name: letters, digits, spaces and hyphens "
                           "only, up to 80 characters, one font (e.g. Georgia)")
    return text


def session_timeout(value):
    duration = parse_duration(value)
    if not timedelta(minutes=1) <= duration <= timedelta(hours=12):
        raise InvalidInput(f"{value!r} must be between 1m and 12h, e.g. 30m")
    return duration


def positive_number(value, unit="seconds", example="30 or 2.5"):
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of {unit}, e.g. {example}") from None
    if not number > 0:
        raise ValueError(f"{value!r} must be a number of {unit} above 0")
    return number


def rate(value):
    return positive_number(value, "requests per second", "5 or 0.5")


def positive_int(value, least=1, most=None):
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number; write one such as 5") from None
    if number < least:
        raise ValueError(f"{value!r} must be {least} or more")
    if most is not None and number > most:
        raise ValueError(f"{value!r} must be {most} or less")
    return number


def positive_duration(value):
    """A duration above nothing, such as "14d" or "36h"."""
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError(f"{value!r} must be longer than nothing, e.g. 14d")
    return duration


def count(value):
    """A whole number of 0 or more."""
    return positive_int(value, least=0)


def port(value):
    """A TCP port, 1 to 65535."""
    return positive_int(value, least=1, most=65535)


def one_line(value):
    """Plain text on one line: no line break or other control character."""
    if any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in str(value)):
        raise InvalidInput("write it on one line, as plain text (no line breaks or other "
                           "control characters)")
    return value


def no_line_break(value):
    """Text without a line break (it goes into a one-line footer)."""
    if any(c in value for c in "\r\n"):
        raise InvalidInput("write it on one line")
    return value


def secret_key(value):
    """The signing secret (never quoted back)."""
    if len(value) < 32:
        raise InvalidInput("too short: use at least 32 random characters (`drip init` writes "
                           "one)")
    return value


_DNS_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?"
                       r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*")


def dns_name(value):
    """A DNS name such as _spf.google.com (lowercased), or "" for none."""
    name = str(value or "").strip().lower().rstrip(".")
    if name and not _DNS_NAME.fullmatch(name):
        raise InvalidInput(f"{value!r} is not a DNS name (write e.g. _spf.google.com, without "
                           "spaces, a scheme or a path)")
    return name


def dns_names(value):
    """'s1, s2' -> ['s1', 's2']: DKIM selectors, each a DNS name."""
    return [dns_name(item) for item in str(value or "").split(",") if item.strip()]


def percent(value):
    """'0.1%' (or '0.1') -> 0.001."""
    text = str(value).strip().removesuffix("%").strip()
    try:
        number = float(text)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a percentage, e.g. 0.1%") from None
    if not 0 < number <= 100:
        raise InvalidInput(f"{value!r} must be above 0% and at most 100%")
    return number / 100


def boolean(value):
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise InvalidInput(f"{value!r} is not true or false")
