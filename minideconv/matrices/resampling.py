"""Upsampling as a matrix: A of ``upsample_nearest2d`` and ``upsample_bilinear2d``.

For ONE image flattened in C-order, x = x_img.ravel() with x_img of shape (C, H, W):

* ``upsample_nearest2d_matrix`` → A, shape (C·H_out·W_out, C·H·W), one 1 per row at the
  source pixel:  A x = upsample_nearest2d(x),  Aᵀ r = upsample_nearest2d_transpose(r)
* ``upsample_bilinear2d_matrix`` → A likewise, up to four weights per row
* ``pad_matrix`` → P, one 1 per row at the pixel a border cell copies (none for a zero):
  P x = padding.pad(x), Pᵀ r = padding.pad_adjoint(r)

Both are separable: output (oh, ow) reads the rows of A_h[oh] and the columns of A_w[ow]
(``geometry.InterpolationGeometry``), so per channel A_c = A_h ⊗ A_w, and A is C copies
of A_c down the diagonal.  The taps come from the operators' own geometry
(``geometry.interpolation_geometry``), so a builder rejects exactly what the operator
rejects; where a bilinear tap is clamped at the border its two weights land on one
pixel and add up.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import geometry
from ..padding import check_pads, padded_sources
from .csr import check_input_shape

__all__ = ["upsample_nearest2d_matrix", "upsample_bilinear2d_matrix", "pad_matrix"]


def _axis_matrix(taps, n_in: int) -> sp.csr_array:
    """(n_out, n_in): entry (o, q) = the sum of the weights of o's taps that read q
    (duplicates summed by the COO → CSR conversion)."""
    n_out, n_taps = taps.sources.shape
    rows = np.repeat(np.arange(n_out), n_taps)
    return sp.coo_array((taps.weights.ravel(), (rows, taps.sources.ravel())),
                        shape=(n_out, n_in)).tocsr()


def _upsample_matrix(input_shape, mode, size, scale_factor, align_corners,
                     recompute_scale_factor) -> sp.csr_array:
    channels, height, width = check_input_shape(input_shape)
    geom = geometry.interpolation_geometry((1, channels, height, width), size, scale_factor,
                                           mode, align_corners, recompute_scale_factor,
                                           name_in="input_shape")
    per_channel = sp.kron(_axis_matrix(geom.rows, height), _axis_matrix(geom.cols, width))
    return sp.csr_array(sp.kron(sp.identity(channels), per_channel, format="csr"))


def upsample_nearest2d_matrix(input_shape, size=None, scale_factor=None,
                              recompute_scale_factor=None, exact=False) -> sp.csr_array:
    """A of ``upsample_nearest2d`` with these arguments, for one image of ``input_shape``
    (C, H, W): ``A @ x.ravel() == upsample_nearest2d(x[None], ...).ravel()``; float64."""
    return _upsample_matrix(input_shape, "nearest-exact" if exact else "nearest", size,
                            scale_factor, None, recompute_scale_factor)


def upsample_bilinear2d_matrix(input_shape, size=None, scale_factor=None,
                               align_corners=False,
                               recompute_scale_factor=None) -> sp.csr_array:
    """A of ``upsample_bilinear2d`` with these arguments, for one image of ``input_shape``
    (C, H, W): ``A @ x.ravel() == upsample_bilinear2d(x[None], ...).ravel()``; float64."""
    return _upsample_matrix(input_shape, "bilinear", size, scale_factor, align_corners,
                            recompute_scale_factor)


def pad_matrix(input_shape, pads, mode="constant") -> sp.csr_array:
    """P of ``padding.pad(x, pads, mode)`` for one image of ``input_shape`` (C, H, W),
    ``pads = (top, bottom, left, right)``: ``P @ x.ravel() == pad(x, ...).ravel()``;
    per channel P_h ⊗ P_w, each axis's row k holding a 1 at the pixel padded position k
    copies.  float64."""
    channels, height, width = check_input_shape(input_shape)
    check_pads(pads, (height, width), mode, name="pads")
    axes = []
    for length, before, after in ((height, pads[0], pads[1]), (width, pads[2], pads[3])):
        sources = padded_sources(length, before, after, mode)
        copies = np.flatnonzero(sources >= 0)
        axes.append(sp.coo_array((np.ones(copies.size), (copies, sources[copies])),
                                 shape=(sources.size, length)))
    return sp.csr_array(sp.kron(sp.identity(channels), sp.kron(*axes), format="csr"))
