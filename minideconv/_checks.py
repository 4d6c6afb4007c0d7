"""Argument validation shared by every public function.

Every public op calls these *before* any kernel runs, so that a kernel never sees a
shape, dtype or index it could misuse.  Each error is a ``TypeError`` (wrong kind of
thing) or ``ValueError`` (right kind, wrong value) whose message names the parameter and
says what was expected.

The ``*_geometry`` functions return small frozen dataclasses holding the normalised
geometry (pairs of ints, explicit padding on all four sides, output sizes), which the
backends and ``minideconv.matrices`` consume without re-deriving anything.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from . import shapes

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
RELU_RULES = ("backprop", "deconvnet", "guided")
PADDING_MODES = ("zeros", "circular")


# --------------------------------------------------------------------------- arrays

def is_cupy(a) -> bool:
    """True for a CuPy array (checked by type, without importing CuPy)."""
    if type(a) is np.ndarray:  # the common case, answered in a fraction of a µs
        return False
    return type(a).__module__.split(".")[0] == "cupy"


def array_module(a):
    """``cupy`` for a CuPy array (imported only then), ``numpy`` otherwise."""
    if is_cupy(a):
        import cupy
        return cupy
    return np


def is_array(a) -> bool:
    return isinstance(a, np.ndarray) or is_cupy(a)


def check_same_device(**arrays) -> None:
    """All given arrays (None allowed) must be NumPy arrays, or all CuPy arrays."""
    given = {name: a for name, a in arrays.items() if a is not None and is_array(a)}
    on_gpu = {name for name, a in given.items() if is_cupy(a)}
    if on_gpu and on_gpu != set(given):
        raise TypeError(f"{', '.join(sorted(on_gpu))} are cupy arrays but "
                        f"{', '.join(sorted(set(given) - on_gpu))} are numpy arrays: "
                        "pass all arrays on the same device")


def check_float_array(a, name: str, ndim: Optional[int] = None,
                      layout: str = "(N, C, H, W)"):
    """``a`` must be a NumPy (or CuPy) array of float32/float64 with ``ndim`` dimensions."""
    if not is_array(a):
        raise TypeError(f"{name} must be a numpy.ndarray (or cupy.ndarray) of float32 or "
                        f"float64, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {a.shape}")
    return a


def check_same_dtype(a, a_name: str, b, b_name: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{b_name} must have the same dtype as {a_name} ({a.dtype}), "
                        f"got {b.dtype}")


def check_nonempty_spatial(a, name: str) -> None:
    if a.shape[-1] == 0 or a.shape[-2] == 0:
        raise ValueError(f"{name} must have non-empty spatial size (H, W), "
                         f"got shape {a.shape}")


def check_bias(bias, name: str, length: int, dtype) -> None:
    if bias is None:
        return
    check_float_array(bias, name, ndim=1, layout="(channels,)")
    if bias.shape[0] != length:
        raise ValueError(f"{name} must have length {length} (one value per output "
                         f"channel), got shape {bias.shape}")
    if bias.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like the input, got {bias.dtype}")


# --------------------------------------------------------------------------- scalars

def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def to_pair(value, name: str, minimum: int) -> Tuple[int, int]:
    """An int or a pair of ints, each ≥ ``minimum``, as a tuple ``(h, w)``."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def check_groups(groups) -> int:
    if not _is_int(groups):
        raise TypeError(f"groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    return int(groups)


def check_padding_mode(padding_mode: str) -> str:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    return padding_mode


def check_relu_rule(rule: str) -> str:
    if rule not in RELU_RULES:
        raise ValueError(f"rule must be one of {RELU_RULES}, got {rule!r}")
    return rule


# --------------------------------------------------------------------------- convolution

@dataclass(frozen=True)
class ConvGeometry:
    """One convolution, normalised.

    ``pads = (top, bottom, left, right)``; the image (H, W) maps to (H_out, W_out).
    ``padding_mode="circular"`` means: wrap-pad by ``pads`` first, then convolve with no
    padding (``conv_pads`` are then zero).
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
    def conv_pads(self) -> Tuple[int, int]:
        """(top, left) zero padding the kernels apply themselves (bottom/right follow
        from the output size)."""
        if self.padding_mode == "circular":
            return 0, 0
        return self.pads[0], self.pads[2]

    @property
    def padded_hw(self) -> Tuple[int, int]:
        top, bottom, left, right = self.pads
        return self.in_hw[0] + top + bottom, self.in_hw[1] + left + right


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


def check_weight(weight, name_in: str, dtype) -> None:
    """``weight`` must be a 4-D float array of ``dtype`` (the input's)."""
    check_float_array(weight, "weight", ndim=4, layout="(C_out, C_in/groups, kh, kw)")
    if weight.dtype != dtype:
        raise TypeError(f"weight must have the same dtype as {name_in} ({dtype}), "
                        f"got {weight.dtype}")


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
    the adjoint of (``in_hw`` = the transposed convolution's output size)."""
    groups = check_groups(groups)
    padding_mode = check_padding_mode(padding_mode)
    stride = to_pair(stride, "stride", 1)
    dilation = to_pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        raise TypeError(f"padding must be an int or a pair for conv_transpose2d, got {padding!r}")
    padding = to_pair(padding, "padding", 0)
    check_float_array(weight, "weight", ndim=4, layout="(C_out, C_in/groups, kh, kw)")
    if y_shape[1] != weight.shape[0]:
        raise ValueError(f"{name_in} must have weight.shape[0] = {weight.shape[0]} channels "
                         f"(the convolution's output channels), got {y_shape[1]}")
    in_channels = weight.shape[1] * groups
    _check_weight_shape(weight.shape, "weight.shape", name_in, in_channels, groups)
    kernel = tuple(weight.shape[2:])
    y_hw = tuple(y_shape[2:])
    if output_size is not None:
        if output_padding not in (0, (0, 0), [0, 0]):
            raise ValueError("give either output_size or output_padding, not both")
        if not isinstance(output_size, (tuple, list)) or len(output_size) not in (2, 4) \
                or not all(map(_is_int, output_size)):
            raise TypeError(f"output_size must be (H, W) or (N, C, H, W) ints, "
                            f"got {output_size!r}")
        target = tuple(int(v) for v in output_size[-2:])
        reachable = [shapes.conv_transpose_reachable_lengths(i, k, s, p, d)
                     for i, k, s, p, d in zip(y_hw, kernel, stride, padding, dilation)]
        if any(t not in r for t, r in zip(target, reachable)):
            raise ValueError(
                f"output_size {target} is not reachable: with this kernel, stride, padding "
                f"and dilation an input of {y_hw} maps back to heights "
                f"{list(reachable[0])} and widths {list(reachable[1])}")
        output_padding = tuple(t - r.start for t, r in zip(target, reachable))
    else:
        output_padding = to_pair(output_padding, "output_padding", 0)
        for a, s, d in zip(output_padding, stride, dilation):
            if a >= max(s, d):
                raise ValueError(f"output_padding must be smaller than max(stride, dilation) "
                                 f"= {max(s, d)}, got {output_padding}")
    out_hw = tuple(shapes.conv_transpose_output_length(i, k, s, p, a, d) for i, k, s, p, a, d
                   in zip(y_hw, kernel, stride, padding, output_padding, dilation))
    if min(out_hw) < 1:
        raise ValueError(f"padding {padding} is too large: the output size would be {out_hw}")
    pads = (padding[0], padding[0], padding[1], padding[1])
    if padding_mode == "circular" and (padding[0] > out_hw[0] or padding[1] > out_hw[1]):
        raise ValueError(f"padding {padding} must not exceed the output size {out_hw} "
                         "with padding_mode='circular'")
    return ConvGeometry(in_channels, weight.shape[0], groups, kernel, stride, dilation,
                        pads, padding_mode, out_hw, y_hw)


# --------------------------------------------------------------------------- pooling

@dataclass(frozen=True)
class PoolGeometry:
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


def check_switch_array(switches, y) -> None:
    """Switches must be an integer array of y's shape (int64 flat indices h·W + w)."""
    if not is_array(switches):
        raise TypeError(f"switches must be a numpy.ndarray of int64, got "
                        f"{type(switches).__name__}")
    if switches.dtype.kind not in "iu":
        raise TypeError(f"switches must be an integer array (int64 flat indices h*W + w), "
                        f"got dtype {switches.dtype}")
    if switches.shape != y.shape:
        raise ValueError(f"switches must have the shape of y {y.shape}, got {switches.shape}")


def _check_output_size(output_size, y_shape) -> Tuple[int, int]:
    """(H, W) or (N, C, H, W) ints, positive, with y's (N, C); returns (H, W)."""
    if not isinstance(output_size, (tuple, list)) or len(output_size) not in (2, 4) \
            or not all(map(_is_int, output_size)):
        raise TypeError(f"output_size must be (H, W) or (N, C, H, W) ints, got {output_size!r}")
    if len(output_size) == 4 and tuple(output_size[:2]) != tuple(y_shape[:2]):
        raise ValueError(f"output_size {tuple(output_size)} must have y's (N, C) = "
                         f"{tuple(y_shape[:2])}")
    height, width = (int(v) for v in output_size[-2:])
    if height < 1 or width < 1:
        raise ValueError(f"output_size must be positive, got {tuple(output_size)}")
    return height, width


def check_switches(switches, y, output_size) -> Tuple[int, int]:
    """Switches of y's shape inside [0, H·W) of the plane ``output_size``: the check for
    callers that know the pooled input's size but not the pooling's geometry
    (``matrices.max_pool2d_matrix``); ``max_unpool2d`` checks each switch against its own
    window instead."""
    check_switch_array(switches, y)
    height, width = _check_output_size(output_size, y.shape)
    if switches.size:
        lo, hi = int(switches.min()), int(switches.max())
        if lo < 0 or hi >= height * width:
            raise ValueError(f"switches must lie in [0, H*W) = [0, {height * width}) for "
                             f"output_size {(height, width)}, got values in [{lo}, {hi}]")
    return height, width


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
        in_hw = _check_output_size(output_size, y_shape)
        ceil_mode = _ceil_mode_for(in_hw, y_hw, kernel, stride, padding, dilation)
    return max_pool2d_geometry(tuple(y_shape[:2]) + in_hw, kernel, stride, padding,
                               dilation, ceil_mode)


def _window_lines(o, k, s, p, d, size) -> list:
    """The input rows (or columns) of window ``o`` that lie inside the image."""
    return [i for i in shapes.window_positions(o, k, s, p, d) if 0 <= i < size]


def switch_outside_window(switches, position: int, geom: PoolGeometry,
                          kernel_may_be_a_size: bool = False) -> ValueError:
    """The error for the switch at flat ``position`` of ``switches`` that does not lie in
    its own pooling window.  ``kernel_may_be_a_size``: the call looked like the old
    ``max_unpool2d(y, switches, (H, W))``, so say where the size goes now."""
    n, c, oh, ow = (int(i) for i in np.unravel_index(position, switches.shape))
    switch = int(switches[n, c, oh, ow])
    (height, width), (kh, kw) = geom.in_hw, geom.kernel
    (sh, sw), (ph, pw), (dh, dw) = geom.stride, geom.padding, geom.dilation
    where = (f"outside the {height}x{width} plane [0, {height * width})"
             if not 0 <= switch < height * width
             else f"row {switch // width}, column {switch % width}")
    message = (f"switches[{n}, {c}, {oh}, {ow}] = {switch} ({where}) lies outside its "
               f"pooling window: rows {_window_lines(oh, kh, sh, ph, dh, height)} and "
               f"columns {_window_lines(ow, kw, sw, pw, dw, width)} (kernel_size "
               f"{geom.kernel}, stride {geom.stride}, padding {geom.padding}, dilation "
               f"{geom.dilation}); switches must come from max_pool2d with this geometry")
    if kernel_may_be_a_size:
        message += (f". If {geom.kernel} is the pooled input's size: max_unpool2d takes the "
                    "pooling's kernel_size, stride and padding (as "
                    "torch.nn.functional.max_unpool2d), and that size as output_size=")
    return ValueError(message)
