"""The matrices of the layers that mix channels at each position: the softmax's and the
local response normalisation's Jacobians around a recorded forward pass, and the channel
shuffle's permutation matrix.

For ONE value of shape (C,) or (C, H, W) flattened in C-order, entry (c, s) — channel c,
position s of the S = H·W positions — is at c·S + s.  Every matrix here couples entries
of the same position only:

* ``softmax_matrix`` → J = diag(p) − p pᵀ at each position (p the softmax's output);
* ``local_response_norm_matrix`` → ∂b/∂a, with b_c = a_c D_c^(−β),
  D_c = k + (α/n) Σ_{c′ ∈ W(c)} a_{c′}²;
* ``channel_shuffle_matrix`` → P, one 1 per row: row (i·g + j) reads channel j·(C/g) + i.

Each entry is written from its formula, channel pair by channel pair — none calls a
layer's ``backward``, so they check it independently.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["softmax_matrix", "local_response_norm_matrix", "channel_shuffle_matrix"]


def _channels_and_positions(shape):
    shape = tuple(int(v) for v in shape)
    if len(shape) not in (1, 3):
        raise ValueError(f"shape must be (C,) or (C, H, W), got {shape}")
    return shape[0], int(np.prod(shape[1:], dtype=np.int64))


def _pairs_matrix(rows, cols, values, size, dtype):
    """The (size × size) matrix with ``values`` at (``rows``, ``cols``), repeats summed."""
    return sp.csr_array(sp.coo_array((np.concatenate(values).astype(dtype),
                                      (np.concatenate(rows), np.concatenate(cols))),
                                     shape=(size, size)))


def softmax_matrix(p) -> sp.csr_array:
    """J of the softmax over the channels around its output ``p`` (one value, (C,) or
    (C, H, W)):  J[(c, s), (c′, s)] = p[c, s] (δ_{cc′} − p[c′, s])."""
    p = np.asarray(p)
    channels, positions = _channels_and_positions(p.shape)
    flat = p.reshape(channels, positions)
    s = np.arange(positions)
    rows, cols, values = [], [], []
    for c in range(channels):
        for c2 in range(channels):
            rows.append(c * positions + s)
            cols.append(c2 * positions + s)
            values.append(flat[c] * ((c == c2) - flat[c2]))
    return _pairs_matrix(rows, cols, values, p.size, p.dtype)


def local_response_norm_matrix(a, size, alpha, beta, k, before) -> sp.csr_array:
    """∂b/∂a of the local response normalisation around its input ``a`` (one value):
    the window of channel c is [c − before, c + size − 1 − before] ∩ [0, C), and

        ∂b_c/∂a_j = δ_{cj} D_c^(−β) − (2αβ/n) a_c a_j D_c^(−β−1)   for j in W(c)."""
    a = np.asarray(a)
    channels, positions = _channels_and_positions(a.shape)
    flat = a.reshape(channels, positions).astype(np.float64)
    after = size - 1 - before
    windows = [range(max(0, c - before), min(channels, c + after + 1))
               for c in range(channels)]
    d = np.stack([k + alpha / size * sum(flat[j] ** 2 for j in windows[c])
                  for c in range(channels)])
    s = np.arange(positions)
    rows, cols, values = [], [], []
    for c in range(channels):
        rows.append(c * positions + s)
        cols.append(c * positions + s)
        values.append(d[c] ** -beta)
        for j in windows[c]:
            rows.append(c * positions + s)
            cols.append(j * positions + s)
            values.append(-2 * alpha * beta / size * flat[c] * flat[j] *
                          d[c] ** (-beta - 1))
    return _pairs_matrix(rows, cols, values, a.size, a.dtype)


def channel_shuffle_matrix(groups, shape, dtype=np.float64) -> sp.csr_array:
    """P of the channel shuffle with ``groups`` for one value of ``shape``: output channel
    o = i·g + j (i < C/g, j < g) is input channel j·(C/g) + i, at every position."""
    channels, positions = _channels_and_positions(shape)
    if channels % groups:
        raise ValueError(f"groups={groups} must divide the channels, got {channels}")
    per_group = channels // groups
    s = np.arange(positions)
    rows, cols, values = [], [], []
    for o in range(channels):
        i, j = divmod(o, groups)
        rows.append(o * positions + s)
        cols.append((j * per_group + i) * positions + s)
        values.append(np.ones(positions))
    return _pairs_matrix(rows, cols, values, channels * positions, dtype)
