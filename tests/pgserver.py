"""A throwaway PostgreSQL server for the tests (a pytest plugin, see tests/conftest.py).

``postgres_server`` (session) runs initdb in a temporary folder, starts the
server on a free loopback port with its socket in that folder, and stops and
removes it at the end. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` system user (created if missing).
``postgres_url`` (per test) gives a URL to an empty database.

Without the PostgreSQL programs or the psycopg driver every test that asks for
these fixtures is skipped with the reason (shown by ``-rs``), never silently.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

SKIP_PREFIX = "PostgreSQL tests skipped: "


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


@pytest.fixture(scope="session")
def postgres_server():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip(SKIP_PREFIX + "the psycopg driver is not installed (pip install -e '.[test]')")
    try:
        server = PostgresServer().start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(SKIP_PREFIX + str(exc).splitlines()[0])
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request):
    """A URL to a fresh, empty database on the throwaway server."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[-50:].lower()
    return postgres_server.create_database(name)
