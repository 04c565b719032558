"""`drip doctor` against the running web app over HTTPS on loopback (a certificate from a test
CA, and a self-signed one), the providers' read-only APIs on loopback, and `drip doctor`
itself end to end with a loopback DNS server."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading

import pytest
from werkzeug.serving import make_server

from sender import subscribers
from sender.config import Settings
from sender.doctor import FAIL, OK, SKIP, Context
from sender.doctor_providers import provider_checks
from sender.doctor_web import web_checks
from sender.web import create_app
from tests.conftest import SECRET, at, base_env
from tests.dnszone import ZoneServer
from tests.providers.loopback import FakeApi, Reply
from tests.providers.smtp_server import Recorder, StrictController
from tests.test_doctor_dns import DOMAIN, good_zone, make_dkim_key

NOW = at("2026-03-09T18:00Z")


# --- certificates ----------------------------------------------------------------------------
def _name(text):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _certificate(subject, issuer, public_key, signing_key, *, ca):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """Files for two servers: one with a certificate for localhost signed by a test CA
    (valid for the test once the CA is trusted), one self-signed. Returns a dict of paths."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder = tmp_path_factory.mktemp("tls")

    def write(name, cert, key):
        (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    ca_key, site_key, own_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("drip test CA", "drip test CA", ca_key.public_key(), ca_key, ca=True)
    write("ca", ca, ca_key)
    write("site", _certificate("localhost", "drip test CA", site_key.public_key(), ca_key, ca=False),
          site_key)
    write("self", _certificate("localhost", "localhost", own_key.public_key(), own_key, ca=False),
          own_key)
    return {name: folder / f"{name}.pem" for name in ("ca", "site", "self")} | {
        "site_key": folder / "site.key", "self_key": folder / "self.key"}


@pytest.fixture
def https_app(project, tls):
    """https_app(cert='site', **settings) -> (base URL, env): the drip web app over HTTPS on
    127.0.0.1, answering as https://localhost:PORT."""
    running = []

    def start(cert="site", **overrides):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls[cert], tls[f"{cert}_key"])
        http = make_server("127.0.0.1", 0, lambda environ, start_response: [], threaded=True,
                           ssl_context=context)
        url = f"https://localhost:{http.server_port}"
        env = base_env(project, DRIP_BASE_URL=url, **overrides)
        http.app = create_app(Settings.from_env(env), clock=lambda: NOW)
        thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        running.append((http, thread))
        return url, env

    yield start
    for http, thread in running:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)
        http.app.close(timeout=10)


def by_id(checks):
    return {c.id: c for c in checks}


# --- HTTPS and one-click unsubscribe ----------------------------------------------------------
def test_valid_certificate_and_one_click_unsubscribe(https_app, tls, make_drip):
    url, env = https_app("site")
    drip = make_drip(env)
    person = subscribers.add_subscriber(drip, "ana@example.com", now=NOW, confirmed=True).subscriber
    checks = by_id(web_checks(Settings.from_env(env), ca_bundle=tls["ca"], timeout=5))
    assert checks["https"].status == OK and checks["unsubscribe"].status == OK
    # The probe's link names nobody on the list: nobody was unsubscribed, nothing recorded.
    assert drip.store.get_subscriber(id=person.id).status == "active"
    assert drip.store.events() == []


def test_without_the_ca_the_same_certificate_is_refused(https_app):
    url, env = https_app("site")
    [check] = web_checks(Settings.from_env(env), timeout=5)      # the system's CAs only
    assert check.status == FAIL and "certificate is not valid" in check.detail


def test_self_signed_certificate_is_refused(https_app, tls):
    url, env = https_app("self")
    [check] = web_checks(Settings.from_env(env), ca_bundle=tls["ca"], timeout=5)
    assert check.id == "https" and check.status == FAIL
    assert "certificate is not valid" in check.detail and "self-signed" in check.detail
    assert "public CA" in check.fix


def test_a_server_with_another_secret_key(https_app, tls):
    url, env = https_app("site", DRIP_SECRET_KEY="another-secret-key-" + "x" * 32)
    settings = Settings.from_env({**env, "DRIP_SECRET_KEY": SECRET})     # what `drip send` uses
    checks = by_id(web_checks(settings, ca_bundle=tls["ca"], timeout=5))
    assert checks["https"].status == OK
    assert checks["unsubscribe"].status == FAIL and "DRIP_SECRET_KEY" in checks["unsubscribe"].detail


