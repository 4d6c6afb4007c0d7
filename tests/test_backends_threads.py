"""Operators called from several Python threads at once.

Numba's workqueue threading layer (minideconv's default when TBB is absent) aborts the
whole process if two threads enter parallel kernels together; ``minideconv.ops`` runs one
operator at a time to prevent that.  Run in a subprocess, so that an abort is a failed
test rather than a dead test run."""

import os
import subprocess
import sys
import textwrap

import pytest

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
            md.max_unpool2d(y, s, 3, 2, output_size=x.shape[2:])
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


def _run_child(code, **extra_env):
    """Run ``code`` in a fresh interpreter with no threading layer chosen and no
    LD_LIBRARY_PATH, so that only minideconv's own loading of TBB can make it work."""
    drop = ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY", "LD_LIBRARY_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra_env)
    proc = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc


LAYER_CHILD = ("import numpy as np, numba, minideconv as md; "
               "assert (md.relu(np.array([-1.0, 2.0])) == [0.0, 2.0]).all(); "
               "md.relu(np.ones(4)); print('layer', numba.threading_layer())")


def test_threading_layer_is_tbb_when_installed_else_workqueue():
    """The documented choice (docs/layout.md, "Threads"): with no NUMBA_THREADING_LAYER set, the
    kernels run on TBB if the ``tbb`` package is there, on workqueue if not — never on
    OpenMP, whose spinning workers slow the BLAS calls that follow.  No LD_LIBRARY_PATH:
    in a venv the tbb wheel's library is outside the linker's search path, and
    minideconv must find it by itself (.ci/run runs this in a fresh venv)."""
    proc = _run_child(LAYER_CHILD)
    expected = "tbb" if _tbb_installed() else "workqueue"
    assert f"layer {expected}" in proc.stdout, proc.stdout + proc.stderr
    if expected == "tbb":
        assert "RuntimeWarning" not in proc.stderr, proc.stderr


def test_tbb_library_found_among_the_distributions_files():
    from minideconv.backends import threading_layer
    path = threading_layer.find_tbb_library()
    if not _tbb_installed():
        assert path is None
        return
    from importlib import metadata
    listed = {os.path.abspath(f.locate()) for f in metadata.distribution("tbb").files}
    assert path in listed and os.path.basename(path) == threading_layer.TBB_LIBRARY


def test_in_a_venv_tbb_loads_only_because_minideconv_loads_it():
    """Where the interpreter is a venv's and the tbb wheel put its library in
    ``<venv>/lib``, Numba alone cannot load its TBB layer; minideconv's preload can."""
    from minideconv.backends import threading_layer
    path = threading_layer.find_tbb_library()
    if sys.prefix == sys.base_prefix or path is None or \
            os.path.dirname(path) != os.path.join(sys.prefix, "lib"):
        pytest.skip("needs a venv with the tbb wheel's library in <venv>/lib")
    drop = ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY", "LD_LIBRARY_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    numba_alone = subprocess.run([sys.executable, "-c", "from numba.np.ufunc import tbbpool"],
                                 capture_output=True, text=True, timeout=300, env=env)
    assert numba_alone.returncode != 0 and "libtbb" in numba_alone.stderr
    assert "layer tbb" in _run_child(LAYER_CHILD).stdout


def test_warns_once_with_the_remedy_when_tbb_cannot_load():
    """With the tbb library unloadable (as in a venv where neither minideconv nor Numba
    can find it), the kernels fall back to workqueue, give the same results, and say so
    once, with the remedy.  The child refuses every ctypes load of a TBB library,
    minideconv's and Numba's alike."""
    child = ("import ctypes, warnings, numpy as np, numba\n"
             "real_cdll = ctypes.CDLL\n"
             "def no_tbb(name, *args, **kwargs):\n"
             "    if 'tbb' in str(name):\n"
             "        raise OSError(f'{name}: refused by the test')\n"
             "    return real_cdll(name, *args, **kwargs)\n"
             "ctypes.CDLL = no_tbb\n"
             "import numba.np.ufunc.parallel as numba_parallel\n"
             "numba_parallel.CDLL = no_tbb\n"   # Numba's own check imported CDLL by name
             "import minideconv as md\n"
             "with warnings.catch_warnings(record=True) as caught:\n"
             "    warnings.simplefilter('always')\n"
             "    for _ in range(3):\n"
             "        assert (md.relu(np.array([-1.0, 2.0])) == [0.0, 2.0]).all()\n"
             "        md.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)))\n"
             "ours = [str(w.message) for w in caught if 'TBB' in str(w.message)]\n"
             "print('layer', numba.threading_layer(), 'warnings', len(ours))\n"
             "print(*ours)\n")
    proc = _run_child(child)
    if "layer tbb" in proc.stdout:   # the linker found TBB by itself (e.g. conda)
        assert "warnings 0" in proc.stdout, proc.stdout
        return
    assert "layer workqueue" in proc.stdout, proc.stdout
    from minideconv.backends import threading_layer
    if threading_layer.tbb_wheel_expected() or _tbb_installed():
        assert "warnings 1" in proc.stdout, proc.stdout
        assert "pip install --force-reinstall tbb" in proc.stdout
        assert "refused by the test" in proc.stdout        # the reason is given
        assert "NUMBA_THREADING_LAYER=workqueue" in proc.stdout


def test_a_layer_chosen_by_the_user_is_kept_without_a_warning():
    proc = _run_child(LAYER_CHILD, NUMBA_THREADING_LAYER="workqueue")
    assert "layer workqueue" in proc.stdout
    assert "RuntimeWarning" not in proc.stderr, proc.stderr
