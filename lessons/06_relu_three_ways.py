"""
Lesson 6: ReLU three ways
=========================

Going backward through convolutions and max-pooling, every method uses the transposes
Wᵀ and P(s)ᵀ.  The ReLU is where they part.  The gradient (Simonyan et al. 2013), the
deconvnet (Zeiler & Fergus 2014) and guided backpropagation (Springenberg et al. 2014)
pass a signal r back through y = max(x, 0) with three different rules.  We apply the
three rules to one signal, write each as a diagonal 0/1 matrix, and then build the three
backward maps of a small network as explicit matrices: they are products of the same
factors except at the ReLUs.
"""

# %%
import time

import numpy as np

import minideconv as md
from minideconv import matrices, plots

plt = plots.setup()
start = time.perf_counter()
rng = np.random.default_rng(1)

# %% [markdown]
# The three rules
# ---------------
# A ReLU computes y = max(x, 0) = D(x > 0) x, with D(m) the diagonal matrix of the 0/1
# mask m.  A signal r arriving from above is passed down as
#
# - backprop (the gradient):  r · [x > 0]  = D(x > 0) r   — where the unit was active;
# - deconvnet:                max(r, 0)    = D(r > 0) r   — where the *signal* is
#   positive, whatever the forward pass did;
# - guided backprop:          max(r, 0) · [x > 0] = D(x > 0) D(r > 0) r — both.
#
# Backprop's matrix depends only on the forward input, so the gradient is linear in r.
# The deconvnet's and guided backprop's depend on r itself: those maps are linear only
# piecewise, between sign changes of r.

# %%
x = np.round(rng.standard_normal(12), 1)         # what entered the ReLU going forward
r = np.round(rng.standard_normal(12), 1)         # the signal coming back from above
rules = md.rules.NAMES  # ("backprop", "deconvnet", "guided"), from the one rule table
out = {rule: md.relu_backward(r, x, rule=rule) for rule in rules}
D = {"backprop": matrices.relu_matrix(x),
     "deconvnet": matrices.relu_matrix(r),
     "guided": matrices.relu_matrix(x) @ matrices.relu_matrix(r)}
print("forward input x:", x)
print("signal r       :", r)
for rule in rules:
    print(f"{rule:9s} → {out[rule]}")
    assert np.array_equal(D[rule] @ r, out[rule])      # each rule is its diagonal matrix
print("positions where backprop and deconvnet disagree:",
      np.flatnonzero(out["backprop"] != out["deconvnet"]))
assert not np.array_equal(out["backprop"], out["deconvnet"])
assert np.all(out["deconvnet"] >= 0) and np.all(out["guided"] >= 0)

# %%
fig, axes = plt.subplots(5, 1, figsize=(8.5, 8.8), sharex=True, layout="constrained")
limit = 1.1 * plots.symmetric_limit(x, r)
inactive = x <= 0
plots.bars(axes[0], x, "forward input x (grey: x ≤ 0, the ReLU was off)", shade=inactive,
           ylim=(-limit, limit))
plots.bars(axes[1], r, "signal r arriving from above", shade=inactive, ylim=(-limit, limit))
notes = {"backprop": "r · [x > 0]   (gradient: zero in the grey columns)",
         "deconvnet": "max(r, 0)   (ignores the grey columns, drops r < 0)",
         "guided": "max(r, 0) · [x > 0]   (both)"}
for ax, rule in zip(axes[2:], rules):
    plots.bars(ax, out[rule], f"{rule}: {notes[rule]}", shade=inactive,
               ylim=(-limit, limit))
axes[-1].set_xlabel("unit")
fig.suptitle("One signal, three ReLU rules")
plots.save_lesson_figure(fig, "06_relu_rules", thumbnail="06", thumbnail_axes=axes[1:])

# %% [markdown]
# A whole network as matrices
# ---------------------------
# A small network on an 8 × 8 image: conv (2 filters, 3 × 3, padding 1) → ReLU →
# max-pool 2 × 2 → conv (2 → 2 filters, 3 × 3, padding 1) → ReLU.  After one forward pass
# every layer is a matrix for *this* input — W₁, D₁ = D(x₁ > 0), P(s), W₂, D₂ — and the
# network's output is F x with F = D₂ W₂ P D₁ W₁ (lesson 1 and lesson 5).
#
# Pick the strongest activation of channel 0 at the top, set every other one to 0: that is
# the top signal t.  Each method's backward map is a product of the transposes in reverse
# order, with its own rule at the two ReLUs:
#
#     B = W₁ᵀ · R₁ · Pᵀ · W₂ᵀ · R₂
#
# where R is D(x > 0) for backprop, D(r > 0) for the deconvnet and D(x > 0) D(r > 0) for
# guided backprop, r being the signal that reaches that ReLU.
# ``matrices.rule_backward_map`` builds B and the projection B t for each rule.

# %%
image = rng.standard_normal((1, 1, 8, 8))
w1 = rng.standard_normal((2, 1, 3, 3))
w2 = rng.standard_normal((2, 2, 3, 3))
a1 = md.conv2d(image, w1, padding=1)              # layer 1 pre-activation
h1 = md.relu(a1)
p1, switches = md.max_pool2d(h1, 2)
a2 = md.conv2d(p1, w2, padding=1)                 # layer 2 pre-activation
h2 = md.relu(a2)

