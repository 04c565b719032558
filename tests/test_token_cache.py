"""Tokens made with the signer's key derived once, and unsubscribe tokens kept per uid, are
the very tokens itsdangerous makes from scratch, and still read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from sender import tokens
from sender.tokens import CONFIRM, UNSUBSCRIBE, Signer

SECRET = "token-cache-secret-" + "k" * 32
UIDS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1),
                       timezones=st.just(UTC))


def fresh_unsubscribe(uid):
    return URLSafeSerializer(SECRET, salt="drip-unsubscribe-v2").dumps(uid)


def fresh_confirm(uid, at):
    class At(TimestampSigner):
        def get_timestamp(self):
            return int(at.timestamp())

    return URLSafeTimedSerializer(SECRET, salt="drip-confirm", signer=At).dumps(uid)


@given(uids=st.lists(UIDS, min_size=1, max_size=5), at=MOMENTS)
def test_tokens_are_the_ones_itsdangerous_makes_from_scratch(uids, at):
    signer = Signer(SECRET)
    for uid in uids + uids:          # the second time from what was kept
        unsubscribe = signer.make(UNSUBSCRIBE, uid)
        assert unsubscribe == fresh_unsubscribe(uid)
        assert signer.read(UNSUBSCRIBE, unsubscribe, now=at) == uid
        confirm = signer.make(CONFIRM, uid, now=at)
        assert confirm == fresh_confirm(uid, at)
        assert signer.read(CONFIRM, confirm, now=at + timedelta(days=6)) == uid


def test_what_a_signer_keeps_is_bounded(monkeypatch):
    monkeypatch.setattr(tokens, "KEPT_TOKENS", 10)
    monkeypatch.setattr(tokens, "KEPT_SIGNERS", 3)
    signer = Signer(SECRET)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    for number in range(25):
        assert signer.make(UNSUBSCRIBE, f"u{number}") == fresh_unsubscribe(f"u{number}")
        at = start + timedelta(seconds=number)
        assert signer.make(CONFIRM, f"u{number}", now=at) == fresh_confirm(f"u{number}", at)
    assert len(signer._tokens) <= 10 and len(signer._made) <= 3
    assert Signer(SECRET) == signer and hash(Signer(SECRET)) == hash(signer)
