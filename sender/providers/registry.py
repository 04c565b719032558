"""Every provider drip knows, each one a folder beside this file.

A provider's folder ``<name>/`` holds everything about it:

    __init__.py      what the provider is (its docstring); imports nothing; ``AUTH_HEADER``
                     when its key travels in a header of its own (masked in any text)
    settings.py      its ``Setting`` declarations, each with how its text is parsed, in lists
                     the settings table gathers: ``CORE`` (beside DRIP_PROVIDER), ``ACCOUNT``
                     (keys and API URLs), ``OPTIONS`` (after every provider's account
                     settings) and ``WEBHOOK``; parsed at start when the provider is chosen
    sending.py       ``build(settings, *, extra_headers=None)``: the configured ``Provider``,
                     which sends, settles a crash (``reconcile``) and cancels held mail
    webhook.py       ``verify`` and ``parse`` of its event webhook         (when it has one)
    suppressions.py  ``rows(provider, *, stream)``: its suppression lists  (`drip events sync`)
    doctor.py        ``profile(settings, from_domain)``: what it needs in DNS, and
                     ``checks(provider, settings, ctx)``: read-only checks (`drip doctor`)

Adding a provider is adding its folder and its name to ``NAMES``. The parts are imported by
name, when first needed: reading the settings table loads only the ``settings`` modules, never
the HTTP client.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from importlib.util import find_spec

NAMES = ("outbox", "postmark", "sendgrid", "mailgun", "resend", "smtp")


def has(name, module):
    """Whether provider ``name``'s folder has the part ``module``, without importing it."""
    return name in NAMES and find_spec(f"{__package__}.{name}.{module}") is not None


def part(name, module):
    """The part ``module`` ("sending", "webhook", ...) of provider ``name``, or None."""
    if not has(name, module):
        return None
    return importlib.import_module(f"{__package__}.{name}.{module}")


def with_part(module):
    """The names of the providers that have the part ``module``, in registry order."""
    return tuple(name for name in NAMES if has(name, module))


def auth_headers():
    """The credential headers of their own that providers declare (``AUTH_HEADER``)."""
    folders = (importlib.import_module(f"{__package__}.{name}") for name in NAMES)
    return tuple(header for folder in folders if (header := getattr(folder, "AUTH_HEADER", None)))


def settings(kind):
    """Every provider's settings of one ``kind`` (CORE, ACCOUNT, OPTIONS or WEBHOOK), in
    registry order, each marked with the provider that declares it."""
    return [replace(s, provider=name) for name in NAMES
            for s in getattr(part(name, "settings"), kind, ())]
