"""The reference backend: every operator in a few whole-array lines, on NumPy or CuPy.

This is the shortest correct version of each operator, and the one to read first.
Where the CPU loops (``backends.loops``) visit pixels, it loops over the few *kernel
taps* (i, j) and moves whole strided slices at once — im2col is ``kh·kw`` slice copies,
col2im ``kh·kw`` slice additions — and leaves the arithmetic to ``matmul`` (BLAS, or
cuBLAS on a GPU).  Every function takes its array module ``xp`` (``numpy`` or ``cupy``)
from its inputs, so one code runs CuPy arrays on a GPU and NumPy arrays anywhere
(``ops.CPU_BACKEND = "reference"``): that is how it is tested without a GPU.

Average pooling (``avg_pool2d`` and ``adaptive_avg_pool2d`` alike) is separable, so it
is two matrix products per plane with the 0/1 window matrices of the two axes, and its
transpose the same products transposed.  Upsampling (nearest and bilinear) is separable
too: A_h x A_wᵀ with the dense interpolation matrices of the two axes.

The one scatter with possible collisions, unpooling with overlapping windows, uses
``cupyx.scatter_add`` (atomicAdd on the GPU) and ``numpy.add.at`` on the CPU: both add
every contribution, which is what makes unpooling the transpose of max-pooling.

CuPy is imported only when a CuPy array arrives (``minideconv.ops`` dispatches by type).
The functions follow the backend contract (``backends.contract``).
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..checks import array_module

#: Nothing here needs serialising (see ``backends.contract``).
kernel_lock = contextlib.nullcontext()


def _tap_slices(i, j, stride, dilation, out_hw):
    """Rows/columns of the padded input that kernel tap (i, j) reads, for all outputs:
    ``i·dh, i·dh + sh, …`` (``out_hw[0]`` of them) and likewise for columns."""
    (sh, sw), (dh, dw), (h_out, w_out) = stride, dilation, out_hw
    return (slice(i * dh, i * dh + sh * (h_out - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (w_out - 1) + 1, sw))


def _zero_pad(x, xp, top, bottom, left, right):
    if top == bottom == left == right == 0:
        return x
    return xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def im2col(x, geom):
    """cols[n, c, i, j, oh, ow] = x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw] — one slice copy per tap."""
    xp = array_module(x)
    n_img, channels = x.shape[:2]
    kh, kw = geom.kernel
    x_pad = _zero_pad(x, xp, *geom.pads)
    cols = xp.empty((n_img, channels, kh, kw) + geom.out_hw, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap_slices(i, j, geom.stride, geom.dilation, geom.out_hw)
            cols[:, :, i, j] = x_pad[:, :, rows, columns]
    return cols


def col2im(cols, geom):
    """The transpose of ``im2col``: add each tap's slice back where it was read from, then
    drop the padding."""
    xp = array_module(cols)
    n_img, channels, kh, kw = cols.shape[:4]
    height, width = geom.in_hw
    top, bottom, left, right = geom.pads
    x_pad = xp.zeros((n_img, channels, height + top + bottom, width + left + right),
                     dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap_slices(i, j, geom.stride, geom.dilation, geom.out_hw)
            x_pad[:, :, rows, columns] += cols[:, :, i, j]
    return x_pad[:, :, top:top + height, left:left + width]


def conv2d(x, weight, geom):
    """y[n, g] = weight_g.reshape(Cog, K) @ cols[n, g].reshape(K, L), batched over (n, g)."""
    xp = array_module(x)
    n_img, g = x.shape[0], geom.groups
    cols = im2col(x, geom).reshape(n_img, g, -1, geom.out_hw[0] * geom.out_hw[1])
    y = xp.matmul(weight.reshape(g, geom.out_channels // g, -1), cols)
    return y.reshape(n_img, geom.out_channels, *geom.out_hw)


def conv_transpose2d(y, weight, geom):
    """cols = weight_gᵀ @ y[n, g], then col2im: x = Wᵀ y."""
    xp = array_module(y)
    n_img, g = y.shape[0], geom.groups
    kh, kw = geom.kernel
    w = weight.reshape(g, geom.out_channels // g, -1)
    cols = xp.matmul(w.transpose(0, 2, 1), y.reshape(n_img, g, geom.out_channels // g, -1))
    cols = cols.reshape(n_img, geom.in_channels, kh, kw, *geom.out_hw)
    return xp.ascontiguousarray(col2im(cols, geom))


def conv2d_weight_grad(x, grad_out, geom):
    """dw_g = Σ_n g[n, g] @ cols[n, g]ᵀ."""
    n_img, g = x.shape[0], geom.groups
    n_out = geom.out_hw[0] * geom.out_hw[1]
    cols = im2col(x, geom).reshape(n_img, g, -1, n_out)
    grads = grad_out.reshape(n_img, g, geom.out_channels // g, n_out)
    return (grads @ cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(geom.weight_shape)


def relu(x):
    """max(x, 0), NaN kept."""
    xp = array_module(x)
    return xp.where((x > 0) | xp.isnan(x), x, xp.zeros((), x.dtype))


def relu_backward(grad, x, rule):
    """r = (max(g, 0) if rule.rectifies_signal else g) · ([x > 0] if rule.masks_by_input
    else 1) (``minideconv.rules``); a NaN signal stays NaN."""
    xp = array_module(grad)
    zero = xp.zeros((), grad.dtype)
    if rule.rectifies_signal:
        grad = xp.where((grad > 0) | xp.isnan(grad), grad, zero)
    if rule.masks_by_input:
        grad = xp.where(x > 0, grad, zero)
    return xp.ascontiguousarray(grad)


def _per_channel(slopes, x):
    """The per-channel slopes shaped to broadcast over x (N, C, …)."""
    return slopes.reshape((1, -1) + (1,) * (x.ndim - 2))


def rectifier(x, slopes, cap):
    """f(x) = α_c·x (x ≤ 0), x (0 < x < m), m (x ≥ m); NaN kept (neither test holds)."""
    xp = array_module(x)
    return xp.where(x >= cap, xp.asarray(cap, x.dtype),
                    xp.where(x > 0, x, x * _per_channel(slopes, x)))


def rectifier_backward(grad, x, slopes, cap, rule):
    """r = (rect_α(g) if rule.rectifies_signal else g) · (f′(x) if rule.masks_by_input
    else 1), f′(x) = α (x ≤ 0), 1 (0 < x < m), 0 (x ≥ m): g times one factor, as the
    CPU loop rounds it; a NaN signal stays NaN."""
    xp = array_module(grad)
    slope = _per_channel(slopes, x)
    one = xp.ones((), grad.dtype)
    factor = xp.where(grad > 0, one, slope) if rule.rectifies_signal else one   # rect_α
    if rule.masks_by_input:                                                       # f′(x)
        factor = factor * xp.where(x > 0, (x < cap).astype(grad.dtype), slope)
    return xp.ascontiguousarray(grad * factor)


def max_pool2d(x, geom):
    """Visit the kh·kw taps in scan order, keeping the running maximum and its index:
    a tap replaces the best when it is inside the image and (it is the first such tap,
    or larger, or NaN) — exactly the CPU loop's (and PyTorch's) rule."""
    xp = array_module(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geom.kernel, geom.stride, geom.padding, geom.dilation
    h_out, w_out = geom.out_hw
    height, width = x.shape[2:]
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph + sh), (pw, pw + sw)))
    oh = xp.arange(h_out).reshape(-1, 1)
    ow = xp.arange(w_out).reshape(1, -1)
    best = xp.zeros(x.shape[:2] + (h_out, w_out), dtype=x.dtype)
    switches = xp.zeros(best.shape, dtype=xp.int64)
    found = xp.zeros(best.shape, dtype=bool)
    for i in range(kh):
        for j in range(kw):
            ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
            inside = (ih >= 0) & (ih < height) & (iw >= 0) & (iw < width)
            rows, columns = _tap_slices(i, j, (sh, sw), (dh, dw), (h_out, w_out))
            v = x_pad[:, :, rows, columns]
            better = inside & (~found | (v > best) | xp.isnan(v))
            best = xp.where(better, v, best)
            switches = xp.where(better, ih * width + iw, switches)
            found |= inside
    return best, switches


def _on_window_taps(position, o, k, stride, padding, dilation, size):
    """position (a row or a column) is one of window o's taps inside the image:
    position = o·stride − padding + t·dilation for a t in [0, k), and 0 ≤ position < size."""
    offset = position - (o * stride - padding)
    return ((offset >= 0) & (offset <= dilation * (k - 1)) & (offset % dilation == 0)
            & (position >= 0) & (position < size))


def first_switch_outside_window(switches, geom):
    """The first flat index into ``switches`` whose switch s does not lie in its own
    window, row s // W and column s % W both on the window's taps, or −1 (a switch outside
    [0, H·W) has its row outside every window)."""
    xp = array_module(switches)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geom.kernel, geom.stride, geom.padding, geom.dilation
    height, width = geom.in_hw
    oh = xp.arange(switches.shape[2]).reshape(-1, 1)
    ow = xp.arange(switches.shape[3]).reshape(1, -1)
    inside = (_on_window_taps(switches // width, oh, kh, sh, ph, dh, height)
              & _on_window_taps(switches % width, ow, kw, sw, pw, dw, width))
    outside = ~inside.ravel()
    return int(outside.argmax()) if bool(outside.any()) else -1


def adaptive_max_pool2d(x, geom):
    """Visit the window offsets (i, j) up to the longest window, every output at once:
    offset (i, j) of output (oh, ow) is pixel (start_h + i, start_w + j) when it lies in
    the window; the running maximum's rule is ``max_pool2d``'s."""
    xp = array_module(x)
    width = x.shape[3]
    starts_h, stops_h = (xp.asarray([w[k] for w in geom.rows]).reshape(-1, 1) for k in (0, 1))
    starts_w, stops_w = (xp.asarray([w[k] for w in geom.cols]).reshape(1, -1) for k in (0, 1))
    best = xp.zeros(x.shape[:2] + tuple(geom.out_hw), dtype=x.dtype)
    switches = xp.zeros(best.shape, dtype=xp.int64)
    found = xp.zeros(best.shape, dtype=bool)
    for i in range(int((stops_h - starts_h).max())):
        for j in range(int((stops_w - starts_w).max())):
            ih, iw = starts_h + i, starts_w + j
            inside = (ih < stops_h) & (iw < stops_w)
            v = x[:, :, xp.minimum(ih, x.shape[2] - 1), xp.minimum(iw, width - 1)]
            better = inside & (~found | (v > best) | xp.isnan(v))
            best = xp.where(better, v, best)
            switches = xp.where(better, ih * width + iw, switches)
            found |= inside
    return best, switches


def max_unpool2d(y, switches, geom):
    """x = P(s)ᵀ y: add every y value at its switch (collisions add up)."""
    xp = array_module(y)
    height, width = geom.in_hw
    n_img, channels = y.shape[:2]
    x = xp.zeros((n_img, channels, height * width), dtype=y.dtype)
    planes = xp.arange(n_img * channels).reshape(n_img, channels, 1)
    flat = (planes * (height * width) + switches.reshape(n_img, channels, -1)).ravel()
    if xp is np:
        np.add.at(x.reshape(-1), flat, y.ravel())
    else:  # pragma: no cover - needs a GPU
        import cupyx
        cupyx.scatter_add(x.reshape(-1), flat, y.ravel())
    return x.reshape(n_img, channels, height, width)


def _window_matrix(xp, windows, n_in, dtype):
    """The 0/1 matrix (n_out, n_in) of one axis: entry (o, q) is 1 where window o holds
    input position q, start ≤ q < stop."""
    starts = xp.asarray([w.start for w in windows]).reshape(-1, 1)
    stops = xp.asarray([w.stop for w in windows]).reshape(-1, 1)
    q = xp.arange(n_in).reshape(1, -1)
    return ((q >= starts) & (q < stops)).astype(dtype)


def _window_matrices(xp, geom, dtype):
    """A_h (H_out, H), A_w (W_out, W) and the divisors (H_out, W_out) of the pooling."""
    return (_window_matrix(xp, geom.rows, geom.in_hw[0], dtype),
            _window_matrix(xp, geom.cols, geom.in_hw[1], dtype),
            xp.asarray(geom.divisors()).astype(dtype))


def avg_pool2d(x, geom):
    """Average pooling is separable: the window sums of every plane are A_h x A_wᵀ, with
    the 0/1 window matrices of the two axes; then each is divided by its divisor."""
    xp = array_module(x)
    a_h, a_w, divisors = _window_matrices(xp, geom, x.dtype)
    return xp.ascontiguousarray(a_h @ x @ a_w.T / divisors)


def avg_pool2d_transpose(r, geom):
    """The transpose of ``avg_pool2d``: x = A_hᵀ (r / divisor) A_w for every plane."""
    xp = array_module(r)
    a_h, a_w, divisors = _window_matrices(xp, geom, r.dtype)
    return xp.ascontiguousarray(a_h.T @ (r / divisors) @ a_w)


def _axis_matrices(xp, geom, dtype):
    """A_h (H_out, H) and A_w (W_out, W): each output row's weights on the input rows."""
    return (xp.asarray(geom.rows.matrix(geom.in_hw[0])).astype(dtype),
            xp.asarray(geom.cols.matrix(geom.in_hw[1])).astype(dtype))


def upsample2d(x, geom):
    """y = A_h x A_wᵀ for every plane."""
    xp = array_module(x)
    a_h, a_w = _axis_matrices(xp, geom, x.dtype)
    return xp.ascontiguousarray(a_h @ x @ a_w.T)


def upsample2d_transpose(r, geom):
    """The transpose of ``upsample2d``: x = A_hᵀ r A_w for every plane."""
    xp = array_module(r)
    a_h, a_w = _axis_matrices(xp, geom, r.dtype)
    return xp.ascontiguousarray(a_h.T @ r @ a_w)
