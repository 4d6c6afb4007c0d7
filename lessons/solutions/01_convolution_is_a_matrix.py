# %% [markdown]
# Lesson 1, solutions to the exercises
# ====================================
#
# Each answer is computed with minideconv and asserted against a computation that does
# not go through ``minideconv.matrices``: a brute-force count, the columns W eᵢ probed
# with ``conv2d`` itself, and ``scipy.signal``.  Run it as a script
# (``python lessons/solutions/01_convolution_is_a_matrix.py``); it fails loudly if an
# answer is wrong.

# %%
import time

import numpy as np
import scipy.signal

import minideconv as md
from minideconv import matrices

start = time.perf_counter()
rng = np.random.default_rng(101)

# %% [markdown]
# Exercise 1: the shape and the nonzeros of W, predicted
# ------------------------------------------------------
# A 3 × 3 kernel on a 6 × 6 image.
#
# - Padding 0: the output is (6 − 3 + 1)² = 16 pixels, so W is 16 × 36; every row holds
#   the whole kernel, 9 nonzeros, so W has 16 · 9 = 144 nonzeros.
# - Padding 1: W is 36 × 36.  Along one axis an output at the border keeps 2 of its 3
#   taps and the 4 interior outputs keep 3: 2·2 + 4·3 = 16 taps, and in 2-D the count is
#   the product of the two axes, 16² = 256 nonzeros.
#
# (The kernel has no zero entry, so every tap is a stored nonzero.)

# %%
kernel = rng.uniform(0.5, 1.5, (1, 1, 3, 3))
predicted = {0: ((16, 36), 16 * 9), 1: ((36, 36), (2 * 2 + 4 * 3) ** 2)}


def brute_force_taps(n, k, padding):
    """Count the (output, input) pairs that a k × k window joins on an n × n image."""
    n_out = n + 2 * padding - k + 1
    count = 0
    for r in range(n_out):
        for c in range(n_out):
            for i in range(k):
                for j in range(k):
                    if 0 <= r + i - padding < n and 0 <= c + j - padding < n:
                        count += 1
    return (n_out * n_out, n * n), count


for padding, (shape, nnz) in predicted.items():
    W = matrices.conv2d_matrix(kernel, (1, 6, 6), padding=padding)
    brute = brute_force_taps(6, 3, padding)
    print(f"padding {padding}: predicted {shape}, {nnz} nonzeros; conv2d_matrix "
          f"{W.shape}, {W.nnz}; brute force {brute[0]}, {brute[1]}")
    assert W.shape == shape == brute[0]
    assert W.nnz == nnz == brute[1]

# %% [markdown]
# Exercise 2: W column by column
# ------------------------------
# Column j of W is W eⱼ, the output of the image that is 1 at pixel j and 0 elsewhere.
# So ``conv2d`` alone, applied to the C_in·H·W basis images, builds the dense W.  For a
# layer with 2 input and 3 output channels, 3 × 3, stride 2, padding 1, dilation 2 on a
# 7 × 6 image, it equals ``conv2d_matrix``; and the block of W between output channel o
# and input channel c is the matrix of the single kernel ``weight[o, c]``.

# %%
layer = dict(stride=2, padding=1, dilation=2)
weight = rng.standard_normal((3, 2, 3, 3))
shape = (2, 7, 6)
n_in = int(np.prod(shape))
columns = []
for j in range(n_in):
    basis = np.zeros(n_in)
    basis[j] = 1.0
    columns.append(md.conv2d(basis.reshape((1,) + shape), weight, **layer).ravel())
W_probed = np.stack(columns, axis=1)
W = matrices.conv2d_matrix(weight, shape, **layer).toarray()
probe_error = np.abs(W_probed - W).max()
print(f"W probed with conv2d: {W_probed.shape}; max |probed − conv2d_matrix| = "
      f"{probe_error:.1e}")
assert W_probed.shape == W.shape
assert probe_error < 1e-14

rows_per_channel = W.shape[0] // 3
pixels = 7 * 6                                     # columns per input channel
block_error = 0.0
for o in range(3):
    for c in range(2):
        block = W[o * rows_per_channel:(o + 1) * rows_per_channel,
                  c * pixels:(c + 1) * pixels]
        single = matrices.conv2d_matrix(weight[o:o + 1, c:c + 1], (1, 7, 6), **layer)
        block_error = max(block_error, np.abs(block - single.toarray()).max())
print(f"W is a 3 × 2 grid of blocks, one per (output, input) channel pair: "
      f"max |block − W(weight[o, c])| = {block_error:.1e}")
assert block_error == 0.0

# %% [markdown]
# Exercise 3: cross-correlation, not convolution
# ----------------------------------------------
# ``conv2d`` computes y[o] = Σ k[i] x[o + i], a cross-correlation, so it matches
# ``scipy.signal.correlate2d(..., mode="valid")``.  ``scipy.signal.convolve2d`` flips
# the kernel first: it matches only when given the flipped kernel.  Breaking it on
# purpose: the W of the flipped kernel does not compute ``conv2d`` — the check
# ``W x = conv2d(x)`` of the lesson fails (unless the kernel is symmetric under the
# 180° rotation, which is why the lesson's test kernels are not).

# %%
k = rng.standard_normal((3, 3))
image = rng.standard_normal((8, 8))
ours = md.conv2d(image.reshape(1, 1, 8, 8), k.reshape(1, 1, 3, 3))[0, 0]
errors = {
    "correlate2d(x, k)": np.abs(scipy.signal.correlate2d(image, k, "valid") - ours).max(),
    "convolve2d(x, k)": np.abs(scipy.signal.convolve2d(image, k, "valid") - ours).max(),
    "convolve2d(x, flipped k)": np.abs(
        scipy.signal.convolve2d(image, k[::-1, ::-1], "valid") - ours).max()}
for name, error in errors.items():
    print(f"max |conv2d − {name}| = {error:.2e}")
assert errors["correlate2d(x, k)"] < 1e-12
assert errors["convolve2d(x, flipped k)"] < 1e-12
assert errors["convolve2d(x, k)"] > 0.1

W_flipped = matrices.conv2d_matrix(k[::-1, ::-1].reshape(1, 1, 3, 3), (1, 8, 8))
broken = np.abs(W_flipped @ image.ravel() - ours.ravel()).max()
print(f"the W of the flipped kernel: max |W x − conv2d(x)| = {broken:.2f}  (the check fails)")
assert broken > 0.1

# %%
print(f"solutions of lesson 1 ran in {time.perf_counter() - start:.1f} s")
