# %% [markdown]
# Lesson 12, solutions to the exercises
# =====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: the way back walked by hand with the operators, one path at a time; the
# pixels a unit depends on read off the sparse matrix of the forward pass (no backward
# code); the block's matrix composed by hand from the matrices of lessons 1 and 6.  Run
# it as a script; it fails loudly if an answer is wrong.

# %%
import time

import numpy as np

import minideconv as md
from minideconv import matrices, nn
from minideconv.data import load_image

start = time.perf_counter()
rng = np.random.default_rng(1111)
rules = md.rules.NAMES
grey = load_image("test:1").astype(np.float64).mean(axis=0, keepdims=True)
image = grey[:, 4:20, 4:20] - grey[:, 4:20, 4:20].mean()          # as in the lesson
w1 = rng.standard_normal((4, 1, 3, 3)) / 3.0
w2 = rng.standard_normal((1, 4, 3, 3)) / 2.0

# %% [markdown]
# Exercise 1: a ReLU below the fan-out
# ------------------------------------
# With a stem s = relu(W₀ x) below it, the block reads s twice, and going back the
# branch's signal b and the shortcut's signal c meet at s's output, *before* the stem's
# ReLU.  The network's way back applies the rule to the sum, rule(b + c); the two paths
# taken separately apply it to each, rule(b) + rule(c).
#
# - **backprop** still splits exactly: its rule D(x > 0) is linear, so
#   D(b + c) = D b + D c.
# - **the deconvnet** need not.  The shortcut's signal c is the unit's activation a > 0
#   at the unit's own pixel p and 0 elsewhere, so rule(b + c) and rule(b) + rule(c) can
#   differ only at p, and max(a + b, 0) ≠ max(b, 0) + a exactly when b(p) < 0.  For the
#   deconvnet b(p) does not even depend on the image: away from the border,
#   b(p) = a κ with κ = Σₖ Σ_δ W₁[k, −δ] max(W₂[k, δ], 0) (conv2ᵀ spreads a over W₂'s
#   taps, the rule keeps the positive ones, conv1ᵀ brings them back to p).  So the
#   deconvnet splits at every unit when κ ≥ 0 and at none when κ < 0 (a unit at the
#   border sees only part of the sum).
# - **guided backprop** fails where b(p) < 0 and the stem unit at p is on (its mask
#   zeroes both sides otherwise); its b(p) also depends on the first ReLU's mask, so
#   on the unit.
#
# Checked for every unit of ``relu_1`` that is on, for the block with W₁ and with −W₁
# (κ changes sign), against these predictions.

# %%
w0 = rng.standard_normal((1, 1, 3, 3)) / 2.0


def stemmed_block(w1):
    return nn.Graph([("stem", nn.Conv2d(w0, padding=1), ("input",)),
                     ("stem_relu", nn.ReLU(), ("stem",)),
                     ("conv1", nn.Conv2d(w1, padding=1), ("stem_relu",)),
                     ("relu", nn.ReLU(), ("conv1",)),
                     ("conv2", nn.Conv2d(w2, padding=1), ("relu",)),
                     ("add", nn.Add(), ("conv2", "stem_relu")),
                     ("relu_1", nn.ReLU(), ("add",))], input_shape=image.shape)


def by_hand(value, w1, position, rule):
    """(branch path, shortcut path, network, b(p)) for the unit at ``position`` of relu_1,
    each walked to the image with the operators; the third applies the stem's rule to
    the sum of the two signals."""
    seed = np.zeros_like(value["relu_1"])
    seed[(0, 0) + position] = value["relu_1"][(0, 0) + position]
    r = md.relu_backward(seed, value["add"], rule)                       # rule at relu_1
    b = md.conv_transpose2d(
        md.relu_backward(md.conv_transpose2d(r, w2, padding=1), value["conv1"], rule),
        w1, padding=1)                                                   # the branch
    c = r                                                                # the shortcut

    def down(signal):                                                    # stem rule, W₀ᵀ
        return md.conv_transpose2d(md.relu_backward(signal, value["stem"], rule), w0,
                                   padding=1)

    return down(b), down(c), down(b + c), b[(0, 0) + position]


