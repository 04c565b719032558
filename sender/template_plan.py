"""Which parts of an email template depend on the person, read from its Jinja syntax tree.

``Planner.rewrite(name)`` gives the template with every per-person part replaced:

* an output of a per-person value (``{{ subscriber.name }}``, ``{{ (first_name or "") |
  trim or "there" }}``) becomes a *hole*: a marker in the rendered text, filled in per person
  with the value of the same expression;
* a condition on a per-person value (``{% if stage == "pregnant" %}``, an ``elif`` chain)
  becomes a *key*: the branch taken is looked up per person, and the step is rendered once
  per branch combination met;
* a template-level ``{% set %}`` and the arguments of an imported macro are substituted
  into the expressions that use them (the macro's body is inlined where it is called with a
  per-person argument).

Anything else that touches a per-person value (a loop over one, a helper call with one, a
filter or test we cannot vouch for) raises ``NotFillable`` with the reason, as does an
include, an import with context or template inheritance (the other template sees every
value), and the step is rendered per person as before. Holes and keys are evaluated by
Jinja itself (``evaluator``), with the same filters and the same autoescaping, so only the
way a value gets into the page is ours (``skeleton``).
"""

from __future__ import annotations

import copy
from collections import Counter

import jinja2
from jinja2 import meta, nodes
from jinja2.visitor import NodeTransformer

# The marker of hole N in the rendered template: MARK_OPEN N PROBE MARK_CLOSE. The probe
# holds the characters each later stage may treat specially, so what a stage made of it
# says where the hole landed (HTML text or attribute, Markdown text or a link's address).
# Its inner space ends an unquoted attribute, as a value's space would: a hole there breaks
# its marker, and the step goes the per-person way.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
LINK_OPEN, LINK_CLOSE = "\ue002", "\ue003"
PROBE = "&\"'<> _*"
KEY_PREFIX = "_drip_key_"
HOLE_PREFIX = "_drip_hole_"

# Jinja's own filters and tests that compute a value from their arguments and nothing else.
PURE_FILTERS = frozenset({
    "abs", "capitalize", "center", "count", "d", "default", "dictsort", "first", "float",
    "indent", "int", "items", "join", "last", "length", "list", "lower", "max", "min",
    "replace", "reverse", "round", "slice", "sort", "string", "striptags", "sum", "title",
    "trim", "truncate", "unique", "upper", "urlencode", "wordcount", "wordwrap"})
PURE_TESTS = frozenset({
    "boolean", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "float",
    "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt",
    "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "true",
    "undefined", "upper"})
PURE_METHODS = frozenset({"get", "lower", "upper", "strip", "lstrip", "rstrip", "title",
                          "capitalize", "startswith", "endswith", "replace", "split"})
_VALUE_NODES = (nodes.Const, nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Tuple, nodes.List,
                nodes.Dict, nodes.Pair, nodes.Keyword, nodes.CondExpr, nodes.Concat,
                nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos,
                nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow)
_WHAT = {nodes.For: "a loop", nodes.Include: "an include (it sees every value)",
         nodes.Macro: "a macro defined in the template", nodes.CallBlock: "a call block",
         nodes.FilterBlock: "a filter block", nodes.With: "a with block",
         nodes.Extends: "template inheritance", nodes.Block: "a block",
         nodes.AssignBlock: "a set block"}


class NotFillable(Exception):
    """This template cannot be rendered once for everyone; the message says why."""


def marker(hole):
    return f"{MARK_OPEN}{hole}{PROBE}{MARK_CLOSE}"


def _autoescape(env, name):
    return env.autoescape(name) if callable(env.autoescape) else bool(env.autoescape)


def _names(node):
    return {n.name for n in node.find_all(nodes.Name) if n.ctx == "load"} | (
        {node.name} if isinstance(node, nodes.Name) and node.ctx == "load" else set())


def _describe(node):
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_describe(node.node)}.{node.attr}"
    return type(node).__name__


def _copy(node, env):
    return copy.deepcopy(node, {id(env): env})


class _Substitute(NodeTransformer):
    def __init__(self, mapping, env):
        self.mapping, self.env = mapping, env

    def visit_Name(self, node):
        if node.ctx == "load" and node.name in self.mapping:
            return _copy(self.mapping[node.name], self.env)
        return node


class _Scope:
    def __init__(self, subst=None, bound=(), top=False, inlined=False):
        self.subst = dict(subst or {})     # name -> expression it stands for
        self.bound = set(bound)            # names that exist only through substitution
        self.top, self.inlined = top, inlined

    def inner(self):
        return _Scope(self.subst, self.bound, top=False, inlined=self.inlined)


