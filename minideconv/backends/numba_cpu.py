"""CPU kernels: plain loops compiled by Numba.

Each ``@njit`` function below is a loop nest a student can read top to bottom; its
docstring states what it computes.  The heavy arithmetic of the convolutions is a matrix
product done by BLAS (``np.matmul``): the kernels here only *rearrange* pixels
(im2col / col2im), which is exactly where the convolution's geometry — stride, padding,
dilation — lives.

Parallel loops (``prange``) run over whole (n, c) planes, or over contiguous blocks of
an element-wise kernel, and every iteration writes only into its own plane or block, so
there are no write races and no atomics.  The kernels write into outputs that the Python
functions next to them allocate with NumPy (see ``new_array``).

With ``NUMBA_DISABLE_JIT=1`` every kernel is ordinary Python (``prange`` becomes
``range``) and can be stepped through in a debugger.

These functions trust their arguments: ``minideconv.ops`` validates everything first.
"""

from __future__ import annotations

import dataclasses
import threading

import numba
import numpy as np
from numba import literally, njit, prange

from . import image_threads, threading_layer

# Before any kernel below runs: TBB made loadable and preferred (see threading_layer).
threading_layer.prepare()

# The workqueue layer aborts the process if two Python threads launch parallel loops at
# once, so ``minideconv.ops`` runs the operators below one at a time per process.
kernel_lock = threading.Lock()


# --------------------------------------------------------------------------- im2col / col2im

@njit(cache=True, nogil=True)
def copy_into(dst, src):
    """dst[k] = src[k] for two 1-D views of one length.

    The callers slice a row *without* a step when the stride is 1: Numba then types the
    view as contiguous and this loop compiles to vector loads and stores.  A slice with a
    step, even a step that is 1 at run time, is a general strided view, copied element
    by element.  Measured on conv A of the benchmark (one thread, 8 images, paired in one
    process): conv2d 1.10-1.16x and conv_transpose2d 1.09-1.15x as fast as with the
    stepped slice everywhere.  (``dst[:] = src`` instead of the loop made strided conv C
    0.81x as fast.)"""
    for k in range(dst.size):
        dst[k] = src[k]


@njit(cache=True, nogil=True)
def add_into(dst, src):
    """dst[k] += src[k] for two 1-D views of one length (see ``copy_into``; ``dst += src``
    on the views was 4x slower)."""
    for k in range(dst.size):
        dst[k] += src[k]


def padded_shape(channels, in_hw, geom):
    """(C, H_pad, W_pad): the image with its zero padding, and tall/wide enough for every
    window the convolution reads (the last window may end in the bottom/right padding,
    or — when the floor in the size formula drops pixels — before the image ends)."""
    return (channels,) + tuple(
        max(pad + size, (n_out - 1) * stride + (k - 1) * dilation + 1)
        for size, k, stride, pad, dilation, n_out in zip(
            in_hw, geom.kernel, geom.stride, geom.conv_pads, geom.dilation, geom.out_hw))


@njit(cache=True, parallel=True, nogil=True)
def im2col(x, padded, cols, kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out):
    """Unfold every receptive field of the images x (N, C, H, W) into the columns of
    ``cols`` (N, C·kh·kw, h_out·w_out):

        cols[n, (c·kh + i)·kw + j, oh·w_out + ow] = x_pad[n, c, oh·sh + i·dh, ow·sw + j·dw]

    where x_pad is x with ``pt`` zero rows on top and ``pl`` zero columns on the left.
    Then the convolution of image n is one matrix product:
    y_n = W.reshape(C_out, C·kh·kw) @ cols[n].

    ``padded`` (N, C, H_pad, W_pad, see ``padded_shape``) is the scratch that holds
    x_pad; only its interior is written here, so its border must be zero on entry (it
    stays zero, and the buffer can be reused for the next images).  Copying x into it
    once makes every row of ``cols`` a plain strided copy, with no bounds test per pixel.
    """
    n_img, channels, height, width = x.shape
    taps = kh * kw
    w_span = (w_out - 1) * sw + 1  # the stretch of one padded row a row of windows reads
    for plane in prange(n_img * channels):
        n, c = plane // channels, plane % channels
        for h in range(height):
            copy_into(padded[n, c, pt + h, pl:pl + width], x[n, c, h])
    for task in prange(n_img * channels * taps):  # each task writes its own row of cols
        n, row = task // (channels * taps), task % (channels * taps)
        c, i, j = row // taps, row // kw % kh, row % kw
        if sw == 1:  # see copy_into
            for oh in range(h_out):
                copy_into(cols[n, row, oh * w_out:(oh + 1) * w_out],
                          padded[n, c, oh * sh + i * dh, j * dw:j * dw + w_out])
        else:
            for oh in range(h_out):
                copy_into(cols[n, row, oh * w_out:(oh + 1) * w_out],
                          padded[n, c, oh * sh + i * dh, j * dw:j * dw + w_span:sw])


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
    w_span = (w_out - 1) * sw + 1
    for task in prange(n_img * channels):  # a thread owns whole planes: no races
        n, c = task // channels, task % channels
        plane = padded[n, c]
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                if sw == 1:  # see copy_into
                    for oh in range(h_out):
                        add_into(plane[oh * sh + i * dh, j * dw:j * dw + w_out],
                                 cols[n, row, oh * w_out:(oh + 1) * w_out])
                else:
                    for oh in range(h_out):
                        add_into(plane[oh * sh + i * dh, j * dw:j * dw + w_span:sw],
                                 cols[n, row, oh * w_out:(oh + 1) * w_out])
        for h in range(height):  # row by row: a 2-D slice assignment here compiles slowly
            copy_into(x[n, c, h], plane[pt + h, pl:pl + width])


