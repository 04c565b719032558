"""Everything an email template can use, read from the code so that it cannot drift.

``reference(templates_dir)`` gives it as Markdown text: the context's names (built by
``compose.template_context`` itself, for a sample subscriber, and marked per person from
``compose.personal_context``), the globals and filters the Jinja environment holds, the
macros of ``emails/_macros.html`` with their arguments and the comment above each, and what
the layouts read. ``drip templates`` prints it; the README's template-reference section is
this text for the shipped templates (``python -m sender.template_reference README.md``
rewrites it; tests/test_template_reference.py fails when either is stale, or when a context
name, global or filter has no description here).
"""

from __future__ import annotations

import inspect
import io
import re
import sys
import textwrap
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from jinja2 import meta, nodes

MACROS = "emails/_macros.html"
LAYOUTS = ("emails/_layout.html", "emails/_layout.txt")
START, END = "<!-- template-reference:start -->\n", "<!-- template-reference:end -->"
WIDTH = 96

# Every name of the context, flattened one level ("subscriber.first_name").
CONTEXT = {
    "subscriber": "the person this email is for (below); undefined parts fail, never go blank",
    "subscriber.email": "her address",
    "subscriber.name": "her name as given (may be empty)",
    "subscriber.first_name": "the first word of her name, or empty",
    "subscriber.fields": "her other details as text, by name: `subscriber.fields.get(\"stage\")` "
                         "(\"pregnant\", \"postpartum\", or none given)",
    "subscriber.tags": "her tags, a list of text",
    "unsubscribe_url": "her one-click unsubscribe link (the layout shows it)",
    "confirm_url": "her confirmation link: only in the confirmation email (entry on \"signup\")",
    "coach": "the coach, from the settings (DRIP_COACH_*, DRIP_*_URL)",
    "coach.name": "her name", "coach.credentials": "her credentials, one line",
    "coach.city": "her city", "coach.signoff": "how she signs off (\"Talk soon,\")",
    "coach.website_url": "her website", "coach.blog_url": "her blog",
    "coach.instagram_url": "her Instagram page", "coach.contact_url": "her contact page",
    "coach.booking_url": "where to book a call",
    "guide_url": "the free guide's address (DRIP_GUIDE_URL)",
    "postal_address": "the postal address every email shows (DRIP_POSTAL_ADDRESS)",
    "campaign": "the campaign this email belongs to",
    "campaign.id": "its file name without .toml", "campaign.name": "its [campaign] name",
    "step": "this email's step in the campaign",
    "step.id": "its id", "step.number": "its place, from 1", "step.total": "how many steps the "
                                                                            "campaign has",
    "is_test": "true in a test send (`drip preview --to`): the layout shows a banner",
    "subject": "the subject line, rendered from the campaign file",
    "preheader": "the preview line, rendered from the campaign file",
}
# The globals drip adds (Jinja's own are listed by name).
GLOBALS = {
    "image": "`image(\"glute-bridge\", width=None)`: a picture from templates/images/ as an "
             "`<img>` with its size and alt text (images.toml); `m.figure(name)` gives it room",
    "has_image": "`has_image(\"logo\")`: whether images.toml lists that picture",
    "brand": "the coach's look (DRIP_BRAND_*), below",
    "guide_attached": "`guide_attached()`: whether this email carries the guide PDF",
    "m": "the macros below; there without an import in a Markdown email (an HTML one writes "
         "`{% import \"emails/_macros.html\" as m %}`)",
}
BRAND = {
    "brand.color": "the brand color (#rrggbb)", "brand.accent": "the headings' color",
    "brand.font": "her font's name, or empty", "brand.logo_url": "her logo's address, or empty",
}
FILTERS = {}       # drip's own filters, by name: none yet (Jinja's are listed by name)

_MACRO = re.compile(r"\{#-?(?P<doc>(?:(?!#\}).)*?)-?#\}\s*\{%-?\s*macro\s+(?P<name>\w+)", re.S)


