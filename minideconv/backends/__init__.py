"""Compute backends.  ``numba_cpu`` holds the CPU kernels; it is imported lazily by
``minideconv.ops`` on the first operator call."""
