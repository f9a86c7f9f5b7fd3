"""The package's import graph: every arrow points down the layers, and no module imports itself back.

Layers, lowest first (docs/architecture.md draws them): the foundation (``riskaudit``, ``errors``,
``numbers``, ``resources``), ``models``, ``inputs``, ``analysis``, ``probes``, ``zoo``, ``reporting``, ``run``, ``cli``.
A module may import its own layer and the layers below it; within a layer the imports form no circle. Every
import counts — module level, inside a function, under ``TYPE_CHECKING`` — because each is a dependency a
reader has to follow. Run alone: ``python -m pytest tests/test_layers.py -q``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "riskaudit"
LAYERS = ["foundation", "models", "inputs", "analysis", "probes", "zoo", "reporting", "run", "cli"]
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in LAYERS:
        return parts[1]
    if len(parts) == 1 or parts[1] in {"errors", "numbers", "resources", "__main__"}:
        return "cli" if parts[-1] == "__main__" else "foundation"
    raise AssertionError(f"{module} belongs to no layer: put it in one of {LAYERS}")


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The riskaudit modules ``module`` imports (``from pkg import mod`` resolves to the module)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("riskaudit"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("riskaudit"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: {d for d in _imports(p, m, known) if d in known} for m, p in mods.items()}


def test_every_import_points_down_or_sideways() -> None:
    upward = [
        f"{m} ({_layer(m)}) imports {d} ({_layer(d)})"
        for m, deps in _graph().items()
        for d in sorted(deps)
        if d != "riskaudit" and LAYERS.index(_layer(d)) > LAYERS.index(_layer(m))
    ]
    assert not upward, "imports pointing up a layer:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    graph = _graph()
    # a package's __init__ importing its own modules is not a circle a reader has to untangle
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("layer", LAYERS[1:])
def test_each_layer_says_what_it_owns(layer: str) -> None:
    init = PACKAGE / layer / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 20, f"{init}: a paragraph on what the layer owns and may import"


def test_no_module_over_500_lines() -> None:
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split by concern): {long}"
