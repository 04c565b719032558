"""Settings: one table of every setting, read from the environment.

The CLI loads ``.env`` once, early, with python-dotenv before building
``Settings``; values already in the real environment win. ``.env.example``
and ``drip init`` are generated from ``SETTINGS`` so the three never drift.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlparse

from .errors import ConfigError, InvalidInput
from .headers import header_problem
from .logging_setup import Masker
from .safeurl import parse_hosts, redirect_hosts, safe_redirect
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
    Setting("DRIP_ALLOW_EXAMPLE_VALUES",
            "Test setups only: true lets a real provider send, and `drip check` pass, with the "
            "example values `drip init` writes. Never set it where real people get the mail.",
            "false", default="false"),
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
    Setting("DRIP_GUIDE_URL", "Where the welcome email's guide button points. Empty: "
            "DRIP_BASE_URL/guide, the guide page and PDF hosted by `drip serve`; set it to a page "
            "on your own site (e.g. https://coach.example.com/guide) to host the guide there.",
            "", default="", group="Coach"),
    Setting("DRIP_GUIDE_ATTACH", "Attach the guide PDF to the welcome email (true/false).",
            "false", default="false", group="Coach"),
    Setting("DRIP_GUIDE_BUILD_DIR", "Where `drip guide build` writes the guide, and where the PDF "
            "for DRIP_GUIDE_ATTACH is built once and kept.", "build/guide", default="build/guide",
            group="Coach"),
    # Brand: the web pages' look (the email layout and the guide may use it too). Checked so
    # that nothing but a colour, a font name or an https URL reaches the pages' CSS and HTML.
    Setting("DRIP_BRAND_COLOR", "Main brand colour, #rgb or #rrggbb: buttons, links, the band at "
            "the top of the web pages.", "#8a4a36", default="#8a4a36", group="Brand"),
    Setting("DRIP_BRAND_ACCENT", "Second brand colour, #rgb or #rrggbb: the pages' headings.",
            "#5b2f22", default="#5b2f22", group="Brand"),
    Setting("DRIP_BRAND_LOGO_URL", "An https URL of the logo shown at the top of the web pages "
            "(e.g. https://coach.example.com/logo.png); empty: the coach's name.", "", default="",
            group="Brand"),
    Setting("DRIP_BRAND_FONT", "A font name (letters, digits, spaces, hyphens) for the web pages, "
            "e.g. Georgia; Helvetica, Arial, sans-serif stand in where it is not installed.",
            "", default="", group="Brand"),
    Setting("DRIP_ASSET_URL", "Where emails load their pictures from: an https URL of the folder "
            "you upload `drip assets publish DIR` to (a CDN or your site, e.g. "
            "https://coach.example.com/email-images). Empty: DRIP_BASE_URL/assets, served by "
            "`drip serve`.", "", default="", group="Brand"),
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
    Setting("POSTMARK_MESSAGE_STREAM", "Postmark message stream for campaign (marketing) mail: a "
            "Broadcasts stream.", "broadcast", default="broadcast", group="Providers"),
    Setting("POSTMARK_TRANSACTIONAL_STREAM", "Postmark message stream for the confirmation and "
            "welcome emails: a Transactional stream (Postmark's default is outbound).", "outbound",
            default="outbound", group="Providers"),
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
    Setting("DRIP_REDIRECT_HOSTS", "Hosts a signup may be sent back to after the form (comma-"
            "separated, e.g. shop.coach.example.com), besides DRIP_WEBSITE_URL's host; https only.",
            "", default="", group="Web"),
    Setting("DRIP_SIGNUP_REDIRECT", "A thank-you page to send people to after a signup (an https "
            "URL on an allowed host); a form's `redirect` field overrides it. Empty: the "
            "check-your-inbox page.", "", default="", group="Web"),
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
    # Deliverability: `drip doctor`, and the brake on complaints and bounces (sender/brake.py).
    Setting("DRIP_BRAKE_COMPLAINT_RATE", "Pause a campaign when this share of its recent emails "
            "is reported as spam (Gmail's own limit is 0.3%).", "0.1%", default="0.1%",
            group="Deliverability"),
    Setting("DRIP_BRAKE_BOUNCE_RATE", "Pause a campaign when this share of its recent emails "
            "bounces for good.", "2%", default="2%", group="Deliverability"),
    Setting("DRIP_BRAKE_WINDOW", "How far back the brake counts a campaign's emails.", "7d",
            default="7d", group="Deliverability"),
    Setting("DRIP_BRAKE_MIN_EVENTS", "Fewest complaints (or hard bounces) that can pause a "
            "campaign, so one or two on a small list do not.", "3", default="3",
            group="Deliverability"),
    Setting("DRIP_DKIM_SELECTORS", "DKIM selectors `drip doctor` looks up, comma-separated "
            "(empty: the ones the provider uses; Postmark's carry a date, e.g. 20240101000000pm).",
            "", default="", group="Deliverability"),
    Setting("DRIP_SPF_INCLUDE", "The SPF include that covers your provider's servers, for `drip "
            "doctor` (empty: the provider's own; set it for SMTP, e.g. _spf.google.com).", "",
            default="", group="Deliverability"),
    # The admin dashboard at DRIP_BASE_URL/admin (sender/web/admin).
    Setting("DRIP_ADMIN", "The dashboard at DRIP_BASE_URL/admin: on (it still stays off until "
            "`drip admin set-password` stores a password) or off (every /admin address answers "
            "404).", "on", default="on", group="Admin"),
    Setting("DRIP_ADMIN_SESSION_TIMEOUT", "How long a dashboard login lasts without a click "
            "before it asks for the password again (a login ends after 12 hours in any case).",
            "30m", default="30m", group="Admin"),
]

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
# Settings a subscriber sees, whose examples above are made up: while one still holds its
# example (or an example.com/.org/.net address or link), no real provider sends.
EXAMPLE_CHECKED = ("DRIP_FROM", "DRIP_REPLY_TO", "DRIP_POSTAL_ADDRESS", "DRIP_BASE_URL",
                   "DRIP_COACH_NAME", "DRIP_WEBSITE_URL", "DRIP_BLOG_URL", "DRIP_INSTAGRAM_URL",
                   "DRIP_CONTACT_URL", "DRIP_BOOKING_URL", "DRIP_GUIDE_URL")
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")
PROVIDERS = ("outbox", "postmark", "sendgrid", "mailgun", "resend", "smtp")
# Logins that travel beside a secret (basic auth, SMTP AUTH); Mailgun's basic-auth user is "api".
SECRET_USERS = ("SMTP_USERNAME", "POSTMARK_WEBHOOK_USER")


def secrets_masker(environ):
    """A ``Masker`` for every secret setting in ``environ``, in every form it could take
    (``logging_setup.secret_forms``); it needs no valid settings, so an error about them is
    masked too."""
    return Masker([environ.get(s.name) for s in SETTINGS if s.secret]
                  + [_database_password(environ.get("DRIP_DATABASE"))],
                  users=["api", *(environ.get(name) for name in SECRET_USERS)])


def _database_password(url):
    """The password inside a PostgreSQL DRIP_DATABASE URL, so it is masked like a key."""
    if not url or "://" not in url:
        return None
    try:
        return urlparse(url).password
    except ValueError:
        return None


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


_COLOUR = re.compile(r"#(?:[0-9a-f]{3}|[0-9a-f]{6})")
_FONT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{0,79}")
_URL_CHARS = re.compile(r"[!#$%&*+,./0-9:;=?@A-Z_a-z~-]+")   # no quotes, brackets, spaces
FALLBACK_FONTS = "Helvetica, Arial, sans-serif"             # the emails' own stack
DARK_TEXT, LIGHT_TEXT = "#1f1a17", "#ffffff"


def _colour(value):
    colour = str(value).lower()
    if not _COLOUR.fullmatch(colour):
        raise InvalidInput(f"{value!r} is not a colour: write #rgb or #rrggbb, e.g. #8a4a36")
    return colour


def _font(value):
    font = str(value)
    if font and not _FONT.fullmatch(font):
        raise InvalidInput(f"{value!r} is not a font name: letters, digits, spaces and hyphens "
                           "only, up to 80 characters, one font (e.g. Georgia)")
    return font


def _https_url(value):
    url = str(value)
    parsed = urlparse(url)
    if url and (parsed.scheme != "https" or not parsed.netloc or not _URL_CHARS.fullmatch(url)):
        raise InvalidInput(f"{value!r} is not an https:// URL (no spaces, quotes or brackets), "
                           "e.g. https://coach.example.com/logo.png")
    return url


def _luminance(colour):
    digits = colour[1:] if len(colour) == 7 else "".join(c * 2 for c in colour[1:])
    channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@dataclass(frozen=True)
class Brand:
    """The coach's look on the web pages. Every value is checked on creation, so the pages
    may put them into CSS and HTML as they are."""

    color: str = "#8a4a36"
    accent: str = "#5b2f22"
    font: str = ""
    logo_url: str = ""

    def __post_init__(self):
        for name, check in (("color", _colour), ("accent", _colour), ("font", _font),
                            ("logo_url", _https_url)):
            object.__setattr__(self, name, check(getattr(self, name)))

    @property
    def font_stack(self):
        """The CSS font-family: her font first, then the emails' web-safe fonts."""
        return f'"{self.font}", {FALLBACK_FONTS}' if self.font else FALLBACK_FONTS

    @property
    def on_color(self):
        """Text colour for a button in the brand colour: whichever contrasts more."""
        lum = _luminance(self.color)
        return LIGHT_TEXT if (1.05 / (lum + 0.05)) >= (lum + 0.05) / (_luminance(DARK_TEXT) + 0.05) \
            else DARK_TEXT


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
        self.http_timeout = check("DRIP_HTTP_TIMEOUT", _positive_number)
        # Read once here; the provider layer uses these (None: the provider's default).
        rate = self.rate_limit = (check("DRIP_RATE_LIMIT", _rate)
                                  if self.get("DRIP_RATE_LIMIT") else None)
        self.concurrency = (check("DRIP_CONCURRENCY", _positive_int)
                            if self.get("DRIP_CONCURRENCY") else None)
        if self.claim_timeout is not None and self.http_timeout is not None:
            needed = handoff_budget(self.http_timeout, rate_limit=rate,
                                    concurrency=self.concurrency or 4)
            if self.claim_timeout < needed:
                limited = f" and DRIP_RATE_LIMIT={self.get('DRIP_RATE_LIMIT')}" if rate else ""
                problems.append(
                    f"DRIP_CLAIM_TIMEOUT: {self.get('DRIP_CLAIM_TIMEOUT')} is too short for "
                    f"DRIP_HTTP_TIMEOUT={self.get('DRIP_HTTP_TIMEOUT')}{limited}: a slow provider can take "
                    f"up to {int(needed.total_seconds() // 2 - 30)}s to answer one hand-off, "
                    "and a claim that times out sooner is checked (and perhaps resent) while "
                    f"the first answer is still on its way. Use at least "
                    f"{int(needed.total_seconds())}s ({_how_to_set('DRIP_CLAIM_TIMEOUT')}), "
                    "or lower DRIP_HTTP_TIMEOUT" + (" or raise DRIP_RATE_LIMIT" if rate else ""))
        self.max_attempts = check("DRIP_MAX_ATTEMPTS", _positive_int)
        self.min_gap = check("DRIP_MIN_GAP", parse_duration)
        self.brake_complaint_rate = check("DRIP_BRAKE_COMPLAINT_RATE", _percent)
        self.brake_bounce_rate = check("DRIP_BRAKE_BOUNCE_RATE", _percent)
        self.brake_window = check("DRIP_BRAKE_WINDOW", parse_duration)
        self.brake_min_events = check("DRIP_BRAKE_MIN_EVENTS", _positive_int)
        self.guide_url = self.get("DRIP_GUIDE_URL") or (
            f"{self.base_url}/guide" if self.base_url else "")
        self.guide_attach = check("DRIP_GUIDE_ATTACH", _bool)
        self.allow_example_values = check("DRIP_ALLOW_EXAMPLE_VALUES", _bool)
        self.admin_enabled = check("DRIP_ADMIN", _bool)
        self.admin_session_timeout = check("DRIP_ADMIN_SESSION_TIMEOUT", _session_timeout)
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
        brand = {field: check(name, fn) for field, name, fn in (
            ("color", "DRIP_BRAND_COLOR", _colour), ("accent", "DRIP_BRAND_ACCENT", _colour),
            ("font", "DRIP_BRAND_FONT", _font), ("logo_url", "DRIP_BRAND_LOGO_URL", _https_url))}
        self.brand = Brand(**{k: v for k, v in brand.items() if v is not None})
        self.asset_url = (check("DRIP_ASSET_URL", _https_url) or "").rstrip("/")
        self.redirect_hosts = (redirect_hosts(self)
                               if check("DRIP_REDIRECT_HOSTS", parse_hosts) is not None else set())
        self.signup_redirect = check("DRIP_SIGNUP_REDIRECT", self._allowed_redirect) or ""
        if problems:
            raise ConfigError("Settings need attention:\n  " + "\n  ".join(problems))

    def _allowed_redirect(self, value):
        if value and safe_redirect(value, self.redirect_hosts) is None:
            raise InvalidInput(f"{value!r} is not an https URL on DRIP_WEBSITE_URL's host or on a "
                               "host listed in DRIP_REDIRECT_HOSTS")
        return value

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
        found = [v for s in SETTINGS if s.secret and (v := self._env.get(s.name))]
        password = _database_password(self._env.get("DRIP_DATABASE"))
        return found + [password] if password else found

    def masker(self):
        """Masks every secret in force, in every form it could take, in logs and output."""
        return secrets_masker(self._env)

    def placeholders(self):
        """The settings a subscriber would see that still hold an example `drip init` wrote:
        the example itself, a piece of it (the name 'Coach Example', the street), or an
        example.com, example.org or example.net address or link. A list of Placeholder."""
        found = []
        for name in EXAMPLE_CHECKED:
            value = (self._env.get(name) or "").strip()
            why = _example_in(value, SETTINGS_BY_NAME[name].example) if value else None
            if why:
                found.append(Placeholder(name, value, why))
        return found

    def refuse_example_values(self, command):
        """Raise a ConfigError naming every placeholder when ``command`` (e.g. "drip send")
        would mail real people: any provider but the outbox, unless DRIP_ALLOW_EXAMPLE_VALUES."""
        if self.provider == "outbox" or self.allow_example_values:
            return
        found = self.placeholders()
        if found:
            raise ConfigError(
                f"{command} will not send through {self.provider} while settings still hold "
                "the example values `drip init` wrote (real subscribers would see them):\n  "
                + "\n  ".join(str(p) for p in found)
                + "\nSet your own values in .env or in the environment (`drip check` lists "
                "them too); only the outbox (DRIP_PROVIDER=outbox) may keep the examples.")


