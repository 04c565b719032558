"""Signed tokens for the links in emails: opaque, unforgeable, and expiring where asked.

A token carries a subscriber's public ``uid`` (never the address) signed with
DRIP_SECRET_KEY, with a salt per purpose so an unsubscribe token cannot be used
to confirm, and the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
# Unsubscribe links must keep working long after the email (at least 60 days).
MAX_AGE = {CONFIRM: 7 * 24 * 3600, UNSUBSCRIBE: None}


class TokenInvalid(Exception):
    """The token was altered, forged, made for another purpose or has expired."""

    def __init__(self, message, *, expired=False):
        self.expired = expired
        super().__init__(message)


@dataclass(frozen=True)
class Signer:
    secret_key: str

    def _serializer(self, purpose):
        return URLSafeTimedSerializer(self.secret_key, salt=f"drip-{purpose}")

    def make(self, purpose, uid):
        return self._serializer(purpose).dumps(uid)

    def read(self, purpose, token, *, now):
        """The uid inside ``token``, checked against ``now`` for expiry; raises TokenInvalid."""
        try:
            uid, signed_at = self._serializer(purpose).loads(token, return_timestamp=True)
        except BadSignature:
            raise TokenInvalid("this link is not valid") from None
        max_age = MAX_AGE[purpose]
        if max_age is not None and (now - signed_at).total_seconds() > max_age:
            raise TokenInvalid("this link has expired", expired=True)
        return uid
