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
