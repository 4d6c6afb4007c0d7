"""
Lesson 3: When is the transpose an inverse?
===========================================

Lesson 2 showed ``conv_transpose2d(conv2d(x)) = WᵀW x ≠ x``.  Here we find the exact
condition under which the transpose *is* the inverse (WᵀW = I: orthonormal columns),
meet two convolutions that satisfy it — an orthonormal filter bank with stride 2 and an
"all-pass" kernel — read the condition off the Fourier spectrum of the kernel, and put
the transpose beside the best possible way back, the least-squares inverse.
"""

# %%
import time

import numpy as np

import minideconv as md
from minideconv import matrices, plots

plt = plots.setup()
start = time.perf_counter()
rng = np.random.default_rng(0)

rows, cols = np.mgrid[0:10, 0:10]                 # the image of lesson 2
x_img = np.exp(-((rows - 3.0) ** 2 + (cols - 6.0) ** 2) / 6.0)
x_img[6:9, 1:4] = 1.0
x = x_img.reshape(1, 1, 10, 10)

# %% [markdown]
# The condition
# -------------
# The round trip is x ↦ WᵀW x.  It returns every x exactly when WᵀW = I, that is when the
# columns w_p of W are *orthonormal*: ⟨w_p, w_p⟩ = 1 and ⟨w_p, w_q⟩ = 0 for p ≠ q.  With
# the SVD W = U Σ Vᵀ this says: all singular values equal 1 (and W has at least as many
# rows as columns).  Each column of W is one input pixel's "footprint" on the output, so
# orthonormal columns mean: every pixel leaves a footprint of norm 1, and no two
# footprints overlap in a correlated way.
#
# An orthonormal filter bank
# --------------------------
# Stride 2 with 2 × 2 windows: the windows do not overlap, and the four Haar filters
# (average, horizontal, vertical and diagonal difference, each divided by 2) form an
# orthonormal basis of every 2 × 2 window.  Four output channels of 5 × 5 = 100 values for
# 100 pixels: W is a square orthogonal matrix, and the transpose inverts it exactly.
# One filter alone is *not* enough: its W has orthonormal rows, but only 25 of them.

# %%
haar = np.array([[[1, 1], [1, 1]], [[1, -1], [1, -1]],
                 [[1, 1], [-1, -1]], [[1, -1], [-1, 1]]], dtype=float)[:, None] / 2
W_haar = matrices.conv2d_matrix(haar, (1, 10, 10), stride=2)
haar_back = md.conv_transpose2d(md.conv2d(x, haar, stride=2), haar, stride=2)
haar_error = np.abs(haar_back - x).max()
print(f"Haar bank, stride 2: W is {W_haar.shape}, "
      f"‖WᵀW − I‖_F = {matrices.gram_deviation(W_haar).frobenius:.1e}")
print(f"   max |conv_transpose2d(conv2d(x)) − x| = {haar_error:.1e}")
W_one = matrices.conv2d_matrix(haar[:1], (1, 10, 10), stride=2)
one_back = md.conv_transpose2d(md.conv2d(x, haar[:1], stride=2), haar[:1], stride=2)
print(f"the average filter alone: W is {W_one.shape}, ‖WᵀW − I‖_F = "
      f"{matrices.gram_deviation(W_one).frobenius:.2f}, max |WᵀWx − x| = "
      f"{np.abs(one_back - x).max():.2f}")
assert haar_error < 1e-12
assert matrices.gram_deviation(W_haar).frobenius < 1e-12
assert np.abs(one_back - x).max() > 0.1

# %% [markdown]
# The Fourier picture
# -------------------
# With stride 1 and *circular* padding (the image wraps around like a torus), W is
# block-circulant, and the discrete Fourier transform diagonalises it: W multiplies the
# frequency ω of the image by K̂(ω), the DFT of the kernel on the image grid.  Hence
#
#     eigenvalues of WᵀW  =  ``|K̂(ω)|²``,  one per frequency ω,
#
# and WᵀW = I exactly when ``|K̂(ω)| = 1`` at every frequency.  A blur (like the 2 × 2 box)
# keeps low frequencies and damps high ones; where ``K̂(ω) = 0`` the frequency is lost.
# ``matrices.circular_gram_eigenvalues`` computes these eigenvalues from the kernel alone;
# we check them against the eigenvalues of the 100 × 100 matrix WᵀW.

