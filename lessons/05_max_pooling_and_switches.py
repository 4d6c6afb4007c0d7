# %% [markdown]
"""
Lesson 5: Max-pooling and its switches
======================================

Max-pooling is not linear — which input wins depends on the input.  But once the winners
are known it is: Zeiler & Fergus record them as *switches* s, and then pooling is a 0/1
selection matrix P(s), y = P(s) x.  The deconvnet's "unpooling" is its transpose P(s)ᵀ,
which puts every value back at its switch.  This lesson builds P(s), checks that unpooling
is P(s)ᵀ and the gradient, shows that pool-then-unpool is not the identity, and looks at
overlapping windows (3 × 3, stride 2), where several outputs share one switch — and where
PyTorch's ``max_unpool2d`` keeps only one of them instead of adding them up.
"""

# %%
import time

import numpy as np

import minideconv as md
from minideconv import matrices, plots

plt = plots.setup()
start = time.perf_counter()
# sphinx_gallery_thumbnail_number = 2
rng = np.random.default_rng(3)

# %% [markdown]
# Switches and the selection matrix P(s)
# --------------------------------------
# A 4 × 4 image, 2 × 2 windows, stride 2: four outputs.  ``max_pool2d`` returns the maxima
# y and the switches s, the flat index h·W + w of each maximum in its plane (PyTorch's
# convention).  P(s) has one row per output and a single 1 in each row, in the column of
# its switch, so that y = P(s) x.

# %%
x = rng.permutation(16).astype(float).reshape(1, 1, 4, 4)
y, switches = md.max_pool2d(x, kernel_size=2, stride=2)
P = matrices.max_pool2d_matrix(switches[0], input_shape=(1, 4, 4))
print("x =\n", x[0, 0])
print("y = max_pool2d(x) =\n", y[0, 0])
print("switches s (flat index h·4 + w) =\n", switches[0, 0])
print("P(s), 4 × 16:\n", P.toarray().astype(int))
assert np.array_equal(P @ x.ravel(), y.ravel())

# %% [markdown]
# Unpooling is P(s)ᵀ, and it is the gradient
# ------------------------------------------
# P(s)ᵀ y puts every pooled value back at its switch and zeros everywhere else:
# ``max_unpool2d``.  For a fixed s the pooling is the linear map P(s), so the same P(s)ᵀ
# is also the gradient of max-pooling: only the winner of each window receives the
# gradient (checked against PyTorch's autograd below, when it is installed).
#
# ``max_unpool2d`` takes the pooling's ``kernel_size``, ``stride`` and ``padding``, as
# PyTorch's does.  A switch is a flat index h·W + w, which means something only for the
# input width W and the window it came from, so every switch is checked to lie inside
# its own pooling window before anything is written.
#
# Pool then unpool keeps 4 of the 16 values: P(s)ᵀP(s) is a diagonal 0/1 matrix, not I.
# The other way round, on the pooled side, P(s)P(s)ᵀ = I: no two outputs share a switch
# when the windows do not overlap, so reading the unpooled array back *at the same
# switches* returns y.  That is a statement about the linear map with the switches held
# fixed — not about running ``max_pool2d`` again, which recomputes the switches from
# the values it sees.  The unpooled array is zero everywhere except at the switches, so
# a negative value loses its window to those zeros: y = (−1, −3, −9, −11) unpools and
# re-pools to (0, 0, 0, 0).  Only when no value of y is negative (as after a ReLU) does
# ``max_pool2d(max_unpool2d(y))`` return y.

# %%
unpooled = md.max_unpool2d(y, switches, kernel_size=2, stride=2, output_size=(4, 4))
assert np.array_equal(unpooled.ravel(), P.T @ y.ravel())
pool_unpool = unpooled                                  # = P(s)ᵀ P(s) x
kept = np.count_nonzero(pool_unpool)
print("max_unpool2d(max_pool2d(x)) = P(s)ᵀP(s) x =\n", pool_unpool[0, 0])
print(f"pool then unpool keeps {kept} of {x.size} values; "
      f"max |P(s)ᵀP(s)x − x| = {np.abs(pool_unpool - x).max():g}")
print("P(s) P(s)ᵀ =\n", (P @ P.T).toarray())
assert kept == 4 and not np.array_equal(pool_unpool, x)   # pool-then-unpool ≠ identity
assert np.array_equal((P @ P.T).toarray(), np.eye(4))      # P(s)P(s)ᵀ = I, switches fixed

