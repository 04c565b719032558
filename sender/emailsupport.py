"""Which HTML and CSS features an email uses that Gmail, Outlook or Apple Mail do not support.

The support data is the caniemail.com data set (npm package ``caniemail``),
reduced by ``scripts/update-caniemail.py`` to ``sender/data/caniemail-unsupported.json``:
for each feature, the target clients whose latest tested version does not
support it at all.

The email's HTML is read with ``html.parser``; its CSS (``<style>`` blocks
and ``style`` attributes) with tinycss2. Each feature found is mapped to a
caniemail slug. Two refinements keep the answer honest:

* declarations inside ``@media`` are not held against a client that ignores
  ``@media`` altogether (it never applies them);
* declarations next to ``mso-hide: all`` are not held against Outlook for
  Windows, which hides that element.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from importlib import resources

import tinycss2

OUTLOOK_WINDOWS = "outlook/windows"
# Features the data marks unsupported somewhere that are harmless there, with the reason.
TOLERATED = {
    "html-doctype": "Outlook for Windows ignores the doctype (its note: 'no impact'); the "
                    "other clients need it for standards mode",
    "css-at-media": "a progressive enhancement: the layout is fluid without it, and Outlook for "
                    "Windows gets the fixed 600 px table",
}

_SEMANTIC = {"article", "aside", "details", "figcaption", "figure", "footer", "header", "main",
             "mark", "nav", "section", "summary", "time"}
_ATTRIBUTES = {"hidden": "html-hidden", "loading": "html-loading-attribute", "srcset": "html-srcset",
               "sizes": "html-srcset", "target": "html-target", "popover": "html-popover",
               "required": "html-required", "aria-describedby": "html-aria-describedby",
               "aria-labelledby": "html-aria-labelledby"}
# Property-name prefixes that share one caniemail feature.
_PREFIXES = (
    ("animation", "css-animation"), ("transition", "css-transition"),
    ("scroll-snap", "css-scroll-snap"), ("grid-template", "css-grid-template"),
    ("border-image", "css-border-image"), ("column-", "css-column-layout-properties"),
    ("columns", "css-column-layout-properties"), ("text-emphasis", "css-text-emphasis"),
)
_EXACT = {
    "gap": "css-gap", "row-gap": "css-gap", "column-gap": "css-gap",
    "left": "css-left-right-top-bottom", "right": "css-left-right-top-bottom",
    "top": "css-left-right-top-bottom", "bottom": "css-left-right-top-bottom",
    "margin-inline": "css-margin-inline-block", "margin-block": "css-margin-inline-block",
    "margin-inline-start": "css-margin-inline-start-end",
    "margin-inline-end": "css-margin-inline-start-end",
    "margin-block-start": "css-margin-block-start-end", "margin-block-end": "css-margin-block-start-end",
    "padding-inline": "css-padding-inline-block", "padding-block": "css-padding-inline-block",
    "padding-inline-start": "css-padding-inline-start-end",
    "padding-inline-end": "css-padding-inline-start-end",
    "padding-block-start": "css-padding-block-start-end",
    "padding-block-end": "css-padding-block-start-end",
    "block-size": "css-block-inline-size", "inline-size": "css-block-inline-size",
    "overflow-x": "css-overflow", "overflow-y": "css-overflow",
    "outline-width": "css-outline", "outline-style": "css-outline", "outline-color": "css-outline",
}
_FUNCTIONS = {"rgba": "css-rgba", "calc": "css-unit-calc", "min": "css-function-min",
              "max": "css-function-max", "clamp": "css-function-clamp", "var": "css-variables",
              "linear-gradient": "css-linear-gradient", "radial-gradient": "css-radial-gradient",
              "conic-gradient": "css-conic-gradient", "light-dark": "css-function-light-dark",
              "lch": "css-modern-color", "oklch": "css-modern-color", "lab": "css-modern-color",
              "oklab": "css-modern-color", "url": None}
_UNITS = {"rem": "css-unit-rem", "ch": "css-unit-ch", "vh": "css-unit-vh", "vw": "css-unit-vw",
          "vmin": "css-unit-vmin", "vmax": "css-unit-vmax"}
_SYSTEM_FONTS = {"system-ui", "ui-serif", "ui-sans-serif", "ui-rounded", "ui-monospace"}
_MEDIA_FEATURES = {"prefers-color-scheme": "css-at-media-prefers-color-scheme",
                   "prefers-reduced-motion": "css-at-media-prefers-reduced-motion",
                   "hover": "css-at-media-hover", "any-hover": "css-at-media-hover",
                   "orientation": "css-at-media-orientation",
                   "-webkit-device-pixel-ratio": "css-at-media-device-pixel-ratio",
                   "-webkit-min-device-pixel-ratio": "css-at-media-device-pixel-ratio"}
_AT_RULES = {"font-face": "css-at-font-face", "import": "css-at-import",
             "keyframes": "css-at-keyframes", "supports": "css-at-supports", "media": "css-at-media"}
_PSEUDO_ELEMENTS = {"before", "after", "first-letter", "first-line", "marker", "placeholder"}


@dataclass(frozen=True)
class Use:
    """One use of a feature: its slug, what was seen, and a regex that finds it in a template."""
    slug: str
    what: str
    pattern: str
    skip_clients: frozenset = frozenset()


@dataclass(frozen=True)
class Finding:
    slug: str
    title: str
    url: str
    what: str
    pattern: str
    clients: tuple  # display names

    @property
    def message(self):
        return (f"{self.what}: {self.title} is not supported in {', '.join(self.clients)} "
                f"(caniemail.com: {self.url})")


@cache
def support_data():
    text = resources.files("sender").joinpath("data/caniemail-unsupported.json").read_text("utf-8")
    return json.loads(text)


def unsupported(html):
    """Findings for every feature in ``html`` that a target client does not support."""
    data = support_data()
    features, clients = data["features"], data["clients"]
    findings = {}
    for use in features_used(html):
        feature = features.get(use.slug)
        if feature is None or use.slug in TOLERATED:
            continue
        missing = tuple(clients[c] for c in feature["unsupported"] if c not in use.skip_clients)
        if missing:
            key = (use.slug, use.what)
            findings.setdefault(key, Finding(use.slug, feature["title"], feature["url"], use.what,
                                             use.pattern, missing))
    return list(findings.values())


def features_used(html):
    parser = _FeatureParser()
    parser.feed(html)
    parser.close()
    return parser.uses


def _word(name):
    return rf"(?<![\w-]){re.escape(name)}(?![\w-])"


class _FeatureParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.uses = []
        self._in_style = False

    def handle_decl(self, decl):
        if decl.lower().startswith("doctype html"):
            self.uses.append(Use("html-doctype", "<!doctype html>", r"(?i)<!doctype"))

    def handle_starttag(self, tag, attrs):
        self._element(tag, dict(attrs))
        if tag == "style":
            self._in_style = True

    def handle_startendtag(self, tag, attrs):
        self._element(tag, dict(attrs))

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.uses += stylesheet_uses(data)

    def _element(self, tag, attrs):
        add = self.uses.append
        slug = {"svg": "html-svg"}.get(tag, f"html-{tag}")
        if tag in _SEMANTIC:
            slug = "html-semantics"
        elif tag == "input":
            slug = f"html-input-{(attrs.get('type') or 'text').lower()}"
        elif tag == "button":
            slug = f"html-button-{(attrs.get('type') or 'submit').lower()}"
        add(Use(slug, f"<{tag}>", rf"(?i)<{re.escape(tag)}\b"))
        for name in attrs:
            if name in _ATTRIBUTES:
                add(Use(_ATTRIBUTES[name], f"the {name} attribute on <{tag}>",
                        rf"(?i)<{re.escape(tag)}\b[^>]*\s{re.escape(name)}\b"))
        if tag == "meta" and (attrs.get("name") or "").lower() in ("color-scheme",
                                                                   "supported-color-schemes"):
            add(Use("html-meta-color-scheme", f'<meta name="{attrs["name"]}">',
                    rf"(?i)<meta[^>]*{re.escape(attrs['name'])}"))
        href = attrs.get("href") or ""
        if tag == "a" and href.startswith("#") and len(href) > 1:
            add(Use("html-anchor-links", f'a local anchor link href="{href}"',
                    rf'(?i)href="{re.escape(href)}"'))
        if attrs.get("style"):
            self.uses += declaration_uses(attrs["style"], where=f"a style attribute on <{tag}>")


def stylesheet_uses(css):
    uses = []
    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    _rules_uses(rules, uses, frozenset())
    return uses


def _rules_uses(rules, uses, skip):
    for rule in rules:
        if rule.type == "qualified-rule":
            selector = tinycss2.serialize(rule.prelude).strip()
            uses += _selector_uses(selector, skip)
            uses += declaration_uses(rule.content, where=f"the rule '{selector}'", skip=skip)
        elif rule.type == "at-rule":
            name = rule.lower_at_keyword
            prelude = tinycss2.serialize(rule.prelude).strip()
            if name in _AT_RULES:
                uses.append(Use(_AT_RULES[name], f"@{name} {prelude}".strip(),
                                rf"(?i)@{re.escape(name)}\b", skip))
            if name == "media":
                for feature, slug in _MEDIA_FEATURES.items():
                    if re.search(rf"\(\s*{re.escape(feature)}\s*[:)]", prelude, re.I):
                        uses.append(Use(slug, f"@media {prelude}", _word(feature), skip))
            if name in ("media", "supports") and rule.content is not None:
                inner = tinycss2.parse_blocks_contents(rule.content, skip_comments=True,
                                                       skip_whitespace=True)
                # A client that ignores @media never applies what is inside it.
                ignored = frozenset(c for c in support_data()["features"]
                                    .get(f"css-at-{name}", {}).get("unsupported", ()))
                _rules_uses([r for r in inner if r.type in ("qualified-rule", "at-rule")],
                            uses, skip | ignored)


def _selector_uses(selector, skip):
    uses = []
    bare = re.sub(r"\[[^\]]*\]", "[]", selector)
    bare = re.sub(r"\"[^\"]*\"|'[^']*'", "", bare)

    def add(slug, what, pattern):
        uses.append(Use(slug, f"{what} in '{selector}'", pattern, skip))

    if "[]" in bare:
        add("css-selector-attribute", "an attribute selector", re.escape(selector))
    for name in re.findall(r"::([a-zA-Z-]+)", bare):
        add(f"css-pseudo-element-{name.lower()}", f"::{name}", re.escape(f"::{name}"))
    for name in re.findall(r"(?<!:):([a-zA-Z-]+)", bare):
        kind = "element" if name.lower() in _PSEUDO_ELEMENTS else "class"
        add(f"css-pseudo-{kind}-{name.lower()}", f":{name}", re.escape(f":{name}"))
    for symbol, slug in ((">", "css-selector-child"), ("+", "css-selector-adjacent-sibling"),
                         ("~", "css-selector-general-sibling"), ("*", "css-selector-universal")):
        if symbol in bare:
            add(slug, f"the {symbol!r} selector", re.escape(selector))
    if re.search(r"[\w\]-][.#][\w-]", bare):
        add("css-selector-chaining", "chained selectors", re.escape(selector))
    return uses


def declaration_uses(content, *, where, skip=frozenset()):
    """Uses in a declaration list (a style attribute's text, or a rule's content tokens)."""
    if isinstance(content, str):
        declarations = tinycss2.parse_declaration_list(content, skip_comments=True,
                                                       skip_whitespace=True)
    else:
        declarations = tinycss2.parse_blocks_contents(content, skip_comments=True,
                                                      skip_whitespace=True)
    declarations = [d for d in declarations if d.type == "declaration"]
    names = {d.lower_name: tinycss2.serialize(d.value).strip().lower() for d in declarations}
    if names.get("mso-hide") == "all":
        skip = skip | {OUTLOOK_WINDOWS}   # Outlook hides the element: its other styles do not matter
    uses = []
    for decl in declarations:
        name = decl.lower_name
        value = tinycss2.serialize(decl.value).strip()

        def add(slug, what, pattern, _name=name):
            uses.append(Use(slug, f"{what} in {where}", pattern, skip))

        if name.startswith("--"):
            add("css-variables", f"the custom property {name}", re.escape(name))
            continue
        if name.startswith(("-webkit-", "-moz-", "-ms-", "mso-", "-o-")):
            continue
        slug = _property_slug(name)
        if slug:
            add(slug, f"'{name}: {value}'", _word(name) + r"\s*:")
        if name == "display" and value.lower() in ("flex", "inline-flex", "grid", "inline-grid"):
            add(f"css-display-{value.lower().removeprefix('inline-')}", f"'display: {value}'",
                rf"display\s*:\s*{re.escape(value)}")
        if name == "font-family":
            for font in _SYSTEM_FONTS & {f.strip(" '\"").lower() for f in value.split(",")}:
                add("css-sytem-ui", f"the font {font}", _word(font))
        if name in ("background", "background-image") and "url(" in value.lower():
            add("css-background-image", f"a background image ('{name}: {value}')",
                _word(name) + r"\s*:[^;]*url\(")
        for token in _walk(decl.value):
            if token.type == "function" and _FUNCTIONS.get(token.lower_name):
                add(_FUNCTIONS[token.lower_name], f"{token.lower_name}() in '{name}'",
                    rf"(?i){re.escape(token.lower_name)}\(")
            elif token.type == "dimension" and token.lower_unit in _UNITS:
                add(_UNITS[token.lower_unit], f"the {token.lower_unit} unit in '{name}: {value}'",
                    rf"\d{re.escape(token.lower_unit)}\b")
            elif token.type == "ident" and token.lower_value == "initial":
                add("css-unit-initial", f"'initial' in '{name}'", r"\binitial\b")
    return uses


def _property_slug(name):
    if name in _EXACT:
        return _EXACT[name]
    for prefix, slug in _PREFIXES:
        if name.startswith(prefix):
            return slug
    if re.fullmatch(r"border-(top|bottom)-(left|right)-radius", name):
        return "css-border-radius"
    if re.fullmatch(r"border-(start|end)-(start|end)-radius", name):
        return "css-border-radius-logical"
    if name.startswith(("border-inline", "border-block")):
        return "css-border-inline-block"
    if name.startswith("text-decoration-"):
        return f"css-{name}"
    slug = f"css-{name}"
    return slug if slug in support_data()["features"] else None


def _walk(tokens):
    for token in tokens:
        yield token
        if token.type in ("function", "() block", "[] block", "{} block"):
            yield from _walk(token.arguments if token.type == "function" else token.content)
