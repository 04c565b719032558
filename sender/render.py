"""Rendering: campaign step + subscriber -> subject, preheader, HTML and plain text.

The body template ``templates/emails/<template>.html`` is an HTML fragment (or
``<template>.md``, Markdown the loader turns into one: ``markdown_email``). It
is placed in the shared layout ``emails/_layout.html`` and the layout's CSS is
inlined. The plain-text part is derived from the body with markdownify and
wrapped in ``emails/_layout.txt``. Templates render with ``StrictUndefined``
and HTML autoescaping; any failure is a ``TemplateError`` naming the template
and the line.
"""

from __future__ import annotations

import difflib
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

from . import front_matter, markdown_email
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
    encoded_bodies: object = None     # see OutgoingMessage.encoded_bodies


class SourceKeepingLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader whose templates remember the source they were compiled from
    (``template.drip_source``), so ``template_plan`` reads exactly what renders, never a
    newer file on disk.

    It reads Markdown too (``markdown_email``): a ``.md`` template is compiled from the HTML
    it turns into, with its line numbers pointed back at the Markdown; and a second root, the
    broadcasts folder, whose files are named ``@broadcasts/NAME.md`` (their front matter
    read as empty lines, ``front_matter``)."""

    def __init__(self, searchpath, broadcasts_dir=None, **kwargs):
        super().__init__(searchpath, **kwargs)
        self.templates_dir = Path(self.searchpath[0])
        self.broadcasts_dir = Path(broadcasts_dir) if broadcasts_dir \
            else markdown_email.default_broadcasts_dir(self.templates_dir)
        self._last = threading.local()

    def get_source(self, environment, template):
        if template.startswith(markdown_email.BROADCASTS):
            source, filename, uptodate = jinja2.FileSystemLoader(str(self.broadcasts_dir)).get_source(
                environment, template[len(markdown_email.BROADCASTS):])
            try:
                source = front_matter.split(source, filename)[1]
            except front_matter.FrontMatterError as exc:
                raise jinja2.TemplateSyntaxError(exc.reason, exc.line, template, filename) from None
        else:
            source, filename, uptodate = super().get_source(environment, template)
        raw, lines = source, None
        if markdown_email.is_markdown(template):
            converted = markdown_email.to_template(source)
            source, lines = converted.html, converted.lines
        self._last.value = (template, source, raw, lines)
        return source, filename, uptodate

    def load(self, environment, name, globals=None):
        try:
            template = super().load(environment, name, globals)
        except jinja2.TemplateSyntaxError as exc:
            last = getattr(self._last, "value", None)
            if last is not None and last[0] == name and last[3] is not None:
                _markdown_syntax_line(environment, exc, last[2], last[3])
            raise
        last = getattr(self._last, "value", None)
        if last is not None and last[0] == name:
            template.drip_source = last[1]
            if last[3] is not None:
                template.drip_line_map = last[3]
                markdown_email.remap_debug_info(template, last[3])
        return template


def _markdown_syntax_line(environment, exc, markdown, lines):
    """A syntax error in a Markdown template, at its line in the Markdown: read from the
    Markdown itself when it fails there too (its tags are the same), else mapped."""
    try:
        environment.parse(markdown)
    except jinja2.TemplateSyntaxError as raw:
        exc.lineno = raw.lineno
        return
    if exc.lineno:
        exc.lineno = lines[min(exc.lineno, len(lines)) - 1]


class HintedUndefined(jinja2.StrictUndefined):
    """``StrictUndefined`` whose message suggests the name meant: ``subscriber.firstname``
    fails with "... has no attribute 'firstname'; did you mean first_name?"."""

    __slots__ = ()

    @property
    def _undefined_message(self):
        message = super()._undefined_message
        owner, name = self._undefined_obj, self._undefined_name
        if owner is jinja2.utils.missing or not isinstance(name, str):
            return message
        if isinstance(owner, dict):
            known = [str(key) for key in owner]
        else:
            known = [n for n in dir(owner) if not n.startswith("_")]
        return message + _did_you_mean(name, known)


def _did_you_mean(name, known):
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def make_environment(templates_dir, *, frozen=False, globals=None, broadcasts_dir=None):
    """The Jinja environment for ``templates_dir``. It reads a template when first asked for
    it and, unless ``frozen``, again whenever the file changes; a frozen one keeps what it
    compiled for good (see ``load_environment``). ``globals``: what every template may use
    besides its context (``helpers.template_globals``). ``broadcasts_dir``: the folder that
    ``@broadcasts/NAME`` names (``broadcasts/`` beside the templates folder by default)."""
    templates_dir = Path(templates_dir)
    if not templates_dir.is_dir():
        raise TemplateError(f"templates folder {templates_dir} not found "
                            "(set DRIP_TEMPLATES_DIR or create it)")
    env = jinja2.Environment(
        loader=SourceKeepingLoader(str(templates_dir), broadcasts_dir=broadcasts_dir),
        undefined=HintedUndefined,
        autoescape=jinja2.select_autoescape(["html", "htm", "xml", "md"], default_for_string=True),
        keep_trailing_newline=True,
        auto_reload=not frozen,
        cache_size=-1 if frozen else 400,
    )
    env.globals.update(globals or {})
    return env


TEMPLATE_SUFFIXES = (".html", ".txt", ".css")   # the files `drip check` parses as templates


def is_template(name):
    """Whether ``name`` (as the loader lists it) is a template: an HTML, text or CSS file, or
    a Markdown email or broadcast (not, say, templates/images/README.md)."""
    return name.endswith(TEMPLATE_SUFFIXES) or markdown_email.is_markdown(name) and \
        name.startswith(("emails/", markdown_email.BROADCASTS))


def body_name(env, template):
    """The Jinja name of a step's body (``emails/T.html``, ``emails/T.md`` or
    ``@broadcasts/NAME.md``); a ``TemplateError`` when there is none, or two."""
    loader = env.loader
    if not isinstance(loader, SourceKeepingLoader):
        return f"emails/{template}.html"
    return markdown_email.body_file(loader.templates_dir, template, loader.broadcasts_dir)[0]


def load_environment(templates_dir, *, globals=None, broadcasts_dir=None):
    """A frozen environment holding every template under ``templates_dir``, compiled now,
    and ``{name: problem}`` for each one that does not compile (the file and the line).

    A long-running process (the worker, the web app) renders from this set until it loads
    the next one (``reloader.py``), so an edit on disk, half-saved or broken, never reaches
    an email on its own. A template that did not compile is read again when used, and fails
    there as it would have anyway."""
    env = make_environment(templates_dir, frozen=True, globals=globals, broadcasts_dir=broadcasts_dir)
    broken = {}
    for name in env.list_templates(filter_func=is_template):
        where = Path(templates_dir) / name
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or where
            broken[name] = f"{where}, line {exc.lineno}: template syntax error: {exc.message}"
        except UnicodeDecodeError:
            broken[name] = f"{where}: not UTF-8 text"
    return env, broken


def _where(exc, fallback):
    """'templates/emails/x.html, line 12' for a Jinja error, from the exception or traceback.
    From a traceback, the innermost line of the coach's own template wins over one of a
    shared file (``_macros.html``, ``_layout.html``): a typo passed to a macro is shown
    where it was written."""
    name = getattr(exc, "filename", None) or getattr(exc, "name", None)
    line = getattr(exc, "lineno", None)
    if not line:
        frames = [frame for frame in reversed(traceback.extract_tb(sys.exc_info()[2] or exc.__traceback__))
                  if frame.filename.endswith((".html", ".txt", ".xml", ".css", ".md"))
                  or frame.filename == "<template>"]
        own = [frame for frame in frames if not Path(frame.filename).name.startswith("_")]
        if frames:
            frame = (own or frames)[0]
            name, line = frame.filename, frame.lineno
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
        message = _message(env, context, exc)
        raise TemplateError(f"{_where(exc, name)}: {message}") from None


def _message(env, context, exc):
    """The error's text, with a suggestion when it is a name that is not defined."""
    message = exc.message or str(exc)
    undefined = re.fullmatch(r"'(\w+)' is undefined", message)
    if undefined:
        message += _did_you_mean_name(env, context, undefined.group(1))
    return message


