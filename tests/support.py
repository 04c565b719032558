"""What the tests share with the benchmarks, without pytest (so that ``benchmarks/`` runs
with only the bench extras, ``pip install -e '.[bench]'``): the test project's settings, a
throwaway PostgreSQL server, and seeding and running ``drip worker`` processes.

``tests/conftest.py`` and ``tests/pgserver.py`` build their fixtures on these.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sender.models import Consent

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent
SECRET = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


def at(text):
    """An aware UTC datetime from ISO 8601 text ('2026-03-09T09:00Z')."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def base_env(root, **overrides):
    env = {
        "DRIP_DATABASE": str(root / "drip.db"),
        "DRIP_PROVIDER": "outbox",
        "DRIP_OUTBOX_DIR": str(root / "outbox"),
        "DRIP_FROM": "Coach Example <coach@example.com>",
        "DRIP_POSTAL_ADDRESS": "123 Example St, Redmond, WA 98052, USA",
        "DRIP_BASE_URL": "https://mail.example.com",
        "DRIP_SECRET_KEY": SECRET,
        "DRIP_TIMEZONE": "America/Los_Angeles",
        "DRIP_SEND_WINDOW": "Mon-Fri 09:00-17:00",
        "DRIP_CAMPAIGNS_DIR": str(root / "campaigns"),
        "DRIP_TEMPLATES_DIR": str(root / "templates"),
        # The values above are the examples `drip init` writes. Real providers in the tests are
        # loopback servers, so the tests may send with them; a test of the refusal unsets this.
        "DRIP_ALLOW_EXAMPLE_VALUES": "true",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


# --- a throwaway PostgreSQL server ---------------------------------------------------------
def find_bin(name):
    """A PostgreSQL program from PATH or the Debian layout, or None."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self):
        self.initdb, self.pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise RuntimeError("initdb and pg_ctl not found (install PostgreSQL: apt-get install "
                               "postgresql, or run scripts/install-test-tools.sh)")
        self.root = Path(tempfile.mkdtemp(prefix="drip-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = _system_user()
            shutil.chown(self.root, self.user, self.user)

    def _run(self, *args):
        command = list(args)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stderr.strip()}\n{log}")
        return result

    def start(self):
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")
        return self

    def url(self, dbname="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name):
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self):
        try:
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _system_user():
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True,
                       capture_output=True)
    return "postgres"


# --- many `drip worker` processes -----------------------------------------------------------
def seed(drip, count, due):
    """``count`` active subscribers, each with one due delivery of course/one."""
    store = drip.store
    consent = Consent(source="test", at=due)
    for start in range(0, count, 5000):
        store.add_subscribers([{"email": f"w{i}@example.com", "status": "active",
                                "consent": consent}
                               for i in range(start, min(start + 5000, count))], now=due)
    after, rows = 0, []
    while page := store.subscriber_page(after_id=after, limit=5000):
        rows += [{"subscriber_id": p.id, "campaign": "course", "step": "one", "due_at": due}
                 for p in page]
        after = page[-1].id
    store.add_deliveries(rows, now=due)
    store.set_meta("campaign-fingerprint:course", drip.campaigns.get("course").fingerprint())
    store.set_meta("campaign-fingerprint:welcome", drip.campaigns.get("welcome").fingerprint())
    store.set_meta("campaign-fingerprint:confirmation",
                   drip.campaigns.get("confirmation").fingerprint())


def send_while_locked(drip, url, statement, params=(), *, now, timeout=60):
    """``send_due(drip, now=now)`` in a thread while another connection to the PostgreSQL
    database ``url`` holds the lock ``statement`` takes, released once the send finished or
    ``timeout`` seconds passed. Returns (whether the send finished while the lock was still
    held, its report or None)."""
    import threading

    import psycopg

    from sender.dispatch import send_due

    done, reports = threading.Event(), []

    def run():
        reports.append(send_due(drip, now=now))
        done.set()

    with psycopg.connect(url) as other:
        other.execute(statement, params)
        sender = threading.Thread(target=run, daemon=True)
        sender.start()
        finished = done.wait(timeout=timeout)
        other.rollback()
    sender.join(timeout=timeout)
    return finished, (reports[0] if reports else None)


def run_workers(environ, cwd, count):
    """Start ``count`` `drip worker --exit-when-idle` processes; return how many emails each
    one reports sending."""
    command = [sys.executable, "-m", "sender", "worker",
               "--interval", "0.5", "--exit-when-idle"]
    env = {**os.environ, **environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(count)]
    sent = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        if worker.returncode:
            raise RuntimeError(f"drip worker exited with {worker.returncode}: {err[-2000:]}")
        sent.append(sum(int(n) for n in re.findall(r"^(\d+) sent", out, re.M)))
    return sent