def example_drip(templates_dir):
    """A Drip on the example settings `drip init` writes, with ``templates_dir``: the names are
    the same whatever the values."""
    from dotenv import dotenv_values

    from .config import Settings, env_file_text
    from .drip import Drip
    values = {k: v for k, v in dotenv_values(stream=io.StringIO(env_file_text())).items() if v}
    return Drip(Settings.from_env({**values, "DRIP_TEMPLATES_DIR": str(templates_dir)}))


def context_names(drip):
    """``{name: per person?}`` of the context a campaign email renders with, flattened one
    level, built by compose itself (a confirmation step, so every name is there)."""
    from .campaigns import Campaign, Step
    from .compose import personal_context, static_context, template_context
    from .samples import SAMPLES
    step = Step(id="confirm", number=1, template="system/confirm", subject="S", preheader="P",
                delay=None)
    campaign = Campaign(id="reference", name="Reference", description="", entry_on="signup",
                        entry_tags=(), window=None, steps=(step,), path=Path("reference.toml"))
    person = SAMPLES[0].subscriber
    now = datetime(2026, 1, 1, tzinfo=UTC)
    context = template_context(drip, person, campaign, step, now=now)
    personal = set(personal_context(drip, person, campaign, now=now))
    static = set(static_context(drip, campaign, step)[0])
    names = {}
    for key, value in context.items():
        mine = key in personal or key not in static and key not in ("subject", "preheader")
        names[key] = mine
        if isinstance(value, dict) and key != "subscriber.fields":
            for inner in value:
                names[f"{key}.{inner}"] = mine
    names.pop("subscriber.fields.stage", None)
    return names


def brand_names(brand):
    cls = type(brand)
    found = [f"brand.{f.name}" for f in fields(cls)] if is_dataclass(cls) else []
    found += [f"brand.{n}" for n, v in inspect.getmembers(cls) if isinstance(v, property)]
    return found


def brand_help(name, brand):
    if name in BRAND:
        return BRAND[name]
    prop = getattr(type(brand), name.split(".", 1)[1], None)
    doc = inspect.getdoc(prop) if isinstance(prop, property) else None
    return doc.split("\n\n")[0].replace("\n", " ").rstrip(".") if doc else None


def missing(drip):
    """Names a template can use that have no description here (a test keeps this empty)."""
    env = drip.templates
    gaps = [n for n in context_names(drip) if n not in CONTEXT]
    gaps += [n for n in env.globals if n not in jinja2.defaults.DEFAULT_NAMESPACE and n not in GLOBALS]
    gaps += [f"filter {n}" for n in env.filters if n not in jinja2.filters.FILTERS and n not in FILTERS]
    gaps += [n for n in brand_names(env.globals["brand"]) if not brand_help(n, env.globals["brand"])]
    return gaps


def macros(source):
    """``[(name, arguments, uses caller, comment)]`` of the macros in ``source``."""
    docs = {m["name"]: " ".join(m["doc"].split()) for m in _MACRO.finditer(source)}
    found = []
    for macro in jinja2.Environment().parse(source).find_all(nodes.Macro):
        defaults = dict(zip([a.name for a in macro.args][len(macro.args) - len(macro.defaults):],
                            macro.defaults, strict=True))
        args = [f"{a.name}={defaults[a.name].value!r}" if isinstance(defaults.get(a.name), nodes.Const)
                else a.name for a in macro.args]
        caller = any(isinstance(c.node, nodes.Name) and c.node.name == "caller"
                     for c in macro.find_all(nodes.Call))
        found.append((macro.name, args, caller, docs.get(macro.name, "")))
    return found


def _item(name, text):
    return textwrap.fill(f"- `{name}`: {text}", WIDTH, subsequent_indent="  ",
                         break_on_hyphens=False, break_long_words=False)


