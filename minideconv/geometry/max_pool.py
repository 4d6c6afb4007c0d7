"""Max-pooling's geometry and the geometry of its transpose, unpooling.

``max_pool2d_geometry`` validates a pooling call and returns a ``PoolGeometry``;
``max_unpool2d_geometry`` finds the pooling that a ``max_unpool2d`` call transposes:
the pooled input's size (``output_size``, or PyTorch's default) and the ``ceil_mode``
that maps it to the unpooled signal's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from .. import shapes
from ..checks import check_bool, check_output_size, to_pair


@dataclass(frozen=True)
class PoolGeometry:
    """One max-pooling, normalised: windows of ``kernel`` taps ``dilation`` apart, every
    ``stride``, over the (H, W) = ``in_hw`` image with ``padding`` (top = bottom, left =
    right; padding is never chosen), giving (H_out, W_out) = ``out_hw``.  Unpooling uses
    the same geometry backwards."""

    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    in_hw: Tuple[int, int]
    out_hw: Tuple[int, int]


def max_pool2d_geometry(x_shape, kernel_size, stride, padding, dilation,
                        ceil_mode) -> PoolGeometry:
    kernel = to_pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None or stride == () else to_pair(stride, "stride", 1)
    padding = to_pair(padding, "padding", 0)
    dilation = to_pair(dilation, "dilation", 1)
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    for p, k in zip(padding, kernel):
        if p > k // 2:
            raise ValueError(f"padding must be at most half the kernel size "
                             f"(kernel_size={kernel}), got padding={padding}")
    in_hw = tuple(x_shape[2:])
    out_hw = tuple(shapes.max_pool_output_length(i, k, s, p, d, ceil_mode)
                   for i, k, s, p, d in zip(in_hw, kernel, stride, padding, dilation))
    if min(out_hw) < 1:
        raise ValueError(f"kernel_size {kernel} with dilation {dilation} is larger than the "
                         f"padded input (input {in_hw}, padding {padding}): output {out_hw}")
    for axis, (i, k, s, p, d, o) in enumerate(zip(in_hw, kernel, stride, padding, dilation,
                                                  out_hw)):
        # with d = 1 a window spans k ≥ 2p consecutive positions and starts before the
        # input ends, so it always holds a pixel: only dilation can make one empty
        empty = shapes.empty_windows(i, k, s, p, d, o) if d > 1 else []
        if empty:
            raise ValueError(f"dilation {dilation} with padding {padding}: pooling windows "
                             f"{empty} along axis {'HW'[axis]} see only padding (no input "
                             "pixel), so they have no maximum")
    return PoolGeometry(kernel, stride, padding, dilation, in_hw, out_hw)


# --------------------------------------------------------------------------- unpooling

def _unpool_kernel_pair(kernel_size) -> Tuple[int, int]:
    """``kernel_size`` as for max_pool2d."""
    return to_pair(kernel_size, "kernel_size", 1)


def unpool_default_length(o: int, k: int, s: int, p: int, d: int) -> int:
    """The smallest input length that max-pooling (floor mode) maps to ``o`` outputs:
    (o − 1)·s − 2p + d·(k − 1) + 1 (PyTorch's default, which has no dilation, is the same
    with d = 1)."""
    return (o - 1) * s - 2 * p + d * (k - 1) + 1


def _pooled_lengths(o, k, s, p, d, ceil_mode) -> list:
    """The input lengths that max-pooling maps to ``o`` outputs.  They lie within
    PyTorch's accepted range (default − s, default + s): floor mode from the default up,
    ceil mode from the default down."""
    default = unpool_default_length(o, k, s, p, d)
    return [i for i in range(max(1, default - s + 1), default + s)
            if shapes.max_pool_output_length(i, k, s, p, d, ceil_mode) == o]


def _lengths_text(lengths) -> str:
    return f"{lengths[0]}..{lengths[-1]}" if lengths else "none"


def _ceil_mode_for(in_hw, y_hw, kernel, stride, padding, dilation) -> bool:
    """The ceil_mode with which max_pool2d maps ``in_hw`` (the output_size) to y's size;
    a ValueError naming output_size and the accepted sizes if neither does."""
    accepted = {mode: [_pooled_lengths(o, k, s, p, d, mode) for o, k, s, p, d
                       in zip(y_hw, kernel, stride, padding, dilation)]
                for mode in (False, True)}
    for mode in (False, True):
        if all(i in lengths for i, lengths in zip(in_hw, accepted[mode])):
            return mode
    (floor_h, floor_w), (ceil_h, ceil_w) = accepted[False], accepted[True]
    raise ValueError(
        f"output_size {in_hw} is not a size that max_pool2d(kernel_size={kernel}, "
        f"stride={stride}, padding={padding}, dilation={dilation}) maps to y's {y_hw}: it "
        f"accepts heights {_lengths_text(floor_h)} and widths {_lengths_text(floor_w)} "
        f"(with ceil_mode=True heights {_lengths_text(ceil_h)} and widths "
        f"{_lengths_text(ceil_w)})")


def max_unpool2d_geometry(y_shape, kernel_size, stride, padding, dilation,
                          output_size) -> PoolGeometry:
    """The pooling that ``max_unpool2d`` transposes: max_pool2d's geometry for an input
    of the unpooled size (``in_hw``), which pools to y's size (``out_hw``).  That size is
    ``output_size``, or by default (o − 1)·s − 2p + d·(k − 1) + 1 per axis."""
    kernel = _unpool_kernel_pair(kernel_size)
    stride = kernel if stride is None else to_pair(stride, "stride", 1)
    padding = to_pair(padding, "padding", 0)
    dilation = to_pair(dilation, "dilation", 1)
    y_hw = tuple(y_shape[2:])
    if output_size is None:
        in_hw = tuple(unpool_default_length(o, k, s, p, d) for o, k, s, p, d
                      in zip(y_hw, kernel, stride, padding, dilation))
        if min(in_hw) < 1:
            raise ValueError(f"padding {padding} with kernel_size {kernel} makes the default "
                             f"output size {in_hw} empty: pass output_size")
        ceil_mode = False  # the default size is exact in either mode
    else:
        in_hw = check_output_size(output_size, y_shape)
        ceil_mode = _ceil_mode_for(in_hw, y_hw, kernel, stride, padding, dilation)
    return max_pool2d_geometry(tuple(y_shape[:2]) + in_hw, kernel, stride, padding,
                               dilation, ceil_mode)
