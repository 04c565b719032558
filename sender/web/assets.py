"""The pictures on `drip serve`: ``GET /assets/<name>``, the files the emails name.

    GET /assets/glute-bridge.3f9c2a71d0@2x.png   the file, cached for a year (immutable)
    GET /assets/glute-bridge.0000000000@2x.png   an older version: 302 (no-store) to the current
    anything else                                404

Names come from ``sender.images`` (the picture's stem, a hash of its source and of the
conversion, the scale); files are drawn on the first request and kept in memory. An email
sent before a picture was edited still shows it: its old URL leads to the new file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from werkzeug.exceptions import NotFound
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from .. import images
from ..errors import DripError
from .guide_host import IMMUTABLE

log = logging.getLogger("drip.web")

CACHE_CONTROL = IMMUTABLE       # a name means one content for good


@dataclass(frozen=True)
class Asset:
    data: bytes = b""
    content_type: str = ""
    moved_to: str = ""      # the current file's name, for an older version's URL


class HostedAssets:
    def __init__(self, settings):
        self.settings = settings

    def find(self, name):
        """The Asset for ``name``, or None when there is no such picture. May raise
        ImageError (a DripError) when the picture cannot be drawn."""
        catalog = images.load_catalog(self.settings.templates_dir)
        found = images.find_file(catalog, name)
        if found is None:
            return None
        picture, scale, current = found
        if not current:
            return Asset(moved_to=picture.filename(scale))
        return Asset(images.render(picture, scale), images.CONTENT_TYPES[picture.ext])



class AssetEndpoints:
    """The pictures' route of ``WebApp`` (``app.py``); ``self.assets`` is its HostedAssets."""

    def on_asset(self, request, name):
        try:
            asset = self.assets.find(name)
        except DripError as exc:
            log.error("cannot serve the picture %s: %s", name, exc)
            raise NotFound() from None
        if asset is None:
            raise NotFound()
        if asset.moved_to:
            return redirect(f"{self.settings.base_url}/assets/{asset.moved_to}", 302)
        response = Response(asset.data, content_type=asset.content_type)
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response
