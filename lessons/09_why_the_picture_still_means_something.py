# %% [markdown]
"""
Lesson 9: Why the picture still means something
===============================================

Lessons 2–3 showed that the transposed convolution is not the inverse of the
convolution, so the deconvnet's output is not a reconstruction of the image.  What does
it show, then?  A projection is made of two ingredients: the *forward trace* of this
image (the pooling switches, the ReLU inputs, and the value a of the chosen activation)
and the *learned weights* that the way back multiplies by.  This lesson takes them apart
on the shipped network with two experiments from the literature: redraw the weights and
see what survives (model randomization, Adebayo et al. 2018), and keep the weights but
use another image's trace (the switch swap).
"""

# %%
import time

import numpy as np

from minideconv import nn, plots
from minideconv import visualize as vis
from minideconv.compile import warm_up
from minideconv.visualize import sanity
from minideconv.data import CLASSES, load_dataset, load_model

plt = plots.setup()
start = time.perf_counter()
RULES = ("deconvnet", "guided", "backprop")


def quoted(value, number):
    """The text below quotes ``number`` for ``value``: make sure it still says so."""
    assert abs(value - number) <= 0.01, f"measured {value:.3f}, the text says {number}"

# %% [markdown]
# What the way back reads from the image
# --------------------------------------
# Every layer's ``backward(r, record, rule)`` (``minideconv.nn``) reads its record:
#
# - a ``Conv2d`` reads only the *size* of its recorded input (Wᵀ r needs nothing else);
# - a ``ReLU`` reads its recorded input x only for the rules that mask by it, backprop
#   and guided backprop; the deconvnet's rule, max(r, 0), does not look at x at all;
# - a ``MaxPool2d`` reads its switches (and the size of its input).
#
# So, once the unit is chosen, the image reaches its projection in exactly three ways:
# the switches, the ReLU masks (backprop and guided only) and the seed value a.  We
# check it on the first of 16 test images, at its strongest unit of layer 7 (the ReLU
# after the last convolution): blank every record the way back should not read, and
# the projection does not change by a single bit.

# %%
net = load_model()
warm_up(net, rules=RULES)
images, labels = load_dataset("test", n=16)
LAYER = 7
activation = net.trace(images, upto=LAYER).outputs[LAYER]          # (16, 32, 7, 7)
units = [tuple(int(v) for v in np.unravel_index(a.argmax(), a.shape)) for a in activation]
print(f"{len(images)} test images; for each, its strongest unit (channel, h, w) of layer "
      f"{LAYER} ({type(net.layers[LAYER]).__name__} after the last convolution):")
print("   ", units)


def blanked(trace, keep_relu_inputs):
    """The trace with every Conv2d input (and, unless kept, every ReLU input) zeroed."""
    records = []
    for layer, record in zip(net.layers, trace.records):
        blank = isinstance(layer, nn.Conv2d) or (isinstance(layer, nn.ReLU)
                                                 and not keep_relu_inputs)
        records.append(np.zeros_like(record) if blank else record)
    return nn.Trace(input=np.zeros_like(trace.input), outputs=trace.outputs, records=records)


channel, h, w = units[0]
trace = net.trace(images[:1], upto=LAYER)
seed = np.zeros_like(trace.outputs[LAYER])
seed[0, channel, h, w] = trace.outputs[LAYER][0, channel, h, w]
for rule in RULES:
    kept = rule != "deconvnet"   # the deconvnet needs no ReLU input
    from_blanked = net.backward(seed, blanked(trace, kept), start=LAYER, rule=rule)[0]
    same = np.array_equal(from_blanked,
                          vis.project(net, images[0], LAYER, channel, (h, w), rule))
    print(f"{rule:9s}: projection from a trace with the Conv2d inputs"
          f"{'' if kept else ' and ReLU inputs'} blanked = the projection: {same}")
    assert same

