"""The SMTP backend against a real SMTP server on loopback (aiosmtpd) with STARTTLS or
implicit TLS and AUTH; the received message is parsed and checked."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from email import message_from_bytes, policy

import pytest

from sender import dispatch, subscribers
from sender.errors import ProviderError
from sender.providers.base import ACCEPTED, REJECTED, RETRY, UNKNOWN
from sender.providers.smtp.sending import SmtpProvider
from tests.conftest import at

from .conftest import NOW, PDF, free_port, make_message

aiosmtpd = pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed (pip install -e '.[test]')")
pytest.importorskip("cryptography", reason="cryptography is not installed (pip install -e '.[test]')")

from aiosmtpd.smtp import AuthResult  # noqa: E402

from .smtp_server import Recorder, StrictController  # noqa: E402

USER, PASSWORD = "coach", "smtp-pass-123"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1: (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Mailbox(Recorder):
    def __init__(self):
        super().__init__()
        self.logins = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("gone"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if b"Subject: Week 7" in envelope.content:
            return "554 5.6.0 message refused"
        if b"Subject: Week 8" in envelope.content:
            server.transport.close()              # the connection drops during DATA
            return None
        return await super().handle_DATA(server, session, envelope)

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server(certificate):
    """server(tls='starttls'|'tls'|'none', refuse_ehlo=False) -> (mailbox, port), a real SMTP
    server on loopback that, like Postfix, refuses MAIL until the client has greeted it."""
    controllers = []

    def start(tls="starttls", *, refuse_ehlo=False):
        cert, key = certificate
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        mailbox = Mailbox()
        options = dict(authenticator=mailbox.authenticate, auth_require_tls=tls == "starttls",
                       refuse_ehlo=refuse_ehlo)
        if tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif tls == "tls":
            options.update(ssl_context=context)
        controller = StrictController(mailbox, **options)
        controller.start()
        controllers.append(controller)
        return mailbox, controller.port

    yield start
    for controller in controllers:
        controller.stop()


def client_context(certificate):
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_sends_over_tls_with_login_and_the_message_is_whole(smtp_server, certificate, security):
    mailbox, port = smtp_server(security)
    provider = SmtpProvider("127.0.0.1", port, security=security, username=USER, password=PASSWORD,
                            ssl_context=client_context(certificate), timeout=5)
    try:
        results = provider.send([make_message(1, attachments=[PDF]), make_message(2)])
    finally:
        provider.close()
    assert [r.outcome for r in results] == [ACCEPTED, ACCEPTED]
    assert results[0].provider_message_id == "<course.one.uid1@example.com>"
    assert mailbox.logins and all(ok for _, ok in mailbox.logins)
    assert len(mailbox.logins) == 1                       # one connection for the batch
    mail_from, rcpts, content, encrypted = mailbox.received[0]
    assert mail_from == "coach@example.com" and rcpts == ["reader1@example.org"]
    assert encrypted or security == "tls"        # aiosmtpd marks only STARTTLS sessions
    parsed = message_from_bytes(content, policy=policy.default)
    assert parsed["From"] == "Coach Example <coach@example.com>"
    assert parsed["To"] == "Reader 1 <reader1@example.org>"
    assert parsed["Subject"] == "Week 1: gentle start"
    assert parsed["Message-ID"] == "<course.one.uid1@example.com>"
    assert parsed["List-Unsubscribe"] == "<https://mail.example.com/unsubscribe/t1>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Reply-To"] == "reply@example.com"
    assert parsed.get_content_type() == "multipart/mixed"
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert "Unsubscribe: https://mail.example.com/unsubscribe/t1" in plain.get_content()
    assert "<p>Hello reader 1</p>" in html.get_content()
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "guide.pdf" and attachment.get_content() == PDF.data
    assert message_from_bytes(mailbox.received[1][2]).get_content_type() == "multipart/alternative"


def test_refused_recipients(smtp_server, certificate):
    mailbox, port = smtp_server("starttls")
    provider = SmtpProvider("127.0.0.1", port, username=USER, password=PASSWORD,
                            ssl_context=client_context(certificate), timeout=5)
    try:
        gone, busy, fine = provider.send([make_message(1, email="gone@example.org"),
                                          make_message(2, email="busy@example.org"),
                                          make_message(3)])
    finally:
        provider.close()
    assert gone.outcome == REJECTED and gone.suppress and "550" in gone.error
    assert busy.outcome == RETRY and "451" in busy.error
    assert fine.outcome == ACCEPTED and len(mailbox.received) == 1


def test_wrong_password_stops_the_run_without_showing_it(smtp_server, certificate):
    _, port = smtp_server("starttls")
    provider = SmtpProvider("127.0.0.1", port, username=USER, password="wrong-pass-999",
                            ssl_context=client_context(certificate), timeout=5)
    with pytest.raises(ProviderError, match="check SMTP_USERNAME and SMTP_PASSWORD") as caught:
        provider.send([make_message(1)])
    assert "wrong-pass-999" not in str(caught.value)
    provider.close()


def test_untrusted_certificate_is_an_error(smtp_server):
    _, port = smtp_server("starttls")
    provider = SmtpProvider("127.0.0.1", port, username=USER, password=PASSWORD, timeout=5)
    with pytest.raises(ProviderError, match="TLS"):
        provider.send([make_message(1)])


def test_server_down_is_a_retry():
    provider = SmtpProvider("127.0.0.1", free_port(), security="none", timeout=2)
    result = provider.send([make_message(1)])[0]
    assert result.outcome == RETRY and "cannot reach" in result.error


def test_cannot_hold_for_later():
    provider = SmtpProvider("127.0.0.1", 25, security="none")
    with pytest.raises(ProviderError, match="smtp cannot hold messages for later"):
        provider.send([make_message(1, send_at=NOW)])


def test_drip_send_over_smtp(smtp_server, certificate, run, drip, monkeypatch):
    mailbox, port = smtp_server("starttls")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))     # trust the test certificate
    extra = {"DRIP_PROVIDER": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
             "SMTP_USERNAME": USER, "SMTP_PASSWORD": PASSWORD, "SMTP_SECURITY": "starttls"}
    subscribers.add_subscriber(drip, "ana@example.com", name="Ana", now=NOW, confirmed=True)
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env=extra)
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output and PASSWORD not in result.output
    (row,) = [d for d in drip.store.deliveries() if d.campaign == "welcome"]
    assert row.state == "sent" and row.provider == "smtp"
    parsed = message_from_bytes(mailbox.received[0][2], policy=policy.default)
    assert parsed["Message-ID"] == row.provider_message_id
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    result = run("send", "--now", "2026-03-10T17:01Z", "--ahead", "48h", extra_env=extra)
    assert result.exit_code == 1 and "smtp cannot hold messages for later" in result.output
    assert dispatch  # the CLI path above goes through dispatch.send_due


def test_data_refused_and_dropped_during_data(smtp_server, certificate):
    mailbox, port = smtp_server("starttls")
    provider = SmtpProvider("127.0.0.1", port, username=USER, password=PASSWORD,
                            ssl_context=client_context(certificate), timeout=5)
    try:
        refused, dropped, after = provider.send([make_message(7), make_message(8), make_message(9)])
    finally:
        provider.close()
    assert refused.outcome == REJECTED and "554" in refused.error and not refused.suppress
    assert dropped.outcome == UNKNOWN and "during DATA" in dropped.error     # never resent blindly
    assert after.outcome == ACCEPTED                                         # a new connection
    assert [message_from_bytes(r[2])["Subject"] for r in mailbox.received] == ["Week 9: gentle start"]
    assert len(mailbox.logins) == 2


def test_idle_connection_closed_by_the_server_is_reopened(smtp_server, certificate):
    mailbox, port = smtp_server("starttls")
    provider = SmtpProvider("127.0.0.1", port, username=USER, password=PASSWORD,
                            ssl_context=client_context(certificate), timeout=5)
    try:
        assert provider.send([make_message(1)])[0].outcome == ACCEPTED
        provider._conn.sock.shutdown(socket.SHUT_RDWR)     # as if the server dropped it while idle
        assert provider.send([make_message(2)])[0].outcome == ACCEPTED
    finally:
        provider.close()
    assert len(mailbox.received) == 2 and len(mailbox.logins) == 2


# --- the greeting: a server that requires HELO/EHLO, as Postfix does ---------------------------
def smtp_env(port, security, login):
    extra = {"DRIP_PROVIDER": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
             "SMTP_SECURITY": security}
    if login:
        extra.update(SMTP_USERNAME=USER, SMTP_PASSWORD=PASSWORD)
    return extra


def welcome_rows(drip):
    return sorted((d for d in drip.store.deliveries() if d.campaign == "welcome"), key=lambda d: d.id)


def assert_delivered(mailbox, drip, emails, *, starttls):
    """Each address got its welcome email from our envelope sender, and the store says sent."""
    rows = welcome_rows(drip)
    assert [(d.state, d.provider) for d in rows] == [("sent", "smtp")] * len(emails)
    assert mailbox.refused == []                       # nothing was answered "send HELO first"
    got = {r.rcpt_tos[0]: r for r in mailbox.received}
    assert sorted(got) == sorted(emails) and len(mailbox.received) == len(emails)
    by_id = {d.provider_message_id: d for d in rows}
    for email in emails:
        received = got[email]
        assert received.mail_from == "coach@example.com" and received.rcpt_tos == [email]
        assert received.starttls == starttls
        parsed = message_from_bytes(received.content, policy=policy.default)
        assert parsed["To"].addresses[0].addr_spec == email
        assert parsed["Subject"].startswith("Welcome")
        row = by_id[parsed["Message-ID"]]                  # the stored row is this message
        assert drip.store.get_subscriber(id=row.subscriber_id).email == email


@pytest.mark.parametrize(("security", "login"), [("none", False), ("starttls", False),
                                                 ("starttls", True), ("tls", False)])
def test_drip_send_greets_a_server_that_requires_it(smtp_server, certificate, run, drip, monkeypatch,
                                                    security, login):
    mailbox, port = smtp_server(security)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))     # trust the test certificate
    emails = ["ana@example.com", "bo@example.com"]
    for email in emails:
        subscribers.add_subscriber(drip, email, now=NOW, confirmed=True)
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env=smtp_env(port, security, login))
    assert result.exit_code == 0, result.output
    assert "2 sent" in result.output
    assert_delivered(mailbox, drip, emails, starttls=security == "starttls")
    # EHLO on connecting and, after STARTTLS (RFC 3207: a new session), EHLO again.
    expected = [("EHLO", False), ("EHLO", True)] if security == "starttls" else [("EHLO", False)]
    assert mailbox.greetings == expected
    assert [ok for _, ok in mailbox.logins] == ([True] if login else [])


def test_falls_back_to_helo_when_ehlo_is_refused(smtp_server, run, drip):
    mailbox, port = smtp_server("none", refuse_ehlo=True)
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
    result = run("send", "--now", "2026-03-09T17:01Z", extra_env=smtp_env(port, "none", False))
    assert result.exit_code == 0, result.output
    assert mailbox.greetings == [("HELO", False)]
    assert_delivered(mailbox, drip, ["ana@example.com"], starttls=False)


@pytest.mark.parametrize(("security", "login"), [("none", False), ("starttls", False),
                                                 ("starttls", True)])
def test_greets_again_after_the_server_closed_the_connection(smtp_server, certificate, env, make_drip,
                                                             security, login):
    mailbox, port = smtp_server(security)
    provider = SmtpProvider("127.0.0.1", port, security=security, username=USER if login else None,
                            password=PASSWORD if login else None,
                            ssl_context=client_context(certificate), timeout=5)
    drip = make_drip(env, provider=provider)          # one provider, one connection kept open
    subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True)
    assert dispatch.send_due(drip, now=at("2026-03-09T17:01Z")).sent == 1
    mailbox.close_connections()                        # the server drops the idle connection
    subscribers.add_subscriber(drip, "bo@example.com", now=NOW, confirmed=True)
    report = dispatch.send_due(drip, now=at("2026-03-09T17:02Z"))
    assert report.sent == 1 and report.failed == report.retried == 0, report.to_dict()
    assert_delivered(mailbox, drip, ["ana@example.com", "bo@example.com"],
                     starttls=security == "starttls")
    once = [("EHLO", False), ("EHLO", True)] if security == "starttls" else [("EHLO", False)]
    assert mailbox.greetings == once * 2                # the new connection was greeted too
    assert len(mailbox.logins) == (2 if login else 0)
