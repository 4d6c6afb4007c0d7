# %% [markdown]
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
# factors are identical, only the ReLU factors change.  Counting the ones on a ReLU
# factor's diagonal is misleading, though.  Backprop's R = D(x > 0) is the forward mask,
# with a 1 at every active unit whether or not any signal arrives there; the deconvnet's
# D(r > 0) has 1s only where the arriving signal is positive, so it has few by
# construction.  What matters is the signal that actually reaches each ReLU — and that
# is the same for all three rules up to the first ReLU where they part.  Below the
# unpooling Pᵀ it is nonzero at no more than one unit per pooling window (its switch)
# under *every* rule: that sparsity is common to all three.  So we trace, at each ReLU,
# how many values arrive, how many of them are negative or sit at an inactive unit, and
# how many each rule passes.

# %%
names = ["W₁ᵀ", "R₁ (ReLU 1)", "Pᵀ", "W₂ᵀ", "R₂ (ReLU 2)"]
for k, name in enumerate(names):
    same = all((maps[rule].factors[k] != maps["backprop"].factors[k]).nnz == 0
               for rule in rules)
    detail = ""
    if k in relu_positions:
        detail = ", ones on the diagonal: " + ", ".join(
            f"{rule} {maps[rule].factors[k].nnz}" for rule in rules)
    print(f"factor {k} {name:12s}: {'identical' if same else 'DIFFERS'}{detail}")
    assert same == (k not in relu_positions)


def arriving(rule, k):
    """The signal that reaches factor k going down (the product of the factors above)."""
    signal = top.ravel()
    for factor in maps[rule].factors[:k:-1]:
        signal = factor @ signal
    return signal


forward_input = {1: a1.ravel(), 4: a2.ravel()}          # what entered each ReLU
trace = {}
for k, name in [(4, "R₂"), (1, "R₁")]:
    for rule in rules:
        r_in = arriving(rule, k)
        r_out = maps[rule].factors[k] @ r_in
        trace[rule, k] = (r_in, r_out)
        reached = r_in != 0
        print(f"{name}, {rule:9s}: {np.count_nonzero(reached):2d} values arrive "
              f"({np.count_nonzero(r_in < 0)} negative, "
              f"{np.count_nonzero(reached & (forward_input[k] <= 0))} at inactive units); "
              f"passed {np.count_nonzero(r_out):2d}, of them "
              f"{np.count_nonzero(r_out < 0)} negative")
r1_in = trace["backprop", 1][0]
assert all(np.array_equal(trace[rule, 1][0], r1_in) for rule in rules)   # same arrivals
reached1 = np.count_nonzero(r1_in)
passed1 = {rule: np.count_nonzero(trace[rule, 1][1]) for rule in rules}
negative1 = {rule: np.count_nonzero(trace[rule, 1][1] < 0) for rule in rules}
print(f"→ {reached1} values reach R₁ under every rule (at most one per 2 × 2 window: "
      f"{2 * 4 * 4} windows); backprop passes {passed1['backprop']} "
      f"({negative1['backprop']} negative), the deconvnet {passed1['deconvnet']}, "
      f"guided {passed1['guided']} (none negative)")
assert reached1 <= 2 * 4 * 4
assert negative1["deconvnet"] == negative1["guided"] == 0 < negative1["backprop"]

projections = {rule: maps[rule].projection.reshape(8, 8) for rule in rules}
for a, b in [("backprop", "deconvnet"), ("backprop", "guided"), ("deconvnet", "guided")]:
    diff = np.abs(projections[a] - projections[b]).max()
    print(f"max |{a} − {b}| = {diff:.3f}")
assert np.abs(projections["backprop"] - projections["deconvnet"]).max() > 1e-3

# %% [markdown]
# So the rules do not differ by *how many* values they pass — the unpooling already made
# the signal sparse for all three — but by *which*, and above all by their *sign*:
# backprop passes the values at active units whatever their sign, the deconvnet passes
# the positive ones wherever they are, guided backprop the positive ones at active
# units.  The figure shows the signal reaching R₁ (the same for every rule), the forward
# mask it meets, what each rule lets through, and the three projections on one colour
# scale.

# %%
def channels_side_by_side(v):
    """(2 · 8 · 8,) → an 8 × 17 array: channel 0 | gap | channel 1."""
    planes = v.reshape(2, 8, 8)
    return np.hstack([planes[0], np.full((8, 1), np.nan), planes[1]])


