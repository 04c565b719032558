"""What the provider modules share: errors and small parsing helpers."""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import DripError


class Unverified(DripError):
    """The request could not be shown to come from the provider (answered with 401)."""


class BadPayload(DripError):
    """A verified request whose body is not what the provider sends (answered with 400)."""


def parse_time(value, default):
    """An ISO 8601 string or a unix timestamp -> an aware UTC datetime."""
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


def header(headers, name):
    """A header value, case-insensitively, or ''."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return value or ""
