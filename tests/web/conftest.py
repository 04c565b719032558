"""The web app under a real WSGI server on loopback, with the time passed in."""

from __future__ import annotations

import base64
import email
import re
import threading
from email import policy

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.serving import make_server

from sender.config import Settings
from sender.web import create_app
from sender.web.app import MaskedRequestHandler
from tests.conftest import at, base_env

START = at("2026-03-09T18:00Z")   # a Monday, 11:00 in Los Angeles: inside the send window
POSTMARK_USER, POSTMARK_PASSWORD = "hooks", "pm-hook-password-123"
MAILGUN_KEY = "key-mailgun-signing-0123456789"
RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-test-secret-0123456789ab").decode()


class Clock:
    """The app's clock; tests move it by assigning ``now``."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture(scope="session")
def sendgrid_key():
    """A fresh EC P-256 key pair: (private key, base64 DER public key for the setting)."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public).decode()


class Server:
    def __init__(self, root, env, clock, http):
        self.root, self.env, self.clock, self.http = root, env, clock, http
        self.settings = Settings.from_env(env)
        self.url = env["DRIP_BASE_URL"]
        self.outbox = root / "outbox"
        self.app = None

    def drain(self):
        """Wait until the app's background sender has done every job it was given."""
        assert self.app.drain(timeout=30), "the background sender did not finish within 30 s"

    def emails(self):
        """The outbox messages, oldest first, parsed (once the background sender is done)."""
        self.drain()
        paths = sorted(self.outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns) \
            if self.outbox.exists() else []
        return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in paths]

    def emails_to(self, address):
        return [m for m in self.emails() if address in str(m["To"])]

    def link(self, message, kind):
        text = message.get_body(("plain",)).get_content()
        match = re.search(rf"{re.escape(self.url)}/{kind}/[A-Za-z0-9._-]+", text)
        assert match, f"no {kind} link in:\n{text}"
        return match.group(0)


@pytest.fixture
def start_server(project, make_drip):
    """start_server(**settings) -> a running Server; stopped after the test."""
    running = []

    def start(root=None, **overrides):
        root = root or project
        http = make_server("127.0.0.1", 0, lambda environ, start_response: [], threaded=True,
                           request_handler=MaskedRequestHandler)
        url = f"http://127.0.0.1:{http.server_port}"
        defaults = {"DRIP_BASE_URL": url, "DRIP_SIGNUP_LIMIT_IP": "10000",
                    "POSTMARK_WEBHOOK_USER": POSTMARK_USER,
                    "POSTMARK_WEBHOOK_PASSWORD": POSTMARK_PASSWORD,
                    "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
                    "RESEND_WEBHOOK_SECRET": RESEND_SECRET}
        env = base_env(root, **{**defaults, **overrides})
        clock = Clock(START)
        server = Server(root, env, clock, http)
        http.app = server.app = create_app(server.settings, clock=clock)
        thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()

        def drip():
            server.drain()
            return make_drip(env)

        server.drip = drip
        running.append((http, thread))
        return server

    yield start
    for http, thread in running:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)
        http.app.close(timeout=10)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request):
    """Settings for ``start_server`` that put its store on SQLite (the default) or on the
    throwaway PostgreSQL server (skipped with the reason when PostgreSQL is missing)."""
    if request.param == "sqlite":
        return {}
    return {"DRIP_DATABASE": request.getfixturevalue("postgres_url")}


@pytest.fixture
def server(start_server):
    return start_server()
