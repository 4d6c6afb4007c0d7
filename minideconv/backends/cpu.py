"""The CPU backend: the loops of ``backends.loops``, scheduled.

This module decides *how* the work runs; ``loops`` says *what* it computes.  For each
operator of the backend contract (``backends.contract``) it allocates the outputs, cuts
the work into pieces, and hands them to the loops and to BLAS:

* a convolution runs chunk of images by chunk: im2col of the chunk (a loop), then one
  GEMM per image and group (BLAS).  Large images, and fewer images than threads, go in
  bands of output rows instead.  Where ``image_threads`` can, chunks or bands run on
  several threads at once, each with one core;
* a transposed convolution runs as GEMM + col2im, or, with stride 1 where it unfolds
  fewer columns, as the equal convolution (``geometry.transpose_as_convolution``);
* element-wise kernels run in parallel blocks, sized so every thread gets as many;
* pooling and upsampling run plane by plane in parallel (``average_loops``,
  ``resize_loops``).

benchmarks/README.md has the measurements behind each choice.
"""

from __future__ import annotations

import threading

import numba
import numpy as np

from .. import geometry
from . import average_loops, image_threads, loops, resize_loops, winograd
from .window_check import first_switch_outside_window_planes

#: The workqueue threading layer aborts the process if two Python threads launch
#: parallel loops at once, so ``minideconv.ops`` holds this around every kernel call.
kernel_lock = threading.Lock()


# --------------------------------------------------------------------------- outputs

def new_array(shape, dtype):
    """An uninitialised output, allocated by NumPy rather than inside a kernel: NumPy
    asks Linux for transparent huge pages on big arrays (``madvise``), which makes the
    first write to each fresh page far cheaper; Numba's own ``np.empty`` does not."""
    return np.empty(shape, dtype=dtype)


# --------------------------------------------------------------------------- chunks of images

#: Most bytes of columns in one chunk of images: small enough to stay in cache between
#: im2col and the GEMMs, so big batches need no N-times-larger buffer.
CHUNK_BYTES = 8 * 2**20

#: Most bytes of columns in one band of output rows (a band's columns are still in the
#: core's cache when the GEMM reads them, right after im2col wrote them).
BAND_BYTES = 2 * 2**20


