"""Emails written in Markdown, and where a step's body file is.

Contract:

* ``body_file(templates_dir, template, broadcasts_dir=None) -> (name, path)``: the body of a
  step whose ``template`` is ``T``: ``templates/emails/T.html`` or ``templates/emails/T.md``
  (exactly one may exist: both, or neither, is a ``TemplateError`` naming the files), or,
  for ``@broadcasts/NAME``, ``<project>/broadcasts/NAME.md``. ``name`` is what the Jinja
  environment calls it (``emails/T.md``, ``@broadcasts/NAME.md``).
* ``to_template(markdown) -> Converted``: the Markdown turned into an HTML Jinja template,
  which then renders exactly as an HTML body does (same layout, autoescaping, plain-text
  part, checks). ``Converted.lines[i]`` is the Markdown line of the template's line i + 1, so
  an error names the coach's line, not one of the generated HTML.

How the Markdown is read (markdown-it-py, CommonMark with tables and strikethrough):

* Jinja tags (``{{ ... }}``, ``{% ... %}``, ``{# ... #}``, a ``{% raw %}`` block) are taken
  out before parsing and put back after, untouched: Markdown never reads inside them, and a
  value filled in for a person is never read as Markdown (``*Ana*`` stays text).
* A line holding nothing but statements (``{% if ... %}``, ``{% call ... %}``), comments and
  calls (``{{ m.safety_block() }}``, ``{{ image("x") }}``) stands as a block of its own, never
  inside a paragraph, so a building block on its own line gives clean HTML. A value alone on a
  line (``{{ coach.name }}``) is text like any other.
* ``<{{ url }}>`` is a link to the value, as ``<https://...>`` is to an address.
* Raw HTML is allowed (the coach writes her own files); ``drip check`` reads the result as it
  reads any HTML body.
* ``m``, the shared building blocks of ``emails/_macros.html``, is there without an import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import TemplateError

BROADCASTS = "@broadcasts/"
MACROS_IMPORT = '{% import "emails/_macros.html" as m %}'

# A Jinja tag as the default delimiters write it; quoted strings may hold '}}' or '%}'.
_TAG = re.compile(r"""
    \{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}
  | \{\#.*?\#\}
  | \{\{(?:[^}'"]|'[^'\n]*'|"[^"\n]*"|\}(?!\}))*\}\}
  | \{%(?:[^%'"]|'[^'\n]*'|"[^"\n]*"|%(?!\}))*%\}
""", re.S | re.X)
_TOKEN = re.compile("\x00(\\d+)\x00")
_VALUE = re.compile(r"\{\{(?!-?\s*[\w.]+\s*\(.*\)\s*-?\}\}\Z)", re.S)    # an output, not a call
_AUTOLINK = re.compile(r"<(\{\{[^{}\n]*\}\})>")       # <{{ url }}>: a link to the value
_OWN_IMPORT = re.compile(r"""\{%-?\s*(?:import|from)\s+["']emails/_macros\.html["']""")


@dataclass(frozen=True)
class Converted:
    html: str
    lines: tuple


def default_broadcasts_dir(templates_dir):
    return Path(templates_dir).parent / "broadcasts"


def body_file(templates_dir, template, broadcasts_dir=None):
    """``(Jinja name, path)`` of a step's body (see the module docstring)."""
    if template.startswith(BROADCASTS):
        folder = Path(broadcasts_dir) if broadcasts_dir else default_broadcasts_dir(templates_dir)
        path = folder / f"{template[len(BROADCASTS):]}.md"
        if not path.is_file():
            raise TemplateError(f"{template!r}: no file {path}")
        return f"{template}.md", path
    html = Path(templates_dir) / "emails" / f"{template}.html"
    markdown = html.with_suffix(".md")
    found = [p for p in (html, markdown) if p.is_file()]
    if len(found) == 2:
        raise TemplateError(f"{template!r}: both {html} and {markdown} exist; keep one (the .md "
                            "is written in Markdown, the .html in HTML) and delete the other")
    if not found:
        raise TemplateError(f"{template!r}: no file {html} (nor {markdown.name})")
    return f"emails/{template}{found[0].suffix}", found[0]


def is_markdown(name):
    return name.endswith(".md")


def _parser():
    from markdown_it import MarkdownIt
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


_PARSER = None


def to_template(markdown):
    """The Markdown as an HTML Jinja template, with its line map (see the module docstring)."""
    global _PARSER
    if _PARSER is None:
        _PARSER = _parser()
    tags, starts = [], []
    source = _AUTOLINK.sub(r"[\1](\1)", markdown)       # no line changes

    def protect(match):
        tags.append(match.group(0))
        starts.append(source.count("\n", 0, match.start()) + 1)
        return f"\x00{len(tags) - 1}\x00"

    protected = _TAG.sub(protect, source)
    salt = "jt"
    while salt in markdown:
        salt += "q"
    lines = []
    for line in protected.split("\n"):
        if _TOKEN.search(line) and not _TOKEN.sub("", line).strip() and \
                not any(_VALUE.match(tags[int(n)]) for n in _TOKEN.findall(line)):
            line = _TOKEN.sub(lambda m: f"<!--{salt}{m.group(1)}x-->", line)   # a block of its own
        else:
            line = _TOKEN.sub(lambda m: f"{salt}{m.group(1)}x", line)
        lines.append(line)
    rendered = _PARSER.render("\n".join(lines))
    placeholder = re.compile(rf"<!--{salt}(\d+)x-->|&lt;!--{salt}(\d+)x--&gt;|{salt}(\d+)x")
    out, line_of, generated = [], {}, 1
    position = 0
    for match in placeholder.finditer(rendered):
        text = rendered[position:match.start()]
        out.append(text)
        generated += text.count("\n")
        number = int(next(g for g in match.groups() if g is not None))
        tag = tags[number]
        for offset in range(tag.count("\n") + 1):
            line_of.setdefault(generated + offset, starts[number] + offset)
        out.append(tag)
        generated += tag.count("\n")
        position = match.end()
    out.append(rendered[position:])
    html = "".join(out)
    if not _OWN_IMPORT.search(markdown):
        html = MACROS_IMPORT + html       # on line 1, so every line keeps its number
    mapped, last = [], 1
    for number in range(1, html.count("\n") + 2):
        last = line_of.get(number, last)
        mapped.append(last)
    return Converted(html, tuple(mapped))


def remap_debug_info(template, lines):
    """Point the compiled ``template``'s line numbers (tracebacks, errors) at the Markdown."""
    info = template.debug_info
    if info:
        template._debug_info = "&".join(
            f"{lines[min(t, len(lines)) - 1]}={code}" for t, code in info)
