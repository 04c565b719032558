"""``drip worker``: send what is due, sleep until the next due time, repeat.

Stopping (SIGINT or SIGTERM) sets ``stop``; the batch in hand is finished and
recorded before the loop ends, so no delivery is left half-done. Before each run the
campaign and template folders are looked at, and edits go live (``reloader.py``).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from .dispatch import send_due
from .errors import DatabaseMissing, DripError
from .reloader import Reloader

log = logging.getLogger("drip.worker")


def run_worker(drip, *, clock, stop=None, interval=60.0, on_report=None, exit_when_idle=False,
               reload=True):
    """Loop until ``stop`` (a threading.Event) is set. ``clock()`` gives the current time.
    With ``exit_when_idle`` the loop also ends after a run that sent nothing when nothing
    more is due (for batch jobs and tests). With ``reload`` (the default) edited campaign
    and template files are picked up before each run; a broken edit is logged and the
    last good version kept."""
    stop = stop or threading.Event()
    reloader = None
    runs = 0
    while not stop.is_set():
        try:
            if reload:
                reloader = reloader or Reloader(drip.settings, every=None)
                reloader.apply(drip)
            report = send_due(drip, now=clock(), stop=stop.is_set)
        except DatabaseMissing:
            raise        # the wrong folder or setting: waiting will not make the database appear
        except DripError as exc:
            if exit_when_idle:
                raise    # a batch job: fail with the message (exit code 1), do not wait
            # A provider that refuses every request, a database that is full: say so and try
            # again after the interval instead of exiting into a restart loop.
            log.error("sending stopped: %s; trying again in %.0fs", exc, interval)
            runs += 1
            stop.wait(interval)
            continue
        runs += 1
        if on_report:
            on_report(report)
        if exit_when_idle and not (report.sent or report.failed or report.retried) \
                and drip.store.count_due(clock()) == 0:
            break
        stop.wait(seconds_until_next(drip, clock(), interval))
    return runs


def seconds_until_next(drip, now, interval):
    """Sleep until the next due delivery, but at most ``interval`` seconds (new signups and
    campaign edits are picked up at least that often)."""
    next_due = drip.store.next_due()
    if next_due is None:
        return interval
    return max(0.0, min(interval, (next_due - now) / timedelta(seconds=1)))
