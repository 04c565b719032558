"""Render each step once, then fill in each person's values.

Every email of a step is the same document with a few per-person values. ``render`` renders
the step's body, layout and text layout once, with a marker where each per-person value goes
(``template_plan`` finds them in the Jinja syntax tree, and turns each condition on one into
a key: the step is rendered once per combination of branches met), runs the CSS inliner and
markdownify once over that, and keeps the result as static text with slots (``skeleton``).
For each person it evaluates the values and keys with Jinja, as the template would, and
writes the values into the slots, and the slots' lines into quoted-printable.

An email goes the per-person way (``compose`` renders it from its full context, which is the
reference) when its template cannot be vouched for, a branch of it does not render once, a
value is not plain text (``skeleton.plain``), or anything else unexpected happens; ``stats``
counts them, with the reason.

The cache hangs off the Jinja environment: a hot reload (a new environment) starts afresh,
and under an environment that reloads templates (the CLI's), a template file changed on disk
is planned again (within a batch of a send run, from the next batch on: ``one_version``).
The test flag and everything else the context shares is in the step's key; per-person
values, a confirmation link's time included, are never in a rendered skeleton.
Pictures and the guide's attachment flag are read when a step is rendered once, so within
one environment they are what they were then. Sizes are bounded.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

from jinja2 import meta
from markupsafe import Markup

from . import skeleton
from . import template_plan as tp
from .render import INLINER, LAYOUT_HTML, LAYOUT_TEXT, RenderedEmail, body_name, compiled_string

STEPS_KEPT = 256        # steps (campaign step x settings x test flag) per environment
VARIANTS_KEPT = 256     # steps rendered once (a step per branch combination), about 60 KB each
PERSONAL = ("subscriber", "unsubscribe_url", "confirm_url")


@dataclass
class RenderStats:
    """What ``render`` did in one environment: body templates rendered once, templates that
    fell back (with the reason), and emails each way (per-person reasons counted)."""

    once: set = field(default_factory=set)
    fell_back: dict = field(default_factory=dict)
    emails_once: int = 0
    emails_per_person: int = 0
    person_reasons: Counter = field(default_factory=Counter)


def stats(env):
    return _cache(env).stats


# --- one step -----------------------------------------------------------------------------------
class _Absent:
    """What a per-person name holds while a step is rendered once: any use of it (a helper
    that reads the context, say) fails, and that branch is rendered per person."""

    def __init__(self, name):
        self._name = name

    def _refuse(self, *args, **kwargs):
        raise tp.NotFillable(f"{self._name} was read where the template plan did not see it")

    __getattr__ = __getitem__ = __str__ = __bool__ = __iter__ = __len__ = __contains__ = _refuse
    __eq__ = __ne__ = __html__ = __call__ = __format__ = _refuse
    __hash__ = None


class _Plan:
    """The rewritten templates of one step (the layouts' plans shared between steps), and
    the evaluator of their holes and keys."""

    def __init__(self, env, body, layout, text):
        self.body, self.layout, self.text = body.template, layout.template, text.template
        self.evaluator = tp.evaluator(env, (body, layout, text))
        self.sources = {**body.sources, **layout.sources, **text.sources}
        self.globals = dict(self.evaluator.globals)
        self.holes = [(hid, f"{tp.HOLE_PREFIX}{hid}")
                      for plan in (body, layout, text) for hid, _, _ in plan.holes]
        self.keys = [f"{tp.KEY_PREFIX}{kid}" for plan in (body, layout, text) for kid, _, _ in plan.keys]

    def current(self, env):
        """Whether every template read is still the one the environment renders: always, in
        a frozen environment (a reload brings a new environment, and a new cache); else
        until a file changes on disk."""
        return not env.auto_reload or all(t.is_up_to_date for t in self.sources.values())

    def values(self, context):
        """({hole: value}, key) for one person's ``context`` (which holds the globals)."""
        evaluated = self.evaluator.new_context(context, shared=True)
        for _ in self.evaluator.root_render_func(evaluated):
            pass
        found = evaluated.vars
        return {hid: found[name] for hid, name in self.holes}, tuple(found[n] for n in self.keys)


@dataclass
class _Variant:
    html: skeleton.Pieces
    text: skeleton.Pieces
    holes: frozenset


class _Step:
    def __init__(self, name, plan, static, personal, subject_personal, preheader_personal, cache):
        self.name, self.plan, self.static, self.cache = name, plan, static, cache
        self.absent = {name: _Absent(name) for name in personal}
        self.subject_personal, self.preheader_personal = subject_personal, preheader_personal
        self.variants = {}      # key -> _Variant, or the reason it falls back

    def variant(self, key):
        found = self.variants.get(key)
        if found is None:
            try:
                found = self._build(key)
            except Exception as exc:    # anything at all: that branch goes the per-person way
                found = f"{type(exc).__name__}: {exc}"
                self.cache.stats.fell_back[f"{self.name} (branch {key})"] = found
            self.cache.made_variant()
            self.variants[key] = found
        return found

    def _build(self, key):
        context = {**self.absent, **self.static}
        context.update(zip(self.plan.keys, key, strict=True))
        body = self.plan.body.render(context)
        page = self.plan.layout.render({**context, "body": Markup(body)})
        html = skeleton.html(page, INLINER.inline(page))
        body_text, links = skeleton.markdown(body)
        text = skeleton.text(self.plan.text.render({**context, "body": body_text}).rstrip() + "\n",
                             links)
        return _Variant(html, text, frozenset(html.holes | text.holes))


class _Cache:
    def __init__(self):
        self.lock = threading.Lock()
        self.plans = {}         # (template, subject personal, preheader personal) -> _Plan | reason
        self.layouts = {}       # (layout, personal names) -> tp.Plan
        self.trees = {}         # Template -> its syntax tree
        self.steps = {}         # step key -> _Step | reason
        self.variants = 0       # made since the last clearing
        self.stats = RenderStats()
        self.looked = None      # within ``one_version``: the plans whose files were looked at

    def made_variant(self):
        """Count one more step rendered once; past VARIANTS_KEPT, every step forgets its."""
        self.variants += 1
        if self.variants > VARIANTS_KEPT:
            with self.lock:
                for step in self.steps.values():
                    if isinstance(step, _Step):
                        step.variants = {}
                self.variants = 1

    def step(self, env, key, static, personal, template, subject, preheader, label):
        found = self.steps.get(key)
        if isinstance(found, _Step) and not self._current(found.plan, env):
            with self.lock:
                self.plans.clear()
                self.layouts.clear()
                self.trees.clear()
                self.steps.clear()
            found = None
        if found is None:
            found = self._make_step(env, static, personal, template, subject, preheader, label)
            looked = self.looked
            if looked is not None and isinstance(found, _Step):
                looked.add(found.plan)              # planned from the files as they are now
            with self.lock:
                if len(self.steps) >= STEPS_KEPT:
                    self.steps.clear()
                self.steps[key] = found
        return found

    def _current(self, plan, env):
        """``plan.current(env)``, looked at once per plan within ``one_version``."""
        looked = self.looked
        if looked is not None and plan in looked:
            return True
        current = plan.current(env)
        if current and looked is not None:
            looked.add(plan)
        return current

    def _plan(self, env, name, subject_personal, preheader_personal, static):
        personal = set(PERSONAL) | ({"subject"} if subject_personal else set()) \
            | ({"preheader"} if preheader_personal else set())
        planner = tp.Planner(env, personal=personal, trees=self.trees,
                             context=set(static) | {"subject", "preheader"} | personal)
        return _Plan(env, planner.rewrite(name, tag="b"),
                     _layout(self, planner, LAYOUT_HTML, "l"), _layout(self, planner, LAYOUT_TEXT, "t"))

    def _make_step(self, env, static, personal, template, subject, preheader, label):
        try:
            name = body_name(env, template)     # emails/T.html, emails/T.md or a broadcast
        except Exception as exc:                # none, or two: the per-person way says so
            return f"{type(exc).__name__}: {exc}"
        subject_personal = _uses(env, subject, PERSONAL)
        preheader_personal = _uses(env, preheader, PERSONAL + (("subject",) if subject_personal else ()))
        plan_key = (name, subject_personal, preheader_personal)
        plan = self.plans.get(plan_key)
        if plan is None:
            try:
                plan = self._plan(env, name, subject_personal, preheader_personal, static)
            except tp.NotFillable as exc:
                plan = str(exc)
            except Exception as exc:        # a template that does not load or compile
                plan = f"{type(exc).__name__}: {exc}"
            with self.lock:
                if len(self.plans) >= STEPS_KEPT:
                    self.plans.clear()
                self.plans[plan_key] = plan
        if isinstance(plan, str):
            self.stats.fell_back[name] = plan
            return plan
        static = dict(static)
        try:
            if not subject_personal:
                static["subject"] = compiled_string(env, subject).render(static).strip()
            if not preheader_personal:
                static["preheader"] = compiled_string(env, preheader).render(static).strip()
        except Exception as exc:    # the per-person way raises it, naming the step (``label``)
            self.stats.fell_back[f"{name} ({label})"] = str(exc)
            return f"{label}: {exc}"
        self.stats.once.add(name)
        self.stats.fell_back.pop(name, None)
        absent = [*personal, *(["subject"] if subject_personal else []),
                  *(["preheader"] if preheader_personal else [])]
        return _Step(name, plan, static, absent, subject_personal, preheader_personal, self)


def _layout(cache, planner, name, tag):
    """The layout's plan, made once for every step with the same per-person names."""
    key = (name, planner.personal)
    found = cache.layouts.get(key)
    if found is None or not all(t.is_up_to_date for t in found.sources.values()):
        found = cache.layouts[key] = planner.rewrite(name, tag=tag, splice={"body"})
    return found


def _uses(env, source, names):
    """Whether the template string ``source`` reads any of ``names``."""
    try:
        return bool(meta.find_undeclared_variables(env.parse(source)) & set(names))
    except Exception:       # it does not parse: it fails the same way per person
        return True


def _cache(env):
    cache = getattr(env, "_drip_render_once", None)
    if cache is None:
        cache = env._drip_render_once = _Cache()
    return cache


@contextmanager
def one_version(env):
    """Within: each step's template files are looked at once, by its first email, rather than
    for every email. The emails of a step rendered once in a batch of a send run then come
    from one version of its templates (an edit saved meanwhile shows from the next batch on,
    as between the worker's runs), and `drip send` no longer pays for a look at every file
    for each email (about a tenth of its CPU). Only an environment that reloads templates
    looks at all (the CLI's; the worker's is frozen); nested, the outer one holds."""
    cache = _cache(env)
    if not env.auto_reload or cache.looked is not None:
        yield
        return
    cache.looked = set()
    try:
        yield
    finally:
        cache.looked = None


def render(env, static, personal, *, template, subject, preheader, label, key):
    """The RenderedEmail for one person, rendered once per step and filled in; None when this
    email must go the per-person way (see the module docstring). ``static``: the context every
    email of the step shares, identified by ``key``; ``personal``: this person's part."""
    cache = _cache(env)
    counts = cache.stats
    step = cache.step(env, key, static, personal, template, subject, preheader, label)
    if isinstance(step, str):
        return _per_person(counts, "the template cannot be rendered once")
    context = {**step.plan.globals, **step.static, **personal}
    try:
        if step.subject_personal:
            context["subject"] = _shared_render(compiled_string(env, subject), context).strip()
        if step.preheader_personal:
            context["preheader"] = _shared_render(compiled_string(env, preheader), context).strip()
        values, branch = step.plan.values(context)
    except Exception:       # the per-person way raises it properly, naming the template
        return _per_person(counts, "a value could not be evaluated")
    variant = step.variant(branch)
    if isinstance(variant, str):
        return _per_person(counts, "this branch cannot be rendered once")
    for number in variant.holes:
        if not skeleton.plain(values[number]):
            return _per_person(counts, "a value is not plain text")
    counts.emails_once += 1
    html, text = variant.html.fill(values), variant.text.fill(values)
    return RenderedEmail(subject=context["subject"], preheader=context["preheader"], html=html,
                         text=text, encoded_bodies=EncodedBodies(html, text, variant, values))


class EncodedBodies:
    """The quoted-printable bodies of an email rendered once (0: the HTML, 1: the text), each
    encoded from the step's prepared lines when first asked for: a provider that takes the
    HTML and the text as they are (an API) never asks, and never pays for it."""

    __slots__ = ("parts", "values", "done")

    def __init__(self, html, text, variant, values):
        self.parts = ((html, variant.html), (text, variant.text))
        self.values, self.done = values, {}

    def body(self, which, text):
        """Part ``which``'s encoded body while ``text`` is the very string rendered for it;
        None for any other text (a body changed after composing is encoded anew)."""
        rendered, pieces = self.parts[which]
        if text is not rendered:
            return None
        found = self.done.get(which)
        if found is None:
            found = self.done[which] = pieces.encode(self.values)
        return found


def _shared_render(template, context):
    """``template.render(context)`` for a ``context`` that holds the globals already: Jinja
    takes it as it is (a shared context) instead of copying every global into a new dict for
    each person."""
    return template.environment.concat(template.root_render_func(
        template.new_context(context, shared=True)))


def _per_person(counts, reason):
    counts.emails_per_person += 1
    counts.person_reasons[reason] += 1
    return None
