"""Average pooling's geometry: every output's window and divisor, worked out once.

``avg_pool2d_geometry`` (padding, ``ceil_mode``, ``count_include_pad``,
``divisor_override``) and ``adaptive_avg_pool2d_geometry`` (PyTorch's adaptive windows)
both resolve to one ``AvgPoolGeometry`` of windows and divisors, so padding, ``ceil_mode``
and ``count_include_pad`` never reach a backend, and one kernel and one transpose serve
both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import numpy as np

from .. import shapes
from ..checks import array_module, check_bool, is_int, to_pair

class Window(NamedTuple):
    """The input positions one output position averages along one axis, ``start ≤ q <
    stop`` (inside the image), and ``count``, that axis's share of the divisor: the
    window's length inside the image, or with ``count_include_pad`` inside the padded
    image (so ``count ≥ stop − start``)."""

    start: int
    stop: int
    count: int


@dataclass(frozen=True)
class AvgPoolGeometry:
    """One average pooling, normalised to its windows: the (H, W) = ``in_hw`` image maps
    to (H_out, W_out) = ``out_hw`` with

        y[oh, ow] = Σ x[ih, iw] / divisor[oh, ow]
                    over rows[oh].start ≤ ih < rows[oh].stop,
                         cols[ow].start ≤ iw < cols[ow].stop

        divisor[oh, ow] = divisor_override, or rows[oh].count · cols[ow].count

    ``avg_pool2d`` and ``adaptive_avg_pool2d`` differ only in how they choose the windows
    (``avg_pool2d_geometry``, ``adaptive_avg_pool2d_geometry``), so one kernel and one
    transpose serve both.  The transpose spreads every r[oh, ow] / divisor[oh, ow] evenly
    back over its window."""

    in_hw: Tuple[int, int]
    out_hw: Tuple[int, int]
    rows: Tuple[Window, ...]
    cols: Tuple[Window, ...]
    divisor_override: Optional[int] = None

    def divisors(self) -> np.ndarray:
        """divisor[oh, ow], (H_out, W_out) int64."""
        if self.divisor_override is not None:
            return np.full(self.out_hw, self.divisor_override, dtype=np.int64)
        return np.outer([w.count for w in self.rows], [w.count for w in self.cols])


def avg_pool_windows(i: int, k: int, s: int, p: int, o: int,
                     count_include_pad: bool) -> Tuple[Window, ...]:
    """The ``o`` windows of one axis of length ``i``: window t starts at a = t·s − p and
    ends at b = a + k, and (PyTorch's rule)

        start = max(a, 0),  stop = min(b, i),
        count = min(b, i + p) − a  with count_include_pad (the padding counts, but not
                the part of a ceil_mode window that hangs beyond the padded input),
                stop − start       without."""
    windows = []
    for t in range(o):
        a = t * s - p
        b = a + k
        start, stop = max(a, 0), min(b, i)
        count = min(b, i + p) - a if count_include_pad else stop - start
        windows.append(Window(start, stop, count))
    return tuple(windows)


def check_divisor_override(divisor_override) -> Optional[int]:
    """None, or a nonzero int (PyTorch's rule): what divides every window's sum."""
    if divisor_override is None:
        return None
    if not is_int(divisor_override):
        raise TypeError(f"divisor_override must be None or an int, got "
                        f"{divisor_override!r}")
    if divisor_override == 0:
        raise ValueError("divisor_override must not be zero")
    return int(divisor_override)


def avg_pool2d_geometry(x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None) -> AvgPoolGeometry:
    """Validate ``avg_pool2d``'s arguments for an input of ``x_shape`` (N, C, H, W) and
    work out its windows (``avg_pool_windows``).  PyTorch's rules: ``stride`` defaults to
    ``kernel_size``; padding is at most half the kernel; the output length is max-pooling's
    (dilation 1, ``shapes.max_pool_output_length``) and must be ≥ 1; ``divisor_override``
    is None or a nonzero int."""
    kernel = to_pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None or stride == () else to_pair(stride, "stride", 1)
    padding = to_pair(padding, "padding", 0)
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    count_include_pad = check_bool(count_include_pad, "count_include_pad")
    divisor_override = check_divisor_override(divisor_override)
    for p, k in zip(padding, kernel):
        if p > k // 2:
            raise ValueError(f"padding must be at most half the kernel size "
                             f"(kernel_size={kernel}), got padding={padding}")
    in_hw = tuple(int(v) for v in x_shape[2:])
    out_hw = tuple(shapes.max_pool_output_length(i, k, s, p, 1, ceil_mode)
                   for i, k, s, p in zip(in_hw, kernel, stride, padding))
    if min(out_hw) < 1:
        raise ValueError(f"kernel_size {kernel} is larger than the padded input (input "
                         f"{in_hw}, padding {padding}): output {out_hw}")
    rows, cols = (avg_pool_windows(i, k, s, p, o, count_include_pad)
                  for i, k, s, p, o in zip(in_hw, kernel, stride, padding, out_hw))
    return AvgPoolGeometry(in_hw, out_hw, rows, cols, divisor_override)


def adaptive_windows(i: int, o: int) -> Tuple[Window, ...]:
    """The ``o`` windows that cover an axis of length ``i`` (PyTorch's rule):

        start = ⌊t·i / o⌋,  stop = ⌈(t + 1)·i / o⌉,  count = stop − start

    Neighbouring windows overlap by a pixel where i / o is not an integer; with o > i
    some pixels are copied to several outputs."""
    return tuple(Window(t * i // o, -(-(t + 1) * i // o), -(-(t + 1) * i // o) - t * i // o)
                 for t in range(o))


def adaptive_output_size(output_size, in_hw) -> Tuple[int, int]:
    """``output_size`` (an int, or a pair of ints or None) → (H_out, W_out); a None in
    the pair keeps that axis's input length (as PyTorch)."""
    pair = (output_size, output_size) if is_int(output_size) else output_size
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2
            and all(v is None or is_int(v) for v in pair)):
        raise TypeError(f"output_size must be an int or a pair of ints (None in the pair "
                        f"keeps that input size), got {output_size!r}")
    out_hw = tuple(int(i) if v is None else int(v) for v, i in zip(pair, in_hw))
    if min(out_hw) < 1:
        raise ValueError(f"output_size must be >= 1, got {output_size!r}")
    return out_hw


def adaptive_avg_pool2d_geometry(x_shape, output_size) -> AvgPoolGeometry:
    """Validate ``adaptive_avg_pool2d``'s ``output_size`` for an input of ``x_shape``
    (N, C, H, W) and work out its windows (``adaptive_windows``)."""
    in_hw = tuple(int(v) for v in x_shape[2:])
    out_hw = adaptive_output_size(output_size, in_hw)
    rows, cols = (adaptive_windows(i, o) for i, o in zip(in_hw, out_hw))
    return AvgPoolGeometry(in_hw, out_hw, rows, cols)


def avg_pool_transpose_geometry(r_shape, input_size, geometry_of_input) -> AvgPoolGeometry:
    """The pooling that a transpose undoes: ``geometry_of_input(x_shape)`` for an input
    of ``input_size`` ((H, W), or (N, C, H, W) with r's N and C), which must pool to r's
    (H_out, W_out), else a ValueError naming input_size."""
    if not (isinstance(input_size, (tuple, list)) and len(input_size) in (2, 4)
            and all(map(is_int, input_size))):
        raise TypeError(f"input_size must be (H, W) or (N, C, H, W) ints, got {input_size!r}")
    if len(input_size) == 4 and tuple(input_size[:2]) != tuple(r_shape[:2]):
        raise ValueError(f"input_size {tuple(input_size)} must have r's (N, C) = "
                         f"{tuple(r_shape[:2])}")
    in_hw = tuple(int(v) for v in input_size[-2:])
    if min(in_hw) < 1:
        raise ValueError(f"input_size must be positive, got {tuple(input_size)}")
    geom = geometry_of_input(tuple(r_shape[:2]) + in_hw)
    if geom.out_hw != tuple(r_shape[2:]):
        raise ValueError(f"input_size {in_hw} pools to {geom.out_hw}, but r has the spatial "
                         f"size {tuple(r_shape[2:])}: pass the size of the pooled input")
    return geom


def switches_outside_windows(switches, geom: AvgPoolGeometry):
    """The index (n, c, oh, ow) of the first switch (a flat index h·W + w into each plane)
    outside its window of ``geom``, or None: what keeps an adaptive unpooling from writing
    where its pooling did not read."""
    xp = array_module(switches)
    width = geom.in_hw[1]
    rows, cols = (xp.asarray([w[:2] for w in windows]) for windows in (geom.rows, geom.cols))
    h, w = switches // width, switches % width
    inside = (h >= rows[:, :1]) & (h < rows[:, 1:]) & (w >= cols[:, 0]) & (w < cols[:, 1])
    inside &= (switches >= 0) & (switches < geom.in_hw[0] * width)
    if bool(inside.all()):
        return None
    return tuple(int(i) for i in np.unravel_index(int(xp.argmin(inside.ravel())),
                                                   switches.shape))
