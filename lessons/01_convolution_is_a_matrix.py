# %% [markdown]
"""
Lesson 1: Convolution is a matrix
=================================

A convolution layer is linear in its input: ``conv2d(a·x + b·z) = a·conv2d(x) +
b·conv2d(z)``.  So, for a fixed input size, it is *a matrix* W, and ``y = W x`` with
x and y flattened.  This lesson builds that matrix with ``minideconv.matrices``, first for
a 1-D signal and then for a small image, draws it, and checks that ``W @ x`` gives
exactly what ``minideconv.conv2d`` computes.  Every later lesson reasons with W.
"""

# %%
import time

import numpy as np

import minideconv as md
from minideconv import matrices, plots

plt = plots.setup()
start = time.perf_counter()
# sphinx_gallery_thumbnail_number = 2
rng = np.random.default_rng(0)

# %% [markdown]
# One dimension first
# -------------------
# A 1-D convolution is ``conv2d`` on an image of height 1.  With the kernel
# k = (k0, k1, k2) and no padding, output o is
#
#     y[o] = k0·x[o] + k1·x[o+1] + k2·x[o+2]
#
# (PyTorch's convention: a cross-correlation, the kernel is not flipped).  Row o of W
# therefore holds the kernel, shifted o places to the right: W is *banded*, and every
# diagonal is constant (a Toeplitz matrix).  An input of length 8 gives 8 − 3 + 1 = 6
# outputs, so W is 6 × 8.

# %%
kernel_1d = np.array([1.0, 2.0, -1.0])
weight_1d = kernel_1d.reshape(1, 1, 1, 3)          # (C_out, C_in, kh, kw)
W1 = matrices.conv2d_matrix(weight_1d, input_shape=(1, 1, 8))
print("1-D kernel:", kernel_1d)
print("W shape (outputs × inputs):", W1.shape)
print(W1.toarray())

x1 = rng.standard_normal(8)
y_matrix = W1 @ x1
y_conv = md.conv2d(x1.reshape(1, 1, 1, 8), weight_1d).ravel()
error_1d = np.abs(y_matrix - y_conv).max()
print(f"max |W x − conv2d(x)| (1-D) = {error_1d:.1e}")
assert W1.shape == (6, 8)
assert error_1d < 1e-12

# %%
fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
plots.matrix(ax, W1, "1-D convolution matrix W (kernel 1, 2, −1)",
             xlabel="input position (column)", ylabel="output position (row)",
             annotate=True, cbar_label="entry of W")
ax.set_xticks(range(8))
ax.set_yticks(range(6))
plots.save_lesson_figure(fig, "01_conv_matrix_1d")

# %% [markdown]
# A small image: the doubly-banded matrix
# ---------------------------------------
# For a 5 × 5 image, a 3 × 3 kernel and padding 1, the output is 5 × 5 as well, and W is
# 25 × 25 (pixels flattened row by row: pixel (r, c) is entry 5r + c).  Output pixel
# (r, c) reads the input rows r−1, r, r+1, each through one kernel row.  So W is made of
# 5 × 5 *blocks*: block (r, r′) is the 1-D matrix of kernel row r′ − r + 1, and only the
# three block diagonals are nonzero.  The blocks are banded themselves: W is
# *doubly banded* (block Toeplitz with Toeplitz blocks).  At the border the taps that
# fall in the zero padding are simply missing.

# %%
kernel_2d = np.array([[1.0, 2.0, 3.0],
                      [4.0, 5.0, 6.0],
                      [-1.0, -2.0, -3.0]])
weight_2d = kernel_2d.reshape(1, 1, 3, 3)
W2 = matrices.conv2d_matrix(weight_2d, input_shape=(1, 5, 5), padding=1)
print("2-D: W shape", W2.shape, f"— {W2.nnz} nonzeros out of {W2.shape[0] * W2.shape[1]}"
      f" ({W2.nnz / (W2.shape[0] * W2.shape[1]):.0%})")

x2 = rng.standard_normal((1, 1, 5, 5))
error_2d = np.abs(W2 @ x2.ravel() - md.conv2d(x2, weight_2d, padding=1).ravel()).max()
print(f"max |W x − conv2d(x)| (5×5 image) = {error_2d:.1e}")
assert error_2d < 1e-12

