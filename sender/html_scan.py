"""What a rendered email's HTML holds, for `drip check`: its links, pictures, ids, visible
text, safety blocks and text too long to wrap (``Page``), and what makes a link broken or
a placeholder (``link_problem``)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

PLACEHOLDER_HOSTS = ("example.com", "example.org", "example.net")
PLACEHOLDER_TLDS = (".example", ".invalid", ".test", ".localhost")
_PLACEHOLDER_WORDS = re.compile(r"(?i)\b(todo|fixme|tbd|xxx|lorem|placeholder)\b")
LONG_WORD = 40                 # characters without a break: wider than a 375 px phone at 17 px
_WRAPS = re.compile(r"(?i)(word-break\s*:\s*break-all|overflow-wrap\s*:\s*(anywhere|break-word)|"
                    r"word-wrap\s*:\s*break-word)")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}


def link_problem(url, allowed_prefixes=()):
    """Why ``url`` is a broken or placeholder link, or None when it is fine."""
    raw = url
    url = url.strip()
    if not url:
        return "empty link"
    if "{{" in url or "{%" in url or "}}" in url:
        return "unrendered template code in the link"
    if url == "#":
        return "placeholder link '#'"
    if url.startswith("#"):
        return None   # a local anchor: judged by the caniemail data
    if re.match(r"(?i)(javascript|vbscript|data):", url):
        return "script or data link; email clients block these"
    if _PLACEHOLDER_WORDS.search(url):
        return "placeholder link"
    if raw != url or re.search(r"\s", url):
        return "the link contains spaces"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("mailto", "tel", "sms"):
        return None if parts.path or parts.query else f"empty {scheme}: link"
    if scheme not in ("http", "https"):
        return f"no https:// scheme (write https://{url.lstrip('/')})" if not scheme \
            else f"unsupported link scheme {scheme}:"
    host = (parts.hostname or "").lower()
    if not host or ("." not in host and host != "localhost"):
        return "malformed link: no host name"
    if scheme == "http" and host not in ("localhost", "127.0.0.1"):
        return "insecure http:// link; use https://"
    placeholder = host in PLACEHOLDER_HOSTS or host.endswith(tuple("." + h for h in PLACEHOLDER_HOSTS)) \
        or host.endswith(PLACEHOLDER_TLDS)
    if placeholder and not url.startswith(tuple(p for p in allowed_prefixes if p)):
        return (f"placeholder domain {host} written into the template; link through a setting "
                "(coach.website_url, guide_url, ...) instead")
    return None


class Page(HTMLParser):
    """Links, images, ids, visible text and safety blocks of an HTML document or fragment."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links, self.images, self.ids = [], [], set()
        self.safety_blocks = []
        self._text, self._skip, self._divs, self._in_h3 = [], 0, [], False
        self.long_words, self._breaking = [], []   # unbreakable text; elements that let it wrap

    @classmethod
    def parse(cls, html):
        page = cls()
        page.feed(html)
        page.close()
        return page

    @property
    def text(self):
        return " ".join(self._text)

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag not in _VOID:
            self._breaking.append((tag, bool(_WRAPS.search(attrs.get("style", "")))))
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for attr in ("href", "src"):
            if attr in attrs and tag in ("a", "img", "area", "link", "source"):
                if not (tag == "img" and attrs[attr].startswith("cid:")):
                    self.links.append((tag, attr, attrs[attr]))
        if tag == "img":
            self.images.append((tag, attrs))
        if tag in ("style", "script", "head", "title"):
            self._skip += 1
        if tag in ("div", "span"):
            classes = attrs.get("class", "").split()
            kind = ("preheader" if tag == "span" and "preheader" in classes
                    else "safety" if tag == "div" and "safety" in classes else "")
            if kind == "preheader":
                self._skip += 1
            elif kind == "safety":
                self.safety_blocks.append({"heading": "", "text": ""})
            self._divs.append((tag, kind))
        if tag == "h3":
            self._in_h3 = True

    def handle_endtag(self, tag):
        opened = [i for i, (t, _w) in enumerate(self._breaking) if t == tag]
        if opened:
            del self._breaking[opened[-1]:]
        if tag in ("style", "script", "head", "title") and self._skip:
            self._skip -= 1
        if tag == "h3":
            self._in_h3 = False
        if tag in ("div", "span"):
            opened = [i for i, (t, _k) in enumerate(self._divs) if t == tag]
            if opened:
                for _t, kind in self._divs[opened[-1]:]:
                    if kind == "preheader":
                        self._skip -= 1
                del self._divs[opened[-1]:]

    def handle_data(self, data):
        if self._skip:
            return
        self._text.append(data)
        if not any(wraps for _t, wraps in self._breaking):
            self.long_words += [w for w in data.split() if len(w) > LONG_WORD]
        if self.safety_blocks and any(kind == "safety" for _t, kind in self._divs):
            block = self.safety_blocks[-1]
            block["text"] += data
            if self._in_h3:
                block["heading"] += data
