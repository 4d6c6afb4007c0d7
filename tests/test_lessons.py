"""Every lesson runs headless, start to finish, and saves its figures; every lesson ends
with exercises, and every exercise has a solution that runs and asserts its answers.

Each lesson asserts its own key claims (max |WᵀWx − x| > 0, lsqr error ≪ transpose error,
the all-pass round trip exact, pool-then-unpool ≠ identity, ...), so a lesson whose
argument stops being true fails here.  One subprocess per lesson, as a student runs it:
``python lessons/NN_name.py``, with the Agg backend and the figures written to a
temporary folder (``MINIDECONV_LESSON_OUTPUT``).

The last cell of every lesson is a markdown cell titled "Exercises" with two or three
numbered exercises.  Their solutions are ``lessons/solutions/NN_name.py``, with the
lesson's own file name: scripts that compute each answer and assert it against an
independent computation (a brute-force count, finite differences, a dense SVD, ...).
They run here the same way as the lessons, one subprocess each, and must exit 0.

BLAS and OpenMP run single-threaded in the lessons and solutions (unless the
environment says otherwise): the tests run beside other test files on 2 cores, and
oversubscribed OpenBLAS threads made the trained network's forward pass over 500 images
take 15 s instead of 0.4 s on such a machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("[0-9][0-9]_*.py"))
SOLUTIONS = sorted((REPO / "lessons" / "solutions").glob("[0-9][0-9]_*.py"))
COURSE = range(1, 12)          # lessons 01–11


def _run_as_a_student(script: Path, output: Path) -> subprocess.CompletedProcess:
    """``python script`` from the repository root, headless, single-threaded BLAS,
    figures (if any) written to ``output``."""
    env = dict(os.environ, MPLBACKEND="Agg", MINIDECONV_LESSON_OUTPUT=str(output))
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env.setdefault(variable, "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, check=False,
                          capture_output=True, text=True, timeout=300)


def _assert_exit_0(script: Path, result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n"
        f"--- stdout (end) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-3000:]}")


def _cells(path: Path) -> list[list[str]]:
    """The jupytext percent-format cells of a script: each a list of lines, starting
    with its ``# %%`` marker (text before the first marker is left out)."""
    cells: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            cells.append([line])
        elif cells:
            cells[-1].append(line)
    return cells


def test_the_course_is_complete():
    numbers = [int(path.name[:2]) for path in LESSONS]
    assert numbers == list(COURSE), [path.name for path in LESSONS]
    lessons = {path.name for path in LESSONS}
    solutions = {path.name for path in SOLUTIONS}
    assert lessons <= solutions, f"lessons without a solution: {sorted(lessons - solutions)}"
    assert solutions <= lessons, f"solutions without a lesson: {sorted(solutions - lessons)}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_lesson_runs_and_saves_figures(lesson, tmp_path):
    result = _run_as_a_student(lesson, tmp_path)
    _assert_exit_0(lesson, result)
    figures = [p for p in tmp_path.glob("*.png") if not p.name.startswith("thumb_")]
    assert figures, f"{lesson.name} saved no figure in {tmp_path}"
    assert all(p.stat().st_size > 1000 for p in figures), \
        [(p.name, p.stat().st_size) for p in figures]


@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_lesson_ends_with_exercises_and_has_a_solution(lesson):
    cells = _cells(lesson)
    assert cells, f"{lesson.name} has no '# %%' cells"
    last = cells[-1]
    assert last[0].strip() == "# %% [markdown]", \
        f"{lesson.name}: the last cell is not a markdown cell: {last[0]!r}"
    text = [line for line in last[1:] if line.strip()]
    assert all(line.startswith("#") for line in text), \
        f"{lesson.name}: the last cell holds code: {[t for t in text if t[0] != '#']}"
    assert len(text) > 2 and text[0] == "# Exercises" and re.fullmatch(r"# -{9,}", text[1]), \
        f"{lesson.name}: the last cell is not titled 'Exercises': {text[:2]}"
    numbered = [line for line in text if re.match(r"# \d+\. ", line)]
    assert 2 <= len(numbered) <= 3, \
        f"{lesson.name}: {len(numbered)} numbered exercises, expected two or three"
    solution = REPO / "lessons" / "solutions" / lesson.name
    assert solution.is_file(), f"{lesson.name} has no solution script {solution}"


def test_the_solutions_stay_out_of_the_gallery():
    """sphinx-gallery (docs/conf.py) renders a subfolder of lessons/ as a sub-gallery
    when it holds a gallery header (README.txt, README.rst, GALLERY_HEADER.rst, ...);
    the solutions are meant to be run, not rendered, so lessons/solutions/ has none."""
    headers = [path.name for path in (REPO / "lessons" / "solutions").iterdir()
               if path.stem.lower() in ("readme", "gallery_header")]
    assert not headers, f"lessons/solutions/ would become a sub-gallery: {headers}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[path.stem for path in SOLUTIONS])
def test_solution_runs_and_its_assertions_hold(solution, tmp_path):
    result = _run_as_a_student(solution, tmp_path)
    _assert_exit_0(solution, result)
    assert result.stdout.strip(), f"{solution.name} printed nothing"