# %% [markdown]
# Comparing two maps: inside the receptive field
# ----------------------------------------------
# ``minideconv.visualize.sanity`` compares a map with the trained one by Spearman's rank
# correlation (signed, and of ``|map|``) and by SSIM, all computed inside the unit's
# receptive field, clipped to the image.  Outside it every projection is exactly zero
# (lesson 7), and that shared zero region alone makes unrelated maps look alike to the
# measures that see it as agreement: the magnitudes' ranking (zero is the smallest
# ``|value|`` in both maps) and SSIM.  Below, with *every* layer's weights redrawn on the
# way back, the same pairs of maps are compared both ways.

# %%
def cascade(where, mode="cascade", seed=0):
    return {rule: [sanity.randomization_test(net, images[i], LAYER, c, rule=rule,
                                             position=(h, w), mode=mode, where=where,
                                             seed=seed)
                   for i, (c, h, w) in enumerate(units)] for rule in RULES}


def median(results, metric="spearman"):
    return np.median([getattr(r, metric) for r in results], axis=0)


backward = cascade("backward")
steps = backward["deconvnet"][0].steps
r0, r1, c0, c1 = backward["deconvnet"][0].window
print(f"steps: {steps}; the first unit's field: rows {r0}..{r1 - 1}, "
      f"columns {c0}..{c1 - 1}")
for rule in RULES:
    whole = [sanity.similarity(r.maps[0], r.maps[-1]) for r in backward[rule]]
    whole_abs = np.median([s.spearman_abs for s in whole])
    whole_ssim = np.median([s.ssim for s in whole])
    inside_abs = median(backward[rule], "spearman_abs")[-1]
    inside_ssim = median(backward[rule], "ssim")[-1]
    print(f"{rule:9s}: all layers redrawn, median rank correlation of |map| "
          f"{inside_abs:.2f} inside the field, {whole_abs:.2f} on the whole image; SSIM "
          f"{inside_ssim:.2f} inside, {whole_ssim:.2f} on the whole")
    assert 0.91 <= whole_abs <= 0.98 and 0.45 < inside_abs < 0.55
    assert whole_ssim > 0.6 > 0.1 > inside_ssim

# %% [markdown]
# On the whole image, a map made with every weight of the way back redrawn has a rank
# correlation of ``|map|`` with the trained map of 0.92–0.97, and an SSIM above 0.6; inside
# the field the same pairs score about 0.5 and under 0.1.  Every number below is
# computed inside the field.  Even there the rank correlation of ``|map|`` stays near 0.5
# with every weight redrawn, so this lesson reads the signed rank correlation.

# %% [markdown]
# The cascade on the way back
# ---------------------------
# ``where="backward"`` keeps the trained forward pass — its switches, its ReLU masks,
# the activation's value — and redraws only the weights that the way back multiplies
# by, from the top layer down, cumulatively (``mode="cascade"``).  Each redrawn layer
# gets i.i.d. normal weights with the standard deviation of its trained ones.  It asks
# Nie et al. (2018)'s question: how much of the picture is the trained forward trace,
# how much the learned weights?  One image first, three rules in rows:

# %%
first = 0
c, h, w = units[first]
print(f"image {first} ({CLASSES[labels[first]]}), unit (channel {c}, {h}, {w}), "
      f"a = {activation[first, c, h, w]:.2f}")
for rule in RULES:
    r = backward[rule][first]
    print(f"{rule:9s}: signed {np.round(r.spearman, 2)}  |map| "
          f"{np.round(r.spearman_abs, 2)}  SSIM {np.round(r.ssim, 2)}")
fig = plots.randomization_figure({rule: backward[rule][first] for rule in RULES},
                                 images[first])
plots.save_lesson_figure(fig, "09_cascade_backward", thumbnail="09",
                         thumbnail_axes=fig.axes[1:5])

# %% [markdown]
# Over the 16 images, the medians (column "layer 6": the top convolution redrawn;
# "layer 0": all three): the deconvnet and guided backprop keep much of their picture when the top
# layer's weights are random (signed rank correlation 0.61 and 0.73), the gradient
# does not (−0.08); with every layer redrawn nothing of the signed pattern is left
# (``|ρ|`` ≤ 0.04 for all three rules).

