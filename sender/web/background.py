"""Work done after the answer: one daemon thread per web app, fed by a queue.

A signup or a confirmation is answered as soon as it is stored; the email it calls
for (the confirmation, the welcome) is sent from here, so a request never waits on
the provider and its response time says nothing about the address. A job that
fails, or one still queued when the process ends, leaves its delivery scheduled
for the next `drip send`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

log = logging.getLogger("drip.web")

MAX_QUEUED = 10_000   # beyond this, jobs are left to `drip send`


class Background:
    """Runs the callables given to ``submit`` one at a time, in order, on its own thread.
    The thread starts with the first job, so a server that creates the app and then forks
    its workers (gunicorn --preload) gets one in each worker."""

    def __init__(self, name="drip-web-background"):
        self.name = name
        self._jobs = queue.Queue(maxsize=MAX_QUEUED)
        self._thread = None
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, job):
        """Queue ``job`` (a callable without arguments); False when the queue is full or
        the runner was closed."""
        with self._lock:
            if self._closed:
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            try:
                self._jobs.put_nowait(job)
            except queue.Full:
                log.warning("the background queue is full; `drip send` will send what is due")
                return False
        return True

    def _run(self):
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                job()
            except Exception:
                log.exception("a background job failed; `drip send` will send what is due")
            finally:
                self._jobs.task_done()

    def drain(self, timeout):
        """Wait until every job submitted so far is done; False if ``timeout`` seconds
        passed first."""
        deadline = time.monotonic() + timeout
        done = self._jobs.all_tasks_done
        with done:
            while self._jobs.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                done.wait(left)
        return True

    def close(self, timeout):
        """Finish the queued jobs (waiting at most ``timeout`` seconds) and stop the thread;
        later jobs are refused. True when everything queued was done."""
        deadline = time.monotonic() + timeout
        with self._lock:
            first, self._closed = not self._closed, True
            thread = self._thread
        if thread is None:
            return True
        if first:
            try:
                self._jobs.put(None, timeout=timeout)   # the thread stops when it gets here
            except queue.Full:
                return False
        thread.join(max(0.0, deadline - time.monotonic()))
        return not thread.is_alive()
