#!/usr/bin/env python
"""The import graph of hf_project and its cycles (`make lint` runs this; tests/test_architecture.py asserts on it).

Every import counts, at module level or inside a function (a lazy import only postpones a cycle), except those under
`if TYPE_CHECKING:`, which never run. Importing `hf_project.a.b` also runs the package `hf_project.a` first, so that
counts as an import of the package too.

    python tests/import_cycles.py            # exit 1 and one line per cycle when there is any
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "hf_project"


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """hf_project's modules by dotted name (a package by its own name, for its __init__.py)."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(path: Path, module: str, is_package: bool) -> set[str]:
    """Dotted names this file imports (absolute, relative ones resolved), outside `if TYPE_CHECKING:` blocks."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return names


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the hf_project modules it imports (packages included, itself and `hf_project` left out)."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for imported in imported_names(path, name, path.name == "__init__.py"):
            parts = imported.split(".")
            for i in range(2, len(parts) + 1):  # hf_project.a.b runs hf_project.a, then hf_project.a.b
                target = ".".join(parts[:i])
                if target in modules and target != name and not name.startswith(target + "."):
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted; the list sorted too."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found)


def main() -> int:
    found = cycles(import_graph())
    for component in found:
        print("import cycle: " + " <-> ".join(component))
    if found:
        print(f"{len(found)} import cycle(s) in {PACKAGE}: move the shared code into a module both can import")
        return 1
    print(f"no import cycle in {PACKAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
