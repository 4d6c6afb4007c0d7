"""The loops: the CPU operators' pixel work, one ``@njit`` loop nest each — im2col and
col2im, the ReLU and the other rectifiers (clipped, leaky, per channel) with their three
ways back, max-pooling and unpooling.  Two files beside it
hold the rest: ``average_loops`` (average pooling and its transpose) and ``window_check``
(that every switch lies in its window, before unpooling writes anything).

Read this file top to bottom.  Each kernel's docstring is its formula; the loops are the
formula written out.  A convolution's arithmetic is a matrix product done by BLAS
(``backends.cpu``); its geometry — stride, padding, dilation — lives in ``im2col`` and
its transpose ``col2im``, which only *rearrange* pixels.

``prange`` loops run over whole (n, c) planes or contiguous blocks, and every iteration
writes only its own plane, row or block: no write races, no atomics.  With
``NUMBA_DISABLE_JIT=1`` every kernel is plain Python (``prange`` is ``range``), to step
through in a debugger.

The kernels trust their arguments: ``minideconv.ops`` validates everything first, and
``backends.cpu`` allocates the outputs and hands out the work.
"""

from __future__ import annotations

import numpy as np
from numba import literally, njit, prange

# --------------------------------------------------------------------------- im2col / col2im


@njit(cache=True, nogil=True)
def copy_into(dst, src):
    """dst[k] = src[k] for two 1-D views of one length.

    A view sliced without a step is typed contiguous by Numba, and this loop then
    compiles to vector loads and stores; a view with a step is copied element by element.
    So the callers slice without a step wherever the stride is 1."""
    for k in range(dst.size):
        dst[k] = src[k]


@njit(cache=True, nogil=True)
def add_into(dst, src):
    """dst[k] += src[k] for two 1-D views of one length (see ``copy_into``)."""
    for k in range(dst.size):
        dst[k] += src[k]


@njit(cache=True, parallel=True, nogil=True)
def im2col(x, padded, cols, kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out):
    """Unfold every receptive field of the images x (N, C, H, W) into the columns of
    ``cols`` (N, C·kh·kw, h_out·w_out):

        cols[n, (c·kh + i)·kw + j, oh·w_out + ow] = x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw]

    where x_pad is x with ``pt`` zero rows on top and ``pl`` zero columns on the left.
    Then the convolution of image n is one matrix product:
    y_n = W.reshape(C_out, C·kh·kw) @ cols[n].

    ``padded`` (N, C, H_pad, W_pad) is scratch for x_pad, big enough for every window;
    only its interior is written here, so its border must be zero on entry (it stays
    zero, and the buffer can be reused).  With x copied into it once, every row of
    ``cols`` is a plain strided copy, with no bounds test per pixel.
    """
    n_img, channels, height, width = x.shape
    taps = kh * kw
    span = (w_out - 1) * sw + 1  # the stretch of a padded row that one row of windows reads
    for plane in prange(n_img * channels):
        n, c = plane // channels, plane % channels
        for h in range(height):
            copy_into(padded[n, c, pt + h, pl:pl + width], x[n, c, h])
    for task in prange(n_img * channels * taps):  # each task writes its own row of cols
        n, row = task // (channels * taps), task % (channels * taps)
        c, i, j = row // taps, row // kw % kh, row % kw
        for oh in range(h_out):
            windows_row = padded[n, c, oh * sh + i * dh, j * dw:j * dw + span]
            cols_row = cols[n, row, oh * w_out:(oh + 1) * w_out]
            if sw == 1:  # a view without a step: the copy vectorises (copy_into)
                copy_into(cols_row, windows_row)
            else:
                copy_into(cols_row, windows_row[::sw])


