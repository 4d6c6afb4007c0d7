"""Code run in a fresh Python process, for what a process reads once, at import.

Numba reads ``NUMBA_DISABLE_JIT`` when it is imported, so the check that every kernel
is valid plain Python runs in a child process: ``run_without_jit``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def run_without_jit(code: str, *args: str,
                    timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -c code *args`` with ``NUMBA_DISABLE_JIT=1``: every Numba kernel runs as
    plain Python.

    The child runs from the repository root with the repository and ``tests/`` first on
    PYTHONPATH, so that it imports this checkout's minideconv and can import a test
    module (and ``support``) by name.  Its stdout and stderr are captured as text; the
    caller checks ``returncode``.
    """
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, NUMBA_DISABLE_JIT="1",
               PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)] + inherited))
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
