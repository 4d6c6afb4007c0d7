"""The CPU loops of upsampling (nearest and bilinear) and of its transpose, one formula
each — the companion of ``backends.loops``.

Upsampling is separable (``geometry.InterpolationGeometry``): output row oh reads the
input rows ``rows[oh, a]`` with weights ``row_weights[oh, a]``, output column ow the
columns ``cols[ow, b]`` with ``col_weights[ow, b]`` — one tap per axis for nearest, two
for bilinear.  The tables are worked out once by ``minideconv.geometry`` (PyTorch's
source-index formulas live only there) and every index is inside the image, so the loops
need no bounds test.

Each ``prange`` iteration owns a whole (n, c) plane: the transposes' scatter-adds never
race.  With ``NUMBA_DISABLE_JIT=1`` every loop is plain Python.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def nearest_planes(x, y, rows, cols):
    """y[n, c, oh, ow] = x[n, c, rows[oh], cols[ow]]: every output copies its source."""
    n_img, channels = x.shape[0], x.shape[1]
    h_out, w_out = y.shape[2], y.shape[3]
    for plane in prange(n_img * channels):
        n, c = plane // channels, plane % channels
        x_p, y_p = x[n, c], y[n, c]
        for oh in range(h_out):
            x_row, y_row = x_p[rows[oh]], y_p[oh]
            for ow in range(w_out):
                y_row[ow] = x_row[cols[ow]]


@njit(cache=True, parallel=True)
def nearest_transpose_planes(r, x, rows, cols):
    """The transpose: every r value is ADDED to its source pixel,

        x[n, c, ih, iw] = Σ r[n, c, oh, ow] over rows[oh] = ih, cols[ow] = iw

    (x written whole: a pixel no output read stays 0)."""
    n_img, channels = r.shape[0], r.shape[1]
    h_out, w_out = r.shape[2], r.shape[3]
    zero = np.zeros(1, x.dtype)[0]
    for plane in prange(n_img * channels):
        n, c = plane // channels, plane % channels
        x_p, r_p = x[n, c], r[n, c]
        x_p[:, :] = zero
        for oh in range(h_out):
            x_row, r_row = x_p[rows[oh]], r_p[oh]
            for ow in range(w_out):
                x_row[cols[ow]] += r_row[ow]


@njit(cache=True, parallel=True)
def bilinear_planes(x, y, rows, row_weights, cols, col_weights):
    """y[n, c, oh, ow] = Σ_a row_weights[oh, a] · Σ_b col_weights[ow, b] · x[n, c, rows[oh, a], cols[ow, b]]

    with a, b ∈ {0, 1}, summed in that order (PyTorch's CPU order)."""
    n_img, channels = x.shape[0], x.shape[1]
    h_out, w_out = y.shape[2], y.shape[3]
    for plane in prange(n_img * channels):
        n, c = plane // channels, plane % channels
        x_p, y_p = x[n, c], y[n, c]
        for oh in range(h_out):
            top, bottom = x_p[rows[oh, 0]], x_p[rows[oh, 1]]
            a0, a1 = row_weights[oh, 0], row_weights[oh, 1]
            for ow in range(w_out):
                left, right = cols[ow, 0], cols[ow, 1]
                b0, b1 = col_weights[ow, 0], col_weights[ow, 1]
                y_p[oh, ow] = (top[left] * b0 + top[right] * b1) * a0 + \
                    (bottom[left] * b0 + bottom[right] * b1) * a1


@njit(cache=True, parallel=True)
def bilinear_transpose_planes(r, x, rows, row_weights, cols, col_weights):
    """The transpose: every r value is spread back onto the four pixels it read, with the
    same weights,

        x[n, c, rows[oh, a], cols[ow, b]] += row_weights[oh, a] · col_weights[ow, b] · r[n, c, oh, ow]
    """
    n_img, channels = r.shape[0], r.shape[1]
    h_out, w_out = r.shape[2], r.shape[3]
    zero = np.zeros(1, x.dtype)[0]
    for plane in prange(n_img * channels):
        n, c = plane // channels, plane % channels
        x_p, r_p = x[n, c], r[n, c]
        x_p[:, :] = zero
        for oh in range(h_out):
            top, bottom = x_p[rows[oh, 0]], x_p[rows[oh, 1]]
            a0, a1 = row_weights[oh, 0], row_weights[oh, 1]
            for ow in range(w_out):
                left, right = cols[ow, 0], cols[ow, 1]
                b0, b1 = col_weights[ow, 0], col_weights[ow, 1]
                upper, lower = r_p[oh, ow] * a0, r_p[oh, ow] * a1
                top[left] += upper * b0
                top[right] += upper * b1
                bottom[left] += lower * b0
                bottom[right] += lower * b1
