# %% [markdown]
"""
Lesson 2: The transpose is not the inverse
==========================================

"Deconvolution" layers and the deconvnet use the *transposed* convolution to go from
activations back to pixels.  Does it undo the convolution?  We take a 10 × 10 image and
a 2 × 2 kernel, convolve, apply ``conv_transpose2d`` with the same kernel, and compare.
The shape comes back; the values do not.  Then linear algebra on W says why: WᵀW is not
the identity, and W, with 81 rows for 100 unknowns, has a null space — directions the
convolution cannot see and nothing can bring back.
"""

# %%
import time

import numpy as np

import minideconv as md
from minideconv import matrices, plots

plt = plots.setup()
start = time.perf_counter()
# sphinx_gallery_thumbnail_number = 2

# %% [markdown]
# The experiment
# --------------
# The image x is a smooth blob and a bright square (10 × 10).  The kernel is the 2 × 2
# box filter with entries 1/2 (so its norm is 1).  ``conv2d`` without padding gives a
# 9 × 9 output y; ``conv_transpose2d(y)`` with the same kernel gives a 10 × 10 array.

# %%
rows, cols = np.mgrid[0:10, 0:10]
x_img = np.exp(-((rows - 3.0) ** 2 + (cols - 6.0) ** 2) / 6.0)
x_img[6:9, 1:4] = 1.0
x = x_img.reshape(1, 1, 10, 10)
weight = np.full((1, 1, 2, 2), 0.5)

y = md.conv2d(x, weight)
x_back = md.conv_transpose2d(y, weight)
difference = x_back - x
print("x:", x.shape, "→ y = conv2d(x):", y.shape, "→ conv_transpose2d(y):", x_back.shape)
print(f"max |conv_transpose2d(conv2d(x)) − x| = {np.abs(difference).max():.3f}"
      f"  (max |x| = {np.abs(x).max():.3f})")
relative = np.linalg.norm(difference) / np.linalg.norm(x)
print(f"relative error ‖WᵀWx − x‖ / ‖x‖ = {relative:.3f}")

# Not a matter of scale either: the best multiple α·WᵀWx is still wrong.
alpha = np.vdot(x_back, x) / np.vdot(x_back, x_back)
scaled = np.linalg.norm(alpha * x_back - x) / np.linalg.norm(x)
print(f"best rescaling α = {alpha:.3f} still leaves a relative error of {scaled:.3f}")

assert x_back.shape == x.shape                 # the shape comes back ...
assert np.abs(difference).max() > 0.1          # ... the values do not
assert scaled > 0.05

# The same with a random 2 × 2 kernel, and a random image:
rng = np.random.default_rng(0)
w_random = rng.standard_normal((1, 1, 2, 2))
x_random = rng.standard_normal((1, 1, 10, 10))
err_random = np.abs(md.conv_transpose2d(md.conv2d(x_random, w_random), w_random)
                    - x_random).max()
print(f"random kernel, random image: max |WᵀWx − x| = {err_random:.3f}")
assert err_random > 0.1

# %%
# Each panel on its own colour scale: on one shared scale (±4, set by Wᵀy) the input,
# which never exceeds 1, would be an almost white square.
fig = plots.image_row({"x (10 × 10)": x[0, 0], "y = conv2d(x) (9 × 9)": y[0, 0],
                       "Wᵀy = conv_transpose2d(y)": x_back[0, 0],
                       "Wᵀy − x": difference[0, 0]},
                      suptitle="The shape comes back, the values do not "
                               f"(2 × 2 box kernel): max |x| = {np.abs(x).max():.2f}, "
                               f"max |Wᵀy| = {np.abs(x_back).max():.2f}, "
                               f"max |Wᵀy − x| = {np.abs(difference).max():.2f}\n"
                               "(each panel on its own colour scale: read the colour bars)",
                      shared=False, panel_size=2.6)
plots.save_lesson_figure(fig, "02_roundtrip")

# %% [markdown]
# The question's own code, in PyTorch
# -----------------------------------
# The question this course starts from was asked with PyTorch layers: a ``Conv2d`` with
# one 2 × 2 filter, a ``ConvTranspose2d`` given the *same* weight, and a 10 × 10 input
# i.  ``ct(c(i))`` has i's shape but not its values.  Both layers also have a bias
# (PyTorch draws one by default): ``c`` adds b_c to every output, ``ct`` adds its own
# b_ct to every pixel, so
#
#     ct(c(i)) = Wᵀ(W i + b_c·1) + b_ct·1 = conv_transpose2d(conv2d(i, w, b_c), w, b_ct),
#
# which minideconv computes from the same numbers.  With the biases removed it is WᵀW i,
# the round trip above.  (Lesson 4 says why the conv weight fits ``ConvTranspose2d``
# unchanged.)