# %%
box = np.full((1, 1, 2, 2), 0.5)
random3 = rng.standard_normal((1, 1, 3, 3)) / 3
spectra = {}
for name, kernel in [("2 × 2 box", box), ("random 3 × 3", random3)]:
    W_circ = matrices.conv2d_matrix(kernel, (1, 10, 10), padding="same",
                                    padding_mode="circular")
    from_matrix = np.linalg.eigvalsh((W_circ.T @ W_circ).toarray())
    from_kernel = matrices.circular_gram_eigenvalues(kernel, (10, 10))
    power = np.abs(np.fft.fft2(kernel[0, 0], s=(10, 10))) ** 2
    spectra[name] = power
    agree = np.abs(from_matrix - from_kernel).max()
    print(f"{name}: eigenvalues of WᵀW in [{from_kernel[0]:.3f}, {from_kernel[-1]:.3f}], "
          f"{np.sum(from_kernel < 1e-12)} zero; |matrix − DFT| = {agree:.1e}")
    assert agree < 1e-10
    assert np.allclose(np.sort(power.ravel()), from_kernel)
# The box filter loses 19 frequencies: the row and the column of ω = 1/2 cycle per pixel,
# the alternating stripes of lesson 2.
assert np.sum(matrices.circular_gram_eigenvalues(box, (10, 10)) < 1e-12) == 19

# %% [markdown]
# An all-pass kernel
# ------------------
# To get ``|K̂(ω)| = 1`` everywhere, take any spectrum, keep its phase and set its modulus
# to 1 (``matrices.allpass_kernel``; the phase is made Hermitian-symmetric so the kernel
# is real).  On a 9 × 9 image with a 9 × 9 kernel, circular padding 4, the convolution is
# an orthogonal matrix: the transpose is the exact inverse.  The price: such a kernel
# spreads every pixel over the whole image — it detects nothing.  Learned filters are
# nowhere near all-pass, which is why the deconvnet's projections are not
# reconstructions.

# %%
allpass = matrices.allpass_kernel((9, 9), seed=0)
weight_ap = allpass.reshape(1, 1, 9, 9)
x9 = x[:, :, :9, :9]
y9 = md.conv2d(x9, weight_ap, padding=4, padding_mode="circular")
x9_back = md.conv_transpose2d(y9, weight_ap, padding=4, padding_mode="circular")
allpass_error = np.abs(x9_back - x9).max()
spectra["all-pass 9 × 9"] = np.abs(np.fft.fft2(allpass)) ** 2
W_ap = matrices.conv2d_matrix(weight_ap, (1, 9, 9), padding=4, padding_mode="circular")
print(f"all-pass: |K̂(ω)|² in [{spectra['all-pass 9 × 9'].min():.6f}, "
      f"{spectra['all-pass 9 × 9'].max():.6f}], ‖WᵀW − I‖_F = "
      f"{matrices.gram_deviation(W_ap).frobenius:.1e}")
print(f"all-pass: max |conv_transpose2d(conv2d(x)) − x| = {allpass_error:.1e}")
assert allpass_error < 1e-12

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.9), layout="constrained")
for ax, (name, power) in zip(axes[:3], spectra.items()):
    plots.spectrum(ax, power, f"{name}: |K̂(ω)|²", vmax=max(power.max(), 1.5))
plots.image(axes[3], allpass, "the all-pass kernel itself", cbar_label="weight")
fig.suptitle("Eigenvalues of WᵀW for circular convolutions = |K̂(ω)|²: "
             "WᵀW = I only where the spectrum is flat at 1")
