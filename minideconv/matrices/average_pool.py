"""Average pooling as a matrix: A of ``avg_pool2d`` and of ``adaptive_avg_pool2d``.

For ONE image flattened in C-order, x = x_img.ravel() with x_img of shape (C, H, W):

* ``avg_pool2d_matrix`` → A, shape (C·H_out·W_out, C·H·W):  A x = avg_pool2d(x),
  Aᵀ r = avg_pool2d_transpose(r)
* ``adaptive_avg_pool2d_matrix`` → A likewise for ``adaptive_avg_pool2d``

Unlike max-pooling's P(s), A does not depend on the input: average pooling is linear.
Row (c, oh, ow) holds 1 / divisor[oh, ow] at every pixel (c, ih, iw) of its window.
The window of output (oh, ow) is a product of one row window and one column window
(``geometry.AvgPoolGeometry``), so per channel

    A_c = diag(1 / divisor) · (A_h ⊗ A_w)

with the 0/1 window matrices A_h (H_out, H) and A_w (W_out, W) of the two axes, and A is
C copies of A_c down the diagonal.  The windows and divisors come from the operators' own
geometry (``geometry.avg_pool2d_geometry``, ``adaptive_avg_pool2d_geometry``), so a
builder rejects exactly what the operator rejects.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import geometry
from .csr import check_input_shape, index_dtype

__all__ = ["avg_pool2d_matrix", "adaptive_avg_pool2d_matrix"]


def _axis_matrix(windows, n_in: int) -> sp.csr_array:
    """The 0/1 matrix (n_out, n_in) of one axis: (o, q) = 1 for start ≤ q < stop of
    window o."""
    lengths = np.array([w.stop - w.start for w in windows], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate([np.arange(w.start, w.stop) for w in windows])
    return sp.csr_array((np.ones(indices.size), indices, indptr),
                        shape=(len(windows), n_in))


def _matrix(geom: geometry.AvgPoolGeometry, channels: int, dtype) -> sp.csr_array:
    """A = I_C ⊗ (diag(1 / divisor) · (A_h ⊗ A_w)), as CSR."""
    a_h = _axis_matrix(geom.rows, geom.in_hw[0])
    a_w = _axis_matrix(geom.cols, geom.in_hw[1])
    per_channel = sp.diags_array(1.0 / geom.divisors().ravel()) @ sp.kron(a_h, a_w)
    a = sp.csr_array(sp.kron(sp.eye_array(channels), per_channel, format="csr"), dtype=dtype)
    a.sort_indices()
    csr_index_dtype = index_dtype(a.nnz, *a.shape)
    a.indices, a.indptr = a.indices.astype(csr_index_dtype), a.indptr.astype(csr_index_dtype)
    return a


def avg_pool2d_matrix(input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None, *,
                      dtype=np.float64) -> sp.csr_array:
    """A of ``avg_pool2d`` with these arguments, for one image of ``input_shape`` (C, H,
    W): ``A @ x.ravel() == avg_pool2d(x[None], ...)[0].ravel()`` and ``A.T @ r.ravel()``
    is ``avg_pool2d_transpose``.  Shape (C·H_out·W_out, C·H·W), CSR, ``dtype`` entries."""
    channels, height, width = check_input_shape(input_shape)
    geom = geometry.avg_pool2d_geometry((1, channels, height, width), kernel_size, stride,
                                        padding, ceil_mode, count_include_pad,
                                        divisor_override)
    return _matrix(geom, channels, dtype)


def adaptive_avg_pool2d_matrix(input_shape, output_size, *,
                               dtype=np.float64) -> sp.csr_array:
    """A of ``adaptive_avg_pool2d(x, output_size)``, for one image of ``input_shape``
    (C, H, W).  Shape (C·H_out·W_out, C·H·W), CSR."""
    channels, height, width = check_input_shape(input_shape)
    geom = geometry.adaptive_avg_pool2d_geometry((1, channels, height, width), output_size)
    return _matrix(geom, channels, dtype)
