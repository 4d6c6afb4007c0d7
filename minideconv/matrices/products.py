"""The matrices of the products and the normalisations, around one recorded forward pass
of ONE image, flattened in C-order as every block of ``network``:

* ``mul_blocks`` → the two blocks of y = a ⊙ b: diag(b) for a, and for b either diag(a)
  or, for a gate b of shape (C, 1, 1), the (C·H·W × C) matrix whose row (c, h, w) holds
  a[c, h, w] in column c (each gate value reaches its whole plane);
* ``channel_affine_matrix`` → diag(s), each channel's s over its plane;
* ``standardisation_matrix`` → the Jacobian of y = γ ⊙ x̂ of a normalisation: one dense
  block per standardised set S of m values (a position's channels, or a group),

      J_S = diag(γ_S) (1/σ_S) (I − 11ᵀ/m − x̂_S x̂_Sᵀ/m),

  built from the recorded x̂ and 1/σ without the layer's backward.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import nn


def _diagonal(values):
    return sp.diags_array(np.ravel(values), format="csr")


def mul_blocks(a, b):
    """The blocks (∂y/∂a, ∂y/∂b) of y = a ⊙ b for one image: a, b of shape (C, H, W), or
    one of them a gate (C, 1, 1)."""
    full = a if a.size >= b.size else b
    return [_product_block(b, a, full.shape), _product_block(a, b, full.shape)]


def _product_block(other, own, full_shape):
    """∂(own ⊙ other)/∂own: diag(other) when own is full size, else the gate's matrix."""
    if own.shape == tuple(full_shape):
        return _diagonal(np.broadcast_to(other, full_shape))
    channels, height, width = full_shape
    rows = np.arange(channels * height * width)
    columns = np.repeat(np.arange(channels), height * width)    # row (c, h, w) → gate c
    return sp.csr_array((np.ravel(other), (rows, columns)),
                        shape=(rows.size, channels))


def channel_affine_matrix(scale, shape):
    """diag(s) on one image of ``shape`` (C, …): s per channel, or one s for all."""
    channels = shape[0]
    per_plane = int(np.prod(shape[1:]))
    return _diagonal(np.repeat(np.broadcast_to(scale, (channels,)), per_plane))


def standardisation_matrix(normalised, inv_std, sets, weight):
    """The Jacobian of x ↦ γ ⊙ x̂ for one image: ``normalised`` x̂ flattened, ``sets``
    (S, m) the flat indices of each standardised set, ``inv_std`` (S,) its 1/σ,
    ``weight`` γ per flat index (or None: 1)."""
    normalised = np.ravel(normalised)
    count, m = sets.shape
    x_hat = normalised[sets]                                       # (S, m)
    blocks = np.eye(m) - 1.0 / m - x_hat[:, :, None] * x_hat[:, None, :] / m
    blocks = blocks * np.ravel(inv_std)[:, None, None]
    if weight is not None:
        blocks = blocks * np.ravel(weight)[sets][:, :, None]      # row i scaled by γ_i
    rows = np.broadcast_to(sets[:, :, None], blocks.shape)
    columns = np.broadcast_to(sets[:, None, :], blocks.shape)
    size = normalised.size
    return sp.csr_array((blocks.ravel().astype(normalised.dtype),
                         (rows.ravel(), columns.ravel())), shape=(size, size))


def channel_sets(shape):
    """(H·W, C): the flat indices of the C channels at each position of (C, H, W)."""
    channels = shape[0]
    positions = int(np.prod(shape[1:]))
    return np.arange(channels * positions).reshape(channels, positions).T


def group_sets(shape, num_groups):
    """(G, (C/G)·H·W): the flat indices of each group of consecutive channels."""
    return np.arange(int(np.prod(shape))).reshape(num_groups, -1)


def product_blocks(layer, record, input_shapes, dtype):
    """The blocks of a ``Mul``, ``ChannelAffine``, ``ChannelLayerNorm`` or ``GroupNorm``
    around its record of one image; None for any other layer."""
    shape = tuple(input_shapes[0])
    if isinstance(layer, nn.Mul):
        return mul_blocks(record[0][0], record[1][0])
    if isinstance(layer, nn.ChannelAffine):
        return [channel_affine_matrix(layer.scale, shape).astype(dtype)]
    if isinstance(layer, nn.ChannelLayerNorm):
        normalised, inv_std = record
        return [standardisation_matrix(normalised[0], inv_std[0].ravel(),
                                       channel_sets(shape), _per_index(layer, shape))]
    if isinstance(layer, nn.GroupNorm):
        normalised, inv_std = record
        return [standardisation_matrix(normalised[0], inv_std[0].ravel(),
                                       group_sets(shape, layer.num_groups),
                                       _per_index(layer, shape))]
    return None


def _per_index(layer, shape):
    """γ repeated over each channel's plane (None when the layer has no γ)."""
    if layer.weight is None:
        return None
    return np.repeat(layer.weight, int(np.prod(shape[1:])))
