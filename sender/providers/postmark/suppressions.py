"""Postmark's suppression list for `drip events sync`: one dump per message stream.

    GET /message-streams/{stream}/suppressions/dump
"""

from __future__ import annotations

from ...events import BOUNCED, COMPLAINED, UNSUBSCRIBED
from ..webhook import shaped

KINDS = {"HardBounce": BOUNCED, "SpamComplaint": COMPLAINED, "ManualSuppression": UNSUBSCRIBED}


def rows(provider, *, stream=None):
    """(kind, address, created, raw item) for each suppressed address of ``stream`` (default:
    the campaign stream, POSTMARK_MESSAGE_STREAM)."""
    stream = stream or provider.message_stream
    path = f"/message-streams/{stream}/suppressions/dump"
    where = {"provider": provider.name, "path": path}
    body = shaped(provider.http.read(path), dict, what="the body", **where)
    for item in shaped(body.get("Suppressions", []), list, what="Suppressions", **where):
        shaped(item, dict, what="an item", **where)
        kind = KINDS.get(item.get("SuppressionReason"))
        if kind:
            yield kind, item.get("EmailAddress"), item.get("CreatedAt"), item
