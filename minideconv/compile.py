"""The first run: Numba compiles minideconv's kernels, and the user is told.

The first call of a kernel with a new dtype compiles it (a few seconds each); Numba then
writes it to its on-disk cache (``cache=True``), and later processes load it in
milliseconds.  Three pieces make that first run short and visible:

* ``warm_up(net, rules)`` compiles (or loads) every kernel a forward pass of ``net`` and a
  projection under ``rules`` need, on one image of zeros, so later calls run at full speed.
* ``start`` / ``wait``: on a cold cache ``warm_up`` starts ``python -m minideconv.compile``
  beside itself.  That child compiles col2im and unpooling (with its switch check), kernels
  of the backward pass, while the parent compiles those of the forward pass and the ReLU
  rules (a split that keeps both cores busy about equally long); the parent then loads the
  child's kernels from the cache.  The child only ever saves time: if it fails, or the
  cache cannot be written, the parent compiles the kernels itself.
* ``notify_on_compile(notify)`` calls ``notify()`` when compiling really starts: Numba's
  ``numba:compile`` event fires on a compile, never on a cache load.  (The line the user
  sees at that moment is ``backends.first_compile``'s, printed for every caller.)

It sits above ``ops`` (it calls the operators) and below the methods and the CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

import numpy as np

from . import ops
from .rules import get_rule

#: How long the parent waits for the child before compiling on its own.
TIMEOUT_S = 300


def compile_way_back(dtype):
    """Call the transposed convolution by GEMM + col2im (stride 2 takes that route) and
    unpooling with its switch check once, on tiny arrays of ``dtype``."""
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


# --------------------------------------------------------------------------- telling the user

@contextmanager
def notify_on_compile(notify):
    """Within the block, call ``notify()`` once, when Numba starts compiling one of
    minideconv's kernels (not when it loads one from its cache)."""
    from numba.core import event

    from .backends.first_compile import FirstCompile
    listener = FirstCompile(notify)
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)


# --------------------------------------------------------------------------- the warm-up

def warm_up(net, rules=("deconvnet",)):
    """Compile (or load from Numba's cache) every kernel that a forward pass of ``net``
    and a projection under each of ``rules`` need, on one image of zeros of the network's
    dtype — so that later calls run at full speed from the first.  Only what is asked
    for is compiled: the network's dtype, its layers' operators, the given rules.

    On a first run (Numba's cache cold) col2im and unpooling compile in a second process
    meanwhile (``start``), and load from the cache here."""
    if net.input_shape is None:
        raise ValueError("warm_up needs net.input_shape to make an input")
    rules = [get_rule(rule) for rule in rules]
    dtype = next((a.dtype for layer in net.layers for a in layer.params().values()),
                 np.dtype(np.float32))
    image = np.zeros((1,) + tuple(net.input_shape), dtype)
    helper = []

    def compile_way_back_beside():  # first compile seen: the cache is cold
        helper.append(start(dtype))

    with notify_on_compile(compile_way_back_beside):
        trace = net.trace(image)     # the forward kernels, compiled here
        for rule in rules:           # and the ReLU rules
            ops.relu_backward(image, image, rule)
    for child in helper:
        wait(child)
    for rule in rules:  # from the last layer back, through every layer
        net.backward(np.zeros_like(trace.outputs[-1]), trace, rule=rule)


if __name__ == "__main__":
    compile_way_back(sys.argv[1])
