# %% [markdown]
# Lesson 9, solutions to the exercises
# ====================================
#
# Each answer is computed with minideconv and asserted: the medians over the same 16 test
# images and units as the lesson, a trace assembled by hand from two forward passes, and
# the other image's own projection rescaled.  Run it as a script; it fails loudly if an
# answer is wrong.

# %%
import time

import numpy as np

from minideconv import nn
from minideconv.visualize import sanity
from minideconv import visualize as vis
from minideconv.data import load_dataset, load_model

start = time.perf_counter()
RULES = ("deconvnet", "guided", "backprop")
LAYER = 7
net = load_model()
images, _ = load_dataset("test", n=16)
activation = net.trace(images, upto=LAYER).outputs[LAYER]
units = [tuple(int(v) for v in np.unravel_index(a.argmax(), a.shape)) for a in activation]

# %% [markdown]
# Exercise 1: does the conclusion depend on the random draw?
# ----------------------------------------------------------
# With seed 0 the lesson measured +0.61 (deconvnet), +0.73 (guided) and −0.08
# (backprop) at the top layer (the last convolution redrawn on the way back).  Seeds 1
# and 2 move these medians by at most 0.09, and the order guided > deconvnet >
# |backprop| holds: the gradient loses its signed pattern at once, the two rectifying
# rules keep more than half of it.

# %%
LESSON = {"deconvnet": 0.61, "guided": 0.73, "backprop": -0.08}   # seed 0, lesson 9
for seed in (1, 2):
    top = {}
    for rule in RULES:
        results = [sanity.randomization_test(net, images[i], LAYER, c, rule=rule,
                                             position=(h, w), where="backward", seed=seed)
                   for i, (c, h, w) in enumerate(units)]
        top[rule] = float(np.median([r.spearman[1] for r in results]))
    print(f"seed {seed}: median signed rank correlation, top layer redrawn: "
          + ", ".join(f"{rule} {v:+.2f}" for rule, v in top.items()))
    assert top["guided"] > top["deconvnet"] > 0.5 > 0.1 > abs(top["backprop"])
    assert all(abs(top[rule] - LESSON[rule]) < 0.1 for rule in RULES)

# %% [markdown]
# Exercise 2: the deconvnet reads no ReLU mask
# --------------------------------------------
# Take *this* image's trace and replace only the pooling records (the switches) by the
# other image's.  Under the deconvnet's rule the result is exactly
# ``switch_swap(image, other)``, because its ReLU step, max(r, 0), never reads the
# recorded input; under guided backprop and backprop it differs, because they multiply
# by the mask [x > 0] and here x is still this image's.

# %%
image, other = images[0], images[1]
c, h, w = units[0]
own = net.trace(image[None], upto=LAYER)
theirs = net.trace(other[None], upto=LAYER)
hybrid = nn.Trace(input=own.input, outputs=own.outputs,
                  records=[t if isinstance(layer, nn.MaxPool2d) else o
                           for layer, o, t in zip(net.layers, own.records, theirs.records)])
seed = np.zeros_like(own.outputs[LAYER])
seed[0, c, h, w] = own.outputs[LAYER][0, c, h, w]
for rule in RULES:
    mixed = net.backward(seed, hybrid, start=LAYER, rule=rule)[0]
    swapped = sanity.switch_swap(net, image, other, LAYER, c, rule, (h, w))
    same = np.array_equal(mixed, swapped)
    print(f"{rule:9s}: this image's masks + the other's switches = the switch swap: {same}")
    assert same == (rule == "deconvnet")

# %% [markdown]
# Exercise 3: the swap is the other image's projection, rescaled
# --------------------------------------------------------------
# Every step of the way back is linear in the signal (Wᵀ, P(s)ᵀ, the masks) except the
# rectification max(r, 0), which is *positively homogeneous*: max(λr, 0) = λ·max(r, 0)
# for λ ≥ 0.  The swap and the other image's own projection of the same unit go down the
# same trace from seeds a_image and a_other, so when a_other > 0 the swap is the other
# projection times λ = a_image / a_other.  The image enters the swap only through that
# one number.

# %%
for j in range(1, 16):
    a_image, a_other = activation[0, c, h, w], activation[j, c, h, w]
    if a_other <= 0:
        continue
    for rule in RULES:
        swapped = sanity.switch_swap(net, image, images[j], LAYER, c, rule, (h, w))
        rescaled = vis.project(net, images[j], LAYER, c, (h, w), rule) * (a_image / a_other)
        np.testing.assert_allclose(swapped, rescaled, rtol=1e-4,
                                   atol=1e-6 * np.abs(swapped).max())
    print(f"image {j}: a_other = {a_other:.2f}; for all three rules the swap is its own "
          f"projection times {a_image / a_other:.2f}")

# %%
print(f"solutions of lesson 9 ran in {time.perf_counter() - start:.1f} s")
