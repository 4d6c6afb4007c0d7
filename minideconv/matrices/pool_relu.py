"""The 0/1 matrices of max-pooling and ReLU: P(s) and D.

For ONE image flattened in C-order, x = x_img.ravel() with x_img of shape (C, H, W):

* ``max_pool2d_matrix`` → P(s), one 1 per row, at the switch:  P(s) x = max_pool2d(x),
  P(s)ᵀ y = max_unpool2d(y)
* ``relu_matrix`` → D = diag(x > 0):  D x = relu(x)

Both are linear only around the input they were recorded for: the switches s and the
mask x > 0 come from a forward pass, and with them fixed the layer is a selection.
P(s)ᵀ is the true unpooling: a pixel that is the maximum of several (overlapping)
windows collects the sum of their signals.  ``mask_diagonal`` builds diag(mask) for any
0/1 mask, the factor the ReLU rules of ``minideconv.matrices.chains`` put at a ReLU.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import checks
from .csr import check_input_shape, index_dtype, require_numpy

__all__ = ["max_pool2d_matrix", "relu_matrix", "mask_diagonal"]


def max_pool2d_matrix(switches, input_shape, dtype=np.float64) -> sp.csr_array:
    """P(s): the selection matrix of a max-pooling with switches s, for one image.

        P[(c, oh, ow), (c, s[c, oh, ow])] = 1        (one 1 per row)

    ``switches`` are the int flat indices h·W + w of ``max_pool2d`` for one image, shape
    (C, H_out, W_out); ``input_shape = (C, H, W)`` is the pooled input.  Then
    ``P @ x.ravel() == max_pool2d(x)[0].ravel()`` and ``P.T @ y.ravel()`` is the true
    unpooling ``max_unpool2d`` (rows sharing a switch are summed: overlapping windows).
    Shape (C·H_out·W_out, C·H·W).
    """
    channels, height, width = check_input_shape(input_shape)
    require_numpy(switches, "switches")
    if switches.ndim != 3 or switches.shape[0] != channels:
        raise ValueError(f"switches must have shape (C, H_out, W_out) with C = {channels} "
                         f"(input_shape {input_shape}), got {switches.shape}")
    # dtype and the range [0, H·W) of every switch: the ops' own check
    checks.check_switches(switches, switches, (height, width))

    n_rows, n_cols = switches.size, channels * height * width
    csr_index_dtype = index_dtype(n_rows, n_cols)
    plane_offset = (np.arange(channels) * (height * width))[:, None, None]
    indices = (switches + plane_offset).astype(csr_index_dtype).reshape(-1)
    indptr = np.arange(n_rows + 1, dtype=csr_index_dtype)
    return sp.csr_array((np.ones(n_rows, dtype=dtype), indices, indptr),
                        shape=(n_rows, n_cols))


def mask_diagonal(mask: np.ndarray, dtype) -> sp.csr_array:
    """diag(mask) as CSR for a boolean mask of any shape (flattened), storing only the
    ones: D(x > 0) for the mask x > 0, D(r > 0) for r > 0."""
    mask = mask.reshape(-1)
    csr_index_dtype = index_dtype(mask.size)
    indptr = np.zeros(mask.size + 1, dtype=csr_index_dtype)
    np.cumsum(mask, dtype=csr_index_dtype, out=indptr[1:])
    indices = np.flatnonzero(mask).astype(csr_index_dtype)
    return sp.csr_array((np.ones(indices.size, dtype=dtype), indices, indptr),
                        shape=(mask.size, mask.size))


def relu_matrix(x) -> sp.csr_array:
    """D = diag(x > 0) for one array x (usually one image (C, H, W)), so that
    ``D @ x.ravel() == relu(x).ravel()``.  D is also the ReLU's backprop factor.

    Only the ones are stored.  A boolean mask works too (``mask > 0`` is the mask).
    dtype: that of x when x is float32/float64, else float64.  NaN > 0 is False, so
    D x has 0 where relu(x) keeps NaN.
    """
    require_numpy(x, "x")
    dtype = x.dtype if x.dtype in checks.FLOAT_DTYPES else np.float64
    return mask_diagonal(x > 0, dtype)

