"""The send path writes the ledger a batch at a time: the statements and transactions a batch
takes do not grow with its size, every row is still written only under its own guard (the
state it was read in, the caller's lease), and a row whose guard fails is reported, never
counted as written."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from sender import ledger
from sender.dispatch import send_due
from sender.models import Consent
from sender.providers.base import ACCEPTED, REJECTED, RETRY, UNKNOWN, Provider, SendResult
from sender.store import SQLiteStore
from tests.conftest import at

NOW = at("2026-03-02T18:00Z")            # Monday 10:00 in Los Angeles: inside the send window
LATER = NOW + timedelta(hours=2)
ANSWERS = {"ok": (ACCEPTED, {}), "no": (REJECTED, {"error": "550 no such user"}),
           "busy": (RETRY, {"error": "503 busy"}), "lost": (UNKNOWN, {"error": "timed out"})}


class Answering(Provider):
    """A provider that answers each message by the first word of its address, with hooks a
    test uses to change rows as another process would at that moment."""

    name = "answering"
    batch_size = 10_000

    def __init__(self):
        self.before_handoff = self.during_send = lambda messages: None
        self.sent = []

    def handoff_chunks(self, messages):
        self.before_handoff(messages)
        return [messages]

    def send(self, messages):
        self.during_send(messages)
        self.sent += [m.delivery_id for m in messages]
        results = []
        for message in messages:
            outcome, extra = ANSWERS[message.to.addr_spec.split("-")[0]]
            results.append(SendResult(message.delivery_id, outcome,
                                      provider_message_id=f"pm-{message.delivery_id}"
                                      if outcome == ACCEPTED else None, **extra))
        return results

    def reconcile(self, delivery, message_id):
        return "unknown", None


def people(drip, kind, count, *, name="Reader"):
    """``count`` active subscribers ``kind-N@example.com``, each with course/one due now."""
    store = drip.store
    consent = Consent(source="test", at=NOW - timedelta(days=30))
    emails = [f"{kind}-{n}@example.com" for n in range(count)]
    store.add_subscribers([{"email": e, "name": name, "status": "active", "consent": consent}
                           for e in emails], now=NOW - timedelta(days=30))
    found = store.subscribers_by_email(emails)
    ledger.schedule(store, [{"subscriber_id": p.id, "campaign": "course", "step": "one",
                             "due_at": NOW - timedelta(minutes=5)} for p in found.values()],
                    now=NOW - timedelta(days=30))
    return sorted(p.id for p in found.values())


def sql(drip, statement, ids):
    drip.store.conn.execute(statement.format(ids=",".join(str(i) for i in ids)))


def a_run(env, make_drip, size):
    """A batch of every kind of delivery, ``size`` of each; returns the run's report, the
    SQL statements it ran, and the ids of each kind."""
    drip = make_drip({**env, "DRIP_MIN_GAP": "20h", "DRIP_MAX_ATTEMPTS": "5"},
                     provider=Answering())
    for campaign in drip.campaigns:
        drip.store.set_meta(f"campaign-fingerprint:{campaign.id}", campaign.fingerprint())
    kinds = {kind: people(drip, kind, size) for kind in ("ok", "no", "busy", "lost")}
    kinds["gap"] = people(drip, "ok-gap", size)           # had an email an hour ago
    kinds["bad"] = people(drip, "ok-bad", size, name="Bad =?utf-8?q?x?= Name")
    kinds["gone"] = people(drip, "ok-gone", size)         # due a step that was removed
    kinds["paused"] = people(drip, "ok-paused", size)     # pause after the claim
    kinds["left"] = people(drip, "ok-left", size)         # unsubscribe after the claim
    kinds["stale"] = people(drip, "ok-stale", size)       # a dead run claimed, never handed
    kinds["limbo"] = people(drip, "ok-limbo", size)       # a dead run handed: nobody can tell
    sql(drip, "INSERT INTO deliveries (subscriber_id, campaign, step, due_at, state, sent_at, "
              "created_at) SELECT id, 'welcome', 'guide', '2026-03-02T17:00:00Z', 'sent', "
              "'2026-03-02T17:00:00Z', '2026-03-02T17:00:00Z' FROM subscribers "
              "WHERE id IN ({ids})", kinds["gap"])
    sql(drip, "UPDATE deliveries SET step = 'removed' WHERE subscriber_id IN ({ids})",
        kinds["gone"])
    sql(drip, "UPDATE deliveries SET state = 'sending', lease = 'dead', "
              "claimed_at = '2026-03-01T00:00:00Z' WHERE subscriber_id IN ({ids})",
        kinds["stale"] + kinds["limbo"])
    sql(drip, "UPDATE deliveries SET handed_at = '2026-03-01T00:00:00Z', handoff_key = 'k' "
              "WHERE subscriber_id IN ({ids})", kinds["limbo"])

    def meanwhile(messages):
        sql(drip, "UPDATE subscribers SET status = 'paused' WHERE id IN ({ids})",
            kinds["paused"])
        sql(drip, "UPDATE subscribers SET status = 'unsubscribed' WHERE id IN ({ids})",
            kinds["left"])

    drip.provider.before_handoff = meanwhile
    traced = []
    drip.store.conn.set_trace_callback(traced.append)
    report = send_due(drip, now=NOW)
    drip.store.conn.set_trace_callback(None)
    # SQLite reports a statement again at the start of each trigger it fires (a trigger runs
    # once a row): one statement is a run of the same text.
    statements = [s for n, s in enumerate(traced) if n == 0 or s != traced[n - 1]]
    return drip, report, statements, kinds


def writes(statements):
    return [s for s in statements if re.match(r"\s*(WITH\b.*?\)\s*)?(UPDATE|INSERT|DELETE)\b", s, re.S)]


def transactions(statements):
    return [s for s in statements if s.strip().upper().startswith("BEGIN")]


def stored(drip, ids):
    rows = [d for d in drip.store.deliveries(states=None) if d.subscriber_id in set(ids)
            and d.campaign == "course"]
    return {(d.state, d.reason) for d in rows}


def test_a_batch_takes_the_same_statements_and_transactions_whatever_its_size(env, make_drip,
                                                                             tmp_path):
    small = a_run(env, make_drip, 2)
    large = a_run({**env, "DRIP_DATABASE": str(tmp_path / "large.db")}, make_drip, 12)
    for drip, report, _, kinds in (small, large):
        size = len(kinds["ok"])
        assert (report.sent, report.failed, report.retried, report.unconfirmed) == (
            2 * size, 2 * size, size, size)          # ok + stale, no + bad, busy, lost
        assert (report.deferred, report.cancelled, report.skipped, report.undecided) == (
            size, size, size, size)
        assert report.recovered == size and report.lost_claims == 0
        assert stored(drip, kinds["ok"] + kinds["stale"]) == {("sent", None)}
        assert stored(drip, kinds["no"]) == {("failed", "rejected")}
        assert stored(drip, kinds["bad"]) == {("failed", "bad_data")}
        assert stored(drip, kinds["busy"]) == {("scheduled", "retrying")}
        assert stored(drip, kinds["lost"]) == {("sending", "unconfirmed")}
        assert stored(drip, kinds["gap"]) == {("scheduled", "min_gap")}
        assert stored(drip, kinds["gone"]) == {("cancelled", "step_gone")}
        assert stored(drip, kinds["paused"]) == {("scheduled", None)}
        assert stored(drip, kinds["left"]) == {("skipped", "subscriber_changed")}
        assert stored(drip, kinds["limbo"]) == {("sending", "needs_decision")}
    (_, _, few, _), (_, _, many, _) = small, large
    assert len(writes(many)) == len(writes(few)), (writes(few), writes(many))
    assert len(transactions(many)) == len(transactions(few))
    assert len(many) == len(few)                     # the reads too
    # What it is: the claims, one write for each kind of change (the recovered rows, the
    # rows held back before the hand-off, the marks, the answers), and the bookkeeping.
    assert len(writes(many)) <= 20 and len(transactions(many)) <= 10, (writes(many),
                                                                        transactions(many))


def test_a_row_whose_claim_was_taken_is_reported_not_counted(env, make_drip):
    drip = make_drip(env, provider=Answering())
    ids = people(drip, "ok", 6)
    rows = {d.subscriber_id: d.id for d in drip.store.deliveries(campaign="course")}
    before_mark, during_send = [rows[i] for i in ids[:2]], [rows[i] for i in ids[2:4]]
    drip.provider.before_handoff = lambda m: sql(
        drip, "UPDATE deliveries SET lease = 'other' WHERE id IN ({ids})", before_mark)
    drip.provider.during_send = lambda m: sql(
        drip, "UPDATE deliveries SET lease = 'other' WHERE id IN ({ids})", during_send)
    report = send_due(drip, now=NOW)
    assert (report.sent, report.lost_claims) == (2, 4)
    assert sorted(drip.provider.sent) == sorted(rows[i] for i in ids[2:])   # never the first two
    for delivery_id in before_mark:
        row = drip.store.get_delivery(delivery_id)
        assert (row.state, row.lease, row.handed_at) == ("sending", "other", None)
    for delivery_id in during_send:
        row = drip.store.get_delivery(delivery_id)
        assert (row.state, row.lease, row.sent_at) == ("sending", "other", None)
        assert row.handed_at == NOW
    assert {drip.store.get_delivery(rows[i]).state for i in ids[4:]} == {"sent"}


# --- ledger.Batch against both databases ----------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "ledger.db")
    else:
        from sender.store.postgres import PostgresStore
        made = PostgresStore(request.getfixturevalue("postgres_url"))
    yield made
    made.close()


def claimed_rows(store, count):
    consent = Consent(source="form", at=NOW)
    emails = [f"r{n}@example.com" for n in range(count)]
    store.add_subscribers([{"email": e, "status": "active", "consent": consent} for e in emails],
                          now=NOW)
    found = store.subscribers_by_email(emails)
    ledger.schedule(store, [{"subscriber_id": p.id, "campaign": "course", "step": "one",
                             "due_at": NOW} for p in found.values()], now=NOW)
    return ledger.claim(store, NOW, count)


def test_a_batch_writes_each_row_under_its_own_guard(store):
    rows = claimed_rows(store, 7)
    taken = rows[3]
    assert store.update_delivery(taken.id, expect_lease=taken.lease, lease="another-run")
    before = store.get_delivery(taken.id)
    batch = ledger.Batch(store)
    ledger.sent(batch, rows[0], at=LATER, attempts=1, provider="p", provider_message_id="m-0")
    ledger.sent(batch, rows[1], at=NOW, attempts=3, provider="p", provider_message_id=None)
    ledger.failed(batch, rows[2], ledger.REJECTED, "550 no such user", attempts=1, provider="p")
    ledger.sent(batch, taken, at=NOW, attempts=1, provider="p", provider_message_id="m-3")
    ledger.retry_later(batch, rows[4], due=LATER, message="503", attempts=2, provider="p")
    ledger.retry_later(batch, rows[5], due=LATER + timedelta(hours=1), message="429",
                       attempts=1, provider="p")
    ledger.unconfirmed(batch, rows[6], "timed out", provider="p")
    assert batch.write() == [taken.id]
    assert batch.write() == []                       # written once; nothing left to write
    after = {r.id: store.get_delivery(r.id) for r in rows}
    assert after[taken.id] == before
    got = [(d.state, d.reason, d.last_error, d.attempts, d.sent_at, d.due_at, d.provider_message_id)
           for d in (after[r.id] for r in rows)]
    assert got == [
        ("sent", None, None, 1, LATER, NOW, "m-0"),
        ("sent", None, None, 3, NOW, NOW, None),
        ("failed", "rejected", "550 no such user", 1, None, NOW, None),
        ("sending", None, None, 0, None, NOW, None),
        ("scheduled", "retrying", "503", 2, None, LATER, None),
        ("scheduled", "retrying", "429", 1, None, LATER + timedelta(hours=1), None),
        ("sending", "unconfirmed", "timed out", 0, None, NOW, None),
    ]
    assert {after[r.id].provider for r in rows if r.id != taken.id} == {"p"}


def test_a_batch_of_many_rows_and_rows_read_in_another_state(store):
    from sender.store.sql.deliveries import BATCH_ROWS

    rows = claimed_rows(store, BATCH_ROWS + 3)       # more rows than one statement takes
    batch = ledger.Batch(store)
    for n, row in enumerate(rows):
        ledger.handed(batch, row, at=NOW, key=f"key-{n % 2}")
    assert batch.write() == []
    ledger.sent(batch, rows[0], at=NOW, attempts=1, provider="p", provider_message_id="m")
    assert batch.write() == []
    settled = store.get_delivery(rows[0].id)
    # A row not being sent changes only in the state it was read in.
    ledger.cancel(batch, rows[1], ledger.STEP_GONE, "removed")      # read as sending: its claim
    ledger.schedule_again(batch, settled, due=LATER)                # read as sent
    stale_read = store.get_delivery(rows[2].id)                      # read while being sent
    ledger.release(batch, rows[2])
    ledger.release(batch, rows[3])
    assert batch.write() == []
    ledger.cancel(batch, store.get_delivery(rows[3].id), ledger.STEP_GONE, "removed")  # scheduled
    ledger.schedule_again(batch, stale_read, due=LATER)             # no longer sending
    assert batch.write() == [rows[2].id]
    keys = {store.get_delivery(r.id).handoff_key for r in rows[4:]}
    assert keys == {"key-0", "key-1"}
    assert [store.get_delivery(r.id).state for r in rows[:4]] == [
        "scheduled", "cancelled", "scheduled", "cancelled"]
    assert store.get_delivery(rows[0].id).due_at == LATER


def test_a_batch_refuses_the_same_row_twice(store):
    [row] = claimed_rows(store, 1)
    batch = ledger.Batch(store)
    ledger.handed(batch, row, at=NOW, key="k")
    ledger.sent(batch, row, at=NOW, attempts=1, provider="p", provider_message_id="m")
    with pytest.raises(ValueError, match=f"delivery {row.id} twice"):
        batch.write()
    assert store.get_delivery(row.id).state == "sending"


def test_a_long_batch_renews_its_claim_and_a_fresh_one_need_not(env, make_drip):
    drip = make_drip({**env, "DRIP_CLAIM_TIMEOUT": "10m"}, provider=Answering())
    ids = people(drip, "ok", 4)
    elapsed = [0.0]
    drip.provider.handoff_chunks = lambda messages: [messages[:2], messages[2:]]

    def slow(messages):        # the first request takes five minutes to answer
        elapsed[0] += 300.0

    drip.provider.during_send = slow
    report = send_due(drip, now=NOW, clock=lambda: elapsed[0])
    assert report.sent == 4
    rows = sorted(drip.store.deliveries(campaign="course"), key=lambda d: d.subscriber_id)
    assert [d.subscriber_id for d in rows] == ids
    # The first chunk went moments after the claim: its rows keep the claim's time. The second
    # was marked five minutes later, with its claim renewed then.
    assert [d.claimed_at for d in rows] == [NOW, NOW] + [NOW + timedelta(minutes=5)] * 2
    assert [d.handed_at for d in rows] == [NOW] * 4


# --- PostgreSQL: workers do not queue behind one another ----------------------------------
def test_a_send_on_postgresql_waits_for_no_store_wide_lock(postgres_url, project, make_drip):
    """Every row a run writes is guarded by its lease, so recording the answers takes no
    store-wide lock: another process holding it (a worker recording, an import) does not
    hold up this run. (Recording used to take it, so workers queued behind one another.)"""
    from sender.store.postgres import _WRITE_LOCK
    from tests.support import base_env, send_while_locked

    drip = make_drip(base_env(project, DRIP_DATABASE=postgres_url, DRIP_SEND_WINDOW="always"),
                     provider=Answering())
    for campaign in drip.campaigns:
        drip.store.set_meta(f"campaign-fingerprint:{campaign.id}", campaign.fingerprint())
    people(drip, "ok", 3)
    people(drip, "busy", 2)
    finished, report = send_while_locked(drip, postgres_url, "SELECT pg_advisory_xact_lock(%s)",
                                         (_WRITE_LOCK,), now=NOW, timeout=30)
    assert finished, "the run waited for the store-wide write lock"
    assert (report.sent, report.retried) == (3, 2)
    assert drip.store.delivery_counts() == {"sent": 3, "scheduled": 2}