# ... but re-pooling recomputes the switches: negative values lose to the zeros.
negative = np.array([-1.0, -3.0, -9.0, -11.0]).reshape(1, 1, 2, 2)
spread = md.max_unpool2d(negative, switches, kernel_size=2, stride=2, output_size=(4, 4))
repooled, new_switches = md.max_pool2d(spread, kernel_size=2, stride=2)
print("y =", negative.ravel(), "→ P(s)P(s)ᵀ y =", (P @ (P.T @ negative.ravel())),
      "(switches fixed)")
print("   max_pool2d(max_unpool2d(y)) =", repooled.ravel(), " with new switches",
      new_switches.ravel(), "instead of", switches.ravel())
assert np.array_equal(P @ (P.T @ negative.ravel()), negative.ravel())
assert np.array_equal(repooled.ravel(), np.zeros(4))
nonnegative = md.max_pool2d(md.max_unpool2d(y, switches, kernel_size=2, stride=2,
                                            output_size=(4, 4)), kernel_size=2, stride=2)[0]
assert np.array_equal(nonnegative, y)                      # y ≥ 0: the values come back

# %%
fig, axes = plt.subplot_mosaic([["x", "y", "u"], ["P", "P", "P"]], figsize=(11, 7.6),
                               layout="constrained",
                               gridspec_kw=dict(height_ratios=[1.25, 1]))
plots.image(axes["x"], x[0, 0], "x with its 2 × 2 windows\n(circled: the switches)",
            annotate=True, fmt="{:g}", cbar=False)
for r0 in (0, 2):
    for c0 in (0, 2):
        plots.draw_window_box(axes["x"], (r0, r0 + 2, c0, c0 + 2), color="black",
                              linewidth=2.5)
for s in switches.ravel():
    axes["x"].scatter(s % 4, s // 4, s=900, facecolors="none", edgecolors="C0",
                      linewidths=2.5)
plots.image(axes["y"], y[0, 0], "y = P(s) x = max_pool2d(x)", annotate=True,
            fmt="{:g}", cbar=False, vmax=15)
plots.image(axes["u"], pool_unpool[0, 0],
            "P(s)ᵀ y = max_unpool2d(y)\n(≠ x: 12 values lost)", annotate=True,
            fmt="{:g}", cbar=False, vmax=15)
plots.matrix(axes["P"], P, "P(s): one 1 per row, in the column of the switch",
             xlabel="input pixel h·4 + w", ylabel="output", cbar=False,
             annotate=True, fmt="{:g}")
axes["P"].set_xticks(range(16))
axes["P"].set_yticks(range(4))
fig.suptitle("Max-pooling with switches is a selection matrix; unpooling is its transpose")
plots.save_lesson_figure(fig, "05_switches")

# %% [markdown]
# Overlapping windows: several outputs share a switch
# ---------------------------------------------------
# Many networks (AlexNet, ZFNet) pool with 3 × 3 windows and stride 2, so neighbouring
# windows overlap and one input pixel can be the maximum of several windows.  Take a
# 5 × 5 image whose centre is the largest value: it wins all four windows, so all four
# switches are 12 (= 2·5 + 2), and P(s) has four 1s in column 12.
#
# Send the signal r = (1, 2, 3, 4) back.  The transpose adds what every output sends to
# its switch, so the centre receives 1 + 2 + 3 + 4 = 10 — and that is also the gradient.
# PyTorch's ``max_unpool2d`` *assigns* instead of adding: the four outputs write to the
# same pixel and one write survives.  Which one is not specified: it is not always the
# last output in reading order (4), and it can change with the number of threads
# (lesson 8 calls it 50 times with one and with two threads and prints what it sees).
# Either way it is not the transpose when windows overlap.  (PyTorch's own max-pool
# backward does add up, as autograd shows.)

# %%
x5 = rng.uniform(0, 1, (1, 1, 5, 5))
x5[0, 0, 2, 2] = 2.0
y5, s5 = md.max_pool2d(x5, kernel_size=3, stride=2)
print("switches of the four 3 × 3 / 2 windows:", s5.ravel())
assert np.all(s5 == 12)
P5 = matrices.max_pool2d_matrix(s5[0], (1, 5, 5))
r = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
ours = md.max_unpool2d(r, s5, kernel_size=3, stride=2, output_size=(5, 5))
print(f"true transpose P(s)ᵀ r at the centre: {ours[0, 0, 2, 2]:g}")
print("P(s) P(s)ᵀ (now ≠ I: the rows share a column) =\n", (P5 @ P5.T).toarray())
assert ours[0, 0, 2, 2] == 10.0
assert np.array_equal(ours.ravel(), P5.T @ r.ravel())

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison with torch.max_unpool2d "
          "(pip install torch to run it).")
