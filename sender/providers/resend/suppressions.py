"""Resend's suppression list for `drip events sync`, by cursor.

    GET /suppressions (origin bounce, complaint or manual)
"""

from __future__ import annotations

from ...errors import DripError
from ...events import BOUNCED, COMPLAINED, UNSUBSCRIBED
from ..webhook import shaped

KINDS = {"bounce": BOUNCED, "complaint": COMPLAINED, "manual": UNSUBSCRIBED}


def rows(provider, *, stream=None):
    """(kind, address, created, raw item) for each suppressed address."""
    params, where = {"limit": 100}, {"provider": provider.name, "path": "/suppressions"}
    for _ in range(100_000):
        body = shaped(provider.http.read("/suppressions", **params), dict, what="the body",
                      **where)
        data = shaped(body.get("data") or [], list, what="data", **where)
        for item in data:
            shaped(item, dict, what="an item", **where)
            kind = KINDS.get(item.get("origin"))
            if kind:
                yield kind, item.get("email"), item.get("created_at"), item
        if not body.get("has_more") or not data:
            break
        after = data[-1].get("id")
        if not isinstance(after, str | int) or isinstance(after, bool) or after == "":
            raise DripError(f"{provider.name}: unexpected answer from /suppressions: an item "
                            "has no id to ask for the next page after")
        params = {"limit": 100, "after": after}
