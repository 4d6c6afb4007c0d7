"""The CPU loops of upsampling (nearest and bilinear) and of its transpose, one formula
each — the companion of ``backends.loops``.

Upsampling is separable (``geometry.InterpolationGeometry``): output row oh reads the
input rows ``rows[oh, a]`` with weights ``row_weights[oh, a]``, output column ow the
columns ``cols[ow, b]`` with ``col_weights[ow, b]`` — one tap per axis for nearest, two
for bilinear.  The tables are worked out once by ``minideconv.geometry`` (PyTorch's
source-index formulas live only there) and every index is inside the image, so the loops
need no bounds test.

The arrays are stacks of planes, (N·C, H, W) views of the (N, C, H, W) images.  Each
``prange`` iteration owns a whole plane: the transpose's scatter-adds never race.  With
``NUMBA_DISABLE_JIT=1`` every loop is plain Python.
"""

from __future__ import annotations

from numba import njit, prange


@njit(cache=True, parallel=True)
def nearest_planes(x, y, rows, cols):
    """y[p, oh, ow] = x[p, rows[oh], cols[ow]]: every output copies its source pixel."""
    for p in prange(x.shape[0]):
        x_p, y_p = x[p], y[p]
        for oh in range(y.shape[1]):
            source_row, out_row = x_p[rows[oh]], y_p[oh]
            for ow in range(y.shape[2]):
                out_row[ow] = source_row[cols[ow]]


@njit(cache=True, parallel=True)
def bilinear_planes(x, y, rows, row_weights, cols, col_weights):
    """y[p, oh, ow] = Σ_a row_weights[oh, a] · Σ_b col_weights[ow, b] · x[p, rows[oh, a], cols[ow, b]]

    with a, b ∈ {0, 1}, summed in that order (PyTorch's CPU order)."""
    for p in prange(x.shape[0]):
        x_p, y_p = x[p], y[p]
        for oh in range(y.shape[1]):
            top, bottom = x_p[rows[oh, 0]], x_p[rows[oh, 1]]
            a0, a1 = row_weights[oh, 0], row_weights[oh, 1]
            for ow in range(y.shape[2]):
                left, right = cols[ow, 0], cols[ow, 1]
                b0, b1 = col_weights[ow, 0], col_weights[ow, 1]
                y_p[oh, ow] = (top[left] * b0 + top[right] * b1) * a0 + \
                    (bottom[left] * b0 + bottom[right] * b1) * a1


@njit(cache=True, parallel=True)
def interpolate_transpose_planes(r, x, rows, row_weights, cols, col_weights):
    """The transpose of both, into x filled with zeros: every r value is ADDED back to
    each pixel its output read, with the same weights,

        x[p, rows[oh, a], cols[ow, b]] += row_weights[oh, a] · col_weights[ow, b] · r[p, oh, ow]

    over every tap a, b (one each for nearest, whose weights are 1: a plain sum)."""
    for p in prange(r.shape[0]):
        x_p, r_p = x[p], r[p]
        for oh in range(r.shape[1]):
            for a in range(rows.shape[1]):
                target, weight = x_p[rows[oh, a]], row_weights[oh, a]
                for ow in range(r.shape[2]):
                    share = r_p[oh, ow] * weight
                    for b in range(cols.shape[1]):
                        target[cols[ow, b]] += share * col_weights[ow, b]
