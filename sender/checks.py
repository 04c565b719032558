"""``drip check``: every campaign and template, rendered for every sample subscriber, checked.

Each problem names a file and, where it can be found, a line: a campaign
problem names the TOML file, a render problem the template Jinja reports, and
a problem in the rendered email the template that wrote the offending text
(the body first, then what it imports, then the layout).

The rules:

* campaign files load (every key valid, every template present);
* templates parse, and render with ``StrictUndefined`` for every sample
  subscriber (and as a test send), so an undefined variable fails;
* both parts carry the unsubscribe link and the postal address;
* a plain-text part exists and holds the body's text and its links;
* an exercise email (``exercise = true``) carries the safety block:
  ``<div class="safety">`` with an ``<h3>`` saying "Stop signs" and the word
  "Disclaimer", which the plain text must carry too (the same for a body written in
  Markdown: it is read once rendered, as an HTML body is);
* every image has ``alt`` and loads over HTTPS; the pictures in ``templates/images/`` are
  listed with alt text, exist, convert, fit their size budget, and a placeholder is not in
  an email (unless DRIP_ALLOW_EXAMPLE_VALUES) (see ``images.problems``);
* no text of over ``LONG_WORD`` characters that cannot wrap (a URL shown as text
  makes the email wider than a phone);
* the HTML stays under ``HTML_BUDGET`` bytes (Gmail clips at about 102 KB);
* links are well formed and no placeholder (``#``, ``TODO``, ``javascript:``,
  no scheme, unrendered ``{{``, a placeholder domain not set by a setting);
* no HTML or CSS feature the caniemail.com data marks unsupported in Gmail,
  Outlook for Windows or Apple Mail (see ``emailsupport``).

The HTML is read by ``html_scan.py`` (links, pictures, text, safety blocks, and what
makes a link a placeholder); a problem and where it is are ``check_report.py``'s.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import jinja2
from jinja2 import meta

from . import broadcasts, images, markdown_email, step_rules, sunset_email
from .check_report import Problem, _display, _toml_line, format_report  # noqa: F401 - checks.format_report
from .compose import compose, template_context, unsubscribe_url
from .drip import Drip
from .emailsupport import unsupported
from .errors import CampaignError, TemplateError
from .guide import GUIDE_TEMPLATE, render_guide_html
from .html_scan import LONG_WORD, Page, link_problem
from .render import LAYOUT_HTML, LAYOUT_TEXT, body_name, is_template, render_template
from .samples import SAMPLES

HTML_BUDGET = 80 * 1024        # bytes; Gmail clips a message at about 102 KB
TEXT_COVERAGE = 0.9            # share of the body's words the plain-text part must hold
CHECK_TIME = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
_TEMPLATE_ERROR = re.compile(r"^(?P<file>.+?), line (?P<line>\d+): (?P<message>.*)$", re.S)
_WORD = re.compile(r"[^\W\d_]{4,}")


def check_project(drip, *, samples=SAMPLES):
    """Every problem in the campaigns and templates, in file order (an empty list: all good)."""
    checker = _Checker(_checking_drip(drip), samples)
    checker.run()
    return sorted(checker.problems)


class _FixedSigner:
    """Tokens that do not change from one render to the next (real ones carry the time)."""

    def make(self, purpose, uid, *, now=None):
        return f"{purpose}-{uid}-token"


def _checking_drip(drip):
    """A Drip like ``drip`` whose links carry fixed tokens, so two renders compare equal."""
    checking = Drip(drip.settings)
    for name in ("campaigns", "templates"):
        if name in drip.__dict__:
            checking.__dict__[name] = drip.__dict__[name]
    checking.__dict__["signer"] = _FixedSigner()
    return checking


class _Checker:
    def __init__(self, drip, samples):
        self.drip = drip
        self.samples = samples
        self.templates_dir = Path(drip.settings.templates_dir)
        self.problems = set()
        self._sources = {}
        self.pictures_used = set()     # picture names the emails show

    # --- reporting -----------------------------------------------------------------------
    def add(self, file, line, message, rule="other"):
        self.problems.add(Problem(_display(file), line or 0, message, rule))

    def template_path(self, name):
        if name.startswith(markdown_email.BROADCASTS):
            folder = getattr(self.drip.templates.loader, "broadcasts_dir", None) or \
                markdown_email.default_broadcasts_dir(self.templates_dir)
            return Path(folder) / name[len(markdown_email.BROADCASTS):]
        return self.templates_dir / name

    def body_name(self, step):
        """The Jinja name of the step's body (emails/T.html or .md, or a broadcast)."""
        return body_name(self.drip.templates, step.template)

    def source(self, name):
        if name not in self._sources:
            try:
                self._sources[name] = self.template_path(name).read_text(encoding="utf-8")
            except OSError:
                self._sources[name] = ""
        return self._sources[name]

    def locate(self, names, pattern):
        """(template name, line) of the first match of ``pattern`` in ``names``, else the first name."""
        for name in names:
            match = re.search(pattern, self.source(name))
            if match:
                return name, self.source(name).count("\n", 0, match.start()) + 1
        return names[0], 0

    def add_at(self, names, pattern, message, rule="other"):
        name, line = self.locate(names, pattern)
        self.add(self.template_path(name), line, message, rule=rule)

    def add_template_error(self, exc, fallback, suffix="", rule="template-render"):
        match = _TEMPLATE_ERROR.match(str(exc))
        if match:
            file = match["file"]
            if not Path(file).is_absolute() and not Path(file).exists():
                file = self.template_path(file)
            self.add(file, int(match["line"]), match["message"] + suffix, rule=rule)
        else:
            self.add(fallback, 0, str(exc).removeprefix(f"{fallback}: ") + suffix, rule=rule)

    # --- the run -------------------------------------------------------------------------
    def run(self):
        broken = self.check_syntax()
        try:
            campaigns = self.drip.campaigns
        except CampaignError as exc:
            for text in exc.problems:
                self.add_campaign_problem(text)
            return
        except TemplateError as exc:  # the templates folder is missing
            self.add(self.templates_dir, 0, str(exc), rule="templates-folder")
            return
        for problems in campaigns.broken.values():
            for text in problems:
                self.add_campaign_problem(text)
        if not self.drip.settings.postal_address:
            self.add(".env", 0, "DRIP_POSTAL_ADDRESS is not set: every email must show a postal "
                                "address (CAN-SPAM)", rule="settings")
        if not self.drip.settings.allow_example_values:
            for found in self.drip.settings.placeholders():
                self.add(".env", 0, f"{found}: set your own (in .env or the environment); a "
                                    "real provider will not send while it is left", rule="settings")
        for campaign in campaigns:
            for step in campaign.steps:
                try:
                    name = self.body_name(step)
                except TemplateError as exc:      # none, or both: the campaign load said so
                    self.add(campaign.path, _toml_line(campaign.path, f"steps[{step.number}].template"),
                             str(exc), rule="campaign-file")
                    continue
                if name not in broken:
                    # Each A/B subject is rendered for every sample; the body, shared by all
                    # of them, is judged once.
                    for number, variant in enumerate(step_rules.variants_of(step)):
                        self.check_step(campaign, variant, subject_only=number > 0)
        self.check_broadcasts()
        if self.drip.settings.sunset_after:        # the sunset rule's "still want these?"
            self.check_step(sunset_email.QUESTION, sunset_email.QUESTION.steps[0])
        if (self.templates_dir / GUIDE_TEMPLATE).is_file() and GUIDE_TEMPLATE not in broken:
            self.check_guide()
        for path, line, message, rule in images.problems(self.drip.settings, used=self.pictures_used):
            self.add(path, line, message, rule=rule)

    def check_broadcasts(self):
        """The files in broadcasts/: the front matter (every problem, at its key's line), then
        the email each makes, by the same rules as a campaign step's."""
        found, broken = broadcasts.load_all(self.drip.settings)
        for problems in broken.values():
            for text in problems:
                self.add_campaign_problem(text)
        for broadcast in found:
            self.check_step(broadcast, broadcast.steps[0])

    def check_syntax(self):
        """Parse every template; returns the names that do not parse."""
        broken = set()
        env = self.drip.templates
        for path in sorted(self.templates_dir.rglob("*")):
            name = path.relative_to(self.templates_dir).as_posix()
            if not is_template(name) or not path.is_file():
                continue
            try:       # a Markdown email's Jinja tags are its own: its lines are true here
                env.parse(path.read_text(encoding="utf-8"), name, str(path))
            except jinja2.TemplateSyntaxError as exc:
                self.add(path, exc.lineno, f"template syntax error: {exc.message}", rule="template-syntax")
                broken.add(name)
            except UnicodeDecodeError:
                self.add(path, 0, "not UTF-8 text", rule="template-encoding")
                broken.add(name)
        return broken

    def add_campaign_problem(self, text):
        path, _, rest = text.partition(": ")
        key = rest.split(":", 1)[0]
        self.add(path, _toml_line(path, key), rest, rule="campaign-file")

    def check_step(self, campaign, step, *, subject_only=False):
        for number, sample in enumerate(self.samples):
            for is_test in (False, True) if number == 0 else (False,):
                try:
                    message = compose(self.drip, sample.subscriber, campaign, step,
                                      now=CHECK_TIME, is_test=is_test)
                except TemplateError as exc:
                    kind = "as a test send, " if is_test else ""
                    suffix = f" ({kind}sample subscriber {sample.key!r})"
                    if str(exc).startswith(f"{campaign.path}: "):   # the subject or preheader
                        key = "preheader" if " preheader: " in str(exc) else "subject"
                        if key == "subject" and getattr(campaign.step(step.id), "subjects", ()):
                            key = "subjects"
                        where = key if isinstance(campaign, broadcasts.Broadcast) else \
                            f"steps[{step.number}].{key}"
                        self.add(campaign.path, _toml_line(campaign.path, where),
                                 str(exc).removeprefix(f"{campaign.path}: ") + suffix, rule="template-render")
                    else:
                        self.add_template_error(exc, campaign.path, suffix)
                    return
                if not is_test and not subject_only:
                    self.check_message(campaign, step, sample, message)

    def body_of(self, campaign, step, sample):
        # At the message's time: a link stamped with it (the sunset email's) is then the same.
        context = template_context(self.drip, sample.subscriber, campaign, step, now=CHECK_TIME)
        return render_template(self.drip.templates, self.body_name(step), context)

    def related(self, name):
        """``name`` and the templates it imports or includes (one level is enough for emails)."""
        names = [name]
        try:
            ast = self.drip.templates.parse(self.source(name))
            names += [n for n in meta.find_referenced_templates(ast) if n and n not in names]
            if markdown_email.is_markdown(name) and "emails/_macros.html" not in names:
                names.append("emails/_macros.html")     # a Markdown body has `m` without an import
        except jinja2.TemplateSyntaxError:
            pass
        return names

    # --- the rules over one rendered message ---------------------------------------------
    def check_message(self, campaign, step, sample, message):
        body_name = self.body_name(step)
        html_names = self.related(body_name) + [LAYOUT_HTML]
        body = self.body_of(campaign, step, sample)
        html, text = message.html, message.text
        page = Page.parse(html)
        body_page = Page.parse(body)

        size = len(html.encode("utf-8"))
        if size > HTML_BUDGET:
            self.add(self.template_path(body_name), 0,
                     f"the HTML is {size / 1024:.0f} KB, over the {HTML_BUDGET // 1024} KB budget "
                     "(Gmail clips messages over about 102 KB, hiding the unsubscribe link)",
                     rule="size-budget")

        self.check_text_part(body_name, body_page, text)
        self.check_footer(campaign, sample, page, text)
        if step.exercise:
            self.check_safety(body_name, body_page, text)

        assets = images.asset_base(self.drip.settings) + "/"
        for _tag, attrs in page.images:
            src = attrs.get("src") or ""
            if src.startswith(assets):
                self.pictures_used.add(src[len(assets):].split(".")[0])
            if src and not src.lower().startswith(("https://", "cid:")):
                self.add_at(html_names, rf"<img\b[^>]*{re.escape(src)}|image\(" if src else r"<img\b",
                            f"<img src=\"{src[:80]}\">: the image URL is not HTTPS; email clients "
                            "block or flag insecure images", rule="image-url")
            if "alt" not in attrs:
                src = attrs.get("src") or ""
                self.add_at(html_names, rf"<img\b[^>]*{re.escape(src)}" if src else r"<img\b",
                            f"image without alt text (src={src!r}); add alt=\"...\" "
                            "(alt=\"\" for a decorative image)", rule="image-without-alt")
        self.check_links(html_names, page, sample)
        for word in dict.fromkeys(page.long_words):
            self.add_at(html_names, re.escape(word),
                        f"'{word[:32]}...': text of over {LONG_WORD} characters without a break is "
                        "wider than a phone screen; shorten it or give its element "
                        "style=\"word-break: break-all\"", rule="long-text")
        for finding in unsupported(html):
            self.add_at(html_names, finding.pattern, finding.message, rule="email-client-support")

    def check_links(self, names, page, sample, *, anchors=False):
        allowed = self.setting_urls(sample)
        for tag, attr, url in page.links:
            if anchors and url.startswith("#") and len(url) > 1:
                if url[1:] not in page.ids:
                    self.add_at(names, _url_pattern(url), f"link to #{url[1:]}, an id that does not exist",
                                rule="link")
                continue
            problem = link_problem(url, allowed)
            if not problem:
                continue
            pattern = _url_pattern(url)
            if not url.strip():
                empty = [f"coach.{k}" for k, v in vars(self.drip.settings.coach).items()
                         if k.endswith("_url") and not v]
                empty += ["guide_url"] if not self.drip.settings.guide_url else []
                if empty:
                    pattern = "|".join(re.escape(e) for e in empty)
                    problem += (f" ({' or '.join(empty)} is empty in these settings: show the link "
                                f"only {{% if {empty[0]} %}}, or make the setting required)")
            self.add_at(names, pattern, f"<{tag} {attr}=\"{url}\">: {problem}", rule="link")

    def check_text_part(self, body_name, body_page, text):
        if not text.strip():
            self.add(self.template_path(LAYOUT_TEXT), 0, "the plain-text part is empty", rule="text-part")
            return
        wanted = set(_WORD.findall(body_page.text.lower()))
        found = set(_WORD.findall(text.lower()))
        if wanted and len(wanted & found) / len(wanted) < TEXT_COVERAGE:
            self.add(self.template_path(LAYOUT_TEXT), 0,
                     f"the plain-text part is missing the body of {body_name} "
                     "(the text layout must include {{ body }})", rule="text-part")
            return
        for tag, _attr, url in body_page.links:
            if tag == "a" and url.startswith(("http://", "https://", "mailto:")) and url not in text:
                self.add_at(self.related(body_name), _url_pattern(url),
                            f"the link {url} is missing from the plain-text part", rule="text-part")

    def check_footer(self, campaign, sample, page, text):
        unsubscribe = unsubscribe_url(self.drip, sample.subscriber)
        if unsubscribe not in [url for _t, _a, url in page.links]:
            self.add(self.template_path(LAYOUT_HTML), 0,
                     "no unsubscribe link in the HTML part (link to {{ unsubscribe_url }})",
                     rule="unsubscribe-link")
        if unsubscribe not in text:
            self.add(self.template_path(LAYOUT_TEXT), 0,
                     "no unsubscribe link in the plain-text part (write {{ unsubscribe_url }})",
                     rule="unsubscribe-link")
        address = _squash(self.drip.settings.postal_address)
        if address:
            if address not in _squash(page.text):
                self.add(self.template_path(LAYOUT_HTML), 0,
                         "no postal address in the HTML part (write {{ postal_address }})",
                         rule="postal-address")
            if address not in _squash(text):
                self.add(self.template_path(LAYOUT_TEXT), 0,
                         "no postal address in the plain-text part (write {{ postal_address }})",
                         rule="postal-address")

    def check_safety(self, body_name, body_page, text):
        names = self.related(body_name)
        blocks = body_page.safety_blocks
        good = [b for b in blocks if "stop signs" in b["heading"].lower()
                and "disclaimer" in b["text"].lower()]
        if not blocks:
            self.add(self.template_path(body_name), 0,
                     'exercise email without the safety block: add <div class="safety"> with the '
                     'stop signs and the disclaimer: {{ m.safety_block() }} on a line of its own '
                     '(the macro in emails/_macros.html), in HTML or Markdown',
                     rule="safety-block")
        elif not good:
            self.add_at(names, r'class="[^"]*\bsafety\b',
                        'the safety block needs an <h3> with "Stop signs" and the word "Disclaimer"',
                        rule="safety-block")
        elif not ("stop signs" in text.lower() and "disclaimer" in text.lower()):
            self.add(self.template_path(LAYOUT_TEXT), 0,
                     "exercise email: the plain-text part lacks the stop signs and disclaimer",
                     rule="safety-block")

    def setting_urls(self, sample):
        settings = self.drip.settings
        urls = [settings.base_url, settings.guide_url, *vars(settings.coach).values(),
                unsubscribe_url(self.drip, sample.subscriber)]
        return tuple(u for u in urls if isinstance(u, str) and u.startswith(("http://", "https://")))

    def check_guide(self):
        path = self.template_path(GUIDE_TEMPLATE)
        for for_print in (False, True):
            try:
                html = render_guide_html(self.drip, for_print=for_print)
            except TemplateError as exc:
                self.add_template_error(exc, path)
                return
        names = [GUIDE_TEMPLATE] + sorted(
            p.relative_to(self.templates_dir).as_posix()
            for p in (self.templates_dir / "guide").rglob("*.html"))
        page = Page.parse(html)
        # The PDF embeds its pictures (a data: URL, or a file the build reads), as it should.
        page.links = [(t, a, u) for t, a, u in page.links
                      if not (t == "img" and u.startswith(("data:image/", "file:")))]
        self.check_links(names, page, self.samples[0], anchors=True)


def _squash(text):
    return re.sub(r"\s+", " ", unescape(text)).strip()


def _url_pattern(url):
    escaped = url.replace("&", "&amp;")
    return "|".join(re.escape(u) for u in {url, escaped}) or r"href=\"\""
