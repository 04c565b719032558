"""Postmark's settings (gathered into the table in ``sender/settings_table.py``)."""

from __future__ import annotations

from ... import setting_values as values
from ...setting import Setting

ACCOUNT = [
    Setting("POSTMARK_SERVER_TOKEN", "Postmark server token.", "", secret=True, group="Providers"),
    Setting("POSTMARK_API_URL", "Postmark API base URL.", "https://api.postmarkapp.com",
            default="https://api.postmarkapp.com", group="Providers", parse=values.api_url),
]
OPTIONS = [
    Setting("POSTMARK_MESSAGE_STREAM", "Postmark message stream for campaign (marketing) mail: a "
            "Broadcasts stream.", "broadcast", default="broadcast", group="Providers"),
    Setting("POSTMARK_TRANSACTIONAL_STREAM", "Postmark message stream for the confirmation and "
            "welcome emails: a Transactional stream (Postmark's default is outbound).", "outbound",
            default="outbound", group="Providers"),
]
WEBHOOK = [
    Setting("POSTMARK_WEBHOOK_USER", "User name in the Postmark webhook URL's basic auth.", "",
            group="Webhooks", login=True),
    Setting("POSTMARK_WEBHOOK_PASSWORD", "Password in the Postmark webhook URL's basic auth.", "",
            secret=True, group="Webhooks"),
]
