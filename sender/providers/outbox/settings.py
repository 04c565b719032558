"""The outbox's one setting, a core one: it is the default provider (gathered into the table
in ``sender/settings_table.py``, right after DRIP_PROVIDER)."""

from __future__ import annotations

from ... import setting_values as values
from ...setting import Setting

CORE = [
    Setting("DRIP_OUTBOX_DIR", "Folder the outbox provider writes .eml files to.", "outbox",
            default="outbox", parse=values.path),
]
