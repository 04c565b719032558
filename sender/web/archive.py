"""The public archive on `drip serve`: the broadcasts sent, for anyone to read again.

    GET /archive            the list, newest first: subject, date, preheader
    GET /archive/<name>     one broadcast as it was sent, rendered for nobody in particular
    GET /archive/feed.xml   the same as an Atom 1.0 feed (the newest ones)

Which broadcasts and how each is rendered is ``sender.archive``'s business; here they are
put into pages. None of it is anyone's own, so the answers may be cached by anyone for a few
minutes (``public``), carry an ETag (a repeated request with ``If-None-Match`` gets 304),
and answer HEAD. The pages allow no script and nothing from elsewhere but pictures over
https (the coach's own copy is shown, raw HTML included).
"""

from __future__ import annotations

import logging

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from ..archive import page_url, shown_day
from ..errors import TemplateError

log = logging.getLogger("drip.web")

CACHE = "public, max-age=300"
POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:; "
          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
LIST_TITLE = "Newsletter archive"


class ArchiveEndpoints:
    """The archive routes of ``WebApp`` (``app.py``); ``self.archive`` is its Archive."""

    def _archive_urls(self):
        base = self.settings.base_url
        return {"archive_url": f"{base}/archive", "feed_url": f"{base}/archive/feed.xml",
                "signup_url": f"{base}/"}

    def _feed_title(self):
        return f"{self.settings.coach.name}: {LIST_TITLE.lower()}"

    def _public(self, request, response):
        response.headers["Cache-Control"] = CACHE
        response.headers["Content-Security-Policy"] = POLICY
        response.add_etag()
        return response.make_conditional(request)

    def on_archive(self, request):
        with self.drip() as drip:
            entries = self.archive.entries(drip.store, drip.templates)
        shown = [{"url": page_url(self.settings.base_url, e.name), "subject": e.subject,
                  "preheader": e.preheader, "date": shown_day(e.day),
                  "datetime": e.day.isoformat()} for e in entries]
        response = self.page("archive.html", title=LIST_TITLE, entries=shown,
                             feed_title=self._feed_title(), **self._archive_urls())
        return self._public(request, response)

    def on_archive_entry(self, request, name):
        with self.drip() as drip:
            entry = self.archive.entry(drip.store, drip.templates, name)
            if entry is None:
                raise NotFound()
            try:
                body = self.archive.body(drip.templates, entry)
            except TemplateError as exc:
                log.error("cannot show %s in the archive: %s", name, exc)
                return self.page("error.html", 503, title="This newsletter is not available",
                                 message="Please try again later.")
        response = self.page("archive_entry.html", title=entry.subject, body=body,
                             preheader=entry.preheader, date=shown_day(entry.day),
                             datetime=entry.day.isoformat(), feed_title=self._feed_title(),
                             **self._archive_urls())
        return self._public(request, response)

    def on_archive_feed(self, request):
        with self.drip() as drip:
            document = self.archive.feed(drip.store, drip.templates,
                                         base_url=self.settings.base_url,
                                         title=self._feed_title())
        response = Response(document, content_type="application/atom+xml; charset=utf-8")
        return self._public(request, response)
