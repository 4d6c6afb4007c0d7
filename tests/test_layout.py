"""The package's layout rules (README, "Layout"): modules small enough to read, and no
module reaching into another one's private names."""

import ast
from pathlib import Path

import pytest

import minideconv

PACKAGE = Path(minideconv.__file__).parent
README = PACKAGE.parent / "README.md"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 450   # issue 15: "no module over about 450 lines"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _internal_module(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").split(".")[0] == "minideconv"


def private_names_used_across_modules(source: str):
    """Each ``from <minideconv module> import _name`` and each ``alias._name`` where
    ``alias`` is a minideconv module imported here, as (line, text)."""
    tree = ast.parse(source)
    module_aliases, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _internal_module(node):
            private_parts = [part for part in (node.module or "").split(".") if _is_private(part)]
            if private_parts:
                found.append((node.lineno, f"from {'.'.join(private_parts)}"))
            for alias in node.names:
                if _is_private(alias.name):
                    found.append((node.lineno, f"import {alias.name}"))
                # `from . import ops`, `from .. import geometry`: names that are modules
                module_aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "minideconv":
                    module_aliases.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _is_private(node.attr)
                and isinstance(node.value, ast.Name) and node.value.id in module_aliases):
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
    return sorted(found)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_is_used_across_modules(path):
    assert private_names_used_across_modules(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_is_small_enough_to_read(path):
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert n_lines <= MAX_LINES, f"{path.name}: {n_lines} lines; split it along a seam"


def test_the_private_name_check_finds_what_it_should():
    # the check itself could pass vacuously: every pattern it must catch, and what it must not
    caught = private_names_used_across_modules(
        "from .shapes import _helper\n"
        "from .. import ops\n"
        "import minideconv.visualize as vis\n"
        "ops._c(1)\n"
        "vis._seed\n"
        "from ._hidden import public\n")
    assert [text for _, text in caught] == ["import _helper", "ops._c", "vis._seed",
                                            "from _hidden"]
    allowed = ("from numpy import _globals\nimport torch\ntorch._C\n"
               "from .ops import __all__\nself._cache = 1\n")
    assert private_names_used_across_modules(allowed) == []


def readme_layout() -> str:
    """The README's "Layout" tree: from its ``minideconv/`` line to the closing fence."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\nminideconv/\n", text.index("## Layout"))
    return text[start:text.index("```", start)]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_has_its_line_in_the_readme_layout(path):
    # a student finds a module from the layout alone (issue 15, point 10)
    words = readme_layout().replace(",", " ").split()
    assert path.name in words, f"{path.relative_to(PACKAGE)} is not in README.md's Layout"
