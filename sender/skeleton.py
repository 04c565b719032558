"""A step rendered once, as static text with slots for each person's values.

``split`` turns the rendered text (the HTML after the CSS inliner, the plain text after
markdownify and the text layout) into ``Pieces``: the text between the markers, and a slot
for each marker that writes a person's value the way the stages would have carried it:

* in HTML text, Jinja escapes the value, the inliner's parser reads it back and its
  serialiser writes ``&``, ``<`` and ``>`` as entities; in an HTML attribute, ``&`` and ``"``;
* in Markdown text, ``*`` and ``_`` get a backslash (markdownify's escaping); in a link's
  address and in the text layout, the value is as it is; a Markdown link that holds a value
  is a slot of its own, decided per person as markdownify decides it (``<url>`` when its
  text is its address, else ``[text](url)``).

Which of these a marker met is read from the marker: it carries a probe of the characters
the stages treat specially (``template_plan.PROBE``), and the form a stage left it in names
the context. ``check_html`` refuses a value anywhere else in the HTML (a comment, a style, an
attribute the inliner reads), ``TextConverter`` one in code. This holds for *plain* values
(``plain``): non-empty text with no control characters and no whitespace but single inner
spaces, which each stage carries unchanged apart from that escaping.
"""

from __future__ import annotations

import re

from markdownify import MarkdownConverter, chomp

from . import mime_writer
from . import template_plan as tp
from .render import MARKDOWN_OPTIONS, tidy_text, unwrap_layout_tables

_NONCHARACTERS = "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
_NOT_PLAIN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ue000-\ue003"
                        + _NONCHARACTERS + r"]|[^\S ]|  |^ | $")


def plain(value):
    """Whether ``value`` is text every stage carries unchanged but for its escaping: a
    non-empty str (not Markup) with no control characters, no private markers and no
    whitespace but single spaces between words."""
    if type(value) is not str or value == "":
        return False
    if value.isascii() and value.isprintable():         # the usual case, without the regex
        return value[0] != " " and value[-1] != " " and "  " not in value
    return _NOT_PLAIN.search(value) is None


# How the probe reads after each stage, and what the stage does to a plain value there.
_HTML_TEXT = tp.PROBE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
_HTML_ATTR = tp.PROBE.replace("&", "&amp;").replace('"', "&quot;")
_MD_TEXT = tp.PROBE.replace("*", r"\*").replace("_", r"\_")
_RAW = tp.PROBE


def _html_text(value):
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _html_attr(value):
    return value.replace("&", "&amp;").replace('"', "&quot;")


def _md_text(value):
    return value.replace("*", r"\*").replace("_", r"\_")


def _raw(value):
    return value


_MARK = re.compile(f"{tp.MARK_OPEN}([a-z]\\d+)([^{tp.MARK_CLOSE}]*){tp.MARK_CLOSE}")
_LINK = re.compile(f"{tp.LINK_OPEN}(\\d+){tp.LINK_CLOSE}")
_STRAY = re.compile("[\ue000-\ue003]")
# An unfinished character reference right before a value would take in its first letters;
# a '<' (or '</', '<!', '<?') right before one makes a tag of it when it starts with a letter.
_OPEN_REFERENCE = re.compile(f"(?:&[#0-9A-Za-z]*|<[/!?]?){tp.MARK_OPEN}")



class _Hole:
    __slots__ = ("number", "write")

    def __init__(self, number, write):
        self.number, self.write = number, write

    def __call__(self, values):
        return self.write(values[self.number])


class _Link:
    """A Markdown link holding a value: markdownify's ``convert_a``, decided per person."""

    __slots__ = ("text", "href", "title")

    def __init__(self, text, href, title):
        self.text, self.href, self.title = text, href, title

    def __call__(self, values):
        text = self.text.fill(values)
        href = self.href.fill(values) if self.href is not None else None
        title = self.title.fill(values) if self.title is not None else None
        if text.replace(r"\_", "_") == href and not title:
            return f"<{href}>"
        quoted = title.replace('"', '\\"') if title else ""
        title_part = f' "{quoted}"' if title else ""
        return f"[{text}]({href}{title_part})" if href else text