def test_plain_http_and_nothing_listening(project):
    settings = Settings.from_env(base_env(project, DRIP_BASE_URL="http://localhost:9"))
    [check] = web_checks(settings, timeout=2)
    assert check.status == FAIL and "must be https://" in check.detail
    from tests.providers.loopback import free_port

    settings = Settings.from_env(base_env(project, DRIP_BASE_URL=f"https://localhost:{free_port()}"))
    [check] = web_checks(settings, timeout=2)
    assert check.status == FAIL and "did not answer" in check.detail


# --- the providers' read-only calls ------------------------------------------------------------
@pytest.fixture
def api():
    made = FakeApi()
    yield made
    made.close()


def provider_settings(project, name, url, **extra):
    keys = {"postmark": "POSTMARK_SERVER_TOKEN", "sendgrid": "SENDGRID_API_KEY",
            "mailgun": "MAILGUN_API_KEY", "resend": "RESEND_API_KEY"}
    env = base_env(project, DRIP_PROVIDER=name, DRIP_FROM=f"Coach <hello@{DOMAIN}>",
                   **{keys[name]: "secret-key-123", f"{name.upper()}_API_URL": url})
    if name == "mailgun":
        env["MAILGUN_DOMAIN"] = f"mg.{DOMAIN}"
    env.update(extra)
    return Settings.from_env(env)


def run_provider(settings):
    return by_id(provider_checks(settings, Context(settings, lookup=None)))


STREAMS = {"MessageStreams": [
    {"ID": "outbound", "MessageStreamType": "Transactional"},
    {"ID": "broadcast", "MessageStreamType": "Broadcasts"}], "TotalCount": 2}


def test_postmark_key_and_streams(api, project):
    api.default = lambda seen: Reply(200, {"Name": "Coach"} if seen.path == "/server" else STREAMS)
    checks = run_provider(provider_settings(project, "postmark", api.url))
    assert checks["provider"].status == OK and checks["provider-streams"].status == OK
    assert checks["provider-domain"].status == SKIP
    assert [r.method for r in api.requests] == ["GET", "GET"]         # read-only
    checks = run_provider(provider_settings(project, "postmark", api.url,
                                            POSTMARK_MESSAGE_STREAM="newsletter",
                                            POSTMARK_TRANSACTIONAL_STREAM="broadcast"))
    streams = checks["provider-streams"]
    assert streams.status == FAIL and "newsletter is not a stream" in streams.detail
    assert "broadcast is a Broadcasts stream" in streams.detail


def test_a_refused_key(api, project):
    api.default = lambda seen: Reply(401, {"ErrorCode": 10, "Message": "Bad token"})
    checks = run_provider(provider_settings(project, "postmark", api.url))
    assert checks["provider"].status == FAIL and "POSTMARK_SERVER_TOKEN" in checks["provider"].fix
    assert "secret-key-123" not in checks["provider"].detail


def test_sendgrid_domain_authentication(api, project):
    def answer(seen):
        if seen.path == "/v3/scopes":
            return Reply(200, {"scopes": ["mail.send", "whitelabel.read"]})
        assert seen.path == f"/v3/whitelabel/domains?domain={DOMAIN}"
        return Reply(200, [{"domain": DOMAIN, "valid": False, "dns": {
            "mail_cname": {"host": f"em123.{DOMAIN}", "type": "cname", "data": "u1.wl.sendgrid.net",
                           "valid": True},
            "dkim1": {"host": f"s1._domainkey.{DOMAIN}", "type": "cname",
                      "data": "s1.domainkey.u1.wl.sendgrid.net", "valid": False}}}])

    api.default = answer
    checks = run_provider(provider_settings(project, "sendgrid", api.url))
    domain = checks["provider-domain"]
    assert checks["provider"].status == OK and domain.status == FAIL
    assert f"CNAME s1._domainkey.{DOMAIN} -> s1.domainkey.u1.wl.sendgrid.net" in domain.detail
    assert "em123" not in domain.detail                                  # that one is fine
    api.default = lambda seen: Reply(200, {"scopes": ["mail.send"]})
    assert run_provider(provider_settings(project, "sendgrid", api.url))["provider-domain"].status == SKIP


