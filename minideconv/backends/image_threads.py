"""Chunks of images on several threads at once, each thread's BLAS and Numba single-threaded.

A convolution here is, chunk of images by chunk: rearrange pixels (im2col or col2im, a
Numba kernel), then a matrix product (BLAS).  Done chunk after chunk with both libraries
using every core, the two thread pools take turns — and on few cores they get in each
other's way: OpenBLAS's workers keep polling for a while after every GEMM, so the
im2col that follows shares its cores with them.

``run_chunks`` instead gives whole chunks to T threads: each thread rearranges and
multiplies its own chunk with one core, BLAS and Numba both limited to one thread *in
that thread only*.  No pool waits for another.  Each image is the same GEMM as before,
only on one thread, which can round differently in the last bits (the tests hold the
routes to 1e-12 in float64).  ``backends.cpu`` hands out chunks of images, bands of
output rows (large images, or fewer images than threads) and fixed shares of chunks or
bands (the weight gradient, so that it sums in a fixed order).  benchmarks/README.md has
the measurements.

It needs two things, else ``run_chunks`` runs the chunks one after the other:

- a per-thread BLAS thread count: OpenBLAS's ``openblas_set_num_threads_local``, found
  with threadpoolctl in every BLAS library loaded (NumPy's included); MKL, BLIS or
  Accelerate behind NumPy mean the sequential route;
- a Numba threading layer that may be entered from several threads at once (tbb or omp;
  ``workqueue`` aborts the process then).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numba


@functools.lru_cache(maxsize=None)
def blas_thread_setters():
    """For every BLAS library loaded at the first call (NumPy's among them), its function
    that sets the calling thread's own thread count — or None if any of them has none
    (or threadpoolctl is missing)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    setters = []
    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    for library in blas.lib_controllers:
        setter = getattr(library.dynlib, "openblas_set_num_threads_local", None)
        if library.internal_api != "openblas" or setter is None:
            return None
        setters.append(setter)
    return tuple(setters) or None


#: The least GEMM work (multiply-adds × 2) worth a thread of its own: below it, handing
#: chunks to threads costs more than it saves (measured in benchmarks/README.md).
MIN_FLOPS_PER_THREAD = 8e6


def threads_for(n_images, flops_per_image):
    """How many threads to give ``n_images`` images of ``flops_per_image`` each: at most
    Numba's thread count (``numba.set_num_threads``), one per MIN_FLOPS_PER_THREAD of
    work, and 1 (the caller's own) where the route does not apply."""
    threads = min(numba.get_num_threads(), n_images,
                  int(n_images * flops_per_image // MIN_FLOPS_PER_THREAD))
    if threads < 2 or not threadsafe_numba_layer() or blas_thread_setters() is None:
        return 1
    return threads


def threadsafe_numba_layer():
    try:
        return numba.threading_layer() in ("tbb", "omp")
    except ValueError:  # no parallel kernel has run yet: the layer is not chosen
        return False


def run_chunks(chunks, work, make_scratch, threads):
    """Call ``work(chunk, scratch)`` for every chunk: on ``threads`` threads (from
    ``threads_for``), each with its own ``scratch = make_scratch()`` and taking the next
    chunk when it is done with one; or, for ``threads`` 1, one after the other here.

    ``work`` must write only into its own chunk's part of the output (no two chunks
    share an output element), so the order and the thread do not matter."""
    if threads == 1:
        scratch = make_scratch()
        for chunk in chunks:
            work(chunk, scratch)
        return
    shared = iter(chunks)  # every thread takes its next chunk from here (under the GIL)

    def worker():
        numba.set_num_threads(1)  # both settings are per thread
        for set_blas_threads in blas_thread_setters():
            set_blas_threads(1)
        scratch = make_scratch()
        for chunk in shared:
            work(chunk, scratch)

    futures = [_executor(threads).submit(worker) for _ in range(threads)]
    for future in futures:
        future.result()  # re-raises a worker's exception here


_pool = None


def _executor(threads):
    """The worker threads, made on first use and again when the thread count changes."""
    global _pool
    if _pool is None or _pool[0] != threads:
        if _pool is not None:
            _pool[1].shutdown(wait=False)
        _pool = (threads, ThreadPoolExecutor(threads, thread_name_prefix="minideconv"))
    return _pool[1]


def _forget_pool():
    """A forked child inherits the pool object but not its threads: start afresh."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)
