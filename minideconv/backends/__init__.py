"""Compute backends.  ``numba_cpu`` holds the CPU kernels (with ``image_threads``, which
runs a convolution's chunks of images on worker threads); it is imported lazily by
``minideconv.ops`` on the first operator call.  ``cupy_gpu`` runs CuPy arrays."""
