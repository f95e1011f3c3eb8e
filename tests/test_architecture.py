"""Size limits of the package's code (issue 9): modules, functions, and no grab-bag ``utils`` module."""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reportgen"
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
