"""The shape of the code (ARCHITECTURE.md): no import cycle, reports apart from training, one source per fact."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

from hf_project import runs

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hf_project"
_spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tests" / "import_cycles.py")
import_cycles = importlib.util.module_from_spec(_spec)
sys.modules["import_cycles"] = import_cycles
_spec.loader.exec_module(import_cycles)


def _sources() -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _code_strings(tree: ast.Module) -> list[ast.Constant]:
    """String constants that are not docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def test_the_package_has_no_import_cycle():
    assert import_cycles.cycles(import_cycles.import_graph()) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    """The check itself can fail: two modules importing each other, one of them lazily, are a cycle."""
    pkg = tmp_path / "hf_project"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from hf_project.b import g\n")
    (pkg / "b.py").write_text("def g():\n    from hf_project import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hf_project import a\n")
    assert import_cycles.cycles(import_cycles.import_graph(tmp_path)) == [["hf_project.a", "hf_project.b"]]


def test_the_library_never_imports_scripts_tests_or_benchmarks():
    for tree in _sources().values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("scripts", "tests", "benchmarks") for n in names)


def test_reports_never_reach_training_or_the_alias_table():
    graph = import_cycles.import_graph()
    reports = [m for m in graph if m in ("hf_project.compare", "hf_project.report")
               or m.startswith(("hf_project.paper", "hf_project.video"))]
    assert "hf_project.compare" in reports
    for module in reports:
        reached = _reachable(graph, module)
        assert not reached & {"hf_project.training", "hf_project.models.registry", "hf_project.search"}, module


RUN_FILE_NAMES = {value for name, value in vars(runs).items() if name.endswith(("_FILE", "_DIR", "_FIGURE"))
                  and isinstance(value, str)}


# The same words naming other things: the cache's converted checkpoints, a builtin data set's own manifest, the
# default search space configs/search.yaml, transformers' name of its TensorBoard integration (--report_to) and the
# project's own README in a submission.
NOT_RUN_FILES = {("hf_project/models/offline.py", "checkpoints"), ("hf_project/data/builtin.py", "manifest.json"),
                 ("hf_project/search.py", "search.yaml"), ("hf_project/config.py", "tensorboard"),
                 ("hf_project/paper/package.py", "README.md")}


def test_run_file_names_are_written_once():
    assert {"config.yaml", "metrics.json", "status", "predictions_test.csv", "model", "trials.csv"} <= RUN_FILE_NAMES
    found = [(path, node.lineno, node.value) for path, tree in _sources().items() if path != "hf_project/runs.py"
             for node in _code_strings(tree) if node.value in RUN_FILE_NAMES - {"model", "figures", "status"}
             and (path, node.value) not in NOT_RUN_FILES]
    assert found == []


@pytest.mark.parametrize("fact, allowed", [
    ("os.replace", {"hf_project/runs.py"}),  # atomic writes
    ("_model_mapping", {"hf_project/models/__init__.py"}),  # transformers' private table of supported configs
])
def test_one_home_for_each_fact(fact, allowed):
    owner, attr = fact.rsplit(".", 1) if "." in fact else (None, fact)
    users = {path for path, tree in _sources().items() for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr == attr
             and (owner is None or (isinstance(node.value, ast.Name) and node.value.id == owner))}
    assert users <= allowed
    assert users, f"{fact} is used nowhere: the test checks nothing"


def test_the_default_seed_is_one_constant():
    found = [(path, node.lineno) for path, tree in _sources().items() if path != "hf_project/config.py"
             for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value == 2023]
    assert found == []