class Pieces:
    """Static text with slots; ``fill(values)`` writes each person's values in; once
    ``prepare``d, ``encode(values)`` gives the quoted-printable body of that (its fixed lines
    encoded once)."""

    __slots__ = ("static", "slots", "holes", "prepared")

    def __init__(self, items):
        merged = []
        for item in items:
            if isinstance(item, str) and merged and isinstance(merged[-1], str):
                merged[-1] += item
            elif item != "":
                merged.append(item)
        self.static = [item if isinstance(item, str) else "" for item in merged]
        self.slots = [(n, item) for n, item in enumerate(merged) if not isinstance(item, str)]
        self.holes = set()
        for _, slot in self.slots:
            self.holes |= _holes_of(slot)
        self.prepared = None

    def prepare(self):
        items = self.static.copy()
        for index, slot in self.slots:
            items[index] = slot
        self.prepared = mime_writer.Prepared(items)
        return self

    def encode(self, values):
        return self.prepared.encode(values)

    def fill(self, values):
        out = self.static.copy()
        for index, slot in self.slots:
            out[index] = slot(values)
        return "".join(out)


def _holes_of(slot):
    if isinstance(slot, _Hole):
        return {slot.number}
    return set().union(*(p.holes for p in (slot.text, slot.href, slot.title) if p is not None))


def split(text, forms, links=()):
    """``text`` as Pieces: each marker becomes a slot writing its value the way its probe
    form says; NotFillable for a form not in ``forms`` or a stray marker character."""
    items, position = [], 0
    pattern = _MARK if not links else re.compile(f"{_MARK.pattern}|{_LINK.pattern}")
    for found in pattern.finditer(text):
        items.append(text[position:found.start()])
        position = found.end()
        if found.group(1) is None:                  # a link
            items.append(links[int(found.group(3))])
            continue
        write = forms.get(found.group(2))
        if write is None:
            raise tp.NotFillable("a value lands where its text would not be carried as it is")
        items.append(_Hole(found.group(1), write))
    items.append(text[position:])
    if any(isinstance(i, str) and _STRAY.search(i) for i in items):
        raise tp.NotFillable("the template's text holds a marker character (U+E000-U+E003)")
    return Pieces(items)


# --- the HTML part: where each value landed ------------------------------------------------------
_TOKEN = re.compile(r"<!--.*?-->|<![^>]*>|<(/?)([A-Za-z][^\s/>]*)((?:\s+[^\s\"'>/=]+(?:=\"[^\"]*\")?)*)"
                    r"\s*/?>|[^<]+|<", re.S)
_ATTRIBUTE = re.compile(r"\s+([^\s\"'>/=]+)(?:=\"([^\"]*)\")?")
_RAW_TEXT = ("style", "script")
# Attributes a value may fill: ones the inliner does not read (no selector may name them:
# see check_html) and markdownify reads only on a link.
_VALUE_ATTRIBUTES = {"a": {"href", "title"}, "img": {"alt", "src", "title"}}