factors = [matrices.conv2d_matrix(w1, (1, 8, 8), padding=1),
           matrices.relu_matrix(a1[0]),
           matrices.max_pool2d_matrix(switches[0], (2, 8, 8)),
           matrices.conv2d_matrix(w2, (2, 4, 4), padding=1),
           matrices.relu_matrix(a2[0])]
relu_positions = [1, 4]
F = matrices.forward_chain(factors)
assert np.allclose(F @ image.ravel(), h2.ravel())           # the network, as one matrix
print("factor shapes (forward order):", [f.shape for f in factors])

top = np.zeros_like(h2)
channel0 = h2[0, 0]
h, w = np.unravel_index(np.argmax(channel0), channel0.shape)
top[0, 0, h, w] = channel0[h, w]
print(f"top signal: channel 0 at ({h}, {w}), activation {channel0[h, w]:.3f}")

maps = {rule: matrices.rule_backward_map(factors, relu_positions, top.ravel(), rule)
        for rule in rules}
assert np.allclose(maps["backprop"].matrix.toarray(), F.T.toarray())   # backprop = Fᵀ

# %% [markdown]
# The same projections with the operators
# ---------------------------------------
# The matrices are for seeing; the operators are what a visualizer runs.  The chain
# ``relu_backward → conv_transpose2d → max_unpool2d → relu_backward → conv_transpose2d``
# gives the same three projections.

# %%
for rule in rules:
    g = md.relu_backward(top, a2, rule)
    g = md.conv_transpose2d(g, w2, padding=1)
    g = md.max_unpool2d(g, switches, 2, output_size=(8, 8))
    g = md.relu_backward(g, a1, rule)
    g = md.conv_transpose2d(g, w1, padding=1)
    error = np.abs(g.ravel() - maps[rule].projection).max()
    print(f"{rule:9s}: max |operators − matrix| = {error:.1e}")
    assert error < 1e-12

# %% [markdown]
# Where the three maps differ
# ---------------------------
# Compare the factors of the three backward maps one by one: the convolution and pooling
# factors are identical, only the ReLU factors change (we count the units each lets
# through).  Backprop's R is the forward mask D(x > 0), the same for every top signal.
# The deconvnet's R follows the sign of the signal, and below an unpooling the signal is
# nonzero at no more than one unit per pooling window — so it passes far fewer units.

# %%
names = ["W₁ᵀ", "R₁ (ReLU 1)", "Pᵀ", "W₂ᵀ", "R₂ (ReLU 2)"]
for k, name in enumerate(names):
    same = all((maps[rule].factors[k] != maps["backprop"].factors[k]).nnz == 0
               for rule in rules)
    detail = ""
    if k in relu_positions:
        detail = ", units passed: " + ", ".join(
            f"{rule} {maps[rule].factors[k].nnz}" for rule in rules)
    print(f"factor {k} {name:12s}: {'identical' if same else 'DIFFERS'}{detail}")
    assert same == (k not in relu_positions)

projections = {rule: maps[rule].projection.reshape(8, 8) for rule in rules}
for a, b in [("backprop", "deconvnet"), ("backprop", "guided"), ("deconvnet", "guided")]:
    diff = np.abs(projections[a] - projections[b]).max()
    print(f"max |{a} − {b}| = {diff:.3f}")
assert np.abs(projections["backprop"] - projections["deconvnet"]).max() > 1e-3

# %%
fig, axes = plt.subplots(3, 3, figsize=(11, 8.4), layout="constrained",
                         gridspec_kw=dict(width_ratios=[1.3, 2, 1.15]))
for row, rule in enumerate(rules):
    relu2 = maps[rule].factors[4].diagonal().reshape(2, 4, 4)
    relu1 = maps[rule].factors[1].diagonal().reshape(2, 8, 8)
    plots.image(axes[row, 0], np.hstack([relu2[0], np.full((4, 1), np.nan), relu2[1]]),
                "R₂: units passed\n(channels 0 | 1)" if row == 0 else None, vmax=1,
                cbar=False)
    plots.image(axes[row, 1], np.hstack([relu1[0], np.full((8, 1), np.nan), relu1[1]]),
                "R₁: units passed (channels 0 | 1)" if row == 0 else None, vmax=1,
                cbar=False)
    plots.image(axes[row, 2], projections[rule],
                "projection B t (8 × 8 pixels)" if row == 0 else None,
                cbar_label="value")
    axes[row, 0].set_ylabel(rule, fontsize=14, fontweight="bold")
fig.suptitle("Three backward maps, identical except at the ReLUs "
             "(dark = the ReLU factor passes the unit)")
plots.save_lesson_figure(fig, "06_network_maps")

# %% [markdown]
# What to take away
# -----------------
# - The three methods differ only in how the signal crosses a ReLU: D(x > 0) (gradient),
#   D(r > 0) (deconvnet), D(x > 0) D(r > 0) (guided).
# - For a whole network each method is one matrix, a product of Wᵀ, P(s)ᵀ and the ReLU
#   factors; the convolution and pooling factors are shared, so all the difference
#   between a saliency map, a deconvnet projection and a guided-backprop picture comes
#   from those diagonal 0/1 matrices.
# - The deconvnet never looks at the forward ReLU masks above the switches; its ReLU
#   factors follow the sign of the signal.  The next lesson runs all three on a trained
#   network.

# %%
print(f"lesson 6 ran in {time.perf_counter() - start:.1f} s")
