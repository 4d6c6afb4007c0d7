"""Is the transposed convolution an inverse?  Linear algebra on W.

The seed question of the deconvnet — does Wᵀ undo W? — asks whether WᵀW = I.  The
answers here, for any explicit matrix W (``conv2d_matrix`` and friends):

* ``singular_values``: σ_1 ≥ σ_2 ≥ … of W.  WᵀW = I exactly when every σ_i = 1 and W
  has at least as many rows as columns;
* ``gram_deviation``: ‖WᵀW − I‖ in the Frobenius and the spectral norm
  (``GramDeviation``);
* ``least_squares_inverse`` and ``reconstruct``: y = W x mapped back with Wᵀ (what a
  deconvnet does) against the least-squares solution x̂ = argmin‖W x − y‖ (LSQR),
  errors side by side (``Reconstruction``).

Circular convolutions
---------------------
With circular padding, stride 1 and an output of the input's size, W is block-circulant
and the DFT diagonalises it, so WᵀW's spectrum comes from the kernel alone:
``circular_gram_eigenvalues``.  For one channel those eigenvalues are |K̂(ω)|², and
WᵀW = I iff |K̂(ω)| = 1 at every frequency — an all-pass kernel (``allpass_kernel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .. import checks, geometry
from .csr import as_csr, require_numpy

__all__ = ["singular_values", "gram_deviation", "GramDeviation", "least_squares_inverse",
           "reconstruct", "Reconstruction", "circular_gram_eigenvalues", "allpass_kernel"]


# =========================================================================== linear algebra

def singular_values(matrix, k: Optional[int] = None, which: str = "LM",
                    dense_limit: int = 2048, **svds_kwargs) -> np.ndarray:
    """Singular values σ_1 ≥ σ_2 ≥ … of W, in decreasing order.

    ``k=None``: all min(m, n) of them, by a dense SVD (only when both dimensions are at
    most ``dense_limit``).  ``k`` given: the k largest (``which="LM"``) or smallest
    (``"SM"``) — from the dense SVD when small, else from ``scipy.sparse.linalg.svds``
    (ARPACK; extra keyword arguments go to it; needs k < min(m, n)).
    """
    matrix = as_csr(matrix, "matrix")
    checks.check_choice(which, "which", ("LM", "SM"))
    m, n = matrix.shape
    if k is not None:
        k = checks.check_int(k, "k", 1, min(m, n))
    if max(m, n) <= dense_limit:
        sigma = np.linalg.svd(matrix.toarray(), compute_uv=False)
        if k is None:
            return sigma
        return sigma[:k] if which == "LM" else sigma[-k:]
    if k is None:
        raise ValueError(f"k: the matrix is {m}x{n}, larger than dense_limit={dense_limit}; "
                         f"ask for k singular values (computed with svds)")
    if k >= min(m, n):
        raise ValueError(f"k must be < min(m, n) = {min(m, n)} for svds, got {k}")
    sigma = spla.svds(matrix, k=k, which=which, return_singular_vectors=False,
                      **svds_kwargs)
    return np.sort(sigma)[::-1]


@dataclass(frozen=True)
class GramDeviation:
    """How far W is from having orthonormal columns: ‖WᵀW − I‖ in two norms.

    0 exactly when Wᵀ is a left inverse of W.  The spectral norm is max |σ_i² − 1| over
    the n eigenvalues of WᵀW (it is ≥ 1 when W has fewer rows than columns: WᵀW is then
    singular).
    """

    frobenius: float
    spectral: Optional[float]


def gram_deviation(matrix, spectral: bool = True, dense_limit: int = 2048) -> GramDeviation:
    """‖WᵀW − I‖_F (always, from the sparse product WᵀW, in float64) and ‖WᵀW − I‖₂
    (when ``spectral``: a dense eigensolver for n ≤ ``dense_limit`` columns, else
    ``eigsh`` for the eigenvalue of largest magnitude)."""
    matrix = as_csr(matrix, "matrix").astype(np.float64, copy=False)
    n = matrix.shape[1]
    deviation = (matrix.T @ matrix - sp.eye_array(n, dtype=np.float64, format="csr")).tocsr()
    frobenius = float(np.sqrt(np.sum(deviation.data ** 2)))
    spectral_norm = None
    if spectral:
        if n <= dense_limit:
            spectral_norm = float(np.abs(np.linalg.eigvalsh(deviation.toarray())).max())
        else:
            largest = spla.eigsh(deviation, k=1, which="LM", return_eigenvectors=False)
            spectral_norm = float(np.abs(largest).max())
    return GramDeviation(frobenius, spectral_norm)


def least_squares_inverse(matrix, y, atol: float = 1e-12, btol: float = 1e-12,
                          iter_lim: Optional[int] = None) -> np.ndarray:
    """x̂ = argmin_x ‖W x − y‖ by ``scipy.sparse.linalg.lsqr`` (float64).

    Started at 0, LSQR stays in the row space of W, so when W has a null space (fewer rows
    than columns) x̂ is the minimum-norm solution W⁺y.
    """
    return _lsqr(matrix, y, atol, btol, iter_lim)[0]


def _lsqr(matrix, y, atol, btol, iter_lim):
    """LSQR's solution of min‖W x − y‖ in float64, and its iteration count."""
    matrix = as_csr(matrix, "matrix")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.size != matrix.shape[0]:
        raise ValueError(f"y must have {matrix.shape[0]} values (rows of the matrix), "
                         f"got {y.size}")
    result = spla.lsqr(matrix.astype(np.float64, copy=False), y, atol=atol, btol=btol,
                       iter_lim=iter_lim)
    return result[0], int(result[2])