# %%
print("median over 16 images, weights redrawn on the way back (cascade):")
print(f"   {'':9s}  " + "  ".join(f"{s:>16s}" for s in steps))
for rule in RULES:
    print(f"   {rule:9s}  " + "  ".join(f"{v:>+16.2f}" for v in median(backward[rule])))
top = {rule: median(backward[rule])[1] for rule in RULES}
for rule, number in zip(RULES, (0.61, 0.73, -0.08)):
    quoted(top[rule], number)
assert top["guided"] > top["deconvnet"] > 0.5 > 0.2 > abs(top["backprop"])
assert all(abs(median(backward[rule])[-1]) <= 0.04 for rule in RULES)

# %% [markdown]
# The cascade in the whole network
# --------------------------------
# ``where="network"`` redraws the weights (and biases) in the network itself and runs
# the forward pass again, as Adebayo et al. did: the switches, the masks and the
# activation change too.  We keep projecting the same unit, so a unit that the
# redrawn network leaves off (a = 0 after the ReLU) has nothing to project: its map is
# zero, and a zero map scores similarity 0.  Counted in a median, those zeros would
# make the curve *rise* as more layers are redrawn (more units stay on); the figure
# takes the medians over the maps ≠ 0 and counts them under each step.

# %%
network = cascade("network")
for rule, number in zip(RULES, (0.64, 0.73, -0.03)):
    nonzero = np.array([[np.any(m) for m in r.maps] for r in network[rule]])
    on = np.nanmedian(np.where(nonzero, [r.spearman for r in network[rule]], np.nan), 0)
    print(f"{rule:9s}: maps ≠ 0 at each step {nonzero.sum(axis=0)} of 16; median signed "
          f"rank correlation {np.round(median(network[rule]), 2)}, over the maps ≠ 0 "
          f"{np.round(on, 2)}")
    assert list(nonzero.sum(axis=0)) == [16, 6, 12, 13]
    quoted(on[1], number)
fig = plots.randomization_summary_figure(
    {"on the way back": backward, "whole network": network},
    title="Cascading randomization, median over 16 test images (band: 25th to 75th "
          "percentile)\nlayer 7, each image's strongest unit; medians over the maps ≠ 0, "
          "counted under each step")
plots.save_lesson_figure(fig, "09_cascade_summary")

# %% [markdown]
# Redrawn in the network, the top convolution leaves the unit off in 10 of the 16
# images.  In the 6 where it stays on, the medians (0.64, 0.73 and −0.03) are close to
# those on the way back (0.61, 0.73 and −0.08).

# %% [markdown]
# One layer at a time
# -------------------
# ``mode="independent"`` redraws one layer and keeps the others trained.  Adebayo et
# al.'s errata (arXiv version 3) say guided backprop is invariant to the higher layers'
# weights but distorted when the lower layers are randomized; on the way back, here:

# %%
alone = cascade("backward", mode="independent")
for rule in RULES:
    print(f"{rule:9s}: only this layer redrawn {alone[rule][0].steps[1:]}: median signed "
          f"rank correlation {np.round(median(alone[rule])[1:], 2)}")
quoted(median(alone["guided"])[1], 0.73)
quoted(median(alone["guided"])[-1], 0.10)
quoted(median(alone["deconvnet"])[-1], 0.11)

# %% [markdown]
# Partial image recovery
# ----------------------
# Nie et al. (2018) showed, by analysis and by experiment, that guided backprop and the
# deconvnet essentially do (partial) image recovery, unrelated to what the network
# decides.  We measure how much a map looks like the image itself: the signed rank
# correlation, inside the field, between the map and the image, each channel centred
# on its mean over the field (``sanity.likeness``).

