"""Secrets never reach output, logs or errors: every command, run with every provider key set,
against a provider that answers 401 (or 400) and echoes the credentials it was sent back, as
they came and in every encoding a server or library might use (base64 of the key and of
``user:key``, URL- and percent-encoded, JSON-escaped, hex), checked in those encodings too."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner

from sender import subscribers
from sender.cli import cli
from sender.config import Settings
from sender.logging_setup import configure_logging
from tests.conftest import REPO, SECRET, at, base_env
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
SMTP_USER = "coach-smtp"


def encodings(value):
    """``value`` as is and as it could be echoed: base64 (standard and URL-safe, with and
    without padding), percent- and form-encoded, JSON-escaped, hex (lower and upper case)."""
    raw = value.encode()
    b64 = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    forms = {value, *b64, *(b.rstrip("=") for b in b64), quote(value, safe=""), quote(value),
             quote_plus(value), json.dumps(value)[1:-1], raw.hex(), raw.hex().upper()}
    return forms | {f.replace("/", "\\/") for f in forms}


NEEDLES = sorted({"TOPSECRET", *encodings(SECRET),
                  *(form for key in KEYS.values() for form in encodings(key)),
                  *encodings(f"api:{KEYS['MAILGUN_API_KEY']}"),                 # Mailgun basic auth
                  *encodings(f"{SMTP_USER}:{KEYS['SMTP_PASSWORD']}"),
                  *encodings(f"\0{SMTP_USER}\0{KEYS['SMTP_PASSWORD']}")})     # SMTP AUTH PLAIN


def leaked(text):
    return [needle for needle in NEEDLES if needle in text]


class EchoCredentials(BaseHTTPRequestHandler):
    """Answers every request with ``server.status`` (401 unless a test says otherwise) and a
    body that echoes the credentials it received: the headers, and the header values, the
    key and (for basic auth) ``user:key`` in every encoding of ``encodings``."""

    def log_message(self, *args):
        pass

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        creds = {k: v for k, v in self.headers.items()
                 if k.lower() in ("authorization", "x-postmark-server-token", "api-key")}
        echoed = []
        for value in creds.values():
            scheme, _, token = value.rpartition(" ")
            found = [value, token]
            if scheme.lower() == "basic":
                user_key = base64.b64decode(token).decode()
                found += [user_key, user_key.partition(":")[2]]
            echoed += [form for item in found for form in sorted(encodings(item))]
        said = " | ".join(echoed)
        body = json.dumps({"message": f"bad credentials {creds}; you sent {said}", "ErrorCode": 10,
                           "Message": f"bad token {creds}; you sent {said}",
                           "errors": [{"message": f"you sent {said}"}]}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoCredentials)
    server.status = 401
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
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
    ("campaigns", "resume"): ["course"],
    # No web check (DRIP_BASE_URL is not on this machine) and a DNS server that is not there.
    ("doctor",): ["--no-web", "--dns-server", "127.0.0.1:9", "--timeout", "0.5", "--json"],
    ("enroll",): ["course", "--segment", "status:active"],
    ("serve",): ["--port", "not-a-port"],
    ("report",): ["--json"],
    ("events", "sync"): [],
    ("preview",): ["--to", "me@example.com", "welcome/hello"],
    ("check",): [],
    ("guide", "build"): ["--output", "{tmp}/guide"],
    ("backup",): ["{tmp}/backup.db"],
    ("migrate",): [],
    ("admin", "set-password"): ["--password-stdin"],   # nothing on stdin: refused, exit 2
    ("assets", "publish"): ["{tmp}/assets"],
    ("templates",): [],
    ("why",): ["ana@example.com"],
    ("broadcast", "new"): ["Walk test"],
    ("broadcast", "list"): [],
    ("broadcast", "preview"): ["2026-03-09-walk", "--output", "{tmp}/broadcast-preview"],
    ("broadcast", "test"): ["2026-03-09-walk", "--to", "me@example.com"],
    ("broadcast", "schedule"): ["2026-03-09-walk", "Tue 09:00 local", "--yes"],
    ("broadcast", "send"): ["2026-03-09-walk", "--yes"],
    ("broadcast", "cancel"): ["2026-03-09-walk"],
    ("broadcast", "status"): ["2026-03-09-walk"],
}


def test_every_command_is_covered():
    assert set(commands()) == set(ARGS)


def provider_environ(env, provider, echo_server):
    url = f"http://127.0.0.1:{echo_server.server_address[1]}"
    return {**env, **KEYS, "DRIP_PROVIDER": provider, "MAILGUN_DOMAIN": "mg.example.com",
            "SMTP_USERNAME": SMTP_USER, "POSTMARK_API_URL": url, "SENDGRID_API_URL": url,
            "MAILGUN_API_URL": url, "RESEND_API_URL": url}


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend"])
def test_no_command_prints_a_secret(provider, env, project, tmp_path, echo_server, make_drip, monkeypatch):
    monkeypatch.chdir(project)
    environ = provider_environ(env, provider, echo_server)
    drip = make_drip(env)
    subscribers.add_subscriber(drip, "ana@example.com", now=at("2026-03-02T18:00Z"), confirmed=True)
    (tmp_path / "people.csv").write_text("email,name\nbob@example.com,Bob\n")
    (project / "broadcasts").mkdir(exist_ok=True)           # for `drip broadcast`
    (project / "broadcasts" / "2026-03-09-walk.md").write_text('+++\nsubject = "Walk"\n+++\nHi there.\n')
    order = sorted(ARGS, key=lambda path: (path == ("subscribers", "delete"), path))
    for path in order:
        argv = ["--debug", *path,
                *[a.replace("{tmp}", str(tmp_path)) for a in ARGS[path]]]
        extra = {"DRIP_TEMPLATES_DIR": str(REPO / "templates")} if path == ("guide", "build") else {}
        result = CliRunner().invoke(cli, argv, env={**environ, **extra})
        text = result.output + (repr(result.exception) if result.exception and
                                not isinstance(result.exception, SystemExit) else "")
        assert not leaked(text), f"drip {' '.join(path)} printed a secret: {text[:400]}"


@pytest.mark.parametrize("status", [401, 400])
@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend"])
def test_debug_send_masks_echoed_credentials_in_every_encoding(provider, status, env, project,
                                                               echo_server, make_drip, monkeypatch):
    """`drip --debug send` logs each request and answer; the answer echoes the credentials in
    many encodings. None reaches stdout, stderr or the log, and the delivery is not sent."""
    monkeypatch.chdir(project)
    echo_server.status = status
    drip = make_drip(env)
    subscribers.add_subscriber(drip, "ana@example.com", now=at("2026-03-02T18:00Z"), confirmed=True)
    result = CliRunner().invoke(cli, ["--debug", "send", "--now",
                                      "2026-03-02T18:01Z"], env=provider_environ(env, provider, echo_server))
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    # The debug log (on stderr) shows the request and the echoing answer, masked.
    assert f"{provider} -> POST" in result.stderr and f"{provider} <- {status}" in result.stderr
    assert "you sent" in result.stderr
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        assert not leaked(text), f"{name} shows {leaked(text)[:3]}: {text[:600]}"
    (row,) = [d for d in drip.store.deliveries() if d.campaign == "welcome"]
    assert row.state != "sent" and not leaked(row.last_error or "")


def test_a_key_pasted_into_another_setting_is_masked_in_the_error(env, project, monkeypatch):
    monkeypatch.chdir(project)
    environ = {**env, **KEYS, "DRIP_PROVIDER": KEYS["SENDGRID_API_KEY"]}
    result = CliRunner().invoke(cli, ["send"], env=environ)
    assert result.exit_code == 1 and "DRIP_PROVIDER" in result.output
    assert not leaked(result.output), result.output


def test_debug_send_over_smtp_masks_echoed_credentials(env, project, make_drip, monkeypatch):
    """An SMTP server that refuses the recipient with a reply echoing the login it was given
    (as AUTH PLAIN, base64 and percent-encoded): the failure is shown and stored masked."""
    pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed (pip install -e '.[test]')")
    from aiosmtpd.smtp import AuthResult

    from tests.providers.smtp_server import Recorder, StrictController

    class EchoLogin(Recorder):
        def __init__(self):
            super().__init__()
            self.logins = []

        def authenticate(self, server, session, envelope, mechanism, auth_data):
            self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=True)

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            user, password = self.logins[-1]
            said = " | ".join(sorted({form for value in (password, f"{user}:{password}",
                                                         f"\0{user}\0{password}")
                                      for form in encodings(value) if "\0" not in form}))
            return f"550 5.7.1 no thanks, you sent {said}"

    handler = EchoLogin()
    controller = StrictController(handler, authenticator=handler.authenticate, auth_require_tls=False)
    controller.start()
    try:
        monkeypatch.chdir(project)
        drip = make_drip(env)
        subscribers.add_subscriber(drip, "ana@example.com", now=at("2026-03-02T18:00Z"), confirmed=True)
        environ = {**env, **KEYS, "DRIP_PROVIDER": "smtp", "SMTP_HOST": "127.0.0.1",
                   "SMTP_PORT": str(controller.port), "SMTP_SECURITY": "none", "SMTP_USERNAME": SMTP_USER}
        result = CliRunner().invoke(cli, ["--debug", "send", "--now",
                                          "2026-03-02T18:01Z"], env=environ)
    finally:
        controller.stop()
    assert handler.logins == [(SMTP_USER, KEYS["SMTP_PASSWORD"])]     # it did log in
    assert result.exit_code == 1 and "no thanks, you sent" in result.output, result.output
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        assert not leaked(text), f"{name} shows {leaked(text)[:3]}: {text[:600]}"
    (row,) = [d for d in drip.store.deliveries() if d.campaign == "welcome"]
    assert row.state == "failed" and "no thanks" in row.last_error and not leaked(row.last_error)


def test_a_logged_traceback_is_masked_too(capsys):
    """A log record that carries an exception: its traceback is masked like its message."""
    masker = Settings.from_env({**base_env(REPO), **KEYS}).masker()
    log = configure_logging(debug=True, masker=masker)
    key = KEYS["MAILGUN_API_KEY"]
    try:
        raise RuntimeError(f"answer was {base64.b64encode(f'api:{key}'.encode()).decode()}")
    except RuntimeError:
        log.exception("request to %s failed", quote(key, safe=""))
    err = capsys.readouterr().err
    assert "request to ******** failed" in err and "RuntimeError: answer was ********" in err
    assert not leaked(err), err


def test_a_postgresql_password_in_drip_database_is_masked_like_a_key():
    from sender.config import secrets_masker

    password = "pg-pass-0123456789"
    masker = secrets_masker({"DRIP_DATABASE": f"postgresql://drip:{password}@db.internal/drip"})
    import base64

    text = (f"could not connect to postgresql://drip:{password}@db.internal/drip; "
            f"{base64.b64encode(password.encode()).decode()}")
    masked = masker(text)
    assert password not in masked and base64.b64encode(password.encode()).decode() not in masked
    assert "db.internal" in masked


def test_a_secret_in_hex_is_masked_in_either_case():
    """A server that writes the key it was sent as hex bytes (a debug dump, a digest-like
    echo): lower and upper case, of the key alone and of ``api:key``, are masked."""
    masker = Settings.from_env({**base_env(REPO), **KEYS}).masker()
    key = KEYS["MAILGUN_API_KEY"]
    shown = [key.encode().hex(), key.encode().hex().upper(), f"api:{key}".encode().hex(),
             f"api:{key}".encode().hex().upper()]
    masked = masker("got " + " and ".join(shown))
    assert masked == "got " + " and ".join(["********"] * 4), masked
    assert not leaked(masked)