@dataclass(frozen=True)
class Reconstruction:
    """Two ways back from y = W x: the transpose (what a deconvnet does) and least squares.

    Errors are relative: ``*_error`` = ‖x̃ − x‖ / ‖x‖, ``*_residual`` = ‖W x̃ − y‖ / ‖y‖.
    Wᵀy is not even scaled right unless WᵀW = I; x̂ has the smallest residual possible and,
    when W has full column rank, recovers x.
    """

    x: np.ndarray
    y: np.ndarray
    x_transpose: np.ndarray
    x_lsqr: np.ndarray
    transpose_error: float
    lsqr_error: float
    transpose_residual: float
    lsqr_residual: float
    lsqr_iterations: int


def reconstruct(matrix, x, atol: float = 1e-12, btol: float = 1e-12,
                iter_lim: Optional[int] = None) -> Reconstruction:
    """Map x forward with W, then back with Wᵀ and with least squares; compare.

    ``x`` may have any shape with W.shape[1] values (e.g. one image (C, H, W)); the
    reconstructions come back in that shape, computed in float64.
    """
    matrix = as_csr(matrix, "matrix").astype(np.float64, copy=False)
    x = np.asarray(x, dtype=np.float64)
    if x.size != matrix.shape[1]:
        raise ValueError(f"x must have {matrix.shape[1]} values (columns of the matrix), "
                         f"got shape {x.shape}")
    flat = x.reshape(-1)
    y = matrix @ flat
    x_transpose = matrix.T @ y
    x_lsqr, iterations = _lsqr(matrix, y, atol, btol, iter_lim)

    def relative(a, b):
        scale = np.linalg.norm(b)
        return float(np.linalg.norm(a - b) / scale) if scale > 0 else float(np.linalg.norm(a))

    return Reconstruction(
        x=x, y=y, x_transpose=x_transpose.reshape(x.shape), x_lsqr=x_lsqr.reshape(x.shape),
        transpose_error=relative(x_transpose, flat), lsqr_error=relative(x_lsqr, flat),
        transpose_residual=relative(matrix @ x_transpose, y),
        lsqr_residual=relative(matrix @ x_lsqr, y), lsqr_iterations=iterations)


# =========================================================================== circular convolutions

def circular_gram_eigenvalues(weight, input_hw, dilation=1, groups: int = 1) -> np.ndarray:
    """Eigenvalues of WᵀW for a circular convolution with stride 1 whose output has the
    input's size (padding="same", or any split of d(k−1) between the two sides), from the
    DFT of the kernel alone — sorted increasingly, C_in·H·W of them.

    Such a W is block-circulant: the DFT diagonalises every (c_out, c_in) block, with
    K̂[o, c](ω) = DFT over the H×W grid of the kernel, its taps placed at (i·dh mod H,
    j·dw mod W).  At each frequency ω, WᵀW acts on the C_in channels as K̂(ω)ᴴK̂(ω), so
    its eigenvalues are the squared singular values of the C_out×C_in matrices K̂(ω)
    (padded with zeros when C_out < C_in).  For one channel: |K̂(ω)|², and WᵀW = I iff
    |K̂(ω)| = 1 everywhere — an all-pass kernel.  The cross-correlation's flip and the
    padding's shift change K̂ only by a conjugation and a phase, not these eigenvalues.
    """
    require_numpy(weight, "weight")
    checks.check_float_array(weight, "weight", ndim=4, layout="(C_out, C_in/groups, kh, kw)")
    height, width = checks.to_pair(input_hw, "input_hw", 1)
    dh, dw = checks.to_pair(dilation, "dilation", 1)
    groups = geometry.check_groups(groups)
    c_out, c_in_per_group, kh, kw = weight.shape
    if c_out % groups:
        raise ValueError(f"groups={groups} must divide the output channels ({c_out})")
    rows = (np.arange(kh) * dh) % height
    cols = (np.arange(kw) * dw) % width
    grid = np.zeros((c_out, c_in_per_group, height, width), dtype=np.float64)
    np.add.at(grid, (slice(None), slice(None), rows[:, None], cols[None, :]), weight)
    spectrum = np.fft.fft2(grid)                     # (C_out, C_in_g, H, W)
    per_group = c_out // groups
    eigenvalues = []
    for g in range(groups):
        blocks = spectrum[g * per_group:(g + 1) * per_group]     # (C_out_g, C_in_g, H, W)
        blocks = np.moveaxis(blocks, (0, 1), (-2, -1)).reshape(-1, per_group, c_in_per_group)
        sigma = np.linalg.svd(blocks, compute_uv=False)
        eig = np.zeros((blocks.shape[0], c_in_per_group))
        eig[:, :sigma.shape[1]] = sigma ** 2
        eigenvalues.append(eig.ravel())
    return np.sort(np.concatenate(eigenvalues))


def allpass_kernel(size_hw, seed=None) -> np.ndarray:
    """A real H×W kernel whose DFT on the H×W grid has modulus 1 at every frequency.

    Take the DFT of random noise and divide by its modulus, keeping a random phase; the
    noise is real, so the phase is Hermitian-symmetric and the inverse DFT is real.  With
    circular padding="same" on an H×W image (``weight = k[None, None]``) the convolution
    matrix is then orthogonal: WᵀW = I.  Returns float64 (H, W).
    """
    height, width = checks.to_pair(size_hw, "size_hw", 1)
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.standard_normal((height, width)))
    while np.abs(spectrum).min() < 1e-8:          # a zero frequency has no phase
        spectrum = np.fft.fft2(rng.standard_normal((height, width)))
    return np.fft.ifft2(spectrum / np.abs(spectrum)).real