failures = {}
for sign in (1, -1):
    w1_here = sign * w1
    kappa = float(np.sum(w1_here[:, 0, ::-1, ::-1] * np.maximum(w2[0], 0)))
    stemmed = stemmed_block(w1_here)
    trace = stemmed.trace(image[None])
    value = {name: trace.outputs[stemmed.index(name)] for name in stemmed.names}
    out = value["relu_1"][0, 0]
    units = [tuple(int(v) for v in p) for p in np.argwhere(out > 0)]
    stem_on = value["stem"][0, 0] > 0
    print(f"{'W₁' if sign > 0 else '−W₁'}: κ = {kappa:+.3f}, "
          f"{len(units)} units of relu_1 on")
    for rule in rules:
        splits, predicted, worst = [], [], 0.0
        for position in units:
            branch, shortcut, network, b_here = by_hand(value, w1_here, position, rule)
            projected = md.visualize.project(stemmed, image, "relu_1", 0, position,
                                             rule=rule)
            worst = max(worst, np.abs(projected - network[0]).max())
            splits.append(np.abs(branch + shortcut - projected[None]).max() < 1e-12)
            if rule == "backprop":
                predicted.append(True)
            elif rule == "deconvnet":
                predicted.append(b_here >= 0)
                if all(1 <= v < 15 for v in position):                  # not at the border
                    assert abs(b_here - out[position] * kappa) < 1e-12
            else:
                predicted.append(b_here >= 0 or not stem_on[position])
        splits, predicted = np.array(splits), np.array(predicted)
        failures[sign, rule] = int((~splits).sum())
        print(f"   {rule:9s}: projection = branch + shortcut at {splits.sum():3d} units, "
              f"fails at {failures[sign, rule]:3d}; predicted right at "
              f"{np.sum(splits == predicted)}; "
              f"max |project − W₀ᵀ rule(b + c)| = {worst:.1e}")
        assert worst < 1e-12                   # the network applies the rule to the sum
        assert np.array_equal(splits, predicted)
    assert failures[sign, "backprop"] == 0
    assert (failures[sign, "deconvnet"] == 0) == (kappa >= 0)
assert failures[1, "deconvnet"] + failures[-1, "deconvnet"] > 0

# %% [markdown]
# Exercise 2: a concatenation's field, channel by channel
# -------------------------------------------------------
# ``receptive_field`` gives one window per node: for the concatenation, the smallest
# window holding both branches', 3 × 3.  But a unit of a concatenation comes from one
# branch only — channels 0–1 from the 1 × 1 convolution, 2–3 from the 3 × 3 — so with
# positive weights and inputs a unit of channels 0–1 depends on 1 pixel, one of channels
# 2–3 on 9.  The window is the bound for the node's *every* channel, so it must hold the
# widest branch.  (After an Add every unit reads every branch, and the window is reached,
# as in the lesson.)  The pixels each unit depends on are read off the rows of the
# forward pass's sparse matrix (``matrices.network_forward_map``) — no backward code —
# and checked against the gradient's support too.

# %%
positive_image = grey[:, :12, :12] + 0.1
inception = nn.Graph([
    ("one", nn.Conv2d(np.abs(rng.standard_normal((2, 1, 1, 1))) + 0.1), ("input",)),
    ("three", nn.Conv2d(np.abs(rng.standard_normal((2, 1, 3, 3))) + 0.1, padding=1),
     ("input",)),
    ("cat", nn.Concat(), ("one", "three")),
    ("relu", nn.ReLU(), ("cat",))], input_shape=positive_image.shape)
field = inception.receptive_field("relu")
position = (5, 6)
r0, r1, c0, c1 = field.window(position)
forward_map = matrices.network_forward_map(inception, positive_image, "relu")
print(f"receptive_field of the concatenation: {field.size[0]} × {field.size[1]}, window "
      f"rows {r0}–{r1 - 1}, columns {c0}–{c1 - 1}")
for channel in range(4):
    index = np.ravel_multi_index((channel,) + position, (4, 12, 12))
    pixels = np.unravel_index(forward_map[[index], :].nonzero()[1], (12, 12))
    seen = set(zip(*(p.tolist() for p in pixels)))
    gradient = md.visualize.project(inception, positive_image, "relu", channel, position,
                                    rule="backprop")[0]
    assert seen == set(zip(*(p.tolist() for p in np.nonzero(gradient))))
    assert all(r0 <= r < r1 and c0 <= c < c1 for r, c in seen)      # inside the window
    expected = 1 if channel < 2 else 9
    print(f"channel {channel} ({'1 × 1' if channel < 2 else '3 × 3'} branch): depends on "
          f"{len(seen)} pixel(s)")
    assert len(seen) == expected
