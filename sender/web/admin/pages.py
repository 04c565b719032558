"""The dashboard's templates (sender/web/admin/templates/): always autoescaped, so every
name, field, tag and note a subscriber gave is shown as text; StrictUndefined, so a missing
value is an error and never a blank. They cannot be overridden from templates/web/: the
coach's overrides style her public pages, not the pages that guard her list.
"""

from __future__ import annotations

from datetime import UTC

import jinja2

from .charts import number


def local(value, fmt="%a %-d %b %Y, %H:%M"):
    """A time on the clock it carries (the subscriber's or the coach's), with its zone."""
    if value is None:
        return "-"
    return f"{value.strftime(fmt)} {value.tzname() or ''}".strip()


def utc(value):
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def isotime(value):
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


class AdminPages:
    def __init__(self):
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("sender.web.admin", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)
        self.env.filters.update(local=local, utc=utc, isotime=isotime, number=number)

    def render(self, name, context):
        return self.env.get_template(name).render(context)
