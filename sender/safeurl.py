"""Where the signup form may send people afterwards: an allow-list, never an open redirect.

A URL passes only when it is plain printable ASCII with no backslash or whitespace,
``https``, without a user name or password, on the default port, and on a host the coach
listed (``DRIP_REDIRECT_HOSTS``) or her website's host (``DRIP_WEBSITE_URL``). Nothing is
decoded here: ``%2F`` or ``%40`` in a host is simply not a listed host.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_LENGTH = 2000
HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                      r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")
_NETLOC = re.compile(r"[A-Za-z0-9.-]+(?::443)?")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


def parse_hosts(value):
    """The host names in a comma- or space-separated list, lowercased; ValueError names a
    bad one (a host name only: no scheme, path, port or wildcard)."""
    hosts = set()
    for item in re.split(r"[\s,]+", value or ""):
        if not item:
            continue
        host = item.lower()
        if not HOSTNAME.fullmatch(host):
            raise ValueError(f"{item!r} is not a host name (write e.g. coach.example.com, "
                             "without https:// or a path)")
        hosts.add(host)
    return hosts


def redirect_hosts(listed, website_url):
    """The hosts a signup may be sent back to: ``listed`` (DRIP_REDIRECT_HOSTS, parsed by
    ``parse_hosts``) and the host of ``website_url`` (DRIP_WEBSITE_URL). Read by config.py."""
    hosts = set(listed)
    try:
        host = urlsplit(website_url or "").hostname
    except ValueError:      # not a URL: no host to add
        host = None
    if host:
        hosts.add(host.lower())
    return hosts


def safe_redirect(url, hosts):
    """``url`` unchanged when it is an https URL on one of ``hosts``, else None."""
    if not isinstance(url, str) or not 0 < len(url) <= MAX_LENGTH:
        return None
    if not _PRINTABLE.fullmatch(url) or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme != "https" or not _NETLOC.fullmatch(parts.netloc):
        return None
    host = (parts.hostname or "").lower()
    return url if host in hosts else None