class Plan:
    """One template rewritten: ``template`` (compiled) renders the skeleton; ``holes`` are
    (id, expression, autoescape), ``keys`` (id, tests, autoescape); ``sources`` maps each
    template name read (the template and those it imports) to its Template object."""

    def __init__(self, template, holes, keys, sources):
        self.template, self.holes, self.keys, self.sources = template, holes, keys, sources


class Planner:
    """Rewrites templates (see the module docstring).

    ``personal``: the context names that differ per person; ``context``: every name the
    render context holds (so a bare name is known to come from it, not from a global);
    ``trees``: parsed templates kept between calls ({Template: syntax tree}, read only)."""

    def __init__(self, env, *, personal, context, trees=None):
        self.env = env
        self.personal = frozenset(personal)
        self.context = frozenset(context)
        self.trees = {} if trees is None else trees

    def template(self, name, sources):
        template = self.env.get_template(name)
        source = getattr(template, "drip_source", None)
        if source is None:
            raise NotFillable(f"the source of {name} is not known")
        sources[name] = template
        tree = self.trees.get(template)
        if tree is None:
            tree = self.trees[template] = self.env.parse(source, name, template.filename)
        for other in meta.find_referenced_templates(tree):     # what it imports, watched too
            if other is not None and other not in sources:
                self.template(other, sources)
        return template, tree

    def rewrite(self, name, *, tag, splice=()):
        """A Plan for the template ``name``; its holes and keys are numbered ``tag`` 0, 1...
        ``splice``: names the caller passes already rendered (``body`` in the layouts),
        output whole only."""
        sources = {}
        template, tree = self.template(name, sources)
        walk = _Walk(self, name, tree, tag=tag, splice=frozenset(splice), sources=sources)
        body = walk.statements(tree.body, _Scope(top=True))
        new = nodes.Template(body, lineno=1)
        new.set_environment(self.env)
        new.set_lineno(1)
        code = self.env.compile(new, name, template.filename)
        compiled = self.env.template_class.from_code(self.env, code, self.env.make_globals(None))
        return Plan(compiled, walk.holes, walk.keys, sources)


def evaluator(env, plans):
    """One template that sets ``_drip_hole_ID`` and ``_drip_key_ID`` for a person's context:
    each hole's value, each key's branch (the number of the first true test, or the count of
    tests for the else), each under the autoescaping of its template."""
    items = [(f"{HOLE_PREFIX}{hid}", expr, escape) for plan in plans for hid, expr, escape in plan.holes]
    for plan in plans:
        for kid, tests, escape in plan.keys:
            chain = nodes.Const(len(tests))
            for index in reversed(range(len(tests))):
                chain = nodes.CondExpr(_copy(tests[index], env), nodes.Const(index), chain)
            items.append((f"{KEY_PREFIX}{kid}", chain, escape))
    body = []
    for escape in (True, False):
        group = [(name, expr) for name, expr, e in items if e == escape]
        if group:
            body.append(nodes.EvalContextModifier([nodes.Keyword("autoescape", nodes.Const(escape))]))
            body += [nodes.Assign(nodes.Name(name, "store"), _copy(expr, env)) for name, expr in group]
    new = nodes.Template(body, lineno=1)
    new.set_environment(env)
    new.set_lineno(1)
    return env.template_class.from_code(env, env.compile(new, "<drip-values>"), env.make_globals(None))


