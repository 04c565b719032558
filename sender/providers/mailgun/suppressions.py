"""Mailgun's suppression lists for `drip events sync`, following its paging links.

    GET /v3/{MAILGUN_DOMAIN}/bounces | complaints | unsubscribes
"""

from __future__ import annotations

from ...events import BOUNCED, COMPLAINED, UNSUBSCRIBED
from ..webhook import shaped

PAGE = 500


def rows(provider, *, stream=None):
    """(kind, address, created, raw item) for each address on the three lists."""
    client = provider.http
    for path, kind in (("bounces", BOUNCED), ("complaints", COMPLAINED),
                       ("unsubscribes", UNSUBSCRIBED)):
        url, params = f"/v3/{provider.domain}/{path}", {"limit": PAGE}
        for _ in range(10_000):
            where = {"provider": provider.name, "path": url}
            body = shaped(client.read(url, **params), dict, what="the body", **where)
            items = shaped(body.get("items") or [], list, what="items", **where)
            for item in items:
                shaped(item, dict, what="an item", **where)
                yield kind, item.get("address"), item.get("created_at"), item
            paging = shaped(body.get("paging") or {}, dict, what="paging", **where)
            following = shaped(paging.get("next") or "", str, what="paging.next", **where)
            # Follow the paging link only on the API host we were given.
            if not items or not following.startswith(client.base_url + "/"):
                break
            url, params = following[len(client.base_url):], {}
