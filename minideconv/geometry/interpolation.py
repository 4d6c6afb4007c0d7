"""Upsampling's geometry: for every output row and column, the input rows and columns it
reads and their weights, worked out once — PyTorch's source-index formulas live here only.

Nearest and bilinear interpolation are separable: along one axis of input length L and
output length O, output o reads the input positions ``sources[o]`` with the weights
``weights[o]`` (one tap for nearest, two for bilinear), and

    y[oh, ow] = Σ_a Σ_b rows.weights[oh, a] · cols.weights[ow, b] · x[rows.sources[oh, a], cols.sources[ow, b]]

The scale of an axis is PyTorch's (``torch.nn.functional.interpolate``): ``1 / scale_factor``
when a scale factor is given (and ``recompute_scale_factor`` is not True), else L / O — so
a scale factor of 1.5 on 5 pixels (O = 7) reads other pixels than ``size=7``.  Per mode:

* ``"nearest"``:  src = min(⌊o · scale⌋, L − 1), in float32 as PyTorch (O = L: src = o;
  O = 2L: src = o // 2);
* ``"nearest-exact"``:  src = min(⌊(o + ½) · scale⌋, L − 1);
* ``"bilinear"``:  x = scale · (o + ½) − ½ clamped at 0 (``align_corners=False``), or
  x = o · (L − 1)/(O − 1) (``align_corners=True``, 0 when O = 1; the scale factor is then
  ignored); i₀ = min(⌊x⌋, L − 1), i₁ = min(i₀ + 1, L − 1), λ = clamp(x − i₀, 0, 1),
  weights (1 − λ, λ); O = L is the identity.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..checks import check_bool, check_choice, check_real, is_int

#: the interpolation modes of ``torch.nn.functional.interpolate`` minideconv has
MODES = ("nearest", "nearest-exact", "bilinear")


@dataclass(frozen=True)
class AxisTaps:
    """One axis of an upsampling: output o reads input ``sources[o, t]`` with weight
    ``weights[o, t]`` for each tap t (``sources`` (O, taps) int64, ``weights`` (O, taps)
    float64)."""

    sources: np.ndarray
    weights: np.ndarray

    def matrix(self, length: int) -> np.ndarray:
        """The dense (O, L) matrix of this axis: A[o, q] = Σ the weights of taps reading q."""
        out = np.zeros((self.sources.shape[0], length))
        np.add.at(out, (np.arange(self.sources.shape[0])[:, None], self.sources), self.weights)
        return out


@dataclass(frozen=True)
class InterpolationGeometry:
    """One upsampling, normalised to its taps: the (H, W) = ``in_hw`` image maps to
    (H_out, W_out) = ``out_hw`` by ``mode`` ("nearest" for both nearest modes: one tap,
    weight 1; "bilinear": two taps), along the rows by ``rows`` and the columns by
    ``cols``.  The transpose sends every output value back to the pixels it read, with
    the same weights."""

    in_hw: Tuple[int, int]
    out_hw: Tuple[int, int]
    mode: str
    rows: AxisTaps
    cols: AxisTaps


def _pair_of(value, name, check):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{name} must be one value or a pair (H, W), got {value!r}")
    return tuple(check(v) for v in values)


def _positive_int(name):
    def check(v):
        if not is_int(v) or v < 1:
            raise ValueError(f"{name} must be a positive int or a pair of them, got {v!r}")
        return int(v)
    return check


def _positive_real(name):
    def check(v):
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            raise TypeError(f"{name} must be a positive number or a pair of them, got {v!r}")
        return check_real(v, name, above=0)
    return check


def nearest_taps(n_in: int, n_out: int, scale_factor: Optional[float],
                 exact: bool) -> AxisTaps:
    """One axis of nearest upsampling; ``scale_factor`` None: the scale is L / O."""
    o = np.arange(n_out)
    if not exact and n_out == n_in:
        src = o
    elif not exact and n_out == 2 * n_in:
        src = o // 2
    else:   # PyTorch computes this index in float32, whatever the dtype
        step = np.float32(1.0 / scale_factor) if scale_factor is not None else \
            np.float32(n_in) / np.float32(n_out)
        position = o.astype(np.float32) + np.float32(0.5) if exact else o.astype(np.float32)
        src = np.minimum(np.floor(position * step).astype(np.int64), n_in - 1)
    return AxisTaps(src.astype(np.int64)[:, None], np.ones((n_out, 1)))


def linear_taps(n_in: int, n_out: int, scale_factor: Optional[float],
                align_corners: bool) -> AxisTaps:
    """One axis of bilinear upsampling: two taps (i₀, i₁) with weights (1 − λ, λ)."""
    o = np.arange(n_out, dtype=np.float64)
    if n_out == n_in:
        return AxisTaps(np.stack([o, o], 1).astype(np.int64),
                        np.stack([np.ones(n_out), np.zeros(n_out)], 1))
    if align_corners:
        position = o * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        step = 1.0 / scale_factor if scale_factor is not None else n_in / n_out
        position = np.maximum(step * (o + 0.5) - 0.5, 0.0)
    first = np.minimum(np.floor(position).astype(np.int64), n_in - 1)
    second = first + (first < n_in - 1)
    lam = np.clip(position - first, 0.0, 1.0)
    return AxisTaps(np.stack([first, second], 1), np.stack([1.0 - lam, lam], 1))


def check_interpolation(size, scale_factor, mode, align_corners=None,
                        recompute_scale_factor=None):
    """The arguments of an upsampling, checked and normalised: ``(size, scale_factor,
    mode, align_corners, recompute_scale_factor)`` with ``size`` a pair of ints or None,
    ``scale_factor`` a pair of floats or None (exactly one of the two given),
    ``align_corners`` None or a bool (for "bilinear" only)."""
    mode = check_choice(mode, "mode", MODES)
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    if align_corners is not None:
        align_corners = check_bool(align_corners, "align_corners")
        if mode != "bilinear":
            raise ValueError(f"align_corners is for mode='bilinear' only, got mode={mode!r}")
    if recompute_scale_factor is not None:
        recompute_scale_factor = check_bool(recompute_scale_factor, "recompute_scale_factor")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor goes with scale_factor, not size")
        return (_pair_of(size, "size", _positive_int("size")), None, mode, align_corners,
                recompute_scale_factor)
    return (None, _pair_of(scale_factor, "scale_factor", _positive_real("scale_factor")),
            mode, align_corners, recompute_scale_factor)


def interpolation_geometry(x_shape, size=None, scale_factor=None, mode="nearest",
                           align_corners=None, recompute_scale_factor=None,
                           name_in: str = "x") -> InterpolationGeometry:
    """Validate one upsampling of an (N, C, H, W) input and resolve its taps.

    Exactly one of ``size`` (an int or (H_out, W_out)) and ``scale_factor`` (a positive
    number or a pair; H_out = ⌊H · scale_factor⌋) is given; ``align_corners`` is for
    "bilinear" only (default False); ``recompute_scale_factor=True`` uses L / O instead
    of 1 / scale_factor, as PyTorch."""
    size, factors, mode, align_corners, recompute_scale_factor = check_interpolation(
        size, scale_factor, mode, align_corners, recompute_scale_factor)
    in_hw = tuple(int(v) for v in x_shape[2:])
    if size is not None:
        out_hw, factors_used = size, (None, None)
    else:
        out_hw = tuple(int(math.floor(n * f)) for n, f in zip(in_hw, factors))
        if min(out_hw) < 1:
            raise ValueError(f"scale_factor {scale_factor!r} makes the {name_in} of size "
                             f"{in_hw} empty ({out_hw})")
        factors_used = (None, None) if recompute_scale_factor else factors
    if mode == "bilinear":
        taps = [linear_taps(i, o, s, bool(align_corners)) for i, o, s in
                zip(in_hw, out_hw, factors_used)]
    else:
        taps = [nearest_taps(i, o, s, mode == "nearest-exact") for i, o, s in
                zip(in_hw, out_hw, factors_used)]
    return InterpolationGeometry(in_hw, out_hw, "bilinear" if mode == "bilinear" else
                                 "nearest", taps[0], taps[1])


def interpolation_transpose_geometry(r_shape, input_size, *args, **kwargs):
    """The geometry of the upsampling whose transpose maps r (N, C, H_out, W_out) back to
    ``input_size`` ((H, W), or (N, C, H, W) with r's N and C): it must upsample to r's
    size."""
    if not isinstance(input_size, (tuple, list)) or len(input_size) not in (2, 4) or \
            not all(is_int(v) and v >= 1 for v in input_size):
        raise ValueError(f"input_size must be (H, W) or (N, C, H, W) positive ints, got "
                         f"{input_size!r}")
    if len(input_size) == 4 and tuple(input_size[:2]) != tuple(r_shape[:2]):
        raise ValueError(f"input_size {tuple(input_size)} must have r's N and C "
                         f"{tuple(r_shape[:2])}")
    geom = interpolation_geometry(tuple(r_shape[:2]) + tuple(input_size[-2:]), *args,
                                  name_in="input", **kwargs)
    if geom.out_hw != tuple(r_shape[2:]):
        raise ValueError(f"an input of size {geom.in_hw} upsamples to {geom.out_hw}, not "
                         f"to r's size {tuple(r_shape[2:])}")
    return geom