@njit(cache=True, parallel=True, nogil=True)
def col2im(cols, padded, x, kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out):
    """Fold the columns (N, C·kh·kw, h_out·w_out) back onto the images x (N, C, H, W),
    adding where receptive fields overlap — the transpose of ``im2col``:

        x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw] += cols[n, (c·kh + i)·kw + j, oh·w_out + ow]
        x = x_pad without its padding

    Dropping the padding is the transpose of "read a zero there".  ``padded`` (N, C,
    H_pad, W_pad) is scratch for x_pad; it is zeroed here, plane by plane.
    """
    n_img, channels, height, width = x.shape
    span = (w_out - 1) * sw + 1
    for task in prange(n_img * channels):  # a thread owns whole planes: no races
        n, c = task // channels, task % channels
        plane = padded[n, c]
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oh in range(h_out):
                    windows_row = plane[oh * sh + i * dh, j * dw:j * dw + span]
                    cols_row = cols[n, row, oh * w_out:(oh + 1) * w_out]
                    if sw == 1:  # see im2col
                        add_into(windows_row, cols_row)
                    else:
                        add_into(windows_row[::sw], cols_row)
        for h in range(height):
            copy_into(x[n, c, h], plane[pt + h, pl:pl + width])


# --------------------------------------------------------------------------- ReLU