def check_html(page, html):
    """NotFillable unless every value in the inlined ``html`` sits in text or in an attribute
    in _VALUE_ATTRIBUTES, and as many as the template wrote (``page``)."""
    if page.count(tp.MARK_OPEN) != html.count(tp.MARK_OPEN):
        raise tp.NotFillable("the CSS inliner moved or dropped a value")
    in_attributes, raw_until = False, -1
    for token in _TOKEN.finditer(html):
        text, tag = token.group(0), (token.group(2) or "").lower()
        inside_raw = token.start() < raw_until
        if tp.MARK_OPEN in text:
            if inside_raw or text.startswith("<!") or text == "<":
                raise tp.NotFillable("a value in a comment, a style or a script")
            if tag:
                found = 0
                for attribute in _ATTRIBUTE.finditer(token.group(3)):
                    if tp.MARK_OPEN in attribute.group(0):
                        name = attribute.group(1).lower()
                        if name not in _VALUE_ATTRIBUTES.get(tag, ()):
                            raise tp.NotFillable(f"a value in the {name} attribute of <{tag}>")
                        found += (attribute.group(2) or "").count(tp.MARK_OPEN)
                if found != text.count(tp.MARK_OPEN):
                    raise tp.NotFillable(f"a value in the markup of <{tag}>")
                in_attributes = True
        if tag in _RAW_TEXT and not token.group(1) and not inside_raw:
            end = html.lower().find(f"</{tag}", token.end())
            raw_until = len(html) if end < 0 else end
    if in_attributes:
        styles = " ".join(re.findall(r"<style\b[^>]*>(.*?)</style>", page, re.S | re.I))
        if "[" in styles or re.search(r"<link\b", page, re.I):
            raise tp.NotFillable("a value in an attribute, and the CSS selects on attributes")


# --- the text part ------------------------------------------------------------------------------
class TextConverter(MarkdownConverter):
    """markdownify as ``html_to_text`` runs it, except that a link holding a value becomes a
    slot decided per person (its text equal to its address or not), and a value in code or
    preformatted text, which markdownify does not escape, is refused."""

    def __init__(self, **options):
        super().__init__(**options)
        self.links = []

    def process_text(self, el, parent_tags=None):
        if tp.MARK_OPEN in el and parent_tags and ({"_noformat", "pre"} & set(parent_tags)):
            raise tp.NotFillable("a value in code or preformatted text")
        return super().process_text(el, parent_tags=parent_tags)

    def convert_a(self, el, text, parent_tags):
        href, title = el.get("href"), el.get("title")
        if not any(tp.MARK_OPEN in (part or "") for part in (text, href, title)):
            return super().convert_a(el, text, parent_tags)
        if "_noformat" in parent_tags or tp.LINK_OPEN in text:
            raise tp.NotFillable("a value in a link inside code or inside another link")
        prefix, suffix, text = chomp(text)
        if not text:
            return ""
        if prefix or suffix:
            raise tp.NotFillable("a link holding a value starts or ends with a space")
        if any("\n" in (part or "") for part in (text, href, title)):
            raise tp.NotFillable("a link holding a value spans lines (the text is tidied around it)")
        self.links.append((text, href, title))
        return f"{tp.LINK_OPEN}{len(self.links) - 1}{tp.LINK_CLOSE}"


def html(page, inlined):
    """The Pieces of the HTML part: ``inlined`` is ``page`` (the layout rendered once, with
    markers) after the CSS inliner."""
    if _OPEN_REFERENCE.search(page):
        raise tp.NotFillable("a value follows an unfinished character reference (&...) or "
                             "an opening '<'")
    check_html(page, inlined)
    return split(inlined, {_HTML_TEXT: _html_text, _HTML_ATTR: _html_attr}).prepare()


def markdown(body):
    """``html_to_text(body)`` for the body rendered once, and the links it holds that are
    decided per person (``text`` puts them in)."""
    converter = TextConverter(**MARKDOWN_OPTIONS)
    text = tidy_text(converter.convert(unwrap_layout_tables(body)))
    raw = {_RAW: _raw}
    links = [_Link(split(words, {_MD_TEXT: _md_text}),
                   None if href is None else split(href, raw),
                   None if title is None else split(title, raw))
             for words, href, title in converter.links]
    return text, links


def text(rendered, links):
    """The Pieces of the plain-text part: the text layout ``rendered`` once, around the body's
    ``markdown``."""
    return split(rendered, {_MD_TEXT: _md_text, _RAW: _raw}, links).prepare()


