"""Settings: one table of every setting, read from the environment.

The CLI loads ``.env`` once, early, with python-dotenv before building
``Settings``; values already in the real environment win. ``.env.example``
and ``drip init`` are generated from ``SETTINGS`` so the three never drift.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlparse

from .errors import ConfigError, InvalidInput
from .schedule import parse_duration, parse_window, zone


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    example: str = ""
    default: str | None = None
    required: bool = False
    secret: bool = False
    group: str = "Core"


SETTINGS = [
    Setting("DRIP_DATABASE", "SQLite database file (a path), or a postgresql:// URL.", "drip.db",
            default="drip.db"),
    Setting(
        "DRIP_PROVIDER",
        "Where email goes: outbox (a folder of .eml files, the default), postmark, "
        "sendgrid, mailgun, resend or smtp.",
        "outbox",
        default="outbox",
    ),
    Setting("DRIP_OUTBOX_DIR", "Folder the outbox provider writes .eml files to.", "outbox",
            default="outbox"),
    Setting("DRIP_FROM", "The From address, with a display name.",
            "Coach Example <coach@example.com>", required=True),
    Setting("DRIP_REPLY_TO", "Where replies go (defaults to DRIP_FROM).", "coach@example.com"),
    Setting("DRIP_POSTAL_ADDRESS", "A valid postal address, shown in every email (CAN-SPAM).",
            "123 Example St, Redmond, WA 98052, USA", required=True),
    Setting("DRIP_BASE_URL",
            "Public HTTPS base URL where `drip serve` answers (unsubscribe and confirm links).",
            "https://mail.example.com", required=True),
    Setting("DRIP_SECRET_KEY", "Secret for signed tokens; at least 32 random characters. "
            "`drip init` writes a fresh one.", "", required=True, secret=True),
    Setting("DRIP_TIMEZONE", "Time zone for subscribers who have none (IANA name).",
            "America/Los_Angeles", default="UTC"),
    Setting("DRIP_SEND_WINDOW", "Default send window in the subscriber's local time.",
            "Mon-Fri 09:00-17:00", default="Mon-Fri 09:00-17:00"),
    Setting("DRIP_CAMPAIGNS_DIR", "Folder of campaign TOML files.", "campaigns",
            default="campaigns"),
    Setting("DRIP_TEMPLATES_DIR", "Folder of Jinja templates.", "templates", default="templates"),
    Setting("DRIP_CLAIM_TIMEOUT",
            "How long a claimed delivery may stay 'sending' before it is checked as interrupted.",
            "10m", default="10m"),
    Setting("DRIP_MAX_ATTEMPTS", "Attempts before a delivery that keeps failing is marked failed.",
            "5", default="5"),
    Setting("DRIP_MIN_GAP",
            "Least time between two campaign emails to one person (catch-up after downtime).",
            "20h", default="20h"),
    # Coach identity: used by the templates; nothing personal is hard-coded.
    Setting("DRIP_COACH_NAME", "The coach's name (defaults to the DRIP_FROM display name).",
            "Coach Example", group="Coach"),
    Setting("DRIP_COACH_CREDENTIALS", "Credentials shown under the name.",
            "Certified prenatal & postnatal coach and birth doula",
            default="Certified prenatal & postnatal coach", group="Coach"),
    Setting("DRIP_COACH_CITY", "Where the coach is based.", "Redmond, WA", default="",
            group="Coach"),
    Setting("DRIP_COACH_SIGNOFF", "The sign-off above the name.", "Talk soon,",
            default="Talk soon,", group="Coach"),
    Setting("DRIP_WEBSITE_URL", "The coach's website (defaults to DRIP_BASE_URL).",
            "https://coach.example.com", group="Coach"),
    Setting("DRIP_BLOG_URL", "Blog link.", "https://coach.example.com/blog", group="Coach"),
    Setting("DRIP_INSTAGRAM_URL", "Instagram link.", "https://www.instagram.com/example",
            group="Coach"),
    Setting("DRIP_CONTACT_URL", "Contact page link.", "https://coach.example.com/contact",
            group="Coach"),
    Setting("DRIP_BOOKING_URL", "Where to book a consultation or personal training.",
            "https://coach.example.com/book", group="Coach"),
    Setting("DRIP_GUIDE_URL", "Hosted copy of the guide (defaults to DRIP_BASE_URL/guide).",
            "https://coach.example.com/guide", group="Coach"),
    Setting("DRIP_GUIDE_ATTACH", "Attach the guide PDF to the welcome email (true/false).",
            "false", default="false", group="Coach"),
    Setting("DRIP_GUIDE_BUILD_DIR", "Where `drip guide build` writes the guide, and where the PDF "
            "for DRIP_GUIDE_ATTACH is built once and kept.", "build/guide", default="build/guide",
            group="Coach"),
    # Providers: each key and the API base URL as the provider documents it.
    Setting("POSTMARK_SERVER_TOKEN", "Postmark server token.", "", secret=True, group="Providers"),
    Setting("POSTMARK_API_URL", "Postmark API base URL.", "https://api.postmarkapp.com",
            default="https://api.postmarkapp.com", group="Providers"),
    Setting("SENDGRID_API_KEY", "SendGrid API key.", "", secret=True, group="Providers"),
    Setting("SENDGRID_API_URL", "SendGrid API base URL.", "https://api.sendgrid.com",
            default="https://api.sendgrid.com", group="Providers"),
    Setting("MAILGUN_API_KEY", "Mailgun API key.", "", secret=True, group="Providers"),
    Setting("MAILGUN_DOMAIN", "Mailgun sending domain.", "mg.example.com", group="Providers"),
    Setting("MAILGUN_API_URL", "Mailgun API base URL (EU: https://api.eu.mailgun.net).",
            "https://api.mailgun.net", default="https://api.mailgun.net", group="Providers"),
    Setting("RESEND_API_KEY", "Resend API key.", "", secret=True, group="Providers"),
    Setting("RESEND_API_URL", "Resend API base URL.", "https://api.resend.com",
            default="https://api.resend.com", group="Providers"),
    Setting("SMTP_HOST", "SMTP server host.", "smtp.example.com", group="Providers"),
    Setting("SMTP_PORT", "SMTP server port.", "587", default="587", group="Providers"),
    Setting("SMTP_USERNAME", "SMTP login.", "", group="Providers"),
    Setting("SMTP_PASSWORD", "SMTP password.", "", secret=True, group="Providers"),
    Setting("SMTP_SECURITY", "starttls, tls or none.", "starttls", default="starttls",
            group="Providers"),
    Setting("POSTMARK_MESSAGE_STREAM", "Postmark message stream (broadcast for marketing mail).",
            "broadcast", default="broadcast", group="Providers"),
    Setting("DRIP_RATE_LIMIT", "Most API requests per second to the provider (empty: its default; "
            "resend 5, the others unlimited). A Postmark or Resend request carries a whole batch.",
            "5", group="Providers"),
    Setting("DRIP_CONCURRENCY", "API requests in flight at once (empty: the provider's default: "
            "1 for postmark and resend, 4 for sendgrid and mailgun).", "4", group="Providers"),
    Setting("DRIP_HTTP_TIMEOUT", "Seconds to wait for a provider's answer before retrying.", "30",
            default="30", group="Providers"),
    # Web endpoints (`drip serve`): signup form, consent record, rate limits, webhooks.
    Setting("DRIP_CONSENT_TEXT", "The consent wording beside the signup form's checkbox; stored "
            "with every signup.",
            "Yes, send me the free guide and the follow-up emails. I can unsubscribe at any time.",
            default="Yes, send me the free guide and the follow-up emails. I can unsubscribe at "
            "any time.", group="Web"),
    Setting("DRIP_CONSENT_VERSION", "Version of the consent wording; change it whenever the "
            "wording changes.", "1", default="1", group="Web"),
    Setting("DRIP_SIGNUP_LIMIT_IP", "Signups accepted from one IP address per hour.", "20",
            default="20", group="Web"),
    Setting("DRIP_SIGNUP_LIMIT_ADDRESS", "Signups accepted for one email address per hour.", "3",
            default="3", group="Web"),
    Setting("DRIP_PROXY_COUNT", "Reverse proxies in front of `drip serve` whose X-Forwarded-For "
            "is trusted for the client IP (0 when none).", "0", default="0", group="Web"),
    Setting("POSTMARK_WEBHOOK_USER", "User name in the Postmark webhook URL's basic auth.", "",
            group="Webhooks"),
    Setting("POSTMARK_WEBHOOK_PASSWORD", "Password in the Postmark webhook URL's basic auth.", "",
            secret=True, group="Webhooks"),
    Setting("SENDGRID_WEBHOOK_PUBLIC_KEY", "SendGrid event webhook verification key (base64).",
            "", group="Webhooks"),
    Setting("MAILGUN_WEBHOOK_SIGNING_KEY", "Mailgun HTTP webhook signing key.", "", secret=True,
            group="Webhooks"),
    Setting("RESEND_WEBHOOK_SECRET", "Resend webhook signing secret (whsec_...).", "",
            secret=True, group="Webhooks"),
]

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
PROVIDERS = ("outbox", "postmark", "sendgrid", "mailgun", "resend", "smtp")


def _how_to_set(name):
    return f"set {name} in .env (see .env.example) or in the environment"


@dataclass(frozen=True)
class Coach:
    name: str
    credentials: str
    city: str
    signoff: str
    website_url: str
    blog_url: str
    instagram_url: str
    contact_url: str
    booking_url: str


class Settings:
    """Validated settings. Build with ``Settings.from_env()``; read raw values with ``get``."""

    def __init__(self, env):
        self._env = {k: v for k, v in env.items() if k in SETTINGS_BY_NAME}
        problems = []

        def check(name, fn):
            try:
                return fn(self.get(name))
            except (InvalidInput, ConfigError, ValueError) as exc:
                problems.append(f"{name}: {exc} ({_how_to_set(name)})")
                return None

        for setting in SETTINGS:
            if setting.required and not self.get(setting.name):
                problems.append(f"{setting.name} is not set: {setting.help} "
                                f"({_how_to_set(setting.name)}; `drip init` writes a starter .env)")
        self.database = self.get("DRIP_DATABASE")
        self.provider = check("DRIP_PROVIDER", _choice(PROVIDERS))
        self.outbox_dir = Path(self.get("DRIP_OUTBOX_DIR"))
        self.sender = check("DRIP_FROM", _address) if self.get("DRIP_FROM") else None
        self.reply_to = (check("DRIP_REPLY_TO", _address) if self.get("DRIP_REPLY_TO")
                         else self.sender)
        self.postal_address = self.get("DRIP_POSTAL_ADDRESS") or ""
        if any(c in self.postal_address for c in "\r\n"):
            problems.append("DRIP_POSTAL_ADDRESS: write it on one line")
        self.base_url = (check("DRIP_BASE_URL", _url) or "") if self.get("DRIP_BASE_URL") else ""
        secret = self.get("DRIP_SECRET_KEY") or ""
        if secret and len(secret) < 32:
            problems.append("DRIP_SECRET_KEY is too short: use at least 32 random characters "
                            "(`drip init` writes one)")
        self.secret_key = secret
        self.timezone = check("DRIP_TIMEZONE", zone)
        self.timezone_name = self.get("DRIP_TIMEZONE")
        self.send_window = check("DRIP_SEND_WINDOW", parse_window)
        self.campaigns_dir = Path(self.get("DRIP_CAMPAIGNS_DIR"))
        self.templates_dir = Path(self.get("DRIP_TEMPLATES_DIR"))
        self.claim_timeout = check("DRIP_CLAIM_TIMEOUT", parse_duration)
        self.max_attempts = check("DRIP_MAX_ATTEMPTS", _positive_int)
        self.min_gap = check("DRIP_MIN_GAP", parse_duration)
        self.guide_url = self.get("DRIP_GUIDE_URL") or (
            f"{self.base_url}/guide" if self.base_url else "")
        self.guide_attach = check("DRIP_GUIDE_ATTACH", _bool)
        display_name = self.sender.display_name if self.sender else ""
        self.coach = Coach(
            name=self.get("DRIP_COACH_NAME") or display_name,
            credentials=self.get("DRIP_COACH_CREDENTIALS"),
            city=self.get("DRIP_COACH_CITY"),
            signoff=self.get("DRIP_COACH_SIGNOFF"),
            website_url=self.get("DRIP_WEBSITE_URL") or self.base_url,
            blog_url=self.get("DRIP_BLOG_URL") or self.get("DRIP_WEBSITE_URL") or self.base_url,
            instagram_url=self.get("DRIP_INSTAGRAM_URL") or "",
            contact_url=self.get("DRIP_CONTACT_URL") or self.get("DRIP_WEBSITE_URL")
            or self.base_url,
            booking_url=self.get("DRIP_BOOKING_URL") or self.get("DRIP_CONTACT_URL")
            or self.get("DRIP_WEBSITE_URL") or self.base_url,
        )
        if problems:
            raise ConfigError("Settings need attention:\n  " + "\n  ".join(problems))

    @classmethod
    def from_env(cls, environ=None):
        return cls(os.environ if environ is None else environ)

    def get(self, name):
        """The raw value of ``name``, or its default."""
        value = self._env.get(name)
        if value is None or value == "":
            return SETTINGS_BY_NAME[name].default if name in SETTINGS_BY_NAME else None
        return value

    def require(self, name):
        """The value of ``name``; a ConfigError that says how to set it when it is empty."""
        value = self.get(name)
        if not value:
            setting = SETTINGS_BY_NAME.get(name)
            what = f": {setting.help}" if setting else ""
            raise ConfigError(f"{name} is not set{what} ({_how_to_set(name)})")
        return value

    def secrets(self):
        """Every secret value in force, for masking in logs and output."""
        return [v for s in SETTINGS if s.secret and (v := self._env.get(s.name))]


def _choice(options):
    def parse(value):
        if value not in options:
            raise InvalidInput(f"{value!r} is not one of {', '.join(options)}")
        return value

    return parse


def _address(value):
    if any(c in value for c in "\r\n"):
        raise InvalidInput("must be on one line")
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise InvalidInput(f"{value!r} is not an email address, e.g. Coach <coach@example.com>")
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _url(value):
    parsed = urlparse(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise InvalidInput(f"{value!r} is not a URL, e.g. https://mail.example.com")
    if parsed.scheme == "http" and parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise InvalidInput(f"{value!r} must use https:// (one-click unsubscribe needs HTTPS)")
    return value.rstrip("/")


def _positive_int(value):
    number = int(value)
    if number < 1:
        raise ValueError(f"{value!r} must be 1 or more")
    return number


def _bool(value):
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise InvalidInput(f"{value!r} is not true or false")


def env_file_text(*, secret=None, example=False):
    """The text of a starter ``.env`` (``drip init``) or of ``.env.example``."""
    lines = ["# drip settings. Values already in the environment win over this file.", ""]
    group = None
    for setting in SETTINGS:
        if setting.group != group:
            group = setting.group
            lines += [f"# --- {group} ---", ""]
        lines.append(f"# {setting.help}")
        value = setting.example
        if setting.name == "DRIP_SECRET_KEY":
            value = "" if example else (secret or secrets.token_urlsafe(48))
        commented = setting.group in ("Providers", "Webhooks") or (not setting.required and
                                                    setting.default is not None and
                                                    setting.example == setting.default)
        prefix = "# " if commented and not setting.required else ""
        lines.append(f"{prefix}{setting.name}={value}")
        lines.append("")
    return "\n".join(lines)


def settings_markdown():
    """The README's settings table."""
    lines = ["| setting | default | what it is |", "|---|---|---|"]
    group = None
    for setting in SETTINGS:
        if setting.group != group:
            group = setting.group
            lines.append(f"| **{group}** | | |")
        default = "required" if setting.required else (f"`{setting.default}`" if setting.default else "")
        lines.append(f"| `{setting.name}` | {default} | {setting.help.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--markdown"]:
        print(settings_markdown(), end="")
    else:
        print(env_file_text(example=True), end="")
