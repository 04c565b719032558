"""Deliveries a crash left unconfirmed: what is settled without the coach, and `drip resolve`
for what is not (one at a time, or all at once by campaign and step)."""

from __future__ import annotations

import json
from datetime import timedelta

from sender import subscribers
from sender.dispatch import send_due
from tests.conftest import at

SIGNUP = at("2026-03-02T18:00Z")


def _undecided(drip, count):
    """``count`` welcome emails left as a kill after the hand-off leaves them, with a provider
    (the outbox here, for a file that never got written) that cannot tell."""
    for n in range(count):
        subscribers.add_subscriber(drip, f"p{n}@example.com", now=SIGNUP, confirmed=True)
    rows = drip.store.claim_due(SIGNUP, 100, pending_campaign="confirmation")
    for row in rows:
        drip.store.update_delivery(row.id, expect_lease=row.lease, handed_at=SIGNUP,
                                   handoff_key="lost")
    return rows


def test_the_outbox_settles_a_lost_hand_off_by_itself(env, make_drip, run, project):
    drip = make_drip({**env, "DRIP_PROVIDER": "outbox"})
    rows = _undecided(drip, 3)
    # The outbox finds no file for them: provably not sent, so they go again by themselves.
    report = send_due(drip, now=SIGNUP + timedelta(minutes=11))
    assert report.undecided == 0 and report.sent == 3
    assert {drip.store.get_delivery(r.id).state for r in rows} == {"sent"}


def test_resolve_all_by_campaign_and_step(env, make_drip, run, project):
    drip = make_drip(env)
    rows = _undecided(drip, 3)
    for row in rows:     # what a provider without a search leaves: a decision each
        drip.store.update_delivery(row.id, reason="needs_decision",
                                   last_error="interrupted during hand-off")
    status = run("status", "--json", "--now", "2026-03-02T18:30Z")
    assert sorted(d["id"] for d in json.loads(status.output)["needs_decision"]) == \
        sorted(r.id for r in rows)
    wrong = run("resolve", "--all", "--campaign", "welcome", "--step", "nope", "--as", "sent",
                "--json")
    assert wrong.exit_code == 0 and json.loads(wrong.output)["deliveries"] == []
    done = run("resolve", "--all", "--campaign", "welcome", "--step", "hello", "--as", "sent",
               "--json", "--now", "2026-03-02T18:30Z")
    assert done.exit_code == 0, done.output
    assert sorted(json.loads(done.output)["deliveries"]) == sorted(r.id for r in rows)
    check = make_drip(env)
    assert {check.store.get_delivery(r.id).state for r in rows} == {"sent"}
    assert {check.store.get_delivery(r.id).sent_at for r in rows} == {SIGNUP}
    again = run("resolve", str(rows[0].id), "--as", "resend")
    assert again.exit_code == 1 and "not waiting for a decision" in again.output


def test_resolve_needs_an_id_or_all(run):
    assert run("resolve", "--as", "sent").exit_code == 2
    assert run("resolve", "5", "--all", "--as", "sent").exit_code == 2
    assert run("resolve", "5", "--campaign", "welcome", "--as", "sent").exit_code == 2


def test_resolve_refuses_a_row_a_recovery_is_settling(env, make_drip):
    """`drip resolve --as resend` racing the recovery that is asking the provider about the
    same row must not win: the row is being settled, not waiting for the coach."""
    from sender.recovery import resolve
    from tests.conftest import at as when

    drip = make_drip(env)
    [row] = _undecided(drip, 1)
    drip.store.update_delivery(row.id, reason="needs_decision")
    drip.store.take_over_stale(SIGNUP + timedelta(minutes=11), SIGNUP + timedelta(minutes=11))
    import pytest

    from sender.errors import DripError

    with pytest.raises(DripError, match="being sent right now"):
        resolve(drip, row.id, "resend", now=when("2026-03-02T18:12Z"))
    assert drip.store.get_delivery(row.id).state == "sending"
