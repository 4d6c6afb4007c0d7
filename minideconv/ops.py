"""The public functional operators.

Each function validates its arguments (``minideconv.checks``), works out the layer's
geometry once (``minideconv.geometry``), makes the arrays C-contiguous, and calls one
kernel of a backend (``backends.contract`` says which kernels and what they may
assume).  Names and semantics follow ``torch.nn.functional`` so results compare one to
one — with one deliberate difference: ``max_unpool2d`` here is the true transpose of
``max_pool2d`` (see its docstring).  Each forward operator sits beside its transpose.

The backend is chosen by the arrays' type, in ``_backend_for`` only: NumPy arrays go to
the CPU backend (``backends.cpu``), CuPy arrays to ``backends.reference``; a mix of the
two is a TypeError.  Backends load on the first call, never at ``import minideconv``.
"""

from __future__ import annotations

import numpy as np

from . import checks, geometry, rules
from .padding import pad, pad_adjoint

#: Which backend runs NumPy arrays: ``"cpu"`` (the Numba loops, default) or
#: ``"reference"`` (the whole-array code that runs CuPy arrays, here on NumPy), so that
#: the GPU's code is tested, and can be debugged, on machines without a GPU.
CPU_BACKEND = "cpu"

_LOADED = {}


def _backend_for(*arrays):
    """The backend for these arrays: ``backends.reference`` for CuPy arrays (or when
    ``CPU_BACKEND == "reference"``), else ``backends.cpu``; loaded once, then kept here.
    The caller holds its ``kernel_lock`` around the call."""
    name = "reference" if CPU_BACKEND == "reference" or any(map(checks.is_cupy, arrays)) \
        else "cpu"
    backend = _LOADED.get(name)
    if backend is None:
        from . import backends
        if CPU_BACKEND not in ("cpu", "reference"):
            raise ValueError(f"ops.CPU_BACKEND must be 'cpu' or 'reference', "
                             f"got {CPU_BACKEND!r}")
        load = backends.load_reference_backend if name == "reference" \
            else backends.load_cpu_backend
        backend = _LOADED[name] = load()
    return backend


def _contiguous(a):
    """C-contiguous (the kernels index raw memory row by row)."""
    return checks.array_module(a).ascontiguousarray(a)


def _as_zero_padded_input(x, geom):
    """x and the geometry the backends run: circular, reflect and replicate padding are
    applied here, to x (``ConvGeometry.as_zero_padded``), so a backend only ever sees
    zero padding."""
    if geom.padding_mode != "zeros":
        x = pad(x, geom.pads, geom.padding_mode)
    return _contiguous(x), geom.as_zero_padded()


