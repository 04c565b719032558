"""What every provider's ``doctor.py`` shares: the ``Profile`` each one gives of what it
needs in DNS, one read-only request, and the wording of the checks they all make (the key
works or was refused; the provider's verdict on the sending domain).
``sender/doctor_providers.py`` runs the provider's checks; ``sender/doctor.py`` reads its
profile."""

from __future__ import annotations

from dataclasses import dataclass

from ..doctor_report import FAIL, OK, WARN, Check
from ..errors import ProviderError


@dataclass(frozen=True)
class Profile:
    """What a provider needs in DNS for the From domain: the SPF include that covers its
    servers, the DKIM selectors it signs with and the domain it signs for, the Return-Path
    (bounce) domain it sends from and where that must point, and where to find a selector
    that cannot be guessed."""

    name: str
    spf_include: str = ""
    selectors: tuple = ()
    dkim_domain: str = ""       # empty: the From domain
    bounce_domain: str = ""     # empty: the provider picks it (it cannot be known here)
    bounce_cname: str = ""      # where the bounce domain must point (a CNAME), if anywhere
    selector_hint: str = ""


def get(provider, path, **params):
    """(status, body) of one read-only request, retried as usual."""
    answer = provider.http.request("GET", path, params=params or None)
    if answer.status is None:
        raise ProviderError(f"{provider.name} did not answer: {answer.describe()}")
    return answer.status, answer.body


def key_ok(name, detail):
    return Check("provider", OK, f"{name} key", detail)


def refused(name, exc, setting):
    """The check for a key (or login) the provider refused."""
    return Check("provider", FAIL, f"{name} key", f"{name} refused the key: {exc}.",
                 f"Copy the key again from {name} into .env ({setting}).")


def verdict(name, domain, good, bad, extra=""):
    """The provider's own verdict on the sending domain; ``bad`` lists the records it
    found missing or wrong."""
    title = f"What {name} says about {domain}"
    if good:
        return Check("provider-domain", OK, title, f"{name} has verified {domain}.")
    if bad:
        return Check("provider-domain", FAIL, title,
                     f"{name} has not verified {domain}{extra}: these records are missing or "
                     "wrong: " + "; ".join(bad) + ".",
                     "Add exactly these records at your DNS host, then verify the domain in "
                     f"{name}.")
    return Check("provider-domain", WARN, title, f"{name} has not verified {domain} yet{extra}.",
                 f"Verify the domain in {name} once its records are in place.")