# Block (r, r′) of W is the 1-D matrix of one kernel row: check the diagonal block.
dense_W2 = W2.toarray()
diagonal_block = dense_W2[5:10, 5:10]
row_matrix = matrices.conv2d_matrix(kernel_2d[1].reshape(1, 1, 1, 3), (1, 1, 5),
                                    padding=(0, 1)).toarray()
assert np.array_equal(diagonal_block, row_matrix)
print("block (1, 1) of W = the 1-D matrix of the middle kernel row (4, 5, 6):")
print(diagonal_block)

# %%
fig, axes = plt.subplots(1, 2, figsize=(9.2, 6.0), layout="constrained",
                         gridspec_kw=dict(width_ratios=[1, 3]))
plots.image(axes[0], kernel_2d, "the 3 × 3 kernel", annotate=True, fmt="{:g}", cbar=False,
            vmax=6)
plots.matrix(axes[1], W2, "its 25 × 25 matrix W (5 × 5 image, padding 1)",
             xlabel="input pixel 5r + c", ylabel="output pixel 5r + c", blocks=(5, 5),
             annotate=True, cbar_label="entry of W", vmax=6)
axes[1].set_xticks(range(0, 25, 5))
axes[1].set_yticks(range(0, 25, 5))
fig.suptitle("A 2-D convolution is a doubly-banded matrix:\n5 × 5 blocks, three block "
             "diagonals, each block banded")
plots.save_lesson_figure(fig, "01_conv_matrix_2d", thumbnail="01", thumbnail_axes=[axes[1]])

# %% [markdown]
# The same holds for real layers
# ------------------------------
# Channels, stride and dilation only change which entries are filled: with C_in input
# channels and C_out filters, W has C_out·H_out·W_out rows and C_in·H·W columns.  Such a
# W is huge but almost empty, which is why ``minideconv.matrices`` stores it sparse
# (scipy CSR).  Here is a layer of a small CNN: 3 → 16 channels, 3 × 3, stride 2,
# padding 1, on a 32 × 32 colour image.

# %%
weight = rng.standard_normal((16, 3, 3, 3))
x = rng.standard_normal((1, 3, 32, 32))
W = matrices.conv2d_matrix(weight, (3, 32, 32), stride=2, padding=1)
y = md.conv2d(x, weight, stride=2, padding=1)
error_layer = np.abs(W @ x.ravel() - y.ravel()).max() / np.abs(y).max()
print(f"layer 3→16, 3×3/2: W is {W.shape[0]} × {W.shape[1]}, {W.nnz} nonzeros "
      f"({W.nnz / (W.shape[0] * W.shape[1]):.2%} of the entries)")
print(f"relative max |W x − conv2d(x)| = {error_layer:.1e}")
assert error_layer < 1e-12

# %% [markdown]
# What to take away
# -----------------
# - For a fixed input size, a convolution *is* a matrix W; ``conv2d`` is a fast way of
#   computing ``W @ x`` without ever storing W.
# - W is banded (1-D) or doubly banded (2-D): every row holds the kernel, shifted.
# - Everything linear algebra says about W — its transpose, its rank, its singular
#   values — says something about the layer.  The next lesson asks what its transpose
#   does.

# %%
print(f"lesson 1 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **Predict, then count.**  A 3 × 3 kernel with no zero entry, on a 6 × 6 image:
#    predict the shape of W and its number of nonzeros, with padding 0 and with
#    padding 1 (count the taps along one axis first).  Check with
#    ``matrices.conv2d_matrix(...).shape`` and ``.nnz``.
# 2. **W without** ``matrices``.  Column j of W is W eⱼ, the output of the image that is
#    1 at pixel j and 0 elsewhere.  Build the dense W of a layer with 2 input and 3
#    output channels (3 × 3, stride 2, padding 1, dilation 2, on a 7 × 6 image) by
#    calling ``md.conv2d`` on every basis image, compare it with ``conv2d_matrix``, and
#    find in it the block that belongs to the single kernel ``weight[o, c]``.
# 3. **Correlation or convolution?**  Which of ``scipy.signal.correlate2d`` and
#    ``scipy.signal.convolve2d`` (``mode="valid"``) agrees with ``md.conv2d``?  Predict,
#    check, and make the other one agree by changing the kernel.  Then break the lesson
#    on purpose: build W from the changed kernel and see which of its checks fails.
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/01_convolution_is_a_matrix.py``.