@njit(cache=True, parallel=True)
def relu_into(x, out, size):
    """out = max(x, 0), element-wise, in parallel blocks of ``size`` elements; NaN stays
    NaN (as torch.relu)."""
    src, dst = x.ravel(), out.ravel()
    zero = np.zeros(1, src.dtype)[0]  # a zero of x's dtype: no float64 detour in the loop
    for block in prange((src.size + size - 1) // size):
        s = src[block * size:(block + 1) * size]
        d = dst[block * size:(block + 1) * size]
        for k in range(s.size):
            v = s[k]
            d[k] = zero if v <= zero else v  # "not (v > 0)" would also zero NaN


@njit(cache=True)
def relu_backward_block(g, x, r, rectifies_signal, masks_by_input):
    """One block of the way back through a ReLU (``minideconv.rules``):

        r = (max(g, 0) if rectifies_signal else g) · ([x > 0] if masks_by_input else 1)

    ``literally`` compiles one loop per rule with both tests decided at compile time, so
    each loop is a branch-free select that vectorises."""
    literally(rectifies_signal)
    literally(masks_by_input)
    zero = np.zeros(1, g.dtype)[0]
    for k in range(g.size):
        v = g[k]
        if rectifies_signal and v <= zero:  # a NaN signal is not <= 0: it stays NaN
            v = zero
        if masks_by_input and not x[k] > zero:
            v = zero
        r[k] = v


@njit(cache=True, parallel=True)
def relu_backward_into(grad, x, out, rectifies_signal, masks_by_input, size):
    """out = the rule's way back (``relu_backward_block``), in parallel blocks of
    ``size`` elements."""
    g_all, x_all, r_all = grad.ravel(), x.ravel(), out.ravel()
    for block in prange((g_all.size + size - 1) // size):
        g = g_all[block * size:(block + 1) * size]
        x_b = x_all[block * size:(block + 1) * size]
        r = r_all[block * size:(block + 1) * size]
        if rectifies_signal and masks_by_input:  # each branch passes compile-time constants
            relu_backward_block(g, x_b, r, True, True)
        elif rectifies_signal:
            relu_backward_block(g, x_b, r, True, False)
        elif masks_by_input:
            relu_backward_block(g, x_b, r, False, True)
        else:
            relu_backward_block(g, x_b, r, False, False)


# --------------------------------------------------------------------------- rectifiers


@njit(cache=True, parallel=True)
def rectifier_into(x, slopes, cap, out):
    """out = f(x) = α_c·x (x ≤ 0), x (0 < x < m), m (x ≥ m) on (N·C, ·) rows, the row's
    channel c = row mod C picking α_c = slopes[c]; NaN stays NaN (it is neither ≤ 0 nor
    ≥ m).  ReLU6 is α = 0, m = 6; LeakyReLU m = ∞; PReLU one α per channel."""
    channels = slopes.size
    zero = np.zeros(1, x.dtype)[0]
    for row in prange(x.shape[0]):
        slope = slopes[row % channels]
        s, d = x[row], out[row]
        for k in range(s.size):
            v = s[k]
            d[k] = v * slope if v <= zero else (cap if v >= cap else v)


@njit(cache=True)
def rectifier_backward_block(g, x, r, slope, cap, rectifies_signal, masks_by_input):
    """One row of the way back through a rectifier (``minideconv.rules``):

        r = (rect_α(g) if rectifies_signal else g) · (f′(x) if masks_by_input else 1)

    rect_α(g) = g (g > 0), α·g otherwise; f′(x) = α (x ≤ 0), 1 (0 < x < m), 0 (x ≥ m).
    As ``relu_backward_block``, one loop per rule is compiled (``literally``); here each
    element's factor — the diagonal entry of ``matrices.network``'s rule — multiplies g."""
    literally(rectifies_signal)
    literally(masks_by_input)
    zero, one = np.zeros(1, g.dtype)[0], np.ones(1, g.dtype)[0]
    for k in range(g.size):
        factor = one                       # r = g · factor: the rule's diagonal entry
        if rectifies_signal and g[k] <= zero:
            factor = slope                 # rect_α: α on the signal below 0
        if masks_by_input:
            u = x[k]
            if not u > zero:               # f′ = α at and below 0 (leaky_relu's tie)
                factor *= slope
            elif u >= cap:                 # f′ = 0 at and above the cap (hardtanh's tie)
                factor = zero
        r[k] = g[k] * factor               # a NaN signal stays NaN


@njit(cache=True, parallel=True)
def rectifier_backward_into(grad, x, out, slopes, cap, rectifies_signal, masks_by_input):
    """out = the rule's way back (``rectifier_backward_block``) on (N·C, ·) rows, in
    parallel over the rows."""
    channels = slopes.size
    for row in prange(grad.shape[0]):
        g, x_row, r = grad[row], x[row], out[row]
        slope = slopes[row % channels]
        if rectifies_signal and masks_by_input:  # each branch passes compile-time constants
            rectifier_backward_block(g, x_row, r, slope, cap, True, True)
        elif rectifies_signal:
            rectifier_backward_block(g, x_row, r, slope, cap, True, False)
        elif masks_by_input:
            rectifier_backward_block(g, x_row, r, slope, cap, False, True)
        else:
            rectifier_backward_block(g, x_row, r, slope, cap, False, False)


# --------------------------------------------------------------------------- max-pool


@njit(cache=True)
def contains_nan(x):
    """True if any element of x is NaN (one branch-free pass)."""
    found = False
    for v in x.ravel():
        found |= v != v
    return found


@njit(cache=True)
def inside_range(n_out, stride, offset, size):
    """The indices o in [lo, hi) ⊆ [0, n_out) whose position o·stride + offset lies in
    [0, size) (positions increase with o, so they form one run)."""
    lo = 0
    while lo < n_out and lo * stride + offset < 0:
        lo += 1
    hi = lo
    while hi < n_out and hi * stride + offset < size:
        hi += 1
    return lo, hi


@njit(cache=True)
def window_taps(n_out, k, stride, padding, dilation, size):
    """taps[o] = (lo, hi): the kernel taps t in [lo, hi) of window o that fall inside the
    image, 0 ≤ o·stride − padding + t·dilation < size — found once per window row and
    column, so the pooling loops need no bounds test per tap."""
    taps = np.empty((n_out, 2), dtype=np.int64)
    for o in range(n_out):
        taps[o, 0], taps[o, 1] = inside_range(k, dilation, o * stride - padding, size)
    return taps


@njit(cache=True)
def max_pool_plane(x, y, switches, rows, cols, sh, sw, ph, pw, dh, dw, nan_aware):
    """One (H, W) plane:  y[oh, ow] = max x[oh·sh − ph + i·dh, ow·sw − pw + j·dw] over the
    taps i in rows[oh], j in cols[ow] that lie inside the image (padding never wins), and
    switches[oh, ow] = the argmax as the flat index ih·W + iw.

    As in PyTorch: the first maximum in scan order wins a tie; a NaN always wins (the last
    NaN seen gives the switch).  The NaN test slows this inner loop, so ``literally``
    compiles one version per value of ``nan_aware``, and planes without NaN skip it.
    """
    literally(nan_aware)
    width = x.shape[1]
    for oh in range(y.shape[0]):
        i_lo, i_hi = rows[oh, 0], rows[oh, 1]
        for ow in range(y.shape[1]):
            j_lo, j_hi = cols[ow, 0], cols[ow, 1]
            ih = oh * sh - ph + i_lo * dh
            iw = ow * sw - pw + j_lo * dw
            best = x[ih, iw]  # the first tap inside the image
            best_index = ih * width + iw
            for i in range(i_lo, i_hi):
                ih = oh * sh - ph + i * dh
                for j in range(j_lo, j_hi):
                    iw = ow * sw - pw + j * dw
                    v = x[ih, iw]
                    if v > best or (nan_aware and v != v):
                        best = v
                        best_index = ih * width + iw
            y[oh, ow] = best
            switches[oh, ow] = best_index


@njit(cache=True, parallel=True)
def max_pool_planes(x, y, switches, kh, kw, sh, sw, ph, pw, dh, dw):
    """Max-pool every (n, c) plane of x into y and switches (``max_pool_plane``), planes
    in parallel."""
    n_img, channels, height, width = x.shape
    h_out, w_out = y.shape[2], y.shape[3]
    rows = window_taps(h_out, kh, sh, ph, dh, height)  # rows[oh] = (i_lo, i_hi)
    cols = window_taps(w_out, kw, sw, pw, dw, width)
    for plane in prange(n_img * channels):
        n = plane // channels
        c = plane % channels
        if contains_nan(x[n, c]):  # only this plane's NaNs need the slow test
            max_pool_plane(x[n, c], y[n, c], switches[n, c], rows, cols, sh, sw, ph, pw,
                           dh, dw, True)
        else:
            max_pool_plane(x[n, c], y[n, c], switches[n, c], rows, cols, sh, sw, ph, pw,
                           dh, dw, False)


@njit(cache=True, parallel=True)
def adaptive_max_pool_planes(x, y, switches, rows, cols):
    """Adaptive max-pooling of every (n, c) plane: output (oh, ow) takes the maximum over
    rows[oh, 0] ≤ ih < rows[oh, 1], cols[ow, 0] ≤ iw < cols[ow, 1] — ``max_pool_plane``
    with stride 0, no padding and dilation 1, its tap ranges being the windows themselves
    (ih = i).  Ties and NaN as there."""
    for plane in prange(x.shape[0] * x.shape[1]):
        n, c = plane // x.shape[1], plane % x.shape[1]
        if contains_nan(x[n, c]):
            max_pool_plane(x[n, c], y[n, c], switches[n, c], rows, cols, 0, 0, 0, 0, 1, 1,
                           True)
        else:
            max_pool_plane(x[n, c], y[n, c], switches[n, c], rows, cols, 0, 0, 0, 0, 1, 1,
                           False)


@njit(cache=True, parallel=True)
def max_unpool_planes(y, switches, x):
    """x = P(s)ᵀ y:  x[n, c, s // W, s % W] += y[n, c, o] for every output o, s = switches[n, c, o].

    Adding (not assigning) is what makes this the transpose of max-pooling — and the
    gradient — when overlapping windows share a switch.
    """
    n_planes = y.shape[0] * y.shape[1]
    y_planes = y.reshape(n_planes, -1)
    s_planes = switches.reshape(n_planes, -1)
    x_planes = x.reshape(n_planes, -1)
    zero = np.zeros(1, x.dtype)[0]
    for plane in prange(n_planes):  # a thread owns whole planes: no races
        x_p, y_p, s_p = x_planes[plane], y_planes[plane], s_planes[plane]
        for k in range(x_p.size):
            x_p[k] = zero  # zeroed by the thread that fills it, while it is in its cache
        for o in range(y_p.size):
            x_p[s_p[o]] += y_p[o]