# %%
try:
    import torch
    from torch import nn
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the nn.Conv2d / nn.ConvTranspose2d snippet "
          "(pip install torch to run it).")
if torch is not None:
    torch.manual_seed(0)
    c = nn.Conv2d(1, 1, 2)                   # 1 channel in, 1 out, 2 × 2 kernel, with bias
    ct = nn.ConvTranspose2d(1, 1, 2)         # its own bias
    ct.weight = c.weight                     # the same weight tensor
    i = torch.rand(1, 1, 10, 10)
    with torch.no_grad():
        back = ct(c(i))
    print("i:", tuple(i.shape), "→ c(i):", tuple(c(i).shape), "→ ct(c(i)):",
          tuple(back.shape))
    print(f"ct(c(i)) == i ? {torch.allclose(back, i)};  "
          f"max |ct(c(i)) − i| = {(back - i).abs().max().item():.3f}")
    w_t = c.weight.detach().double().numpy()            # (1, 1, 2, 2)
    b_c = c.bias.detach().double().numpy()
    b_ct = ct.bias.detach().double().numpy()
    i_np = i.double().numpy()
    ours = md.conv_transpose2d(md.conv2d(i_np, w_t, b_c), w_t, b_ct)
    match = np.abs(ours - back.double().numpy()).max()
    print(f"biases b_c = {b_c[0]:.3f}, b_ct = {b_ct[0]:.3f}; max |ct(c(i)) − minideconv's "
          f"conv_transpose2d(conv2d(i, w, b_c), w, b_ct)| = {match:.1e} (float32)")
    assert back.shape == i.shape and not torch.allclose(back, i)
    assert match < 1e-5
    without = md.conv_transpose2d(md.conv2d(i_np, w_t), w_t)    # the biases removed
    print(f"without the biases: max |WᵀW i − i| = {np.abs(without - i_np).max():.3f}")
    assert np.abs(without - i_np).max() > 0.05

# %% [markdown]
# The matrix picture: WᵀW beside I
# --------------------------------
# ``conv2d`` is y = W x with W of shape 81 × 100 (lesson 1), and ``conv_transpose2d``
# is multiplication by Wᵀ — the same numbers, read column-wise.  So the round trip is
# x ↦ WᵀW x, and it returns x for every x only if WᵀW = I.  Entry (p, q) of WᵀW is the
# inner product of columns p and q of W: how much pixels p and q are seen *together*.
# Neighbouring pixels share windows, so WᵀW has off-diagonal entries, and border pixels
# are in fewer windows, so the diagonal is not constant either.

# %%
W = matrices.conv2d_matrix(weight, (1, 10, 10))
Wt = matrices.conv_transpose2d_matrix(weight, (1, 10, 10))
assert (Wt != W.T).nnz == 0                    # conv_transpose2d is exactly Wᵀ
gram = (W.T @ W).toarray()
identity = np.eye(100)
deviation = matrices.gram_deviation(W)
print("W:", W.shape, " WᵀW:", gram.shape)
print("WᵀW row of pixel (4, 4), reshaped to the image (its 3 × 3 neighbourhood):")
print(gram[44].reshape(10, 10)[3:6, 3:6])
print("diagonal of WᵀW at the corner, an edge and the interior:",
      gram[0, 0], gram[4, 4], gram[44, 44])
print(f"‖WᵀW − I‖_F = {deviation.frobenius:.3f},  ‖WᵀW − I‖₂ = {deviation.spectral:.3f}")
assert deviation.frobenius > 1.0

# %% [markdown]
# The singular values
# -------------------
# Write W = U Σ Vᵀ (singular value decomposition).  Then WᵀW = V Σ² Vᵀ: WᵀW scales the
# direction of the right singular vector v_i by σ_i².  WᵀW = I needs *every* σ_i = 1.
# Here W has only 81 rows, so at most 81 singular values are nonzero; the 100 − 81 = 19
# remaining directions are multiplied by 0.

# %%
sigma = matrices.singular_values(W)
rank = np.linalg.matrix_rank(W.toarray())
print(f"{sigma.size} singular values, from σ_max = {sigma[0]:.3f} to σ_min = "
      f"{sigma[-1]:.4f}")
print(f"rank W = {rank}, so the null space has dimension 100 − {rank} = {100 - rank}")
assert rank == 81 and sigma[0] > 1.5 and sigma[-1] < 0.5

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4.6), layout="constrained",
                         gridspec_kw=dict(width_ratios=[1, 1, 1.15]))
