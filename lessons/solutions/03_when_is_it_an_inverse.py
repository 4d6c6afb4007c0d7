# %% [markdown]
# Lesson 3, solutions to the exercises
# ====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: a spectrum written down by hand, dense eigenvalues and condition numbers
# from NumPy, and ``numpy.linalg.solve``.  Run it as a script; it fails loudly if an
# answer is wrong.

# %%
import time

import numpy as np

import minideconv as md
from minideconv import matrices

start = time.perf_counter()
rng = np.random.default_rng(303)

# %% [markdown]
# Exercise 1: the spectrum of a difference filter
# -----------------------------------------------
# The kernel [1, −1] (one row, two columns) with circular padding on an 8 × 8 image
# computes x[r, c] − x[r, c + 1], wrapping around.  Its DFT on the grid is
# K̂(ω_r, ω_c) = 1 − e^{iω_c}, whatever ω_r, so
#
#     eigenvalues of WᵀW = |K̂|² = 2 − 2 cos(2π m / 8),  m = 0 … 7,  each 8 times
#
# (once per row frequency): they run from 0 to 4, and **8 of them are 0** — the
# column frequency 0 is lost, that is, every image constant along each row
# (8 numbers, one per row) is mapped to 0.

# %%
diff = np.array([1.0, -1.0]).reshape(1, 1, 1, 2)
W = matrices.conv2d_matrix(diff, (1, 8, 8), padding="same", padding_mode="circular")
from_matrix = np.linalg.eigvalsh((W.T @ W).toarray())
from_kernel = matrices.circular_gram_eigenvalues(diff, (8, 8))
by_hand = np.sort(np.repeat(2 - 2 * np.cos(2 * np.pi * np.arange(8) / 8), 8))
print(f"eigenvalues: by hand {np.unique(np.round(by_hand, 4))}")
print(f"max |by hand − dense eigvalsh| = {np.abs(by_hand - from_matrix).max():.1e}, "
      f"max |by hand − circular_gram_eigenvalues| = "
      f"{np.abs(by_hand - from_kernel).max():.1e}")
assert np.abs(by_hand - from_matrix).max() < 1e-12
assert np.abs(by_hand - from_kernel).max() < 1e-12
assert np.sum(from_matrix < 1e-12) == 8

row_constant = np.repeat(rng.standard_normal(8), 8).reshape(1, 1, 8, 8)   # x[r, c] = a_r
lost = md.conv2d(row_constant, diff, padding="same", padding_mode="circular")
print(f"an image constant along each row: max |W x| = {np.abs(lost).max():.1e}")
assert np.abs(lost).max() < 1e-12

# %% [markdown]
# Exercise 2: an orthonormal filter bank of your own, and breaking it
# -------------------------------------------------------------------
# Any orthogonal 4 × 4 matrix Q gives one: its rows, reshaped to 2 × 2, are four filters
# that form an orthonormal basis of every 2 × 2 window, so with stride 2 W is orthogonal
# and the transpose inverts it exactly.
#
# Scale one filter by 1.1: WᵀW = I + (1.21 − 1) Σ (its 25 footprints), so 25 eigenvalues
# become 1.21 and **‖WᵀW − I‖_F = 0.21 · √25 = 1.05**; the transpose does not invert it.
# W is still square and invertible, so least squares still does (checked against
# ``numpy.linalg.solve`` on the dense W).

# %%
rows, cols = np.mgrid[0:10, 0:10]
x = np.exp(-((rows - 3.0) ** 2 + (cols - 6.0) ** 2) / 6.0).reshape(1, 1, 10, 10)
q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
bank = q.reshape(4, 1, 2, 2)
W_bank = matrices.conv2d_matrix(bank, (1, 10, 10), stride=2)
round_trip = md.conv_transpose2d(md.conv2d(x, bank, stride=2), bank, stride=2)
print(f"random orthonormal bank: ‖WᵀW − I‖_F = "
      f"{matrices.gram_deviation(W_bank).frobenius:.1e}, max |WᵀWx − x| = "
      f"{np.abs(round_trip - x).max():.1e}")
assert matrices.gram_deviation(W_bank).frobenius < 1e-12
assert np.abs(round_trip - x).max() < 1e-12

broken = bank.copy()
broken[2] *= 1.1
W_broken = matrices.conv2d_matrix(broken, (1, 10, 10), stride=2)
deviation = matrices.gram_deviation(W_broken).frobenius
eigenvalues = np.linalg.eigvalsh((W_broken.T @ W_broken).toarray())
round_trip = md.conv_transpose2d(md.conv2d(x, broken, stride=2), broken, stride=2)
y = W_broken @ x.ravel()
x_lsqr = matrices.least_squares_inverse(W_broken, y)
x_solve = np.linalg.solve(W_broken.toarray(), y)
print(f"one filter × 1.1: ‖WᵀW − I‖_F = {deviation:.4f} (predicted 1.05); eigenvalues "
      f"{np.unique(np.round(eigenvalues, 8))} ({np.sum(eigenvalues > 1.1)} of them 1.21)")
print(f"   transpose error max |WᵀWx − x| = {np.abs(round_trip - x).max():.3f}; "
      f"lsqr vs solve: {np.abs(x_lsqr.ravel() - x_solve).max():.1e}, "
      f"lsqr vs x: {np.abs(x_lsqr.ravel() - x.ravel()).max():.1e}")
assert abs(deviation - 0.21 * 5) < 1e-10
assert np.sum(np.isclose(eigenvalues, 1.21)) == 25
assert np.abs(round_trip - x).max() > 1e-3
assert np.abs(x_lsqr.ravel() - x_solve).max() < 1e-8
assert np.abs(x_lsqr.ravel() - x.ravel()).max() < 1e-8

# %% [markdown]
# Exercise 3: the condition number from the kernel alone
# ------------------------------------------------------
# For a circular convolution the singular values of W are |K̂(ω)|, so its condition
# number is max |K̂| / min |K̂| — from a 10 × 10 FFT of the kernel, without building W.
# It says how much least squares can amplify noise in y.  Compared with NumPy's
# ``cond`` of the dense 100 × 100 W for a random 3 × 3 kernel; for the 2 × 2 box, min
# |K̂| = 0 and the condition number is infinite.

# %%
random3 = rng.standard_normal((1, 1, 3, 3)) / 3
spectrum = np.abs(np.fft.fft2(random3[0, 0], s=(10, 10)))
cond_fft = spectrum.max() / spectrum.min()
W3 = matrices.conv2d_matrix(random3, (1, 10, 10), padding="same", padding_mode="circular")
cond_dense = np.linalg.cond(W3.toarray())
print(f"random 3 × 3: condition number from the FFT {cond_fft:.4f}, "
      f"numpy.linalg.cond of W {cond_dense:.4f}")
assert abs(cond_fft - cond_dense) < 1e-8 * cond_dense
box_spectrum = np.abs(np.fft.fft2(np.full((2, 2), 0.5), s=(10, 10)))
print(f"2 × 2 box: min |K̂| = {box_spectrum.min():.1e} → infinite condition number")
assert box_spectrum.min() < 1e-12

# %%
print(f"solutions of lesson 3 ran in {time.perf_counter() - start:.1f} s")
