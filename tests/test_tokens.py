import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from sender.tokens import CONFIRM, UNSUBSCRIBE, Signer, TokenInvalid

SIGNER = Signer("k" * 40)


def test_round_trip_and_purpose_separation():
    now = datetime.now(UTC)
    token = SIGNER.make(UNSUBSCRIBE, "uid123")
    assert SIGNER.read(UNSUBSCRIBE, token, now=now) == "uid123"
    with pytest.raises(TokenInvalid, match="not valid"):
        SIGNER.read(CONFIRM, token, now=now)


def test_forged_and_altered_tokens():
    now = datetime.now(UTC)
    token = SIGNER.make(CONFIRM, "uid123")
    with pytest.raises(TokenInvalid):
        SIGNER.read(CONFIRM, token[:-2] + ("AA" if not token.endswith("AA") else "BB"), now=now)
    with pytest.raises(TokenInvalid):
        Signer("x" * 40).read(CONFIRM, token, now=now)


def test_confirm_expires_unsubscribe_does_not():
    now = datetime.now(UTC)
    confirm = SIGNER.make(CONFIRM, "u")
    with pytest.raises(TokenInvalid) as caught:
        SIGNER.read(CONFIRM, confirm, now=now + timedelta(days=8))
    assert caught.value.expired
    unsub = SIGNER.make(UNSUBSCRIBE, "u")
    assert SIGNER.read(UNSUBSCRIBE, unsub, now=now + timedelta(days=400)) == "u"


# Letters, digits, '-' and '_' that zlib would not shorten (so itsdangerous does not compress
# them either), 61 and 62 characters long: around the longest uid signed the short way.
MIXED = base64.urlsafe_b64encode(hashlib.sha512(b"drip").digest()).decode()


@pytest.mark.parametrize("uid", ["uid123", "x" * 300, "é漢字-☃", "", "5f0c2a9be41d7736a08e9c11",
                                 "0123456789abcdef" * 4, MIXED[:61], MIXED[:62], "A-Z_09",
                                 'quote"back\\slash', "tab\tnew\nline", "a.b", "/"])
def test_tokens_are_the_bytes_itsdangerous_makes_for_the_same_key_and_salt(uid):
    """drip signs with the standard library's one-shot HMAC-SHA1 rather than itsdangerous'
    own: every token is still exactly the one itsdangerous makes (and links in emails
    already sent keep working)."""
    from itsdangerous import TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

    assert SIGNER.make(UNSUBSCRIBE, uid) == URLSafeSerializer(
        "k" * 40, salt="drip-unsubscribe-v2").dumps(uid)
    at = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)

    class At(TimestampSigner):
        def get_timestamp(self):
            return int(at.timestamp())

    assert SIGNER.make(CONFIRM, uid, now=at) == URLSafeTimedSerializer(
        "k" * 40, salt="drip-confirm", signer=At).dumps(uid)


def test_a_token_whose_payload_was_not_offered_to_zlib_reads_back():
    """A short uid is signed without trying zlib (``SHORTEST_COMPRESSED``): even one that would
    have compressed gets a token that reads back, and a long one is still compressed."""
    now = datetime.now(UTC)
    for uid in ["0" * 24, "ab" * 12, "0" * 100]:
        for purpose in (UNSUBSCRIBE, CONFIRM):
            assert SIGNER.read(purpose, SIGNER.make(purpose, uid, now=now), now=now) == uid
    assert SIGNER.make(UNSUBSCRIBE, "0" * 100).startswith(".")
    assert not SIGNER.make(UNSUBSCRIBE, "0" * 24).startswith(".")