# %%
likeness = sanity.likeness
for rule, numbers in zip(RULES, ((0.29, 0.01, 0.27), (0.35, 0.02, 0.34),
                                  (0.07, -0.02, 0.02))):
    trained = np.median([likeness(images[i], r.maps[0], r.window)
                         for i, r in enumerate(backward[rule])])
    back = np.median([likeness(images[i], r.maps[-1], r.window)
                      for i, r in enumerate(backward[rule])])
    whole_net = np.median([likeness(images[i], r.maps[-1], r.window)
                           for i, r in enumerate(network[rule]) if np.any(r.maps[-1])])
    print(f"{rule:9s}: map vs image, median rank correlation: trained {trained:+.2f}; "
          f"all layers redrawn on the way back {back:+.2f}; in the whole network "
          f"{whole_net:+.2f} (maps ≠ 0)")
    for value, number in zip((trained, back, whole_net), numbers):
        quoted(value, number)

# %% [markdown]
# The trained maps of the deconvnet and guided backprop correlate with the image
# (medians 0.29 and 0.35), the gradient's hardly (0.07).  A network with *all* its
# weights redrawn still gives image-like maps (0.27 and 0.34, over the 13 maps that are
# not zero): there the forward pass and the way back use the same random weights.  With
# every layer redrawn on the way back only, the forward pass keeps the trained weights,
# the way back uses others, and the likeness is gone (0.01 and 0.02).

# %% [markdown]
# The switch swap
# ---------------
# Now the other way round: keep every weight, and pass the image's unit down through
# *another* image's trace (``sanity.switch_swap``).  We pair each image with the first
# of the next 100 test images in which the same unit is on (where it is off, the masks
# of backprop and guided backprop stop the signal at once).
#
# What the swap computes can be said exactly.  Every step of the way back is linear in
# the signal (Wᵀ, P(s)ᵀ, a mask) or positively homogeneous (max(λr, 0) = λ max(r, 0) for
# λ ≥ 0), so the swapped map is the *other image's own projection* of the same unit
# times a_image / a_other (exercise 3 checks it): the image contributes one number.

# %%
others, _ = load_dataset("test", n=116)
others = others[16:]
others_activation = net.trace(others, upto=LAYER).outputs[LAYER]


def partner(i):
    c, h, w = units[i]
    return int(np.flatnonzero(others_activation[:, c, h, w] > 0)[0])


def strongest_partner(i):
    c, h, w = units[i]
    return int(np.argmax(others_activation[:, c, h, w]))


def swap_test(pick):
    """{rule: [(own vs swapped, swapped vs the partner image, swapped vs the image)]}."""
    found = {rule: [] for rule in RULES}
    for i, (c, h, w) in enumerate(units):
        other = others[pick(i)]
        window = backward["deconvnet"][i].window
        for rule in RULES:
            own = backward[rule][i].maps[0]
            swapped = sanity.switch_swap(net, images[i], other, LAYER, c, rule, (h, w))
            found[rule].append((sanity.similarity(own, swapped, window),
                                likeness(other, swapped, window),
                                likeness(images[i], swapped, window)))
    return found


def ratio(pick):
    return np.median([others_activation[(pick(i),) + u] / activation[(i,) + u]
                      for i, u in enumerate(units)])


swap, strong = swap_test(partner), swap_test(strongest_partner)
for name, found, pick in (("first partner", swap, partner),
                          ("strongest partner", strong, strongest_partner)):
    print(f"{name}: median a_other / a_image {ratio(pick):.2f}")
    for rule in RULES:
        print(f"   {rule:9s}: own map vs swapped, median over 16 pairs: signed "
              f"{np.median([s.spearman for s, _, _ in found[rule]]):+.2f}, |map| "
              f"{np.median([s.spearman_abs for s, _, _ in found[rule]]):+.2f}, SSIM "
              f"{np.median([s.ssim for s, _, _ in found[rule]]):+.2f}; swapped map vs "
              f"the partner image {np.median([o for _, o, _ in found[rule]]):+.2f}, vs "
              f"the image {np.median([m for _, _, m in found[rule]]):+.2f}")
