"""The settings table: every setting drip reads, in the order ``.env.example`` and the
README list them, and those two texts.

Each ``Setting`` says how its text becomes a value (``parse=``, from ``setting_values.py``);
``Settings`` in ``config.py`` parses them all at start. Each provider's settings are declared
in its folder (``sender/providers/<name>/settings.py``) and take their place below through
the registry. ``.env.example`` and ``drip init`` are generated from ``SETTINGS`` (``python -m
sender.config``), and the README's table too (``--markdown``), so they never drift.
"""

from __future__ import annotations

import secrets

from . import setting_values as values
from .providers import registry
from .safeurl import parse_hosts
from .schedule import parse_duration, parse_window, zone
from .setting import Setting

SETTINGS = [
    Setting("DRIP_DATABASE", "SQLite database file (a path), or a postgresql:// URL.", "drip.db",
            default="drip.db", parse=values.database),
    Setting(
        "DRIP_PROVIDER",
        "Where email goes: outbox (a folder of .eml files, the default), postmark, "
        "sendgrid, mailgun, resend or smtp.",
        "outbox",
        default="outbox",
        parse=values.choice(registry.NAMES),
    ),
    *registry.settings("CORE"),
    Setting("DRIP_FROM", "The From address, with a display name.",
            "Coach Example <coach@example.com>", required=True, parse=values.address),
    Setting("DRIP_REPLY_TO", "Where replies go (defaults to DRIP_FROM).", "coach@example.com",
            parse=values.address),
    Setting("DRIP_POSTAL_ADDRESS", "A valid postal address, shown in every email (CAN-SPAM).",
            "123 Example St, Redmond, WA 98052, USA", required=True,
            parse=values.no_line_break),
    Setting("DRIP_BASE_URL",
            "Public HTTPS base URL where `drip serve` answers (unsubscribe and confirm links).",
            "https://mail.example.com", required=True, parse=values.url),
    Setting("DRIP_SECRET_KEY", "Secret for signed tokens; at least 32 random characters. "
            "`drip init` writes a fresh one.", "", required=True, secret=True,
            parse=values.secret_key),
    Setting("DRIP_TIMEZONE", "Time zone for subscribers who have none (IANA name).",
            "America/Los_Angeles", default="UTC", parse=zone),
    Setting("DRIP_SEND_WINDOW", "Default send window in the subscriber's local time.",
            "Mon-Fri 09:00-17:00", default="Mon-Fri 09:00-17:00", parse=parse_window),
    Setting("DRIP_CAMPAIGNS_DIR", "Folder of campaign TOML files.", "campaigns",
            default="campaigns", parse=values.path),
    Setting("DRIP_TEMPLATES_DIR", "Folder of Jinja templates.", "templates", default="templates",
            parse=values.path),
    Setting("DRIP_CLAIM_TIMEOUT",
            "How long a claimed delivery may stay 'sending' before it is checked as interrupted.",
            "10m", default="10m", parse=parse_duration),
    Setting("DRIP_MAX_ATTEMPTS", "Attempts before a delivery that keeps failing is marked failed.",
            "5", default="5", parse=values.positive_int),
    Setting("DRIP_MIN_GAP",
            "Least time between two campaign emails to one person (catch-up after downtime).",
            "20h", default="20h", parse=parse_duration),
    Setting("DRIP_BROADCAST_YIELD",
            "When a broadcast and a sequence email to one person would land within DRIP_MIN_GAP, "
            "which one moves to the next window after the other: sequence or broadcast.",
            "sequence", default="sequence", parse=values.choice(("sequence", "broadcast"))),
    Setting("DRIP_SUNSET_AFTER",
            "The sunset rule: after this many emails in a row with no click, the next one is "
            "replaced by a \"still want these?\" email; 0 turns the rule off.",
            "0", default="0", parse=values.count),
    Setting("DRIP_SUNSET_WAIT",
            "How long the sunset rule waits for \"yes, keep them\" before it stops mailing her.",
            "14d", default="14d", parse=values.positive_duration),
    Setting("DRIP_ALLOW_EXAMPLE_VALUES",
            "Test setups only: true lets a real provider send, and `drip check` pass, with the "
            "example values `drip init` writes. Never set it where real people get the mail.",
            "false", default="false", parse=values.boolean),
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
            "false", default="false", group="Coach", parse=values.boolean),
    Setting("DRIP_GUIDE_BUILD_DIR", "Where `drip guide build` writes the guide, and where the PDF "
            "for DRIP_GUIDE_ATTACH is built once and kept.", "build/guide", default="build/guide",
            group="Coach", parse=values.path),
    # Brand: the web pages' look (the email layout and the guide may use it too). Checked so
    # that nothing but a colour, a font name or an https URL reaches the pages' CSS and HTML.
    Setting("DRIP_BRAND_COLOR", "Main brand colour, #rgb or #rrggbb: buttons, links, the band at "
            "the top of the web pages.", "#8a4a36", default="#8a4a36", group="Brand", parse=values.colour),
    Setting("DRIP_BRAND_ACCENT", "Second brand colour, #rgb or #rrggbb: the pages' headings.",
            "#5b2f22", default="#5b2f22", group="Brand", parse=values.colour),
    Setting("DRIP_BRAND_LOGO_URL", "An https URL of the logo shown at the top of the web pages "
            "(e.g. https://coach.example.com/logo.png); empty: the coach's name.", "", default="",
            group="Brand", parse=values.https_url),
    Setting("DRIP_BRAND_FONT", "A font name (letters, digits, spaces, hyphens) for the web pages, "
            "e.g. Georgia; Helvetica, Arial, sans-serif stand in where it is not installed.",
            "", default="", group="Brand", parse=values.font),
    Setting("DRIP_ASSET_URL", "Where emails load their pictures from: an https URL of the folder "
            "you upload `drip assets publish DIR` to (a CDN or your site, e.g. "
            "https://coach.example.com/email-images). Empty: DRIP_BASE_URL/assets, served by "
            "`drip serve`.", "", default="", group="Brand", parse=values.https_url),
    # Providers: each key and the API base URL as the provider documents it, then each
    # provider's options.
    *registry.settings("ACCOUNT"),
    *registry.settings("OPTIONS"),
    Setting("DRIP_RATE_LIMIT", "Most API requests per second to the provider (empty: its default; "
            "resend 5, the others unlimited). A Postmark or Resend request carries a whole batch.",
            "5", group="Providers", parse=values.rate),
    Setting("DRIP_CONCURRENCY", "API requests in flight at once (empty: the provider's default: "
            "1 for postmark and resend, 4 for sendgrid and mailgun).", "4", group="Providers",
            parse=values.positive_int),
    Setting("DRIP_HTTP_TIMEOUT", "Seconds to wait for a provider's answer before retrying.", "30",
            default="30", group="Providers", parse=values.positive_number),
    # Web endpoints (`drip serve`): signup form, consent record, rate limits, webhooks.
    Setting("DRIP_CONSENT_TEXT", "The consent wording beside the signup form's checkbox; stored "
            "with every signup.",
            "Yes, send me the free guide and the follow-up emails. I can unsubscribe at any time.",
            default="Yes, send me the free guide and the follow-up emails. I can unsubscribe at "
            "any time.", group="Web", parse=values.one_line),
    Setting("DRIP_CONSENT_VERSION", "Version of the consent wording; change it whenever the "
            "wording changes.", "1", default="1", group="Web", parse=values.one_line),
    Setting("DRIP_SIGNUP_LIMIT_IP", "Signups accepted from one IP address per hour.", "20",
            default="20", group="Web", parse=values.count),
    Setting("DRIP_SIGNUP_LIMIT_ADDRESS", "Signups accepted for one email address per hour.", "3",
            default="3", group="Web", parse=values.count),
    Setting("DRIP_PROXY_COUNT", "Reverse proxies in front of `drip serve` whose X-Forwarded-For "
            "is trusted for the client IP (0 when none).", "0", default="0", group="Web",
            parse=values.count),
    Setting("DRIP_REDIRECT_HOSTS", "Hosts a signup may be sent back to after the form (comma-"
            "separated, e.g. shop.coach.example.com), besides DRIP_WEBSITE_URL's host; https only.",
            "", default="", group="Web", parse=parse_hosts),
    Setting("DRIP_SIGNUP_REDIRECT", "A thank-you page to send people to after a signup (an https "
            "URL on an allowed host); a form's `redirect` field overrides it. Empty: the "
            "check-your-inbox page.", "", default="", group="Web", parse=values.one_line),
    *registry.settings("WEBHOOK"),
    # Deliverability: `drip doctor`, and the brake on complaints and bounces (sender/brake.py).
    Setting("DRIP_BRAKE_COMPLAINT_RATE", "Pause a campaign when this share of its recent emails "
            "is reported as spam (Gmail's own limit is 0.3%).", "0.1%", default="0.1%",
            group="Deliverability", parse=values.percent),
    Setting("DRIP_BRAKE_BOUNCE_RATE", "Pause a campaign when this share of its recent emails "
            "bounces for good.", "2%", default="2%", group="Deliverability",
            parse=values.percent),
    Setting("DRIP_BRAKE_WINDOW", "How far back the brake counts a campaign's emails.", "7d",
            default="7d", group="Deliverability", parse=parse_duration),
    Setting("DRIP_BRAKE_MIN_EVENTS", "Fewest complaints (or hard bounces) that can pause a "
            "campaign, so one or two on a small list do not.", "3", default="3",
            group="Deliverability", parse=values.positive_int),
    Setting("DRIP_DKIM_SELECTORS", "DKIM selectors `drip doctor` looks up, comma-separated "
            "(empty: the ones the provider uses; Postmark's carry a date, e.g. 20240101000000pm).",
            "", default="", group="Deliverability", parse=values.dns_names),
    Setting("DRIP_SPF_INCLUDE", "The SPF include that covers your provider's servers, for `drip "
            "doctor` (empty: the provider's own; set it for SMTP, e.g. _spf.google.com).", "",
            default="", group="Deliverability", parse=values.dns_name),
    # The admin dashboard at DRIP_BASE_URL/admin (sender/web/admin).
    Setting("DRIP_ADMIN", "The dashboard at DRIP_BASE_URL/admin: on (it still stays off until "
            "`drip admin set-password` stores a password) or off (every /admin address answers "
            "404).", "on", default="on", group="Admin", parse=values.boolean),
    Setting("DRIP_ADMIN_SESSION_TIMEOUT", "How long a dashboard login lasts without a click "
            "before it asks for the password again (a login ends after 12 hours in any case).",
            "30m", default="30m", group="Admin", parse=values.session_timeout),
]

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
# Settings a subscriber sees, whose examples above are made up: while one still holds its
# example (or an example.com/.org/.net address or link), no real provider sends.
EXAMPLE_CHECKED = ("DRIP_FROM", "DRIP_REPLY_TO", "DRIP_POSTAL_ADDRESS", "DRIP_BASE_URL",
                   "DRIP_COACH_NAME", "DRIP_WEBSITE_URL", "DRIP_BLOG_URL", "DRIP_INSTAGRAM_URL",
                   "DRIP_CONTACT_URL", "DRIP_BOOKING_URL", "DRIP_GUIDE_URL")
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")
PROVIDERS = registry.NAMES
# Logins that travel beside a secret (basic auth, SMTP AUTH); Mailgun's basic-auth user is "api".
SECRET_USERS = tuple(s.name for s in SETTINGS if s.login)


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
