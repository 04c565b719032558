"""`drip worker` as a real process: it sends what is due and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from sender import subscribers
from sender.worker import run_worker, seconds_until_next
from tests.conftest import REPO, at


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)   # polling interval while waiting on another process, with a deadline
    return False


def test_worker_process_sends_then_stops_on_sigterm(env, make_drip, project):
    drip = make_drip({**env, "DRIP_MIN_GAP": "0"})
    now = datetime.now(UTC)
    for n in range(5):
        subscribers.add_subscriber(drip, f"p{n}@example.com", now=now - timedelta(minutes=1), confirmed=True)
    drip.close()
    proc = subprocess.Popen([sys.executable, "-m", "sender", "worker",
                             "--interval", "0.5"], env={**env, "DRIP_MIN_GAP": "0", "PATH": "/usr/bin:/bin"},
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(list((project / "outbox").glob("*.eml"))) == 5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "drip worker: stopped" in err
    check = make_drip(env)
    states = {d.state for d in check.store.deliveries(campaign="welcome")}
    assert states == {"sent"}
    assert not list(check.store.deliveries(states=("sending",)))


def test_run_worker_loop_with_passed_in_clock(drip):
    subscribers.add_subscriber(drip, "ana@example.com", now=at("2026-03-02T18:00Z"), confirmed=True)
    stop = threading.Event()
    moments = iter([at("2026-03-02T18:00Z"), at("2026-03-02T18:00Z"), at("2026-03-05T19:00Z"),
                    at("2026-03-05T19:00Z")])
    reports = []

    def on_report(report):
        reports.append(report.sent)
        if len(reports) == 2:
            stop.set()

    runs = run_worker(drip, clock=lambda: next(moments), stop=stop, interval=0.01, on_report=on_report)
    assert runs == 2 and reports == [1, 1]


def test_sleep_until_next_due(drip):
    now = at("2026-03-02T18:00Z")
    assert seconds_until_next(drip, now, 60) == 60
    subscribers.add_subscriber(drip, "ana@example.com", now=now, confirmed=True)
    assert seconds_until_next(drip, now, 60) == 0
    drip.store.conn.execute("UPDATE deliveries SET state = 'sent'")
    drip.store.conn.execute("UPDATE deliveries SET state = 'scheduled' WHERE step = 'one'")
    [one] = drip.store.deliveries(states=("scheduled",))
    assert seconds_until_next(drip, one.due_at - timedelta(seconds=30), 60) == 30


def test_only_a_sending_process_of_its_own_changes_the_collector(run, monkeypatch):
    """`drip send` in its own process (``main()``) looks at young objects every 20,000
    allocations; the same command run inside another program (here, the tests) leaves that
    program's collector alone, and `drip serve` is never changed (its requests leave cycles)."""
    import gc

    from sender.cli import cli

    before = gc.get_threshold()
    try:
        assert run("send").exit_code == 0
        assert gc.get_threshold() == before
        monkeypatch.setattr(cli, "own_process", True, raising=False)
        assert run("send").exit_code == 0
        assert gc.get_threshold() == (20_000, 50, 100)
    finally:
        gc.set_threshold(*before)
