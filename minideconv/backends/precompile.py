"""Compiling the way back in a second process while this one compiles the way forward.

Numba compiles a kernel on one core, one kernel after another.  On a first run (an empty
cache) ``visualize.warm_up`` starts ``python -m minideconv.backends.precompile`` beside
itself: that child compiles col2im and unpooling (with its switch check), kernels of
the backward pass, while the parent compiles those of the forward pass and the ReLU
backward rules (a split that keeps both cores busy about equally long).  The child
writes its kernels to Numba's on-disk cache, from which the parent then loads them
instead of compiling them again.  The child only ever saves time: if it fails, or the cache cannot be
written, the parent compiles the kernels itself, as it would without it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

#: How long the parent waits for the child before compiling on its own.
TIMEOUT_S = 300


def compile_way_back(dtype):
    """Call the transposed convolution by GEMM + col2im (stride 2 takes that route) and
    unpooling with its switch check once, on tiny arrays of ``dtype``."""
    from .. import ops
    dtype = np.dtype(dtype)
    ops.conv_transpose2d(np.zeros((1, 1, 2, 2), dtype), np.zeros((1, 1, 2, 2), dtype),
                         stride=2)
    ops.max_unpool2d(np.zeros((1, 1, 1, 1), dtype), np.zeros((1, 1, 1, 1), np.int64), 2)


def start(dtype):
    """Start the child that compiles ``compile_way_back(dtype)``; returns the process (or
    None where a second process cannot help: JIT disabled)."""
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return None
    command = [sys.executable, "-m", __name__, np.dtype(dtype).name]
    try:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def wait(child):
    """Wait for ``child`` (from ``start``); past TIMEOUT_S, stop it and go on alone."""
    if child is None:
        return
    try:
        child.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


if __name__ == "__main__":
    compile_way_back(sys.argv[1])
