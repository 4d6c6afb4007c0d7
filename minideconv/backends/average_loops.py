"""The CPU loops of average pooling (``avg_pool2d`` and ``adaptive_avg_pool2d``) and of
its transpose, one formula each — the companion of ``backends.loops``.

Both poolings are one operator with different windows (``geometry.AvgPoolGeometry``):
output (oh, ow) averages the input rows ``rows[oh, 0] ≤ ih < rows[oh, 1]`` and columns
``cols[ow, 0] ≤ iw < cols[ow, 1]``, and divides by

    divisor[oh, ow] = divisor_override, or rows[oh, 2] · cols[ow, 2]   (divisor_override = 0)

``rows`` (H_out, 3) and ``cols`` (W_out, 3) are int64 tables (start, stop, count), worked
out once by ``minideconv.geometry`` (padding, ``ceil_mode`` and ``count_include_pad`` live
only there), so the loops need no bounds test.

Each ``prange`` iteration owns a whole (n, c) plane: no write races.  With
``NUMBA_DISABLE_JIT=1`` both loops are plain Python.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def divisor(rows, cols, oh, ow, divisor_override):
    """divisor[oh, ow]: ``divisor_override`` if it is not 0, else rows[oh, 2]·cols[ow, 2]."""
    if divisor_override != 0:
        return divisor_override
    return rows[oh, 2] * cols[ow, 2]


@njit(cache=True, parallel=True)
def avg_pool_planes(x, y, rows, cols, divisor_override):
    """Average-pool every (n, c) plane of x (N, C, H, W) into y (N, C, H_out, W_out):

        y[n, c, oh, ow] = (Σ x[n, c, ih, iw]  over rows[oh, 0] ≤ ih < rows[oh, 1],
                                                   cols[ow, 0] ≤ iw < cols[ow, 1])
                          / divisor[oh, ow]

    The sum is in x's dtype, in scan order (row by row), as PyTorch's CPU loop sums.
    """
    n_img, channels = x.shape[0], x.shape[1]
    h_out, w_out = y.shape[2], y.shape[3]
    zero = np.zeros(1, x.dtype)[0]
    for plane in prange(n_img * channels):
        n, c = plane // channels, plane % channels
        x_p, y_p = x[n, c], y[n, c]
        for oh in range(h_out):
            for ow in range(w_out):
                total = zero
                for ih in range(rows[oh, 0], rows[oh, 1]):
                    for iw in range(cols[ow, 0], cols[ow, 1]):
                        total += x_p[ih, iw]
                y_p[oh, ow] = total / divisor(rows, cols, oh, ow, divisor_override)


@njit(cache=True, parallel=True)
def avg_pool_transpose_planes(r, x, rows, cols, divisor_override):
    """The transpose, x = Aᵀ r: every r value, divided by its window's divisor, is ADDED
    to each pixel of its window (x is written whole, padding dropped):

        x[n, c, ih, iw] = Σ r[n, c, oh, ow] / divisor[oh, ow]
                          over the (oh, ow) whose window holds (ih, iw)

    Adding is what makes it the transpose — and the gradient — where windows overlap.
    """
    n_img, channels = r.shape[0], r.shape[1]
    h_out, w_out = r.shape[2], r.shape[3]
    zero = np.zeros(1, x.dtype)[0]
    for plane in prange(n_img * channels):  # a thread owns whole planes: no races
        n, c = plane // channels, plane % channels
        x_p, r_p = x[n, c], r[n, c]
        x_p[:, :] = zero
        for oh in range(h_out):
            for ow in range(w_out):
                share = r_p[oh, ow] / divisor(rows, cols, oh, ow, divisor_override)
                for ih in range(rows[oh, 0], rows[oh, 1]):
                    for iw in range(cols[ow, 0], cols[ow, 1]):
                        x_p[ih, iw] += share
