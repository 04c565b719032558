"""Email providers, one module each, behind the interface in ``base``.

``get_provider`` builds the one named by DRIP_PROVIDER from settings; a missing
key is a ConfigError that names the variable.
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import Provider, SendResult
from .http import HttpClient
from .mailgun import MailgunProvider
from .outbox import OutboxProvider
from .postmark import PostmarkProvider
from .resend import ResendProvider
from .sendgrid import SendGridProvider
from .smtp import SmtpProvider

__all__ = ["Provider", "SendResult", "OutboxProvider", "PostmarkProvider", "SendGridProvider",
           "MailgunProvider", "ResendProvider", "SmtpProvider", "get_provider"]

# Per provider: requests per second and requests in flight when the settings leave them empty.
DEFAULT_RATE = {"resend": 5.0}
DEFAULT_CONCURRENCY = {"postmark": 1, "resend": 1, "sendgrid": 4, "mailgun": 4}


def _number(settings, name, kind, *, minimum):
    raw = settings.get(name)
    if raw in (None, ""):
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number (set {name} in .env)") from None
    if value < minimum:
        raise ConfigError(f"{name}: {raw!r} must be at least {minimum} (set {name} in .env)")
    return value


def http_client(settings, name, base_url_setting, *, key_setting, extra_headers=None, **kwargs):
    # Parsed and checked once, in config.Settings.
    rate = settings.rate_limit
    return HttpClient(name, settings.require(base_url_setting), key_setting=key_setting,
                      secrets=settings.secrets(), timeout=settings.http_timeout,
                      rate_limit=rate if rate is not None else DEFAULT_RATE.get(name),
                      concurrency=settings.concurrency or DEFAULT_CONCURRENCY.get(name, 1),
                      extra_headers=extra_headers, **kwargs)


def get_provider(settings, name=None, *, extra_headers=None):
    """The provider named by DRIP_PROVIDER (or ``name``), configured from settings.

    ``extra_headers`` go on every API request (tests use it for Prism's ``Prefer``).
    """
    name = name or settings.provider
    if name == "outbox":
        return OutboxProvider(settings.outbox_dir)
    if name == "postmark":
        token = settings.require("POSTMARK_SERVER_TOKEN")
        http = http_client(settings, name, "POSTMARK_API_URL", key_setting="POSTMARK_SERVER_TOKEN",
                           headers={"X-Postmark-Server-Token": token},
                           extra_headers=extra_headers)
        return PostmarkProvider(http, message_stream=settings.get("POSTMARK_MESSAGE_STREAM"),
                                transactional_stream=settings.get("POSTMARK_TRANSACTIONAL_STREAM"))
    if name == "sendgrid":
        key = settings.require("SENDGRID_API_KEY")
        return SendGridProvider(http_client(
            settings, name, "SENDGRID_API_URL", key_setting="SENDGRID_API_KEY",
            headers={"Authorization": f"Bearer {key}"}, extra_headers=extra_headers))
    if name == "mailgun":
        key = settings.require("MAILGUN_API_KEY")
        domain = settings.require("MAILGUN_DOMAIN")
        return MailgunProvider(http_client(
            settings, name, "MAILGUN_API_URL", key_setting="MAILGUN_API_KEY", auth=("api", key),
            extra_headers=extra_headers), domain=domain)
    if name == "resend":
        key = settings.require("RESEND_API_KEY")
        return ResendProvider(http_client(
            settings, name, "RESEND_API_URL", key_setting="RESEND_API_KEY",
            headers={"Authorization": f"Bearer {key}"}, extra_headers=extra_headers))
    if name == "smtp":
        host = settings.require("SMTP_HOST")
        port = _number(settings, "SMTP_PORT", int, minimum=1)
        timeout = settings.http_timeout
        return SmtpProvider(host, port or 587, security=settings.get("SMTP_SECURITY"),
                            username=settings.get("SMTP_USERNAME"),
                            password=settings.get("SMTP_PASSWORD"), timeout=timeout or 30.0)
    raise ConfigError(f"DRIP_PROVIDER: provider {name!r} is not available in this version")
