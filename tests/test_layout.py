"""The package's layout rules (docs/layout.md): modules cut by concept and small enough to
read, each named in its package's table, dependencies pointing down, no import cycle, no
module reaching into another one's private names."""

import ast
import io
import tokenize
from collections import Counter
from pathlib import Path

import pytest

import minideconv

PACKAGE = Path(minideconv.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_CODE_LINES = 400      # lines of code: docstrings, comments and blank lines not counted
MAX_TOP_LEVEL = 12        # modules at the top of minideconv/
MAX_SHARED_PREFIX = 5     # modules of one folder whose names share a prefix ("cli_…")
#: the layers, bottom up: a module may import from its own layer and those below it
LAYERS = [
    {"shapes", "checks", "padding", "rules", "dottest", "geometry"},
    {"backends"},
    {"ops"},
    {"compile", "nn", "matrices"},
    {"models", "train", "data", "plots", "visualize", "attribution", "interop"},
    {"cli", "__main__"},
]


def ids(path):
    return str(path.relative_to(PACKAGE))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


NAMES = {module_name(p): p for p in MODULES}


def imported_modules(path: Path):
    """Every minideconv module that ``path`` imports, at the top or inside a function:
    ``from .x import y`` → x (or x.y where that is a module), ``from . import y`` → y."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "minideconv":
                target = node.module
            else:
                continue
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in NAMES
                          else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "minideconv")
    return found - {name}


GRAPH = {name: imported_modules(path) for name, path in NAMES.items()}


def find_cycle(graph):
    """One import cycle of ``graph`` as a list of module names, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def layer_of(name: str) -> int:
    part = name.split(".")[1] if "." in name else "__init__"
    for i, members in enumerate(LAYERS):
        if part in members:
            return i
    raise AssertionError(f"{name}: not in any layer of tests/test_layout.py's LAYERS")


def test_no_import_cycle():
    assert find_cycle(GRAPH) is None, " → ".join(find_cycle(GRAPH))


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("name", sorted(n for n in NAMES if n != "minideconv"))
def test_imports_point_down(name):
    """A module imports only from its own layer and those below: the CLI on top, then the
    methods, then networks, then operators, then backends, then arithmetic and checks."""
    upward = sorted(t for t in GRAPH[name] if t != "minideconv" and layer_of(t) > layer_of(name))
    assert upward == [], f"{name} imports from a layer above it: {upward}"


def test_no_library_module_imports_the_command_line():
    users = sorted(n for n, targets in GRAPH.items()
                   if not n.startswith(("minideconv.cli", "minideconv.__main__"))
                   and any(t.startswith("minideconv.cli") for t in targets))
    assert users == []


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant) and isinstance(
                    body[0].value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE,
                              tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def test_code_lines_count_neither_docstrings_nor_comments():
    source = ('"""A module.\n\nWith a long docstring."""\n\n# a comment\nimport os\n\n\n'
              'def f(x):\n    """f\'s docstring,\n    two lines."""\n    return (x +  # why\n'
              '            1)\n')
    assert code_lines(source) == 4    # import, def, and the two lines of the return


@pytest.mark.parametrize("path", MODULES, ids=ids)
def test_every_module_is_small_enough_to_read(path):
    n = code_lines(path.read_text(encoding="utf-8"))
    assert n <= MAX_CODE_LINES, f"{ids(path)}: {n} lines of code; cut it along a concept"


def test_the_top_level_and_every_folder_stay_small():
    top = [p for p in MODULES if p.parent == PACKAGE]
    assert len(top) <= MAX_TOP_LEVEL, sorted(p.name for p in top)
    for folder in sorted({p.parent for p in MODULES}):
        prefixes = Counter(p.stem.split("_")[0] for p in folder.glob("*.py") if "_" in p.stem
                           and not p.stem.startswith("_"))
        crowded = {prefix: n for prefix, n in prefixes.items() if n > MAX_SHARED_PREFIX}
        assert crowded == {}, f"{ids(folder)}: modules sharing a prefix: {crowded}"


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py"], ids=ids)
def test_every_module_is_named_in_its_package_table(path):
    """A student finds a module from its package's face: ``__init__``'s docstring names
    each of its modules and subpackages as ``name``."""
    face = ast.get_docstring(ast.parse((path.parent / "__init__.py").read_text("utf-8")))
    assert f"``{path.stem}``" in (face or ""), \
        f"{ids(path)} is not named in {ids(path.parent / '__init__.py')}'s docstring"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*/__init__.py")), ids=ids)
def test_every_subpackage_is_named_in_its_parents_table(path):
    folder = path.parent
    face = ast.get_docstring(ast.parse((folder.parent / "__init__.py").read_text("utf-8")))
    assert f"``{folder.name}``" in (face or "") or f"``{folder.name}/``" in (face or ""), \
        f"{ids(folder)}/ is not named in {ids(folder.parent / '__init__.py')}'s docstring"


# --------------------------------------------------------------------------- private names

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


@pytest.mark.parametrize("path", MODULES, ids=ids)
def test_no_private_name_is_used_across_modules(path):
    assert private_names_used_across_modules(path.read_text(encoding="utf-8")) == []


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