def _add_bias(out, bias):
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``:

        y[n, o, h, w] = b[o] + Σ_{c, i, j} weight[o, c, i, j] · x_pad[n, g(o)·C_g + c, h·sh + i·dh, w·sw + j·dw]

    Parameters
    ----------
    x : (N, C_in, H, W) float32 or float64
    weight : (C_out, C_in / groups, kh, kw), same dtype
    bias : (C_out,) or None
    stride, dilation : int or (int, int), ≥ 1
    padding : int, (int, int), (top, bottom, left, right), ``"valid"`` (no padding) or
        ``"same"`` (stride 1 only; output size = input size, the odd extra pixel on the
        bottom/right like PyTorch)
    groups : int dividing C_in and C_out
    padding_mode : ``"zeros"``, ``"circular"`` (wrap around), ``"reflect"`` (mirror, the
        edge not repeated) or ``"replicate"`` (repeat the edge), PyTorch's
        ``nn.Conv2d(padding_mode=...)``

    Returns
    -------
    y : (N, C_out, H_out, W_out), H_out = ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1
    """
    checks.check_same_device(x=x, weight=weight, bias=bias)
    checks.check_float_array(x, "x", ndim=4)
    checks.check_nonempty_spatial(x, "x")
    checks.check_weight(weight, "x", x.dtype)
    geom = geometry.conv2d_geometry(x.shape, weight.shape, stride, padding, dilation, groups,
                                    padding_mode)
    checks.check_bias(bias, "bias", geom.out_channels, x.dtype)
    x, kernel_geom = _as_zero_padded_input(x, geom)
    backend = _backend_for(x, weight)
    with backend.kernel_lock:
        y = backend.conv2d(x, _contiguous(weight), kernel_geom)
    return _add_bias(y, bias)


def conv_transpose2d(y, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, output_size=None, padding_mode="zeros"):
    """The transposed convolution x = Wᵀ y, as ``torch.nn.functional.conv_transpose2d``.

    ``weight`` is the *same* array a ``conv2d`` with these stride/padding/dilation/groups
    would use, shape (C_out, C_in / groups, kh, kw); ``y`` has C_out channels and the
    result C_in channels.  It is the adjoint of ``conv2d`` in its input,
    ⟨conv2d(x, w), y⟩ = ⟨x, conv_transpose2d(y, w)⟩, i.e. the gradient ∂⟨conv2d(x, w), y⟩/∂x:

        x[n, c, ih, iw] = b[c] + Σ weight[o, c, i, j] · y[n, o, oh, ow]
                          over oh·sh − p + i·dh = ih, ow·sw − p + j·dw = iw

    It restores the *shape* of the convolution's input, not its values: WᵀW ≠ I unless
    W has orthonormal columns.

    Several input sizes give one convolution output size (the floor in the size formula);
    ``output_padding`` (0 ≤ a < max(stride, dilation), PyTorch's rule) or
    ``output_size=(H, W)`` says which to return.  ``output_size`` must be one of the
    sizes a convolution could have come from, ``shapes.conv_transpose_reachable_lengths``.

    ``padding`` takes everything ``conv2d`` takes, ``"same"`` and ``"valid"`` included, so
    the transpose of any ``conv2d`` call is this function with the same arguments
    (PyTorch's ``conv_transpose2d`` takes no string padding).  ``padding_mode`` "circular",
    "reflect" or "replicate" gives the adjoint of ``conv2d`` with that padding mode: the
    border folded back onto the pixels it copied (PyTorch has no such transposed
    convolution).
    """
    checks.check_same_device(y=y, weight=weight, bias=bias)
    checks.check_float_array(y, "y", ndim=4)
    checks.check_nonempty_spatial(y, "y")
    geom = geometry.conv_transpose2d_geometry(y.shape, weight, stride, padding, output_padding,
                                              dilation, groups, output_size, padding_mode)
    checks.check_same_dtype(y, "y", weight, "weight")
    checks.check_bias(bias, "bias", geom.in_channels, y.dtype)
    backend = _backend_for(y, weight)
    with backend.kernel_lock:
        x = backend.conv_transpose2d(_contiguous(y), _contiguous(weight), geom.as_zero_padded())
    if geom.padding_mode != "zeros":  # fold the padded border back: pad's transpose
        x = pad_adjoint(x, geom.pads, geom.padding_mode)
    return _add_bias(x, bias)


def conv2d_weight_grad(x, grad_out, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                       padding_mode="zeros"):
    """The weight gradient of ``conv2d``: ∂⟨conv2d(x, w), g⟩/∂w, shape ``weight_shape``.

        dw[o, c, i, j] = Σ_{n, h, w} g[n, o, h, w] · x_pad[n, g(o)·C_g + c, h·sh + i·dh, w·sw + j·dw]

    i.e. the cross-correlation of the input with the output gradient.
    """
    checks.check_same_device(x=x, grad_out=grad_out)
    checks.check_float_array(x, "x", ndim=4)
    checks.check_nonempty_spatial(x, "x")
    checks.check_float_array(grad_out, "grad_out", ndim=4)
    checks.check_same_dtype(x, "x", grad_out, "grad_out")
    if not (isinstance(weight_shape, (tuple, list)) and len(weight_shape) == 4
            and all(checks.is_int(v) and v >= 1 for v in weight_shape)):
        raise ValueError(f"weight_shape must be 4 positive ints (C_out, C_in/groups, kh, kw), "
                         f"got {weight_shape!r}")
    weight_shape = tuple(int(v) for v in weight_shape)
    geom = geometry.conv2d_geometry(x.shape, weight_shape, stride, padding, dilation, groups,
                                    padding_mode, shape_name="weight_shape")
    expected = (x.shape[0], geom.out_channels) + geom.out_hw
    if grad_out.shape != expected:
        raise ValueError(f"grad_out must have the convolution's output shape {expected}, "
                         f"got {grad_out.shape}")
    x, kernel_geom = _as_zero_padded_input(x, geom)
    backend = _backend_for(x, grad_out)
    with backend.kernel_lock:
        return backend.conv2d_weight_grad(x, _contiguous(grad_out), kernel_geom)


def _check_signal_and_input(grad, x, rule):
    """The rule (``rules.get_rule``) of a way back through an element-wise unit, once
    ``grad`` and its forward input ``x`` are float arrays of one shape, dtype, device."""
    checks.check_same_device(grad=grad, x=x)
    checks.check_float_array(grad, "grad")
    checks.check_float_array(x, "x")
    rule = rules.get_rule(rule)
    if grad.shape != x.shape:
        raise ValueError(f"grad must have the shape of x {x.shape}, got {grad.shape}")
    checks.check_same_dtype(x, "x", grad, "grad")
    return rule


def relu(x):
    """y = max(x, 0) = D(x > 0) x, element-wise; any shape.  NaN stays NaN."""
    checks.check_float_array(x, "x")
    backend = _backend_for(x)
    with backend.kernel_lock:
        return backend.relu(_contiguous(x))


def relu_backward(grad, x, rule="backprop"):
    """Pass a signal ``grad`` back through a ReLU whose forward input was ``x``, by one
    of the three rules of ``minideconv.rules`` (``rules.NAMES``): ``"backprop"`` (the
    gradient), ``"deconvnet"`` (Zeiler & Fergus) or ``"guided"`` (Springenberg et al.).

    The deconvnet rule ignores ``x`` (it must still be given and match ``grad``'s shape,
    so the three rules are interchangeable).  A NaN in ``x`` counts as inactive
    ([NaN > 0] is false); PyTorch's autograd passes the gradient through there instead.
    """
    rule = _check_signal_and_input(grad, x, rule)
    backend = _backend_for(grad, x)
    with backend.kernel_lock:
        return backend.relu_backward(_contiguous(grad), _contiguous(x), rule)


def _rectifier_arguments(x, negative_slope, cap):
    """x with at least two dimensions, one slope per channel x.shape[1] (an array of x's
    dtype on x's device) and the cap as a float (inf: none) — what the kernels take."""
    if checks.is_array(negative_slope):
        checks.check_float_array(negative_slope, "negative_slope", ndim=1,
                                 layout="(1,) or (C,), one slope per channel")
        slopes = negative_slope
    else:           # a TypeError for anything but a real number
        slopes = [checks.check_real(negative_slope, "negative_slope")]
    cap = np.inf if cap is None else checks.check_real(cap, "cap", above=0,
                                                        why="the largest output, m")
    if x.ndim < 2:
        x = x.reshape(1, -1)                    # one row, one channel
    channels = x.shape[1]
    if len(slopes) not in (1, channels):
        raise ValueError(f"negative_slope must have 1 or {channels} values (x.shape[1], "
                         f"the channels), got {len(slopes)}")
    xp = checks.array_module(x)
    slopes = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(slopes, dtype=x.dtype),
                                                  (channels,)))
    return _contiguous(x), slopes, cap


def rectifier(x, negative_slope=0.0, cap=None):
    """y = f(x), element-wise, for the rectifier family of ``minideconv.rules``:

        f(x) = α·x for x ≤ 0,   x for 0 < x < m,   m for x ≥ m

    ``negative_slope`` α: a real (LeakyReLU's ``negative_slope``) or a 1-D array of one α
    per channel x.shape[1] (PReLU's weight); ``cap`` m > 0 or None (no cap: ReLU6 is
    ``cap=6``, torch's ``hardtanh(x, 0, m)``).  ``rectifier(x)`` is ``relu(x)``; NaN stays
    NaN.  x: any shape, (N, C, …) when α is per channel."""
    checks.check_float_array(x, "x")
    checks.check_same_device(x=x, negative_slope=negative_slope)
    rows, slopes, cap = _rectifier_arguments(x, negative_slope, cap)
    backend = _backend_for(rows)
    with backend.kernel_lock:
        return backend.rectifier(rows, slopes, cap).reshape(x.shape)


def rectifier_backward(grad, x, rule="backprop", negative_slope=0.0, cap=None):
    """Pass ``grad`` back through the rectifier ``rectifier(x, negative_slope, cap)`` by
    one of the three rules of ``minideconv.rules``:

        backprop: f′(x)·g    deconvnet: rect_α(g)    guided: f′(x)·rect_α(g)

    with rect_α(g) = max(g, 0) + α·min(g, 0) and f′(x) = α (x ≤ 0), 1 (0 < x < m), 0
    (x ≥ m): the ties as torch's ``hardtanh`` and ``leaky_relu`` (``torch.clamp``'s
    derivative keeps x = 0 and x = m instead).  The deconvnet ignores x and the cap."""
    checks.check_same_device(grad=grad, x=x, negative_slope=negative_slope)
    rule = _check_signal_and_input(grad, x, rule)
    rows, slopes, cap = _rectifier_arguments(x, negative_slope, cap)
    backend = _backend_for(grad, x)
    with backend.kernel_lock:
        return backend.rectifier_backward(_contiguous(grad).reshape(rows.shape), rows,
                                          slopes, cap, rule).reshape(x.shape)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max-pooling that also returns its *switches* (Zeiler & Fergus's term):

        y[n, c, oh, ow] = max over the window of x,  s[n, c, oh, ow] = argmax as ih·W + iw

    exactly ``torch.nn.functional.max_pool2d(..., return_indices=True)``: int64 flat
    indices into each input plane, the first maximum in scan order on ties, NaN wins.
    Padding is −∞ (never chosen) and may be at most half the kernel.  ``stride``
    defaults to ``kernel_size``.  Configurations where a window sees only padding (possible
    with dilation) are rejected; PyTorch returns −∞ and an out-of-range index there.

    Returns ``(y, switches)``; ``y = P(s) x`` with P(s) the 0/1 selection matrix.
    """
    checks.check_float_array(x, "x", ndim=4)
    checks.check_nonempty_spatial(x, "x")
    geom = geometry.max_pool2d_geometry(x.shape, kernel_size, stride, padding, dilation,
                                        ceil_mode)
    backend = _backend_for(x)
    with backend.kernel_lock:
        return backend.max_pool2d(_contiguous(x), geom)


def max_unpool2d(y, switches, kernel_size, stride=None, padding=0, output_size=None, *,
                 dilation=1):
    """Unpooling, the true transpose x = P(s)ᵀ y: every y value is ADDED at its switch.

        x[n, c, s // W, s % W] += y[n, c, oh, ow]  for all (oh, ow), s = switches[n, c, oh, ow]

    This equals the gradient of ``max_pool2d`` (what autograd computes).  **Difference from
    PyTorch:** ``torch.nn.functional.max_unpool2d`` *assigns* (last write wins), so when
    pooling windows overlap (kernel > stride) and several outputs share a switch it keeps
    only one of them and is not the transpose.  Example: a 5×5 input whose centre is the
    maximum of all four 3×3/stride-2 windows, y = [1, 2, 3, 4]: the true value at the centre
    is 1 + 2 + 3 + 4 = 10, PyTorch's keeps one of the four (2 or 4 with torch 2.13 on the
    CPU, depending on the thread count).
    Without overlap the two agree.

    The arguments are the pooling's, in ``F.max_unpool2d``'s order, so a torch call ports
    one to one; ``dilation`` (keyword only: torch's unpool has none) is max_pool2d's.
    The output size (H, W) is ``output_size`` ((H, W) or (N, C, H, W)), which must be a
    size that ``max_pool2d`` with this geometry (floor or ``ceil_mode``) maps to y's
    (H_out, W_out) — a narrower range than PyTorch's default ± (stride − 1).  By default
    it is the size the windows cover exactly, PyTorch's default (which has dh = 1):

        H = (H_out − 1)·sh − 2·ph + dh·(kh − 1) + 1   (W likewise).

    Several input sizes pool to one output size: pass the pooled input's size as
    ``output_size`` unless the windows cover it exactly.

    Every switch must lie in its own window, else a ValueError names it (before anything
    is written): s // W must be one of the rows oh·sh − ph + i·dh, i in [0, kh), inside
    [0, H), and s % W one of the columns ow·sw − pw + j·dw, j in [0, kw), inside [0, W).
    That is what keeps a wrong size from silently scrambling the result (switches are
    flat indices h·W + w: another W reads them as other positions).
    """
    checks.check_same_device(y=y, switches=switches)
    checks.check_float_array(y, "y", ndim=4)
    checks.check_nonempty_spatial(y, "y")
    checks.check_switch_array(switches, y)
    geom = geometry.max_unpool2d_geometry(y.shape, kernel_size, stride, padding, dilation,
                                          output_size)
    switches = _contiguous(switches.astype(np.int64, copy=False))
    backend = _backend_for(y, switches)
    with backend.kernel_lock:
        bad = backend.first_switch_outside_window(switches, geom)
    if bad >= 0:
        raise checks.switch_outside_window(switches, bad, geom)
    with backend.kernel_lock:
        return backend.max_unpool2d(_contiguous(y), switches, geom)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average pooling, exactly ``torch.nn.functional.avg_pool2d``:

        y[n, c, oh, ow] = Σ_{window} x[n, c, ih, iw] / divisor[oh, ow]

    The window of output (oh, ow) starts at (oh·sh − ph, ow·sw − pw) and is ``kernel_size``
    long; it sums only the pixels inside the image (padding adds zeros).  Per axis, with
    a = o·s − p the window's start and b = a + k its end, the divisor's factor is

        min(b, L + p) − a               with count_include_pad (the default): the padding
                                        counts, the part of a ceil_mode window beyond the
                                        padded input does not;
        min(b, L) − max(a, 0)           without: only the pixels inside the image;

    and ``divisor_override`` (a nonzero int), if given, replaces the whole divisor.
    ``stride`` defaults to ``kernel_size``; padding is at most half the kernel; the output
    size is max-pooling's (``ceil_mode`` rounds up, but a last window must start inside
    the input or its left padding).

    y = A x with a fixed matrix A (``matrices.avg_pool2d_matrix``): average pooling is
    linear, and ``avg_pool2d_transpose`` is Aᵀ.
    """
    checks.check_float_array(x, "x", ndim=4)
    checks.check_nonempty_spatial(x, "x")
    geom = geometry.avg_pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode,
                                        count_include_pad, divisor_override)
    backend = _backend_for(x)
    with backend.kernel_lock:
        return backend.avg_pool2d(_contiguous(x), geom)


def avg_pool2d_transpose(r, input_size, kernel_size, stride=None, padding=0,
                         ceil_mode=False, count_include_pad=True, divisor_override=None):
    """The transpose x = Aᵀ r of ``avg_pool2d`` with these arguments, (N, C, *input_size):

        x[n, c, ih, iw] = Σ r[n, c, oh, ow] / divisor[oh, ow]
                          over the windows (oh, ow) that hold (ih, iw)

    — every r value is spread evenly over its window (the part in the padding is
    dropped) and overlapping windows add up.  It is the gradient of ``avg_pool2d`` (what
    autograd computes), and ⟨avg_pool2d(x), r⟩ = ⟨x, avg_pool2d_transpose(r)⟩.

    ``input_size`` ((H, W), or (N, C, H, W) with r's N and C) is the pooled input's size:
    several sizes pool to one, so it must be given, and it must pool to r's size.
    """
    checks.check_float_array(r, "r", ndim=4)
    checks.check_nonempty_spatial(r, "r")
    geom = geometry.avg_pool_transpose_geometry(
        r.shape, input_size, lambda x_shape: geometry.avg_pool2d_geometry(
            x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
            divisor_override))
    backend = _backend_for(r)
    with backend.kernel_lock:
        return backend.avg_pool2d_transpose(_contiguous(r), geom)


def _adaptive_windows(x, output_size):
    """x checked and C-contiguous, and the adaptive windows that pool it to
    ``output_size`` (average and max pooling share them)."""
    checks.check_float_array(x, "x", ndim=4)
    checks.check_nonempty_spatial(x, "x")
    return _contiguous(x), geometry.adaptive_avg_pool2d_geometry(x.shape, output_size)


def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling, exactly ``torch.nn.functional.adaptive_avg_pool2d``: the
    (H, W) image is covered by ``output_size`` = (H_out, W_out) windows (an int: square; a
    None in the pair keeps that input size), per axis of input length L and output
    length O

        window o = [⌊o·L / O⌋, ⌈(o + 1)·L / O⌉),   y = the mean over the window.

    Neighbouring windows overlap where L / O is not an integer; O > L (output larger than
    the input) repeats pixels.  Linear, y = A x (``matrices.adaptive_avg_pool2d_matrix``),
    with transpose ``adaptive_avg_pool2d_transpose``.
    """
    x, geom = _adaptive_windows(x, output_size)
    backend = _backend_for(x)
    with backend.kernel_lock:
        return backend.avg_pool2d(x, geom)


def adaptive_avg_pool2d_transpose(r, input_size):
    """The transpose x = Aᵀ r of ``adaptive_avg_pool2d`` from an input of ``input_size``
    ((H, W), or (N, C, H, W) with r's N and C) to r's size: each r value divided by its
    window's size, added to every pixel of the window.  It is the gradient of
    ``adaptive_avg_pool2d``."""
    checks.check_float_array(r, "r", ndim=4)
    checks.check_nonempty_spatial(r, "r")
    geom = geometry.avg_pool_transpose_geometry(
        r.shape, input_size,
        lambda x_shape: geometry.adaptive_avg_pool2d_geometry(x_shape, tuple(r.shape[2:])))
    backend = _backend_for(r)
    with backend.kernel_lock:
        return backend.avg_pool2d_transpose(_contiguous(r), geom)


def adaptive_max_pool2d(x, output_size):
    """Adaptive max-pooling with switches, exactly ``torch.nn.functional.adaptive_max_pool2d
    (x, output_size, return_indices=True)``: the windows of ``adaptive_avg_pool2d``,

        window o = [⌊o·L / O⌋, ⌈(o + 1)·L / O⌉),   y = the maximum over the window,

    switches its int64 flat index h·W + w (the first maximum on ties, NaN wins).
    Returns ``(y, switches)``; y = P(s) x, and ``adaptive_max_unpool2d`` is P(s)ᵀ."""
    x, geom = _adaptive_windows(x, output_size)
    backend = _backend_for(x)
    with backend.kernel_lock:
        return backend.adaptive_max_pool2d(x, geom)


def adaptive_max_unpool2d(y, switches, input_size):
    """The true transpose x = P(s)ᵀ y of ``adaptive_max_pool2d`` from an input of
    ``input_size`` ((H, W) or (N, C, H, W)): every y value ADDED at its switch — the
    gradient of the pooling.  Every switch must lie in its own adaptive window, else a
    ValueError names the first that does not (before anything is written)."""
    checks.check_same_device(y=y, switches=switches)
    checks.check_float_array(y, "y", ndim=4)
    checks.check_nonempty_spatial(y, "y")
    checks.check_switch_array(switches, y)
    geom = geometry.avg_pool_transpose_geometry(
        y.shape, input_size,
        lambda x_shape: geometry.adaptive_avg_pool2d_geometry(x_shape, tuple(y.shape[2:])))
    switches = _contiguous(switches.astype(np.int64, copy=False))
    outside = geometry.switches_outside_windows(switches, geom)
    if outside is not None:
        rows, cols = geom.rows[outside[2]], geom.cols[outside[3]]
        raise ValueError(f"switches[{', '.join(map(str, outside))}] = "
                         f"{int(switches[outside])} lies outside its adaptive window "
                         f"(rows {rows.start}…{rows.stop - 1}, columns {cols.start}…"
                         f"{cols.stop - 1} of a {geom.in_hw[0]}x{geom.in_hw[1]} input); "
                         f"switches must come from adaptive_max_pool2d to this size")
    backend = _backend_for(y, switches)
    with backend.kernel_lock:
        return backend.max_unpool2d(_contiguous(y), switches, geom)


def _resample(a, input_size, mode, size, scale_factor, align_corners,
              recompute_scale_factor):
    """Upsample ``a`` (``input_size`` None), or pass ``a`` through that upsampling's
    transpose back to ``input_size`` (``size`` None: ``a``'s size)."""
    name = "x" if input_size is None else "r"
    checks.check_float_array(a, name, ndim=4)
    checks.check_nonempty_spatial(a, name)
    arguments = (mode, align_corners, recompute_scale_factor)
    if input_size is None:
        geom = geometry.interpolation_geometry(a.shape, size, scale_factor, *arguments)
    else:
        if size is None and scale_factor is None:
            size = tuple(a.shape[2:])
        geom = geometry.interpolation_transpose_geometry(a.shape, input_size, size,
                                                         scale_factor, *arguments)
    backend = _backend_for(a)
    with backend.kernel_lock:
        if input_size is None:
            return backend.upsample2d(_contiguous(a), geom)
        return backend.upsample2d_transpose(_contiguous(a), geom)


def upsample_nearest2d(x, size=None, scale_factor=None, recompute_scale_factor=None,
                       exact=False):
    """Nearest-neighbour upsampling, exactly ``F.interpolate(x, size, scale_factor,
    mode="nearest")`` (``exact=True``: ``mode="nearest-exact"``): along an axis of input
    length L and output length O,

        y[o] = x[src(o)],   src(o) = min(⌊o · scale⌋, L − 1)      (exact: ⌊(o + ½) · scale⌋)

    with scale = 1 / scale_factor when a scale factor is given, else L / O (also with
    ``recompute_scale_factor=True``) — PyTorch's rule, computed in float32 as PyTorch
    does.  Give ``size`` (an int or (H_out, W_out)) or ``scale_factor`` (a number or a
    pair; O = ⌊L · scale_factor⌋).  O may also be smaller than L (then pixels are
    skipped).  y = A x with a 0/1 matrix A (``matrices.upsample_nearest2d_matrix``);
    its transpose is ``upsample_nearest2d_transpose``."""
    return _resample(x, None, "nearest-exact" if exact else "nearest", size, scale_factor,
                     None, recompute_scale_factor)


def upsample_nearest2d_transpose(r, input_size, size=None, scale_factor=None,
                                 recompute_scale_factor=None, exact=False):
    """The transpose x = Aᵀ r of ``upsample_nearest2d`` from an input of ``input_size``
    ((H, W) or (N, C, H, W)) with these arguments (``size`` defaults to r's size): every
    r value is ADDED to the pixel its output copied,

        x[ih, iw] = Σ r[oh, ow] over src(oh) = ih, src(ow) = iw

    — the gradient of ``upsample_nearest2d`` (what autograd computes)."""
    return _resample(r, input_size, "nearest-exact" if exact else "nearest", size,
                     scale_factor, None, recompute_scale_factor)


def upsample_bilinear2d(x, size=None, scale_factor=None, align_corners=False,
                        recompute_scale_factor=None):
    """Bilinear upsampling, exactly ``F.interpolate(x, size, scale_factor,
    mode="bilinear", align_corners=...)``: per axis, output o reads the source position

        s(o) = max(scale · (o + ½) − ½, 0)        (align_corners=False; scale as nearest's)
        s(o) = o · (L − 1) / (O − 1)              (align_corners=True; scale_factor unused)

    and mixes the two pixels i₀ = min(⌊s⌋, L − 1), i₁ = min(i₀ + 1, L − 1) with weights
    1 − λ and λ = s − i₀; the two axes multiply: y[oh, ow] = Σ_{a,b} λ_a(oh) λ_b(ow)
    x[i_a(oh), i_b(ow)].  Linear, y = A x (``matrices.upsample_bilinear2d_matrix``); its
    transpose is ``upsample_bilinear2d_transpose``."""
    return _resample(x, None, "bilinear", size, scale_factor, align_corners,
                     recompute_scale_factor)


def upsample_bilinear2d_transpose(r, input_size, size=None, scale_factor=None,
                                  align_corners=False, recompute_scale_factor=None):
    """The transpose x = Aᵀ r of ``upsample_bilinear2d`` from an input of ``input_size``
    ((H, W) or (N, C, H, W)) with these arguments (``size`` defaults to r's size): every
    r value is scattered back onto the four pixels its output mixed, with the same
    weights — the gradient of ``upsample_bilinear2d``."""
    return _resample(r, input_size, "bilinear", size, scale_factor, align_corners,
                     recompute_scale_factor)
