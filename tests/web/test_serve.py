"""`drip serve` in a real process, and the factory a production WSGI server calls."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import requests
from werkzeug.test import Client

from sender.web import create_app


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_drip_serve_answers_until_stopped(env, project):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sender", "--env-file", "/nonexistent/.env", "serve",
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


def test_create_app_reads_the_environment(env, monkeypatch, project):
    monkeypatch.chdir(project)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
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