@dataclass(frozen=True)
class Placeholder:
    name: str
    value: str
    why: str

    def __str__(self):
        return f"{self.name} {self.why} ({self.value!r})"


_HOST = re.compile(r"(?:@|://)([A-Za-z0-9.-]+)")


def _example_in(value, example):
    """Why ``value`` is still (part of) the made-up ``example``, or None."""
    if " ".join(value.split()).casefold() == " ".join(example.split()).casefold():
        return "is still the example value"
    for host in _HOST.findall(value):
        host = host.lower().rstrip(".")
        if any(host == d or host.endswith(f".{d}") for d in EXAMPLE_DOMAINS):
            return f"uses the example domain {host}"
    if example.startswith(("http://", "https://")):
        return None
    piece = parseaddr(example)[0] if "@" in example else example.split(",")[0].strip()
    if piece and piece.casefold() in value.casefold():
        return f"keeps the example {piece!r}"
    return None


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
    problem = header_problem(value)
    if problem:
        raise InvalidInput(f"{value!r} {problem}; write the name as plain text, e.g. "
                           "Zoë Coach <coach@example.com>")
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def _url(value):
    parsed = urlparse(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise InvalidInput(f"{value!r} is not a URL, e.g. https://mail.example.com")
    if parsed.scheme == "http" and parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise InvalidInput(f"{value!r} must use https:// (one-click unsubscribe needs HTTPS)")
    return value.rstrip("/")


# The provider layer's own retries of one request (sender/providers/http.py): attempts,
# and the longest wait between two of them.
HTTP_ATTEMPTS, HTTP_MAX_WAIT = 3, 10.0
# How late a provider's message search may show a message it accepted.
SEARCH_LAG = timedelta(seconds=60)


def handoff_budget(http_timeout, *, rate_limit=None, concurrency=4):
    """The shortest safe DRIP_CLAIM_TIMEOUT: twice the longest one hand-off can take (each
    of its requests in flight with its in-process retries, and the waits the rate limit
    imposes before each attempt), plus the provider's search lag. A claim younger than this
    is never taken over, so a slow answer is recorded by the process that is waiting for
    it."""
    one = HTTP_ATTEMPTS * http_timeout + (HTTP_ATTEMPTS - 1) * HTTP_MAX_WAIT
    if rate_limit:
        one += HTTP_ATTEMPTS * concurrency / rate_limit
    return timedelta(seconds=2 * one) + SEARCH_LAG


def _session_timeout(value):
    duration = parse_duration(value)
    if not timedelta(minutes=1) <= duration <= timedelta(hours=12):
        raise InvalidInput(f"{value!r} must be between 1m and 12h, e.g. 30m")
    return duration


def _positive_number(value, unit="seconds", example="30 or 2.5"):
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of {unit}, e.g. {example}") from None
    if not number > 0:
        raise ValueError(f"{value!r} must be a number of {unit} above 0")
    return number


def _rate(value):
    return _positive_number(value, "requests per second", "5 or 0.5")


def _positive_int(value):
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number; write one such as 5") from None
    if number < 1:
        raise ValueError(f"{value!r} must be 1 or more")
    return number


def _percent(value):
    """'0.1%' (or '0.1') -> 0.001."""
    text = str(value).strip().removesuffix("%").strip()
    try:
        number = float(text)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a percentage, e.g. 0.1%") from None
    if not 0 < number <= 100:
        raise InvalidInput(f"{value!r} must be above 0% and at most 100%")
    return number / 100


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
