"""``drip worker``: send what is due, sleep until the next due time, repeat.

Stopping (SIGINT or SIGTERM) sets ``stop``; the batch in hand is finished and
recorded before the loop ends, so no delivery is left half-done.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from .dispatch import send_due


def run_worker(drip, *, clock, stop=None, interval=60.0, on_report=None, exit_when_idle=False):
    """Loop until ``stop`` (a threading.Event) is set. ``clock()`` gives the current time.
    With ``exit_when_idle`` the loop also ends after a run that sent nothing when nothing
    more is due (for batch jobs and tests)."""
    stop = stop or threading.Event()
    runs = 0
    while not stop.is_set():
        report = send_due(drip, now=clock(), stop=stop.is_set)
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