# --------------------------------------------------------------------------- convolutions
# A few images at a time: im2col fills the columns of a chunk of images, then BLAS does
# one GEMM per image (and group).  Chunks are capped at CHUNK_BYTES of columns, so that
# those stay in cache for the GEMMs and big batches need no N-times-larger buffer; small
# images go many to a chunk, which saves a parallel launch per image (the embedded
# model's 32x32 images: 16 im2col calls per layer became 1).  Where ``image_threads``
# can, the chunks (then at most a T-th of the batch each) go to T threads at once, each
# thread unfolding and multiplying its own chunk on one core.

CHUNK_BYTES = 8 * 2**20


def _chunks(n_img, bytes_per_image, threads=1):
    """Slices of the batch, each with at most CHUNK_BYTES of columns (at least one image)
    and at most a ``threads``-th of the batch, and the largest chunk's length."""
    step = max(1, min(-(-n_img // threads), CHUNK_BYTES // max(1, bytes_per_image)))
    return [slice(first, min(first + step, n_img)) for first in range(0, n_img, step)], step


def _im2col_args(geom):
    return (*geom.kernel, *geom.stride, *geom.conv_pads, *geom.dilation, *geom.out_hw)


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


def _unfold_scratch(x, geom, step):
    """Buffers to unfold ``step`` images of x: the zero-padded images and their columns."""
    padded = np.zeros((step,) + padded_shape(x.shape[1], x.shape[2:], geom), dtype=x.dtype)
    cols = np.empty((step,) + _column_shape(x.shape[1], geom), dtype=x.dtype)
    return padded, cols


def _unfold(x, images, scratch, geom):
    """cols[m] = im2col of image x[images][m], in the scratch (valid until its next use)."""
    padded, cols = scratch
    m = images.stop - images.start
    im2col(x[images], padded[:m], cols[:m], *_im2col_args(geom))
    return cols[:m]


def _transpose_output_hw(geom):
    """The size a transposed convolution's kernel produces: the image, or with circular
    padding the wrap-padded image (``ops`` folds the wrapped border back)."""
    return geom.padded_hw if geom.padding_mode == "circular" else geom.in_hw


def conv2d(x, weight, geom):
    """y = W x for every image: im2col, then one GEMM per image and group (BLAS):

        y[n, g·Cog + o, :] = weight[g·Cog + o].ravel() @ cols[n, g·K : (g+1)·K, :]

    Chunks of images run on several threads where ``image_threads`` can (see there).
    Large images, and fewer images than threads, go in bands of output rows instead
    (``_bands_and_threads``).
    """
    g = geom.groups
    n_img, n_out = x.shape[0], geom.out_hw[0] * geom.out_hw[1]
    w = weight.reshape(g, geom.out_channels // g, -1)
    y = np.empty((n_img, g, geom.out_channels // g, n_out), dtype=x.dtype)
    bands, threads = _bands_and_threads(x, geom)
    if bands > 1:
        _conv2d_in_row_bands(x, w, geom, y, bands, threads)
        return y.reshape(n_img, geom.out_channels, *geom.out_hw)
    chunks, step = _chunks(n_img, _column_bytes(x.shape[1], geom, x.itemsize), threads)

    def convolve(images, scratch):
        cols = _unfold(x, images, scratch, geom)
        np.matmul(w, cols.reshape(len(cols), g, w.shape[2], n_out), out=y[images])

    image_threads.run_chunks(chunks, convolve, lambda: _unfold_scratch(x, geom, step), threads)
    return y.reshape(n_img, geom.out_channels, *geom.out_hw)


def _row_band(x, geom, rows):
    """The part of the convolution that makes the output rows ``rows``: the rows of x it
    reads, and its own geometry — a convolution of just those rows, zero-padded on top
    only if the band reaches above the image (below, ``padded_shape`` pads)."""
    sh, kh, dh = geom.stride[0], geom.kernel[0], geom.dilation[0]
    first = rows.start * sh - geom.conv_pads[0]               # in x's rows; < 0: padding
    last = (rows.stop - 1) * sh + (kh - 1) * dh - geom.conv_pads[0]
    top, bottom = max(0, first), max(0, min(x.shape[2], last + 1))
    band = dataclasses.replace(
        geom, padding_mode="zeros", pads=(top - first, 0, geom.conv_pads[1], 0),
        in_hw=(max(0, bottom - top), x.shape[3]),
        out_hw=(rows.stop - rows.start, geom.out_hw[1]))
    return slice(top, max(top, bottom)), band


def _conv2d_in_row_bands(x, w, geom, y, bands, threads):
    """conv2d with every image cut into ``bands`` bands of output rows, each band unfolded
    and multiplied on its own, on ``threads`` threads (ZFNet's first layer on one 224x224
    image: four quarter images, two on each of two threads)."""
    w_out = geom.out_hw[1]

    def convolve_band(unit, _):
        n, rows = unit
        cols = _unfold_band(x, n, rows, geom)
        np.matmul(w, cols.reshape(1, w.shape[0], w.shape[2], -1),
                  out=y[n:n + 1, :, :, rows.start * w_out:rows.stop * w_out])

    image_threads.run_chunks(_band_units(x.shape[0], geom, bands), convolve_band,
                             lambda: None, threads)


#: Most bytes of columns in one band of output rows.  im2col writes a band's columns and
#: the GEMM reads them right after; a band this small is still in the core's cache then.
#: Paired on the README's 2-core Zen 4 machine (2 threads): conv A (8 images, 7.2 MB of
#: columns each) in 1, 2, 4 or 8 bands per image took 18.3, 15.3, 14.6 and 15.0 ms; conv C
#: (1.4 MB per image) was fastest whole (12.0 ms; 13.2 ms in two bands).
BAND_BYTES = 2 * 2**20


def _bands_and_threads(x, geom):
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
    x_rows, band = _row_band(x, geom, rows)
    x_band = x[n:n + 1, :, x_rows]
    return _unfold(x_band, slice(0, 1), _unfold_scratch(x_band, band, 1), band)


def transposed_as_convolution(weight, geom):
    """With stride 1, Wᵀ is itself a convolution (Dumoulin & Visin 2016, §4.1):

        conv_transpose2d(y, w, padding=p) = conv2d(y, w', padding=(k − 1)·d − p)
        w'[g·Cig + c, o, i, j] = w[g·Cog + o, c, kh − 1 − i, kw − 1 − j]

    — the kernel flipped in space, its in/out channels swapped within each group.
    Returns (w', the geometry of that convolution), or None where the relation needs a
    negative padding (a padding p > (k − 1)·d) or the stride is not 1.
    """
    if geom.stride != (1, 1):
        return None
    height, width = _transpose_output_hw(geom)
    top, left = geom.conv_pads
    bottom, right = (0, 0) if geom.padding_mode == "circular" else (geom.pads[1], geom.pads[3])
    reach = tuple((k - 1) * d for k, d in zip(geom.kernel, geom.dilation))
    if max(top, bottom) > reach[0] or max(left, right) > reach[1]:
        return None
    g = geom.groups
    c_out_g, c_in_g = geom.out_channels // g, geom.in_channels // g
    flipped = weight.reshape(g, c_out_g, c_in_g, *geom.kernel)[..., ::-1, ::-1]
    flipped = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4)).reshape(
        geom.in_channels, c_out_g, *geom.kernel)
    pads = (reach[0] - top, height + top - geom.out_hw[0],
            reach[1] - left, width + left - geom.out_hw[1])
    as_conv = type(geom)(in_channels=geom.out_channels, out_channels=geom.in_channels,
                         groups=g, kernel=geom.kernel, stride=(1, 1), dilation=geom.dilation,
                         pads=pads, padding_mode="zeros", in_hw=geom.out_hw,
                         out_hw=(height, width))
    return flipped, as_conv


def convolution_route_is_smaller(geom, as_conv):
    """True if the convolution ``as_conv`` (from ``transposed_as_convolution``) unfolds
    fewer columns, C_out·kh·kw × H·W, than the GEMM + col2im route writes,
    C_in·kh·kw × H_out·W_out."""
    return (as_conv.in_channels * as_conv.out_hw[0] * as_conv.out_hw[1]
            < as_conv.out_channels * geom.out_hw[0] * geom.out_hw[1])


def conv_transpose2d(y, weight, geom):
    """x = Wᵀ y: per image one GEMM per group with the transposed filter matrix, then
    col2im scatters the columns back (adding overlaps):

        cols[n, g·K : (g+1)·K, :] = weight_g.reshape(Cog, K)ᵀ @ y[n, g·Cog : (g+1)·Cog, :]

    With stride 1 it can run as the equal convolution of ``transposed_as_convolution``
    instead.  Both routes do the same multiplications; they differ in the column matrix
    they write and read back: (C_in·kh·kw) × (H_out·W_out) here, (C_out·kh·kw) × (H·W)
    for the convolution.  The smaller one wins, measured on 2 cores: via the convolution,
    the transpose of a 128 → 16-channel convolution (32x32 images) was 3.3x faster, that
    of the embedded model's first layer (3 → 16 channels) 5x slower.
    """
    as_conv = transposed_as_convolution(weight, geom)
    if as_conv is not None and convolution_route_is_smaller(geom, as_conv[1]):
        return conv2d(y, *as_conv)
    n_img = y.shape[0]
    g = geom.groups
    n_out = geom.out_hw[0] * geom.out_hw[1]
    height, width = _transpose_output_hw(geom)
    w_t = np.ascontiguousarray(weight.reshape(g, geom.out_channels // g, -1).transpose(0, 2, 1))
    k = g * w_t.shape[1]
    threads = image_threads.threads_for(n_img, _flops_per_image(geom))
    chunks, step = _chunks(n_img, _column_bytes(geom.in_channels, geom, y.itemsize), threads)
    x = np.empty((n_img, geom.in_channels, height, width), dtype=y.dtype)

    def make_scratch():
        return (np.empty((step, g, w_t.shape[1], n_out), dtype=y.dtype),
                np.empty((step,) + padded_shape(geom.in_channels, (height, width), geom),
                         dtype=y.dtype))

    def transpose(images, scratch):
        cols, padded = scratch
        m = images.stop - images.start
        np.matmul(w_t, y[images].reshape(m, g, -1, n_out), out=cols[:m])
        col2im(cols[:m].reshape(m, k, n_out), padded[:m], x[images], *_im2col_args(geom))

    image_threads.run_chunks(chunks, transpose, make_scratch, threads)
    return x


def conv2d_weight_grad(x, grad_out, weight_shape, geom):
    """∂⟨conv2d(x, w), g⟩/∂w = Σ_n g_n @ cols_nᵀ, per group.

    On T worker threads (``image_threads``) thread share t sums the images of chunks t,
    t + T, t + 2T, … in order, and the T sums are added in order at the end: the same
    result on every run with the same T (on one thread: image by image, in order).  Where
    ``conv2d`` would cut images into bands of output rows, the shares are bands instead:
    Σ over bands of g_band @ cols_bandᵀ is the same sum, split by rows."""
    g = geom.groups
    n_img, n_out = x.shape[0], geom.out_hw[0] * geom.out_hw[1]
    grads = grad_out.reshape(n_img, g, geom.out_channels // g, n_out)
    taps = geom.kernel[0] * geom.kernel[1]
    bands, threads = _bands_and_threads(x, geom)
    sums = np.zeros((threads, g, geom.out_channels // g, weight_shape[1] * taps), x.dtype)

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
    return dw.reshape(weight_shape)


# --------------------------------------------------------------------------- outputs

def new_array(shape, dtype):
    """An uninitialised output array, allocated by NumPy rather than inside a kernel.

    The operators below are memory-bound, and for big outputs the first write to each
    fresh page of memory (a page fault) can cost more than the arithmetic.  NumPy's
    allocator asks Linux for transparent huge pages (``madvise``) on arrays of 4 MiB and
    more, which cuts those faults 512-fold; Numba's own ``np.empty`` does not.  Measured
    here: unpooling into a 37 MB output took 7.1–7.5 ms with a NumPy-allocated output and
    20–22 ms with one allocated by the kernel.
    """
    return np.empty(shape, dtype=dtype)


# --------------------------------------------------------------------------- ReLU
# Element-wise kernels are memory-bound.  Each is one parallel loop over blocks of about
# BLOCK elements (a block is a contiguous slice, so its inner loop vectorises); whole
# blocks per task keep each thread streaming through memory in order.  Measured on
# 8x64x56x56 float32: this layout beat one flat ``prange`` over single elements by
# 10-35 %, and making the number of blocks a multiple of the thread count (every thread
# gets as many) beat fixed-size blocks by another ~15 %.  A parallel launch costs ~5 µs
# with the TBB threading layer and ~50 µs with workqueue, which is why ``tbb`` is a
# dependency on the platforms that have it (see the README's "Threads").

BLOCK = 131072  # elements per parallel task, roughly (512 KiB of float32)


def block_size(size):
    """Length of the blocks that cut ``size`` elements into a multiple of the size of
    Numba's thread pool of blocks of about BLOCK elements (the last block may be
    shorter).  (The pool size, a plain attribute, rather than ``numba.get_num_threads()``:
    the blocks only need to split evenly among the threads that may run them.)"""
    threads = numba.config.NUMBA_NUM_THREADS
    n_blocks = threads * max(1, round(size / (threads * BLOCK)))
    return max(1, -(-size // n_blocks))


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


def relu(x):
    out = new_array(x.shape, x.dtype)
    relu_into(x, out, block_size(x.size))
    return out


# The three ways back through a ReLU (Springenberg et al. 2014, Fig. 1), by rule_code:
#
#     0  backprop  (Simonyan 2013):   r = g · [x > 0]
#     1  deconvnet (Zeiler 2014):     r = max(g, 0)
#     2  guided backpropagation:      r = max(g, 0) · [x > 0]

@njit(cache=True)
def relu_backward_block(g, x, r, rectify, use_switch):
    """One block of r from the signal g and the forward input x: g itself, rectified if
    ``rectify`` (deconvnet, guided), zeroed where the unit was off if ``use_switch``
    (backprop, guided).  ``literally`` compiles one loop per rule with its two tests
    decided at compile time, so each loop is a branch-free select that vectorises."""
    literally(rectify)
    literally(use_switch)
    zero = np.zeros(1, g.dtype)[0]
    for k in range(g.size):
        v = g[k]
        if rectify and v <= zero:  # a NaN signal is not <= 0: it stays NaN, as in torch
            v = zero
        if use_switch and not x[k] > zero:
            v = zero
        r[k] = v


@njit(cache=True, parallel=True)
def relu_backward_into(grad, x, out, rule_code, size):
    """out = the rule's way back, in parallel blocks of ``size`` elements
    (``relu_backward_block``)."""
    g_all, x_all, r_all = grad.ravel(), x.ravel(), out.ravel()
    for block in prange((g_all.size + size - 1) // size):
        g = g_all[block * size:(block + 1) * size]
        x_b = x_all[block * size:(block + 1) * size]
        r = r_all[block * size:(block + 1) * size]
        if rule_code == 0:
            relu_backward_block(g, x_b, r, False, True)
        elif rule_code == 1:
            relu_backward_block(g, x_b, r, True, False)
        else:
            relu_backward_block(g, x_b, r, True, True)


def relu_backward(grad, x, rule_code):
    out = new_array(grad.shape, grad.dtype)
    relu_backward_into(grad, x, out, rule_code, block_size(grad.size))
    return out


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
    [0, size) (positions increase with o, so they form one run).

    Max-pooling finds, once per window row and column, the run of taps inside the image,
    so its inner loops need no bounds test per tap."""
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
    image, i.e. 0 ≤ o·stride − padding + t·dilation < size."""
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
    NaN seen gives the switch).  The NaN test costs about 1.7x in this inner loop, so
    ``literally`` compiles one version per value of ``nan_aware``, and the caller takes
    the version without the test for planes that hold no NaN.
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
        nan_aware = contains_nan(x[n, c])  # only this plane's NaNs need the slow test
        if nan_aware:
            max_pool_plane(x[n, c], y[n, c], switches[n, c], rows, cols, sh, sw, ph, pw,
                           dh, dw, True)
        else:
            max_pool_plane(x[n, c], y[n, c], switches[n, c], rows, cols, sh, sw, ph, pw,
                           dh, dw, False)


def max_pool2d(x, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out):
    out_shape = (x.shape[0], x.shape[1], h_out, w_out)
    y, switches = new_array(out_shape, x.dtype), new_array(out_shape, np.int64)
    max_pool_planes(x, y, switches, kh, kw, sh, sw, ph, pw, dh, dw)
    return y, switches


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


def max_unpool2d(y, switches, height, width):
    x = new_array((y.shape[0], y.shape[1], height, width), y.dtype)
    max_unpool_planes(y, switches, x)
    return x


@njit(cache=True)
def window_column_runs(w_out, kw, sw, pw, dw, width):
    """The columns of each pooling window that lie inside the image, as runs of
    consecutive columns: run r of window ow is first[r, ow] … last[r, ow] (empty when
    first > last).  Without dilation a window's columns are one run of up to kw; with
    dilation dw > 1 each of its kw columns ow·sw − pw + j·dw is a run of its own."""
    n_runs, run_length = (1, kw) if dw == 1 else (kw, 1)
    first = np.empty((n_runs, w_out), dtype=np.int64)
    last = np.empty((n_runs, w_out), dtype=np.int64)
    for r in range(n_runs):
        for ow in range(w_out):
            start = ow * sw - pw + r * dw
            first[r, ow] = max(start, 0)
            last[r, ow] = min(start + run_length - 1, width - 1)
    return first, last


@njit(cache=True)
def first_switch_outside_plane_windows(switches, rows, first, last, sh, ph, dh, width):
    """The first output o = oh·W_out + ow of one plane whose switch s is not a position of
    its own window inside the image, or −1.  Inside means s = h·W + w with

        h = oh·sh − ph + i·dh, i in rows[oh]   and   first[r, ow] ≤ w ≤ last[r, ow] for a run r

    (``window_taps``, ``window_column_runs``).  As 0 ≤ w < W, that includes the range
    check 0 ≤ s < H·W.  It is tested as s − h·W in [first, last], over a row of outputs at
    once, one pass per window row and run: comparisons only, which vectorise, where
    s // W would be an integer division per switch, several times slower.
    """
    h_out, w_out = switches.shape
    hits = np.empty(w_out, dtype=np.int64)  # hits[ow] = 1 if window ow holds its switch
    for oh in range(h_out):
        s_row = switches[oh]
        hits[:] = 0
        for i in range(rows[oh, 0], rows[oh, 1]):
            row_start = (oh * sh - ph + i * dh) * width  # the flat index of (h, 0)
            for r in range(first.shape[0]):
                run_first, run_last = first[r], last[r]
                for ow in range(w_out):
                    w = s_row[ow] - row_start  # the switch's column, if it is on row h
                    hits[ow] += (w >= run_first[ow]) & (w <= run_last[ow])
        missed = 0
        for ow in range(w_out):  # count without branches first: a bad switch is rare
            missed += hits[ow] == 0
        if missed:
            for ow in range(w_out):
                if hits[ow] == 0:
                    return oh * w_out + ow
    return -1


@njit(cache=True, parallel=True)
def first_switch_outside_window(switches, kh, kw, sh, sw, ph, pw, dh, dw, height, width):
    """The first flat index into ``switches`` (N, C, H_out, W_out) whose switch does not
    lie in its own pooling window of the (height, width) input
    (``first_switch_outside_plane_windows``), or −1; planes in parallel.  Run before
    ``max_unpool_planes``, which would otherwise write wherever a switch points."""
    n_img, channels, h_out, w_out = switches.shape
    rows = window_taps(h_out, kh, sh, ph, dh, height)  # rows[oh] = (i_lo, i_hi)
    first, last = window_column_runs(w_out, kw, sw, pw, dw, width)
    first_in_plane = np.empty(n_img * channels, dtype=np.int64)
    for plane in prange(n_img * channels):
        first_in_plane[plane] = first_switch_outside_plane_windows(
            switches[plane // channels, plane % channels], rows, first, last, sh, ph, dh,
            width)
    for plane in range(n_img * channels):  # the first bad plane, as a serial scan would find
        if first_in_plane[plane] >= 0:
            return plane * (h_out * w_out) + first_in_plane[plane]
    return -1
