"""Signed tokens for the links in emails: opaque, unforgeable, and expiring where asked.

A token carries a subscriber's public ``uid`` (never the address) signed with
DRIP_SECRET_KEY, with a salt per purpose so an unsubscribe token cannot be used
to confirm, and the reverse.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

from itsdangerous import BadSignature, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous import Signer as _ItsSigner
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer as _PlainSerializer
from itsdangerous.signer import HMACAlgorithm

CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
# Unsubscribe links must keep working long after the email (at least 60 days).
MAX_AGE = {CONFIRM: 7 * 24 * 3600, UNSUBSCRIBE: None}


class TokenInvalid(Exception):
    """The token was altered, forged, made for another purpose or has expired."""

    def __init__(self, message, *, expired=False):
        self.expired = expired
        super().__init__(message)


# Made once per Signer: (purpose, time) -> (serializer, signer); untimed tokens by uid.
KEPT_SIGNERS = 64
KEPT_TOKENS = 65536


class _KeyOnce:
    """Derives the signing key once per signer (itsdangerous derives it for every
    signature), and signs with ``_Sha1``; the key, and so every token, is the same."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("algorithm", _Sha1())
        super().__init__(*args, **kwargs)

    def derive_key(self, secret_key=None):
        if secret_key is not None:
            return super().derive_key(secret_key)
        key = self.__dict__.get("_drip_key")
        if key is None:
            key = self._drip_key = super().derive_key()
        return key


class _Sha1(HMACAlgorithm):
    """HMAC-SHA1, itsdangerous' default, with the key set up once per key (``hmac.new`` with
    a hash constructor runs its set-up in Python for every signature): each signature copies
    the keyed state and hashes the value. The same signature bytes, a fraction of the time."""

    def __init__(self):
        super().__init__(hashlib.sha1)
        self._keyed = (None, None)      # (key, its keyed state): a signer signs with one key

    def get_signature(self, key, value):
        known, keyed = self._keyed
        if known != key:
            keyed = hmac.new(key, digestmod=hashlib.sha1)
            self._keyed = (key, keyed)
        signature = keyed.copy()
        signature.update(value)
        return signature.digest()


class _Untimed(_KeyOnce, _ItsSigner):
    pass


class _SignedAt(_KeyOnce, TimestampSigner):
    """A timestamp signer that stamps the time it is given instead of reading the clock,
    so the same email rendered twice for the same moment is the same bytes."""

    def __init__(self, *args, at=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.at = at

    def get_timestamp(self):
        return int(self.at.timestamp()) if self.at is not None else super().get_timestamp()


# JSON shorter than this is not offered to zlib (see ``_payload``).
SHORTEST_COMPRESSED = 64


def _payload(serializer, uid):
    """What itsdangerous' URL-safe ``serializer`` signs for ``uid``: its JSON in URL-safe
    base64, or, marked by a leading '.', that JSON zlib-compressed when that is shorter. A
    uid of drip's (24 random hex digits) all but never compresses, and setting up a
    compressor for each token was most of the cost of making one, so JSON under
    SHORTEST_COMPRESSED bytes is not offered to zlib: the token itsdangerous makes for such a
    uid. One that would have compressed (all zeros, say) gets the other form, which reads
    back just the same."""
    json = _PlainSerializer.dump_payload(serializer, uid)
    if len(json) < SHORTEST_COMPRESSED:
        return base64_encode(json)
    return serializer.dump_payload(uid)


# A uid JSON writes as itself between quotes, short enough not to be offered to zlib: drip's
# own (24 hex digits), whose token ``_sign`` makes without the serializer's machinery.
_PLAIN_UID = re.compile(f"[0-9A-Za-z_-]{{0,{SHORTEST_COMPRESSED - 3}}}")


@dataclass(frozen=True)
class Signer:
    secret_key: str
    # The serializers and signers made so far, and the unsubscribe tokens (one per uid,
    # the same in every email): making a token is then a JSON dump and one HMAC.
    _made: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _tokens: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _serializer(self, purpose, at=None):
        return URLSafeTimedSerializer(self.secret_key, salt=f"drip-{purpose}", signer=_SignedAt,
                                      signer_kwargs={"at": at})

    def _untimed(self, purpose):
        # Unsubscribe links never expire, so they carry no time: one token per subscriber,
        # the same in every email (version 2; version 1 tokens carried the signing time).
        return URLSafeSerializer(self.secret_key, salt=f"drip-{purpose}-v2", signer=_Untimed)

    def _sign(self, purpose, uid, at=None):
        """``serializer.dumps(uid)``, with the serializer and its signer made once."""
        made = self._made.get((purpose, at))
        if made is None:
            serializer = self._untimed(purpose) if MAX_AGE[purpose] is None \
                else self._serializer(purpose, at)
            made = (serializer, serializer.make_signer())
            if len(self._made) >= KEPT_SIGNERS:
                self._made.clear()
            self._made[(purpose, at)] = made
        serializer, signer = made
        if MAX_AGE[purpose] is None and isinstance(uid, str) and _PLAIN_UID.fullmatch(uid):
            # What ``signer.sign(_payload(serializer, uid))`` gives for such a uid: its JSON
            # is the uid in quotes, signed as is. A token an email needs, for every reader new
            # to this process (a broadcast), at a third of the cost.
            value = base64_encode(f'"{uid}"')
            signature = signer.algorithm.get_signature(signer.derive_key(), value)
            return (value + signer.sep + base64_encode(signature)).decode("ascii")
        return signer.sign(_payload(serializer, uid)).decode("utf-8")

    def make(self, purpose, uid, *, now=None):
        """A token for ``uid``; an expiring one is stamped with ``now`` (default: the clock)."""
        if MAX_AGE[purpose] is None:
            token = self._tokens.get((purpose, uid))
            if token is None:
                token = self._sign(purpose, uid)
                if len(self._tokens) >= KEPT_TOKENS:
                    self._tokens.clear()
                self._tokens[(purpose, uid)] = token
            return token
        return self._sign(purpose, uid, now)

    def read(self, purpose, token, *, now):
        """The uid inside ``token``, checked against ``now`` for expiry; raises TokenInvalid."""
        max_age = MAX_AGE[purpose]
        if max_age is None:
            try:
                return self._untimed(purpose).loads(token)
            except BadSignature:
                pass    # perhaps a version 1 token, from an email sent before
        try:
            uid, signed_at = self._serializer(purpose).loads(token, return_timestamp=True)
        except BadSignature:
            raise TokenInvalid("this link is not valid") from None
        if max_age is not None and (now - signed_at).total_seconds() > max_age:
            raise TokenInvalid("this link has expired", expired=True)
        return uid