def test_mailgun_domain_records(api, project):
    api.default = lambda seen: Reply(200, {
        "domain": {"name": f"mg.{DOMAIN}", "state": "unverified"},
        "sending_dns_records": [
            {"record_type": "TXT", "name": f"mg.{DOMAIN}", "value": "v=spf1 include:mailgun.org ~all",
             "valid": "valid"},
            {"record_type": "TXT", "name": f"pic._domainkey.mg.{DOMAIN}", "value": "k=rsa; p=MIG",
             "valid": "unknown"}]})
    checks = run_provider(provider_settings(project, "mailgun", api.url))
    assert api.requests[0].path == f"/v4/domains/mg.{DOMAIN}"
    domain = checks["provider-domain"]
    assert domain.status == FAIL and "state: unverified" in domain.detail
    assert f"TXT pic._domainkey.mg.{DOMAIN} -> k=rsa; p=MIG" in domain.detail
    api.default = lambda seen: Reply(404, {"message": "Domain not found"})
    assert run_provider(provider_settings(project, "mailgun", api.url))["provider"].status == FAIL


def test_resend_domain_status(api, project):
    def answer(seen):
        if seen.path == "/domains":
            return Reply(200, {"data": [{"id": "d1", "name": DOMAIN, "status": "verified"}]})
        return Reply(200, {"id": "d1", "status": "verified", "records": [
            {"record": "DKIM", "name": "resend._domainkey", "type": "TXT", "status": "verified"}]})

    api.default = answer
    checks = run_provider(provider_settings(project, "resend", api.url))
    assert checks["provider"].status == OK and checks["provider-domain"].status == OK
    api.default = lambda seen: Reply(401, {"statusCode": 401, "name": "restricted_api_key",
                                           "message": "This API key is restricted to only send"})
    checks = run_provider(provider_settings(project, "resend", api.url))
    assert checks["provider"].status == OK and checks["provider-domain"].status == SKIP


def test_smtp_login_without_sending(project):
    mailbox = Recorder()
    controller = StrictController(mailbox)
    controller.start()
    try:
        settings = Settings.from_env(base_env(project, DRIP_PROVIDER="smtp", SMTP_HOST="127.0.0.1",
                                              SMTP_PORT=str(controller.port), SMTP_SECURITY="none"))
        checks = run_provider(settings)
    finally:
        controller.stop()
    assert checks["provider"].status == OK and mailbox.received == []
    assert mailbox.greetings == [("EHLO", False)]


# --- the command, end to end -------------------------------------------------------------------
@pytest.fixture(scope="module")
def dkim_key():
    return make_dkim_key()


def test_drip_doctor_end_to_end(https_app, tls, run, api, dkim_key):
    zone = good_zone("postmark", dkim_key)
    api.default = lambda seen: Reply(200, {"Name": "Coach"} if seen.path == "/server" else STREAMS)
    url, _ = https_app("site")
    dns = ZoneServer(zone).start()
    extra = {"DRIP_PROVIDER": "postmark", "POSTMARK_SERVER_TOKEN": "pm-token-123",
             "POSTMARK_API_URL": api.url, "DRIP_FROM": f"Coach Fit <hello@{DOMAIN}>",
             "DRIP_BASE_URL": url, "DRIP_DKIM_SELECTORS": "20240101000000pm"}
    args = ("doctor", "--dns-server", f"127.0.0.1:{dns.port}", "--ca-bundle", str(tls["ca"]),
            "--timeout", "5")
    try:
        result = run(*args, "--json", extra_env=extra)
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["ok"] is True and data["counts"]["fail"] == 0
        assert {c["id"]: c["status"] for c in data["checks"]} == {
            "alignment": "ok", "spf": "ok", "return-path": "ok", "dkim": "ok", "dmarc": "ok",
            "dmarc-alignment": "ok", "mx": "ok", "https": "ok", "unsubscribe": "ok",
            "provider": "ok", "provider-streams": "ok", "provider-domain": "skip"}
        del zone[f"_dmarc.{DOMAIN}"]
        dns.serve(zone)
        result = run(*args, extra_env=extra)
        assert result.exit_code == 1
        assert "FIX   DMARC for coachfit.com" in result.output
        assert (f"To fix: Add a TXT record at _dmarc.{DOMAIN}: v=DMARC1; p=none; "
                f"rua=mailto:dmarc-reports@{DOMAIN}") in result.output
        assert "pm-token-123" not in result.output
        bad = run("doctor", "--dns-server", "127.0.0.1:port", extra_env=extra)
        assert bad.exit_code == 2 and "HOST:PORT" in bad.output
    finally:
        dns.stop()


def test_an_unreachable_provider_is_not_called_a_refused_key(project):
    from tests.providers.loopback import free_port

    checks = run_provider(provider_settings(project, "resend",
                                            f"http://127.0.0.1:{free_port()}"))
    check = checks["provider"]
    assert check.status == FAIL and "refused the key" not in check.detail
    assert "could not be asked" in check.detail and "RESEND_API_URL" in check.fix
