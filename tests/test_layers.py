"""The layers of docs/architecture.md, checked on the import graph built from the source (ast), lazy
imports inside functions included: the faces never import each other, command modules never import each
other, the core never imports the engine, the store, the use cases or a face, and the packages import each
other without cycles."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "tryouts"

#: the core: types, providers, measuring, pricing, scoring, catalog and the pure helpers
CORE = {"types", "errors", "providers", "measure", "pricing", "tokens", "scoring", "catalog", "memory", "keys",
        "redact", "gguf_meta", "stats", "labels", "config", "paths", "_version", "_proc", "suite"}
#: what the core never imports
ABOVE_CORE = {"engine", "store", "usecases", "tasks", "report", "advisor", "demo", "cli", "web", "load"}
#: modules of cli/ that every command may import; every other module of cli/ is one command
CLI_SHARED = {"tryouts.cli", "tryouts.cli.common", "tryouts.cli.render", "tryouts.cli.views"}
#: the one import from a face into the other: `tryouts ui` starts the dashboard through its package
LAUNCHER = ("tryouts.cli.ui", "tryouts.web")
#: cycles between packages that are still to be untangled (issue 13): none may be added
KNOWN_CYCLES: list[set[str]] = []  # catalog <-> memory is untangled: memory.resolve takes the catalog lookup


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str) -> bool:
    base = SRC / name.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def import_graph() -> dict[str, set[str]]:
    """Module -> the tryouts modules it imports (``from pkg import name`` counts as pkg.name when that is a
    module, else as pkg)."""
    graph: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "tryouts"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != "tryouts":
                    continue
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    targets.add(full if _exists(full) else source)
        graph[module] = targets - {module}
    return graph


def area(module: str) -> str:
    """The top-level package or module under tryouts (``tryouts`` itself for the package's __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tryouts"


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        a = area(module)
        for target in sorted(targets):
            b = area(target)
            if a == "web" and b == "cli":
                found.append(f"the dashboard imports the CLI: {module} -> {target}")
            if a == "cli" and b == "web" and (module, target) != LAUNCHER:
                found.append(f"the CLI imports the dashboard: {module} -> {target}")
            if (a == "cli" and b == "cli" and module not in CLI_SHARED and target not in CLI_SHARED
                    and module != target):
                found.append(f"a command imports another command: {module} -> {target}")
            if a in CORE and b in ABOVE_CORE:
                found.append(f"the core imports {b}: {module} -> {target}")
            if a == "usecases" and b in ("cli", "web"):
                found.append(f"a use case imports a face: {module} -> {target}")
            if a in ("engine", "store", "load") and b in ("usecases", "cli", "web", "tasks", "report"):
                found.append(f"{a} imports {b}: {module} -> {target}")
    return found


def package_cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected sets of two or more packages (Tarjan's algorithm over the package graph)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            if area(module) != area(target):
                edges[area(module)].add(area(target))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.add(w)
                if w == v:
                    break
            if len(members) > 1:
                cycles.append(members)

    for v in list(edges):
        if v not in index:
            visit(v)
    return cycles


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "tryouts.engine.run" in graph["tryouts.cli.run"] or "tryouts.usecases.suites" in graph["tryouts.cli.run"]
    assert "tryouts.web" in graph["tryouts.cli.ui"]  # an import inside a function
    assert "tryouts.redact" in graph["tryouts.store"]


def test_the_layers_hold():
    assert violations(import_graph()) == []


def test_the_rules_catch_what_they_forbid():
    """The checker flags each kind of crossing (so a passing run means something)."""
    planted = {
        "tryouts.web.api": {"tryouts.cli.run"},
        "tryouts.cli.run": {"tryouts.cli.compare", "tryouts.web.live"},
        "tryouts.providers.http": {"tryouts.engine.run"},
        "tryouts.scoring.judge": {"tryouts.store"},
        "tryouts.usecases.suites": {"tryouts.cli.common"},
        "tryouts.engine.run": {"tryouts.usecases.suites"},
    }
    assert len(violations(planted)) == 7
    assert package_cycles({"tryouts.a.x": {"tryouts.b.y"}, "tryouts.b.y": {"tryouts.a.z"}}) == [{"a", "b"}]


def test_packages_import_each_other_without_new_cycles():
    cycles = package_cycles(import_graph())
    assert [c for c in cycles if c not in KNOWN_CYCLES] == []


def test_modules_stay_under_600_lines():
    long = {str(p.relative_to(SRC)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) >= 600}
    assert long == {}, f"split these modules (the limit is 600 lines): {long}"
