"""The outbox: each message becomes a standard ``.eml`` file in a folder.

The default provider. It needs no account, and what it writes is exactly what
a real provider would be given, so the coach can open any message in a mail
program. Files are written atomically and named from the Message-ID, so a
retried delivery never makes a second file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ProviderError
from .base import ACCEPTED, RECONCILED_NOT_SENT, RECONCILED_SENT, Provider, SendResult


def file_stem(message_id):
    """The file name part for a Message-ID: its local part, safe for any file system."""
    local = message_id.strip("<>").split("@", 1)[0]
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in local)


class OutboxProvider(Provider):
    name = "outbox"
    batch_size = 100

    def __init__(self, directory):
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProviderError(f"cannot create the outbox folder {self.directory}: "
                                f"{exc.strerror} (check DRIP_OUTBOX_DIR)") from None

    def path_for(self, message):
        stamp = message.date.strftime("%Y%m%dT%H%M%SZ")
        return self.directory / f"{stamp}_{file_stem(message.message_id)}.eml"

    def _existing(self, message_id):
        return next(iter(self.directory.glob(f"*_{file_stem(message_id)}.eml")), None)

    def send(self, messages):
        results = []
        for message in messages:
            existing = self._existing(message.message_id)
            path = existing or self.path_for(message)
            if not existing:
                temporary = path.with_name(f".{path.name}.tmp")
                try:
                    temporary.write_bytes(message.as_bytes())
                    os.replace(temporary, path)
                except OSError as exc:
                    raise ProviderError(f"cannot write to the outbox {self.directory}: "
                                        f"{exc.strerror}") from None
            results.append(SendResult(message.delivery_id, ACCEPTED, provider_message_id=path.name))
        return results

    def reconcile(self, delivery, message_id):
        existing = self._existing(message_id)
        if existing:
            return RECONCILED_SENT, existing.name
        return RECONCILED_NOT_SENT, None
