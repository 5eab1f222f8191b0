"""The package's shape: no import circle between its modules, and no module too long to read.

Imports are read from the source (ast), so nothing is imported. The load-time graph holds
module-level statements only (what runs when a module loads; an import inside a function or
under `if TYPE_CHECKING:` does not); a second check counts every import, since two modules
that need each other, however late, are one concept in two homes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "ecs_delivery"
SRC = Path(__file__).resolve().parents[2] / "src"
MAX_LINES = 800
# Modules being split (issue 17): none left.
TOO_LONG_FOR_NOW: set[str] = set()


def _modules(src: Path = SRC) -> dict[str, Path]:
    """Module name -> file, for every module of the package under `src`."""
    modules = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _load_time_imports(body: list[ast.stmt]):
    """Import statements that run when the module loads (not in functions or classes'
    methods, not under TYPE_CHECKING); try/if/with blocks at module level count."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _load_time_imports(node.body)
            yield from _load_time_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _load_time_imports(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _load_time_imports(node.body)


def _targets(module: str, path: Path, node: ast.stmt, known: set[str]) -> set[str]:
    """The package modules an import statement loads (a `from pkg import name` loads
    pkg.name when that is a module, and pkg's `__init__` either way)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        assert isinstance(node, ast.ImportFrom)
        base = node.module or ""
        if node.level:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    found = set()
    for name in names:
        # Importing a.b.c loads a, a.b and a.b.c: each package __init__ on the way runs.
        parts = name.split(".")
        found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & known
    # Except the packages holding `module`: they are loading already when it loads.
    parts = module.split(".")
    return found - {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def import_graph(src: Path = SRC, every_import: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it loads when it loads (`every_import`: or ever)."""
    modules = _modules(src)
    known = set(modules)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[module] = set()
        nodes = (
            [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
            if every_import
            else _load_time_imports(tree.body)
        )
        for node in nodes:
            graph[module] |= _targets(module, path, node, known)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first, deterministic order)."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_stack:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in done and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit(start)):
            return cycle
    return None


def _graph_of(sources: dict[str, str], tmp_path: Path) -> dict[str, set[str]]:
    """The import graph of a throw-away package, to check the walker itself."""
    for rel, text in sources.items():
        file = tmp_path / PACKAGE / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    return import_graph(tmp_path)


def test_the_package_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import circle: {' -> '.join(cycle)}"


def test_no_circle_hides_behind_a_lazy_or_type_checking_import():
    """Issue 17: config <-> edge_config and access_logs <-> artifacts closed their circles
    through a function-level import and a TYPE_CHECKING one: two modules that need each
    other are one concept in two homes."""
    cycle = find_cycle(import_graph(every_import=True))
    assert cycle is None, f"import circle (counting lazy imports): {' -> '.join(cycle)}"


@pytest.mark.parametrize(
    "a_imports",
    [
        "from ecs_delivery.b import thing\n",
        "from . import b\n",
        "from .b import thing\n",
        "import ecs_delivery.b\n",
        "try:\n    from ecs_delivery import b\nexcept ImportError:\n    b = None\n",
    ],
)
def test_the_walker_finds_a_circle_through_each_import_form(tmp_path, a_imports):
    graph = _graph_of(
        {
            "__init__.py": "",
            "a.py": a_imports,
            "b.py": "from ecs_delivery.a import other\n",
        },
        tmp_path,
    )
    assert find_cycle(graph) == ["ecs_delivery.a", "ecs_delivery.b", "ecs_delivery.a"]


def test_the_walker_finds_a_circle_through_a_package_init(tmp_path):
    graph = _graph_of(
        {
            "__init__.py": "",
            "pkg/__init__.py": "from .models import M\n",
            "pkg/models.py": "from ..other import x\n",
            "other.py": "from ecs_delivery.pkg import M\n",
        },
        tmp_path,
    )
    assert find_cycle(graph) == [
        "ecs_delivery.other",
        "ecs_delivery.pkg",
        "ecs_delivery.pkg.models",
        "ecs_delivery.other",
    ]


def test_a_module_importing_a_sibling_through_its_package_is_no_circle(tmp_path):
    graph = _graph_of(
        {
            "__init__.py": "",
            "pkg/__init__.py": "from ecs_delivery.pkg.b import B\n",
            "pkg/a.py": "A = 1\n",
            "pkg/b.py": "from ecs_delivery.pkg import a\nfrom ecs_delivery.pkg.a import A\n",
        },
        tmp_path,
    )
    assert graph["ecs_delivery.pkg.b"] == {"ecs_delivery.pkg.a"}
    assert find_cycle(graph) is None


def test_lazy_and_type_checking_imports_are_not_a_load_time_circle(tmp_path):
    graph = _graph_of(
        {
            "__init__.py": "",
            "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ecs_delivery.b import B\n",
            "b.py": "def f():\n    from ecs_delivery.a import A\n",
        },
        tmp_path,
    )
    assert graph["ecs_delivery.a"] == set() and graph["ecs_delivery.b"] == set()
    assert find_cycle(graph) is None
    every = import_graph(tmp_path, every_import=True)
    assert find_cycle(every) == ["ecs_delivery.a", "ecs_delivery.b", "ecs_delivery.a"]


def test_no_module_is_longer_than_800_lines():
    lengths = {m: len(p.read_text().splitlines()) for m, p in _modules().items()}
    too_long = sorted(
        f"{m} ({n} lines)"
        for m, n in lengths.items()
        if n > MAX_LINES and m not in TOO_LONG_FOR_NOW
    )
    assert not too_long, f"over {MAX_LINES} lines, split by job: {', '.join(too_long)}"
    # An allow-list entry that is short again (or gone) must leave the list.
    stale = sorted(m for m in TOO_LONG_FOR_NOW if lengths.get(m, 0) <= MAX_LINES)
    assert not stale, f"no longer over {MAX_LINES} lines, remove from TOO_LONG_FOR_NOW: {stale}"
