"""Erasure on request: a person's record, enrolments, deliveries, events, outbox copies and
rate-limit rows go; only a keyed one-way hash of the address stays in the ``erased`` table,
so no later import or add mails them by accident (they can still sign up again themselves).

The hash is HMAC-SHA256 under a key derived from DRIP_SECRET_KEY, not a plain SHA-256:
addresses are easy to guess, so a plain hash of ``ana@example.com`` could be confirmed by
anyone with a copy of the database (or a backup) by hashing candidate addresses, which
would undo the erasure. With a keyed hash the table alone reveals nothing. The cost: the
check only works with the key that made the hash; each record keeps a short key id
(``erasure_key_id``), so records made with another key can be counted.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput
from .message import normalize_email


# --- the hashes ------------------------------------------------------------------------
def _erasure_key(secret):
    return hmac.new(secret.encode(), b"drip erasure v1", hashlib.sha256).digest()


def erasure_key_id(secret):
    """A short, public fingerprint of the key that makes erasure hashes."""
    return hashlib.sha256(_erasure_key(secret)).hexdigest()[:12]


def erasure_hash(secret, email):
    """The one-way hash kept for an erased (normalised) address."""
    return hmac.new(_erasure_key(secret), email.encode(), hashlib.sha256).hexdigest()


def is_erased(drip, email):
    """Whether this normalised address was erased on request."""
    digest = erasure_hash(drip.settings.secret_key, email)
    return bool(drip.store.erased_hashes([digest]))


def erased_with_other_key(drip):
    """How many erasure records were made with a different DRIP_SECRET_KEY (they cannot be
    checked any more)."""
    current = erasure_key_id(drip.settings.secret_key)
    return sum(n for key_id, n in drip.store.erased_key_ids().items() if key_id != current)


# --- erasing -------------------------------------------------------------------------------
@dataclass
class Erasure:
    email: str
    found: bool
    deleted: dict
    files_removed: int = 0


def erase(drip, email, *, now):
    """Erase a person on request: their record, enrolments, deliveries and events go, and
    so do the outbox copies of emails sent to them and the signup rate-limit rows naming
    their address or the IP of their consent record; only the keyed hash of the address
    stays, so no later import or add mails them by accident. Someone not on the list is
    recorded too (they asked never to be mailed)."""
    email = normalize_email(email)
    store = drip.store
    person = store.get_subscriber(email=email)
    files = []
    rate_keys = [f"email:{email}"]
    if person is not None:
        files = [d.provider_message_id for d in store.deliveries(subscriber_id=person.id)
                 if d.provider == "outbox" and d.provider_message_id]
        if person.consent.ip:
            rate_keys.append(f"ip:{person.consent.ip}")
    with store.transaction():
        deleted = store.erase_subscriber(
            person.id if person else None, erased_hash=erasure_hash(drip.settings.secret_key, email),
            key_id=erasure_key_id(drip.settings.secret_key), now=now)
        store.forget_rate_hits(keys=rate_keys)
    removed = 0
    outbox = drip.settings.outbox_dir
    for name in files:
        path = outbox / Path(name).name
        if path.is_file():
            path.unlink()
            removed += 1
    return Erasure(email, person is not None, deleted, removed)


def check_not_erased(drip, email):
    """Raise InvalidInput when this normalised address was erased on request."""
    if is_erased(drip, email):
        raise InvalidInput(f"{email} asked to be erased; drip will not add them again. If they "
                           "sign up again themselves, their new consent comes through the "
                           "signup form")