for rule, number in zip(RULES, (0.09, 0.02, -0.06)):
    quoted(np.median([s.spearman for s, _, _ in swap[rule]]), number)
quoted(ratio(partner), 0.12)
quoted(np.median([s.spearman for s, _, _ in strong["deconvnet"]]), 0.07)
for found, numbers in ((swap, (0.14, -0.01)), (strong, (0.32, 0.02))):
    quoted(np.median([o for _, o, _ in found["deconvnet"]]), numbers[0])
    quoted(np.median([m for _, _, m in found["deconvnet"]]), numbers[1])

# %% [markdown]
# With the other image's trace, the median signed rank correlation with the image's
# own map is +0.09 (deconvnet), +0.02 (guided) and −0.06 (backprop), while redrawing
# the top layer's weights on the way back kept 0.61 and 0.73.  The first partners
# activate the unit weakly (a median a_other / a_image of 0.12); with the strongest of
# the 100 instead, the deconvnet's swap keeps 0.07 of the image's own map.  And the
# swapped map does look like something: like the *partner* image (+0.14 with the first
# partner, +0.32 with the strongest), not like the image whose unit seeded it (−0.01,
# +0.02) — as it must, being the partner's own projection rescaled.
#
# Which switches matter?  The deconvnet reads nothing else, so we can swap one pool's
# switches at a time, keeping the image's own elsewhere (first partners, deconvnet):

# %%
def one_pool_swapped(i, other, pools):
    """The deconvnet map of image i's unit with ``other``'s switches at ``pools``."""
    c, h, w = units[i]
    own = net.trace(images[i][None], upto=LAYER)
    theirs = net.trace(other[None], upto=LAYER)
    records = [theirs.records[k] if k in pools else record
               for k, record in enumerate(own.records)]
    mixed = nn.Trace(input=own.input, outputs=own.outputs, records=records)
    signal = np.zeros_like(own.outputs[LAYER])
    signal[0, c, h, w] = own.outputs[LAYER][0, c, h, w]
    return net.backward(signal, mixed, start=LAYER, rule="deconvnet")[0]


pools = [k for k, layer in enumerate(net.layers[:LAYER]) if isinstance(layer, nn.MaxPool2d)]
one_pool = {}
for chosen in [(k,) for k in pools] + [tuple(pools)]:
    one_pool[chosen] = np.median([
        sanity.similarity(backward["deconvnet"][i].maps[0],
                          one_pool_swapped(i, others[partner(i)], chosen),
                          backward["deconvnet"][i].window).spearman
        for i in range(len(units))])
    print(f"deconvnet, the partner's switches at layer(s) {chosen}, the image's own "
          f"elsewhere: median signed rank correlation with the own map "
          f"{one_pool[chosen]:+.2f}")
quoted(one_pool[(2,)], 0.36)
quoted(one_pool[(5,)], 0.45)
quoted(one_pool[tuple(pools)], 0.09)

other = others[strongest_partner(first)]
c, h, w = units[first]
window = backward["deconvnet"][first].window
shown = {rule: (backward[rule][first].maps[0],
                sanity.switch_swap(net, images[first], other, LAYER, c, rule, (h, w)))
         for rule in RULES}
captions = {rule: tuple(f"vs image {likeness(images[first], m, window):+.2f}, "
                        f"vs other {likeness(other, m, window):+.2f}" for m in maps)
            for rule, maps in shown.items()}
fig = plots.switch_swap_figure(images[first], other, shown, window, captions=captions)
plots.save_lesson_figure(fig, "09_switch_swap")

