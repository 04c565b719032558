"""The public archive: the broadcasts that were sent, as anyone may read them again.

Which ones. A broadcast is in the archive when it is ``sent`` (every email of it settled:
never one scheduled, still sending or cancelled) and nothing says to keep it out: not the
``archive`` column, nor the front matter of the copy stored when its emails were written,
nor its file as it is now (so ``archive = false`` set after it went takes it down at once).

What it shows. The copy stored when its emails were written (``Store.sent_broadcasts()``:
what was sent, never a later edit), its Markdown turned into HTML as for the email
(``markdown_email``) and rendered by the same templates, with the same building blocks, for
nobody in particular: no name, no address, no fields, no tags, no unsubscribe link (see
``neutral_context``). Only the ``broadcasts`` table is read; nothing about anyone is.

What it costs. Each broadcast is rendered once per stored copy and templates version (a
change to ``_macros.html`` renders it again), and kept (``KEPT`` at most); a request reads
the table, and looks at each listed file's size and time.

The web side (``sender/web/archive.py``) shows the list, the pages and the Atom feed
(``feed``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

import jinja2
from markupsafe import Markup

from . import broadcasts, front_matter, markdown_email
from .errors import TemplateError
from .render import render_string

log = logging.getLogger("drip.archive")

KEPT = 256                 # rendered broadcasts kept in memory
FEED_ENTRIES = 20          # the newest ones in the feed
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,199}")
ATOM = "http://www.w3.org/2005/Atom"
XML = "http://www.w3.org/XML/1998/namespace"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)       # an empty feed's `updated`, the same every time
# Characters XML 1.0 cannot hold at all (a feed with one is not well-formed).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def neutral_context(settings, name, title):
    """What a broadcast renders with in the archive: the coach's values and nobody's own.
    ``subscriber`` is there with every value empty, so ``subscriber.first_name or "there"``
    shows "there" and ``subscriber.fields.get("stage")`` is none; ``unsubscribe_url`` is
    empty."""
    return {
        "subscriber": {"email": "", "name": "", "first_name": "", "fields": {}, "tags": []},
        "unsubscribe_url": "",
        "coach": asdict(settings.coach),
        "guide_url": settings.guide_url,
        "postal_address": settings.postal_address,
        "campaign": {"id": broadcasts.campaign_id(name), "name": title},
        "step": {"id": broadcasts.STEP, "number": 1, "total": 1},
        "is_test": False,
    }


@dataclass(frozen=True)
class Entry:
    """One broadcast of the archive, as the list, its page and the feed show it."""

    name: str
    subject: str              # rendered for nobody (the page's title)
    preheader: str
    title: str                # its front matter title, else its name in words
    sent_at: datetime         # its first due time (UTC)
    updated: datetime         # when its last email was settled, if later
    day: date                 # the day it went: its local day, else DRIP_TIMEZONE's
    digest: str               # of the stored copy
    archived: bool = field(default=True, repr=False)   # the stored copy's own `archive`
    markdown: str = field(default="", repr=False, compare=False)   # its body, as sent


@dataclass
class _Copy:
    """What is kept of one stored copy: its entry and, once asked for, its body."""

    templates: object
    entry: Entry
    body: object = None       # Markup, or the TemplateError it raises


def _words(name):
    words = re.sub(r"^\d{4}-\d{2}-\d{2}-", "", name).replace("-", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


class Archive:
    """The archive of one app (its settings); safe to share between threads."""

    def __init__(self, settings, *, kept=KEPT):
        self.settings = settings
        self.kept = kept
        self.renders = 0                  # bodies rendered (the cache's misses)
        self._copies = OrderedDict()      # (name, digest) -> _Copy
        self._files = {}                  # name -> ((mtime_ns, size), taken down)
        self._lock = threading.Lock()

    # --- which ---------------------------------------------------------------------------
    def entries(self, store, templates):
        """The archive, newest first."""
        found = [self._entry(record, templates) for record in store.sent_broadcasts()]
        found = [entry for entry in found if entry is not None]
        return sorted(found, key=lambda e: (e.sent_at, e.name), reverse=True)

    def entry(self, store, templates, name):
        """The broadcast ``name`` if it is in the archive, else None (an odd name is never
        looked up)."""
        if not isinstance(name, str) or not NAME.fullmatch(name):
            return None
        record = store.get_broadcast(name)
        if record is None or record["state"] != "sent":
            return None
        return self._entry(record, templates)

    def _entry(self, record, templates):
        if not record["archive"] or not record.get("source") or record["state"] != "sent":
            return None
        name = record["name"]
        if not NAME.fullmatch(name) or self._taken_down(name):
            return None
        copy = self._copy(record, templates)
        return copy.entry if copy is not None and copy.entry.archived else None

    def _taken_down(self, name):
        """Whether the broadcast's file, as it is now, says ``archive = false`` (a file that
        is gone, or does not read, leaves the stored copy's word standing)."""
        path = broadcasts.folder(self.settings) / f"{name}.md"
        try:
            info = path.stat()
        except OSError:
            return False
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            kept = self._files.get(name)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        try:
            data, _ = front_matter.split(path.read_bytes(), path)
            down = data.get("archive", True) is False
        except (OSError, TemplateError):
            down = False
        with self._lock:
            self._files[name] = (stamp, down)
        return down

    # --- what ----------------------------------------------------------------------------
    def _copy(self, record, templates):
        source = record["source"]
        key = (record["name"], hashlib.sha256(source.encode("utf-8")).hexdigest())
        with self._lock:
            copy = self._copies.get(key)
            if copy is not None and copy.templates is templates:
                self._copies.move_to_end(key)
                return copy
        copy = self._read(record, key[1], source, templates)
        if copy is not None:
            with self._lock:
                self._keep(key, copy)
        return copy

    def _keep(self, key, copy):
        self._copies[key] = copy
        self._copies.move_to_end(key)
        while len(self._copies) > self.kept:
            self._copies.popitem(last=False)

    def _read(self, record, digest, source, templates):
        name = record["name"]
        try:
            data, markdown = front_matter.split(source, f"{name}.md (as sent)")
        except TemplateError as exc:      # it read when it went: a damaged row
            log.warning("broadcast %s is left out of the archive: %s", name, exc)
            return None
        title = data.get("title") if isinstance(data.get("title"), str) else _words(name)
        context = neutral_context(self.settings, name, title)
        subject = self._line(templates, data.get("subject"), context, name, "subject") or title
        context["subject"] = subject
        preheader = self._line(templates, data.get("preheader"), context, name, "preheader")
        context["preheader"] = preheader
        sent_at = record["first_at"]
        updated = max(sent_at, record.get("finished_at") or sent_at)
        zone = self.settings.timezone or UTC
        day = date.fromisoformat(record["local_day"]) if record.get("local_day") \
            else sent_at.astimezone(zone).date()
        entry = Entry(name=name, subject=subject, preheader=preheader, title=title,
                      sent_at=sent_at, updated=updated, day=day, digest=digest,
                      archived=data.get("archive", True) is not False, markdown=markdown)
        return _Copy(templates=templates, entry=entry)

    @staticmethod
    def _line(templates, text, context, name, what):
        if not isinstance(text, str) or not text.strip():
            return ""
        try:
            return render_string(templates, text, context, label=f"broadcast {name} {what}").strip()
        except TemplateError:
            return ""

    def body(self, templates, entry):
        """The broadcast's body as sent, rendered for nobody (Markup); a ``TemplateError``
        naming the broadcast when it cannot be (say ``subscriber.fields["stage"]``, which
        only someone with that field has)."""
        key = (entry.name, entry.digest)
        with self._lock:            # one render at a time; the others wait and reuse it
            copy = self._copies.get(key)
            if copy is None or copy.templates is not templates:
                copy = _Copy(templates=templates, entry=entry)
                self._keep(key, copy)
            if copy.body is None:
                copy.body = self._render(templates, entry)
                self.renders += 1
            body = copy.body
        if isinstance(body, TemplateError):
            raise body
        return body

    def _render(self, templates, entry):
        context = {**neutral_context(self.settings, entry.name, entry.title),
                   "subject": entry.subject, "preheader": entry.preheader}
        try:
            template = templates.from_string(markdown_email.to_template(entry.markdown).html)
            return Markup(template.render(context))
        except jinja2.TemplateError as exc:
            return TemplateError(f"broadcast {entry.name} (as sent), for the archive: "
                                 f"{exc.message or exc}")

    # --- the feed ------------------------------------------------------------------------
    def feed(self, store, templates, *, base_url, title, limit=FEED_ENTRIES):
        """The newest ``limit`` broadcasts as an Atom 1.0 document (bytes). Ids and links are
        the pages' URLs under ``base_url``; each entry holds its body as escaped HTML (none
        when it cannot be rendered) and its preheader as the summary."""
        entries = self.entries(store, templates)[:limit]

        def add(parent, tag, text=None, **attributes):
            element = ET.SubElement(parent, tag, attributes)
            if text is not None:
                element.text = _NOT_XML.sub("", text)
            return element

        archive_url = f"{base_url}/archive"
        root = ET.Element("feed", xmlns=ATOM)      # every element in the Atom namespace
        add(root, "id", archive_url)
        add(root, "title", title)
        add(root, "updated", _stamp(max((e.updated for e in entries), default=EPOCH)))
        add(root, "link", rel="self", type="application/atom+xml", href=f"{archive_url}/feed.xml")
        add(root, "link", rel="alternate", type="text/html", href=archive_url)
        add(add(root, "author"), "name", self.settings.coach.name)
        for entry in entries:
            url = page_url(base_url, entry.name)
            item = add(root, "entry")
            add(item, "id", url)
            add(item, "title", entry.subject, type="text")
            add(item, "published", _stamp(entry.sent_at))
            add(item, "updated", _stamp(entry.updated))
            add(item, "link", rel="alternate", type="text/html", href=url)
            if entry.preheader:
                add(item, "summary", entry.preheader, type="text")
            try:     # its links resolve against its page, not the feed (an empty href too)
                add(item, "content", str(self.body(templates, entry)), type="html",
                    **{f"{{{XML}}}base": url})
            except TemplateError:
                pass
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def page_url(base_url, name):
    return f"{base_url}/archive/{name}"


def _stamp(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown_day(day):
    """'March 9, 2026'."""
    return f"{day:%B} {day.day}, {day.year}"
