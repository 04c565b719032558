"""Reading a sending domain's DNS with dnspython: SPF, DKIM, DMARC and MX, as data.

``Dns`` wraps one dnspython resolver: the system's, or one pointed at a given server and
port (``drip doctor --dns-server``; the tests run a DNS server on 127.0.0.1). Each lookup
gives the records found, an empty list when the name or the type does not exist, and
raises ``DnsUnavailable`` when no server answered (the doctor reports that instead of
reading it as "missing").

Nothing here prints or decides what to tell the coach: ``doctor.py`` turns these results
into checks with plain words.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.resolver

from .errors import ConfigError
from .identity import org_domain

SPF_LOOKUP_LIMIT = 10             # RFC 7208 4.6.4
_SPF_LOOKUPS = ("include", "a", "mx", "ptr", "exists")


class DnsUnavailable(Exception):
    """No DNS server gave an answer (a timeout, a refusal, a server failure)."""


class Dns:
    """Lookups through one resolver, remembered for the run."""

    def __init__(self, resolver=None, *, nameserver=None, port=53, timeout=5.0):
        if resolver is None:
            try:
                resolver = dns.resolver.Resolver(configure=nameserver is None)
            except dns.resolver.NoResolverConfiguration:
                raise ConfigError("this machine names no DNS server (/etc/resolv.conf); give "
                                  "one with --dns-server, e.g. --dns-server 1.1.1.1") from None
            if nameserver:
                resolver.nameservers = [nameserver]
                resolver.port = port
            resolver.lifetime = timeout
            resolver.timeout = min(timeout, 2.0)
        self.resolver = resolver
        self._cache = {}

    def _answer(self, name, kind):
        key = (name.lower().rstrip("."), kind)
        if key not in self._cache:
            try:
                qname = dns.name.from_text(key[0])
                self._cache[key] = list(self.resolver.resolve(qname, kind, search=False))
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                self._cache[key] = []
            except (dns.resolver.NoNameservers, dns.exception.Timeout,
                    dns.resolver.LifetimeTimeout, OSError) as exc:
                raise DnsUnavailable(f"no DNS server answered for {key[0]} ({kind}): "
                                     f"{type(exc).__name__}") from None
            except (dns.exception.DNSException, ValueError) as exc:
                raise DnsUnavailable(f"cannot look up {key[0]} ({kind}): {exc}") from None
        return self._cache[key]

    def txt(self, name):
        """Each TXT record at ``name`` as one string (its pieces joined)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._answer(name, "TXT")]

    def mx(self, name):
        """[(preference, host)] sorted by preference; a null MX is (0, '')."""
        return sorted((r.preference, r.exchange.to_text(omit_final_dot=True))
                      for r in self._answer(name, "MX"))

    def cname(self, name):
        found = self._answer(name, "CNAME")
        return found[0].target.to_text(omit_final_dot=True).lower() if found else None

    def exists(self, name):
        return bool(self._answer(name, "A") or self._answer(name, "AAAA"))


# --- SPF -------------------------------------------------------------------------------------
def spf_records(lookup, domain):
    return [t for t in lookup.txt(domain) if re.match(r"v=spf1(\s|$)", t.strip(), re.I)]


@dataclass
class Spf:
    """One domain's SPF as a receiver would walk it."""

    domain: str
    records: list
    lookups: int = 0                                # DNS-querying terms, includes counted through
    includes: set = field(default_factory=set)      # every domain included or redirected to
    problems: list = field(default_factory=list)    # broken includes, loops


def check_spf(lookup, domain):
    spf = Spf(domain, spf_records(lookup, domain))
    if len(spf.records) == 1:
        _walk(lookup, spf.records[0], spf, seen={domain.lower()}, depth=0)
    return spf


def _walk(lookup, record, spf, *, seen, depth):
    for term in record.split()[1:]:
        name, _, value = term.lstrip("+-~?").partition(":")
        mechanism = name.lower()
        if "=" in term and mechanism not in _SPF_LOOKUPS:
            modifier, _, value = term.partition("=")
            if modifier.lower() != "redirect":
                continue
            mechanism = "redirect"
        mechanism = mechanism.split("/")[0]
        if mechanism not in (*_SPF_LOOKUPS, "redirect"):
            continue
        spf.lookups += 1
        if mechanism not in ("include", "redirect") or not value or "%" in value:
            continue
        target = value.lower().rstrip(".")
        spf.includes.add(target)
        if target in seen:
            spf.problems.append(f"{target} is included in a loop")
            continue
        if depth > 10 or spf.lookups > 50:
            continue
        try:
            found = spf_records(lookup, target)
        except DnsUnavailable as exc:
            spf.problems.append(str(exc))
            continue
        if len(found) != 1:
            spf.problems.append(f"{mechanism}:{target} has {len(found) or 'no'} SPF record"
                                f"{'s' if len(found) != 1 else ''}, so receivers read the whole "
                                "record as an error")
            continue
        _walk(lookup, found[0], spf, seen=seen | {target}, depth=depth + 1)


# --- DKIM ------------------------------------------------------------------------------------
def tags(record):
    """'v=DKIM1; k=rsa; p=...' -> {'v': 'DKIM1', ...} (names lower-cased)."""
    found = {}
    for part in record.split(";"):
        name, eq, value = part.partition("=")
        if eq and name.strip():
            found[name.strip().lower()] = value.strip()
    return found


def dkim_problem(record):
    """Why a DKIM key record is not usable, or None."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    fields = tags(record)
    if "v" in fields and (fields["v"] != "DKIM1" or not record.strip().startswith("v=")):
        return "its v= tag must be v=DKIM1 and come first"
    if "p" not in fields:
        return "it has no p= (public key) tag"
    key = re.sub(r"\s+", "", fields["p"])
    if not key:
        return "its p= is empty, which means the key was revoked"
    kind = fields.get("k", "rsa").lower()
    try:
        data = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return "its p= is not valid base64 (a piece may be missing or mistyped)"
    if kind == "ed25519":
        return None if len(data) == 32 else "its p= is not a 32-byte Ed25519 key"
    if kind != "rsa":
        return f"k={kind} is not a key type receivers know (rsa or ed25519)"
    try:
        public = load_der_public_key(data)
    except ValueError:
        return "its p= does not hold an RSA public key (a piece may be missing)"
    if not isinstance(public, rsa.RSAPublicKey):
        return "its p= is not an RSA key, as k=rsa says"
    if public.key_size < 1024:
        return f"its RSA key has {public.key_size} bits; receivers ignore keys under 1024"
    return None


def dkim_records(lookup, selector, domain):
    """The DKIM key records at ``selector._domainkey.domain`` (a CNAME is followed)."""
    return [t for t in lookup.txt(f"{selector}._domainkey.{domain}") if "p=" in t or "v=DKIM1" in t]


# --- DMARC -----------------------------------------------------------------------------------
def dmarc(lookup, domain):
    """(where, [records]): the DMARC records at _dmarc.<domain>, or else at the
    organisational domain's (which covers its subdomains)."""
    for where in dict.fromkeys((domain.lower(), org_domain(domain))):
        found = [t for t in lookup.txt(f"_dmarc.{where}")
                 if re.match(r"v=DMARC1(\s*;|\s*$)", t.strip(), re.I)]
        if found:
            return where, found
    return domain.lower(), []
