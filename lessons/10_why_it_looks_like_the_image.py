# %% [markdown]
"""
Lesson 10: Why it looks like the image
======================================

Lesson 9 measured two things about the deconvnet's and guided backprop's maps of the
shipped network: they look like the image (a median signed rank correlation with it of
0.29 and 0.35), and they still do when every weight of the network is random (0.27 and
0.34).  This lesson opens the last step of the way back to see why, and then tests five
consequences of the answer: the sign with which first-layer filters are pasted, the
need for the *same* first layer forward and back, the network without its max-pools,
two classes on one image, and the transpose of a random first layer.
"""

# %%
import time

import numpy as np

from minideconv import matrices, plots
from minideconv import visualize as vis
from minideconv.compile import warm_up
from minideconv.visualize import sanity
from minideconv.data import load_dataset, load_model

plt = plots.setup()
start = time.perf_counter()
RULES = ("deconvnet", "guided", "backprop")
LAYER = 7
net = load_model()
warm_up(net, rules=RULES)
images, labels = load_dataset("test", n=16)
random_net = sanity.randomize(net, sanity.weight_layers(net))      # every weight redrawn


def quoted(value, number):
    """The text below quotes ``number`` for ``value``: make sure it still says so."""
    assert abs(value - number) <= 0.01, f"measured {value:.3f}, the text says {number}"


def strongest_units(network, layer=LAYER):
    """Each image's strongest unit (channel, h, w) of ``layer`` in ``network``."""
    activation = network.trace(images, upto=layer).outputs[layer]
    return [tuple(int(v) for v in np.unravel_index(a.argmax(), a.shape)) for a in activation]


def median_likeness(network, rule, layer=LAYER):
    """The median over the 16 images of ``sanity.likeness`` of each one's strongest unit's
    map, inside its receptive field (maps that are zero left out), and how many."""
    values = []
    for i, (c, h, w) in enumerate(strongest_units(network, layer)):
        m = vis.project(network, images[i], layer, c, (h, w), rule)
        if np.any(m):
            window = sanity.receptive_window(network, layer, (h, w), images.shape[2:])
            values.append(sanity.likeness(images[i], m, window))
    return float(np.median(values)), len(values)

# %% [markdown]
# A projection is first-layer filters, pasted
# -------------------------------------------
# Every rule ends the same way: at the bottom the signal r₀ reaches the output of the
# first convolution, and the map is W₀ᵀ r₀ = Σ_u r₀[u] · w_c, the filter w_c of each
# unit u = (c, i, j) pasted at (i, j) with the weight r₀[u].  What lands in r₀ depends
# on the rule at the first ReLU: the deconvnet passes max(r, 0), so r₀ ≥ 0 wherever the
# switches of the first pool sent signal; guided backprop also requires the unit to
# have been on, z[u] = ⟨w_c, x_patch⟩ + b_c > 0; the gradient passes either sign where
# z > 0.  A filter pasted with a positive weight where z > 0 is pasted where its unit
# was on: where it matched the patch under it.  ``sanity.pasted_filters`` returns r₀,
# z and the share of |r₀| pasted with the sign of z.

# %%
c, h, w = strongest_units(net)[0]
found = sanity.pasted_filters(net, images[0], LAYER, c, "deconvnet", (h, w))
rebuilt = net.layers[0].backward(found.signal[None], net.trace(images[:1], upto=0).records[0])
same = np.allclose(rebuilt[0], vis.project(net, images[0], LAYER, c, (h, w), "deconvnet"),
                   rtol=1e-5, atol=1e-6 * np.abs(rebuilt).max())
print(f"image 0, unit ({c}, {h}, {w}): W₀ᵀ r₀ = the deconvnet projection: {same}; "
      f"r₀ ≥ 0: {bool(np.all(found.signal >= 0))}; {np.count_nonzero(found.signal)} "
      f"filters pasted")
assert same and np.all(found.signal >= 0)

shares = {}
for name, network in (("trained", net), ("random", random_net)):
    units = strongest_units(network)
    for rule in RULES:
        values = [sanity.pasted_filters(network, images[i], LAYER, u[0], rule, u[1:])
                  .agreement for i, u in enumerate(units)]
        shares[name, rule] = float(np.nanmedian(values))
    print(f"{name:7s} network: median share of |r₀| pasted with the sign of z: "
          + ", ".join(f"{rule} {shares[name, rule]:.2f}" for rule in RULES))
