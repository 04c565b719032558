"""Secrets never reach output, logs or errors: every command, run with every provider key set,
against a provider that answers 401 and echoes the credentials it was sent back."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from sender import subscribers
from sender.cli import cli
from tests.conftest import REPO, SECRET, at
from tests.test_cli import commands

KEYS = {
    "POSTMARK_SERVER_TOKEN": "pm-TOPSECRET-postmark-1",
    "SENDGRID_API_KEY": "SG.TOPSECRET-sendgrid-2",
    "MAILGUN_API_KEY": "key-TOPSECRET-mailgun-3",
    "RESEND_API_KEY": "re_TOPSECRET_resend_4",
    "SMTP_PASSWORD": "TOPSECRET-smtp-5",
    "POSTMARK_WEBHOOK_PASSWORD": "TOPSECRET-hook-6",
    "MAILGUN_WEBHOOK_SIGNING_KEY": "TOPSECRET-hook-7",
    "RESEND_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"TOPSECRET-hook-8").decode(),
}
NEEDLES = [*KEYS.values(), SECRET, base64.b64encode(b"api:key-TOPSECRET-mailgun-3").decode(),
           "TOPSECRET"]


class EchoCredentials(BaseHTTPRequestHandler):
    """Answers every request 401 with the credentials it received in the body."""

    def log_message(self, *args):
        pass

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        creds = {k: v for k, v in self.headers.items()
                 if k.lower() in ("authorization", "x-postmark-server-token", "api-key")}
        body = json.dumps({"message": f"bad credentials {creds}", "ErrorCode": 10,
                           "Message": f"bad token {creds}"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoCredentials)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# Arguments that make each command do real work. serve and worker run until stopped, so
# they are exercised elsewhere (tests/web, tests/test_worker.py); here their start-up
# errors are checked through a bad option.
ARGS = {
    ("init",): ["--path", "{tmp}/new.env"],
    ("subscribers", "add"): ["new@example.com", "--confirmed", "--name", "New"],
    ("subscribers", "list"): ["--json"],
    ("subscribers", "show"): ["ana@example.com"],
    ("subscribers", "unsubscribe"): ["ana@example.com"],
    ("subscribers", "pause"): ["ana@example.com"],
    ("subscribers", "resume"): ["ana@example.com"],
    ("subscribers", "confirm"): ["ana@example.com"],
    ("subscribers", "import"): ["{tmp}/people.csv", "--consent", "test import"],
    ("subscribers", "export"): [],
    ("subscribers", "delete"): ["ana@example.com", "--yes"],
    ("plan",): ["--days", "30", "--json"],
    ("simulate",): ["--signup", "2026-03-07 23:30", "--timezone", "America/New_York"],
    ("send",): [],
    ("worker",): ["--interval", "-1"],
    ("status",): ["--json"],
    ("resolve",): ["1", "--as", "resend"],
    ("campaigns",): [],
    ("serve",): ["--port", "not-a-port"],
    ("report",): ["--json"],
    ("events", "sync"): [],
    ("preview",): ["--to", "me@example.com", "welcome/hello"],
    ("check",): [],
    ("guide", "build"): ["--output", "{tmp}/guide"],
}


def test_every_command_is_covered():
    assert set(commands()) == set(ARGS)


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend"])
def test_no_command_prints_a_secret(provider, env, project, tmp_path, echo_server, make_drip, monkeypatch):
    monkeypatch.chdir(project)
    environ = {**env, **KEYS, "DRIP_PROVIDER": provider, "MAILGUN_DOMAIN": "mg.example.com",
               "POSTMARK_API_URL": echo_server, "SENDGRID_API_URL": echo_server,
               "MAILGUN_API_URL": echo_server, "RESEND_API_URL": echo_server}
    drip = make_drip(env)
    subscribers.add_subscriber(drip, "ana@example.com", now=at("2026-03-02T18:00Z"), confirmed=True)
    (tmp_path / "people.csv").write_text("email,name\nbob@example.com,Bob\n")
    order = sorted(ARGS, key=lambda path: (path == ("subscribers", "delete"), path))
    for path in order:
        argv = ["--env-file", "/nonexistent", "--debug", *path,
                *[a.replace("{tmp}", str(tmp_path)) for a in ARGS[path]]]
        extra = {"DRIP_TEMPLATES_DIR": str(REPO / "templates")} if path == ("guide", "build") else {}
        result = CliRunner().invoke(cli, argv, env={**environ, **extra})
        text = result.output + (repr(result.exception) if result.exception and
                                not isinstance(result.exception, SystemExit) else "")
        for needle in NEEDLES:
            assert needle not in text, f"drip {' '.join(path)} printed a secret: {text[:400]}"
