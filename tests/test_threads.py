"""Operators called from several Python threads at once.

Numba's workqueue threading layer (minideconv's default when TBB is absent) aborts the
whole process if two threads enter parallel kernels together; ``minideconv.ops`` runs one
operator at a time to prevent that.  Run in a subprocess, so that an abort is a failed
test rather than a dead test run."""

import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import threading
    import numpy as np
    import minideconv as md

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 24, 24))
    w = rng.standard_normal((6, 4, 3, 3))
    expected = md.conv2d(x, w, padding=1)
    pooled, switches = md.max_pool2d(x, 3, 2)
    errors = []

    def work():
        for _ in range(30):
            if not np.allclose(md.conv2d(x, w, padding=1), expected):
                errors.append("conv2d")
            y, s = md.max_pool2d(x, 3, 2)
            md.max_unpool2d(y, s, x.shape[2:])
            md.conv_transpose2d(expected, w, padding=1, output_size=x.shape[2:])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    import numba
    print("layer", numba.threading_layer(), "errors", len(errors))
    assert not errors
""")


def test_operators_from_four_threads_at_once():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "errors 0" in proc.stdout


def _tbb_installed():
    from importlib import metadata
    try:
        metadata.version("tbb")
        return True
    except metadata.PackageNotFoundError:
        return False


def test_threading_layer_is_tbb_when_installed_else_workqueue():
    """The documented choice (README "Threads"): with no NUMBA_THREADING_LAYER set, the
    kernels run on TBB if the ``tbb`` package is there, on workqueue if not — never on
    OpenMP, whose spinning workers slow the BLAS calls that follow."""
    child = ("import numpy as np, numba, minideconv as md; "
             "md.relu(np.ones(4)); print('layer', numba.threading_layer())")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY")}
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = "tbb" if _tbb_installed() else "workqueue"
    assert f"layer {expected}" in proc.stdout, proc.stdout
