"""`drip serve` in a real process, and the factory a production WSGI server calls."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from werkzeug.test import Client

from sender.backup import migrate_database
from sender.errors import DatabaseMissing
from sender.web import create_app


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_drip_serve_answers_until_stopped(env, project):
    migrate_database(env["DRIP_DATABASE"])     # as `drip init` does; serve never makes one
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sender", "serve",
         "--port", str(port)], cwd=project, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, answer = time.monotonic() + 20, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except requests.ConnectionError:
                time.sleep(0.05)
        assert answer is not None and answer.text == "ok"
        signup = requests.post(f"http://127.0.0.1:{port}/subscribe", timeout=10,
                               data={"email": "ana@example.com", "consent": "yes"})
        assert signup.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert list((project / "outbox").glob("*.eml"))


def test_create_app_reads_the_environment(env, monkeypatch, project, make_drip):
    monkeypatch.chdir(project)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DatabaseMissing, match="drip.db"):   # never a new, empty database
        create_app()
    assert make_drip(env).store.schema_version() > 0          # as `drip init` makes it
    client = Client(create_app())
    assert client.get("/healthz").text == "ok"
    response = client.post("/subscribe", json={"email": "bea@example.com", "consent": True})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_the_request_log_masks_link_tokens(server, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="werkzeug")
    requests.post(f"{server.url}/subscribe", timeout=10,
                  data={"email": "ana@example.com", "consent": "yes"})
    [message] = server.emails_to("ana@example.com")
    link = server.link(message, "confirm")
    assert requests.get(link, timeout=10).status_code == 200
    token = link.rsplit("/", 1)[1]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /confirm/********" in logged
    assert token not in logged


def test_a_bad_limit_setting_is_named(env):
    import pytest

    from sender.config import Settings
    from sender.errors import ConfigError

    with pytest.raises(ConfigError, match="DRIP_SIGNUP_LIMIT_IP"):
        create_app(Settings.from_env({**env, "DRIP_SIGNUP_LIMIT_IP": "lots"}))


def test_create_app_under_a_production_server_refuses_example_values(env, monkeypatch, project):
    """waitress/gunicorn build the app with create_app(): with a real provider and the
    example values `drip init` wrote, it refuses to start, as `drip serve` does."""
    import pytest

    from sender.errors import ConfigError

    monkeypatch.chdir(project)
    real = {**env, "DRIP_PROVIDER": "postmark", "POSTMARK_SERVER_TOKEN": "pm-x",
            "DRIP_ALLOW_EXAMPLE_VALUES": "false"}
    for name, value in real.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="DRIP_FROM"):
        create_app()
