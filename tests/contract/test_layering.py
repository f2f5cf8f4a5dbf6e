"""The dependency rules of the package, checked: import-linter's contracts, no cycles, no private imports.

The contracts live in pyproject.toml (``[tool.importlinter]``); ``./run test``
runs ``lint-imports`` too. These tests also prove the check can fail: a copy
of the package with one deliberately wrong import must break a contract.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "mlscale"
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, *, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _copy_tree(tmp_path: Path) -> Path:
    shutil.copytree(SRC, tmp_path / "mlscale", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path / "mlscale"


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT, pythonpath=ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("serve/_models.py", "import mlscale.apps.recommend", "No stage imports an application"),
        ("loadtest/runner.py", "import mlscale.serve", "Layers"),
        ("apps/threat/rank.py", "import mlscale._cli.verbs", "Layers"),
        ("registry/_ref.py", "import mlscale.engines", "Layers"),
        ("apps/threat/rank.py", "import mlscale.console", "Layers"),
        ("serve/_app.py", "import mlscale.console", "No stage imports an application"),
        ("deploy/kubernetes.py", "import mlscale.serve", "Layers"),
        ("deploy/kubernetes.py", "import mlscale.apps.threat", "No stage imports an application"),
    ],
)
def test_a_wrong_import_breaks_a_contract(tmp_path: Path, module: str, bad_import: str, contract: str) -> None:
    package = _copy_tree(tmp_path)
    path = package / module
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + f"{bad_import}  # deliberately wrong\n" + rest)
    result = _lint(tmp_path, pythonpath=tmp_path)
    assert result.returncode != 0, result.stdout
    _, _, broken = result.stdout.partition("Broken contracts")
    assert contract in broken, result.stdout


def _graph() -> grimp.ImportGraph:
    """The import graph, where ``from pkg import submodule`` counts as importing the submodule, not ``pkg``.

    (grimp records such an import inside a function as one of the package itself, which would make every
    module a package's ``__init__`` re-exports look like a cycle.)
    """
    graph = grimp.build_graph("mlscale", exclude_type_checking_imports=True)
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            details = graph.get_import_details(importer=importer, imported=imported)
            targets: set[str] = set()
            for detail in details:
                try:
                    node = ast.parse(detail["line_contents"].strip()).body[0]
                except SyntaxError:  # a statement over several lines: keep the edge as grimp has it
                    break
                if not isinstance(node, ast.ImportFrom) or node.module != imported:
                    break
                names = {f"{imported}.{alias.name}" for alias in node.names}
                if not names <= graph.modules:
                    break
                targets |= names
            else:
                if targets:
                    graph.remove_import(importer=importer, imported=imported)
                    for target in targets:
                        graph.add_import(importer=importer, imported=target)
    return graph


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def test_no_import_cycles() -> None:
    # A package's __init__ re-exporting its modules is not a cycle unless a module imports the package back.
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = _graph()
    graph.add_import(importer="mlscale.errors", imported="mlscale.config")
    assert any({"mlscale.config", "mlscale.errors"} <= set(c) for c in _cycles(graph))


def _owner(module: str, name: str | None, root: Path) -> str | None:
    """The package a private part of ``module[.name]`` belongs to, or None when nothing in it is private.

    A private module (``mlscale.serve._http``) belongs to the package holding it; a private name
    (``_check_params`` of ``mlscale.apps.recommend.model``) to the package of the module that defines it.
    """
    parts = module.split(".") + ([name] if name else [])
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            container = parts[:i]
            if root.parent.joinpath(*container).with_suffix(".py").is_file():
                container = container[:-1]
            return ".".join(container) if container else None
    return None


def _private_imports(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        importer = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[tuple[str, str | None]] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [(alias.name, None) for alias in node.names]
            for module, name in targets:
                if not module.startswith("mlscale"):
                    continue
                owner = _owner(module, name, root)
                if owner is not None and not (importer == owner or importer.startswith(owner + ".")):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {module} {name or ''}".strip())
    return found


def test_no_module_imports_a_private_name_of_another_package() -> None:
    assert _private_imports(SRC) == []


def test_the_private_import_check_finds_one(tmp_path: Path) -> None:
    package = _copy_tree(tmp_path)
    (package / "registry" / "bad.py").write_text("from mlscale.serve._http import Server\n")
    assert _private_imports(package) == ["mlscale/registry/bad.py:1: mlscale.serve._http Server"]
