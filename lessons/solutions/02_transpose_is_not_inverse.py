# %% [markdown]
# Lesson 2, solutions to the exercises
# ====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: a null-space basis written down by hand, dense SVDs from NumPy and SciPy,
# and a matrix-free SVD that sees only ``conv2d`` and ``conv_transpose2d``.  Run it as a
# script; it fails loudly if an answer is wrong.

# %%
import time

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

import minideconv as md
from minideconv import matrices

start = time.perf_counter()
rng = np.random.default_rng(202)
box = np.full((1, 1, 2, 2), 0.5)

# %% [markdown]
# Exercise 1: how big is the null space of the 2 × 2 box?
# -------------------------------------------------------
# Without padding, on an n × n image, W has (n − 1)² rows, and v is in its null space
# when every 2 × 2 window of v sums to 0.  Write v[r, c] = (−1)^(r+c) u[r, c]: the
# condition becomes u[r, c] − u[r, c+1] − u[r+1, c] + u[r+1, c+1] = 0, a zero mixed
# second difference, so u[r, c] = f(r) + g(c).  That is n + n − 1 free numbers (a
# constant can move from f to g): **the null space has dimension 2n − 1** (19 for the
# lesson's n = 10), and the rows of W are independent, since (n − 1)² + 2n − 1 = n².
#
# Check: the 2n − 1 vectors (−1)^(r+c) eᵢ(r) and (−1)^(r+c) eⱼ(c), j ≥ 1, are in the null
# space and independent, and ``scipy.linalg.null_space`` finds no more.

# %%
for n in (4, 7, 10):
    W = matrices.conv2d_matrix(box, (1, n, n))
    r, c = np.mgrid[0:n, 0:n]
    sign = (-1.0) ** (r + c)
    basis = [sign * (r == i) for i in range(n)] + [sign * (c == j) for j in range(1, n)]
    basis = np.stack([b.ravel() for b in basis])
    residual = np.abs(W @ basis.T).max()
    rank_basis = np.linalg.matrix_rank(basis)
    nullity = scipy.linalg.null_space(W.toarray()).shape[1]
    print(f"n = {n:2d}: predicted 2n − 1 = {2 * n - 1:2d}; hand-made basis of rank "
          f"{rank_basis}, max |W v| = {residual:.1e}; scipy null_space: {nullity}")
    assert rank_basis == nullity == 2 * n - 1
    assert residual < 1e-12

# %% [markdown]
# Exercise 2: images the round trip returns up to a scale
# -------------------------------------------------------
# WᵀW = V Σ² Vᵀ, so a right singular vector vᵢ of W comes back as σᵢ² vᵢ: the round trip
# returns it exactly, up to the factor σᵢ², and the best rescaling α of the lesson is
# 1/σᵢ², with zero error left.  We take v₁ from NumPy's dense SVD of the box's W and
# check it with the operators, and compute σ₁ a second way, matrix-free: ARPACK
# (``scipy.sparse.linalg.svds``) on a ``LinearOperator`` that only calls ``conv2d``
# and ``conv_transpose2d``.

# %%
W = matrices.conv2d_matrix(box, (1, 10, 10))
_, sigma, vt = np.linalg.svd(W.toarray())
v1 = vt[0].reshape(1, 1, 10, 10)
back = md.conv_transpose2d(md.conv2d(v1, box), box)
alpha = np.vdot(back, v1) / np.vdot(back, back)
left = np.linalg.norm(alpha * back - v1) / np.linalg.norm(v1)
print(f"σ₁ = {sigma[0]:.6f}: max |WᵀW v₁ − σ₁² v₁| = "
      f"{np.abs(back - sigma[0] ** 2 * v1).max():.1e}; best α = {alpha:.6f} "
      f"(1/σ₁² = {1 / sigma[0] ** 2:.6f}), error left {left:.1e}")
assert np.allclose(back, sigma[0] ** 2 * v1, atol=1e-12)
assert abs(alpha - 1 / sigma[0] ** 2) < 1e-12 and left < 1e-12

operator = scipy.sparse.linalg.LinearOperator(
    (81, 100), dtype=float,
    matvec=lambda z: md.conv2d(z.reshape(1, 1, 10, 10), box).ravel(),
    rmatvec=lambda s: md.conv_transpose2d(s.reshape(1, 1, 9, 9), box).ravel())
sigma_free = scipy.sparse.linalg.svds(operator, k=1, return_singular_vectors=False,
                                      random_state=0)[0]
print(f"σ₁ matrix-free (ARPACK on conv2d / conv_transpose2d) = {sigma_free:.6f}")
assert abs(sigma_free - sigma[0]) < 1e-8

# %% [markdown]
# Exercise 3: the transpose is a convolution with the flipped kernel
# ------------------------------------------------------------------
# Output pixel o of y = W x reads x[o], …, x[o + k − 1], so input pixel i is read by the
# outputs i − k + 1, …, i, through the kernel entries k − 1, …, 0: Wᵀ y is ``conv2d`` of
# y, padded with k − 1 zeros, with the kernel rotated by 180°.  Forgetting the rotation
# is invisible for the box (a symmetric kernel) and fails for a random one — both in the
# entries of the matrix and in the dot-product test.

# %%
y = rng.standard_normal((1, 1, 9, 9))
w_random = rng.standard_normal((1, 1, 2, 2))
for name, w in [("box", box), ("random 2 × 2", w_random)]:
    reference = md.conv_transpose2d(y, w)
    flipped = md.conv2d(y, w[..., ::-1, ::-1].copy(), padding=1)
    unflipped = md.conv2d(y, w, padding=1)
    error_flipped = np.abs(flipped - reference).max()
    error_unflipped = np.abs(unflipped - reference).max()
    test = md.dottest(lambda z, w=w: md.conv2d(z, w),
                      lambda s, w=w: md.conv2d(s, w, padding=1),
                      (1, 1, 10, 10), (1, 1, 9, 9), raise_error=False)
    print(f"{name:12s}: max |conv2d(y, flipped k, padding 1) − Wᵀy| = {error_flipped:.1e},"
          f" without the flip {error_unflipped:.2f}; dot test of the unflipped "
          f"'transpose': mismatch {test.relative_error:.1e}")
    assert error_flipped < 1e-12
    if name == "box":
        assert error_unflipped < 1e-12 and test.relative_error < 1e-10
    else:
        assert error_unflipped > 0.1 and test.relative_error > 1e-3

# %%
print(f"solutions of lesson 2 ran in {time.perf_counter() - start:.1f} s")