plots.save_lesson_figure(fig, "03_spectra", thumbnail="03", thumbnail_axes=[axes[0]])

# %% [markdown]
# The transpose beside least squares
# ----------------------------------
# If W is not orthonormal, what is the best way back from y = W x?  The least-squares
# solution x̂ = argmin ‖W x̂ − y‖, computed iteratively with ``scipy.sparse.linalg.lsqr``
# (``matrices.reconstruct`` returns it beside Wᵀy, with both errors ‖x̃ − x‖ / ‖x‖):
#
# - with padding 1, the 2 × 2 box gives 11 × 11 outputs for 10 × 10 inputs: W (121 × 100)
#   has full column rank, so least squares recovers x, while the transpose is far off;
# - without padding (lesson 2's W, 81 × 100) there is a null space: least squares returns
#   the *smallest* x̂ that explains y, and misses exactly the part of x in the null
#   space.  Nothing can do better.

# %%
W_full = matrices.conv2d_matrix(box, (1, 10, 10), padding=1)
full = matrices.reconstruct(W_full, x[0])
W_valid = matrices.conv2d_matrix(box, (1, 10, 10))
valid = matrices.reconstruct(W_valid, x[0])

# The part of x in the null space of W_valid, from the SVD: rows of Vᵀ beyond the rank.
_, _, vt = np.linalg.svd(W_valid.toarray())
null_basis = vt[81:]
null_part = np.linalg.norm(null_basis @ x.ravel()) / np.linalg.norm(x)

print("padding 1 (W 121 × 100, full column rank):")
print(f"   transpose error {full.transpose_error:.3f},  lsqr error {full.lsqr_error:.1e}"
      f"  ({full.lsqr_iterations} iterations)")
print("padding 0 (W 81 × 100, null space of dimension 19):")
print(f"   transpose error {valid.transpose_error:.3f},  lsqr error {valid.lsqr_error:.3f},"
      f"  lsqr residual ‖Wx̂ − y‖/‖y‖ {valid.lsqr_residual:.1e}")
print(f"   the null-space part of x: ‖P_null x‖ / ‖x‖ = {null_part:.3f}")
assert full.lsqr_error < 1e-6 * full.transpose_error      # lsqr ≪ transpose
assert full.transpose_error > 1.0
assert valid.lsqr_residual < 1e-8                          # y is explained exactly ...
assert abs(valid.lsqr_error - null_part) < 1e-6            # ... all that is missing is
                                                           # the null-space part

# %%
fig = plots.image_row({"x": x[0, 0],
                       f"Wᵀy, padding 1\nerror {full.transpose_error:.2f}":
                           full.x_transpose[0],
                       f"least squares, padding 1\nerror {full.lsqr_error:.0e}":
                           full.x_lsqr[0],
                       f"least squares, padding 0\nerror {valid.lsqr_error:.2f}":
                           valid.x_lsqr[0],
                       f"all-pass: Wᵀy (9 × 9)\nerror {allpass_error:.0e}": x9_back[0, 0]},
                      suptitle="Ways back from y = W x (relative errors ‖x̃ − x‖/‖x‖; "
                               "each panel on its own colour scale)",
                      shared=False, panel_size=2.5)
plots.save_lesson_figure(fig, "03_reconstructions")

# %% [markdown]
# What to take away
# -----------------
# - The transpose inverts W exactly when W's columns are orthonormal (WᵀW = I, all
#   singular values 1) — an orthonormal filter bank, or an all-pass kernel with circular
#   padding.  Ordinary filters are neither.
# - For circular convolutions the eigenvalues of WᵀW are the kernel's power spectrum
#   ``|K̂(ω)|²``: the transpose over-weights the frequencies the kernel passes and cannot
#   restore the ones it kills.
# - Least squares is the best way back: exact when W has full column rank, otherwise
#   right up to the null space.  The transpose is something else — the next lesson shows
#   what: the gradient.

# %%
print(f"lesson 3 ran in {time.perf_counter() - start:.1f} s")
