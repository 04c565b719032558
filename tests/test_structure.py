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
