# %% [markdown]
# Lesson 13, solutions to the exercises
# =====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: the rule table's formulas written out in numpy, the dense matrix of the
# upsampling (built by ``minideconv.matrices``, no backward code), and central finite
# differences of the logit.  Run it as a script; it fails loudly if an answer is wrong.

# %%
import time

import numpy as np

import minideconv as md
from minideconv import nn, ops
from minideconv.matrices import upsample_nearest2d_matrix

start = time.perf_counter()
rng = np.random.default_rng(1313)
rules = md.rules.NAMES

# %% [markdown]
# Exercise 1: homogeneous, not linear
# -----------------------------------
# The deconvnet rule of a LeakyReLU(α) is r(g) = rect_α(g) = max(g, 0) + α·min(g, 0).
# For c ≥ 0, max(c·g, 0) = c·max(g, 0) and min(c·g, 0) = c·min(g, 0), so
# r(c·g) = c·r(g).
# But r(−g) = max(−g, 0) + α·min(−g, 0) = −(α·max(g, 0) + min(g, 0)), which is −r(g)
# only where α·max(g, 0) + min(g, 0) = max(g, 0) + α·min(g, 0), i.e. (1 − α)·|g| = 0:
# g = 1 gives r(−1) = −α, not −r(1) = −1, unless α = 1.  With α = 1 the LeakyReLU is
# the identity: f′(x) = 1 everywhere and rect_1(g) = g, so every rule gives back g.

# %%
x = rng.standard_normal((1, 2, 6, 6))
g = rng.standard_normal(x.shape)
for alpha in (0.0, 0.01, 0.2, 0.5):
    layer = nn.LeakyReLU(alpha)
    record = layer.forward(x)[1]

    def deconvnet(signal):
        return layer.backward(signal, record, "deconvnet")

    for c in (0.0, 0.5, 3.0):
        assert np.allclose(deconvnet(c * g), c * deconvnet(g), rtol=0, atol=1e-15)
    # the formula, written out independently of the layer
    assert np.allclose(deconvnet(g), np.where(g > 0, g, alpha * g), rtol=0, atol=1e-15)
    one = np.ones_like(g)
    assert np.allclose(deconvnet(-one), -alpha * one) and not np.allclose(
        deconvnet(-one), -deconvnet(one))
print("deconvnet at LeakyReLU(α): r(c·g) = c·r(g) for c ≥ 0; r(−1) = −α ≠ −r(1) = −1 "
      "for α in 0, 0.01, 0.2, 0.5")

# brute force over a grid of slopes: which α leave g unchanged under all three rules?
identity_slopes = []
for alpha in np.round(np.linspace(-1.0, 2.0, 31), 10):
    layer = nn.LeakyReLU(float(alpha))
    record = layer.forward(x)[1]
    if all(np.array_equal(layer.backward(g, record, rule), g) for rule in rules):
        identity_slopes.append(float(alpha))
print(f"slopes α on a grid of 31 in [−1, 2] for which every rule returns g: "
      f"{identity_slopes}")
assert identity_slopes == [1.0]

# %% [markdown]
# Exercise 2: nearest ×3
# ----------------------
# Nearest ×3 copies each pixel into a 3 × 3 block; the transpose of a copy is a sum, so
# its transpose sums each 3 × 3 block of the signal: 9 × ``avg_pool2d(r, 3)``.

# %%
shape = (2, 4, 5)                                     # (C, H, W)
up = nn.Upsample(scale_factor=3, mode="nearest")
small = rng.standard_normal((1,) + shape)
record = up.forward(small)[1]
r = rng.standard_normal((1, 2, 12, 15))
dense = upsample_nearest2d_matrix(shape, scale_factor=3).toarray()     # 360 × 40
by_matrix = (dense.T @ r.ravel()).reshape(small.shape)
by_layer = up.backward(r, record)
by_pool = 9 * ops.avg_pool2d(r, 3)
print(f"nearest ×3's transpose: max |backward − Aᵀr| = "
      f"{np.abs(by_layer - by_matrix).max():.1e}, max |9·avg_pool2d(r, 3) − Aᵀr| = "
      f"{np.abs(by_pool - by_matrix).max():.1e}")
