"""Compute backends, each providing the kernels of ``contract.Backend``.

=================== =========================================================
``contract``        the kernels a backend provides and what it may assume
``loops``           the CPU's ``@njit`` loops, one formula each (read this): im2col,
                    col2im, ReLU, the rectifiers, their ways back, max-pool, unpool
``average_loops``   the CPU loops of average pooling and its transpose
``resize_loops``    the CPU loops of upsampling (nearest, bilinear) and their transpose
``window_check``    the CPU loops that check switches before unpooling
``cpu``             the CPU backend: the loops and BLAS, scheduled
``winograd``        3×3 stride-1 convolutions as Winograd's F(2×2, 3×3) (used by ``cpu``)
``image_threads``   chunks of images on worker threads (used by ``cpu``)
``threading_layer`` which Numba threading layer runs the loops; making TBB loadable
``reference``       the whole-array reference backend, NumPy or CuPy
``first_compile``   one line on stderr when Numba first compiles a kernel
=================== =========================================================

Backends import nothing above them (no ``ops``, no networks): the warm-up of the
first run and its helper process are ``minideconv.compile``.

``minideconv.ops`` loads a backend on its first call (``load_cpu_backend``,
``load_reference_backend``), never at ``import minideconv``.
"""

from __future__ import annotations


def load_cpu_backend():
    """``backends.cpu``, with Numba's threading layer prepared first
    (``threading_layer.prepare``: TBB made loadable and preferred, before the first
    parallel loop, unless the user chose a layer)."""
    from . import first_compile, threading_layer
    threading_layer.prepare()
    first_compile.announce_on_stderr()    # the first compile says so, once
    from . import cpu
    return cpu


def load_reference_backend():
    """``backends.reference`` (CuPy itself is imported only when a CuPy array arrives)."""
    from . import reference
    return reference