# %% [markdown]
# Swapping either pool's switches alone leaves 0.36 (the pool after layer 2) and 0.45
# (after layer 5); swapping both, 0.09 — the same map as the full swap, since the
# deconvnet reads no mask.  The switches of both pools, and with them *where* the
# first-layer filters are pasted, fix the deconvnet's picture: redrawing the first
# convolution alone on the way back leaves 0.11, the top one alone 0.61.
#
# The figure shows image 0 with its strongest partner; under each map, its likeness
# (signed rank correlation inside the field) to each of the two images.
#
# What it means
# -------------
# - **Springenberg et al. (2014)** (*Striving for simplicity: the all convolutional
#   net*, arXiv:1412.6806) visualized a network without max-pooling, so without
#   switches, and found the deconvnet's reconstructions from higher layers unsharp;
#   adding the forward ReLU masks to the deconvnet's rule gave sharp ones: guided
#   backpropagation.
# - **Mahendran & Vedaldi (2016)** (*Salient deconvolutional networks*) cast the
#   deconvnet, backprop and guided backprop as one reversed architecture, and found
#   that their pictures owe most of their quality to the *bottleneck information* they
#   take from the forward pass — the switches and the ReLU masks — and change little
#   with the neuron reversed.  The blanked trace above is that bottleneck in code; the
#   switch swap measures it: another image's bottleneck gives another picture.
# - **Nie et al. (2018)** (*A theoretical explanation for perplexing behaviors of
#   backpropagation-based visualizations*) explained guided backprop and the deconvnet
#   as (partial) image recovery, unrelated to the network's decisions: here their maps
#   resemble the image (0.29 and 0.35) even when every weight of the network is random
#   (0.27 and 0.34).
# - **Adebayo et al. (2018)** (*Sanity checks for saliency maps*, NeurIPS 2018,
#   arXiv:1810.03292) proposed the randomization test: a map that stays the same when
#   the weights are random cannot be explaining what the network learned.  The errata
#   of their arXiv version 3 (2020) revise the guided-backprop results: invariant to
#   the higher layers' weights, distorted when the lower layers are randomized.  On the
#   way back here, redrawing the top convolution alone leaves guided backprop 0.73,
#   redrawing the first alone 0.10.
# - **Sixt et al. (2020)** (*When explanations lie: why many modified BP attributions
#   fail*, ICML 2020) found the maps of many modified-backprop rules, the deconvnet and
#   guided backprop among them, nearly independent of the later layers' weights, and
#   explained it for the rules built on positive contributions (z⁺): a long product of
#   non-negative matrices tends to rank one.  On this three-convolution network the two
#   rectifying rules are not invariant to the top layer, only much less sensitive to it
#   than the gradient (0.61 and 0.73 against −0.08).
#
# Back to the question of lessons 2–3: the deconvnet's picture does not represent the
# activation by inverting the convolutions.  On this network what fixes the
# deconvnet's picture is the switches *together with the first-layer filters*: another
# image's switches leave a signed rank correlation of 0.09 with it (one pool's only:
# 0.36 and 0.45), the first convolution redrawn alone on the way back 0.11, every
# convolution redrawn 0.01, while random weights in the top layer leave 0.61.  Those
# numbers compare maps with maps.  Compared with the *image*, the maps of the
# deconvnet and guided backprop keep their likeness (0.29 and 0.35) when every weight
# of the network is random (0.27 and 0.34): the resemblance to the image does not
# depend on what the network learned; lesson 10 opens the last step of the way back to
# see why.  What the unit detects is a separate question, for which lesson 7 puts the
# top-9 image patches beside the projections.

# %%
print(f"lesson 9 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. Does the conclusion depend on the random draw?  Repeat the cascade on the way back
#    with ``seed=1`` and ``seed=2`` and compare the medians at the top layer with seed
#    0: does the order guided > deconvnet > backprop hold?
# 2. The deconvnet reads no ReLU mask.  Build a trace that has *this* image's ReLU
#    inputs and the *other* image's switches, pass the seed down it with each rule, and
#    compare with ``sanity.switch_swap``: for which rule is it the same map?
# 3. ``switch_swap(net, image, other, ...)`` seeds the other image's trace with *this*
#    image's value a.  Show that it equals the other image's own projection of the same
#    unit times a_image / a_other, and say which property of max(r, 0) makes it so.
#
# The solutions are in ``lessons/solutions/09_why_the_picture_still_means_something.py``.
