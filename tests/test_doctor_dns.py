"""`drip doctor`'s DNS checks against a real DNS server on 127.0.0.1 (dnslib), read with
dnspython: a good setup for each provider, and each way a sending domain goes wrong."""

from __future__ import annotations

import base64

import pytest

from sender.config import Settings
from sender.dns_checks import Dns
from sender.doctor import FAIL, OK, SKIP, WARN, diagnose
from tests.conftest import base_env
from tests.dnszone import ZoneServer

DOMAIN = "coachfit.com"
DMARC = "v=DMARC1; p=quarantine; rua=mailto:dmarc@coachfit.com"


@pytest.fixture(scope="module")
def dkim_key():
    return make_dkim_key()


def make_dkim_key():
    """A fresh 2048-bit RSA public key, base64 DER, as a DKIM record's p= holds it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def dkim(key):
    return f"v=DKIM1; k=rsa; p={key}"


def good_zone(provider, key):
    """A zone with everything the provider needs, as its setup pages ask."""
    include = {"postmark": "spf.mtasv.net", "sendgrid": "sendgrid.net", "mailgun": "mailgun.org",
               "resend": "amazonses.com", "smtp": "_spf.mailhost.net"}[provider]
    zone = {
        DOMAIN: [("TXT", f"v=spf1 include:{include} ~all"), ("TXT", "google-site-verification=x"),
                 ("MX", (10, "mx1.mailhost.net")), ("MX", (20, "mx2.mailhost.net"))],
        f"_dmarc.{DOMAIN}": [("TXT", DMARC)],
        include: [("TXT", "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 -all")],
    }
    if provider == "postmark":
        zone[f"20240101000000pm._domainkey.{DOMAIN}"] = [("TXT", f"k=rsa; p={key}")]
        zone[f"pm-bounces.{DOMAIN}"] = [("CNAME", "pm.mtasv.net")]
        zone["pm.mtasv.net"] = [("TXT", "v=spf1 include:spf.mtasv.net ~all")]
    elif provider == "sendgrid":
        for n in (1, 2):       # CNAMEs to SendGrid's keys, followed by the resolver
            zone[f"s{n}._domainkey.{DOMAIN}"] = [("CNAME", f"s{n}.domainkey.u123.wl.sendgrid.net")]
            zone[f"s{n}.domainkey.u123.wl.sendgrid.net"] = [("TXT", dkim(key))]
    elif provider == "mailgun":
        zone[f"mg.{DOMAIN}"] = [("TXT", "v=spf1 include:mailgun.org ~all"),
                                ("MX", (10, "mxa.mailgun.org"))]
        zone[f"pic._domainkey.mg.{DOMAIN}"] = [("TXT", f"k=rsa; p={key}")]
    elif provider == "resend":
        zone[f"resend._domainkey.{DOMAIN}"] = [("TXT", f"p={key}")]
        zone[f"send.{DOMAIN}"] = [("TXT", "v=spf1 include:amazonses.com ~all"),
                                  ("MX", (10, "feedback-smtp.us-east-1.amazonses.com"))]
    else:
        zone[f"mailhost._domainkey.{DOMAIN}"] = [("TXT", dkim(key))]
    return zone


PROVIDER_ENV = {
    "postmark": {"POSTMARK_SERVER_TOKEN": "pm-token", "DRIP_DKIM_SELECTORS": "20240101000000pm"},
    "sendgrid": {"SENDGRID_API_KEY": "SG.key"},
    "mailgun": {"MAILGUN_API_KEY": "key-1", "MAILGUN_DOMAIN": f"mg.{DOMAIN}"},
    "resend": {"RESEND_API_KEY": "re_key"},
    "smtp": {"SMTP_HOST": "smtp.mailhost.net", "DRIP_SPF_INCLUDE": "_spf.mailhost.net",
             "DRIP_DKIM_SELECTORS": "mailhost"},
}


@pytest.fixture(scope="module")
def dns_server():
    server = ZoneServer().start()
    yield server
    server.stop()


@pytest.fixture
def doctor_on(project, dns_server):
    """doctor_on(zone, provider, **settings) -> the Report, DNS from a loopback server."""

    def run(zone, provider="postmark", **overrides):
        server = dns_server.serve(zone)
        env = base_env(project, DRIP_PROVIDER=provider, DRIP_FROM=f"Coach Fit <hello@{DOMAIN}>",
                       DRIP_BASE_URL=f"https://mail.{DOMAIN}", **PROVIDER_ENV[provider])
        env.update(overrides)
        lookup = Dns(nameserver="127.0.0.1", port=server.port, timeout=3)
        return diagnose(Settings.from_env(env), lookup=lookup, web=False, provider=False)

    return run


def statuses(report):
    return {c.id: c.status for c in report.checks}


def check(report, ident):
    [found] = report.by_id(ident)
    return found


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend", "smtp"])
def test_a_good_setup_passes_for_each_provider(doctor_on, dkim_key, provider):
    report = doctor_on(good_zone(provider, dkim_key), provider)
    expected = {"alignment": OK, "spf": OK, "return-path": OK, "dkim": OK, "dmarc": OK,
                "dmarc-alignment": OK, "mx": OK}
    if provider == "smtp":
        del expected["return-path"]          # SMTP bounces to the From domain itself
    if provider == "sendgrid":
        expected["return-path"] = "skip"     # em1234.<domain>: only SendGrid's API knows it
    assert statuses(report) == expected
    assert report.ok


def test_no_spf(doctor_on, dkim_key):
    zone = good_zone("postmark", dkim_key)
    zone[DOMAIN] = [r for r in zone[DOMAIN] if not r[1].__str__().startswith("v=spf1")]
    report = doctor_on(zone)
    spf = check(report, "spf")
    assert spf.status == FAIL and "has no SPF record" in spf.detail
    assert "Add a TXT record at coachfit.com: v=spf1 include:spf.mtasv.net ~all" in spf.fix
    assert not report.ok


def test_two_spf_records(doctor_on, dkim_key):
    zone = good_zone("postmark", dkim_key)
    zone[DOMAIN].append(("TXT", "v=spf1 include:_spf.google.com ~all"))
    spf = check(doctor_on(zone), "spf")
    assert spf.status == FAIL and "2 SPF records" in spf.detail and "Merge them" in spf.fix


def test_over_ten_lookups(doctor_on, dkim_key):
    zone = good_zone("postmark", dkim_key)
    zone[DOMAIN][0] = ("TXT", "v=spf1 include:spf.mtasv.net " + " ".join(
        f"include:s{n}.senders.net" for n in range(4)) + " ~all")
    for n in range(4):       # each include needs two lookups of its own: 1 + 4 * 3 = 13
        zone[f"s{n}.senders.net"] = [("TXT", f"v=spf1 a mx:mail{n}.senders.net -all")]
    spf = check(doctor_on(zone), "spf")
    assert spf.status == FAIL and "needs 13 DNS lookups" in spf.detail
    assert "10 or fewer" in spf.fix


def test_spf_that_does_not_cover_the_smtp_server(doctor_on, dkim_key):
    zone = good_zone("smtp", dkim_key)
    zone[DOMAIN][0] = ("TXT", "v=spf1 include:_spf.other.net -all")
    zone["_spf.other.net"] = [("TXT", "v=spf1 ip4:203.0.113.0/24 -all")]
    spf = check(doctor_on(zone, "smtp"), "spf")
    assert spf.status == FAIL and "does not include _spf.mailhost.net" in spf.detail
    assert spf.fix.endswith("v=spf1 include:_spf.other.net include:_spf.mailhost.net -all")


def test_an_include_without_a_record_breaks_spf(doctor_on, dkim_key):
    zone = good_zone("postmark", dkim_key)
    zone[DOMAIN][0] = ("TXT", "v=spf1 include:spf.mtasv.net include:gone.example.net ~all")
    spf = check(doctor_on(zone), "spf")
    assert spf.status == FAIL and "gone.example.net has no SPF record" in spf.detail


def test_no_dkim(doctor_on, dkim_key):
    zone = good_zone("resend", dkim_key)
    del zone[f"resend._domainkey.{DOMAIN}"]
    found = check(doctor_on(zone, "resend"), "dkim")
    assert found.status == FAIL and "No DKIM key found" in found.detail
    assert "resend._domainkey.coachfit.com" in found.detail


@pytest.mark.parametrize("record,why", [
    ("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", "does not hold an RSA public key"),
    ("v=DKIM1; k=rsa; p=MIIBIj!!notbase64", "not valid base64"),
    ("v=DKIM1; k=rsa; p=", "revoked"),
    ("v=DKIM1; k=rsa; t=y", "no p= (public key) tag"),
    ("k=rsa; v=DKIM1; p=KEY", "must be v=DKIM1 and come first"),
])
def test_dkim_malformed(doctor_on, dkim_key, record, why):
    zone = good_zone("resend", dkim_key)
    zone[f"resend._domainkey.{DOMAIN}"] = [("TXT", record.replace("KEY", dkim_key))]
    found = check(doctor_on(zone, "resend"), "dkim")
    assert found.status == FAIL and why in found.detail


def test_postmark_without_a_selector_asks_for_one(doctor_on, dkim_key):
    report = doctor_on(good_zone("postmark", dkim_key), DRIP_DKIM_SELECTORS="")
    found = check(report, "dkim")
    assert found.status == WARN and "DRIP_DKIM_SELECTORS" in found.fix


def test_no_dmarc(doctor_on, dkim_key):
    zone = good_zone("postmark", dkim_key)
    del zone[f"_dmarc.{DOMAIN}"]
    found = check(doctor_on(zone), "dmarc")
    assert found.status == FAIL and "no DMARC record" in found.detail
    assert found.fix == ("Add a TXT record at _dmarc.coachfit.com: "
                         "v=DMARC1; p=none; rua=mailto:dmarc-reports@coachfit.com")


def test_dmarc_p_none_without_a_reporting_address(doctor_on, dkim_key):
    zone = good_zone("postmark", dkim_key)
    zone[f"_dmarc.{DOMAIN}"] = [("TXT", "v=DMARC1; p=none")]
    report = doctor_on(zone)
    found = check(report, "dmarc")
    assert found.status == FAIL and "no reporting address" in found.detail
    assert found.fix.endswith("v=DMARC1; p=none; rua=mailto:dmarc-reports@coachfit.com")
    zone[f"_dmarc.{DOMAIN}"] = [("TXT", "v=DMARC1; p=none; rua=mailto:d@coachfit.com")]
    report = doctor_on(zone)
    assert check(report, "dmarc").status == WARN and report.ok     # p=none is allowed


def test_dmarc_of_the_organisational_domain_covers_a_subdomain(doctor_on, dkim_key):
    zone = good_zone("postmark", dkim_key)
    zone[f"news.{DOMAIN}"] = zone.pop(DOMAIN)
    zone[f"20240101000000pm._domainkey.news.{DOMAIN}"] = zone[f"20240101000000pm._domainkey.{DOMAIN}"]
    zone[f"pm-bounces.news.{DOMAIN}"] = zone[f"pm-bounces.{DOMAIN}"]
    report = doctor_on(zone, DRIP_FROM=f"Coach <hello@news.{DOMAIN}>")
    assert check(report, "dmarc").status == OK and report.ok


def test_misaligned_from(doctor_on, dkim_key):
    zone = good_zone("mailgun", dkim_key)
    zone["mg.otherbrand.net"] = zone.pop(f"mg.{DOMAIN}")
    zone["pic._domainkey.mg.otherbrand.net"] = zone.pop(f"pic._domainkey.mg.{DOMAIN}")
    report = doctor_on(zone, "mailgun", MAILGUN_DOMAIN="mg.otherbrand.net")
    found = check(report, "alignment")
    assert found.status == FAIL and "mg.otherbrand.net is not under coachfit.com" in found.detail
    assert "MAILGUN_DOMAIN=mg.coachfit.com" in found.fix
    assert check(report, "dkim").status == OK           # the records themselves are fine
    assert not report.ok


def test_strict_dkim_alignment_with_a_provider_subdomain(doctor_on, dkim_key):
    zone = good_zone("mailgun", dkim_key)
    zone[f"_dmarc.{DOMAIN}"] = [("TXT", DMARC + "; adkim=s")]
    found = check(doctor_on(zone, "mailgun"), "dmarc-alignment")
    assert found.status == FAIL and "adkim=s" in found.detail


def test_links_and_replies_on_another_domain_are_a_warning(doctor_on, dkim_key):
    report = doctor_on(good_zone("postmark", dkim_key), DRIP_REPLY_TO="coach@gmail.com",
                       DRIP_BASE_URL="https://coachfit.herokuapp.com")
    found = check(report, "alignment")
    assert found.status == WARN and "gmail.com" in found.detail and "herokuapp.com" in found.detail
    assert report.ok


def test_from_a_free_mailbox(doctor_on, dkim_key):
    found = check(doctor_on(good_zone("postmark", dkim_key), DRIP_FROM="Coach <coachfit@gmail.com>"),
                  "alignment")
    assert found.status == FAIL and "gmail.com" in found.detail


@pytest.mark.parametrize("mx", [None, [("MX", (0, ""))]])
def test_mx_missing(doctor_on, dkim_key, mx):
    zone = good_zone("postmark", dkim_key)
    zone[DOMAIN] = [r for r in zone[DOMAIN] if r[0] != "MX"] + (mx or [])
    found = check(doctor_on(zone), "mx")
    assert found.status == FAIL and ("no MX record" in found.detail if mx is None
                                     else "null MX" in found.detail)


def test_postmark_without_a_custom_return_path(doctor_on, dkim_key):
    zone = good_zone("postmark", dkim_key)
    del zone[f"pm-bounces.{DOMAIN}"]
    report = doctor_on(zone)
    found = check(report, "return-path")
    assert found.status == WARN and found.fix.startswith(
        "Add a CNAME record at pm-bounces.coachfit.com: pm.mtasv.net")
    assert report.ok


def test_resend_return_path_without_spf(doctor_on, dkim_key):
    zone = good_zone("resend", dkim_key)
    zone[f"send.{DOMAIN}"] = [("MX", (10, "feedback-smtp.us-east-1.amazonses.com"))]
    found = check(doctor_on(zone, "resend"), "return-path")
    assert found.status == FAIL
    assert found.fix.startswith("Add a TXT record at send.coachfit.com: v=spf1 include:amazonses.com ~all")


def test_a_dns_server_that_does_not_answer_is_reported(project):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:     # bound, never answers
        silent.bind(("127.0.0.1", 0))
        env = base_env(project, DRIP_PROVIDER="resend", RESEND_API_KEY="re_x",
                       DRIP_FROM=f"Coach <hello@{DOMAIN}>", DRIP_BASE_URL=f"https://mail.{DOMAIN}")
        lookup = Dns(nameserver="127.0.0.1", port=silent.getsockname()[1], timeout=0.3)
        report = diagnose(Settings.from_env(env), lookup=lookup, web=False, provider=False)
    dns_checks = [c for c in report.checks if c.title == "DNS"]
    assert dns_checks and all(c.status == FAIL for c in dns_checks)
    assert "no DNS server answered for coachfit.com" in dns_checks[0].detail
    assert not report.ok


def test_spf_that_lets_every_server_send_is_refused(doctor_on, dkim_key):
    zone = good_zone("postmark", dkim_key)
    zone[DOMAIN] = [r for r in zone[DOMAIN] if not str(r[1]).startswith("v=spf1")]
    zone[DOMAIN].append(("TXT", "v=spf1 include:spf.mtasv.net +all"))
    spf = check(doctor_on(zone), "spf")
    assert spf.status == FAIL and "+all" in spf.detail and "~all" in spf.fix


def test_a_free_mailbox_from_gets_no_advice_about_records_it_cannot_add(doctor_on, dkim_key):
    report = doctor_on(good_zone("postmark", dkim_key), DRIP_FROM="Coach <coach.fit@gmail.com>")
    assert check(report, "alignment").status == FAIL
    assert check(report, "dns").status == SKIP
    assert not any("gmail.com" in (c.fix or "") and "TXT record" in (c.fix or "")
                   for c in report.checks)


def test_links_on_a_bare_ip_address_are_not_called_one_domain(doctor_on, dkim_key):
    report = doctor_on(good_zone("postmark", dkim_key), DRIP_BASE_URL="https://203.0.113.7")
    alignment = check(report, "alignment")
    assert alignment.status == WARN and "bare IP address" in alignment.detail
