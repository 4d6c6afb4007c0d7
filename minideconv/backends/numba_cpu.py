"""CPU kernels: plain loops compiled by Numba.

Each ``@njit`` function below is a loop nest a student can read top to bottom; its
docstring states what it computes.  The heavy arithmetic of the convolutions is a matrix
product done by BLAS (``np.matmul``): the kernels here only *rearrange* pixels
(im2col / col2im), which is exactly where the convolution's geometry — stride, padding,
dilation — lives.

Parallel loops (``prange``) always run over whole (n, c) planes, and every iteration
writes only into its own plane, so there are no write races and no atomics.

With ``NUMBA_DISABLE_JIT=1`` every kernel is ordinary Python (``prange`` becomes
``range``) and can be stepped through in a debugger.

These functions trust their arguments: ``minideconv.ops`` validates everything first.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


# --------------------------------------------------------------------------- im2col / col2im

@njit(cache=True, parallel=True)
def im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out):
    """Unfold every receptive field into a column.

        cols[n, (c·kh + i)·kw + j, oh·w_out + ow] = x[n, c, oh·sh − pt + i·dh, ow·sw − pl + j·dw]

    with zero where the index falls outside the image (the zero padding).  Then a
    convolution is one matrix product: y[n] = W.reshape(C_out, C·kh·kw) @ cols[n].
    """
    n_img, channels, height, width = x.shape
    cols = np.empty((n_img, channels * kh * kw, h_out * w_out), dtype=x.dtype)
    for plane in prange(n_img * channels):
        n = plane // channels
        c = plane % channels
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oh in range(h_out):
                    ih = oh * sh - pt + i * dh
                    row_inside = 0 <= ih < height
                    for ow in range(w_out):
                        iw = ow * sw - pl + j * dw
                        if row_inside and 0 <= iw < width:
                            cols[n, row, oh * w_out + ow] = x[n, c, ih, iw]
                        else:
                            cols[n, row, oh * w_out + ow] = 0.0
    return cols


@njit(cache=True, parallel=True)
def col2im(cols, channels, height, width, kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out):
    """Fold columns back onto the image, adding where receptive fields overlap — the
    transpose of ``im2col``:

        x[n, c, ih, iw] = Σ cols[n, (c·kh + i)·kw + j, oh·w_out + ow]
                          over all (i, j, oh, ow) with oh·sh − pt + i·dh = ih
                                                 and  ow·sw − pl + j·dw = iw

    Terms that land in the padding are dropped (the transpose of "read a zero there").
    """
    n_img = cols.shape[0]
    x = np.zeros((n_img, channels, height, width), dtype=cols.dtype)
    for plane in prange(n_img * channels):  # a thread owns whole planes: no races
        n = plane // channels
        c = plane % channels
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oh in range(h_out):
                    ih = oh * sh - pt + i * dh
                    if ih < 0 or ih >= height:
                        continue
                    for ow in range(w_out):
                        iw = ow * sw - pl + j * dw
                        if 0 <= iw < width:
                            x[n, c, ih, iw] += cols[n, row, oh * w_out + ow]
    return x


# --------------------------------------------------------------------------- convolutions

def conv2d(x, weight, geom):
    """y = W x for every image: im2col, then one GEMM per (image, group).

        y[n, g·Cog + o, :] = weight[g·Cog + o].ravel() @ cols[n, g·K : (g+1)·K, :]
    """
    n_img = x.shape[0]
    kh, kw = geom.kernel
    h_out, w_out = geom.out_hw
    g = geom.groups
    cols = im2col(x, kh, kw, *geom.stride, *geom.conv_pads, *geom.dilation, h_out, w_out)
    w = weight.reshape(g, geom.out_channels // g, -1)
    y = np.matmul(w, cols.reshape(n_img, g, w.shape[2], h_out * w_out))
    return y.reshape(n_img, geom.out_channels, h_out, w_out)


def conv_transpose2d(y, weight, geom):
    """x = Wᵀ y: one GEMM per (image, group) with the transposed filter matrix, then
    col2im scatters the columns back (adding overlaps).

        cols[n, g·K : (g+1)·K, :] = weight_g.reshape(Cog, K)ᵀ @ y[n, g·Cog : (g+1)·Cog, :]
    """
    n_img = y.shape[0]
    kh, kw = geom.kernel
    h_out, w_out = geom.out_hw
    g = geom.groups
    height, width = geom.padded_hw if geom.padding_mode == "circular" else geom.in_hw
    w = weight.reshape(g, geom.out_channels // g, -1)
    cols = np.matmul(w.transpose(0, 2, 1),
                     y.reshape(n_img, g, geom.out_channels // g, h_out * w_out))
    cols = np.ascontiguousarray(cols).reshape(n_img, -1, h_out * w_out)
    return col2im(cols, geom.in_channels, height, width, kh, kw, *geom.stride,
                  *geom.conv_pads, *geom.dilation, h_out, w_out)


def conv2d_weight_grad(x, grad_out, weight_shape, geom):
    """∂⟨conv2d(x, w), g⟩/∂w = Σ_n g[n] @ cols[n]ᵀ, per group."""
    n_img = x.shape[0]
    kh, kw = geom.kernel
    h_out, w_out = geom.out_hw
    g = geom.groups
    cols = im2col(x, kh, kw, *geom.stride, *geom.conv_pads, *geom.dilation, h_out, w_out)
    cols = cols.reshape(n_img, g, -1, h_out * w_out)
    grads = grad_out.reshape(n_img, g, geom.out_channels // g, h_out * w_out)
    dw = np.zeros((g, geom.out_channels // g, cols.shape[2]), dtype=x.dtype)
    for n in range(n_img):  # accumulate image by image: no (N, C_out, K) temporary
        dw += np.matmul(grads[n], cols[n].transpose(0, 2, 1))
    return dw.reshape(weight_shape)


# --------------------------------------------------------------------------- ReLU

@njit(cache=True, parallel=True)
def relu(x):
    """y = max(x, 0), element-wise; NaN stays NaN (as torch.relu)."""
    flat = x.ravel()
    out = np.empty_like(flat)
    for k in prange(flat.size):
        v = flat[k]
        out[k] = v if (v > 0 or v != v) else 0.0
    return out.reshape(x.shape)


@njit(cache=True, parallel=True)
def relu_backward(grad, x, rule_code):
    """The three ways back through a ReLU (Springenberg et al. 2014, Fig. 1):

        rule 0, backprop  (Simonyan 2013):  r = g · [x > 0]
        rule 1, deconvnet (Zeiler 2014):    r = max(g, 0)
        rule 2, guided backpropagation:     r = max(g, 0) · [x > 0]
    """
    g_flat = grad.ravel()
    x_flat = x.ravel()
    out = np.empty_like(g_flat)
    for k in prange(g_flat.size):
        g = g_flat[k]
        if rule_code != 0 and not (g > 0 or g != g):
            g = 0.0  # rectify the signal itself (deconvnet, guided)
        if rule_code != 1 and not x_flat[k] > 0:
            g = 0.0  # the forward pass's switch: was the unit active?
        out[k] = g
    return out.reshape(grad.shape)


# --------------------------------------------------------------------------- max-pool

@njit(cache=True, parallel=True)
def max_pool2d(x, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out):
    """y[n, c, oh, ow] = max x[n, c, oh·sh − ph + i·dh, ow·sw − pw + j·dw] over i < kh, j < kw
    (padding never wins), and the switch s = argmax as the flat index ih·W + iw.

    As in PyTorch: the first maximum in scan order wins a tie; a NaN always wins (the
    last NaN seen gives the switch).
    """
    n_img, channels, height, width = x.shape
    y = np.empty((n_img, channels, h_out, w_out), dtype=x.dtype)
    switches = np.empty((n_img, channels, h_out, w_out), dtype=np.int64)
    for plane in prange(n_img * channels):
        n = plane // channels
        c = plane % channels
        for oh in range(h_out):
            for ow in range(w_out):
                best = x[n, c, 0, 0]
                best_index = -1
                for i in range(kh):
                    ih = oh * sh - ph + i * dh
                    if ih < 0 or ih >= height:
                        continue
                    for j in range(kw):
                        iw = ow * sw - pw + j * dw
                        if iw < 0 or iw >= width:
                            continue
                        v = x[n, c, ih, iw]
                        if best_index < 0 or v > best or v != v:
                            best = v
                            best_index = ih * width + iw
                y[n, c, oh, ow] = best
                switches[n, c, oh, ow] = best_index
    return y, switches


@njit(cache=True, parallel=True)
def max_unpool2d(y, switches, height, width):
    """x = P(s)ᵀ y:  x[n, c, s // W, s % W] += y[n, c, o] for every output o, s = switches[n, c, o].

    Adding (not assigning) is what makes this the transpose of max-pooling — and the
    gradient — when overlapping windows share a switch.
    """
    n_img, channels = y.shape[0], y.shape[1]
    y_flat = y.reshape(n_img, channels, -1)
    s_flat = switches.reshape(n_img, channels, -1)
    x = np.zeros((n_img, channels, height * width), dtype=y.dtype)
    for plane in prange(n_img * channels):  # a thread owns whole planes: no races
        n = plane // channels
        c = plane % channels
        for o in range(y_flat.shape[2]):
            x[n, c, s_flat[n, c, o]] += y_flat[n, c, o]
    return x.reshape(n_img, channels, height, width)
