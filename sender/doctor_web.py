"""The doctor's look at ``DRIP_BASE_URL``: does it answer over HTTPS with a certificate the
system (or ``ca_bundle``) trusts, and does its one-click unsubscribe (RFC 8058) work?

The unsubscribe probe signs a link, with DRIP_SECRET_KEY, for a made-up subscriber that
no list holds, and POSTs ``List-Unsubscribe=One-Click`` to it as Gmail does: the running
server must answer 200 without a redirect. Nobody is unsubscribed; a server with another
secret key answers 400, which says that links in the emails would not work either.
Certificates are always verified: ``ca_bundle`` only adds a CA to trust (a test CA, or a
private one).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlparse

import requests

from .doctor_report import FAIL, OK, Check
from .tokens import UNSUBSCRIBE, Signer


def web_checks(settings, *, ca_bundle=None, timeout=10.0):
    base = settings.base_url
    parsed = urlparse(base)
    if parsed.scheme != "https":
        return [Check("https", FAIL, f"HTTPS at {base}",
                      f"DRIP_BASE_URL is {base}: the unsubscribe link in every email must be "
                      "https://, and Gmail and Yahoo want one-click unsubscribe over HTTPS.",
                      "Put drip behind HTTPS (see the README's deployment steps) and set "
                      "DRIP_BASE_URL=https://mail.your-domain.com.")]
    verify = str(ca_bundle) if ca_bundle else True
    session = requests.Session()
    session.headers["User-Agent"] = "drip-doctor"
    try:
        return _probe(session, settings, base, verify, timeout)
    finally:
        session.close()


def _probe(session, settings, base, verify, timeout):
    title = f"HTTPS at {base}"
    try:
        answer = session.get(f"{base}/healthz", timeout=timeout, verify=verify,
                             allow_redirects=False)
    except requests.exceptions.SSLError as exc:
        return [Check("https", FAIL, title,
                      f"{base} answers, but its certificate is not valid for it ({_reason(exc)}). "
                      "Mail programs and browsers refuse such links.",
                      "Give the server a certificate from a public CA for its name (Caddy gets "
                      "one by itself), or renew the expired one.")]
    except requests.RequestException as exc:
        return [Check("https", FAIL, title, f"{base} did not answer ({type(exc).__name__}).",
                      "Start drip's web service (drip-web) and the proxy in front of it, and "
                      "check that DRIP_BASE_URL names this server.")]
    if answer.status_code != 200:
        return [Check("https", FAIL, title,
                      f"{base}/healthz answered {answer.status_code}: the address does not reach "
                      "drip's web service.",
                      "Point the proxy at drip (reverse_proxy 127.0.0.1:8025) and check "
                      "DRIP_BASE_URL.")]
    checks = [Check("https", OK, title, "Answers over HTTPS with a valid certificate.")]
    token = Signer(settings.secret_key).make(UNSUBSCRIBE, f"doctor-{secrets.token_hex(8)}")
    probe = f"{base}/unsubscribe/{token}"
    title = "One-click unsubscribe"
    try:
        answer = session.post(probe, data={"List-Unsubscribe": "One-Click"}, timeout=timeout,
                              verify=verify, allow_redirects=False)
    except requests.RequestException as exc:
        return [*checks, Check("unsubscribe", FAIL, title,
                               f"The one-click unsubscribe POST failed ({type(exc).__name__}).",
                               "Check that drip's web service is running behind DRIP_BASE_URL.")]
    if answer.status_code == 200:
        return [*checks, Check("unsubscribe", OK, title,
                               "A one-click POST to an unsubscribe link answers 200, as RFC 8058 "
                               "asks (tried with a link for nobody on the list).")]
    if answer.status_code == 400:
        why = ("The server refused a link signed with this DRIP_SECRET_KEY: it runs with another "
               "key, so the unsubscribe and confirm links in your emails would not work.")
        fix = "Give the web service and `drip send` the same .env (one DRIP_SECRET_KEY)."
    elif 300 <= answer.status_code < 400:
        why = (f"The POST was answered with a redirect ({answer.status_code}) to "
               f"{answer.headers.get('Location', '?')}; one-click unsubscribe must answer itself.")
        fix = "Send /unsubscribe/ straight to drip in the proxy, without redirects."
    else:
        why = f"The one-click POST answered {answer.status_code}."
        fix = "Check that /unsubscribe/ reaches drip's web service through the proxy."
    return [*checks, Check("unsubscribe", FAIL, title, why, fix)]


def _reason(exc):
    text = str(exc)
    for marker in ("certificate verify failed: ", "CERTIFICATE_VERIFY_FAILED"):
        if marker in text:
            return text.split(marker, 1)[1].split("(")[0].split("'")[0].strip(" :)") or \
                "certificate verify failed"
    return "TLS failed"
