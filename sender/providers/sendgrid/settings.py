"""SendGrid's settings (gathered into the table in ``sender/settings_table.py``)."""

from __future__ import annotations

from ... import setting_values as values
from ...setting import Setting

ACCOUNT = [
    Setting("SENDGRID_API_KEY", "SendGrid API key.", "", secret=True, group="Providers"),
    Setting("SENDGRID_API_URL", "SendGrid API base URL.", "https://api.sendgrid.com",
            default="https://api.sendgrid.com", group="Providers", parse=values.api_url),
]
WEBHOOK = [
    Setting("SENDGRID_WEBHOOK_PUBLIC_KEY", "SendGrid event webhook verification key (base64).",
            "", group="Webhooks"),
]
