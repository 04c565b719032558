"""The SMTP provider's settings (gathered into the table in ``sender/settings_table.py``)."""

from __future__ import annotations

from ... import setting_values as values
from ...setting import Setting

# How the connection is secured (SMTP_SECURITY).
SECURITY = ("starttls", "tls", "none")

ACCOUNT = [
    Setting("SMTP_HOST", "SMTP server host.", "smtp.example.com", group="Providers"),
    Setting("SMTP_PORT", "SMTP server port.", "587", default="587", group="Providers",
            parse=values.port),
    Setting("SMTP_USERNAME", "SMTP login.", "", group="Providers", login=True),
    Setting("SMTP_PASSWORD", "SMTP password.", "", secret=True, group="Providers"),
    Setting("SMTP_SECURITY", "starttls, tls or none.", "starttls", default="starttls",
            group="Providers", parse=values.choice(SECURITY)),
]