def _chunks(n_img, bytes_per_image, threads=1):
    """Slices of the batch, each with at most CHUNK_BYTES of columns (at least one image)
    and at most a ``threads``-th of the batch, and the largest chunk's length."""
    step = max(1, min(-(-n_img // threads), CHUNK_BYTES // max(1, bytes_per_image)))
    return [slice(first, min(first + step, n_img)) for first in range(0, n_img, step)], step


def _loop_geometry(geom):
    """The ints ``loops.im2col`` / ``col2im`` take after the arrays."""
    return (*geom.kernel, *geom.stride, *geom.top_left_pads, *geom.dilation, *geom.out_hw)


def _column_shape(channels, geom):
    """(C·kh·kw, H_out·W_out): one image's column matrix."""
    return channels * geom.kernel[0] * geom.kernel[1], geom.out_hw[0] * geom.out_hw[1]


def _column_bytes(channels, geom, itemsize):
    rows, columns = _column_shape(channels, geom)
    return rows * columns * itemsize


def _flops_per_image(geom):
    """2 · C_out · (C_in / groups) · kh · kw · H_out · W_out: the GEMM work of one image,
    for the convolution and its transpose alike."""
    return (2 * geom.out_channels * geom.in_channels // geom.groups * geom.kernel[0]
            * geom.kernel[1] * geom.out_hw[0] * geom.out_hw[1])


def padded_shape(channels, in_hw, geom):
    """(C, H_pad, W_pad): the image with its zero padding, and tall/wide enough for every
    window the convolution reads (the last window may end in the bottom/right padding,
    or — when the floor in the size formula drops pixels — before the image ends)."""
    return (channels,) + tuple(
        max(pad + size, (n_out - 1) * stride + (k - 1) * dilation + 1)
        for size, k, stride, pad, dilation, n_out in zip(
            in_hw, geom.kernel, geom.stride, geom.top_left_pads, geom.dilation, geom.out_hw))


def _unfold_scratch(x, geom, step):
    """Buffers to unfold ``step`` images of x: the zero-padded images and their columns."""
    padded = np.zeros((step,) + padded_shape(x.shape[1], x.shape[2:], geom), dtype=x.dtype)
    cols = np.empty((step,) + _column_shape(x.shape[1], geom), dtype=x.dtype)
    return padded, cols


def _unfold(x, images, scratch, geom):
    """cols[m] = im2col of image x[images][m], in the scratch (valid until its next use)."""
    padded, cols = scratch
    m = images.stop - images.start
    loops.im2col(x[images], padded[:m], cols[:m], *_loop_geometry(geom))
    return cols[:m]


# --------------------------------------------------------------------------- bands of rows

def bands_and_threads(x, geom):
    """How to cut a convolution of the images x: into how many bands of output rows per
    image (1: whole images, in chunks), and on how many threads (``image_threads``).

    Enough bands that one band's columns fit in BAND_BYTES; and, where threads are worth
    it, enough that fewer images than threads still give every thread a band."""
    n_img, h_out = x.shape[0], geom.out_hw[0]
    by_size = -(-_column_bytes(x.shape[1], geom, x.itemsize) // BAND_BYTES)
    by_threads = -(-numba.get_num_threads() // max(1, n_img))
    bands = max(1, min(h_out, max(by_size, by_threads)))
    threads = image_threads.threads_for(n_img * bands, _flops_per_image(geom) / bands)
    if threads == 1:
        bands = max(1, min(h_out, by_size))
    return bands, threads


def _band_units(n_img, geom, bands):
    """(image, output rows) for every band of every image, image by image."""
    h_out = geom.out_hw[0]
    return [(n, slice(b * h_out // bands, (b + 1) * h_out // bands))
            for n in range(n_img) for b in range(bands)]


def _unfold_band(x, n, rows, geom):
    """im2col of just the rows of image n that the output rows ``rows`` read: shape
    (1, C·kh·kw, len(rows)·W_out), in a scratch of its own."""
    x_rows, band = geometry.output_rows_band(geom, rows)
    x_band = x[n:n + 1, :, x_rows]
    return _unfold(x_band, slice(0, 1), _unfold_scratch(x_band, band, 1), band)


# --------------------------------------------------------------------------- convolutions

def conv2d(x, weight, geom):
    """y = W x for every image: im2col, then one GEMM per image and group (BLAS):

        y[n, g·Cog + o, :] = weight[g·Cog + o].ravel() @ cols[n, g·K : (g+1)·K, :]

    3×3 stride-1 convolutions with enough channels run as Winograd's F(2×2, 3×3) instead
    (``winograd``: 2.25× fewer multiplications).
    """
    if winograd.applies(geom, x.shape[0]):
        return winograd.conv2d(x, weight, geom)
    g = geom.groups
    n_img, n_out = x.shape[0], geom.out_hw[0] * geom.out_hw[1]
    w = weight.reshape(g, geom.out_channels // g, -1)
    y = np.empty((n_img, g, geom.out_channels // g, n_out), dtype=x.dtype)
    bands, threads = bands_and_threads(x, geom)
    if bands > 1:
        _conv2d_in_row_bands(x, w, geom, y, bands, threads)
        return y.reshape(n_img, geom.out_channels, *geom.out_hw)
    chunks, step = _chunks(n_img, _column_bytes(x.shape[1], geom, x.itemsize), threads)

    def convolve(images, scratch):
        cols = _unfold(x, images, scratch, geom)
        np.matmul(w, cols.reshape(len(cols), g, w.shape[2], n_out), out=y[images])

    image_threads.run_chunks(chunks, convolve, lambda: _unfold_scratch(x, geom, step), threads)
    return y.reshape(n_img, geom.out_channels, *geom.out_hw)


def _conv2d_in_row_bands(x, w, geom, y, bands, threads):
    """conv2d with every image cut into ``bands`` bands of output rows, each band unfolded
    and multiplied on its own, on ``threads`` threads."""
    w_out = geom.out_hw[1]

    def convolve_band(unit, _):
        n, rows = unit
        cols = _unfold_band(x, n, rows, geom)
        np.matmul(w, cols.reshape(1, w.shape[0], w.shape[2], -1),
                  out=y[n:n + 1, :, :, rows.start * w_out:rows.stop * w_out])

    image_threads.run_chunks(_band_units(x.shape[0], geom, bands), convolve_band,
                             lambda: None, threads)


def flipped_kernel(weight, geom):
    """w'[g·Cig + c, o, i, j] = w[g·Cog + o, c, kh − 1 − i, kw − 1 − j]: the kernel of the
    convolution that equals the stride-1 transpose (``geometry.transpose_as_convolution``)."""
    g = geom.groups
    c_out_g, c_in_g = geom.out_channels // g, geom.in_channels // g
    flipped = weight.reshape(g, c_out_g, c_in_g, *geom.kernel)[..., ::-1, ::-1]
    return np.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4)).reshape(
        geom.in_channels, c_out_g, *geom.kernel)


def convolution_route_is_smaller(geom, as_conv, itemsize=4, n_img=1):
    """True if the convolution ``as_conv`` unfolds fewer columns, C_out·kh·kw × H·W, than
    the GEMM + col2im route writes, C_in·kh·kw × H_out·W_out — or as many, when one
    image's columns exceed ``CHUNK_BYTES``: col2im then holds a whole image's columns
    per thread, while the convolution goes in bands of rows (64 → 64 channels, 3×3, at
    224×224: 115 MB of columns per thread against 2 MB, and 1.5–2.5× as fast).  Where
    the convolution of ``n_img`` images runs as Winograd's F(2×2, 3×3)
    (``winograd.applies``: 2.25× fewer multiplications), up to twice as many (the
    transposes of VGG-16's 64 → 128, 128 → 256, 256 → 512 layers 1.3–1.9× as fast; at
    four times as many, 16 → 64 on 32×32 images, half as fast)."""
    convolution = as_conv.in_channels * as_conv.out_hw[0] * as_conv.out_hw[1]
    col2im = as_conv.out_channels * geom.out_hw[0] * geom.out_hw[1]
    large = _column_bytes(geom.in_channels, geom, itemsize) > CHUNK_BYTES
    return (convolution < col2im or (convolution == col2im and large)
            or (convolution <= 2 * col2im and winograd.applies(as_conv, n_img)))


def conv_transpose2d(y, weight, geom):
    """x = Wᵀ y: per image one GEMM per group with the transposed filter matrix, then
    col2im scatters the columns back (adding overlaps):

        cols[n, g·K : (g+1)·K, :] = weight_g.reshape(Cog, K)ᵀ @ y[n, g·Cog : (g+1)·Cog, :]

    With stride 1 it can run as an equal convolution instead; both routes do the same
    multiplications, and the one with the smaller column matrix runs
    (``convolution_route_is_smaller``).
    """
    as_conv = geometry.transpose_as_convolution(geom)
    if as_conv is not None and convolution_route_is_smaller(geom, as_conv, y.itemsize,
                                                            y.shape[0]):
        if winograd.applies(as_conv, y.shape[0]):  # flips the kernel in its transform
            return winograd.conv2d(y, weight, as_conv, flipped=True)
        return conv2d(y, flipped_kernel(weight, geom), as_conv)
    n_img, g = y.shape[0], geom.groups
    n_out = geom.out_hw[0] * geom.out_hw[1]
    w_t = np.ascontiguousarray(weight.reshape(g, geom.out_channels // g, -1).transpose(0, 2, 1))
    k = g * w_t.shape[1]
    threads = image_threads.threads_for(n_img, _flops_per_image(geom))
    chunks, step = _chunks(n_img, _column_bytes(geom.in_channels, geom, y.itemsize), threads)
    x = np.empty((n_img, geom.in_channels, *geom.in_hw), dtype=y.dtype)

    def make_scratch():
        return (np.empty((step, g, w_t.shape[1], n_out), dtype=y.dtype),
                np.empty((step,) + padded_shape(geom.in_channels, geom.in_hw, geom),
                         dtype=y.dtype))

    def transpose(images, scratch):
        cols, padded = scratch
        m = images.stop - images.start
        np.matmul(w_t, y[images].reshape(m, g, -1, n_out), out=cols[:m])
        loops.col2im(cols[:m].reshape(m, k, n_out), padded[:m], x[images],
                     *_loop_geometry(geom))

    image_threads.run_chunks(chunks, transpose, make_scratch, threads)
    return x


def conv2d_weight_grad(x, grad_out, geom):
    """∂⟨conv2d(x, w), g⟩/∂w = Σ_n g_n @ cols_nᵀ, per group.

    On T worker threads (``image_threads``) thread share t sums the images of chunks t,
    t + T, t + 2T, … in order, and the T sums are added in order at the end: the same
    result on every run with the same T.  Where ``conv2d`` would cut images into bands
    of output rows, the shares are bands instead: Σ over bands of g_band @ cols_bandᵀ is
    the same sum, split by rows."""
    g = geom.groups
    n_img, n_out = x.shape[0], geom.out_hw[0] * geom.out_hw[1]
    grads = grad_out.reshape(n_img, g, geom.out_channels // g, n_out)
    taps = geom.kernel[0] * geom.kernel[1]
    bands, threads = bands_and_threads(x, geom)
    sums = np.zeros((threads, g, geom.out_channels // g, geom.weight_shape[1] * taps), x.dtype)

    def add_product(share, grad_n, cols_n):
        cols_t = cols_n.reshape(g, -1, grad_n.shape[-1]).transpose(0, 2, 1)
        sums[share] += np.matmul(grad_n, cols_t)

    if bands > 1:
        units, w_out = _band_units(n_img, geom, bands), geom.out_hw[1]

        def accumulate_bands(share, _):
            for n, rows in units[share::threads]:
                add_product(share, grads[n, :, :, rows.start * w_out:rows.stop * w_out],
                            _unfold_band(x, n, rows, geom)[0])

        image_threads.run_chunks(range(threads), accumulate_bands, lambda: None, threads)
    else:
        chunks, step = _chunks(n_img, _column_bytes(x.shape[1], geom, x.itemsize), threads)

        def accumulate_images(share, scratch):
            for images in chunks[share::threads]:
                for grad_n, cols_n in zip(grads[images], _unfold(x, images, scratch, geom)):
                    add_product(share, grad_n, cols_n)

        image_threads.run_chunks(range(threads), accumulate_images,
                                 lambda: _unfold_scratch(x, geom, step), threads)
    dw = sums[0]
    for partial in sums[1:]:
        dw += partial
    return dw.reshape(geom.weight_shape)


# --------------------------------------------------------------------------- ReLU

#: Elements per parallel task, roughly: whole contiguous blocks keep each thread
#: streaming through memory in order, and the inner loop vectorises.
BLOCK = 131072


def block_size(size):
    """Length of the blocks that cut ``size`` elements into a multiple of the size of
    Numba's thread pool of blocks of about BLOCK elements (the last block may be
    shorter), so that every thread gets as many.  (The pool size, a plain attribute,
    rather than ``numba.get_num_threads()``: the blocks only need to split evenly among
    the threads that may run them.)"""
    threads = numba.config.NUMBA_NUM_THREADS
    n_blocks = threads * max(1, round(size / (threads * BLOCK)))
    return max(1, -(-size // n_blocks))


def relu(x):
    out = new_array(x.shape, x.dtype)
    loops.relu_into(x, out, block_size(x.size))
    return out


def relu_backward(grad, x, rule):
    out = new_array(grad.shape, grad.dtype)
    loops.relu_backward_into(grad, x, out, rule.rectifies_signal, rule.masks_by_input,
                             block_size(grad.size))
    return out


def _rows(a):
    """a as (N·C, ·) rows, one per (image, channel): a view of the C-contiguous array."""
    rows = a.shape[0] * a.shape[1]
    return a.reshape(rows, a.size // rows if rows else 0)


def rectifier(x, slopes, cap):
    out = new_array(x.shape, x.dtype)
    loops.rectifier_into(_rows(x), slopes, x.dtype.type(cap), _rows(out))
    return out


def rectifier_backward(grad, x, slopes, cap, rule):
    out = new_array(grad.shape, grad.dtype)
    loops.rectifier_backward_into(_rows(grad), _rows(x), _rows(out), slopes,
                                  grad.dtype.type(cap), rule.rectifies_signal,
                                  rule.masks_by_input)
    return out


# --------------------------------------------------------------------------- max-pool

def _pool_ints(geom):
    """The ints the pooling loops take: kernel, stride, padding, dilation (h, w each)."""
    return (*geom.kernel, *geom.stride, *geom.padding, *geom.dilation)


def max_pool2d(x, geom):
    out_shape = (x.shape[0], x.shape[1]) + tuple(geom.out_hw)
    y, switches = new_array(out_shape, x.dtype), new_array(out_shape, np.int64)
    loops.max_pool_planes(x, y, switches, *_pool_ints(geom))
    return y, switches


def first_switch_outside_window(switches, geom):
    return int(first_switch_outside_window_planes(switches, *_pool_ints(geom), *geom.in_hw))


def adaptive_max_pool2d(x, geom):
    out_shape = (x.shape[0], x.shape[1]) + tuple(geom.out_hw)
    y, switches = new_array(out_shape, x.dtype), new_array(out_shape, np.int64)
    rows, cols, _ = _window_tables(geom)
    loops.adaptive_max_pool_planes(x, y, switches, rows[:, :2].copy(), cols[:, :2].copy())
    return y, switches


def max_unpool2d(y, switches, geom):
    x = new_array((y.shape[0], y.shape[1]) + tuple(geom.in_hw), y.dtype)
    loops.max_unpool_planes(y, switches, x)
    return x


# --------------------------------------------------------------------------- average pooling

def _window_tables(geom):
    """The ints ``average_loops`` takes after the arrays: the windows as int64 tables
    (start, stop, count) of rows and columns, and the divisor override (0: none)."""
    rows = np.array(geom.rows, dtype=np.int64).reshape(-1, 3)
    cols = np.array(geom.cols, dtype=np.int64).reshape(-1, 3)
    return rows, cols, geom.divisor_override or 0


def avg_pool2d(x, geom):
    y = new_array((x.shape[0], x.shape[1]) + tuple(geom.out_hw), x.dtype)
    average_loops.avg_pool_planes(x, y, *_window_tables(geom))
    return y


def avg_pool2d_transpose(r, geom):
    x = new_array((r.shape[0], r.shape[1]) + tuple(geom.in_hw), r.dtype)
    average_loops.avg_pool_transpose_planes(r, x, *_window_tables(geom))
    return x


# --------------------------------------------------------------------------- upsampling

def _as_planes(images):
    """(N, C, H, W) as the (N·C, H, W) stack of planes ``resize_loops`` runs on."""
    return images.reshape((-1,) + images.shape[2:])


def _tap_tables(geom, dtype):
    """The taps of both axes and their weights, in the array's dtype."""
    return (geom.rows.sources, geom.rows.weights.astype(dtype), geom.cols.sources,
            geom.cols.weights.astype(dtype))


def upsample2d(x, geom):
    y = new_array(x.shape[:2] + tuple(geom.out_hw), x.dtype)
    if geom.mode == "nearest":      # one tap of weight 1: a plain copy
        resize_loops.nearest_planes(_as_planes(x), _as_planes(y),
                                        geom.rows.sources[:, 0].copy(),
                                        geom.cols.sources[:, 0].copy())
    else:
        resize_loops.bilinear_planes(_as_planes(x), _as_planes(y),
                                         *_tap_tables(geom, x.dtype))
    return y


def upsample2d_transpose(r, geom):
    x = np.zeros(r.shape[:2] + tuple(geom.in_hw), r.dtype)     # the loop adds into it
    resize_loops.interpolate_transpose_planes(_as_planes(r), _as_planes(x),
                                                  *_tap_tables(geom, r.dtype))
    return x