def _names(title, names, after=""):
    return textwrap.fill(f"{title}: " + ", ".join(names) + "." + after, WIDTH,
                         break_on_hyphens=False, break_long_words=False)


def _code(text):
    """Jinja tags and HTML in a macro's comment, as code (so Markdown shows them as written)."""
    return re.sub(r"(\{%.*?%\}|\{\{.*?\}\}|<[^>]+>|\.\.\.)", r"`\1`", text).replace("``", "")


def reference(templates_dir, drip=None):
    """The reference as Markdown text (see the module docstring)."""
    from .template_plan import PURE_FILTERS
    drip = drip or example_drip(templates_dir)
    env = drip.templates
    templates_dir = Path(templates_dir)
    out = ["##### Variables", "",
           "Every email renders with these (per person: differs from one subscriber to the next).",
           ""]
    for name, personal in context_names(drip).items():
        out.append(_item(name, CONTEXT.get(name, "(not described)") + (" (per person)" if personal else "")))
    out += ["", "##### Helpers", ""]
    brand = env.globals["brand"]
    for name in sorted(n for n in env.globals if n not in jinja2.defaults.DEFAULT_NAMESPACE):
        out.append(_item(name, GLOBALS.get(name, "(not described)")))
        if name == "brand":
            out += ["  " + _item(n, brand_help(n, brand) or "(not described)").replace("\n", "\n  ")
                    for n in brand_names(brand)]
    out.append(_item("m", GLOBALS["m"]))
    out += ["", _names("Jinja's own", sorted(jinja2.defaults.DEFAULT_NAMESPACE))]
    out += ["", "##### Filters", ""]
    ours = sorted(n for n in env.filters if n not in jinja2.filters.FILTERS)
    out += [_item(n, FILTERS.get(n, "(not described)")) for n in ours] or ["drip adds none."]
    out += ["", _names("Jinja's own (`{{ value|trim }}`)", sorted(jinja2.filters.FILTERS)), "",
            _names("Of these, on a per-person value an email still renders once with",
                   sorted(PURE_FILTERS), " Any other renders that email on its own (the same "
                                         "bytes, slower).")]
    macro_file = templates_dir / MACROS
    out += ["", f"##### Building blocks (`{MACROS}`, as `m`)", ""]
    if macro_file.is_file():
        for name, args, caller, doc in macros(macro_file.read_text(encoding="utf-8")):
            usage = (f"{{% call m.{name}({', '.join(args)}) %}}...{{% endcall %}}" if caller
                     else f"{{{{ m.{name}({', '.join(args)}) }}}}")
            out.append(_item(usage, _code(doc) or "(not described)"))
    else:
        out.append(f"No {MACROS} in this project.")
    out += ["", "##### The layouts", ""]
    for layout in LAYOUTS:
        path = templates_dir / layout
        if not path.is_file():
            out.append(f"- `{layout}`: missing")
            continue
        tree = env.parse(path.read_text(encoding="utf-8"))
        blocks = [b.name for b in tree.find_all(nodes.Block)]
        read = sorted(meta.find_undeclared_variables(tree) - set(env.globals) - {"body"})
        out.append(textwrap.fill(
            f"- `{layout}`: " + (f"blocks {', '.join(blocks)}; " if blocks else "no blocks; ")
            + "the body goes in at `{{ body }}`; it reads " + ", ".join(f"`{n}`" for n in read) + ".",
            WIDTH, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False))
    return "\n".join(out) + "\n"


def update_readme(path, templates_dir):
    """Rewrite the marked section of the README at ``path``; True when it changed."""
    text = Path(path).read_text(encoding="utf-8")
    start, end = text.index(START) + len(START), text.index(END)
    new = text[:start] + reference(templates_dir) + text[end:]
    Path(path).write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":      # python -m sender.template_reference README.md
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    print("updated" if update_readme(readme, readme.parent / "templates") else "already current")
