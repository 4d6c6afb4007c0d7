"""Which Numba threading layer runs the parallel kernels, and making TBB loadable.

Numba runs ``prange`` loops on one of three layers, chosen once per process when the
first parallel loop starts: ``tbb``, ``omp`` (OpenMP) or ``workqueue``.  minideconv
prefers them in the order tbb, workqueue, omp:

* ``tbb`` starts a parallel loop quickly, lets its workers sleep between loops, and may
  be entered from several Python threads at once (``image_threads`` needs that);
* ``omp``'s workers spin for a while after every loop, and each im2col here is followed
  by a BLAS GEMM on the same cores, which then competes with the spinning threads; GNU
  OpenMP is also not fork-safe;
* ``workqueue`` always loads, but starts loops slowly and aborts the process if two
  threads enter it at once.

Numba's TBB layer is an extension module (``numba/np/ufunc/tbbpool``) linked against
``libtbb.so.12`` by name, and the ``tbb`` wheel puts that library in ``<prefix>/lib`` —
a folder the dynamic linker is not told to search when tbbpool is loaded (tbbpool has no
run path, and a venv's or a ``pip install --user``'s prefix is not the interpreter's), so
Numba would silently fall back to workqueue.  ``prepare()`` finds the library among the ``tbb`` distribution's
own installed files and loads it first: the linker then reuses the loaded library when
``tbbpool`` asks for it by name.  Where that still fails, it warns once, with the reason
and the remedy; results are the same on every layer, only the speed differs.

A layer named by the user (``NUMBA_THREADING_LAYER`` or
``NUMBA_THREADING_LAYER_PRIORITY``) is left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings

import numba

PRIORITY = ["tbb", "workqueue", "omp"]

#: The file name Numba's tbbpool links against, per platform.
TBB_LIBRARY = {"linux": "libtbb.so.12", "win32": "tbb12.dll",
               "darwin": "libtbb.12.dylib"}.get(sys.platform)


def tbb_wheel_expected() -> bool:
    """True where ``tbb`` is one of minideconv's dependencies (the platforms with wheels,
    see pyproject.toml)."""
    import platform
    machine = platform.machine().lower()
    return (sys.platform == "linux" and machine == "x86_64") or \
        (sys.platform == "win32" and machine in ("amd64", "x86_64"))


def find_tbb_library():
    """The path of the TBB runtime that the ``tbb`` distribution installed, or None when
    ``tbb`` is not installed (or lists no such file)."""
    from importlib import metadata
    try:
        files = metadata.distribution("tbb").files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == TBB_LIBRARY:
            path = os.path.abspath(file.locate())
            if os.path.isfile(path):
                return path
    return None


def load_tbb():
    """Make Numba's TBB layer loadable: load the ``tbb`` distribution's runtime into the
    process first, so that tbbpool finds it by name.  Returns None when tbbpool loads,
    else the reason it does not."""
    path = find_tbb_library()
    failed = None
    if path is not None:
        try:
            ctypes.CDLL(path, mode=getattr(os, "RTLD_GLOBAL", 0))
        except OSError as err:
            failed = f"{path} could not be loaded ({err})"
    try:  # by name, as Numba's own version check does: where the linker finds it anyway
        ctypes.CDLL(TBB_LIBRARY, mode=getattr(os, "RTLD_GLOBAL", 0))
    except (OSError, TypeError):
        pass
    try:  # the extension module Numba will import (conda's TBB loads without our help)
        from numba.np.ufunc import tbbpool  # noqa: F401
        return None
    except ImportError as err:
        if failed:
            return failed
        if path is not None:
            return f"Numba's TBB layer did not load beside {path} ({err})"
        return ("the 'tbb' package is not installed" if _tbb_version() is None else
                f"the installed 'tbb' package lists no {TBB_LIBRARY}")


def _tbb_version():
    from importlib import metadata
    try:
        return metadata.version("tbb")
    except metadata.PackageNotFoundError:
        return None


def user_chose_layer() -> bool:
    return "NUMBA_THREADING_LAYER" in os.environ or \
        "NUMBA_THREADING_LAYER_PRIORITY" in os.environ


def started_layer():
    """The layer already running in this process, or None before the first parallel loop."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None


_prepared = False


def prepare():
    """Before minideconv's first parallel kernel: make TBB loadable and prefer it.

    Runs once per process; warns (RuntimeWarning) when the kernels will not get TBB on a
    platform where it is a dependency, or when OpenMP was already started by other code."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    running = started_layer()
    if running is not None:  # too late to choose: some other parallel Numba code ran first
        if running == "omp":
            warnings.warn(
                "Numba's OpenMP threading layer was started before minideconv's kernels "
                "were loaded; its spinning workers slow minideconv's convolutions. Set "
                "NUMBA_THREADING_LAYER=tbb (or workqueue), or use minideconv before other "
                "parallel Numba code.", RuntimeWarning, stacklevel=2)
        return
    problem = load_tbb()
    if user_chose_layer():
        return
    numba.config.THREADING_LAYER_PRIORITY = list(PRIORITY)
    if problem is not None and (tbb_wheel_expected() or _tbb_version() is not None):
        warnings.warn(
            f"minideconv: Numba's TBB threading layer is unavailable: {problem}. The "
            "kernels run on the slower 'workqueue' layer instead (same results). Remedy: "
            "`pip install --force-reinstall tbb` in this environment, or silence this by "
            "choosing a layer with NUMBA_THREADING_LAYER=workqueue.",
            RuntimeWarning, stacklevel=2)
