"""PostgreSQL plans the send path's statements for the tables as they are, not as they were:
after a bulk write (an import, a broadcast's rows) ``drip send`` brings the planner's
statistics up to date before it claims (``PostgresStore.refresh_statistics``), and the
look-up of when each person was last sent is written so that no statistics can make it walk
every sent row.

Before this, 20,000 rows added to an empty ledger made every claim sort all due rows and find
its 500 again by walking every scheduled entry of ``deliveries_due`` (84 ms a claim, growing
with the list), until autovacuum analyzed the table up to a minute later."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sender.dispatch import send_due
from sender.models import Consent
from tests.conftest import at
from tests.support import base_env, seed, send_while_locked

NOW = at("2026-03-02T18:00Z")


@pytest.fixture
def pg_drip(postgres_url, project, make_drip):
    drip = make_drip(base_env(project, DRIP_DATABASE=postgres_url, DRIP_SEND_WINDOW="always"))
    return drip


def plan_of(store, sql, params):
    """The plan PostgreSQL makes for one statement, as a list of (node type, index) pairs."""
    sql = sql.replace("?", "%s")        # the shared SQL's placeholders, as ``_x`` turns them
    [row] = store.conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchall()
    found = []

    def walk(node):
        found.append((node["Node Type"], node.get("Index Name")))
        for child in node.get("Plans", []):
            walk(child)

    plan = row["QUERY PLAN"]
    walk((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return found


def statements_of(store, call):
    """The (sql, params) of each statement ``call()`` runs on ``store``."""
    seen, real = [], store._x

    def capture(sql, params=()):
        seen.append((sql, params))
        return real(sql, params)

    store._x = capture
    try:
        call()
    finally:
        store._x = real
    return seen


def claim_statement(store):
    """The statement ``claim_due`` runs, with its parameters, captured inside a transaction
    that is rolled back (nothing is claimed)."""
    def claim():
        with store.conn.transaction(force_rollback=True):
            store.claim_due(NOW, 500)

    [(sql, params)] = [s for s in statements_of(store, claim)
                       if s[0].startswith("UPDATE deliveries SET state = 'sending'")]
    return sql, params


def test_a_send_after_a_bulk_write_plans_its_claims_for_the_table_as_it_is(pg_drip):
    seed(pg_drip, 5000, NOW - timedelta(hours=1))
    store = pg_drip.store
    report = send_due(pg_drip, now=NOW, limit=500)
    assert report.sent == 500
    analyzed = {row["relname"] for row in store.conn.execute(
        "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL").fetchall()}
    assert {"deliveries", "subscribers"} <= analyzed
    known = store.conn.execute(
        "SELECT reltuples FROM pg_class WHERE relname = 'deliveries'").fetchone()["reltuples"]
    assert known == pytest.approx(5000, rel=0.05)
    plan = plan_of(store, *claim_statement(store))
    # The due rows are read in order from deliveries_due and stop at the claim's size (no
    # Sort of every due row), and the claimed rows are found again by their primary key.
    assert "Sort" not in [node for node, _ in plan]
    assert ("Index Scan", "deliveries_pkey") in plan
    assert store.delivery_counts() == {"sent": 500, "scheduled": 4500}


def test_statistics_are_refreshed_once_they_are_stale_and_not_before(pg_drip):
    store = pg_drip.store
    assert store.refresh_statistics() == []            # an empty database: nothing changed
    consent = Consent(source="test", at=NOW)
    store.add_subscribers([{"email": f"r{n}@example.com", "status": "active", "consent": consent}
                           for n in range(1500)], now=NOW)
    # Counted at once by the connection that wrote them (the server's own counts may lag).
    assert store.refresh_statistics() == ["subscribers"]
    assert store.refresh_statistics() == []
    store.add_subscribers([{"email": f"s{n}@example.com", "status": "active", "consent": consent}
                           for n in range(100)], now=NOW)
    assert store.refresh_statistics() == []            # under 1,000 rows and under 10%


def test_statistics_are_not_refreshed_inside_a_callers_transaction(pg_drip):
    store = pg_drip.store
    consent = Consent(source="test", at=NOW)
    with store.transaction():
        store.add_subscribers([{"email": f"r{n}@example.com", "status": "active",
                                "consent": consent} for n in range(1500)], now=NOW)
        assert store.refresh_statistics() == []
    lock = store.conn.execute("SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory'"
                              " AND pid = pg_backend_pid()").fetchone()["n"]
    assert lock == 0


def test_a_table_another_process_has_locked_does_not_hold_up_sending(pg_drip, postgres_url):
    """ANALYZE needs a lock that a VACUUM, an index being built or another ANALYZE holds for
    a while; the claims need no such lock, so the refresh skips that table, never waits."""
    seed(pg_drip, 2000, NOW - timedelta(hours=1))
    finished, report = send_while_locked(
        pg_drip, postgres_url, "LOCK TABLE deliveries, subscribers IN SHARE UPDATE EXCLUSIVE MODE",
        now=NOW)
    assert finished, "the send waited for the lock another process held"
    assert report.sent == 2000
    assert pg_drip.store.delivery_counts() == {"sent": 2000}


def test_a_role_that_may_not_analyze_the_tables_leaves_them_alone(pg_drip, postgres_url):
    """drip connected as a role that does not own the tables: nothing to analyze, and no
    attempt on every run that PostgreSQL would only answer with a warning."""
    import psycopg

    from sender.store.postgres import PostgresStore

    assert pg_drip.store.refresh_statistics() == []      # the tables made, by their owner
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS drip_sender")
        admin.execute("CREATE ROLE drip_sender LOGIN")
        admin.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO drip_sender")
        admin.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO drip_sender")
    store = PostgresStore(postgres_url.replace("postgres@", "drip_sender@"), migrate_schema=False)
    try:
        consent = Consent(source="test", at=NOW)
        store.add_subscribers([{"email": f"r{n}@example.com", "status": "active",
                                "consent": consent} for n in range(1500)], now=NOW)
        assert store.refresh_statistics() == []
        assert pg_drip.store.refresh_statistics() == ["subscribers"]     # its owner may
    finally:
        store.close()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM drip_sender")
            admin.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM drip_sender")
            admin.execute("DROP ROLE drip_sender")


def test_when_each_person_was_last_sent_is_read_by_person_whatever_the_statistics(pg_drip):
    """The look-up is driven by the batch's ids, so it reads their rows alone; the shared
    query, planned from a ledger analyzed before anything was sent, read every sent row."""
    seed(pg_drip, 3000, NOW - timedelta(hours=1))
    store = pg_drip.store
    store.conn.execute("ANALYZE deliveries")           # statistics from before any send
    assert send_due(pg_drip, now=NOW, limit=1000).sent == 1000
    sent = {d.subscriber_id: d.sent_at for d in store.deliveries(states=("sent",))}
    some = sorted(sent)[:5] + [max(sent) + 10_000]
    assert store.last_sent(some) == {i: sent[i] for i in some[:5]}
    assert store.last_sent(some, exclude_campaign="course") == {}
    [(sql, params)] = statements_of(store, lambda: store.last_sent(some))
    plan = plan_of(store, sql, params)
    assert any(index in ("deliveries_sent", "deliveries_subscriber",
                         "deliveries_subscriber_id_campaign_step_key") for _, index in plan)
    assert ("Index Scan", "deliveries_sent_at") not in plan


def test_the_hand_off_mark_is_written_in_place(pg_drip, postgres_url):
    """Marking a claimed row handed changes no indexed column, so PostgreSQL can write it as
    a heap-only update on the row's own page, touching none of the ledger's eleven indexes,
    if that page has room: the ledger's pages are filled to 60% (m013), which leaves room for
    the claim's and the mark's new versions. Filled to the brim, the mark (a third of the
    hand-off's writes) updated every index; under 2% of the updates were in place."""
    import psycopg

    seed(pg_drip, 2000, NOW - timedelta(hours=1))
    assert send_due(pg_drip, now=NOW).sent == 2000
    pg_drip.store.conn.execute("SELECT pg_stat_force_next_flush()")    # its counts, now
    with psycopg.connect(postgres_url, autocommit=True) as other:
        updated, in_place = other.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
            " WHERE relname = 'deliveries'").fetchone()
    assert updated >= 3 * 2000                  # the claim, the mark and the record of each
    assert in_place >= 2000 * 0.6               # most marks, at least


