# %% [markdown]
# Lesson 11, solutions to the exercises
# =====================================
#
# Each answer is computed with ``minideconv.visualize.invert`` and asserted: the pre-images against
# each other, the gradient against central finite differences (which see only the
# forward pass), the regulariser against its own definition.  Run it as a script
# (``python lessons/solutions/11_what_an_inverse_would_look_like.py``); it fails loudly
# if an answer is wrong.

# %%
import time

import numpy as np

from minideconv.visualize import invert
from minideconv.data import load_image, load_model

start = time.perf_counter()
net = load_model()
net64 = net.astype(np.float64)
x0 = load_image("test:1").astype(np.float64)
norm = np.linalg.norm(x0)

# %% [markdown]
# Exercise 1: one representation, many images
# -------------------------------------------
# Two random starts give two pre-images of layer 5 that both match its representation
# (feature errors of 7 and 15 %) and yet lie about half of ‖x₀‖ apart (54 %):
# the pool and the ReLUs below it leave a whole family of images with that
# representation, and the start picks one.
#
# The kind of start matters more than its seed.  On test image 0 (a cross on a flat
# blue background) the random grey start inverts layer 1 badly — a feature error of
# about 50 % — and ``x_init="zeros"`` well (about 4 %).  The residual that the random start leaves sits
# entirely at units that are on for x₀ but off for x̂: there the ReLU's mask, taken at
# the *current* x̂, zeroes the backward signal, so the gradient never sees that those
# units should be on.

# %%
pair = [invert.invert_representation(net, x0, 5, max_iter=200, seed=seed)
        for seed in (0, 1)]
apart = np.linalg.norm(pair[0].image - pair[1].image) / norm
print(f"layer 5, seeds 0 and 1: feature errors {pair[0].feature_error:.1%}, "
      f"{pair[1].feature_error:.1%}; image errors {pair[0].image_error:.0%}, "
      f"{pair[1].image_error:.0%}; the two pre-images lie {apart:.0%} of ‖x₀‖ apart")
assert max(p.feature_error for p in pair) < 0.25
assert apart > 2 * max(p.feature_error for p in pair)

cross = load_image("test:0").astype(np.float64)
on_for_x0 = net64.trace(cross[None], upto=1).outputs[1] > 0
starts = {}
for start_name in ("random", "zeros"):
    found = invert.invert_representation(net, cross, 1, x_init=start_name, max_iter=300)
    output = net64.trace(found.image[None], upto=1).outputs[1]
    target = net64.trace(cross[None], upto=1).outputs[1]
    dead = on_for_x0 & (output == 0)
    share = np.sum((output - target)[dead] ** 2) / np.sum((output - target) ** 2)
    starts[start_name] = found.feature_error
    print(f"test image 0, layer 1, start {start_name:6s}: feature error "
          f"{found.feature_error:.1%}; {dead.sum()} of the {on_for_x0.sum()} units on for "
          f"x₀ are off for x̂ and carry {share:.0%} of the residual")
    assert share > 0.95
assert starts["random"] > 0.3 > 0.1 > starts["zeros"]

# %% [markdown]
# Exercise 2: why ``rule="backprop"``
# -----------------------------------
# Only the backprop rule gives the gradient.  Along a random direction v, central
# differences of E (forward passes only) agree with ⟨2Jᵀr, v⟩/‖Φ₀‖² to about 10⁻⁹ when
# the residual r goes down with the backprop rule, and are off by tens of per cent with
# the deconvnet's or guided backprop's rule — those pass signals through units that are
# off in the forward pass (deconvnet) or block negative signals that the chain rule
# passes (both), so they are not derivatives of anything the forward pass computes.

# %%
rng = np.random.default_rng(10)
x = rng.uniform(0, 1, x0.shape)
v = rng.standard_normal(x0.shape)
target = net64.trace(x0[None], upto=7).outputs[7]
scale = np.sum(target ** 2)
objective = invert.InversionObjective.for_image(net, x0, 7)     # what the library uses


def energy(image):
    return np.sum((net64.trace(image[None], upto=7).outputs[7] - target) ** 2) / scale


h = 1e-6
numeric = (energy(x + h * v) - energy(x - h * v)) / (2 * h)
trace = net64.trace(x[None], upto=7)
residual = trace.outputs[7] - target
for rule in ("backprop", "deconvnet", "guided"):
    grad = 2 * net64.backward(residual, trace, rule=rule)[0] / scale
    mismatch = abs(np.sum(grad * v) - numeric) / abs(numeric)
    print(f"{rule:9s}: ⟨∇E, v⟩ = {np.sum(grad * v):+.6f}, finite differences "
          f"{numeric:+.6f}, relative mismatch {mismatch:.1e}")
    if rule == "backprop":
        assert mismatch < 1e-6
        assert abs(np.sum(objective(x)[1] * v.ravel()) - numeric) / abs(numeric) < 1e-6
    else:
        assert mismatch > 0.05

# %% [markdown]
# Exercise 3: the price of smoothness
# -----------------------------------
# As ``tv_weight`` grows the pre-image's TV₂ falls, and the feature error rises once
# the regulariser dominates: at λ = 3 the optimiser prefers a smooth image to a matching
# one.  The image error first falls (smoothness is a good guess where the representation
# says nothing) and then rises again.  Without the regulariser the pre-image is about
# three times as rough as x₀ (TV₂(x₀) = 0.16), at λ = 0.03 already half as rough: the
# weight that matches x₀'s smoothness lies between 0 and 0.03 on this image.

# %%
tv_x0 = invert.total_variation(x0)[0]
sweep = {weight: invert.invert_representation(net, x0, 5, tv_weight=weight, max_iter=200)
         for weight in (0.0, 0.03, 0.3, 3.0)}
tvs = [invert.total_variation(r.image)[0] for r in sweep.values()]
print(f"TV₂(x₀) = {tv_x0:.3f}")
for (weight, r), tv in zip(sweep.items(), tvs):
    print(f"tv_weight {weight:4g}: TV₂ {tv:.3f}, feature error {r.feature_error:.1%}, "
          f"image error {r.image_error:.0%}")
closest = min(sweep, key=lambda w: abs(np.log(invert.total_variation(sweep[w].image)[0]
                                                / tv_x0)))
print(f"the pre-image closest to x₀'s smoothness: tv_weight {closest:g}")
assert all(a > b for a, b in zip(tvs, tvs[1:]))
assert sweep[3.0].feature_error > 1.5 * sweep[0.03].feature_error
assert tvs[0] > 2 * tv_x0 > tv_x0 > tvs[1]

# %%
print(f"solutions of lesson 11 ran in {time.perf_counter() - start:.1f} s")