plots.matrix(axes[0], gram, "WᵀW (100 × 100)", xlabel="pixel q", ylabel="pixel p",
             blocks=(10, 10), vmax=1.0)
plots.matrix(axes[1], identity, "I (what a true inverse needs)", xlabel="pixel q",
             ylabel="pixel p", blocks=(10, 10), vmax=1.0)
plots.singular_values(axes[2], sigma, "singular values of W (81 × 100)", label="σ_i")
axes[2].plot(np.arange(rank + 1, 101), np.zeros(100 - rank), "x", color="C3",
             label=f"{100 - rank} directions with σ = 0 (null space)")
axes[2].set_xlim(0, 101)
axes[2].legend(loc="upper right", frameon=False)
fig.suptitle("The round trip is WᵀW, not I: singular values would all have to be 1")
plots.save_lesson_figure(fig, "02_gram_and_singular_values", thumbnail="02",
                         thumbnail_axes=[axes[0]])

# %% [markdown]
# What is lost: the null space
# ----------------------------
# A vector v with W v = 0 is invisible to the convolution: x and x + v give the same y,
# so no method — not the transpose, not least squares — can tell them apart.  For the
# 2 × 2 box filter, every 2 × 2 window of v must sum to 0.  Rows of alternating sign do
# that (each window holds one + row and one − row), so do alternating columns and the
# checkerboard: the finest stripes of the image are exactly what this convolution
# destroys.

# %%
sign = np.where(rows % 2 == 0, 1.0, -1.0)
null_vectors = {"alternating rows": sign,
                "alternating columns": sign.T,
                "checkerboard": sign * sign.T}
for name, v in null_vectors.items():
    print(f"‖W v‖ for v = {name}: {np.linalg.norm(W @ v.ravel()):.1e}")
    assert np.linalg.norm(W @ v.ravel()) < 1e-12

x_plus = x + 0.3 * null_vectors["alternating rows"]
same_y = np.abs(md.conv2d(x_plus, weight) - y).max()
print(f"x and x + 0.3·(alternating rows) differ by 0.3 per pixel, "
      f"their outputs by {same_y:.1e}")
assert same_y < 1e-12

# %%
fig = plots.image_row({"x": x[0, 0], "x + 0.3·v  (v: alternating rows)": x_plus[0, 0],
                       "conv2d(x)": y[0, 0],
                       "conv2d(x + 0.3·v)": md.conv2d(x_plus, weight)[0, 0]},
                      suptitle="Two different images, one output: W v = 0 for the "
                               "alternating stripes", shared=True, panel_size=2.6)
plots.save_lesson_figure(fig, "02_null_space")

# %% [markdown]
# What to take away
# -----------------
# - ``conv_transpose2d`` is multiplication by Wᵀ.  It maps a 9 × 9 output back to the
#   10 × 10 input *shape*; the values it returns are WᵀWx, not x.  PyTorch's
#   ``nn.ConvTranspose2d`` sharing ``nn.Conv2d``'s weight computes the same thing, plus
#   the two layers' biases.
# - WᵀW = I would need all singular values equal to 1.  Here they spread from about
#   0.05 to 2, and 19 of the 100 directions are lost entirely (the null space).
# - What the null space holds depends on the kernel; for the box filter it is the
#   alternating stripes.  The next lesson asks when the transpose *is* the inverse, and
#   what the best possible way back (least squares) recovers.

# %%
print(f"lesson 2 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **The size of the null space.**  For the 2 × 2 box without padding on an n × n
#    image, predict the dimension of the null space of W as a function of n.  (Put
#    v[r, c] = (−1)^(r+c) u[r, c] into "every 2 × 2 window of v sums to 0".)  Write down
#    a basis, and check it for a few n against ``scipy.linalg.null_space``.
# 2. **Images the round trip gets right.**  Find a nonzero image x for which
#    ``conv_transpose2d(conv2d(x))`` is exactly a multiple of x, and say which multiple.
#    What is the best rescaling α of this lesson for that x, and what error does it
#    leave?  Compute σ₁ a second way, matrix-free: ``scipy.sparse.linalg.svds`` on a
#    ``LinearOperator`` that only calls ``conv2d`` and ``conv_transpose2d``.
# 3. **The transpose is a convolution.**  Show that ``conv_transpose2d(y, w)`` is
#    ``conv2d`` of y with the kernel rotated by 180° and padding k − 1.  Then forget the
#    rotation on purpose: for which kernel does nobody notice, and which check catches
#    it for a random kernel?
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/02_transpose_is_not_inverse.py``.