for name in ("trained", "random"):
    assert shares[name, "guided"] == 1.0
    assert shares[name, "deconvnet"] > shares[name, "backprop"] - 0.1
assert shares["trained", "deconvnet"] > 0.6 > shares["trained", "backprop"]
for key, number in ((("trained", "deconvnet"), 0.70), (("trained", "backprop"), 0.53),
                    (("random", "deconvnet"), 0.59), (("random", "backprop"), 0.58)):
    quoted(shares[key], number)

# %% [markdown]
# Guided backprop pastes every filter with the sign with which it matched the image
# (share 1.00, by construction); the deconvnet 70 % of its weight, the gradient about
# half (0.53), so the gradient's filters, pasted with both signs, largely cancel (its
# likeness with the image, lesson 9: 0.07).  With random
# weights the shares hardly move for guided backprop (1.00) and the gradient (0.58);
# the deconvnet's falls to 0.59.  Nothing here needs trained weights: the sum of the
# filters that responded to the image, pasted where they responded, looks like the
# image.  This is Nie et al. (2018)'s partial image recovery, in this course's notation.
#
# The same first layer, forward and back
# --------------------------------------
# The argument needs the pasted filters to be the ones that *matched*: the w_c on the
# way back must be the w_c of the forward pass.  Redraw only the first layer on the way
# back (``where="backward"``, ``mode="independent"``), and the likeness is gone.

# %%
alone = {rule: [] for rule in ("deconvnet", "guided")}
for i, (c, h, w) in enumerate(strongest_units(net)):
    for rule in alone:
        r = sanity.randomization_test(net, images[i], LAYER, c, rule=rule, position=(h, w),
                                      mode="independent", where="backward")
        alone[rule].append((sanity.likeness(images[i], r.maps[0], r.window),
                            sanity.likeness(images[i], r.maps[-1], r.window)))
for rule, pairs in alone.items():
    trained_like, redrawn_like = np.median(pairs, axis=0)
    print(f"{rule:9s}: likeness with the image {trained_like:+.2f} trained, "
          f"{redrawn_like:+.2f} with only {r.steps[-1]} redrawn on the way back")
    assert trained_like > 0.25 > 0.1 > abs(redrawn_like)
    quoted(redrawn_like, {"deconvnet": 0.02, "guided": 0.03}[rule])

# %% [markdown]
# Remove the max-pools
# --------------------
# The switches say *where* the filters are pasted.  Take them away: the same random
# network with each max-pool removed and its stride given to the next convolution
# (``sanity.without_max_pools``: an all-convolutional net, as in Springenberg et al.
# 2014).  The deconvnet's way back then reads nothing from the image but the seed a —
# its ReLU rule ignores the forward pass — so a unit's map is the same picture on every
# image, up to scale; guided backprop still reads the ReLU masks.

# %%
pool_free = sanity.without_max_pools(random_net)
TOP = len(pool_free.layers) - 3                     # its last ReLU
print(f"without max-pools: {[type(layer).__name__ for layer in pool_free.layers]}")
likeness = {}
for name, network, layer in (("with max-pools", random_net, LAYER),
                             ("without", pool_free, TOP)):
    for rule in RULES:
        likeness[name, rule], n = median_likeness(network, rule, layer)
    print(f"random network {name:14s}: median likeness with the image "
          + ", ".join(f"{rule} {likeness[name, rule]:+.2f}" for rule in RULES)
          + f" ({n} maps ≠ 0)")
c, h, w = strongest_units(pool_free, TOP)[0]                  # image 0's strongest unit
top = pool_free.trace(images, upto=TOP).outputs[TOP][:, c, h, w]
on_both = [0, int(np.flatnonzero(top[1:] > 0)[0]) + 1]           # and another image it is on in
maps = [vis.project(pool_free, images[i], TOP, c, (h, w), "deconvnet") / top[i]
        for i in on_both]
proportional = np.allclose(maps[0], maps[1], rtol=1e-4, atol=1e-6 * np.abs(maps[0]).max())
print(f"without max-pools, unit ({c}, {h}, {w}) on images {on_both}: the deconvnet maps "
      f"are the same picture times a: {proportional}")