assert np.allclose(by_layer, by_matrix, rtol=0, atol=1e-13)
assert np.allclose(by_pool, by_matrix, rtol=0, atol=1e-13)
assert set(np.unique(dense.sum(axis=0))) == {9.0}      # each input pixel is read 9 times

# %% [markdown]
# Exercise 3: the cap does not matter
# -----------------------------------
# A small MobileNet-like network — a stride-2 stem, BatchNorm, a clipped ReLU, a
# depthwise 3 × 3 convolution, BatchNorm, a clipped ReLU, a global average pool and a
# linear layer — built twice with the same weights, with caps 6 and 1.  The deconvnet
# rule at a clipped ReLU is relu(g), which reads neither x nor the cap, and no other
# layer's way back reads the image: the two networks' deconvnet maps of a logit
# seeded with 1 are the same array, for any image.  Their backprop maps differ: with
# cap 1 many more units sit on the flat piece x ≥ 1, where f′(x) = 0.


# %%
def small_mobilenet(cap, seed=3):
    """Stem (stride 2), BN, ClippedReLU(cap), depthwise conv, BN, ClippedReLU(cap),
    global average pool, Linear — random weights from ``seed``, the same for every cap."""
    r = np.random.default_rng(seed)
    channels = 6

    def batchnorm():
        return nn.BatchNorm2d(weight=r.uniform(0.5, 1.5, channels),
                              bias=r.normal(0, 0.3, channels),
                              running_mean=r.normal(0, 0.1, channels),
                              running_var=r.uniform(0.5, 1.5, channels))

    return nn.Sequential(
        nn.Conv2d(r.standard_normal((channels, 3, 3, 3)) / 3, stride=2, padding=1),
        batchnorm(), nn.ClippedReLU(cap),
        nn.Conv2d(r.standard_normal((channels, 1, 3, 3)) / 2, padding=1, groups=channels),
        batchnorm(), nn.ClippedReLU(cap),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(r.standard_normal((5, channels))), input_shape=(3, 16, 16))


nets = {cap: small_mobilenet(cap) for cap in (6.0, 1.0)}
images = rng.uniform(0, 2, (3, 3, 16, 16))
logit, last = 3, len(nets[6.0].layers) - 1
maps = {(cap, rule): md.visualize.project(net, images, last, logit, rule=rule,
                                          seed_value="one")
        for cap, net in nets.items() for rule in ("deconvnet", "backprop")}
deconvnet = [maps[cap, "deconvnet"][i] for cap in nets for i in range(len(images))]
assert all(np.array_equal(deconvnet[0], other) for other in deconvnet[1:])
backprop_gap = np.abs(maps[6.0, "backprop"] - maps[1.0, "backprop"]).max() / \
    np.abs(maps[6.0, "backprop"]).max()
print(f"deconvnet maps, caps 6 and 1, three images: all six the same array; backprop "
      f"maps, cap 6 vs cap 1: max relative difference {backprop_gap:.2f}")
assert backprop_gap > 0.05


def logits(net, batch):
    return net.forward_outputs(batch, [last])[last][:, logit]


# the backprop map seeded with 1 is ∂logit/∂x: check it pixel by pixel by central
# differences (the network is piecewise linear; h is far below the distance to a kink
# at these random inputs, which the agreement confirms)
h = 1e-6
for cap, net in nets.items():
    image = images[0]
    steps = h * np.eye(image.size).reshape((image.size,) + image.shape)
    numeric = ((logits(net, image + steps) - logits(net, image - steps)) / (2 * h)
               ).reshape(image.shape)
    error = np.abs(numeric - maps[cap, "backprop"][0]).max()
    print(f"cap {cap:g}: backprop map vs central differences of the logit, "
          f"max |difference| = {error:.1e}")
    assert error < 1e-8

print(f"solutions to lesson 13 ran in {time.perf_counter() - start:.1f} s")