if torch is not None:
    theirs = F.max_unpool2d(torch.tensor(r), torch.tensor(s5), kernel_size=3, stride=2,
                            output_size=(5, 5)).numpy()
    xt = torch.tensor(x5, requires_grad=True)
    (grad,) = torch.autograd.grad((F.max_pool2d(xt, 3, 2) * torch.tensor(r)).sum(), xt)
    print(f"torch {torch.__version__} max_unpool2d at the centre "
          f"({torch.get_num_threads()} thread(s)): {theirs[0, 0, 2, 2]:g}  (one of r's "
          f"values, not their sum)")
    print(f"torch autograd of max_pool2d at the centre: {grad[0, 0, 2, 2].item():g}")
    assert theirs[0, 0, 2, 2] != 10.0 and theirs[0, 0, 2, 2] in r
    assert grad[0, 0, 2, 2].item() == 10.0
    assert np.array_equal(grad.numpy(), ours)

# How common is a shared switch?  Random input, 3 × 3 windows, stride 2:
noise = rng.standard_normal((1, 1, 65, 65))
_, s_noise = md.max_pool2d(noise, kernel_size=3, stride=2)
values, counts = np.unique(s_noise, return_counts=True)
shared = np.isin(s_noise, values[counts > 1]).mean()
print(f"random 65 × 65 input, 3 × 3 / 2 pooling: {shared:.1%} of the outputs share "
      f"their switch with another output")
assert shared > 0.3

# %%
fig, axes = plt.subplots(1, 4 if torch is not None else 3, figsize=(14, 4.2),
                         layout="constrained")
plots.image(axes[0], x5[0, 0], "x: the centre wins\nall four 3 × 3 windows",
            annotate=True, fmt="{:.1f}", cbar=False)
for k, (r0, c0) in enumerate([(0, 0), (0, 2), (2, 0), (2, 2)]):
    plots.draw_window_box(axes[0], (r0, r0 + 3, c0, c0 + 3), color=f"C{k + 1}",
                          linewidth=2.5, inset=0.06 + 0.05 * k)
plots.image(axes[1], r[0, 0], "signal r sent back", annotate=True,
            fmt="{:g}", cbar=False, vmax=10)
plots.image(axes[2], ours[0, 0], "true transpose P(s)ᵀ r\n(minideconv, = autograd)",
            annotate=True, fmt="{:g}", cbar=False, vmax=10)
if torch is not None:
    plots.image(axes[3], theirs[0, 0], f"torch.max_unpool2d: one of the four\n"
                f"writes survives (here {theirs[0, 0, 2, 2]:g}), not their sum",
                annotate=True, fmt="{:g}", cbar=False, vmax=10)
fig.suptitle("Overlapping windows: unpooling must add (1 + 2 + 3 + 4 = 10), "
             "not overwrite")
plots.save_lesson_figure(fig, "05_overlapping_windows", thumbnail="05",
                         thumbnail_axes=[axes[0]])

# %% [markdown]
# What to take away
# -----------------
# - With its switches recorded, max-pooling is y = P(s) x, a 0/1 selection matrix;
#   unpooling is P(s)ᵀ, and P(s)ᵀ is also the gradient of max-pooling.
# - Pool then unpool is not the identity (P(s)ᵀP(s) keeps one value per window).  With
#   the switches held fixed and windows that do not overlap, P(s)P(s)ᵀ = I; but
#   re-running ``max_pool2d`` on an unpooled array picks new switches, and negative
#   values lose to the zeros ((−1, −3, −9, −11) comes back as (0, 0, 0, 0)).
# - With overlapping windows several outputs share a switch (about 60 % of them for
#   random input), P(s)ᵀ *adds* their signals, and ``torch.nn.functional.max_unpool2d``,
#   which overwrites, is not the transpose.  ``minideconv.max_unpool2d`` is.

# %%
print(f"lesson 5 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **Unpool, then pool again.**  With 2 × 2 windows and stride 2, predict
#    ``max_pool2d(max_unpool2d(y))`` for any y — try y = (−1, −3, −9, −11) — and compare
#    it with P(s) P(s)ᵀ y, the pooling with its switches kept fixed.
# 2. **How many outputs can share one switch?**  Predict the largest number for 3 × 3
#    windows with stride 2, and with stride 1.  Count on random input three ways —
#    ``max_unpool2d`` of ones, ``numpy.bincount`` of the switches, the column sums of
#    P(s) — and build an input that reaches the bound.
# 3. **An unpooling that overwrites.**  Write PyTorch's ``max_unpool2d`` in NumPy,
#    ``plane[switches] = y``, and a version that adds, ``numpy.add.at``.  Dot-test each
#    against P(s) for 2 × 2 / 2 and for 3 × 3 / 2 windows: which of the four fails, and
#    why only that one?
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/05_max_pooling_and_switches.py``.