assert proportional
assert likeness["with max-pools", "deconvnet"] > 0.2 > 0.05 > likeness["without", "deconvnet"]
assert likeness["without", "guided"] > 0.1
for key, number in ((("with max-pools", "deconvnet"), 0.27), (("without", "deconvnet"), 0.02),
                    (("with max-pools", "guided"), 0.35), (("without", "guided"), 0.16)):
    quoted(likeness[key], number)

# the picture: image 0's strongest unit in the trained, the random and the pool-free
# random network, each map beside the image under its field
shown = []
for name, network, layer in (("trained", net, LAYER), ("all weights random", random_net, LAYER),
                             ("random, no max-pools", pool_free, TOP)):
    c, h, w = strongest_units(network, layer)[0]
    window = sanity.receptive_window(network, layer, (h, w), images.shape[2:])
    m = vis.project(network, images[0], layer, c, (h, w), "deconvnet")
    shown.append((name, window, m, sanity.likeness(images[0], m, window)))
fig, axes = plt.subplots(2, len(shown), figsize=(8.6, 6.0), layout="constrained")
for (top_ax, bottom_ax), (name, (r0, r1, c0, c1), m, like) in zip(axes.T, shown):
    patch = images[0][:, r0:r1, c0:c1]
    top_ax.imshow(plots.signed_rgb(m[:, r0:r1, c0:c1]), interpolation="nearest")
    top_ax.set_title(f"deconvnet, {name}\nlikeness with the image {like:+.2f}", fontsize=10)
    bottom_ax.imshow(plots.signed_rgb(patch - patch.mean(axis=(1, 2), keepdims=True)),
                     interpolation="nearest")
    bottom_ax.set_title("the image there, each channel\nminus its mean (what it is "
                        "compared with)", fontsize=9)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Image 0: each network's strongest unit at its last ReLU, the deconvnet map "
             "cropped to the unit's field\n(top; grey = 0) above the image under it "
             "(bottom, same colour convention)", fontsize=11)
plots.save_lesson_figure(fig, "10_pasted_filters", thumbnail="10",
                         thumbnail_axes=[axes[0, 1], axes[1, 1]])

# %% [markdown]
# The figure shows image 0: likenesses of 0.2–0.3 are a tendency of the signs, not a
# copy of the image.  Without switches the deconvnet's likeness falls from 0.27 to
# 0.02: its map is one fixed picture per unit, whatever the image.  Guided backprop
# keeps some (0.35 → 0.16) through its masks.  That is Springenberg et al.'s
# observation — without max-pooling the deconvnet's reconstructions from higher layers
# stop showing the image, and adding the forward ReLU masks restores them.  It also
# suggests what to expect of a ResNet, which has a single max-pool near the input:
# above it, only the masks can carry the image (lesson 12 takes a ResNet through
# minideconv).
#
# Two classes, one image
# ----------------------
# If the picture is made of filters pasted where the image excited them, the unit at
# the top should matter little.  Seed the logit of the most likely class, then of the
# runner-up (a seed of 1 each, ``seed_value="one"``), on the same image, and correlate
# the two maps.

# %%
logits = net.trace(images).outputs[-1]
classes = {rule: [] for rule in RULES}
for i in range(len(images)):
    first, second = np.argsort(-logits[i])[:2]
    for rule in RULES:
        a, b = (vis.project(net, images[i], len(net.layers) - 1, int(k), rule=rule,
                            seed_value="one") for k in (first, second))
        classes[rule].append(np.corrcoef(a.ravel(), b.ravel())[0, 1])
print("top class vs runner-up, median correlation of the two maps over 16 images: "
      + ", ".join(f"{rule} {np.median(classes[rule]):.2f}" for rule in RULES))
assert np.median(classes["guided"]) > np.median(classes["deconvnet"]) > \
    np.median(classes["backprop"])
for rule, number in zip(RULES, (0.61, 0.92, 0.43)):
    quoted(np.median(classes[rule]), number)

# %% [markdown]
# Guided backprop draws nearly the same map for both classes (0.92), the deconvnet a
# similar one (0.61), the gradient a different one (0.43).  Nie et al. (2018) made this
# their headline: these two rules are not class-sensitive.  It is why the methods built
# to explain a decision — Grad-CAM, integrated gradients — read the gradient, not the
# rectified signal.
#
# The transpose of a random first layer
# -------------------------------------
# A twist on the seed question.  How close is Wᵀ W x₀ to x₀, after the best rescaling,
# for the trained first layer and for one with the same shape and random Gaussian
# filters?  The cosine between the two says it (the error after the best rescaling is
# √(1 − cos²)).