def test_a_provider_message_with_a_nul_is_recorded_not_fatal(postgres_url, project, make_drip):
    """A provider's answer is outside text: one that rejects an address with a NUL in its
    message (PostgreSQL text cannot hold one) is recorded as that delivery's failure, the
    NUL shown as U+FFFD, and the rest of the batch as sent; the ledger write did not fail."""
    from tests.providers.loopback import FakeApi, Reply, make_provider

    api = FakeApi()
    counter = iter(range(1, 100))
    api.default = lambda seen: Reply(200, [
        {"ErrorCode": 300 if n == 0 else 0, "MessageID": f"pm-{next(counter)}",
         "Message": "Invalid 'To' address\x00 here" if n == 0 else "OK"}
        for n, _ in enumerate(seen.json())])
    try:
        drip = make_drip(base_env(project, DRIP_DATABASE=postgres_url, DRIP_SEND_WINDOW="always"),
                         provider=make_provider("postmark", api.url))
        seed(drip, 3, NOW - timedelta(hours=1))
        report = send_due(drip, now=NOW)
    finally:
        api.close()
    assert (report.sent, report.failed) == (2, 1)
    [failed] = [d for d in drip.store.deliveries() if d.state == "failed"]
    assert "\ufffd here" in failed.last_error and "\x00" not in failed.last_error
