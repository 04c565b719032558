"""The shape of the package: no import cycle anywhere in sender/ (counting the imports made
inside functions too, which only hide a cycle)."""

from __future__ import annotations

import ast

from tests.conftest import REPO


def _modules():
    found = {}
    for path in (REPO / "sender").rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(modules):
    """{module: {sender modules it imports}}, relative and absolute imports resolved."""

    def known(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        uses = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    uses.add(known(f"{target}.{alias.name}"))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sender"):
                uses.add(known(node.module))
            elif isinstance(node, ast.Import):
                uses.update(known(a.name) for a in node.names if a.name.startswith("sender"))
        graph[module] = {u for u in uses if u and u != module}
    return graph


def _cycles(graph):
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                group.append(other)
                if other == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycle_in_sender():
    graph = _imports(_modules())
    assert len(graph) > 50 and graph["sender.dispatch"] >= {"sender.handoff", "sender.recovery"}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# --- the ledger owns every change of a delivery's state ------------------------------------
# The store's methods that write a delivery's state (or its claim): only the ledger calls them.
STATE_WRITERS = {"update_delivery", "cancel_pending", "claim_due", "take_over_stale", "skip_ended",
                 "add_deliveries", "renew_lease", "add_enrolled_deliveries", "update_deliveries"}
# Attributes and keys that hold text for people (a delivery's message, a provider's error).
MESSAGE_TEXT = {"last_error", "error"}


def _ledger_or_store(module):
    return module == "sender.ledger" or module.startswith(("sender.ledger.", "sender.store"))


def _state_writes(tree):
    """Line numbers of calls to a store method that writes a delivery's state (whatever the
    receiver is called; the ledger's own operations of the same name are allowed)."""
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in STATE_WRITERS
                  and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "ledger"))


def _is_message_text(node):
    if isinstance(node, ast.Attribute):
        return node.attr in MESSAGE_TEXT
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and key.value in MESSAGE_TEXT
    return False


def _text_reads(tree):
    """Line numbers where code reads meaning out of message text: a word looked for in it
    (``"x" in row.last_error``), the text compared with a literal (``== "..."``), a string
    method called on it (``.startswith``), a regular expression run over it, or SQL that
    filters on ``last_error``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
                if isinstance(op, ast.In | ast.NotIn) and _is_message_text(right):
                    found.add(node.lineno)
                elif isinstance(op, ast.Eq | ast.NotEq) and any(
                        _is_message_text(a) and isinstance(b, ast.Constant | ast.JoinedStr)
                        and isinstance(getattr(b, "value", ""), str)
                        for a, b in ((left, right), (right, left))):
                    found.add(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and _is_message_text(func.value):
                found.add(node.lineno)
            elif (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                  and func.value.id in ("re", "fnmatch")
                  and any(_is_message_text(a) for a in node.args)):
                found.add(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words = node.value.lower().split()
            if "last_error" in words and {"like", "=", "in", "glob", "~"} & set(words):
                found.add(node.lineno)
    return sorted(found)


def test_only_the_ledger_changes_a_delivery_state():
    writes = {}
    for module, path in _modules().items():
        if not _ledger_or_store(module):
            lines = _state_writes(ast.parse(path.read_text()))
            if lines:
                writes[module] = lines
    assert writes == {}, ("delivery state written outside sender/ledger (call a ledger "
                          f"operation instead): {writes}")
    ledger = [m for m in _modules() if m == "sender.ledger" or m.startswith("sender.ledger.")]
    assert any(_state_writes(ast.parse(_modules()[m].read_text())) for m in ledger)


def test_no_code_reads_meaning_out_of_message_text():
    reads = {}
    for module, path in _modules().items():
        if not module.startswith("sender.store"):     # migrations convert old rows by their text
            lines = _text_reads(ast.parse(path.read_text()))
            if lines:
                reads[module] = lines
    assert reads == {}, f"decide by the reason code, not by the words of a message: {reads}"


def test_the_checks_find_what_they_look_for():
    source = '''
store.update_delivery(1, state="sent")
ledger.take_over_stale(store, then, now)
drip.store.skip_ended(now)
if "unsubscribed" in row.last_error: pass
if row.last_error.startswith("unsubscribed"): pass
if row["error"] == "gone": pass
if re.search("bounce", row.last_error): pass
sql = "SELECT * FROM deliveries WHERE last_error LIKE 'x%'"
if row.last_error is None or error not in report.errors: pass
'''
    tree = ast.parse(source)
    assert _state_writes(tree) == [2, 4]
    assert _text_reads(tree) == [5, 6, 7, 8, 9]
