"""Broadcasts on the sequence engine, end to end on SQLite and PostgreSQL: written once per
person, delivered at 09:00 in each reader's own zone by `drip send` run forward, never to
anyone unsubscribed, paused, pending or outside the segment; two senders at once; an
unsubscribe mid-broadcast; cancelling; and the minimum gap beside a sequence email."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from email import message_from_bytes, policy

import pytest

from sender import broadcast_runs as runs
from sender import broadcasts, ledger, sequence, subscribers
from sender.broadcast_audience import write_rows
from sender.config import Settings
from sender.dispatch import send_due
from sender.drip import Drip
from sender.errors import InvalidInput
from sender.providers.base import ACCEPTED, SCHEDULED, Provider, SendResult
from tests.broadcast_support import NINE_LOCAL, SCHEDULED_AT, ZONES, person, write_broadcast
from tests.conftest import at

NAME = "2026-03-10-workshop"
CAMPAIGN = "broadcast." + NAME


@pytest.fixture(params=["sqlite", "postgres"])
def engine_env(request, env):
    if request.param == "sqlite":
        return env
    return {**env, "DRIP_DATABASE": request.getfixturevalue("postgres_url")}


def run_forward(drip, start, end, step=timedelta(minutes=15)):
    """`drip send --now T` every ``step`` from ``start`` to ``end``; the reports."""
    reports, now = [], start
    while now <= end:
        reports.append(send_due(drip, now=now))
        now += step
    return reports


def sent_rows(drip, campaign=CAMPAIGN, step="send"):
    return {d.subscriber_id: d for d in drip.store.deliveries(campaign=campaign) if d.step == step}


def readers(drip):
    """One reader tagged ``local`` in each zone, one without a zone, and people who must not
    get it: outside the segment, paused, pending, unsubscribed."""
    chosen = {key: person(drip, f"{key}@example.com", timezone=tz, tags=["local"])
              for key, tz in ZONES.items()}
    chosen["nozone"] = person(drip, "nozone@example.com", tags=["local"])    # DRIP_TIMEZONE: LA
    others = {"outside": person(drip, "outside@example.com", timezone=ZONES["la"]),
              "paused": person(drip, "paused@example.com", tags=["local"], status="paused"),
              "pending": person(drip, "pending@example.com", tags=["local"], status="pending"),
              "gone": person(drip, "gone@example.com", tags=["local"], status="unsubscribed")}
    return chosen, others


def test_a_local_time_broadcast_reaches_each_reader_once_at_nine_in_her_zone(
        engine_env, make_drip, project):
    drip = make_drip(engine_env)
    chosen, others = readers(drip)
    write_broadcast(project, NAME, segment="tag:local", when="Tue 09:00 local")
    record = runs.schedule(drip, broadcasts.load(drip.settings, NAME), now=SCHEDULED_AT)
    assert record["state"] == "scheduled" and not sent_rows(drip)     # nothing written yet
    # She confirms after it was scheduled, before its rows are written: she gets it too.
    late = subscribers.add_subscriber(drip, "late@example.com", now=at("2026-03-07T12:00Z"),
                                      timezone=ZONES["tokyo"], tags=["local"], confirmed=True)
    chosen["late"] = late.subscriber
    reports = run_forward(drip, at("2026-03-08T00:00Z"), at("2026-03-11T12:00Z"))
    rows = sent_rows(drip)
    assert set(rows) == {p.id for p in chosen.values()}               # nobody else has a row
    expected = {**NINE_LOCAL, "nozone": NINE_LOCAL["la"], "late": NINE_LOCAL["tokyo"]}
    for key, who in chosen.items():
        assert (rows[who.id].state, rows[who.id].sent_at) == ("sent", expected[key]), key
    files = sorted((project / "outbox").glob(f"{CAMPAIGN}.*.eml"))
    assert len(files) == len(chosen)
    to = Counter(message_from_bytes(f.read_bytes(), policy=policy.default)["To"].addresses[0]
                 .addr_spec for f in files)
    assert to == Counter(f"{p.email}" for p in chosen.values())
    assert not any(p.email in to for p in others.values())
    assert not any(r.template_errors or r.errors for r in reports)
    done = drip.store.get_broadcast(NAME)
    assert (done["state"], done["audience"]) == ("sent", len(chosen))
    assert done["source"] == (project / "broadcasts" / f"{NAME}.md").read_text()
    # Written again, or scheduled again: nobody twice.
    b = broadcasts.load(drip.settings, NAME)
    assert write_rows(drip, b, b.when, b.when.day(SCHEDULED_AT), now=at("2026-03-12T00:00Z")) == (
        len(chosen), 0)
    with pytest.raises(InvalidInput, match="cannot be scheduled again"):
        runs.schedule(drip, b, "Tue 09:00 local", now=at("2026-03-12T00:00Z"))
    send_due(drip, now=at("2026-03-20T00:00Z"))       # the late one's own course goes on
    assert len(sent_rows(drip)) == len(chosen)
    assert len(list((project / "outbox").glob(f"{CAMPAIGN}.*.eml"))) == len(chosen)


def test_an_unsubscribe_mid_broadcast_stops_hers(engine_env, make_drip, project):
    drip = make_drip(engine_env)
    chosen, _ = readers(drip)
    write_broadcast(project, NAME, segment="tag:local", when="Tue 09:00 local")
    runs.schedule(drip, broadcasts.load(drip.settings, NAME), now=SCHEDULED_AT)
    run_forward(drip, at("2026-03-09T00:00Z"), at("2026-03-10T01:00Z"))   # Chatham, Tokyo went
    rows = sent_rows(drip)
    assert {k for k, p in chosen.items() if rows[p.id].state == "sent"} == {"chatham", "tokyo"}
    la = drip.store.get_subscriber(id=chosen["la"].id)
    subscribers.unsubscribe(drip, la, now=at("2026-03-10T02:00Z"))
    run_forward(drip, at("2026-03-10T02:00Z"), at("2026-03-11T00:00Z"))
    rows = sent_rows(drip)
    assert (rows[la.id].state, rows[la.id].reason) == ("cancelled", ledger.UNSUBSCRIBED)
    assert {k for k, p in chosen.items() if rows[p.id].state == "sent"} == set(chosen) - {"la"}
    assert not list((project / "outbox").glob(f"{CAMPAIGN}.send.{la.uid}.eml"))


def test_a_reader_paused_when_hers_falls_due_never_gets_it(engine_env, make_drip, project):
    drip = make_drip(engine_env)
    chosen, _ = readers(drip)
    write_broadcast(project, NAME, segment="tag:local", when="Tue 09:00 local")
    runs.schedule(drip, broadcasts.load(drip.settings, NAME), now=SCHEDULED_AT)
    run_forward(drip, at("2026-03-09T00:00Z"), at("2026-03-10T01:00Z"))   # rows written
    la = drip.store.get_subscriber(id=chosen["la"].id)
    subscribers.pause(drip, la, now=at("2026-03-10T02:00Z"))
    run_forward(drip, at("2026-03-10T02:00Z"), at("2026-03-10T18:00Z"))   # her 09:00 passes
    subscribers.resume(drip, drip.store.get_subscriber(id=la.id), now=at("2026-03-10T18:00Z"))
    run_forward(drip, at("2026-03-10T18:00Z"), at("2026-03-12T00:00Z"))
    rows = sent_rows(drip)
    assert (rows[la.id].state, rows[la.id].reason) == ("cancelled", ledger.BROADCAST_MISSED)
    assert {k for k, p in chosen.items() if rows[p.id].state == "sent"} == set(chosen) - {"la"}
    assert drip.store.get_broadcast(NAME)["state"] == "sent"


class Recording(Provider):
    """Takes two messages a request and records every address it gets (thread-safe)."""

    name = "recording"
    batch_size = 2
    max_schedule_ahead = None

    def __init__(self):
        self.lock, self.received = threading.Lock(), []

    def send(self, messages):
        with self.lock:
            self.received += [m.to.addr_spec for m in messages]
        return [SendResult(m.delivery_id, ACCEPTED, provider_message_id="x") for m in messages]

    def reconcile(self, delivery, message_id):
        return "unknown", None

    def close(self):
        pass


def test_two_senders_at_once_send_each_reader_one(engine_env, make_drip, project):
    setup = make_drip(engine_env)
    for n in range(40):
        person(setup, f"p{n}@example.com", timezone=list(ZONES.values())[n % 5], tags=["local"])
    write_broadcast(project, NAME, segment="tag:local", when="2026-03-10 09:00 Europe/London")
    runs.schedule(setup, broadcasts.load(setup.settings, NAME), now=SCHEDULED_AT)
    provider = Recording()
    go = threading.Barrier(2)
    failures = []

    def run():
        drip = Drip(Settings.from_env(engine_env), provider=provider)   # its own connection
        try:
            go.wait(10)
            send_due(drip, now=at("2026-03-10T09:00Z"))     # both write the rows, both claim
        except Exception as exc:                         # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            drip.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    assert Counter(provider.received) == Counter(f"p{n}@example.com" for n in range(40))
    assert {d.state for d in setup.store.deliveries(campaign=CAMPAIGN)} == {"sent"}


def test_cancel_stops_what_has_not_gone(engine_env, make_drip, project):
    drip = make_drip(engine_env)
    chosen, _ = readers(drip)
    write_broadcast(project, NAME, segment="tag:local", when="Tue 09:00 local")
    runs.schedule(drip, broadcasts.load(drip.settings, NAME), now=SCHEDULED_AT)
    run_forward(drip, at("2026-03-09T00:00Z"), at("2026-03-10T01:00Z"))   # Chatham, Tokyo went
    done = runs.cancel(drip, NAME, now=at("2026-03-10T01:30Z"))
    assert (done["cancelled"], done["sent"], done["in_flight"]) == (len(chosen) - 2, 2, 0)
    rows = sent_rows(drip)
    assert Counter((r.state, r.reason) for r in rows.values()) == Counter(
        {("sent", None): 2, ("cancelled", ledger.BROADCAST_CANCELLED): len(chosen) - 2})
    assert sum(r.sent for r in run_forward(drip, at("2026-03-10T02:00Z"), at("2026-03-11T00:00Z"))) == 0
    assert drip.store.get_broadcast(NAME)["state"] == "cancelled"
    with pytest.raises(InvalidInput, match="nothing to cancel"):
        runs.cancel(drip, NAME, now=at("2026-03-11T00:00Z"))


def test_cancelled_before_its_rows_are_written_nothing_is_written(engine_env, make_drip, project):
    drip = make_drip(engine_env)
    readers(drip)
    write_broadcast(project, NAME, segment="tag:local", when="Tue 09:00 local")
    runs.schedule(drip, broadcasts.load(drip.settings, NAME), now=SCHEDULED_AT)
    assert runs.cancel(drip, NAME, now=SCHEDULED_AT)["cancelled"] == 0
    run_forward(drip, at("2026-03-09T00:00Z"), at("2026-03-10T12:00Z"), step=timedelta(hours=1))
    assert not sent_rows(drip)
    # Cancelled before it began, it may be scheduled again.
    record = runs.schedule(drip, broadcasts.load(drip.settings, NAME), "Wed 09:00 local",
                           now=at("2026-03-10T12:00Z"))
    # Its first hour (Wed 09:00 at UTC+14) is within DRIP_MIN_GAP: its rows are written now.
    assert (record["state"], record["local_day"]) == ("sending", "2026-03-11")
    assert len(sent_rows(drip)) == record["audience"] > 0


def test_send_now_writes_rows_due_now_once(engine_env, make_drip, project):
    drip = make_drip(engine_env)
    chosen, _ = readers(drip)
    write_broadcast(project, NAME, segment="tag:local")
    now = at("2026-03-10T12:00Z")
    record = runs.send_now(drip, broadcasts.load(drip.settings, NAME), now=now)
    assert (record["state"], record["audience"]) == ("sending", len(chosen))
    assert {d.due_at for d in drip.store.deliveries(campaign=CAMPAIGN)} == {now}
    assert send_due(drip, now=now).sent == len(chosen)
    with pytest.raises(InvalidInput, match="cannot be scheduled again"):
        runs.send_now(drip, broadcasts.load(drip.settings, NAME), now=now)
    assert runs.status(drip, NAME, now=now)[0]["state"] == "sent"


# --- the minimum gap beside a sequence email ---------------------------------------------
@pytest.mark.parametrize(("setting", "course_at", "broadcast_at"), [
    # The sequence email (due Mon 16:00 in LA) moves to the next window a whole gap after
    # the broadcast (Tue 09:00): Wed 09:00 PDT.
    ("sequence", at("2026-03-11T16:00Z"), at("2026-03-10T16:00Z")),
    # The broadcast moves instead: a gap after the sequence email, Tue 12:00 PDT.
    ("broadcast", at("2026-03-09T23:00Z"), at("2026-03-10T19:00Z")),
])
def test_a_broadcast_and_a_sequence_email_never_land_within_the_gap(
        engine_env, make_drip, project, setting, course_at, broadcast_at):
    drip = make_drip({**engine_env, "DRIP_BROADCAST_YIELD": setting})
    ana = person(drip, "ana@example.com", timezone=ZONES["la"], tags=["local"])
    # Enrolled Fri 16:00 PST: the course's first email is due Mon 16:00 PDT (23:00 UTC).
    sequence.enroll(drip, ana, drip.campaigns.get("course"), at("2026-03-07T00:00Z"))
    assert sent_rows(drip, "course", "one")[ana.id].due_at == at("2026-03-09T23:00Z")
    write_broadcast(project, NAME, segment="tag:local", when="Tue 09:00 local")
    runs.schedule(drip, broadcasts.load(drip.settings, NAME), now=SCHEDULED_AT)
    run_forward(drip, at("2026-03-09T12:00Z"), at("2026-03-12T00:00Z"))
    course, broadcast = sent_rows(drip, "course", "one")[ana.id], sent_rows(drip)[ana.id]
    assert (course.state, course.sent_at) == ("sent", course_at)
    assert (broadcast.state, broadcast.sent_at) == ("sent", broadcast_at)
    assert abs(course.sent_at - broadcast.sent_at) >= drip.settings.min_gap


def test_a_file_edited_to_an_impossible_when_holds_only_its_own_emails(drip, project):
    # The coach's typo in a file whose rows are written does not stop `drip send` (before, an
    # OverflowError ended the run and left the batch claimed): its emails wait, as a broken
    # file's do, named in the report.
    from sender import broadcast_runs as runs
    path = write_broadcast(project, "2026-03-10-workshop")
    ann = person(drip, "ann@example.com", timezone=ZONES["london"])
    runs.send_now(drip, broadcasts.load(drip.settings, "2026-03-10-workshop"), now=SCHEDULED_AT)
    text = path.read_text().replace("+++\n", '+++\nwhen = "9999-12-31T23:59-12:00"\n', 1)
    path.write_text(text)
    report = send_due(drip, now=SCHEDULED_AT + timedelta(minutes=1))
    [row] = drip.store.deliveries(subscriber_id=ann.id)
    assert row.state == "scheduled" and row.reason == ledger.CAMPAIGN_ERROR, row
    assert any("2000 and 2999" in problem for problem in report.template_errors), report


def test_a_cancel_that_races_the_start_leaves_it_cancelled_and_out_of_the_archive(
        drip, project, env, monkeypatch):
    # The coach's cancel reads the broadcast as scheduled; before its write, a worker's `drip
    # send` (another connection) writes the rows and marks it sending. The cancel must win:
    # every row cancelled, the broadcast cancelled, never marked sent, never published.
    from sender.archive import Archive
    write_broadcast(project, NAME, subject="Draft: do not publish")
    person(drip, "ann@example.com", timezone=ZONES["la"])
    runs.schedule(drip, broadcasts.load(drip.settings, NAME), "2026-03-12T17:00Z",
                  now=SCHEDULED_AT)
    worker = Drip(Settings.from_env(env))
    read = runs.record_of

    def read_then_the_worker_starts_it(d, name):
        record = read(d, name)
        runs.start_due(worker, now=at("2026-03-12T06:00Z"))
        return record

    monkeypatch.setattr(runs, "record_of", read_then_the_worker_starts_it)
    runs.cancel(drip, NAME, now=at("2026-03-12T06:00Z"))
    monkeypatch.undo()
    send_due(worker, now=at("2026-03-12T18:00Z"))
    assert drip.store.get_broadcast(NAME)["state"] == "cancelled"
    assert drip.store.campaign_state_counts(CAMPAIGN) == {"cancelled": 1}
    assert Archive(drip.settings).entries(drip.store, drip.templates) == []
    worker.close()


def test_a_file_edited_after_its_emails_began_holds_the_rest_until_put_back(drip, project):
    # Everyone gets the same email, and the archive shows what they got: once its rows are
    # written, a changed file holds the rest (named, with how to fix it) instead of sending
    # a different email to the readers still to come.
    from sender.archive import Archive
    path = write_broadcast(project, NAME, body="The workshop costs $40.")
    first = person(drip, "first@example.com", timezone=ZONES["tokyo"])
    later = person(drip, "later@example.com", timezone=ZONES["la"])
    runs.schedule(drip, broadcasts.load(drip.settings, NAME), "Tue 09:00 local", now=SCHEDULED_AT)
    run_forward(drip, NINE_LOCAL["tokyo"] - timedelta(days=1), NINE_LOCAL["tokyo"])
    assert sent_rows(drip)[first.id].state == "sent"
    original = path.read_text()
    path.write_text(original.replace("$40", "$400, and here is a new link"))
    report = send_due(drip, now=NINE_LOCAL["la"])
    held = sent_rows(drip)[later.id]
    assert (held.state, held.reason) == ("scheduled", ledger.CAMPAIGN_ERROR)
    assert any("changed after its emails began" in p for p in report.template_errors), report
    path.write_text(original)
    run_forward(drip, NINE_LOCAL["la"], NINE_LOCAL["la"] + timedelta(minutes=30))
    assert sent_rows(drip)[later.id].state == "sent"
    bodies = [p.read_text() for p in sorted((project / "outbox").glob(f"{CAMPAIGN}.*.eml"))]
    assert len(bodies) == 2 and not any("$400" in b for b in bodies)
    [entry] = Archive(drip.settings).entries(drip.store, drip.templates)
    assert entry.name == NAME


class Holding(Recording):
    """Holds mail until its send time, and cancels what it holds, except for one address."""

    name = "holding"
    batch_size = 50
    max_schedule_ahead = timedelta(hours=72)

    def __init__(self, refuses):
        super().__init__()
        self.refuses, self.cancelled = refuses, []

    def send(self, messages):
        super().send(messages)
        return [SendResult(m.delivery_id, SCHEDULED if m.send_at else ACCEPTED,
                           provider_message_id=f"h{m.delivery_id}") for m in messages]

    def cancel_scheduled(self, delivery):
        if delivery.subscriber_id == self.refuses:
            return False
        self.cancelled.append(delivery.id)
        return True


def test_cancel_takes_back_what_the_provider_still_holds(engine_env, make_drip, project):
    drip = make_drip(engine_env)
    chosen, _ = readers(drip)
    write_broadcast(project, NAME, segment="tag:local", when="Tue 09:00 local")
    runs.schedule(drip, broadcasts.load(drip.settings, NAME), now=SCHEDULED_AT)
    refuses = chosen["la"].id
    drip.provider = Holding(refuses)
    report = send_due(drip, now=at("2026-03-09T12:00Z"), ahead=timedelta(hours=48))
    held = [r for r in sent_rows(drip).values() if r.state == "sent" and r.sent_at == r.due_at]
    assert report.sent == len(held) == len(chosen)       # each held until her 09:00
    done = runs.cancel(drip, NAME, now=at("2026-03-09T13:00Z"))
    assert (done["held_cancelled"], done["held_left"]) == (len(chosen) - 1, 1)
    rows = sent_rows(drip)
    assert sorted(drip.provider.cancelled) == sorted(r.id for r in rows.values()
                                                     if r.subscriber_id != refuses)
    assert Counter((r.state, r.reason) for r in rows.values()) == Counter(
        {("cancelled", ledger.BROADCAST_CANCELLED): len(chosen) - 1, ("sent", None): 1})
