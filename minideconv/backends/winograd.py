"""Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2015): a 3×3, stride-1
convolution with 2.25× fewer multiplications than im2col + GEMM.

Cut the output into 2×2 tiles.  Tile t of output channel k reads the 4×4 patch d_{c,t} of
every input channel c (two pixels of overlap with its neighbours), and

    Y_{k,t} = Aᵀ [ Σ_c (G g_{k,c} Gᵀ) ⊙ (Bᵀ d_{c,t} B) ] A

with g_{k,c} the 3×3 filter and the constant matrices

    Bᵀ = [[1,  0, −1,  0],     G = [[1,    0,    0  ],     Aᵀ = [[1, 1,  1,  0],
          [0,  1,  1,  0],          [1/2,  1/2,  1/2],           [0, 1, −1, −1]]
          [0, −1,  1,  0],          [1/2, −1/2,  1/2],
          [0,  1,  0, −1]]          [0,    0,    1  ]]

Written per element e = (a, b) of the 4×4 transformed tile, the sum over c is a matrix
product — 16 of them, each (C_out × C_in) by (C_in × tiles):

    U[e] = (G g Gᵀ)[e]  (C_out, C_in),   V[e] = (Bᵀ d B)[e]  (C_in, tiles),
    M[e] = U[e] @ V[e]  (BLAS),          Y = Aᵀ M A, tile by tile.

im2col + GEMM multiplies 9 · C_out · C_in per output pixel, this 16/4 = 4: the GEMM work
drops 2.25×, for two extra passes over memory (the transforms).  The transforms only add,
subtract and halve, so the rounding errors stay of the size of the direct sum's: within
float32 accuracy of the direct loop (tests/test_backends_winograd.py; benchmarks/README.md
has the errors measured).

The work runs in units of whole images or bands of tile rows, each unit's V and M small
enough to stay in cache (``UNIT_BYTES``), on ``image_threads``' threads.  ``backends.cpu``
chooses this route (``applies``); benchmarks/README.md has the measurements.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import image_threads
from .loops import copy_into

#: G of the filter transform U = G g Gᵀ (the data's transforms are written out in the loops).
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

#: Most bytes of V and M together in one unit of work: they stay in the core's cache
#: from the input transform through the GEMMs to the output transform.
UNIT_BYTES = 2 * 2**20

#: The least tiles in one unit: thinner GEMMs run BLAS far below its pace, and each unit
#: reads all of U (16 MB for 512 → 512 channels in float32) once more.
MIN_TILES_PER_UNIT = 256

#: The least input and output channels, and the least 2×2 tiles of output in the whole
#: batch, for which the route is taken: with fewer channels the GEMMs are too thin for
#: BLAS to gain what the transforms cost; with fewer tiles, transforming the filters
#: costs more than the multiplications save.
#: Below WIDE_INPUT input channels the output may have at most twice as many: the GEMMs'
#: inner dimension is C_in, and M, 16 · C_out per tile, then costs more to write and read
#: than the multiplications save (16 → 64 channels: 0.6–0.96× im2col's speed).
#: benchmarks/README.md has the measurements.
MIN_CHANNELS = 16
WIDE_INPUT = 32
MIN_TILES = 96


def applies(geom, n_img):
    """True for the convolutions of ``n_img`` images this route computes and is faster
    on: 3×3 kernel, stride 1, dilation 1, one group, at least MIN_CHANNELS channels in
    and out, no more than twice as many out as in below WIDE_INPUT, MIN_TILES tiles."""
    c_in, c_out = geom.in_channels, geom.out_channels
    tiles = n_img * -(-geom.out_hw[0] // 2) * -(-geom.out_hw[1] // 2)
    return (tuple(geom.kernel) == (3, 3) and tuple(geom.stride) == (1, 1)
            and tuple(geom.dilation) == (1, 1) and geom.groups == 1
            and min(c_in, c_out) >= MIN_CHANNELS and (c_in >= WIDE_INPUT or c_out <= 2 * c_in)
            and tiles >= MIN_TILES)


def transformed_kernel(weight, flipped=False):
    """U[4a + b, k, c] = (G g_{k,c} Gᵀ)[a, b] = Σ_ij G[a, i] G[b, j] g_{k,c}[i, j]: the
    filters in the transformed domain, shape (16, C_out, C_in), in the weight's dtype.

    Every element of U is the same combination of the nine taps for all filters, so all
    of U is one product: the 16 × 9 matrix G ⊗ G (Kronecker) times the taps (9, C_out·C_in)
    — a single BLAS call rather than a loop over filters.  G's halves are exact in binary.

    ``flipped``: U of ``cpu.flipped_kernel(weight)``, the kernel of the convolution that
    equals the stride-1 transpose, w'[c, k, i, j] = w[k, c, 2 − i, 2 − j]: the taps in
    reverse order (G ⊗ G's columns reversed), C_in and C_out swapped — shape (16, C_in,
    C_out), a view, with no flipped copy of the weight made."""
    c_out, c_in = weight.shape[:2]
    g_kron_g = np.kron(G, G).astype(weight.dtype)
    if flipped:
        g_kron_g = g_kron_g[:, ::-1]
    u = (g_kron_g @ weight.reshape(c_out * c_in, 9).T).reshape(16, c_out, c_in)
    return u.transpose(0, 2, 1) if flipped else u


# --------------------------------------------------------------------------- the transforms


@njit(cache=True, parallel=True, nogil=True)
def input_tiles(x, top, left, padded, v):
    """V[4a + b, c, t] = (Bᵀ d_{c,t} B)[a, b] for every 4×4 patch d of the images x
    (m, C, R, W), zero-padded: x sits in ``padded`` (m, C, 2·T_h + 2, 2·T_w + 2) at row
    ``top``, column ``left``; tile (n, ty, tx) is t = (n·T_h + ty)·T_w + tx, its patch
    the padded rows 2ty … 2ty + 3 and columns 2tx … 2tx + 3.

    Bᵀ d combines four rows (r₀ − r₂, r₁ + r₂, r₂ − r₁, r₁ − r₃); done for a whole row
    of tiles at once, that is four passes along contiguous rows.  (·) B then combines
    columns the same way, two apart from one tile to the next.  ``padded`` is scratch,
    zeroed here."""
    n_img, channels, height, width = x.shape
    tiles_h, tiles_w = (padded.shape[2] - 2) // 2, (padded.shape[3] - 2) // 2
    copied = min(width, padded.shape[3] - left)  # a window may end before the image does
    for plane in prange(n_img * channels):
        n, c = plane // channels, plane % channels
        p = padded[n, c]
        p[:] = 0
        for h in range(height):
            copy_into(p[top + h, left:left + copied], x[n, c, h, :copied])
        rows = np.empty((4, p.shape[1]), dtype=p.dtype)
        for ty in range(tiles_h):
            r = 2 * ty
            for col in range(p.shape[1]):  # Bᵀ d: the tile row's four rows combined
                d1, d2 = p[r + 1, col], p[r + 2, col]
                rows[0, col] = p[r, col] - d2
                rows[1, col] = d1 + d2
                rows[2, col] = d2 - d1
                rows[3, col] = d1 - p[r + 3, col]
            first = (n * tiles_h + ty) * tiles_w
            for a in range(4):  # (Bᵀ d) B: the same on the columns of each tile
                for tx in range(tiles_w):
                    e1, e2 = rows[a, 2 * tx + 1], rows[a, 2 * tx + 2]
                    v[4 * a, c, first + tx] = rows[a, 2 * tx] - e2
                    v[4 * a + 1, c, first + tx] = e1 + e2
                    v[4 * a + 2, c, first + tx] = e2 - e1
                    v[4 * a + 3, c, first + tx] = e1 - rows[a, 2 * tx + 3]


@njit(cache=True, parallel=True, nogil=True)
def output_tiles(m, y):
    """y[n, k, 2ty + i, 2tx + j] = (Aᵀ M_{k,t} A)[i, j] for every tile t = (n·T_h + ty)·T_w
    + tx of M (16, C_out, tiles), M_{k,t}[a, b] = M[4a + b, k, t], into y (m, C_out, R,
    W_out): T_h = ⌈R / 2⌉, T_w = ⌈W_out / 2⌉, and a last tile row or column that would
    pass the edge (odd R or W_out) is cut off.

    (·) A combines each row's four columns into two (m₀ + m₁ + m₂, m₁ − m₂ − m₃), all
    tiles of a tile row at once; Aᵀ (·) then combines the four rows the same way, along
    contiguous output rows."""
    n_img, channels, height, width = y.shape
    tiles_h, tiles_w = (height + 1) // 2, (width + 1) // 2
    for plane in prange(n_img * channels):
        n, k = plane // channels, plane % channels
        rows = np.empty((4, 2 * tiles_w), dtype=y.dtype)
        for ty in range(tiles_h):
            first = (n * tiles_h + ty) * tiles_w
            for a in range(4):  # M A: two output columns per tile
                for tx in range(tiles_w):
                    m1, m2 = m[4 * a + 1, k, first + tx], m[4 * a + 2, k, first + tx]
                    rows[a, 2 * tx] = m[4 * a, k, first + tx] + m1 + m2
                    rows[a, 2 * tx + 1] = m1 - m2 - m[4 * a + 3, k, first + tx]
            out = y[n, k, 2 * ty]
            for col in range(width):  # Aᵀ (M A): two output rows per tile
                out[col] = rows[0, col] + rows[1, col] + rows[2, col]
            if 2 * ty + 1 < height:
                out = y[n, k, 2 * ty + 1]
                for col in range(width):
                    out[col] = rows[1, col] - rows[2, col] - rows[3, col]


# --------------------------------------------------------------------------- scheduling


def _units(n_img, tiles_h, tiles_w, bytes_per_tile_row, threads):
    """The units of work, (images, tile rows): whole images, as many per unit as fit in
    UNIT_BYTES, or bands of tile rows where one image does not fit or there are fewer
    images than ``threads`` (every thread gets a unit)."""
    rows_per_unit = max(1, UNIT_BYTES // bytes_per_tile_row, -(-MIN_TILES_PER_UNIT // tiles_w))
    if rows_per_unit >= tiles_h and n_img >= threads:
        per_unit = max(1, min(rows_per_unit // tiles_h, -(-n_img // threads)))
        return [(slice(a, min(a + per_unit, n_img)), slice(0, tiles_h))
                for a in range(0, n_img, per_unit)]
    bands = max(-(-tiles_h // rows_per_unit), -(-threads // n_img))
    bands = min(tiles_h, -(-bands * n_img // threads) * threads // n_img)  # even shares
    return [(slice(n, n + 1), slice(b * tiles_h // bands, (b + 1) * tiles_h // bands))
            for n in range(n_img) for b in range(bands)]


def _transformed_kernel_on_threads(weight, threads, flipped):
    """``transformed_kernel``, contiguous, the weight's first axis cut into ``threads``
    shares computed on ``image_threads``' threads (one BLAS thread each, as the GEMMs
    after it)."""
    c_out, c_in = weight.shape[:2]
    u = np.empty((16, c_in, c_out) if flipped else (16, c_out, c_in), dtype=weight.dtype)
    shares = [slice(t * c_out // threads, (t + 1) * c_out // threads) for t in range(threads)]

    def transform(share, _):
        if flipped:
            u[:, :, share] = transformed_kernel(weight[share], flipped=True)
        else:
            u[:, share] = transformed_kernel(weight[share])

    image_threads.run_chunks(shares, transform, lambda: None, threads)
    return u


def conv2d(x, weight, geom, flipped=False):
    """y = W x for a convolution ``applies`` accepts, by F(2×2, 3×3): per unit of images
    or tile rows, the input transform, the 16 GEMMs M[e] = U[e] @ V[e], the output
    transform into y.

    ``flipped``: the convolution with ``cpu.flipped_kernel(weight)``, ``weight`` being the
    stride-1 transposed convolution's own (C_in, C_out, 3, 3) — that transpose, when
    ``geom`` is ``geometry.transpose_as_convolution`` of it."""
    n_img, channels, height, _ = x.shape
    (h_out, w_out), (pad_top, pad_left) = geom.out_hw, geom.top_left_pads
    c_out = geom.out_channels
    tiles_h, tiles_w = -(-h_out // 2), -(-w_out // 2)
    flops_per_tile_row = 2 * 16 * c_out * channels * tiles_w
    units = _units(n_img, tiles_h, tiles_w, 16 * (channels + c_out) * tiles_w * x.itemsize,
                   image_threads.threads_for(n_img * tiles_h, flops_per_tile_row))
    threads = image_threads.threads_for(len(units),
                                        flops_per_tile_row * n_img * tiles_h / len(units))
    u = _transformed_kernel_on_threads(weight, threads, flipped)
    most = max((i.stop - i.start) * (r.stop - r.start) for i, r in units)  # tile rows
    most_padded = max((i.stop - i.start) * (2 * (r.stop - r.start) + 2) for i, r in units)
    y = np.empty((n_img, c_out, h_out, w_out), dtype=x.dtype)

    def make_scratch():  # flat buffers, cut to each unit's exact shape
        return (np.empty(most_padded * channels * (2 * tiles_w + 2), dtype=x.dtype),
                np.empty(16 * channels * most * tiles_w, dtype=x.dtype),
                np.empty(16 * c_out * most * tiles_w, dtype=x.dtype))

    def convolve(unit, scratch):
        images, tile_rows = unit
        m_img, m_rows = images.stop - images.start, tile_rows.stop - tile_rows.start
        first = 2 * tile_rows.start - pad_top  # the image row of the unit's first patch row
        lo = max(0, first)
        hi = max(lo, min(height, 2 * tile_rows.stop + 2 - pad_top))
        tiles = m_img * m_rows * tiles_w
        padded = scratch[0][:m_img * channels * (2 * m_rows + 2) * (2 * tiles_w + 2)].reshape(
            m_img, channels, 2 * m_rows + 2, 2 * tiles_w + 2)
        v = scratch[1][:16 * channels * tiles].reshape(16, channels, tiles)
        m = scratch[2][:16 * c_out * tiles].reshape(16, c_out, tiles)
        input_tiles(x[images, :, lo:hi], lo - first, pad_left, padded, v)
        for e in range(16):  # the 16 GEMMs, one per element of the transformed tile
            np.matmul(u[e], v[e], out=m[e])
        output_tiles(m, y[images, :, 2 * tile_rows.start:min(h_out, 2 * tile_rows.stop)])

    image_threads.run_chunks(units, convolve, make_scratch, threads)
    return y
