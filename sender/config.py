"""Settings: every setting parsed and checked once, at start, from the environment.

Where things are (a setting's whole story, from its row to its value):

    settings_table.py   the table of every setting: name, help, example, default, and how its
                        text is parsed; the ``.env`` and README texts made from it
    providers/<name>/settings.py   each provider's rows of that table
    setting.py          ``Setting``, one row; setting_values.py: the parsers rows name
    brand.py            ``Coach`` and ``Brand``, built here from their settings
    config.py (here)    ``Settings``: parses every setting in force and checks the rules
                        between settings, reporting every bad value at once, by name

The CLI loads ``.env`` once, early, with python-dotenv before building ``Settings``; values
already in the real environment win. ``python -m sender.config`` prints ``.env.example``
(``--markdown``: the README's settings table).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from urllib.parse import urlparse

from .brand import Brand, Coach
from .errors import ConfigError
from .logging_setup import Masker
from .safeurl import redirect_hosts, safe_redirect
from .setting import how_to_set
from .settings_table import (
    EXAMPLE_CHECKED,
    EXAMPLE_DOMAINS,
    PROVIDERS,
    SECRET_USERS,
    SETTINGS,
    SETTINGS_BY_NAME,
    env_file_text,
    settings_markdown,
)

# Importable from here as before: the table and its texts live in settings_table.py.
__all__ = ["EXAMPLE_CHECKED", "PROVIDERS", "SETTINGS", "SETTINGS_BY_NAME", "Brand", "Coach",
           "HTTP_ATTEMPTS", "HTTP_MAX_WAIT", "Placeholder", "Settings", "env_file_text",
           "handoff_budget", "secrets_masker", "setting_value", "settings_markdown"]


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


def setting_value(name, environ=None):
    """One setting's value from ``environ`` (default: the process environment), parsed as its
    row says, without reading any other: for `drip init`, `drip migrate` and `drip backup`,
    which need only DRIP_DATABASE. A bad value is a ConfigError naming the setting."""
    environ = os.environ if environ is None else environ
    return SETTINGS_BY_NAME[name].value_of(environ.get(name))


class Settings:
    """Validated settings. Build with ``Settings.from_env()``.

    Every setting in force is parsed here, at start, as its row in the table says: the core
    ones, and the chosen provider's (DRIP_PROVIDER); then the rules between settings are
    checked. Every problem is reported at once, each with the setting's name, what is wrong
    and how to set it. Code reads the parsed values: the attributes below, or ``value(NAME)``
    (another provider's setting is parsed when first asked for); ``get(NAME)`` is the text as
    given, for messages."""

    def __init__(self, env):
        self._env = {k: v for k, v in env.items() if k in SETTINGS_BY_NAME}
        self._values = {}
        problems = []
        for setting in SETTINGS:
            if setting.required and not self.get(setting.name):
                problems.append(f"{setting.name} is not set: {setting.help} "
                                f"({how_to_set(setting.name)}; `drip init` writes a starter .env)")
        self.provider = self._parse("DRIP_PROVIDER", problems)
        for setting in SETTINGS:
            if setting.provider in ("", self.provider):
                self._parse(setting.name, problems)
        v = self._values
        self.database = v["DRIP_DATABASE"]
        self.outbox_dir = self.value("DRIP_OUTBOX_DIR")     # the outbox provider, and erasure
        self.sender = v["DRIP_FROM"]
        self.reply_to = v["DRIP_REPLY_TO"] or self.sender
        self.postal_address = v["DRIP_POSTAL_ADDRESS"] or ""
        self.base_url = v["DRIP_BASE_URL"] or ""
        self.secret_key = v["DRIP_SECRET_KEY"] or ""
        self.timezone = v["DRIP_TIMEZONE"]
        self.timezone_name = self.timezone.key if self.timezone else None
        self.send_window = v["DRIP_SEND_WINDOW"]
        self.campaigns_dir = v["DRIP_CAMPAIGNS_DIR"]
        self.guide_build_dir = v["DRIP_GUIDE_BUILD_DIR"]
        self.templates_dir = v["DRIP_TEMPLATES_DIR"]
        self.claim_timeout = v["DRIP_CLAIM_TIMEOUT"]
        self.http_timeout = v["DRIP_HTTP_TIMEOUT"]
        # The provider layer uses these (None: the provider's default).
        self.rate_limit = v["DRIP_RATE_LIMIT"]
        self.concurrency = v["DRIP_CONCURRENCY"]
        self.max_attempts = v["DRIP_MAX_ATTEMPTS"]
        self.min_gap = v["DRIP_MIN_GAP"]
        self.broadcast_yield = v["DRIP_BROADCAST_YIELD"]
        self.sunset_after = v["DRIP_SUNSET_AFTER"]
        self.sunset_wait = v["DRIP_SUNSET_WAIT"]
        self.brake_complaint_rate = v["DRIP_BRAKE_COMPLAINT_RATE"]
        self.brake_bounce_rate = v["DRIP_BRAKE_BOUNCE_RATE"]
        self.brake_window = v["DRIP_BRAKE_WINDOW"]
        self.brake_min_events = v["DRIP_BRAKE_MIN_EVENTS"]
        self.guide_url = v["DRIP_GUIDE_URL"] or (f"{self.base_url}/guide" if self.base_url else "")
        self.guide_attach = v["DRIP_GUIDE_ATTACH"]
        self.allow_example_values = v["DRIP_ALLOW_EXAMPLE_VALUES"]
        self.admin_enabled = v["DRIP_ADMIN"]
        self.admin_session_timeout = v["DRIP_ADMIN_SESSION_TIMEOUT"]
        website = v["DRIP_WEBSITE_URL"] or self.base_url
        contact = v["DRIP_CONTACT_URL"] or website
        self.coach = Coach(
            name=v["DRIP_COACH_NAME"] or (self.sender.display_name if self.sender else ""),
            credentials=v["DRIP_COACH_CREDENTIALS"] or "",
            city=v["DRIP_COACH_CITY"] or "",
            signoff=v["DRIP_COACH_SIGNOFF"] or "",
            website_url=website,
            blog_url=v["DRIP_BLOG_URL"] or website,
            instagram_url=v["DRIP_INSTAGRAM_URL"] or "",
            contact_url=contact,
            booking_url=v["DRIP_BOOKING_URL"] or contact,
        )
        brand = {"color": v["DRIP_BRAND_COLOR"], "accent": v["DRIP_BRAND_ACCENT"],
                 "font": v["DRIP_BRAND_FONT"], "logo_url": v["DRIP_BRAND_LOGO_URL"]}
        self.brand = Brand(**{k: value for k, value in brand.items() if value is not None})
        self.asset_url = (v["DRIP_ASSET_URL"] or "").rstrip("/")
        self.redirect_hosts = redirect_hosts(v["DRIP_REDIRECT_HOSTS"] or set(),
                                             v["DRIP_WEBSITE_URL"])
        self.signup_redirect = v["DRIP_SIGNUP_REDIRECT"] or ""
        # The signup form (sender/joining.py, sender/web/signup.py).
        self.consent_text = v["DRIP_CONSENT_TEXT"]
        self.consent_version = v["DRIP_CONSENT_VERSION"]
        self.signup_limit_ip = v["DRIP_SIGNUP_LIMIT_IP"]
        self.signup_limit_address = v["DRIP_SIGNUP_LIMIT_ADDRESS"]
        self.proxy_count = v["DRIP_PROXY_COUNT"]
        # `drip doctor` (sender/doctor.py): empty means the provider's own.
        self.spf_include = v["DRIP_SPF_INCLUDE"] or ""
        self.dkim_selectors = v["DRIP_DKIM_SELECTORS"] or []
        problems += self._rules_between_settings()
        if problems:
            raise ConfigError("Settings need attention:\n  " + "\n  ".join(problems))

    def _parse(self, name, problems):
        """Parse ``name`` once, at start; a bad value joins ``problems`` and reads as None."""
        if name not in self._values:
            try:
                self._values[name] = SETTINGS_BY_NAME[name].value_of(self._env.get(name))
            except ConfigError as exc:
                problems.append(str(exc))
                self._values[name] = None
        return self._values[name]

    def _rules_between_settings(self):
        """What two settings must agree on, each fine alone."""
        problems = []
        rate = self.rate_limit
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
                    f"{int(needed.total_seconds())}s ({how_to_set('DRIP_CLAIM_TIMEOUT')}), "
                    "or lower DRIP_HTTP_TIMEOUT" + (" or raise DRIP_RATE_LIMIT" if rate else ""))
        if self.signup_redirect and safe_redirect(self.signup_redirect, self.redirect_hosts) is None:
            problems.append(f"DRIP_SIGNUP_REDIRECT: {self.signup_redirect!r} is not an https URL on "
                            "DRIP_WEBSITE_URL's host or on a host listed in DRIP_REDIRECT_HOSTS "
                            f"({how_to_set('DRIP_SIGNUP_REDIRECT')})")
        return problems

    @classmethod
    def from_env(cls, environ=None):
        return cls(os.environ if environ is None else environ)

    def get(self, name):
        """The text of ``name`` as given, or its default: for messages. Code reads
        ``value``."""
        value = self._env.get(name)
        if value is None or value == "":
            return SETTINGS_BY_NAME[name].default if name in SETTINGS_BY_NAME else None
        return value

    def value(self, name):
        """The parsed value of setting ``name`` (None when empty and without a default). A
        setting not parsed at start (another provider's) is parsed now: a bad value is a
        ConfigError naming it."""
        if name not in self._values:
            self._values[name] = SETTINGS_BY_NAME[name].value_of(self._env.get(name))
        return self._values[name]

    def require(self, name):
        """The parsed value of ``name``; a ConfigError that says how to set it when it is
        empty."""
        value = self.value(name)
        if value is None or value == "":
            setting = SETTINGS_BY_NAME.get(name)
            what = f": {setting.help}" if setting else ""
            raise ConfigError(f"{name} is not set{what} ({how_to_set(name)})")
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


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--markdown"]:
        print(settings_markdown(), end="")
    else:
        print(env_file_text(example=True), end="")