assert field.size == (3, 3)

# %% [markdown]
# Exercise 3: the block as matrices
# ---------------------------------
# Around one forward pass the residual block is linear: conv1 is W₁, the first ReLU the
# diagonal D₁ = D(W₁x > 0), conv2 is W₂, the Add is [I I] applied to (W₂ D₁ W₁ x, x) —
# so the map to the Add's output is W₂ D₁ W₁ + I — and the last ReLU is D₂.  The map to
# ``relu_1`` is M = D₂ (W₂ D₁ W₁ + I): a sum of two products, one per path.  Its
# transpose Mᵀ = (W₁ᵀ D₁ W₂ᵀ + I) D₂ is the gradient's way back: the rule at the top,
# then the two paths, added.  For the deconvnet the two ReLU factors are D(r > 0) of the
# signal arriving at each (lesson 6), and the same sum holds with them.

# %%
block = nn.Graph([("conv1", nn.Conv2d(w1, padding=1), ("input",)),
                  ("relu", nn.ReLU(), ("conv1",)),
                  ("conv2", nn.Conv2d(w2, padding=1), ("relu",)),
                  ("add", nn.Add(), ("conv2", "input")),
                  ("relu_1", nn.ReLU(), ("add",))], input_shape=image.shape)
trace = block.trace(image[None])
a1, a2 = trace.outputs[0][0], trace.outputs[3][0]          # conv1's and add's outputs
W1 = matrices.conv2d_matrix(w1, image.shape, padding=1)
W2 = matrices.conv2d_matrix(w2, (4,) + image.shape[1:], padding=1)
D1, D2 = matrices.relu_matrix(a1), matrices.relu_matrix(a2)
identity = np.eye(image.size)
M = D2 @ (W2 @ D1 @ W1 + identity)
library = matrices.network_forward_map(block, image, "relu_1")
output = trace.outputs[-1][0]
print(f"max |D₂(W₂D₁W₁ + I) − network_forward_map| = {np.abs(M - library).max():.1e}; "
      f"max |M x − block(x)| = {np.abs(M @ image.ravel() - output.ravel()).max():.1e}")
assert np.abs(M - library).max() < 1e-12
assert np.abs(M @ image.ravel() - output.ravel()).max() < 1e-12     # the forward pass

top = np.random.default_rng(3).standard_normal(output.shape)
backward = block.backward(top[None], trace, rule="backprop")[0]
transpose = (W1.T @ D1 @ W2.T + identity) @ D2
backprop_map = matrices.network_backward_map(block, image, "relu_1", top, "backprop")
print(f"backprop: max |(W₁ᵀD₁W₂ᵀ + I)D₂ − Mᵀ| = {np.abs(transpose - M.T).max():.1e}; "
      f"max |Graph.backward(t) − Mᵀ t| = "
      f"{np.abs(backward.ravel() - M.T @ top.ravel()).max():.1e}; "
      f"max |network_backward_map − Mᵀ| = {np.abs(backprop_map.matrix - M.T).max():.1e}")
assert np.abs(transpose - M.T).max() < 1e-12
assert np.abs(backward.ravel() - M.T @ top.ravel()).max() < 1e-12
assert np.abs(backprop_map.matrix - M.T).max() < 1e-12

R2 = matrices.relu_matrix(top)                               # the signal at relu_1
arriving = W2.T @ (R2 @ top.ravel())                         # ... and at relu
R1 = matrices.relu_matrix(arriving)
deconvnet = (W1.T @ R1 @ W2.T + identity) @ R2
ours = block.backward(top[None], trace, rule="deconvnet")[0]
deconvnet_map = matrices.network_backward_map(block, image, "relu_1", top, "deconvnet")
print(f"deconvnet: max |(W₁ᵀR₁W₂ᵀ + I)R₂ t − Graph.backward(t)| = "
      f"{np.abs(deconvnet @ top.ravel() - ours.ravel()).max():.1e}; "
      f"max |(W₁ᵀR₁W₂ᵀ + I)R₂ − network_backward_map| = "
      f"{np.abs(deconvnet - deconvnet_map.matrix).max():.1e}")
assert np.abs(deconvnet @ top.ravel() - ours.ravel()).max() < 1e-12
assert np.abs(deconvnet - deconvnet_map.matrix).max() < 1e-12

# %%
print(f"solutions of lesson 12 ran in {time.perf_counter() - start:.1f} s")
