"""Resend's settings (gathered into the table in ``sender/settings_table.py``)."""

from __future__ import annotations

from ... import setting_values as values
from ...setting import Setting

ACCOUNT = [
    Setting("RESEND_API_KEY", "Resend API key.", "", secret=True, group="Providers"),
    Setting("RESEND_API_URL", "Resend API base URL.", "https://api.resend.com",
            default="https://api.resend.com", group="Providers", parse=values.api_url),
]
WEBHOOK = [
    Setting("RESEND_WEBHOOK_SECRET", "Resend webhook signing secret (whsec_...).", "",
            secret=True, group="Webhooks"),
]