# %%
cosines = {}
for name, weight in (("trained", net.layers[0].weight),
                     ("random", sanity.randomize(net, [0]).layers[0].weight)):
    W = matrices.conv2d_matrix(weight.astype(np.float64), images.shape[1:])
    x = images.reshape(len(images), -1).astype(np.float64).T          # one column each
    back = W.T @ (W @ x)
    cosines[name] = np.sum(back * x, axis=0) / (np.linalg.norm(back, axis=0)
                                                * np.linalg.norm(x, axis=0))
    print(f"{name:7s} first layer: median cos(WᵀW x₀, x₀) {np.median(cosines[name]):.2f}, "
          f"error after the best rescaling {np.median(np.sqrt(1 - cosines[name] ** 2)):.2f}")
assert np.median(cosines["random"]) > 0.8 > 0.5 > np.median(cosines["trained"])
for name, (cosine, error) in (("trained", (0.38, 0.92)), ("random", (0.90, 0.43))):
    quoted(np.median(cosines[name]), cosine)
    quoted(np.median(np.sqrt(1 - cosines[name] ** 2)), error)

fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
ax.hist([cosines["trained"], cosines["random"]], bins=np.linspace(0, 1, 21),
        label=["trained W₀", "random Gaussian W₀"])
ax.set_xlabel("cos(WᵀW x₀, x₀), 16 test images")
ax.set_ylabel("images")
ax.legend()
ax.set_title("The transpose is closer to an inverse (up to scale) for random filters")
plots.save_lesson_figure(fig, "10_random_transpose")

# %% [markdown]
# The random layer's transpose is much closer to an inverse up to scale (cosine 0.90,
# error 0.43) than the trained one's (0.38, error 0.92).  For i.i.d. Gaussian filters
# the average of WᵀW over the draws is a multiple of the identity away from the border
# (exercise 2 measures how near one draw comes): this is the core of Nie et al.'s
# analysis of random networks.  The trained first layer is far from that: its condition
# number is 163 (lesson 3).
#
# What it means
# -------------
# - The deconvnet's and guided backprop's pictures look like the image because they are
#   made of the first-layer filters that responded to it, pasted where they responded
#   (the switches), mostly with the sign with which they responded (all of guided
#   backprop's weight, 70 % of the deconvnet's).  Trained weights are not needed, only
#   the same weights forward and back.
# - Without the switches the deconvnet loses the image; the masks keep some of it for
#   guided backprop.
# - The unit at the top matters little to guided backprop (two classes: 0.92).  By
#   Adebayo et al. (2018)'s test, a likeness that survives random weights is no evidence
#   of what the network learned.  Sixt et al. (2020, *When explanations lie*) found the
#   maps of many such modified-backprop rules, the deconvnet and guided backprop among
#   them, nearly independent of the later layers' weights, and explained it for the
#   rules built on positive contributions (z⁺): a long product of non-negative matrices
#   tends to rank one.

# %%
print(f"lesson 10 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **Pasted filters by hand.**  For image 0's strongest unit of layer 7, walk the
#    deconvnet's way back layer by layer (``net.layers[i].backward``) down to the output
#    of layer 0, compare the signal with ``sanity.pasted_filters``, build W₀ with
#    ``matrices.conv2d_matrix`` and check that W₀ᵀ r₀ is the projection.  Then count, in
#    a loop over the units, the share of |r₀| at units that were on.
# 2. **How many random filters make WᵀW ≈ cI?**  For 4, 16 and 64 i.i.d. Gaussian 5 × 5
#    filters on 3 × 32 × 32, compute the median cos(WᵀW x₀, x₀) over the 16 test images.
#    How does it grow with the number of filters, and what stops it short of 1?
# 3. **The least likely class.**  Repeat the class experiment with the top class and the
#    *least* likely one.  Does guided backprop tell them apart better than it tells the
#    top two?
#
# The solutions, which assert every answer, are in
# ``lessons/solutions/10_why_it_looks_like_the_image.py``.