def _did_you_mean_name(env, context, name):
    """A suggestion for an undefined name: a close one in the context or the globals, or the
    same name one level down (``first_name``: did you mean subscriber.first_name?)."""
    known = [*context, *env.globals]
    nested = [f"{key}.{inner}" for key, value in context.items() if isinstance(value, dict)
              for inner in value if inner == name]
    return f"; did you mean {nested[0]}?" if nested else _did_you_mean(name, known)


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
        message = _message(env, context, exc)
        raise TemplateError(f"{label}: {message}") from None


def _shown(env, name):
    """Where the template ``name`` is, for a message: templates/emails/x.html as before."""
    if name.startswith(markdown_email.BROADCASTS):
        return str(env.loader.broadcasts_dir / name[len(markdown_email.BROADCASTS):])
    return f"templates/{name}"


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
    name = body_name(env, template)
    body = render_template(env, name, context)
    page = render_template(env, LAYOUT_HTML, {**context, "body": Markup(body)})
    try:
        html = INLINER.inline(page)
    except ValueError as exc:
        raise TemplateError(f"{LAYOUT_HTML}: CSS could not be inlined: {exc}") from None
    try:
        body_text = html_to_text(body)
    except ParserRejectedMarkup:
        raise TemplateError(f"{_shown(env, name)}: its rendered HTML is markup the HTML "
                            "parser refuses, so no plain-text part can be made (check the "
                            "tags around each value)") from None
    text = render_template(env, LAYOUT_TEXT, {**context, "body": body_text})
    text = text.rstrip() + "\n"
    return RenderedEmail(subject=context["subject"], preheader=context["preheader"],
                         html=html, text=text)
