"""Mailgun's settings (gathered into the table in ``sender/settings_table.py``)."""

from __future__ import annotations

from ... import setting_values as values
from ...setting import Setting

ACCOUNT = [
    Setting("MAILGUN_API_KEY", "Mailgun API key.", "", secret=True, group="Providers"),
    Setting("MAILGUN_DOMAIN", "Mailgun sending domain.", "mg.example.com", group="Providers",
            parse=values.dns_name),
    Setting("MAILGUN_API_URL", "Mailgun API base URL (EU: https://api.eu.mailgun.net).",
            "https://api.mailgun.net", default="https://api.mailgun.net", group="Providers",
            parse=values.api_url),
]
WEBHOOK = [
    Setting("MAILGUN_WEBHOOK_SIGNING_KEY", "Mailgun HTTP webhook signing key.", "", secret=True,
            group="Webhooks"),
]
