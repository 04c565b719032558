"""The guide on `drip serve`: its HTML page and PDF at URLs that carry a version.

    GET /guide                    302 (no-store) to /guide/<version>/guide.html
    GET /guide/pdf                302 (no-store) to /guide/<version>/guide.pdf
    GET /guide/<version>/<file>   the file, cached for a year (immutable); an older
                                  version's URL 302s to the current one

The files come from ``sender.guide.build_guide``, built into DRIP_GUIDE_BUILD_DIR on the
first request (the cache the PDF attachment uses too) and again whenever ``guide_key``
changes: a guide template or a coach setting the guide shows. The version is a hash of
the built files, so one URL always means the same bytes, and the welcome email's link
(``/guide``, never cached) always leads to the current guide.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass

from werkzeug.exceptions import NotFound
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from ..drip import Drip
from ..errors import DripError
from ..guide import ATTACHMENT_NAME, HTML_NAME, PDF_NAME, build_guide, guide_key

log = logging.getLogger("drip.web")

CONTENT_TYPES = {HTML_NAME: "text/html; charset=utf-8", PDF_NAME: "application/pdf"}
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class GuideVersion:
    key: str        # guide_key(): what the files were built from
    version: str    # a hash of the built files
    files: dict     # file name -> bytes


class HostedGuide:
    def __init__(self, settings):
        self.settings = settings
        self.output = settings.guide_build_dir
        self._lock = threading.Lock()
        self._current = None

    def current(self):
        """The current GuideVersion, built first when the guide or its settings changed.
        Raises GuideError or TemplateError (a DripError) when it cannot be built."""
        drip = Drip(self.settings)        # settings and a fresh template loader; no store
        key = guide_key(drip)
        with self._lock:                  # one build at a time; the others wait for it
            if self._current is None or self._current.key != key:
                self._current = self._load(drip, key)
            return self._current

    def _load(self, drip, key):
        stamp = self.output / "guide.key"
        built = all((self.output / name).is_file() for name in CONTENT_TYPES) and \
            stamp.is_file() and stamp.read_text(encoding="utf-8") == key
        if not built:
            log.info("building the guide into %s", self.output)
            build_guide(drip, self.output)
        files = {name: (self.output / name).read_bytes() for name in CONTENT_TYPES}
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        return GuideVersion(key=key, version=digest.hexdigest()[:16], files=files)


class GuideEndpoints:
    """The guide routes of ``WebApp`` (``app.py``); ``self.guide`` is its HostedGuide."""

    def _current_guide(self):
        """(GuideVersion, None), or (None, a 503 page) when the guide cannot be built."""
        try:
            return self.guide.current(), None
        except DripError as exc:
            log.error("cannot serve the guide: %s", exc)
            return None, self.page("error.html", 503, title="The guide is not available right now",
                                   message="Please try again in a little while.")

    def _to_guide_file(self, name):
        guide, error = self._current_guide()
        if error:
            return error
        return redirect(f"{self.settings.base_url}/guide/{guide.version}/{name}", 302)

    def on_guide(self, request):
        return self._to_guide_file(HTML_NAME)

    def on_guide_pdf(self, request):
        return self._to_guide_file(PDF_NAME)

    def on_guide_file(self, request, version, name):
        if name not in CONTENT_TYPES:
            raise NotFound()
        guide, error = self._current_guide()
        if error:
            return error
        if version != guide.version:      # an older version: on to the current one
            return self._to_guide_file(name)
        response = Response(guide.files[name], content_type=CONTENT_TYPES[name])
        response.headers["Cache-Control"] = IMMUTABLE
        if name == PDF_NAME:
            response.headers["Content-Disposition"] = f'inline; filename="{ATTACHMENT_NAME}"'
        return response
