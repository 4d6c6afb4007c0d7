"""A layer's geometry, worked out once: the convolution's and the poolings'.

``conv2d_geometry`` and friends validate a call's stride, padding, dilation, groups and
sizes (each error names the parameter) and return a small frozen dataclass with
everything normalised: pairs of ints, explicit padding on all four sides, input and
output sizes.  ``minideconv.ops`` hands these to the backends, ``minideconv.matrices``
builds its sparse matrices from them, and ``minideconv.nn`` asks them for output shapes.

Circular padding is resolved here, before any backend sees it: a circular convolution
is the convolution, with no padding of its own, of the circularly pre-padded image
(``ConvGeometry.as_zero_padded``; ``minideconv.padding`` does the wrapping and its
transpose).  So a backend only ever meets zero padding.

Average pooling (``avg_pool2d_geometry``, ``adaptive_avg_pool2d_geometry``) is resolved
here to its windows and divisors (``AvgPoolGeometry``): padding, ``ceil_mode`` and
``count_include_pad`` never reach a backend.

The arithmetic of one axis (output lengths, reachable lengths, window positions) is in
``minideconv.shapes``; this module applies it to whole layers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import numpy as np

from . import shapes
from ._checks import check_float_array, check_output_size, is_int, to_pair

PADDING_MODES = ("zeros", "circular")


def check_groups(groups) -> int:
    if not is_int(groups):
        raise TypeError(f"groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    return int(groups)


def check_padding_mode(padding_mode: str) -> str:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    return padding_mode


# --------------------------------------------------------------------------- convolution

@dataclass(frozen=True)
class ConvGeometry:
    """One convolution, normalised: the image (H, W) = ``in_hw`` with ``in_channels``
    maps to (H_out, W_out) = ``out_hw`` with ``out_channels``.

    ``pads = (top, bottom, left, right)``.  ``padding_mode="circular"`` means: wrap-pad
    by ``pads`` first, then convolve with no padding (``as_zero_padded``).  The same
    geometry describes the transposed convolution, which maps ``out_hw`` back to
    ``in_hw``.
    """

    in_channels: int
    out_channels: int
    groups: int
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    dilation: Tuple[int, int]
    pads: Tuple[int, int, int, int]
    padding_mode: str
    in_hw: Tuple[int, int]
    out_hw: Tuple[int, int]

    @property
    def top_left_pads(self) -> Tuple[int, int]:
        """(top, left) padding: where the first window starts (bottom/right padding only
        decides the output size, which ``out_hw`` already holds)."""
        return self.pads[0], self.pads[2]

    @property
    def padded_hw(self) -> Tuple[int, int]:
        """(H + top + bottom, W + left + right): the image with its padding."""
        top, bottom, left, right = self.pads
        return self.in_hw[0] + top + bottom, self.in_hw[1] + left + right

    @property
    def weight_shape(self) -> Tuple[int, int, int, int]:
        """(C_out, C_in / groups, kh, kw): the filter bank's shape."""
        return (self.out_channels, self.in_channels // self.groups) + tuple(self.kernel)

    def as_zero_padded(self) -> "ConvGeometry":
        """The geometry a backend runs.  Zero padding: this one.  Circular padding: the
        convolution, with no padding of its own, of the image already wrap-padded by
        ``pads`` (``padding.wrap_pad``), which is ``padded_hw`` in size; the transposed
        convolution then returns that padded size, and ``padding.wrap_pad_adjoint``
        folds the border back."""
        if self.padding_mode == "zeros":
            return self
        return dataclasses.replace(self, padding_mode="zeros", pads=(0, 0, 0, 0),
                                   in_hw=self.padded_hw)


def normalise_padding(padding, kernel, dilation, stride) -> Tuple[int, int, int, int]:
    """int / pair / "valid" / "same" → (top, bottom, left, right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' requires stride=1 (as in PyTorch), "
                                 f"got stride={stride}")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]  # the extra one goes bottom/right
            return tuple(pads)
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = to_pair(padding, "padding", 0)
    return ph, ph, pw, pw


def _check_weight_shape(shape, shape_name: str, name_in: str, in_channels: int,
                        groups: int) -> None:
    """The filter bank's shape (C_out, C_in/groups, kh, kw) must fit the input and groups.
    ``shape_name`` is how the caller's parameter reads ("weight.shape", "weight_shape")."""
    c_out, c_in_g, kh, kw = shape
    if kh < 1 or kw < 1 or c_out < 1 or c_in_g < 1:
        raise ValueError(f"{shape_name} must be positive sizes (C_out, C_in/groups, kh, kw), "
                         f"got {tuple(shape)}")
    if in_channels % groups:
        raise ValueError(f"groups={groups} must divide the input channels "
                         f"({in_channels})")
    if c_out % groups:
        raise ValueError(f"groups={groups} must divide the output channels "
                         f"({shape_name}[0] = {c_out})")
    if c_in_g * groups != in_channels:
        raise ValueError(f"{shape_name}[1] * groups must equal the channels of {name_in} "
                         f"({in_channels}), got {shape_name} {tuple(shape)} with "
                         f"groups={groups}")


def conv2d_geometry(x_shape, weight_shape, stride, padding, dilation, groups,
                    padding_mode="zeros", name_in: str = "x",
                    shape_name: str = "weight.shape") -> ConvGeometry:
    """Validate the geometry of a convolution of an input of ``x_shape`` (N, C, H, W) with
    a filter bank of ``weight_shape``; the caller checks the weight array itself
    (``check_weight``)."""
    groups = check_groups(groups)
    padding_mode = check_padding_mode(padding_mode)
    stride = to_pair(stride, "stride", 1)
    dilation = to_pair(dilation, "dilation", 1)
    in_channels = x_shape[1]
    _check_weight_shape(weight_shape, shape_name, name_in, in_channels, groups)
    kernel = tuple(weight_shape[2:])
    pads = normalise_padding(padding, kernel, dilation, stride)
    in_hw = tuple(x_shape[2:])
    if padding_mode == "circular":
        top, bottom, left, right = pads
        if max(top, bottom) > in_hw[0] or max(left, right) > in_hw[1]:
            raise ValueError(f"padding {pads[::2]} must not exceed the input size {in_hw} "
                             "with padding_mode='circular' (wrap-around goes once)")
    out_hw = tuple(
        shapes.conv_output_length(i + lo + hi, k, s, 0, d)
        for i, k, s, d, lo, hi in zip(in_hw, kernel, stride, dilation, pads[::2], pads[1::2]))
    if min(out_hw) < 1:
        eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        padded = (in_hw[0] + pads[0] + pads[1], in_hw[1] + pads[2] + pads[3])
        raise ValueError(f"{shape_name}: the (dilated) kernel {eff[0]}x{eff[1]} is larger than the "
                         f"padded input {padded[0]}x{padded[1]}")
    return ConvGeometry(in_channels, weight_shape[0], groups, kernel, stride,
                        dilation, pads, padding_mode, in_hw, out_hw)


def conv_transpose2d_geometry(y_shape, weight, stride, padding, output_padding, dilation,
                              groups, output_size, padding_mode="zeros",
                              name_in: str = "y") -> ConvGeometry:
    """Validate a transposed convolution and return the geometry of the convolution it is
    the adjoint of (``in_hw`` = the transposed convolution's output size).

    ``padding`` takes everything ``conv2d`` takes, ``"same"`` and ``"valid"`` included, so
    the transpose of any convolution has that convolution's arguments.  Per axis, with
    padding ``lo`` before and ``hi`` after, the output length is

        H = s·(H_y − 1) − lo − hi + d·(k − 1) + 1 + a,   0 ≤ a < s  (the output padding).
    """
    groups = check_groups(groups)
    padding_mode = check_padding_mode(padding_mode)
    stride = to_pair(stride, "stride", 1)
    dilation = to_pair(dilation, "dilation", 1)
    check_float_array(weight, "weight", ndim=4, layout="(C_out, C_in/groups, kh, kw)")
    if y_shape[1] != weight.shape[0]:
        raise ValueError(f"{name_in} must have weight.shape[0] = {weight.shape[0]} channels "
                         f"(the convolution's output channels), got {y_shape[1]}")
    in_channels = weight.shape[1] * groups
    _check_weight_shape(weight.shape, "weight.shape", name_in, in_channels, groups)
    kernel = tuple(weight.shape[2:])
    pads = normalise_padding(padding, kernel, dilation, stride)
    shown = padding if isinstance(padding, str) else (pads[0], pads[2])  # for messages
    y_hw = tuple(y_shape[2:])
    # the input lengths a convolution maps to y's length, per axis (output padding 0, 1, ...)
    reachable = [range(smallest - lo - hi, smallest - lo - hi + s) for smallest, lo, hi, s in
                 zip((shapes.conv_transpose_output_length(i, k, s, 0, 0, d) for i, k, s, d
                      in zip(y_hw, kernel, stride, dilation)), pads[::2], pads[1::2], stride)]
    if output_size is not None:
        if output_padding not in (0, (0, 0), [0, 0]):
            raise ValueError("give either output_size or output_padding, not both")
        if not isinstance(output_size, (tuple, list)) or len(output_size) not in (2, 4) \
                or not all(map(is_int, output_size)):
            raise TypeError(f"output_size must be (H, W) or (N, C, H, W) ints, "
                            f"got {output_size!r}")
        out_hw = tuple(int(v) for v in output_size[-2:])
        if any(t not in r for t, r in zip(out_hw, reachable)):
            raise ValueError(
                f"output_size {out_hw} is not reachable: with this kernel, stride, padding "
                f"and dilation an input of {y_hw} maps back to heights "
                f"{list(reachable[0])} and widths {list(reachable[1])}")
    else:
        output_padding = to_pair(output_padding, "output_padding", 0)
        for a, s, d in zip(output_padding, stride, dilation):
            if a >= max(s, d):
                raise ValueError(f"output_padding must be smaller than max(stride, dilation) "
                                 f"= {max(s, d)}, got {output_padding}")
        out_hw = tuple(r.start + a for r, a in zip(reachable, output_padding))
    if min(out_hw) < 1:
        raise ValueError(f"padding {shown} is too large: the output size would be {out_hw}")
    if padding_mode == "circular" and (max(pads[:2]) > out_hw[0] or max(pads[2:]) > out_hw[1]):
        raise ValueError(f"padding {shown} must not exceed the output size {out_hw} "
                         "with padding_mode='circular'")
    return ConvGeometry(in_channels, weight.shape[0], groups, kernel, stride, dilation,
                        pads, padding_mode, out_hw, y_hw)


def output_rows_band(geom: ConvGeometry, rows: slice):
    """The part of a (zero-padded) convolution that makes the output rows ``rows``: the
    input rows it reads (a slice of the image), and the geometry of the convolution of
    just those rows — zero-padded on top only where the band reaches above the image
    (below the image, the window arithmetic of ``out_hw`` decides)."""
    sh, kh, dh = geom.stride[0], geom.kernel[0], geom.dilation[0]
    first = rows.start * sh - geom.pads[0]               # in the image's rows; < 0: padding
    last = (rows.stop - 1) * sh + (kh - 1) * dh - geom.pads[0]
    top, bottom = max(0, first), max(0, min(geom.in_hw[0], last + 1))
    band = dataclasses.replace(geom, pads=(top - first, 0, geom.pads[2], 0),
                               in_hw=(max(0, bottom - top), geom.in_hw[1]),
                               out_hw=(rows.stop - rows.start, geom.out_hw[1]))
    return slice(top, max(top, bottom)), band


def transpose_as_convolution(geom: ConvGeometry):
    """With stride 1, the transposed convolution is itself a convolution (Dumoulin &
    Visin 2016, §4.1): of y (``out_hw``), with the kernel flipped in space and its
    in/out channels swapped within each group, and padding (k − 1)·d − p:

        conv_transpose2d(y, w, padding=p) = conv2d(y, w', padding=(k − 1)·d − p)

    Returns that convolution's geometry (zero padding), or None where the stride is not
    1 or it would need a negative padding (p > (k − 1)·d)."""
    if geom.padding_mode != "zeros" or geom.stride != (1, 1):
        return None
    height, width = geom.in_hw
    top, bottom, left, right = geom.pads
    reach = tuple((k - 1) * d for k, d in zip(geom.kernel, geom.dilation))
    if max(top, bottom) > reach[0] or max(left, right) > reach[1]:
        return None
    pads = (reach[0] - top, height + top - geom.out_hw[0],
            reach[1] - left, width + left - geom.out_hw[1])
    return ConvGeometry(in_channels=geom.out_channels, out_channels=geom.in_channels,
                        groups=geom.groups, kernel=geom.kernel, stride=(1, 1),
                        dilation=geom.dilation, pads=pads, padding_mode="zeros",
                        in_hw=geom.out_hw, out_hw=(height, width))


# --------------------------------------------------------------------------- pooling

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
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    for p, k in zip(padding, kernel):
        if p > k // 2:
            raise ValueError(f"padding must be at most half the kernel size "
                             f"(kernel_size={kernel}), got padding={padding}")
    in_hw = tuple(x_shape[2:])
    out_hw = tuple(shapes.max_pool_output_length(i, k, s, p, d, bool(ceil_mode))
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
    """``kernel_size`` as for max_pool2d; a 4-tuple is the old ``output_size`` argument."""
    if isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 4:
        raise TypeError(f"kernel_size must be an int or a pair of ints, got {kernel_size!r}: "
                        "max_unpool2d takes the pooling's kernel_size, stride and padding "
                        "(as torch.nn.functional.max_unpool2d); pass the pooled input's "
                        "size as output_size=")
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




# --------------------------------------------------------------------------- average pooling

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


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


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
    ceil_mode = _check_bool(ceil_mode, "ceil_mode")
    count_include_pad = _check_bool(count_include_pad, "count_include_pad")
    if divisor_override is not None:
        if not is_int(divisor_override):
            raise TypeError(f"divisor_override must be None or an int, got "
                            f"{divisor_override!r}")
        if divisor_override == 0:
            raise ValueError("divisor_override must not be zero")
        divisor_override = int(divisor_override)
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
