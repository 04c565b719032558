"""Writing a broadcast's rows costs the database one statement per due time in each page of
1,000 people (SQLite: per 500 ids), inside one transaction a page, not a statement per person;
and the rows are the same: one per active person, due when her zone says."""

from __future__ import annotations

import re
from collections import Counter

from sender import broadcast_runs, broadcasts
from sender.broadcast_audience import write_rows
from sender.broadcast_schedule import Moment
from sender.models import Consent
from tests.broadcast_support import NINE_LOCAL, SCHEDULED_AT, ZONES, write_broadcast
from tests.conftest import at

NAME = "2026-03-10-workshop"


def many(drip, count, zones):
    """``count`` active people, the n-th in ``zones[n % len(zones)]``, and a paused one."""
    consent = Consent(source="test", at=at("2026-02-01T12:00Z"), confirmed_at=at("2026-02-01T12:00Z"))
    rows = [{"email": f"p{n}@example.com", "name": "", "timezone": zones[n % len(zones)],
             "status": "active", "consent": consent} for n in range(count)]
    rows.append({"email": "paused@example.com", "name": "", "status": "paused", "consent": consent})
    drip.store.add_subscribers(rows, now=at("2026-02-01T12:00Z"))
    return {p.id: p for p in drip.store.subscribers_by_email(
        [f"p{n}@example.com" for n in range(count)]).values()}


def traced(drip, call):
    statements = []
    drip.store.conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        drip.store.conn.set_trace_callback(None)
    # SQLite reports a trigger's run (the stored counters) as the statement that fired it
    # again, with the same text: the statements are the distinct texts.
    inserts = {s for s in statements if re.match(r"\s*INSERT\s+(OR\s+\w+\s+)?INTO\s+DELIVERIES\b",
                                                  s, re.I)}
    begins = [s for s in statements if s.strip().upper().startswith("BEGIN")]
    return inserts, begins


def test_a_moment_writes_a_statement_a_page(env, make_drip, project):
    drip = make_drip(env)
    people = many(drip, 2500, [None])
    write_broadcast(project, NAME)
    broadcast = broadcasts.load(drip.settings, NAME)
    inserts, begins = traced(drip, lambda: broadcast_runs.send_now(drip, broadcast, now=SCHEDULED_AT))
    # Pages of 1,000, 1,000 and 500 people; SQLite takes at most 500 ids a statement.
    assert len(inserts) == 5, len(inserts)
    assert len(begins) <= 3 + 2                         # a transaction a page; the record's own
    rows = list(drip.store.deliveries(campaign=broadcast.id))
    assert Counter(d.subscriber_id for d in rows) == Counter(set(people))
    assert {(d.state, d.step, d.due_at) for d in rows} == {("scheduled", "send", SCHEDULED_AT)}
    assert drip.store.get_broadcast(NAME)["audience"] == 2500
    # Written again (as after a crash before its state moved on): nothing added, nobody twice.
    assert write_rows(drip, broadcast, Moment(SCHEDULED_AT, "now"), None, now=SCHEDULED_AT) == (2500, 0)
    assert len(list(drip.store.deliveries(campaign=broadcast.id))) == 2500


def test_a_local_time_writes_a_statement_per_zone_a_page(env, make_drip, project):
    drip = make_drip(env)
    zones = ["la", "london", "tokyo", "kolkata", "chatham"]
    people = many(drip, 2500, [ZONES[z] for z in zones])
    write_broadcast(project, NAME, when="Tue 09:00 local")
    broadcast = broadcasts.load(drip.settings, NAME)
    inserts, _ = traced(drip, lambda: broadcast_runs.schedule(drip, broadcast, now=at("2026-03-09T00:00Z")))
    assert len(inserts) == 3 * len(zones), len(inserts)
    rows = list(drip.store.deliveries(campaign=broadcast.id))
    assert Counter(d.subscriber_id for d in rows) == Counter(set(people))
    for row in rows:
        zone = next(z for z in zones if ZONES[z] == people[row.subscriber_id].timezone)
        assert row.due_at == NINE_LOCAL[zone]
