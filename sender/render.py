"""Rendering: campaign step + subscriber -> subject, preheader, HTML and plain text.

The body template ``templates/emails/<template>.html`` is an HTML fragment. It
is placed in the shared layout ``emails/_layout.html`` and the layout's CSS is
inlined. The plain-text part is derived from the body with markdownify and
wrapped in ``emails/_layout.txt``. Templates render with ``StrictUndefined``
and HTML autoescaping; any failure is a ``TemplateError`` naming the template
and the line.
"""

from __future__ import annotations

import re
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import css_inline
import jinja2
from bs4 import ParserRejectedMarkup
from markdownify import markdownify
from markupsafe import Markup

from .errors import TemplateError

LAYOUT_HTML = "emails/_layout.html"
LAYOUT_TEXT = "emails/_layout.txt"
# Inline every rule, but keep @media blocks (phone styles) in a <style> tag.
INLINER = css_inline.CSSInliner(keep_at_rules=True)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str
    encoded_bodies: tuple | None = None     # see OutgoingMessage.encoded_bodies


class SourceKeepingLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader whose templates remember the source they were compiled from
    (``template.drip_source``), so ``template_plan`` reads exactly what renders, never a
    newer file on disk."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last = threading.local()

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        self._last.value = (template, source)
        return source, filename, uptodate

    def load(self, environment, name, globals=None):
        template = super().load(environment, name, globals)
        last = getattr(self._last, "value", None)
        if last is not None and last[0] == name:
            template.drip_source = last[1]
        return template


def make_environment(templates_dir, *, frozen=False, globals=None):
    """The Jinja environment for ``templates_dir``. It reads a template when first asked for
    it and, unless ``frozen``, again whenever the file changes; a frozen one keeps what it
    compiled for good (see ``load_environment``). ``globals``: what every template may use
    besides its context (``helpers.template_globals``)."""
    templates_dir = Path(templates_dir)
    if not templates_dir.is_dir():
        raise TemplateError(f"templates folder {templates_dir} not found "
                            "(set DRIP_TEMPLATES_DIR or create it)")
    env = jinja2.Environment(
        loader=SourceKeepingLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=True),
        keep_trailing_newline=True,
        auto_reload=not frozen,
        cache_size=-1 if frozen else 400,
    )
    env.globals.update(globals or {})
    return env


TEMPLATE_SUFFIXES = (".html", ".txt", ".css")   # the files `drip check` parses as templates


def load_environment(templates_dir, *, globals=None):
    """A frozen environment holding every template under ``templates_dir``, compiled now,
    and ``{name: problem}`` for each one that does not compile (the file and the line).

    A long-running process (the worker, the web app) renders from this set until it loads
    the next one (``reloader.py``), so an edit on disk, half-saved or broken, never reaches
    an email on its own. A template that did not compile is read again when used, and fails
    there as it would have anyway."""
    env = make_environment(templates_dir, frozen=True, globals=globals)
    broken = {}
    for name in env.list_templates(filter_func=lambda n: n.endswith(TEMPLATE_SUFFIXES)):
        where = Path(templates_dir) / name
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            broken[name] = f"{where}, line {exc.lineno}: template syntax error: {exc.message}"
        except UnicodeDecodeError:
            broken[name] = f"{where}: not UTF-8 text"
    return env, broken


def _where(exc, fallback):
    """'templates/emails/x.html, line 12' for a Jinja error, from the exception or traceback."""
    name = getattr(exc, "filename", None) or getattr(exc, "name", None)
    line = getattr(exc, "lineno", None)
    if not line:
        for frame in reversed(traceback.extract_tb(sys.exc_info()[2] or exc.__traceback__)):
            if frame.filename.endswith((".html", ".txt", ".xml", ".css")) or \
                    frame.filename == "<template>":
                name, line = frame.filename, frame.lineno
                break
    name = name or fallback
    return f"{name}, line {line}" if line else str(name)


def render_template(env, name, context):
    """Render one template file; a TemplateError names the file and the line."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template not found: {exc.name} (looked in {_search_path(env)})") \
            from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{_where(exc, name)}: {exc.message or exc}") from None


STRINGS_KEPT = 512      # compiled subject and preheader templates kept per environment


def compiled_string(env, source):
    """``source`` (a subject line, say) compiled once per environment: a text template
    (no autoescaping). A new environment (a hot reload) compiles again."""
    text_env = getattr(env, "_drip_text", None)
    if text_env is None:
        text_env = env._drip_text = env.overlay(autoescape=False)
        text_env._drip_strings = {}
    kept = text_env._drip_strings
    template = kept.get(source)
    if template is None:
        if len(kept) >= STRINGS_KEPT:
            kept.clear()
        template = kept[source] = text_env.from_string(source)
    return template


def render_string(env, source, context, *, label):
    """Render a template string (a subject line, say); errors name ``label``. The result is
    text, not HTML: it is not escaped here (a name with '&' stays '&' in the Subject header),
    and is escaped where a template puts it into HTML."""
    try:
        return compiled_string(env, source).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{label}: {exc.message or exc}") from None


def _search_path(env):
    return ", ".join(getattr(env.loader, "searchpath", []) or ["?"])


_LAYOUT_TABLE = re.compile(r"<table\b[^>]*\brole=\"presentation\"[^>]*>.*?</table>", re.S | re.I)
_TABLE_TAGS = re.compile(r"</?(?:table|thead|tbody|tr|td|th)\b[^>]*>", re.I)


MARKDOWN_OPTIONS = {"heading_style": "ATX", "bullets": "-", "strip": ["img"]}


def unwrap_layout_tables(fragment):
    """A layout table (``role="presentation"``) as its cells' contents, one per line."""
    return _LAYOUT_TABLE.sub(lambda m: _TABLE_TAGS.sub("\n", m.group(0)), str(fragment))


def tidy_text(text):
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def html_to_text(fragment):
    """A readable plain-text version of an HTML fragment (Markdown-flavoured). A layout table
    (``role="presentation"``: a photo beside a paragraph, say) reads as its contents."""
    return tidy_text(markdownify(unwrap_layout_tables(fragment), **MARKDOWN_OPTIONS))


def render_email(env, template, context):
    """Render a step's template with ``context`` (which holds ``subject`` and
    ``preheader`` already rendered) into a RenderedEmail."""
    body_name = f"emails/{template}.html"
    body = render_template(env, body_name, context)
    page = render_template(env, LAYOUT_HTML, {**context, "body": Markup(body)})
    try:
        html = INLINER.inline(page)
    except ValueError as exc:
        raise TemplateError(f"{LAYOUT_HTML}: CSS could not be inlined: {exc}") from None
    try:
        body_text = html_to_text(body)
    except ParserRejectedMarkup:
        raise TemplateError(f"templates/{body_name}: its rendered HTML is markup the HTML "
                            "parser refuses, so no plain-text part can be made (check the "
                            "tags around each value)") from None
    text = render_template(env, LAYOUT_TEXT, {**context, "body": body_text})
    text = text.rstrip() + "\n"
    return RenderedEmail(subject=context["subject"], preheader=context["preheader"],
                         html=html, text=text)
