"""Every lesson runs headless, start to finish, and saves its figures.

Each lesson asserts its own key claims (max |WᵀWx − x| > 0, lsqr error ≪ transpose error,
the all-pass round trip exact, pool-then-unpool ≠ identity, ...), so a lesson whose
argument stops being true fails here.  One subprocess per lesson, as a student runs it:
``python lessons/NN_name.py``, with the Agg backend and the figures written to a
temporary folder (``MINIDECONV_LESSON_OUTPUT``).

BLAS and OpenMP run single-threaded in the lessons (unless the environment says
otherwise): the tests run beside other test files on 2 cores, and oversubscribed
OpenBLAS threads made the trained network's forward pass over 500 images take 15 s
instead of 0.4 s on such a machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("[0-9][0-9]_*.py"))


def test_the_course_is_complete():
    numbers = [int(path.name[:2]) for path in LESSONS]
    assert numbers == list(range(1, 9)), [path.name for path in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_lesson_runs_and_saves_figures(lesson, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", MINIDECONV_LESSON_OUTPUT=str(tmp_path))
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env.setdefault(variable, "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(lesson)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"{lesson.name} exited with {result.returncode}\n"
        f"--- stdout (end) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-3000:]}")
    figures = [p for p in tmp_path.glob("*.png") if not p.name.startswith("thumb_")]
    assert figures, f"{lesson.name} saved no figure in {tmp_path}"
    assert all(p.stat().st_size > 1000 for p in figures), \
        [(p.name, p.stat().st_size) for p in figures]
