"""The pictures on `drip serve`: ``GET /assets/<name>``, the files the emails name.

    GET /assets/glute-bridge.3f9c2a71d0@2x.png   the file, cached for a year (immutable)
    GET /assets/glute-bridge.0000000000@2x.png   an older version: 302 (no-store) to the current
    anything else                                404

Names come from ``sender.images`` (the picture's stem, a hash of its source and of the
conversion, the scale); files are drawn on the first request and kept in memory. An email
sent before a picture was edited still shows it: its old URL leads to the new file.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import images
from .guide_host import IMMUTABLE

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

