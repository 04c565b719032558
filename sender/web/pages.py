"""The pages' templates: the built-in ones (sender/web/templates/) under the coach's own.

A file in ``DRIP_TEMPLATES_DIR/web/`` overrides the built-in page of the same name
(``signup.html``, ``base.html``, ``snippet.html``, ...); it may extend the built-in one
as ``builtin/<name>``. Overrides are read again when they change, so an edit shows at the
next request. A broken override is logged with its file and line, and the built-in page
is shown instead, so a typo never takes the signup form down.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jinja2

from ..render import _where

log = logging.getLogger("drip.web")

OVERRIDES = "web"    # the folder under DRIP_TEMPLATES_DIR


def _environment(loader):
    return jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(default=True),
                              undefined=jinja2.StrictUndefined, auto_reload=True)


class Pages:
    def __init__(self, templates_dir):
        builtin = jinja2.PackageLoader("sender.web", "templates")
        self.folder = Path(templates_dir) / OVERRIDES
        self.env = _environment(jinja2.ChoiceLoader([
            jinja2.FileSystemLoader(str(self.folder)), builtin,
            jinja2.PrefixLoader({"builtin": builtin})]))
        self.builtin = _environment(builtin)

    def render(self, name, context):
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateError as exc:
            if not self.folder.is_dir():
                raise
            log.error("%s: %s; showing the built-in %s instead", _where(exc, name),
                      exc.message or exc, name)
            return self.builtin.get_template(name).render(context)
