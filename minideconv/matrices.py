"""Every linear operator of a small CNN as an explicit sparse matrix.

For ONE image flattened in C-order, x = x_img.ravel() with x_img of shape (C, H, W):

* ``conv2d_matrix`` → W, shape (C_out·H_out·W_out, C_in·H·W):  W x = conv2d(x)
* ``conv_transpose2d_matrix`` → Wᵀ, shape (C_in·H·W, C_out·H_out·W_out):
  Wᵀ y = conv_transpose2d(y)
* ``max_pool2d_matrix`` → P(s), one 1 per row, at the switch:  P(s) x = max_pool2d(x),
  P(s)ᵀ y = max_unpool2d(y)
* ``relu_matrix`` → D = diag(x > 0):  D x = relu(x)

(bias is the affine offset of a convolution, not part of the linear map W.)

With them, a network's forward pass is a product of matrices and every backward pass is
the product of the transposes in reverse order — except at the ReLUs, where the three
visualisation methods put three different diagonal matrices (``rule_backward_map``).
And the seed question — is the transposed convolution an inverse? — becomes linear
algebra on W: ``singular_values``, ``gram_deviation`` (‖WᵀW − I‖) and ``reconstruct``
(Wᵀy against the least-squares solution argmin‖Wx − y‖).

How the convolution matrices are built
--------------------------------------
The matrix of a 2-D convolution factors over the two spatial axes.  Along one axis, an
output position o looks at the input position

    q(o, i) = o·s − p_before + i·d           (tap i = 0 … k−1)

which is dropped when it falls in the zero padding, or wrapped, q mod n, with circular
padding.  These (o, i, q) *incidences* of one axis are a tiny table (n_out·k rows).
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

With circular padding and a kernel wider than the image, several taps of one row can wrap
onto the same input pixel; their weights are then summed into one entry.  Column indices
are sorted within every row in both cases.

Index arrays are int32 while the matrix fits (nnz and both dimensions < 2³¹, like
scipy), int64 beyond.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import njit

from . import _checks

__all__ = [
    "conv2d_matrix", "conv_transpose2d_matrix", "max_pool2d_matrix", "relu_matrix",
    "forward_chain", "backward_chain", "relu_rule_factors", "rule_backward_map",
    "BackwardMap", "singular_values", "gram_deviation", "GramDeviation",
    "least_squares_inverse", "reconstruct", "Reconstruction",
    "circular_gram_eigenvalues", "allpass_kernel",
]

_INT32_MAX = np.iinfo(np.int32).max


def _index_dtype(*sizes: int):
    """int32 when every size fits, int64 otherwise (scipy's rule for CSR indices)."""
    return np.int32 if max(sizes) <= _INT32_MAX else np.int64


# =========================================================================== argument checks

def _check_input_shape(input_shape) -> Tuple[int, int, int]:
    """``input_shape`` must be (C, H, W): three positive ints (one image, no batch axis)."""
    if not (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3
            and all(_checks._is_int(v) for v in input_shape)):
        raise TypeError(f"input_shape must be (C, H, W), three ints for one image, "
                        f"got {input_shape!r}")
    if min(input_shape) < 1:
        raise ValueError(f"input_shape must be positive (C, H, W), got {tuple(input_shape)}")
    return tuple(int(v) for v in input_shape)


def _require_numpy(a, name: str) -> None:
    """The matrices are scipy.sparse (CPU): a CuPy array must come over first."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (the explicit matrices are "
                        f"scipy.sparse, on the CPU; use cupy.asnumpy for GPU arrays), "
                        f"got {type(a).__name__}")


def _conv_geometry(weight, input_shape, stride, padding, dilation, groups, padding_mode):
    """The shared convolution validator, for one image of shape ``input_shape``."""
    channels, height, width = _check_input_shape(input_shape)
    _require_numpy(weight, "weight")
    _checks.check_float_array(weight, "weight", ndim=4, layout="(C_out, C_in/groups, kh, kw)")
    return _checks.conv2d_geometry((1, channels, height, width), weight.shape, stride, padding,
                                   dilation, groups, padding_mode, name_in="input_shape")


def _as_sparse(matrix, name: str):
    """A 2-D scipy.sparse CSR array (dense 2-D ndarrays are converted)."""
    if sp.issparse(matrix):
        if matrix.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {matrix.shape}")
        return sp.csr_array(matrix)
    if isinstance(matrix, np.ndarray) and matrix.ndim == 2:
        return sp.csr_array(matrix)
    raise TypeError(f"{name} must be a 2-D scipy.sparse matrix/array or numpy.ndarray, "
                    f"got {type(matrix).__name__}")


# =========================================================================== one spatial axis

def _axis_incidences(n_in: int, n_out: int, kernel: int, stride: int, dilation: int,
                     pad_before: int, circular: bool):
    """All triples (o, i, q) of one axis: output o sees input q through tap i.

        q = o·stride − pad_before + i·dilation      (mod n_in when circular)

    With zero padding the triples whose q falls outside [0, n_in) are dropped: they read
    a padded zero and contribute nothing to the matrix.
    """
    o = np.repeat(np.arange(n_out), kernel)
    i = np.tile(np.arange(kernel), n_out)
    q = o * stride - pad_before + i * dilation
    if circular:
        return o, i, q % n_in
    inside = (q >= 0) & (q < n_in)
    return o[inside], i[inside], q[inside]


@dataclass(frozen=True)
class _AxisTable:
    """The matrix of one axis, in a two-level CSR layout.

    Row r has the distinct columns ``column[entry_ptr[r]:entry_ptr[r + 1]]``, sorted; entry
    e is fed by the kernel taps ``taps[tap_ptr[e]:tap_ptr[e + 1]]``.  An entry has one tap,
    except when circular padding wraps several taps of one row onto the same pixel: then
    their weights add up.
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
    circular = geom.padding_mode == "circular"
    tables = []
    for axis in range(2):
        n_in, n_out = geom.in_hw[axis], geom.out_hw[axis]
        o, i, q = _axis_incidences(n_in, n_out, geom.kernel[axis], geom.stride[axis],
                                   geom.dilation[axis], geom.pads[2 * axis], circular)
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
    index_dtype = _index_dtype(nnz, n_rows, n_cols)

    indptr = np.zeros(n_rows + 1, dtype=index_dtype)
    np.cumsum(np.tile(per_row, n_row_channels), dtype=index_dtype, out=indptr[1:])
    indices = np.empty(nnz, dtype=index_dtype)
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
              (taken mod H, W with padding_mode="circular"; dropped outside the image
              with zero padding)

    Shape (C_out·H_out·W_out, C_in·H·W), CSR, dtype of ``weight``, sorted column indices.
    Arguments as ``minideconv.conv2d`` (padding may be an int, a pair, "valid" or "same";
    padding_mode "zeros" or "circular", padding ≤ input size then, as in PyTorch).
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


def max_pool2d_matrix(switches, input_shape, dtype=np.float64) -> sp.csr_array:
    """P(s): the selection matrix of a max-pooling with switches s, for one image.

        P[(c, oh, ow), (c, s[c, oh, ow])] = 1        (one 1 per row)

    ``switches`` are the int flat indices h·W + w of ``max_pool2d`` for one image, shape
    (C, H_out, W_out); ``input_shape = (C, H, W)`` is the pooled input.  Then
    ``P @ x.ravel() == max_pool2d(x)[0].ravel()`` and ``P.T @ y.ravel()`` is the true
    unpooling ``max_unpool2d`` (rows sharing a switch are summed: overlapping windows).
    Shape (C·H_out·W_out, C·H·W).
    """
    channels, height, width = _check_input_shape(input_shape)
    _require_numpy(switches, "switches")
    if switches.ndim != 3 or switches.shape[0] != channels:
        raise ValueError(f"switches must have shape (C, H_out, W_out) with C = {channels} "
                         f"(input_shape {input_shape}), got {switches.shape}")
    # dtype and the range [0, H·W) of every switch: the ops' own check
    _checks.check_switches(switches, switches, (height, width))

    n_rows, n_cols = switches.size, channels * height * width
    index_dtype = _index_dtype(n_rows, n_cols)
    plane_offset = (np.arange(channels) * (height * width))[:, None, None]
    indices = (switches + plane_offset).astype(index_dtype).reshape(-1)
    return sp.csr_array((np.ones(n_rows, dtype=dtype), indices,
                         np.arange(n_rows + 1, dtype=index_dtype)), shape=(n_rows, n_cols))


def _diagonal_01(mask: np.ndarray, dtype) -> sp.csr_array:
    """diag(mask) as CSR, storing only the ones."""
    mask = mask.reshape(-1)
    index_dtype = _index_dtype(mask.size)
    indptr = np.zeros(mask.size + 1, dtype=index_dtype)
    np.cumsum(mask, dtype=index_dtype, out=indptr[1:])
    indices = np.flatnonzero(mask).astype(index_dtype)
    return sp.csr_array((np.ones(indices.size, dtype=dtype), indices, indptr),
                        shape=(mask.size, mask.size))


def relu_matrix(x) -> sp.csr_array:
    """D = diag(x > 0) for one array x (usually one image (C, H, W)), so that
    ``D @ x.ravel() == relu(x).ravel()``.  D is also the ReLU's backprop factor.

    Only the ones are stored.  A boolean mask works too (``mask > 0`` is the mask).
    dtype: that of x when x is float32/float64, else float64.  NaN > 0 is False, so
    D x has 0 where relu(x) keeps NaN.
    """
    _require_numpy(x, "x")
    dtype = x.dtype if x.dtype in _checks.FLOAT_DTYPES else np.float64
    return _diagonal_01(x > 0, dtype)


# =========================================================================== chains

def _check_chain(factors) -> list:
    factors = [_as_sparse(f, f"factors[{k}]") for k, f in enumerate(factors)]
    if not factors:
        raise ValueError("factors must hold at least one matrix")
    for k in range(1, len(factors)):
        if factors[k].shape[1] != factors[k - 1].shape[0]:
            raise ValueError(
                f"factors[{k}] has shape {factors[k].shape} but factors[{k - 1}] produces "
                f"{factors[k - 1].shape[0]} values: the factors must chain in forward order")
    return factors


def forward_chain(factors: Sequence) -> sp.csr_array:
    """The whole forward map of a recorded pass, F = F_n ··· F_2 F_1.

    ``factors`` lists the layer matrices in forward (application) order, e.g.
    ``[W1, D1, P1, W2, D2]`` for conv → relu → pool → conv → relu, each built for the
    recorded input (switches s, masks x > 0).  Then F x equals the network's output
    for that input (the ReLU masks and switches make the network linear around it).
    """
    factors = _check_chain(factors)
    return functools.reduce(lambda total, f: f @ total, factors[1:], factors[0]).tocsr()


def backward_chain(factors: Sequence, replacements: Optional[Dict[int, object]] = None
                   ) -> sp.csr_array:
    """The backward map B = G_1 G_2 ··· G_n, with G_k = F_kᵀ unless ``replacements[k]``
    gives another matrix for step k.

    Without replacements B = Fᵀ, the gradient (backprop) map.  The deconvnet and guided
    backprop replace only the ReLU factors (``relu_rule_factors``), so the three maps are
    products of the same matrices except at the ReLUs.
    """
    factors = _check_chain(factors)
    replacements = dict(replacements or {})
    backward = []
    for k, f in enumerate(factors):
        g = _as_sparse(replacements.pop(k), f"replacements[{k}]") if k in replacements \
            else f.T
        if g.shape != f.T.shape:
            raise ValueError(f"replacements[{k}] must have the shape of factors[{k}].T "
                             f"{f.T.shape}, got {g.shape}")
        backward.append(g)
    if replacements:
        raise ValueError(f"replacements has positions {sorted(replacements)} outside "
                         f"0..{len(factors) - 1}")
    return functools.reduce(lambda total, g: total @ g, backward[1:], backward[0]).tocsr()


def relu_rule_factors(factors: Sequence, relu_positions: Iterable[int], top_signal,
                      rule: str = "backprop") -> Dict[int, sp.csr_array]:
    """The backward matrix each ReLU rule uses at each ReLU factor D_k = diag(x_k > 0).

    The signal r arriving at the ReLU from above (going backward from ``top_signal``)
    decides the deconvnet's and guided backprop's factors:

    =========  ==============================  ===========================
    rule       backward factor at a ReLU        r ↦
    =========  ==============================  ===========================
    backprop   D(x > 0)                         r · [x > 0]
    deconvnet  D(r > 0)                         max(r, 0)
    guided     D(x > 0) D(r > 0)                max(r, 0) · [x > 0]
    =========  ==============================  ===========================

    Returns {position: factor}, ready for ``backward_chain(factors, replacements=...)``.
    The deconvnet and guided factors depend on ``top_signal``: those maps are linear only
    piecewise, between sign changes of r.
    """
    factors = _check_chain(factors)
    rule = _checks.check_relu_rule(rule)
    relu_positions = set(relu_positions)
    for k in relu_positions:
        if not (_checks._is_int(k) and 0 <= k < len(factors)):
            raise ValueError(f"relu_positions must index factors (0..{len(factors) - 1}), "
                             f"got {k!r}")
        if factors[k].shape[0] != factors[k].shape[1]:
            raise ValueError(f"factors[{k}] is listed in relu_positions but is not square "
                             f"(shape {factors[k].shape}); a ReLU factor is diag(x > 0)")
    signal = np.asarray(top_signal).reshape(-1)
    if signal.size != factors[-1].shape[0]:
        raise ValueError(f"top_signal must have {factors[-1].shape[0]} values (the output "
                         f"of factors[-1]), got {signal.size}")

    replacements = {}
    for k in reversed(range(len(factors))):
        if k in relu_positions:
            forward_mask = factors[k].diagonal() > 0
            if rule == "backprop":
                factor = _diagonal_01(forward_mask, factors[k].dtype)
            elif rule == "deconvnet":
                factor = _diagonal_01(signal > 0, factors[k].dtype)
            else:
                factor = _diagonal_01(forward_mask & (signal > 0), factors[k].dtype)
            replacements[k] = factor
            signal = factor @ signal
        else:
            signal = factors[k].T @ signal
    return replacements


@dataclass(frozen=True)
class BackwardMap:
    """One rule's backward pass as explicit matrices.

    ``matrix`` = G_1 ··· G_n (input space ← output space); ``factors`` = (G_1, …, G_n);
    ``projection`` = matrix @ top_signal, the rule's image-space projection.
    """

    rule: str
    matrix: sp.csr_array
    factors: Tuple[sp.csr_array, ...]
    projection: np.ndarray


def rule_backward_map(factors: Sequence, relu_positions: Iterable[int], top_signal,
                      rule: str = "backprop") -> BackwardMap:
    """Backprop, deconvnet or guided backprop as ONE matrix for this top signal.

    Same factors Fᵀ at every convolution and pooling step; only the ReLU factors differ
    (``relu_rule_factors``).  For "backprop" the matrix is the transpose of
    ``forward_chain(factors)``.
    """
    factors = _check_chain(factors)
    replacements = relu_rule_factors(factors, relu_positions, top_signal, rule)
    backward = tuple(replacements.get(k, f.T.tocsr()) for k, f in enumerate(factors))
    matrix = backward_chain(factors, replacements)
    projection = matrix @ np.asarray(top_signal).reshape(-1)
    return BackwardMap(rule, matrix, backward, projection)


# =========================================================================== linear algebra

def singular_values(matrix, k: Optional[int] = None, which: str = "LM",
                    dense_limit: int = 2048, **svds_kwargs) -> np.ndarray:
    """Singular values σ_1 ≥ σ_2 ≥ … of W, in decreasing order.

    ``k=None``: all min(m, n) of them, by a dense SVD (only when both dimensions are at
    most ``dense_limit``).  ``k`` given: the k largest (``which="LM"``) or smallest
    (``"SM"``) — from the dense SVD when small, else from ``scipy.sparse.linalg.svds``
    (ARPACK; extra keyword arguments go to it; needs k < min(m, n)).
    """
    matrix = _as_sparse(matrix, "matrix")
    if which not in ("LM", "SM"):
        raise ValueError(f"which must be 'LM' or 'SM', got {which!r}")
    m, n = matrix.shape
    if k is not None and not (_checks._is_int(k) and 1 <= k <= min(m, n)):
        raise ValueError(f"k must be an int in [1, {min(m, n)}], got {k!r}")
    if max(m, n) <= dense_limit:
        sigma = np.linalg.svd(matrix.toarray(), compute_uv=False)
        if k is None:
            return sigma
        return sigma[:k] if which == "LM" else sigma[-k:]
    if k is None:
        raise ValueError(f"k: the matrix is {m}x{n}, larger than dense_limit={dense_limit}; "
                         f"ask for k singular values (computed with svds)")
    if k >= min(m, n):
        raise ValueError(f"k must be < min(m, n) = {min(m, n)} for svds, got {k}")
    sigma = spla.svds(matrix, k=k, which=which, return_singular_vectors=False,
                      **svds_kwargs)
    return np.sort(sigma)[::-1]


@dataclass(frozen=True)
class GramDeviation:
    """How far W is from having orthonormal columns: ‖WᵀW − I‖ in two norms.

    0 exactly when Wᵀ is a left inverse of W.  The spectral norm is max |σ_i² − 1| over
    the n eigenvalues of WᵀW (it is ≥ 1 when W has fewer rows than columns: WᵀW is then
    singular).
    """

    frobenius: float
    spectral: Optional[float]


def gram_deviation(matrix, spectral: bool = True, dense_limit: int = 2048) -> GramDeviation:
    """‖WᵀW − I‖_F (always, from the sparse product WᵀW, in float64) and ‖WᵀW − I‖₂
    (when ``spectral``: a dense eigensolver for n ≤ ``dense_limit`` columns, else
    ``eigsh`` for the eigenvalue of largest magnitude)."""
    matrix = _as_sparse(matrix, "matrix").astype(np.float64, copy=False)
    n = matrix.shape[1]
    deviation = (matrix.T @ matrix - sp.eye_array(n, dtype=np.float64, format="csr")).tocsr()
    frobenius = float(np.sqrt(np.sum(deviation.data ** 2)))
    spectral_norm = None
    if spectral:
        if n <= dense_limit:
            spectral_norm = float(np.abs(np.linalg.eigvalsh(deviation.toarray())).max())
        else:
            largest = spla.eigsh(deviation, k=1, which="LM", return_eigenvectors=False)
            spectral_norm = float(np.abs(largest).max())
    return GramDeviation(frobenius, spectral_norm)


def least_squares_inverse(matrix, y, atol: float = 1e-12, btol: float = 1e-12,
                          iter_lim: Optional[int] = None) -> np.ndarray:
    """x̂ = argmin_x ‖W x − y‖ by ``scipy.sparse.linalg.lsqr`` (float64).

    Started at 0, LSQR stays in the row space of W, so when W has a null space (fewer rows
    than columns) x̂ is the minimum-norm solution W⁺y.
    """
    return _lsqr(matrix, y, atol, btol, iter_lim)[0]


def _lsqr(matrix, y, atol, btol, iter_lim):
    matrix = _as_sparse(matrix, "matrix")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.size != matrix.shape[0]:
        raise ValueError(f"y must have {matrix.shape[0]} values (rows of the matrix), "
                         f"got {y.size}")
    result = spla.lsqr(matrix.astype(np.float64, copy=False), y, atol=atol, btol=btol,
                       iter_lim=iter_lim)
    return result[0], int(result[2])


@dataclass(frozen=True)
class Reconstruction:
    """Two ways back from y = W x: the transpose (what a deconvnet does) and least squares.

    Errors are relative: ``*_error`` = ‖x̃ − x‖ / ‖x‖, ``*_residual`` = ‖W x̃ − y‖ / ‖y‖.
    Wᵀy is not even scaled right unless WᵀW = I; x̂ has the smallest residual possible and,
    when W has full column rank, recovers x.
    """

    x: np.ndarray
    y: np.ndarray
    x_transpose: np.ndarray
    x_lsqr: np.ndarray
    transpose_error: float
    lsqr_error: float
    transpose_residual: float
    lsqr_residual: float
    lsqr_iterations: int


def reconstruct(matrix, x, atol: float = 1e-12, btol: float = 1e-12,
                iter_lim: Optional[int] = None) -> Reconstruction:
    """Map x forward with W, then back with Wᵀ and with least squares; compare.

    ``x`` may have any shape with W.shape[1] values (e.g. one image (C, H, W)); the
    reconstructions come back in that shape, computed in float64.
    """
    matrix = _as_sparse(matrix, "matrix").astype(np.float64, copy=False)
    x = np.asarray(x, dtype=np.float64)
    if x.size != matrix.shape[1]:
        raise ValueError(f"x must have {matrix.shape[1]} values (columns of the matrix), "
                         f"got shape {x.shape}")
    flat = x.reshape(-1)
    y = matrix @ flat
    x_transpose = matrix.T @ y
    x_lsqr, iterations = _lsqr(matrix, y, atol, btol, iter_lim)

    def relative(a, b):
        scale = np.linalg.norm(b)
        return float(np.linalg.norm(a - b) / scale) if scale > 0 else float(np.linalg.norm(a))

    return Reconstruction(
        x=x, y=y, x_transpose=x_transpose.reshape(x.shape), x_lsqr=x_lsqr.reshape(x.shape),
        transpose_error=relative(x_transpose, flat), lsqr_error=relative(x_lsqr, flat),
        transpose_residual=relative(matrix @ x_transpose, y),
        lsqr_residual=relative(matrix @ x_lsqr, y), lsqr_iterations=iterations)


# =========================================================================== circular convolutions

def circular_gram_eigenvalues(weight, input_hw, dilation=1, groups: int = 1) -> np.ndarray:
    """Eigenvalues of WᵀW for a circular convolution with stride 1 whose output has the
    input's size (padding="same", or any split of d(k−1) between the two sides), from the
    DFT of the kernel alone — sorted increasingly, C_in·H·W of them.

    Such a W is block-circulant: the DFT diagonalises every (c_out, c_in) block, with
    K̂[o, c](ω) = DFT over the H×W grid of the kernel, its taps placed at (i·dh mod H,
    j·dw mod W).  At each frequency ω, WᵀW acts on the C_in channels as K̂(ω)ᴴK̂(ω), so
    its eigenvalues are the squared singular values of the C_out×C_in matrices K̂(ω)
    (padded with zeros when C_out < C_in).  For one channel: |K̂(ω)|², and WᵀW = I iff
    |K̂(ω)| = 1 everywhere — an all-pass kernel.  The cross-correlation's flip and the
    padding's shift change K̂ only by a conjugation and a phase, not these eigenvalues.
    """
    _require_numpy(weight, "weight")
    _checks.check_float_array(weight, "weight", ndim=4, layout="(C_out, C_in/groups, kh, kw)")
    height, width = _checks.to_pair(input_hw, "input_hw", 1)
    dh, dw = _checks.to_pair(dilation, "dilation", 1)
    groups = _checks.check_groups(groups)
    c_out, c_in_per_group, kh, kw = weight.shape
    if c_out % groups:
        raise ValueError(f"groups={groups} must divide the output channels ({c_out})")
    rows = (np.arange(kh) * dh) % height
    cols = (np.arange(kw) * dw) % width
    grid = np.zeros((c_out, c_in_per_group, height, width), dtype=np.float64)
    np.add.at(grid, (slice(None), slice(None), rows[:, None], cols[None, :]), weight)
    spectrum = np.fft.fft2(grid)                     # (C_out, C_in_g, H, W)
    per_group = c_out // groups
    eigenvalues = []
    for g in range(groups):
        blocks = spectrum[g * per_group:(g + 1) * per_group]     # (C_out_g, C_in_g, H, W)
        blocks = np.moveaxis(blocks, (0, 1), (-2, -1)).reshape(-1, per_group, c_in_per_group)
        sigma = np.linalg.svd(blocks, compute_uv=False)
        eig = np.zeros((blocks.shape[0], c_in_per_group))
        eig[:, :sigma.shape[1]] = sigma ** 2
        eigenvalues.append(eig.ravel())
    return np.sort(np.concatenate(eigenvalues))


def allpass_kernel(size_hw, seed=None) -> np.ndarray:
    """A real H×W kernel whose DFT on the H×W grid has modulus 1 at every frequency.

    Take the DFT of random noise and divide by its modulus, keeping a random phase; the
    noise is real, so the phase is Hermitian-symmetric and the inverse DFT is real.  With
    circular padding="same" on an H×W image (``weight = k[None, None]``) the convolution
    matrix is then orthogonal: WᵀW = I.  Returns float64 (H, W).
    """
    height, width = _checks.to_pair(size_hw, "size_hw", 1)
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.standard_normal((height, width)))
    while np.abs(spectrum).min() < 1e-8:          # a zero frequency has no phase
        spectrum = np.fft.fft2(rng.standard_normal((height, width)))
    return np.fft.ifft2(spectrum / np.abs(spectrum)).real