fig, axes = plt.subplot_mosaic(
    [["arrive", "pass backprop", "proj backprop"],
     ["mask", "pass deconvnet", "proj deconvnet"],
     ["counts", "pass guided", "proj guided"]],
    figsize=(13.5, 9.4), layout="constrained",
    gridspec_kw=dict(width_ratios=[2.1, 2.1, 1.25]))
signal_limit = plots.symmetric_limit(r1_in)
shown = np.where(r1_in != 0, r1_in, np.nan)          # white where no signal arrives
im = plots.image(axes["arrive"], channels_side_by_side(shown),
                 f"signal reaching R₁ — the same for all three rules\n{reached1} values, "
                 f"{np.count_nonzero(r1_in < 0)} negative (channels 0 | 1)",
                 vmax=signal_limit, cbar=False, annotate=False)
mask = channels_side_by_side((a1.ravel() > 0).astype(float))
axes["mask"].imshow(mask, cmap="Greys", vmin=0, vmax=2.5, aspect="equal")
rows_in, cols_in = np.nonzero(~np.isnan(channels_side_by_side(shown)))
values_in = channels_side_by_side(shown)[rows_in, cols_in]
axes["mask"].scatter(cols_in[values_in > 0], rows_in[values_in > 0], marker="P", s=90,
                     color="C3", label="positive signal arrives")
axes["mask"].scatter(cols_in[values_in < 0], rows_in[values_in < 0], marker="_", s=160,
                     linewidths=3, color="C0", label="negative signal arrives")
axes["mask"].set_title("forward mask of ReLU 1 (grey: x > 0, active)\n"
                       "and where the signal arrives")
axes["mask"].set_xticks([])
axes["mask"].set_yticks([])
axes["mask"].legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2,
                    frameon=False, fontsize=9)
for rule in rules:
    passed = trace[rule, 1][1]
    plots.image(axes[f"pass {rule}"], channels_side_by_side(np.where(passed != 0, passed,
                                                                     np.nan)),
                f"{rule}: R₁ passes {passed1[rule]} ({negative1[rule]} negative)",
                vmax=signal_limit, cbar=False)
    axes[f"pass {rule}"].set_ylabel(rule, fontsize=13, fontweight="bold")
for name in ["arrive", "mask"] + [f"pass {rule}" for rule in rules]:
    axes[name].axvline(8, color="0.25", linewidth=2)           # channel 0 | channel 1
plots.colorbar([axes["arrive"]] + [axes[f"pass {rule}"] for rule in rules], im,
               "signal value at R₁", fraction=0.03)
projection_limit = plots.symmetric_limit(*projections.values())
for rule in rules:
    last = plots.image(axes[f"proj {rule}"], projections[rule],
                       f"{rule}: projection B t", vmax=projection_limit, cbar=False)
plots.colorbar([axes[f"proj {rule}"] for rule in rules], last,
               "pixel value (one scale for all three)", fraction=0.05)
axes["counts"].axis("off")
table = "\n".join([f"values reaching R₁:  {reached1}  (every rule)", ""]
                  + [f"{rule:9s} passes {passed1[rule]:2d}   ({negative1[rule]} negative)"
                     for rule in rules])
axes["counts"].text(0.02, 0.6, table, family="monospace", fontsize=12, va="center",
                    transform=axes["counts"].transAxes)
fig.suptitle("Three backward maps, identical except at the ReLUs: the same sparse signal "
             "reaches R₁,\nthe rules differ in which values — above all which signs — "
             "they let through")
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
# - Below an unpooling the signal is sparse under every rule (one value per window at
#   most: 12 reach R₁ here).  The deconvnet never looks at the forward ReLU masks; its
#   ReLU factors follow the sign of the signal, so where backprop passes 11 values, 4 of
#   them negative, the deconvnet passes 8 and guided backprop 7, all positive.  The next
#   lesson runs all three on a trained network.

# %%
print(f"lesson 6 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **Which rules are linear in the signal?**  For one ReLU, predict for each rule
#    whether B(r₁ + r₂) = B(r₁) + B(r₂), whether B(c r) = c B(r) for c > 0, and for
#    c = −1; then test all three on random vectors with ``md.relu_backward``.
# 2. **Guided backprop is the other two in a row.**  Show that at one ReLU the guided
#    rule is the deconvnet rule followed by the backprop rule, in either order, and that
#    their diagonal matrices commute.
# 3. **Gradient or not?**  For a network like this lesson's, measure its Jacobian J with
#    central finite differences of the forward pass alone (no backward code), and
#    compare Jᵀ t with the three projections of a top signal t.  Which one equals it?
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/06_relu_three_ways.py``.
