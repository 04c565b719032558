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
import traceback
from dataclasses import dataclass
from pathlib import Path

import css_inline
import jinja2
from markdownify import markdownify
from markupsafe import Markup

from .errors import TemplateError

LAYOUT_HTML = "emails/_layout.html"
LAYOUT_TEXT = "emails/_layout.txt"
# Inline every rule, but keep @media blocks (phone styles) in a <style> tag.
_INLINER = css_inline.CSSInliner(keep_at_rules=True)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


def make_environment(templates_dir):
    templates_dir = Path(templates_dir)
    if not templates_dir.is_dir():
        raise TemplateError(f"templates folder {templates_dir} not found "
                            "(set DRIP_TEMPLATES_DIR or create it)")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=True),
        keep_trailing_newline=True,
    )


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


def render_string(env, source, context, *, label):
    """Render a template string (a subject line, say); errors name ``label``."""
    try:
        return env.from_string(source).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{label}: {exc.message or exc}") from None


def _search_path(env):
    return ", ".join(getattr(env.loader, "searchpath", []) or ["?"])


def html_to_text(fragment):
    """A readable plain-text version of an HTML fragment (Markdown-flavoured)."""
    text = markdownify(str(fragment), heading_style="ATX", bullets="-", strip=["img"])
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_email(env, template, context):
    """Render a step's template with ``context`` (which holds ``subject`` and
    ``preheader`` already rendered) into a RenderedEmail."""
    body_name = f"emails/{template}.html"
    body = render_template(env, body_name, context)
    page = render_template(env, LAYOUT_HTML, {**context, "body": Markup(body)})
    try:
        html = _INLINER.inline(page)
    except ValueError as exc:
        raise TemplateError(f"{LAYOUT_HTML}: CSS could not be inlined: {exc}") from None
    text = render_template(env, LAYOUT_TEXT, {**context, "body": html_to_text(body)})
    text = text.rstrip() + "\n"
    return RenderedEmail(subject=context["subject"], preheader=context["preheader"],
                         html=html, text=text)
