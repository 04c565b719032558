"""A broadcast's life: scheduled, sending, sent (or cancelled), kept in the ``broadcasts`` table.

* ``schedule`` records when it goes (``broadcast_schedule``); nothing is in the ledger yet,
  so it can be moved or cancelled freely, and people who confirm meanwhile are in it.
* Its deliveries are written (``broadcast_audience.write_rows``) by the first ``drip send``
  at or after ``DRIP_MIN_GAP`` before its first due time (``start_due``, called by
  ``dispatch.send_due``), or at once by ``send_now``. Written that early, a sequence email
  due in the gap before it sees it coming and yields (``DRIP_BROADCAST_YIELD``). The rows
  are written before the state moves to ``sending``, and writing them again adds nobody
  twice, so a crash or a second sender meanwhile changes nothing.
* From then on they are ordinary deliveries: ``drip send`` claims, renders, hands off and
  records them like any other, and an unsubscribe cancels the rest for that person. A
  broadcast is news of its day: a reader paused when hers falls due never gets it (her row
  is cancelled, ``broadcast_missed``, even if she resumes). When none is left to send, the
  broadcast is ``sent``.
* ``cancel`` stops what has not gone: the scheduled rows are cancelled (reason
  ``broadcast_cancelled``) and mail a provider holds for later is cancelled there where the
  provider allows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from . import broadcasts, ledger, send_ahead
from .broadcast_audience import write_rows
from .broadcast_schedule import Moment, check_not_past, parse_when
from .broadcasts import name_of
from .errors import DripError, InvalidInput, NotFound

log = logging.getLogger("drip.broadcasts")

SCHEDULED, SENDING, SENT, CANCELLED = "scheduled", "sending", "sent", "cancelled"
PAGE = 1000


@dataclass
class Timing:
    when: object        # Moment or LocalTime
    day: object         # the calendar day of a local time, else None
    first_at: object
    last_at: object


def timing(when, *, now):
    day = when.day(now)
    first, last = when.span(day)
    return Timing(when, day, first, last)


def when_of(broadcast, text):
    if text:
        return parse_when(text)
    if broadcast.when is None:
        raise InvalidInput(f"{broadcast.path}: no `when` in its front matter: give one, e.g. "
                           f'`drip broadcast schedule {broadcast.slug} "Tue 09:00 local"`')
    return broadcast.when


def _save(drip, broadcast, found, *, now):
    store = drip.store
    if not store.save_broadcast(
            broadcast.slug, campaign=broadcast.id, subject=broadcast.subject,
            when_text=found.when.text,
            local_day=found.day.isoformat() if found.day is not None else None,
            first_at=found.first_at, last_at=found.last_at,
            segment=broadcast.segment.text if broadcast.segment else None,
            archive=broadcast.archive, now=now):
        record = store.get_broadcast(broadcast.slug)
        raise InvalidInput(f"broadcast {broadcast.slug} is {record['state']} already (its emails "
                           "were written); it cannot be scheduled again. Copy the file under a "
                           "new name to send it once more")
    return store.get_broadcast(broadcast.slug)


def schedule(drip, broadcast, when_text=None, *, now):
    """Schedule ``broadcast`` (at ``when_text``, or its front matter's ``when``); a broadcast
    already scheduled moves. Its rows are written at once when its time is within
    DRIP_MIN_GAP. Returns its record."""
    found = timing(when_of(broadcast, when_text), now=now)
    check_not_past(found.when, now)
    record = _save(drip, broadcast, found, now=now)
    if record["first_at"] - drip.settings.min_gap <= now:
        start(drip, broadcast, record, now=now)
    return drip.store.get_broadcast(broadcast.slug)


def send_now(drip, broadcast, *, now):
    """Write its rows due ``now`` for everyone it reaches; ``drip send`` delivers them."""
    found = timing(Moment(now, "now"), now=now)
    record = _save(drip, broadcast, found, now=now)
    start(drip, broadcast, record, now=now)
    return drip.store.get_broadcast(broadcast.slug)


def start(drip, broadcast, record, *, now):
    """Write the deliveries, then mark it ``sending`` (see the module docstring)."""
    store = drip.store
    when = parse_when(record["when_text"]) if record["when_text"] != "now" else \
        Moment(record["first_at"], "now")
    day = date.fromisoformat(record["local_day"]) if when.local else None
    audience, added = write_rows(drip, broadcast, when, day, now=now)
    source = broadcast.path.read_text(encoding="utf-8")
    if not store.update_broadcast(broadcast.slug, expect_state=SCHEDULED, now=now, state=SENDING,
                                  audience=audience, source=source, started_at=now):
        current = store.get_broadcast(broadcast.slug)
        if current and current["state"] == CANCELLED:     # cancelled while we wrote
            _cancel_rows(drip, broadcast.id, now=now)
        return 0
    log.info("broadcast %s: %d deliveries written for %d people", broadcast.slug, added, audience)
    return added


def start_due(drip, *, now):
    """What ``drip send`` does for broadcasts at each run: write the rows of each one whose
    time is within DRIP_MIN_GAP, and mark ``sent`` each one with nothing left to send.
    Returns the problems met (a broadcast file that does not load waits, named)."""
    store, problems = drip.store, []
    for record in store.list_broadcasts(states=(SCHEDULED, SENDING)):
        if record["state"] == SENDING:
            _drop_missed(drip, record["campaign"], now=now)
            _finish_if_done(store, record, now=now)
            continue
        if record["first_at"] - drip.settings.min_gap > now:
            continue
        try:
            broadcast = broadcasts.load(drip.settings, record["name"])
        except DripError as exc:
            problems.append(f"broadcast {record['name']} waits: {exc}")
            continue
        start(drip, broadcast, record, now=now)
    return problems


def _drop_missed(drip, campaign, *, now):
    """A broadcast is news of its day: a reader paused when hers fell due never gets it (her
    row is cancelled, ``broadcast_missed``), also after she resumes."""
    store = drip.store
    while True:
        rows = store.paused_due(campaign, now, limit=PAGE)
        if not rows:
            return
        with store.transaction():
            for row in rows:
                ledger.cancel(store, row, ledger.BROADCAST_MISSED,
                              "she was paused when this broadcast was due")


def _finish_if_done(store, record, *, now):
    counts = store.campaign_state_counts(record["campaign"])
    if not counts.get(ledger.SCHEDULED) and not counts.get(ledger.SENDING):
        store.update_broadcast(record["name"], expect_state=SENDING, now=now, state=SENT,
                               finished_at=now)


def changed_since_start(drip, campaigns):
    """{campaign id: why its emails wait} for the broadcasts among ``campaigns`` whose file
    differs from the copy stored when their rows were written: everyone gets the email the
    first readers got, and the archive (which shows that copy) tells the truth. One read of
    the store a broadcast."""
    found = {}
    for campaign in {c for c in campaigns if name_of(c) is not None}:
        record = drip.store.get_broadcast(name_of(campaign))
        if not record or not record.get("source"):
            continue
        path = broadcasts.folder(drip.settings) / f"{record['name']}.md"
        try:
            now_text = path.read_text(encoding="utf-8")
        except OSError:
            continue        # gone: the file's lookup says so (its emails are cancelled)
        if now_text != record["source"]:
            found[campaign] = (
                f"{path} changed after its emails began going out: the readers still to come "
                "would get a different email than the first ones (and than the archive "
                f"shows); put it back as it was (git checkout -- {path}), or `drip broadcast "
                f"cancel {record['name']}` and send a new one")
    return found


def record_of(drip, name):
    name = str(name).removesuffix(".md")
    record = drip.store.get_broadcast(name)
    if record is None:
        raise NotFound(f"broadcast {name} has not been scheduled or sent "
                       f"(`drip broadcast schedule {name} WHEN` or `drip broadcast send {name}`)")
    return record


def cancel(drip, name, *, now):
    """Stop what has not gone; returns {"cancelled", "held_cancelled", "held_left",
    "in_flight", "sent"} counts."""
    store = drip.store
    record = record_of(drip, name)
    # One guarded write, whichever of the two it is in now: a `drip send` may move it from
    # scheduled to sending between the read above and this write.
    if not store.update_broadcast(record["name"], expect_state=(SCHEDULED, SENDING), now=now,
                                  state=CANCELLED, cancelled_at=now):
        state = store.get_broadcast(record["name"])["state"]
        raise InvalidInput(f"broadcast {record['name']} is {state} already; nothing to cancel")
    done = _cancel_rows(drip, record["campaign"], now=now)
    counts = store.campaign_state_counts(record["campaign"])
    done.update(in_flight=counts.get(ledger.SENDING, 0), sent=counts.get(ledger.SENT, 0))
    return done


def _cancel_rows(drip, campaign, *, now):
    store = drip.store
    message = "the coach cancelled the broadcast (drip broadcast cancel)"
    cancelled = 0
    while True:
        rows = list(store.deliveries(campaign=campaign, states=(ledger.SCHEDULED,), limit=PAGE))
        if not rows:
            break
        with store.transaction():
            cancelled += sum(bool(ledger.cancel(store, row, ledger.BROADCAST_CANCELLED, message))
                             for row in rows)
    waiting = send_ahead.held(store, now, campaign=campaign)
    held_cancelled = 0
    for delivery in send_ahead.cancelled_at_provider(drip, waiting):
        held_cancelled += ledger.held_cancelled(store, delivery, ledger.BROADCAST_CANCELLED,
                                                f"cancelled at {drip.provider.name}: {message}")
    return {"cancelled": cancelled, "held_cancelled": held_cancelled,
            "held_left": len(waiting) - held_cancelled}


def status(drip, name, *, now):
    """The record (brought up to date) and its deliveries counted by state."""
    record = record_of(drip, name)
    if record["state"] == SENDING:
        _finish_if_done(drip.store, record, now=now)
        record = drip.store.get_broadcast(record["name"])
    return record, drip.store.campaign_state_counts(record["campaign"])
