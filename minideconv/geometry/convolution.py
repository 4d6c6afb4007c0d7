"""The convolution's geometry, worked out once.

``conv2d_geometry`` and ``conv_transpose2d_geometry`` validate a call's stride, padding,
dilation, groups and sizes (each error names the parameter) and return a
``ConvGeometry``: pairs of ints, explicit padding on all four sides, input and output
sizes.  Circular, reflect and replicate padding are resolved here, before any backend
sees them: such a convolution is the convolution, with no padding of its own, of the
pre-padded image (``ConvGeometry.as_zero_padded``; ``minideconv.padding`` does the
padding and its transpose), so a backend only ever meets zero padding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Tuple

from .. import shapes
from ..padding import check_pads
from ..checks import check_choice, check_float_array, check_int, is_int, to_pair

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")


def check_groups(groups) -> int:
    """``groups``: an int >= 1 (whether it divides the channels is checked with them)."""
    return check_int(groups, "groups", 1)


def check_padding_mode(padding_mode: str) -> str:
    """``padding_mode``: one of ``PADDING_MODES``."""
    return check_choice(padding_mode, "padding_mode", PADDING_MODES)


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution, normalised: the image (H, W) = ``in_hw`` with ``in_channels``
    maps to (H_out, W_out) = ``out_hw`` with ``out_channels``.

    ``pads = (top, bottom, left, right)``.  ``padding_mode`` "circular", "reflect" or
    "replicate" means: pad by ``pads`` in that mode first, then convolve with no padding
    (``as_zero_padded``).  The same
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
        """The geometry a backend runs.  Zero padding: this one.  Another mode: the
        convolution, with no padding of its own, of the image already padded by ``pads``
        in that mode (``padding.pad``), which is ``padded_hw`` in size; the transposed
        convolution then returns that padded size, and ``padding.pad_adjoint`` folds the
        border back."""
        if self.padding_mode == "zeros":
            return self
        return dataclasses.replace(self, padding_mode="zeros", pads=(0, 0, 0, 0),
                                   in_hw=self.padded_hw)


def normalise_padding(padding, kernel, dilation, stride) -> Tuple[int, int, int, int]:
    """int / pair / (top, bottom, left, right) / "valid" / "same" → (top, bottom, left,
    right).  Four pads, each side its own, are what ONNX's pads and TensorFlow's "same"
    with a stride write: the extra pixel of an even total on one side."""
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
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same' (or four "
                         f"pads (top, bottom, left, right)), got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(check_int(p, "padding", 0) for p in padding)
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
    if padding_mode != "zeros":
        check_pads(pads, in_hw, padding_mode)
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
    if padding_mode != "zeros":
        check_pads(pads, out_hw, padding_mode, name="padding (of the output)")
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
