"""The convolution as a matrix: W of ``conv2d`` and Wᵀ of ``conv_transpose2d``.

For ONE image flattened in C-order, x = x_img.ravel() with x_img of shape (C, H, W):

* ``conv2d_matrix`` → W, shape (C_out·H_out·W_out, C_in·H·W):  W x = conv2d(x)
* ``conv_transpose2d_matrix`` → Wᵀ, shape (C_in·H·W, C_out·H_out·W_out):
  Wᵀ y = conv_transpose2d(y)

(bias is the affine offset of a convolution, not part of the linear map W.)

How the convolution matrices are built
--------------------------------------
The matrix of a 2-D convolution factors over the two spatial axes.  Along one axis, an
output position o looks at the input position

    q(o, i) = o·s − p_before + i·d           (tap i = 0 … k−1)

which is dropped when it falls in the zero padding, or replaced by the pixel the border
copies with circular (q mod n), reflect or replicate padding.  These (o, i, q)
*incidences* of one axis are a tiny table (n_out·k rows).
Row (c_out, oh, ow) of W then has, for every input channel c of its group and every pair
of incidences (oh, i, qh), (ow, j, qw), the entry

    W[(c_out, oh, ow), (c, qh, qw)] += weight[c_out, c, i, j].

So the number of nonzeros of every row is known from the two axis tables alone:
``indptr`` is a cumulative sum, ``indices`` and ``data`` are allocated once at their final
size, and one Numba loop (``_fill_csr``) writes every row in column order.  No dense
matrix, no list of coordinates to sort, no Python loop over entries; the peak memory is
the CSR itself.  The transposed convolution is built the same way from the same
incidences read the other way round (input position q collects from the outputs o that
saw it), which is why ``conv_transpose2d_matrix(...) == conv2d_matrix(...).T`` is a real
check.

With circular padding and a kernel wider than the image, or with reflect and replicate
padding at the border, several taps of one row can read the same input pixel; their
weights are then summed into one entry.  Column indices
are sorted within every row in both cases.

Index arrays are int32 while the matrix fits (nnz and both dimensions < 2³¹, like
scipy), int64 beyond (``csr.index_dtype``).  The stride, padding, dilation and groups are
validated and normalised by ``minideconv.geometry.conv2d_geometry``, the operators' own
validator, so a builder rejects exactly what ``conv2d`` rejects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import scipy.sparse as sp
from numba import njit

from .. import checks, geometry
from ..padding import padded_sources
from .csr import check_input_shape, index_dtype, require_numpy

__all__ = ["conv2d_matrix", "conv_transpose2d_matrix"]


# =========================================================================== argument checks

def _conv_geometry(weight, input_shape, stride, padding, dilation, groups, padding_mode):
    """The shared convolution validator, for one image of shape ``input_shape``."""
    channels, height, width = check_input_shape(input_shape)
    require_numpy(weight, "weight")
    checks.check_float_array(weight, "weight", ndim=4, layout="(C_out, C_in/groups, kh, kw)")
    return geometry.conv2d_geometry((1, channels, height, width), weight.shape, stride, padding,
                                   dilation, groups, padding_mode, name_in="input_shape")


# =========================================================================== one spatial axis

def _axis_incidences(n_in: int, n_out: int, kernel: int, stride: int, dilation: int,
                     pad_before: int, pad_after: int, mode: str):
    """All triples (o, i, q) of one axis: output o sees input q through tap i.

        q = source(o·stride + i·dilation)      (a position of the padded axis)

    with ``padding.padded_sources``: the position itself shifted by ``pad_before``, or
    the pixel a circular, reflect or replicate border copies.  With zero padding the
    triples that read a padded zero are dropped: they contribute nothing to the matrix.
    """
    o = np.repeat(np.arange(n_out), kernel)
    i = np.tile(np.arange(kernel), n_out)
    source = padded_sources(n_in, pad_before, pad_after,
                            "constant" if mode == "zeros" else mode)
    q = source[o * stride + i * dilation]
    kept = q >= 0
    return o[kept], i[kept], q[kept]


@dataclass(frozen=True)
class _AxisTable:
    """The matrix of one axis, in a two-level CSR layout.

    Row r has the distinct columns ``column[entry_ptr[r]:entry_ptr[r + 1]]``, sorted; entry
    e is fed by the kernel taps ``taps[tap_ptr[e]:tap_ptr[e + 1]]``.  An entry has one tap,
    except when the padding sends several taps of one row to the same pixel (circular,
    reflect, replicate): then their weights add up.
    """

    entry_ptr: np.ndarray
    column: np.ndarray
    tap_ptr: np.ndarray
    taps: np.ndarray

    @property
    def entries_per_row(self) -> np.ndarray:
        return np.diff(self.entry_ptr)


def _axis_table(rows, cols, taps, n_rows: int) -> _AxisTable:
    """Group incidences (row, col, tap) by row, then by column.  These arrays are at most
    n_out·k long, so sorting them is free; the 2-D matrix itself is never sorted."""
    order = np.lexsort((taps, cols, rows))
    rows, cols, taps = rows[order], cols[order], taps[order]
    starts_entry = np.ones(rows.size, dtype=bool)
    starts_entry[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    entry_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[starts_entry], minlength=n_rows), out=entry_ptr[1:])
    tap_ptr = np.append(np.flatnonzero(starts_entry), rows.size).astype(np.int64)
    return _AxisTable(entry_ptr, cols[starts_entry].astype(np.int64), tap_ptr,
                      taps.astype(np.int64))


def _axis_tables(geom, transpose: bool) -> Tuple[_AxisTable, _AxisTable]:
    """The (H, W) axis tables of W (rows = outputs o, columns = inputs q) or of Wᵀ
    (the same incidences, rows = inputs q, columns = outputs o)."""
    tables = []
    for axis in range(2):
        n_in, n_out = geom.in_hw[axis], geom.out_hw[axis]
        o, i, q = _axis_incidences(n_in, n_out, geom.kernel[axis], geom.stride[axis],
                                   geom.dilation[axis], geom.pads[2 * axis],
                                   geom.pads[2 * axis + 1], geom.padding_mode)
        tables.append(_axis_table(q, o, i, n_in) if transpose else
                      _axis_table(o, q, i, n_out))
    return tables[0], tables[1]


# =========================================================================== 2-D assembly

@njit(cache=True)
def _fill_csr(indptr, indices, data, kernels, rows_per_group, plane_h, plane_w,
              h_entry_ptr, h_column, h_tap_ptr, h_taps,
              w_entry_ptr, w_column, w_tap_ptr, w_taps):
    """Write ``indices`` and ``data`` of every row of a convolution matrix, column-sorted.

    Row (r, rh, rw) — row channel r, row rh of the H table, row rw of the W table — gets,
    for every entry channel e of r's group g and every pair of axis entries a of row rh
    and b of row rw, the entry

        column = (g·E + e)·plane_h·plane_w + h_column[a]·plane_w + w_column[b]
        value  = Σ_{i ∈ taps(a)} Σ_{j ∈ taps(b)} kernels[r, e, i, j]

    (E entry channels per group).  The row starts at indptr[row]; e, a, b ascending give
    ascending columns, so no sort is needed.
    """
    n_row_channels, n_entry_channels = kernels.shape[0], kernels.shape[1]
    n_rows_h = h_entry_ptr.shape[0] - 1
    n_rows_w = w_entry_ptr.shape[0] - 1
    plane = plane_h * plane_w
    single_taps = (h_taps.shape[0] == h_column.shape[0]
                   and w_taps.shape[0] == w_column.shape[0])
    for r in range(n_row_channels):
        first_channel = (r // rows_per_group) * n_entry_channels
        for rh in range(n_rows_h):
            for rw in range(n_rows_w):
                pos = indptr[(r * n_rows_h + rh) * n_rows_w + rw]
                for e in range(n_entry_channels):
                    channel_start = (first_channel + e) * plane
                    for a in range(h_entry_ptr[rh], h_entry_ptr[rh + 1]):
                        line_start = channel_start + h_column[a] * plane_w
                        if single_taps:      # entry a is tap h_taps[a]: a plain gather
                            kernel_line = kernels[r, e, h_taps[a]]
                            for b in range(w_entry_ptr[rw], w_entry_ptr[rw + 1]):
                                indices[pos] = line_start + w_column[b]
                                data[pos] = kernel_line[w_taps[b]]
                                pos += 1
                            continue
                        for b in range(w_entry_ptr[rw], w_entry_ptr[rw + 1]):
                            value = 0.0
                            for ta in range(h_tap_ptr[a], h_tap_ptr[a + 1]):
                                for tb in range(w_tap_ptr[b], w_tap_ptr[b + 1]):
                                    value += kernels[r, e, h_taps[ta], w_taps[tb]]
                            indices[pos] = line_start + w_column[b]
                            data[pos] = value
                            pos += 1


def _assemble_csr(table_h: _AxisTable, table_w: _AxisTable, kernels: np.ndarray,
                  groups: int, column_plane_hw: Tuple[int, int]) -> sp.csr_array:
    """The CSR matrix with rows (r, rh, rw) described in ``_fill_csr``.

    ``kernels[r]`` (entry channels, kh, kw) is what row channel r sees.  Every row of row
    channel r holds E · (entries of rh) · (entries of rw) values, so ``indptr`` is a
    cumulative sum of those counts and the arrays are allocated once, at their final size.
    """
    n_row_channels, n_entry_channels = kernels.shape[:2]
    per_row = (n_entry_channels * table_h.entries_per_row[:, None]
               * table_w.entries_per_row[None, :]).ravel()
    n_rows = n_row_channels * per_row.size
    n_cols = groups * n_entry_channels * column_plane_hw[0] * column_plane_hw[1]
    nnz = n_row_channels * int(per_row.sum())
    csr_index_dtype = index_dtype(nnz, n_rows, n_cols)

    indptr = np.zeros(n_rows + 1, dtype=csr_index_dtype)
    np.cumsum(np.tile(per_row, n_row_channels), dtype=csr_index_dtype, out=indptr[1:])
    indices = np.empty(nnz, dtype=csr_index_dtype)
    data = np.empty(nnz, dtype=kernels.dtype)
    _fill_csr(indptr, indices, data, kernels, n_row_channels // groups, *column_plane_hw,
              table_h.entry_ptr, table_h.column, table_h.tap_ptr, table_h.taps,
              table_w.entry_ptr, table_w.column, table_w.tap_ptr, table_w.taps)
    return sp.csr_array((data, indices, indptr), shape=(n_rows, n_cols))

# =========================================================================== public builders

def conv2d_matrix(weight, input_shape, stride=1, padding=0, dilation=1, groups=1,
                  padding_mode="zeros") -> sp.csr_array:
    """The convolution as a sparse matrix W: ``W @ x.ravel() == conv2d(x[None], weight,
    ...).ravel()`` for one image x of shape ``input_shape = (C_in, H, W)``.

        W[(o, oh, ow), (c, qh, qw)] = Σ weight[o, c − g(o)·C_g, i, j]
              over taps with qh = oh·sh − p_top + i·dh,  qw = ow·sw − p_left + j·dw
              (with padding_mode "circular", "reflect" or "replicate", the pixel the
              border copies; dropped outside the image with zero padding)

    Shape (C_out·H_out·W_out, C_in·H·W), CSR, dtype of ``weight``, sorted column indices.
    Arguments as ``minideconv.conv2d`` (padding may be an int, a pair, "valid" or "same";
    padding_mode "zeros", "circular", "reflect" or "replicate", with PyTorch's limits on
    the padding).
    Reshape a product with ``(C_out, H_out, W_out)``, the sizes of
    ``minideconv.shapes.conv2d_output_shape``.
    """
    geom = _conv_geometry(weight, input_shape, stride, padding, dilation, groups,
                          padding_mode)
    table_h, table_w = _axis_tables(geom, transpose=False)
    return _assemble_csr(table_h, table_w, np.ascontiguousarray(weight), geom.groups,
                         geom.in_hw)


def conv_transpose2d_matrix(weight, input_shape, stride=1, padding=0, dilation=1, groups=1,
                            padding_mode="zeros") -> sp.csr_array:
    """Wᵀ for the convolution ``conv2d_matrix(weight, input_shape, ...)`` describes, built
    from the scatter pattern of the transposed convolution (never by transposing W):

        Wᵀ[(c, qh, qw), (o, oh, ow)] = Σ weight[o, c − g(c)·C_g, i, j]
              over the outputs (oh, ow) and taps (i, j) that read input pixel (qh, qw)

    so ``Wᵀ @ y.ravel() == conv_transpose2d(y[None], weight, ..., output_size=(H, W))``
    for y of shape (C_out, H_out, W_out).  ``input_shape`` is the *convolution's* input
    (C_in, H, W), i.e. the shape Wᵀ maps back to.  Shape (C_in·H·W, C_out·H_out·W_out).
    """
    geom = _conv_geometry(weight, input_shape, stride, padding, dilation, groups,
                          padding_mode)
    table_h, table_w = _axis_tables(geom, transpose=True)
    c_out, c_in_per_group, kh, kw = weight.shape
    c_out_per_group = c_out // geom.groups
    # Row channel c (an input channel) sees weight[o, c_local] for the o of its group.
    kernels = (np.asarray(weight)
               .reshape(geom.groups, c_out_per_group, c_in_per_group, kh, kw)
               .transpose(0, 2, 1, 3, 4)
               .reshape(geom.in_channels, c_out_per_group, kh, kw))
    return _assemble_csr(table_h, table_w, np.ascontiguousarray(kernels), geom.groups,
                         geom.out_hw)
