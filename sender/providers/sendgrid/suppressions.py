"""SendGrid's suppression lists for `drip events sync`, a page at a time.

    GET /v3/suppression/bounces | spam_reports | unsubscribes
"""

from __future__ import annotations

from ...events import BOUNCED, COMPLAINED, UNSUBSCRIBED
from ..webhook import shaped

PAGE = 500


def rows(provider, *, stream=None):
    """(kind, address, created, raw item) for each address on the three lists."""
    for path, kind in (("bounces", BOUNCED), ("spam_reports", COMPLAINED),
                       ("unsubscribes", UNSUBSCRIBED)):
        offset, where = 0, {"provider": provider.name, "path": f"/v3/suppression/{path}"}
        while True:
            items = shaped(provider.http.read(where["path"], limit=PAGE, offset=offset), list,
                           what="the body", **where)
            for item in items:
                shaped(item, dict, what="an item", **where)
                yield kind, item.get("email"), item.get("created"), item
            if len(items) < PAGE:
                break
            offset += PAGE
