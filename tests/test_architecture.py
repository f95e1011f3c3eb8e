"""The package's shape: its layers (import-linter's contracts in pyproject.toml), no import circles, the paths
ARCHITECTURE.md names, and the size limits of modules and functions (no grab-bag ``utils`` module).

Anyone can run the layer check alone: ``lint-imports`` in the repository root; the circles: ``pytest -k circle``.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reportgen"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
FUNCTION_LIMITS = {"pipeline.py::run": 70}  # the stage order reads best in one place
MODULES = sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines from the first decorator to the last line) of every function, nested ones too."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            yield prefix + node.name, node.end_lineno - first + 1
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def test_the_package_has_modules() -> None:
    assert len(MODULES) > 10 and PACKAGE / "pipeline.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_is_at_most_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines (at most {MAX_MODULE_LINES})"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_functions_are_at_most_60_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    too_long = [
        f"{name} ({lines} lines)"
        for name, lines in _functions(tree)
        if lines > FUNCTION_LIMITS.get(f"{_name(path)}::{name}", MAX_FUNCTION_LINES)
    ]
    assert not too_long, f"{_name(path)}: over {MAX_FUNCTION_LINES} lines: {', '.join(too_long)}"


def test_no_utils_module() -> None:
    grab_bags = [_name(p) for p in MODULES if p.stem == "utils"] + [
        _name(p) for p in PACKAGE.rglob("utils") if p.is_dir()
    ]
    assert not grab_bags, f"name modules for what they hold, not {grab_bags}"


def test_the_function_counter_sees_methods_nested_functions_and_decorators() -> None:
    source = textwrap.dedent(
        """\
        @dec
        def f():
            def g():
                pass
            return g

        class C:
            async def m(self):
                pass
        """
    )
    assert dict(_functions(ast.parse(source))) == {"f": 5, "f.g": 2, "C.m": 2}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root`` (its copy of pyproject.toml names the contracts)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    linter = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(linter), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_import_contracts_are_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_module_is_in_a_layer() -> None:
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    names = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    outside = [
        _module_name(p)
        for p in MODULES
        if _module_name(p) != "reportgen"
        and not any(_module_name(p) == n or _module_name(p).startswith(n + ".") for n in names)
    ]
    assert not outside, f"modules in no layer of pyproject.toml's layers contract: {outside}"


def test_the_top_level_holds_only_entry_points_and_shared_basics() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == [
        "__init__.py",
        "__main__.py",
        "cli.py",
        "config.py",
        "configfile.py",
        "errors.py",
        "pipeline.py",
        "stages.py",
    ]


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_each_layer_says_what_it_holds_and_may_import(folder: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text(encoding="utf-8"))) or ""
    lines = [line for line in doc.splitlines() if line.strip()]
    assert len(lines) >= 2 and "layer" in lines[0].lower() and lines[1].startswith("May import:"), doc


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        ("data/dataset.py", "from reportgen.render import html  # noqa", "Layers"),
        ("report/audit.py", "from reportgen.compare import gates  # noqa", "Layers"),
        ("narrative/format.py", "import matplotlib  # noqa", "matplotlib only in the figures"),
        ("analysis/metrics.py", "import torch  # noqa", "torch only in the model layer"),
    ],
)
def test_a_planted_crossing_breaks_a_contract(tmp_path: Path, module: str, planted: str, broken: str) -> None:
    shutil.copytree(PACKAGE, tmp_path / "reportgen", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "reportgen" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{planted}\n", encoding="utf-8")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout
    assert re.search(re.escape(broken) + r".* BROKEN", result.stdout), result.stdout


def _import_graph() -> dict[str, set[str]]:
    import grimp

    graph = grimp.build_graph("reportgen", exclude_type_checking_imports=True)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (Tarjan's strongly connected parts)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    edges = {m: {d for d in deps if d.startswith("reportgen")} for m, deps in _import_graph().items()}
    assert _circles(edges) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_path_architecture_md_names_exists() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"(?:reportgen|templates|tests|benchmarks)/[\w/]*[\w.]*\w", text))
    assert len(paths) > 20
    missing = sorted(p for p in paths if "<" not in p and not (ROOT / p).exists())
    assert not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"