class _Walk:
    """One template's statements, rewritten (see the module docstring)."""

    def __init__(self, planner, name, tree, *, tag, splice, sources):
        self.planner, self.env, self.name = planner, planner.env, name
        self.autoescape = _autoescape(self.env, name)
        self.tag, self.splice, self.sources = tag, splice, sources
        self.holes, self.keys, self._hole_ids = [], [], {}
        self.imports = {}          # alias -> template name  ({% import "x" as m %})
        self.from_imports = {}     # local name -> (template name, macro name)
        self.assigned = Counter()
        for node in tree.find_all((nodes.Assign, nodes.AssignBlock, nodes.For, nodes.Macro,
                                   nodes.Import, nodes.FromImport, nodes.With)):
            for store in node.find_all(nodes.Name):
                if store.ctx == "store":
                    self.assigned[store.name] += 1
            if isinstance(node, nodes.Macro):
                self.assigned[node.name] += 1
            elif isinstance(node, nodes.Import):
                self.assigned[node.target] += 1
            elif isinstance(node, nodes.FromImport):
                for item in node.names:
                    self.assigned[item[1] if isinstance(item, tuple) else item] += 1

    # --- what touches a per-person value -------------------------------------------------------
    def sub(self, expr, scope):
        if not scope.subst:
            return expr
        return _Substitute(scope.subst, self.env).visit(_copy(expr, self.env))

    def tainted(self, expr):
        return bool(_names(expr) & (self.planner.personal | self.splice))

    def require_reproducible(self, expr, what):
        for node in [expr, *expr.find_all(nodes.Node)]:
            if isinstance(node, nodes.Name):
                known = node.name in self.planner.context or node.name in self.env.globals
                if node.ctx != "load" or not known or self.assigned[node.name] \
                        or node.name in self.splice:
                    raise NotFillable(f"{what} uses {node.name!r}, which is not a plain value")
            elif isinstance(node, nodes.Filter):
                if node.name not in PURE_FILTERS or node.dyn_args or node.dyn_kwargs or \
                        self.env.filters.get(node.name) is not jinja2.filters.FILTERS.get(node.name):
                    raise NotFillable(f"{what} uses the filter {node.name!r}")
            elif isinstance(node, nodes.Test):
                if node.name not in PURE_TESTS or node.dyn_args or node.dyn_kwargs or \
                        self.env.tests.get(node.name) is not jinja2.tests.TESTS.get(node.name):
                    raise NotFillable(f"{what} uses the test {node.name!r}")
            elif isinstance(node, nodes.Call):
                if not (isinstance(node.node, nodes.Getattr) and node.node.attr in PURE_METHODS) \
                        or node.dyn_args or node.dyn_kwargs:
                    raise NotFillable(f"{what} calls {_describe(node.node)}()")
            elif not isinstance(node, _VALUE_NODES):
                raise NotFillable(f"{what} uses {type(node).__name__}")

    def require_untouched(self, node, scope):
        if _names(node) & (self.planner.personal | self.splice | scope.bound):
            raise NotFillable(f"a per-person value in {_WHAT.get(type(node), type(node).__name__)}")

    def hole(self, expr):
        """The id of the hole for ``expr`` (the same expression, the same hole)."""
        dump = expr.dump()
        if dump not in self._hole_ids:
            self._hole_ids[dump] = f"{self.tag}{len(self.holes)}"
            self.holes.append((self._hole_ids[dump], expr, self.autoescape))
        return self._hole_ids[dump]

    # --- statements --------------------------------------------------------------------------
    def statements(self, body, scope):
        out = []
        for node in body:
            if isinstance(node, nodes.Output):
                out += self.output(node, scope)
            elif isinstance(node, nodes.If):
                out.append(self.branch(node, scope))
            elif isinstance(node, nodes.Assign):
                out += self.assign(node, scope)
            elif isinstance(node, nodes.Include) or \
                    isinstance(node, (nodes.Import, nodes.FromImport)) and node.with_context:
                raise NotFillable("it includes another template (or imports one with the context), "
                                  "which sees every per-person value")
            elif isinstance(node, (nodes.Import, nodes.FromImport)):
                self.remember_import(node)
                out.append(node)
            elif isinstance(node, nodes.Extends):
                raise NotFillable("it extends another template, which sees every per-person value")
            else:
                self.require_untouched(node, scope)
                out.append(node)
        return out

    def output(self, node, scope):
        out, pending = [], []
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                pending.append(child)
                continue
            expr = self.sub(child, scope)
            if not self.tainted(expr) or (isinstance(expr, nodes.Name) and expr.name in self.splice):
                pending.append(expr)
                continue
            macro = self.macro_for(expr)
            if macro is not None:
                if pending:
                    out.append(nodes.Output(pending))
                    pending = []
                out += self.inline(macro, expr)
                continue
            self.require_reproducible(expr, "an output")
            pending.append(nodes.Const(marker(self.hole(expr))))
        if pending:
            out.append(nodes.Output(pending))
        return out

    def branch(self, node, scope):
        arms = [node, *node.elif_]
        tests = [self.sub(arm.test, scope) for arm in arms]
        inner = scope.inner()
        bodies = [self.statements(arm.body, inner) for arm in arms]
        otherwise = self.statements(node.else_, inner)
        if not any(self.tainted(t) for t in tests):
            return nodes.If(tests[0], bodies[0],
                            [nodes.If(t, b, [], []) for t, b in zip(tests[1:], bodies[1:], strict=True)],
                            otherwise)
        for test in tests:
            self.require_reproducible(test, "a condition")
        self.keys.append((f"{self.tag}{len(self.keys)}", tests, self.autoescape))
        key = nodes.Name(f"{KEY_PREFIX}{self.keys[-1][0]}", "load")

        def taken(index):
            return nodes.Compare(_copy(key, self.env), [nodes.Operand("eq", nodes.Const(index))])

        return nodes.If(taken(0), bodies[0],
                        [nodes.If(taken(i), b, [], []) for i, b in enumerate(bodies[1:], 1)],
                        otherwise)

    def assign(self, node, scope):
        value = self.sub(node.node, scope)
        target = node.target
        if isinstance(target, nodes.Name) and target.name in (self.planner.personal | self.splice):
            raise NotFillable(f"it assigns {target.name!r}")
        if not self.tainted(value):
            if isinstance(target, nodes.Name) and target.name in scope.bound:
                raise NotFillable(f"it assigns {target.name!r} again")
            if scope.inlined:
                raise NotFillable("a macro called with a per-person value sets a variable")
            return [nodes.Assign(target, value)]
        if not (scope.top and isinstance(target, nodes.Name)) or self.assigned[target.name] > 1:
            raise NotFillable("a per-person value is set inside a block or more than once")
        scope.subst[target.name] = value
        scope.bound.add(target.name)
        return []          # every use is substituted; the skeleton has no per-person values

    # --- macros --------------------------------------------------------------------------------
    def remember_import(self, node):
        if not isinstance(node.template, nodes.Const):
            raise NotFillable("it imports a template whose name is computed")
        self.planner.template(node.template.value, self.sources)     # watched for changes
        if isinstance(node, nodes.Import):
            self.imports[node.target] = (node.template.value, node.with_context)
        else:
            for item in node.names:
                name, alias = item if isinstance(item, tuple) else (item, item)
                self.from_imports[alias] = (node.template.value, name, node.with_context)

    def macro_for(self, expr):
        """(template name, Macro node) when ``expr`` calls an imported macro, else None."""
        if not isinstance(expr, nodes.Call):
            return None
        callee = expr.node
        found = None
        if isinstance(callee, nodes.Getattr) and isinstance(callee.node, nodes.Name) \
                and callee.node.name in self.imports and self.assigned[callee.node.name] == 1:
            template, with_context = self.imports[callee.node.name]
            found = (template, callee.attr, with_context)
        elif isinstance(callee, nodes.Name) and callee.name in self.from_imports \
                and self.assigned[callee.name] == 1:
            found = self.from_imports[callee.name]
        if found is None:
            return None
        template, macro_name, with_context = found
        if with_context:
            raise NotFillable(f"it imports {template} with context")
        _, tree = self.planner.template(template, self.sources)
        module_names = set()
        macro = None
        for node in tree.body:
            if isinstance(node, nodes.Macro):
                module_names.add(node.name)
                if node.name == macro_name:
                    macro = node
            for store in node.find_all(nodes.Name):
                if store.ctx == "store":
                    module_names.add(store.name)
        if macro is None:
            raise NotFillable(f"the macro {macro_name!r} is not at the top of {template}")
        if _autoescape(self.env, template) != self.autoescape:
            raise NotFillable(f"{template} escapes differently from {self.name}")
        return template, macro, module_names

    def inline(self, found, call):
        template, macro, module_names = found
        label = f"the macro {macro.name!r} of {template}"
        if call.dyn_args or call.dyn_kwargs:
            raise NotFillable(f"{label} is called with *args or **kwargs")
        params = [arg.name for arg in macro.args]
        if len(call.args) > len(params):
            raise NotFillable(f"{label} is called with more arguments than it takes")
        bound = dict(zip(params, call.args, strict=False))
        for keyword in call.kwargs:
            if keyword.key not in params or keyword.key in bound:
                raise NotFillable(f"{label} is called with {keyword.key}=")
            bound[keyword.key] = keyword.value
        defaults = dict(zip(params[len(params) - len(macro.defaults):], macro.defaults, strict=True))
        for param in params:
            if param not in bound:
                if not isinstance(defaults.get(param), nodes.Const):
                    raise NotFillable(f"{label} is called without {param}")
                bound[param] = defaults[param]
        free = set().union(*(_names(n) for n in macro.body)) - set(params)
        for name in free:
            if name not in self.env.globals or name in module_names or name in self.planner.context:
                raise NotFillable(f"{label} uses {name!r}, which it cannot see once inlined")
        body = [_copy(node, self.env) for node in macro.body]
        return self.statements(body, _Scope(bound, bound=params, inlined=True))
