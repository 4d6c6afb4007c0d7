"""The lessons' format: each opens with a markdown cell that is its module docstring (what
sphinx-gallery renders as the page's head, and jupytext as the notebook's first cell),
and the lessons that use PyTorch run without it.

A lesson's first line is ``# %% [markdown]`` and its second opens the module docstring;
jupytext (when it is installed: it is not a test dependency) reads that cell as
markdown whose text is the docstring, without the quote marks.

Lessons 02 and 04 compare with PyTorch where it is installed and print why they skip
it where it is not; they and their solutions must then still run to the end.  Torch is
hidden by a ``torch`` package on PYTHONPATH whose ``__init__`` raises ImportError, and
each script runs as tests/test_lessons.py runs it (headless, figures to a temporary
folder, single-threaded BLAS).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("[0-9][0-9]_*.py"))
IDS = [path.stem for path in LESSONS]
#: The lessons that use PyTorch, and what each prints when it is missing.
TORCH_SKIPS = {
    "02_transpose_is_not_inverse.py": "PyTorch is not installed: skipping the nn.Conv2d / "
                                      "nn.ConvTranspose2d snippet",
    "04_transpose_is_the_gradient.py": "PyTorch is not installed: skipping the autograd "
                                       "comparison and the x.grad / ConvTranspose2d check",
}
#: What those lessons print only when torch ran (lesson 02's snippet, lesson 04's
#: autograd comparison and x.grad check).
TORCH_RAN = re.compile(r"ct\(c\(i\)\) == i \?|PyTorch \d|max \|x\.grad")


def _docstring(path: Path) -> ast.Expr:
    """The module docstring's statement (an AssertionError if there is none)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    first = tree.body[0] if tree.body else None
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
        and isinstance(first.value.value, str), f"{path.name} has no module docstring"
    return first


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_a_lesson_opens_with_its_docstring_as_a_markdown_cell(lesson):
    lines = lesson.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# %% [markdown]", f"{lesson.name}: first line {lines[0]!r}"
    docstring = _docstring(lesson)
    assert docstring.lineno == 2 and lines[1].startswith('"""'), \
        f"{lesson.name}: the docstring starts on line {docstring.lineno}: {lines[1]!r}"
    assert docstring.value.value.strip().startswith(f"Lesson {int(lesson.name[:2])}:"), \
        f"{lesson.name}: the docstring does not open with its title"


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_jupytext_reads_the_docstring_as_a_markdown_cell(lesson):
    try:
        import jupytext
    except ImportError:
        pytest.skip("jupytext is not installed (pip install -e '.[test]')")
    cell = jupytext.read(lesson).cells[0]
    text = cell.source
    assert cell.cell_type == "markdown", f"{lesson.name}: first cell is {cell.cell_type}"
    assert '"""' not in text and "'''" not in text and text[:1] not in "\"'" \
        and text[-1:] not in "\"'", f"{lesson.name}: quote marks in {text[:40]!r}…"
    assert text == _docstring(lesson).value.value.strip(), \
        f"{lesson.name}: the first cell is not the docstring: {text[:80]!r}…"


# --------------------------------------------------------------------------- without torch

def _run_without_torch(script: Path, output: Path, stub: Path) -> subprocess.CompletedProcess:
    """``python script`` from the repository root, as tests/test_lessons.py runs it, with
    ``stub`` (a ``torch`` that cannot be imported) first on PYTHONPATH."""
    env = dict(os.environ, MPLBACKEND="Agg", MINIDECONV_LESSON_OUTPUT=str(output))
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env.setdefault(variable, "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stub), str(REPO),
                                                      env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, check=False,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory) -> Path:
    """A PYTHONPATH folder whose ``torch`` raises ImportError, checked to hide torch."""
    stub = tmp_path_factory.mktemp("no_torch")
    (stub / "torch").mkdir()
    (stub / "torch" / "__init__.py").write_text(
        'raise ImportError("torch is hidden by tests/test_lesson_format.py")\n')
    probe = subprocess.run([sys.executable, "-c", "import torch"], check=False, text=True,
                           capture_output=True, env=dict(os.environ, PYTHONPATH=str(stub)))
    assert probe.returncode != 0 and "torch is hidden" in probe.stderr, probe.stderr
    return stub


SCRIPTS = [(REPO / "lessons" / name, message) for name, message in TORCH_SKIPS.items()] + \
          [(REPO / "lessons" / "solutions" / name, None) for name in TORCH_SKIPS]


@pytest.mark.parametrize("script, message", SCRIPTS,
                         ids=[f"{path.parent.name}/{path.stem}" for path, _ in SCRIPTS])
def test_runs_without_torch_and_says_what_it_skips(script, message, no_torch, tmp_path):
    result = _run_without_torch(script, tmp_path, no_torch)
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode} without torch\n"
        f"--- stdout (end) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-3000:]}")
    assert result.stdout.strip(), f"{script.name} printed nothing"
    ran = [line for line in result.stdout.splitlines() if TORCH_RAN.match(line)]
    assert not ran, f"{script.name} printed torch's results without torch: {ran}"
    if message is not None:                   # a lesson: it says what it skipped, once
        assert result.stdout.count(message) == 1, \
            f"{script.name} did not print {message!r}:\n{result.stdout[-2000:]}"
