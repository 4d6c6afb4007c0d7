# %% [markdown]
"""
Lesson 3: When is the transpose an inverse?
===========================================

Lesson 2 showed ``conv_transpose2d(conv2d(x)) = WᵀW x ≠ x``.  Here we find the exact
condition under which the transpose *is* the inverse (WᵀW = I: orthonormal columns),
meet two convolutions that satisfy it — an orthonormal filter bank with stride 2 and an
"all-pass" kernel — read the condition off the Fourier spectrum of the kernel (for one
channel and for several), measure how far a trained first layer is from it, and put the
transpose beside the best possible way back, the least-squares inverse.
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
# With stride 1, *circular* padding (the image wraps around like a torus) and an output
# of the input's size, W is *block-circulant with circulant blocks*: for one channel on
# an H-row image, W is an H × H grid of blocks, one per pair (output row, input row);
# that grid is circulant (block row r + 1 is block row r shifted by one block, wrapping
# around), and every block is itself circulant.  The 2-D discrete Fourier transform
# diagonalises every such matrix.  Which diagonal?  minideconv computes, like PyTorch, a
# *cross-correlation*: with padding p on the top and the left,
#
#     y[n] = Σ_j k[j] · x[n + j − p]        (indices modulo the image size N)
#
# Write K̂(ω) = Σ_j k[j] e^(−2πi ω·j/N) for the DFT of the kernel placed at the top-left
# corner of the N-grid (``np.fft.fft2(k, s=N)``), and substitute m = n + j − p:
#
#     ŷ(ω) = conj(K̂(ω)) · e^(−2πi ω·p/N) · x̂(ω),     ω·p/N = ω_y p_h / H + ω_x p_w / W.
#
# So W multiplies frequency ω by the *conjugate* of K̂(ω) (a cross-correlation is a
# convolution with the flipped kernel) times a phase (the padding shifts the output by
# p).  K̂(ω) alone would be right for a true convolution without padding.  Neither the
# conjugate nor the phase changes the modulus, hence
#
#     eigenvalues of WᵀW  =  ``|K̂(ω)|²``,  one per frequency ω,
#
# and WᵀW = I exactly when ``|K̂(ω)| = 1`` at every frequency.  A blur (like the 2 × 2 box)
# keeps low frequencies and damps high ones; where ``K̂(ω) = 0`` the frequency is lost.
# We check the relation on a random 3 × 3 kernel (padding 1), and the eigenvalues —
# ``matrices.circular_gram_eigenvalues`` computes them from the kernel alone — against
# the eigenvalues of the 100 × 100 matrix WᵀW.

# %%
random3 = rng.standard_normal((1, 1, 3, 3)) / 3
x_random = rng.standard_normal((1, 1, 10, 10))
y_fourier = np.fft.fft2(md.conv2d(x_random, random3, padding=1,
                                  padding_mode="circular")[0, 0])
k_hat = np.fft.fft2(random3[0, 0], s=(10, 10))
x_hat = np.fft.fft2(x_random[0, 0])
omega_y, omega_x = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
phase = np.exp(-2j * np.pi * (omega_y * 1 + omega_x * 1) / 10)      # p_h = p_w = 1
exact = np.abs(y_fourier - np.conj(k_hat) * phase * x_hat).max()
naive = np.abs(y_fourier - k_hat * x_hat).max()
print(f"max |ŷ − conj(K̂)·phase·x̂| = {exact:.1e}   (max |ŷ| = {np.abs(y_fourier).max():.1f})")
print(f"max |ŷ − K̂·x̂|             = {naive:.1f}   (K̂ without conjugate and phase: wrong)")
assert exact < 1e-10 and naive > 1.0

# %%
box = np.full((1, 1, 2, 2), 0.5)
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
# an orthogonal matrix: the transpose is the exact inverse.
#
# All-pass does not mean "spread out".  The delta kernel (the identity) and every
# circular shift of it are all-pass as well — one tap of 1, ``|K̂(ω)| = 1`` — and their
# transposes undo them trivially.  A random phase, as here, spreads the kernel over the
# whole 9 × 9 grid instead.  What every all-pass filter shares is that it keeps each
# frequency's energy, so ‖W x‖ = ‖x‖ for *every* x: the filter as a whole cannot respond
# more strongly to one input pattern than to another of the same norm.  It moves and
# re-mixes the image (through the phases); it does not prefer.  Preferring some patterns
# — a non-flat spectrum — is what a feature detector is for.

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

# A shifted delta is all-pass too; the two kernels differ in how they spread, not in
# their spectra.  And both keep the norm of every input: ‖W z‖ / ‖z‖ for random z.
delta = np.zeros((9, 9))
delta[2, 7] = 1.0                                      # a delta, shifted
z = rng.standard_normal((20, 1, 9, 9))
for name, k in [("shifted delta", delta), ("random-phase all-pass", allpass)]:
    modulus = np.abs(np.fft.fft2(k))
    ratios = (np.linalg.norm(md.conv2d(z, k[None, None], padding=4, padding_mode="circular")
                             .reshape(20, -1), axis=1) / np.linalg.norm(z.reshape(20, -1),
                                                                        axis=1))
    print(f"{name:22s}: |K̂(ω)| in [{modulus.min():.6f}, {modulus.max():.6f}]; largest "
          f"tap holds {np.max(k ** 2) / np.sum(k ** 2):.0%} of the kernel's energy; "
          f"‖Wz‖/‖z‖ over 20 random z in [{ratios.min():.6f}, {ratios.max():.6f}]")
    assert np.allclose(modulus, 1) and np.allclose(ratios, 1)

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.9), layout="constrained")
for ax, (name, power) in zip(axes[:3], spectra.items()):
    plots.spectrum(ax, power, f"{name}: |K̂(ω)|²", vmax=max(power.max(), 1.5))
plots.image(axes[3], allpass, "the all-pass kernel itself", cbar_label="weight")
fig.suptitle("Eigenvalues of WᵀW for circular convolutions = |K̂(ω)|²: "
             "WᵀW = I only where the spectrum is flat at 1")
plots.save_lesson_figure(fig, "03_spectra", thumbnail="03", thumbnail_axes=[axes[0]])

# %% [markdown]
# Several channels
# ----------------
# With C_in input and C_out output channels the same substitution gives, frequency by
# frequency,
#
#     ŷ(ω) = e^(−2πi ω·p/N) · conj(K̂(ω)) · x̂(ω),
#
# where x̂(ω) holds the C_in input channels' DFTs at ω, ŷ(ω) the C_out outputs', and K̂(ω)
# is the C_out × C_in matrix of the kernels' DFTs K̂[o, c](ω).  So WᵀW acts on frequency
# ω as the C_in × C_in matrix conj(K̂(ω)ᴴ K̂(ω)), and
#
#     WᵀW = I   ⇔   K̂(ω)ᴴ K̂(ω) = I (C_in × C_in)   at every frequency ω:
#
# every K̂(ω) must have orthonormal columns, which needs C_out ≥ C_in.  (One channel:
# ``|K̂(ω)|² = 1``.)  The eigenvalues of WᵀW are the squared singular values of the
# K̂(ω), which is what ``circular_gram_eigenvalues`` computes.  To build such a bank,
# draw a random 4 × 3 × 9 × 9 kernel and replace every K̂(ω) by the nearest matrix with
# orthonormal columns, its polar factor U Vᴴ (from the SVD K̂ = U Σ Vᴴ).  The polar factor
# of conj(K̂) is the conjugate of K̂'s, so the spectrum stays Hermitian and the kernel
# real.

# %%
bank_hat = np.fft.fft2(rng.standard_normal((4, 3, 9, 9)))            # (C_out, C_in, ω)
blocks = np.moveaxis(bank_hat, (0, 1), (-2, -1))                      # (ω_y, ω_x, 4, 3)
u, _, vh = np.linalg.svd(blocks, full_matrices=False)
bank_hat = np.moveaxis(u @ vh, (-2, -1), (0, 1))                      # polar factors
bank = np.fft.ifft2(bank_hat)
assert np.abs(bank.imag).max() < 1e-12
bank = bank.real
columns = np.moveaxis(np.fft.fft2(bank), (0, 1), (-2, -1))
orthonormal = np.abs(np.conj(np.swapaxes(columns, -1, -2)) @ columns - np.eye(3)).max()
W_bank = matrices.conv2d_matrix(bank, (3, 9, 9), padding=4, padding_mode="circular")
x_bank = rng.standard_normal((1, 3, 9, 9))
bank_back = md.conv_transpose2d(md.conv2d(x_bank, bank, padding=4, padding_mode="circular"),
                                bank, padding=4, padding_mode="circular")
print(f"4 × 3 bank: max |K̂(ω)ᴴK̂(ω) − I| = {orthonormal:.1e}; W is {W_bank.shape}, "
      f"‖WᵀW − I‖_F = {matrices.gram_deviation(W_bank).frobenius:.1e}; "
      f"max |WᵀWx − x| = {np.abs(bank_back - x_bank).max():.1e}")
assert orthonormal < 1e-12 and np.abs(bank_back - x_bank).max() < 1e-12

# %% [markdown]
# A learned layer is far from all-pass
# ------------------------------------
# Take the first layer of the network trained for lesson 7: 16 filters of 3 × 5 × 5, no
# padding, on 32 × 32 colour images.  Even "all-pass up to a scale" (WᵀW = c·I) would
# need all singular values of W to be equal: a condition number σ_max / σ_min of 1.  We
# measure it for the layer as the network uses it — W has 16·28·28 = 12544 rows and
# 3 · 32 · 32 = 3072 columns; the extreme eigenvalues of WᵀW come from
# ``scipy.sparse.linalg.eigsh``, the smallest by shift-invert — and for the same filters
# with circular padding, from the K̂(ω) alone.

# %%
import scipy.sparse.linalg as spla

from minideconv.data import load_model

w0 = load_model().layers[0].weight.astype(np.float64)                 # (16, 3, 5, 5)
W0 = matrices.conv2d_matrix(w0, (3, 32, 32))
gram0 = (W0.T @ W0).tocsc()
start_vector = np.ones(gram0.shape[0])
lowest = spla.eigsh(gram0, k=1, sigma=0, which="LM", v0=start_vector,
                    return_eigenvectors=False)[0]
highest = spla.eigsh(gram0, k=1, which="LA", v0=start_vector, return_eigenvectors=False)[0]
condition = np.sqrt(highest / lowest)
circular0 = matrices.circular_gram_eigenvalues(w0, (32, 32))
condition_circular = np.sqrt(circular0[-1] / circular0[0])
print(f"layer 0 as used (W {W0.shape[0]} × {W0.shape[1]}): σ_max = {np.sqrt(highest):.2f}, "
      f"σ_min = {np.sqrt(lowest):.4f}, condition number σ_max/σ_min = {condition:.0f}")
print(f"   so WᵀW stretches its strongest direction {highest / lowest:,.0f} times more "
      f"than its weakest (full column rank: σ_min > 0)")
print(f"the same filters, circular padding on 32 × 32: condition number "
      f"{condition_circular:.1f} (all-pass: 1)")
assert condition > 50 and condition_circular > 10 and lowest > 0

# %%
fig, ax = plt.subplots(figsize=(8.4, 4.6), layout="constrained")
sigma_layer0 = np.sqrt(circular0[::-1])
sigma_bank = np.sqrt(matrices.circular_gram_eigenvalues(bank, (9, 9))[::-1])
ax.semilogy(np.arange(1, sigma_layer0.size + 1) / sigma_layer0.size,
            sigma_layer0 / sigma_layer0[0], color="C0",
            label=f"layer 0 of lesson 7, circular (3072 values, σ_max/σ_min = "
                  f"{condition_circular:.0f})")
ax.semilogy(np.arange(1, sigma_bank.size + 1) / sigma_bank.size,
            sigma_bank / sigma_bank[0], color="C2", linewidth=2.5,
            label=f"4 × 3 bank with K̂ᴴK̂ = I ({sigma_bank.size} values, all 1)")
ax.axhline(1 / condition, color="C3", linestyle="--", linewidth=1.2,
           label=f"layer 0 as used (no padding): σ_min/σ_max = 1/{condition:.0f}")
ax.set_xlabel("fraction of the singular values (sorted, largest first)")
ax.set_ylabel("σ / σ_max (log scale)")
ax.set_ylim(0.4 / condition, 12)
ax.grid(alpha=0.3, which="both")
ax.legend(loc="upper right", frameon=True, framealpha=0.9)
ax.set_title("Singular values of W, divided by the largest: flat at 1 for the orthonormal\n"
             f"bank; the learned first layer spreads over a factor of {condition_circular:.0f}"
             f" (circular) to {condition:.0f} (as used)")
plots.save_lesson_figure(fig, "03_learned_layer")

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
print(f"   the null-space part of x: ‖P_null x‖ / ‖x‖ = {null_part:.3f} of the norm, "
      f"‖P_null x‖² / ‖x‖² = {null_part ** 2:.1%} of the energy")
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
#   padding (a delta and its shifts included).  The first layer of lesson 7's trained
#   network is neither: its condition number is about 163.
# - A circular convolution multiplies frequency ω by conj(K̂(ω)) times a phase set by the
#   padding, so the eigenvalues of WᵀW are the kernel's power spectrum ``|K̂(ω)|²`` (for
#   several channels, the squared singular values of the C_out × C_in matrices K̂(ω);
#   WᵀW = I ⇔ K̂(ω)ᴴK̂(ω) = I).  The transpose over-weights the frequencies the kernel
#   passes and cannot restore the ones it kills.
# - Least squares is the best way back: exact when W has full column rank, otherwise
#   right up to the null space.  The transpose is something else — the next lesson shows
#   what: the gradient.

# %%
print(f"lesson 3 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **A spectrum by hand.**  Predict the eigenvalues of WᵀW for the 1 × 2 kernel
#    [1, −1] with circular padding on an 8 × 8 image: their values, how many are 0, and
#    which images the convolution loses.  Check against
#    ``matrices.circular_gram_eigenvalues`` and the dense eigenvalues of WᵀW.
# 2. **An orthonormal bank of your own, then break it.**  Turn a random orthogonal
#    4 × 4 matrix (``numpy.linalg.qr`` of a random one) into four 2 × 2 filters, and
#    check that with stride 2 the transpose inverts the convolution.  Multiply one
#    filter by 1.1: predict ‖WᵀW − I‖_F before computing it, watch the transpose fail,
#    and check that least squares still recovers x.
# 3. **The condition number from the kernel alone.**  For a random 3 × 3 kernel with
#    circular padding on 10 × 10, compute the condition number σ_max / σ_min of W from
#    a 10 × 10 FFT of the kernel, without building W, and compare it with
#    ``numpy.linalg.cond`` of the dense W.  What is it for the 2 × 2 box?
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/03_when_is_it_an_inverse.py``.
