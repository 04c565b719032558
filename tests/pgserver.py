"""A throwaway PostgreSQL server for the tests (a pytest plugin, see tests/conftest.py;
the server itself is ``tests.support.PostgresServer``).

``postgres_server`` (session) runs initdb in a temporary folder, starts the
server on a free loopback port with its socket in that folder, and stops and
removes it at the end. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` system user (created if missing).
``postgres_url`` (per test) gives a URL to an empty database.

Without the PostgreSQL programs or the psycopg driver every test that asks for
these fixtures is skipped with the reason (shown by ``-rs``), never silently.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support import PostgresServer

SKIP_PREFIX = "PostgreSQL tests skipped: "


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
