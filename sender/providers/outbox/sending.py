"""The outbox: each message becomes a standard ``.eml`` file in a folder.

The default provider. It needs no account, and what it writes is exactly what
a real provider would be given, so the coach can open any message in a mail
program. Files are written atomically and named from the Message-ID
(campaign.step.subscriber), so a retried delivery never makes a second file; list
them by time with `ls -tr`. A message the last header check refuses is rejected and
leaves no file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import HeaderInjection, ProviderError
from ..base import ACCEPTED, RECONCILED_NOT_SENT, RECONCILED_SENT, REJECTED, Provider, SendResult


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

    def path_for(self, message_id):
        return self.directory / f"{file_stem(message_id)}.eml"

    def send(self, messages):
        results = []
        for message in messages:
            path = self.path_for(message.message_id)
            if not path.exists():
                try:
                    data = message.as_bytes()
                except HeaderInjection as exc:      # the last guard refused it: no file
                    results.append(SendResult(message.delivery_id, REJECTED, error=str(exc)))
                    continue
                temporary = path.with_name(f".{path.name}.tmp")
                try:
                    temporary.write_bytes(data)
                    os.replace(temporary, path)
                except OSError as exc:
                    raise ProviderError(f"cannot write to the outbox {self.directory}: "
                                        f"{exc.strerror}") from None
            results.append(SendResult(message.delivery_id, ACCEPTED, provider_message_id=path.name))
        return results

    def reconcile(self, delivery, message_id):
        if message_id and self.path_for(message_id).exists():
            return RECONCILED_SENT, self.path_for(message_id).name
        return RECONCILED_NOT_SENT, None


def build(settings, *, extra_headers=None):
    """The outbox in DRIP_OUTBOX_DIR (``extra_headers`` are for API providers)."""
    return OutboxProvider(settings.outbox_dir)
