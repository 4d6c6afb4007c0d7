"""Hypothesis strategies and numeric helpers shared by the minideconv tests.

The strategies build *valid* configurations directly (sizes are computed so that the
kernel fits the padded input, output lengths are positive, ...) instead of filtering,
and they keep the arrays small (N <= 2, channels <= 4, spatial <= 12, a little more
when a dilated 7-tap kernel must fit) so that the "ci" profile's 200 examples per
property run in seconds.

Array *values* are not drawn element by element: a case carries a seed and builds its
arrays with ``numpy.random.default_rng(seed)``.  Hypothesis still shrinks the
configuration (sizes, strides, ...), which is what matters when a case fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
from hypothesis import strategies as st

from minideconv import shapes

Pair = Tuple[int, int]

DTYPES = (np.float32, np.float64)

#: relative tolerances (error measured against the largest magnitude of the reference)
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


# --------------------------------------------------------------------------- numerics

def rel_err(actual, expected) -> float:
    """max |actual - expected| / max |expected| (both taken as float64)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(e))), 1e-30)
    return float(np.max(np.abs(a - e))) / scale


def assert_close(actual, expected, dtype=None, rtol: Optional[float] = None,
                 what: str = "") -> None:
    """Shapes equal, NaNs at the same places, and the remaining entries within ``rtol``
    relative error (default: 1e-5 for float32, 1e-12 for float64)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    dtype = np.dtype(dtype if dtype is not None else expected.dtype)
    tol = RTOL[dtype] if rtol is None else rtol
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), f"{what}: NaN positions differ"
    err = rel_err(actual[~nan_a], expected[~nan_e])
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def dot(a, b) -> float:
    """<a, b> accumulated in float64."""
    return float(np.dot(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()))


def dot_scale(a, b) -> float:
    """sum |a_i| |b_i|: the natural scale of the rounding error of <a, b>."""
    return float(np.dot(np.abs(np.asarray(a, np.float64)).ravel(),
                        np.abs(np.asarray(b, np.float64)).ravel()))


def as_arg(draw, pair: Pair, allow_list: bool = True):
    """Pass a pair as an int (when both are equal, sometimes), a tuple or a list."""
    if pair[0] == pair[1] and draw(st.booleans()):
        return int(pair[0])
    if allow_list and draw(st.booleans()):
        return [int(pair[0]), int(pair[1])]
    return (int(pair[0]), int(pair[1]))


def orthonormal_columns(rng, rows: int, cols: int, dtype=np.float64):
    """A rows x cols matrix Q with QᵀQ = I (rows >= cols)."""
    q, r = np.linalg.qr(rng.standard_normal((rows, rows)))
    q = q * np.sign(np.diag(r))
    return np.ascontiguousarray(q[:, :cols]).astype(dtype)


# --------------------------------------------------------------------------- conv

def _same_pads(k: int, d: int) -> Pair:
    """PyTorch's padding='same': total d(k-1), the extra one on the right/bottom."""
    total = d * (k - 1)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class ConvCase:
    n: int
    c_in: int
    c_out: int
    groups: int
    hw: Pair
    kernel: Pair
    stride: Pair
    padding: Union[Pair, str]          # a pair, or "same" / "valid"
    dilation: Pair
    padding_mode: str
    dtype: type
    with_bias: bool
    seed: int
    stride_arg: object = 1
    padding_arg: object = 0
    dilation_arg: object = 1

    # ---- geometry
    @property
    def pads(self) -> Tuple[Pair, Pair]:
        """((top, bottom), (left, right)) actually applied."""
        if self.padding == "same":
            return tuple(_same_pads(k, d) for k, d in zip(self.kernel, self.dilation))
        if self.padding == "valid":
            return ((0, 0), (0, 0))
        return tuple((p, p) for p in self.padding)

    @property
    def int_padding(self) -> Pair:
        assert not isinstance(self.padding, str)
        return self.padding

    @property
    def out_hw(self) -> Pair:
        return tuple((i + lo + hi - d * (k - 1) - 1) // s + 1
                     for i, (lo, hi), k, s, d in zip(self.hw, self.pads, self.kernel,
                                                     self.stride, self.dilation))

    @property
    def x_shape(self):
        return (self.n, self.c_in) + tuple(self.hw)

    @property
    def w_shape(self):
        return (self.c_out, self.c_in // self.groups) + tuple(self.kernel)

    @property
    def y_shape(self):
        return (self.n, self.c_out) + tuple(self.out_hw)

    # ---- arrays
    def rng(self, salt: int = 0):
        return np.random.default_rng([self.seed, salt])

    def arrays(self):
        """x, weight, bias (or None), and a random cotangent g of the output's shape."""
        rng = self.rng()
        x = rng.standard_normal(self.x_shape).astype(self.dtype)
        w = rng.standard_normal(self.w_shape).astype(self.dtype)
        b = rng.standard_normal(self.c_out).astype(self.dtype) if self.with_bias else None
        g = rng.standard_normal(self.y_shape).astype(self.dtype)
        return x, w, b, g

    def kwargs(self) -> dict:
        kw = dict(stride=self.stride_arg, padding=self.padding_arg,
                  dilation=self.dilation_arg, groups=self.groups)
        if self.padding_mode != "zeros":
            kw["padding_mode"] = self.padding_mode
        return kw


@st.composite
def _axis_conv(draw, circular: bool, max_size: int = 12, max_kernel: int = 7,
               max_stride: int = 4, max_dilation: int = 3, max_pad: int = 3):
    """One axis: (size, kernel, stride, padding, dilation) with the kernel fitting the
    padded input; circular padding never wraps more than once (p <= size, as torch)."""
    i = draw(st.integers(1, max_size))
    p = draw(st.integers(0, min(max_pad, i) if circular else max_pad))
    d = draw(st.integers(1, max_dilation))
    k = draw(st.integers(1, min(max_kernel, (i + 2 * p - 1) // d + 1)))
    s = draw(st.integers(1, max_stride))
    return i, k, s, p, d


@st.composite
def conv_cases(draw, padding_modes=("zeros", "circular"), string_padding: bool = True,
               dtypes=DTYPES, max_size: int = 12, max_kernel: int = 7,
               max_channels: int = 4, bias: Optional[bool] = None, max_stride: int = 4):
    """A valid conv2d configuration (also, with integer padding, the forward conv of a
    transposed convolution)."""
    padding_mode = draw(st.sampled_from(padding_modes))
    circular = padding_mode == "circular"
    groups = draw(st.integers(1, 3))
    per_group = max(1, max_channels // groups)
    c_in = groups * draw(st.integers(1, per_group))
    c_out = groups * draw(st.integers(1, per_group))
    axes = [draw(_axis_conv(circular, max_size=max_size, max_kernel=max_kernel,
                            max_stride=max_stride))
            for _ in range(2)]
    hw = tuple(a[0] for a in axes)
    kernel = tuple(a[1] for a in axes)
    stride = tuple(a[2] for a in axes)
    padding = tuple(a[3] for a in axes)
    dilation = tuple(a[4] for a in axes)

    mode = draw(st.sampled_from(("int", "int", "int", "same", "valid"))) if string_padding \
        else "int"
    if mode == "same":
        stride = (1, 1)
        if circular:   # the 'same' pads must not wrap more than once either
            ok = all(max(_same_pads(k, d)) <= i for i, k, d in zip(hw, kernel, dilation))
            mode = "same" if ok else "int"
    if mode == "same":
        padding_val, padding_arg = "same", "same"
    elif mode == "valid" and all(d * (k - 1) + 1 <= i
                                 for i, k, d in zip(hw, kernel, dilation)):
        padding_val, padding_arg = "valid", "valid"
    else:
        padding_val = padding
        padding_arg = as_arg(draw, padding)

    return ConvCase(
        n=draw(st.integers(1, 2)), c_in=c_in, c_out=c_out, groups=groups, hw=hw,
        kernel=kernel, stride=stride, padding=padding_val, dilation=dilation,
        padding_mode=padding_mode, dtype=draw(st.sampled_from(dtypes)),
        with_bias=draw(st.booleans()) if bias is None else bias,
        seed=draw(st.integers(0, 2**32 - 1)),
        stride_arg=as_arg(draw, stride), padding_arg=padding_arg,
        dilation_arg=as_arg(draw, dilation))


# --------------------------------------------------------------------------- transposed conv

@dataclass(frozen=True)
class ConvTransposeCase:
    """conv_transpose2d of a y with the forward conv's output size (``conv.out_hw``)."""
    conv: ConvCase                     # integer padding
    output_padding: Pair
    output_size: Optional[tuple]       # passed as output_size= when not None
    output_padding_arg: object = 0

    @property
    def out_hw(self) -> Pair:
        c = self.conv
        return tuple(shapes.conv_transpose_output_length(i, k, s, p, a, d)
                     for i, k, s, p, a, d in zip(c.out_hw, c.kernel, c.stride,
                                                 c.int_padding, self.output_padding,
                                                 c.dilation))

    def arrays(self):
        """y (C_out channels), weight, bias (C_in channels or None), cotangent r."""
        c = self.conv
        rng = c.rng(1)
        y = rng.standard_normal(c.y_shape).astype(c.dtype)
        w = rng.standard_normal(c.w_shape).astype(c.dtype)
        b = rng.standard_normal(c.c_in).astype(c.dtype) if c.with_bias else None
        r = rng.standard_normal((c.n, c.c_in) + tuple(self.out_hw)).astype(c.dtype)
        return y, w, b, r

    def kwargs(self) -> dict:
        c = self.conv
        kw = dict(stride=c.stride_arg, padding=c.padding_arg, dilation=c.dilation_arg,
                  groups=c.groups)
        if self.output_size is not None:
            kw["output_size"] = self.output_size
        else:
            kw["output_padding"] = self.output_padding_arg
        if c.padding_mode != "zeros":
            kw["padding_mode"] = c.padding_mode
        return kw


@st.composite
def conv_transpose_cases(draw, padding_modes=("zeros",), dtypes=DTYPES, **conv_kw):
    """A valid conv_transpose2d configuration: output_padding a in [0, max(s, d)) with a
    positive output length, given either as output_padding= or as output_size= (then
    a < s: the sizes a convolution could have come from)."""
    conv = draw(conv_cases(padding_modes=padding_modes, string_padding=False,
                           dtypes=dtypes, **conv_kw))
    use_size = draw(st.booleans())
    a = []
    for o, k, s, p, d in zip(conv.out_hw, conv.kernel, conv.stride, conv.int_padding,
                             conv.dilation):
        smallest = shapes.conv_transpose_output_length(o, k, s, p, 0, d)
        hi = (s if use_size else max(s, d)) - 1
        # the output length must be >= 1, and >= p with circular padding (the adjoint
        # conv's input must not wrap more than once); the forward conv's input length
        # (a < s) always qualifies, so the range is never empty
        min_length = max(1, p) if conv.padding_mode == "circular" else 1
        a.append(draw(st.integers(max(0, min_length - smallest), hi)))
    a = tuple(a)
    if use_size:
        hw = tuple(shapes.conv_transpose_output_length(o, k, s, p, ai, d)
                   for o, k, s, p, ai, d in zip(conv.out_hw, conv.kernel, conv.stride,
                                                conv.int_padding, a, conv.dilation))
        form = draw(st.sampled_from(("hw", "list", "nchw")))
        size = {"hw": hw, "list": list(hw), "nchw": (conv.n, conv.c_in) + hw}[form]
        return ConvTransposeCase(conv, a, size)
    return ConvTransposeCase(conv, a, None, output_padding_arg=as_arg(draw, a))


# --------------------------------------------------------------------------- max-pool

@dataclass(frozen=True)
class PoolCase:
    n: int
    c: int
    hw: Pair
    kernel: Pair
    stride: Pair                       # effective stride
    padding: Pair
    dilation: Pair
    ceil_mode: bool
    dtype: type
    seed: int
    kernel_arg: object = 1
    stride_arg: object = None
    padding_arg: object = 0
    dilation_arg: object = 1

    @property
    def out_hw(self) -> Pair:
        return shapes.max_pool2d_output_shape(self.hw, self.kernel, self.stride,
                                              self.padding, self.dilation, self.ceil_mode)

    @property
    def empty_windows(self):
        """(rows, cols) whose window lies entirely in the padding."""
        return tuple(shapes.empty_windows(i, k, s, p, d, o) for i, k, s, p, d, o in
                     zip(self.hw, self.kernel, self.stride, self.padding, self.dilation,
                         self.out_hw))

    @property
    def has_empty_window(self) -> bool:
        return any(self.empty_windows)

    @property
    def x_shape(self):
        return (self.n, self.c) + tuple(self.hw)

    @property
    def y_shape(self):
        return (self.n, self.c) + tuple(self.out_hw)

    def x(self, values: str = "normal"):
        """normal: N(0, 1); ties: integers 0..2 (many ties); nan: normal with ~15 % NaN;
        tiesnan: integers with NaNs; inf: integers with many -inf (whole windows of -inf)
        and a few +inf."""
        rng = np.random.default_rng([self.seed, 2])
        if values in ("ties", "tiesnan", "inf"):
            x = rng.integers(0, 3, self.x_shape).astype(self.dtype)
        else:
            x = rng.standard_normal(self.x_shape).astype(self.dtype)
        if values in ("nan", "tiesnan"):
            x[rng.random(self.x_shape) < 0.15] = np.nan
        if values == "inf":
            u = rng.random(self.x_shape)
            x[u < 0.6] = -np.inf
            x[u > 0.95] = np.inf
        return x

    def cotangent(self):
        rng = np.random.default_rng([self.seed, 3])
        return rng.standard_normal(self.y_shape).astype(self.dtype)

    def kwargs(self) -> dict:
        kw = dict(kernel_size=self.kernel_arg, padding=self.padding_arg,
                  dilation=self.dilation_arg, ceil_mode=self.ceil_mode)
        if self.stride_arg is not None:
            kw["stride"] = self.stride_arg
        return kw


@st.composite
def pool_cases(draw, dtypes=DTYPES, max_size: int = 12, max_kernel: int = 7,
               max_stride: int = 4, max_dilation: int = 3, overlapping: bool = False):
    """A max_pool2d configuration PyTorch accepts (padding <= kernel/2, the dilated kernel
    fits the padded input).  Some have windows entirely in padding (see
    ``PoolCase.has_empty_window``); minideconv refuses those.  ``overlapping`` forces
    kernel > stride on both axes."""
    kernel, stride, padding, dilation, hw = [], [], [], [], []
    for _ in range(2):
        k = draw(st.integers(2 if overlapping else 1, max_kernel))
        d = draw(st.integers(1, max_dilation))
        p = draw(st.integers(0, k // 2))
        s = draw(st.integers(1, (k - 1) if overlapping else max_stride))
        lo = max(1, d * (k - 1) + 1 - 2 * p)
        i = draw(st.integers(lo, max(lo + 3, max_size)))
        kernel.append(k), stride.append(s), padding.append(p), dilation.append(d)
        hw.append(i)
    kernel, stride, padding, dilation, hw = map(tuple, (kernel, stride, padding,
                                                        dilation, hw))
    stride_arg = None if stride == kernel and draw(st.booleans()) else as_arg(draw, stride)
    return PoolCase(n=draw(st.integers(1, 2)), c=draw(st.integers(1, 3)), hw=hw,
                    kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                    ceil_mode=draw(st.booleans()), dtype=draw(st.sampled_from(dtypes)),
                    seed=draw(st.integers(0, 2**32 - 1)),
                    kernel_arg=as_arg(draw, kernel), stride_arg=stride_arg,
                    padding_arg=as_arg(draw, padding), dilation_arg=as_arg(draw, dilation))


@st.composite
def elementwise_arrays(draw, dtypes=DTYPES, nan: bool = False, min_ndim: int = 4):
    """A small float array, NCHW by default, or ``min_ndim``-D to 4-D (values N(0,1),
    exact zeros mixed in, NaNs if asked)."""
    ndim = draw(st.integers(min_ndim, 4))
    shape = tuple(draw(st.integers(1, k)) for k in (2, 3, 6, 6))[4 - ndim:]
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.1] = 0.0
    if nan:
        x[rng.random(shape) < 0.1] = np.nan
    return x
