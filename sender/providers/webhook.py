"""What every provider's ``webhook.py`` shares: the two errors, the age and replay checks,
and small parsing helpers (``parse_time`` and ``shaped`` serve its ``suppressions.py`` too).
``sender/webhooks.py`` dispatches a request to the right one."""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import DripError

# How far a signed timestamp may be from our clock, either way. A captured request is
# refused once it is older than this, and within it a provider's one-time token is
# accepted once (see ``remember``); a few minutes leaves room for clock drift and for the
# provider's own queueing.
MAX_AGE_SECONDS = 5 * 60
# How long a used token is remembered: longer than its signed timestamp stays acceptable
# (a request may arrive MAX_AGE early and be replayed until MAX_AGE late), with a margin.
TOKEN_KEEP_SECONDS = 3 * MAX_AGE_SECONDS


class Unverified(DripError):
    """The request could not be shown to come from the provider (answered with 401)."""


class BadPayload(DripError):
    """A verified request whose body is not what the provider sends (answered with 400)."""


def parse_time(value, default):
    """An ISO 8601 string or a unix timestamp -> an aware UTC datetime; ValueError for
    anything else, a time no clock can hold (1e400, year 9999 west of UTC) included."""
    try:
        return _parse_time(value, default)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"time {str(value)[:40]!r} is out of range ({exc})") from None


def _parse_time(value, default):
    if value in (None, ""):
        return default
    if isinstance(value, int | float) or str(value).replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), UTC).replace(microsecond=0)
    text = str(value).replace("Z", "+00:00")
    # Postmark writes seven fractional digits; fromisoformat takes at most six.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


_JSON_KINDS = ((bool, "true or false"), (dict, "a JSON object"), (list, "a list"),
               (str, "text"), (int | float, "a number"))


def json_kind(value):
    """What a parsed JSON value is, in words: 'a list', 'text', 'null', ..."""
    return next((words for kind, words in _JSON_KINDS if isinstance(value, kind)), "null")


def shaped(value, kind, *, provider, path, what):
    """``value`` when it is a ``kind`` (dict or list) as the provider's API documents;
    otherwise a DripError naming the provider, the path read and what was wrong, so a
    changed or hostile answer stops `drip events sync` with a message, not a traceback."""
    if not isinstance(value, kind):
        raise DripError(f"{provider}: unexpected answer from {path}: {what} is "
                        f"{json_kind(value)}, not {json_kind(kind())}")
    return value


def header(headers, name):
    """A header value, case-insensitively, or ''."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return value or ""


def check_age(timestamp, now):
    """Raise Unverified unless ``timestamp`` (unix seconds, as signed by the provider) is
    within MAX_AGE_SECONDS of ``now``."""
    try:
        sent = datetime.fromtimestamp(int(str(timestamp).strip()), UTC)
    except (ValueError, OverflowError, OSError):
        raise Unverified("malformed timestamp") from None
    if abs((now - sent).total_seconds()) > MAX_AGE_SECONDS:
        raise Unverified("timestamp too old or in the future")


def remember(store, provider, token, *, now):
    """Record a verified request's one-time token; raise Unverified if it was used before
    (the same signature sent again, perhaps with other event data)."""
    if not store.remember_token(provider, token, now=now, keep_seconds=TOKEN_KEEP_SECONDS):
        raise Unverified("this signed request was already received (a replay)")
