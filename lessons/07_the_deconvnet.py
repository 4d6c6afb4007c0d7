# %% [markdown]
"""
Lesson 7: The deconvnet
=======================

Everything comes together on a trained network.  minideconv ships a small ZF-like
network (three convolutions with ReLUs, two overlapping 3 × 3 / 2 max-pools and a linear
classifier) trained on an embedded dataset of ten kinds of coloured shapes and textures.
We do what Zeiler & Fergus did: pick one activation high in the network, pass it down
to the pixels layer by layer with the transposes of lessons 2–6, look at the nine images
where a feature fires most (their Figure 2), compare the deconvnet with the gradient and
guided backprop, and hide parts of the image to see what the classifier needs
(occlusion, their §4.2).
"""

# %%
import time

import numpy as np

from minideconv import plots
from minideconv import visualize as vis
from minideconv.plots.lessons import signed_rgb_colorbar, top_patches_figure
from minideconv.data import CLASSES, load_dataset, load_model

plt = plots.setup()
start = time.perf_counter()

# %% [markdown]
# The network and the data
# ------------------------
# ``load_model()`` returns a ``minideconv.nn.Sequential``; every layer's ``forward``
# records what its way back needs (the input of a ReLU, the switches of a pool), and its
# ``backward`` applies the transpose, with one of the three ReLU rules of lesson 6.
# We take the first 300 images of the test split (3 × 32 × 32, drawn in code: nothing
# is downloaded).

# %%
net = load_model()
images, labels = load_dataset("test", n=300)
print(net)
for i, shape in enumerate(net.layer_shapes()):
    print(f"   output of layer {i} ({type(net.layers[i]).__name__}): {shape}")
accuracy = np.mean(net(images).argmax(axis=1) == labels)
print(f"accuracy on these {len(images)} test images: {accuracy:.1%}")
assert accuracy > 0.8

# %% [markdown]
# Which features to look at
# -------------------------
# We look at layer 7, the ReLU after the last convolution: 32 feature maps of 7 × 7,
# each unit seeing a 23 × 23 window of the image (its receptive field, from
# ``minideconv.shapes``).  For every feature we find its strongest activation in each
# image, and pick three features whose nine best images are dominated by three
# different classes.

# %%
LAYER = 7
activation = net.trace(images, upto=LAYER).outputs[LAYER]         # (300, 32, 7, 7)
best = activation.reshape(len(images), activation.shape[1], -1).max(axis=2)
features, classes_taken = [], set()
for channel in np.argsort(-best.max(axis=0)):
    top9 = np.argsort(-best[:, channel], kind="stable")[:9]
    majority = np.bincount(labels[top9], minlength=len(CLASSES)).argmax()
    if majority not in classes_taken:
        features.append(int(channel))
        classes_taken.add(majority)
        print(f"feature {channel:2d}: strongest activation {best[:, channel].max():5.1f}, "
              f"top-9 images: {[CLASSES[k] for k in labels[top9]]}")
    if len(features) == 3:
        break
field = net.receptive_field(LAYER)
print(f"receptive field of a layer-{LAYER} unit: {field.size[0]} × {field.size[1]} pixels")

# %% [markdown]
# One activation, layer by layer
# ------------------------------
# Take the first feature and the image where it fires most.  Keep its strongest unit a,
# set every other activation of the layer to zero, and walk down: at a ReLU the
# deconvnet rectifies the signal, max(r, 0); at a convolution it applies Wᵀ
# (``conv_transpose2d``); at a max-pool it unpools into the recorded switches, P(s)ᵀ.
# The signal starts at one unit and spreads — but never beyond the unit's receptive
# field.

# %%
feature = features[0]
index = int(np.argmax(best[:, feature]))
image = images[index]
trace = net.trace(image[None], upto=LAYER)
positions, values = vis.strongest(trace.outputs[LAYER], feature)
h, w = (int(v) for v in positions[0])
print(f"image {index} ({CLASSES[labels[index]]}): feature {feature} peaks at ({h}, {w}), "
      f"a = {values[0]:.2f}")

signal = np.zeros_like(trace.outputs[LAYER])
signal[0, feature, h, w] = values[0]
stages = [(f"layer {LAYER}: one unit\n(feature {feature}, 7 × 7)", signal[0, feature])]
for i in range(LAYER, -1, -1):
    signal = net.layers[i].backward(signal, trace.records[i], rule="deconvnet")
    kind = type(net.layers[i]).__name__
    nonzero = np.count_nonzero(np.abs(signal).sum(axis=1))
    print(f"   after layer {i} {kind:9s}: signal {signal.shape[1:]}, "
          f"{nonzero} nonzero positions")
    if kind in ("Conv2d", "MaxPool2d") and i > 0:
        step = "Wᵀ" if kind == "Conv2d" else "unpool P(s)ᵀ"
        stages.append((f"after layer {i}: {step}\n(Σ|r| over {signal.shape[1]} "
                       f"channels, {signal.shape[2]} × {signal.shape[3]})",
                       np.abs(signal[0]).sum(axis=0)))
projection = signal[0]
assert np.allclose(projection, vis.project(net, image, LAYER, feature, rule="deconvnet"))

r0, r1, c0, c1 = field.window((h, w))
outside = np.ones(image.shape[1:], dtype=bool)
outside[max(r0, 0):r1, max(c0, 0):c1] = False
print(f"receptive field rows {r0}..{r1 - 1}, columns {c0}..{c1 - 1}; "
      f"max |projection| outside it = {np.abs(projection[:, outside]).max():g}")
assert np.abs(projection[:, outside]).max() == 0

# %%
fig, axes = plt.subplots(2, 4, figsize=(14.5, 7.4), layout="constrained")
axes = axes.ravel()
axes[0].imshow(plots.as_rgb(image))
plots.draw_window_box(axes[0], (r0, r1, c0, c1), color="yellow")
axes[0].set_title(f"image {index} ({CLASSES[labels[index]]})\nbox: receptive field")
for ax, (title, values_shown) in zip(axes[1:], stages):
    shown = ax.imshow(values_shown, cmap=plots.UNSIGNED, vmin=0)
    ax.set_title(title, fontsize=10)
    plots.colorbar(ax, shown, "Σ|r|" if ax is axes[1] else None)
pixel_limit = plots.symmetric_limit(projection, percentile=plots.PROJECTION_PERCENTILE)
axes[6].imshow(plots.signed_rgb(projection, limit=pixel_limit))
axes[6].set_title("after layer 0: W₀ᵀ\npixels, 3 × 32 × 32 (grey = 0)", fontsize=10)
axes[7].imshow(plots.signed_rgb(vis.window_patch(projection, (r0, r1, c0, c1)),
                                limit=pixel_limit))
axes[7].set_title(f"the same, cropped to the\n{r1 - r0} × {c1 - c0} receptive field",
                  fontsize=10)
signed_rgb_colorbar([axes[6], axes[7]], projection, limit=pixel_limit,
                    label="value per colour channel\n(grey = 0; clipped at the 99th "
                          "percentile of |r|)")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
fig.suptitle("The deconvnet, one layer at a time: one unit's signal spreads down to the "
             "pixels of its receptive field")
plots.save_lesson_figure(fig, "07_layer_by_layer")

# %% [markdown]
# The top-9 grid
# --------------
# Zeiler & Fergus's Figure 2: for each feature, the nine images where it fires most
# (one activation per image), each shown as the image patch under the unit's receptive
# field (bottom) below the deconvnet projection of that single activation (top), tile
# for tile.  The projection is the deconvnet's pattern for that activation, in the
# patch's pixels; set beside the patches it shows what the nine images have in common
# where the unit looks (what it owes to the image and what to the weights is measured
# in lesson 9).  A projection's colours are not image colours: each colour channel
# shows the sign and size of the map in that channel (mid-grey = 0), so a pure red
# pixel says the map is positive in the red channel and negative in the other two,
# whatever colour the image has there.

# %%
grid = [(channel, vis.top_k_patches(net, images, LAYER, channel, k=9))
        for channel in features]
for channel, top in grid:
    assert np.all(np.diff(top.values) <= 0)
    print(f"feature {channel:2d}: top-9 activations {np.round(top.values, 1)}")
assert grid[0][1].indices[0] == index
fig = top_patches_figure(grid, f"Layer {LAYER} (the ReLU after the third convolution)")
plots.save_lesson_figure(fig, "07_top9")

# %% [markdown]
# Deconvnet, gradient and guided backprop
# ---------------------------------------
# The same activation with the three ReLU rules (lesson 6).  All three use the same Wᵀ
# and P(s)ᵀ and differ only at the ReLUs: the gradient also passes negative signals
# wherever the forward unit was active, the deconvnet ignores the forward masks and
# passes only positive signals, guided backprop does both.  How much the pictures
# differ depends on the layer and the image; the correlations printed below measure it.

# %%
rules = ("deconvnet", "backprop", "guided")
projections = {rule: vis.project(net, image, LAYER, feature, rule=rule) for rule in rules}
flat = {rule: p.ravel() for rule, p in projections.items()}
for a, b in [("deconvnet", "backprop"), ("deconvnet", "guided"), ("backprop", "guided")]:
    print(f"correlation {a} / {b}: {np.corrcoef(flat[a], flat[b])[0, 1]:.2f}")
for rule, p in projections.items():
    print(f"{rule:9s}: {np.count_nonzero(p) / p.size:.0%} of the pixel values nonzero")
    assert np.abs(p[:, outside]).max() == 0            # all stay in the receptive field
assert not np.allclose(projections["deconvnet"], projections["backprop"])

# %% [markdown]
# What the correlations say
# -------------------------
# A correlation near 1 says the two pictures have nearly the same pattern up to scale;
# it does not say they are the same map.  Where can the rules part?  Going down from a
# layer-7 unit the signal crosses three ReLUs: layer 7's, which only ever sees the one
# chosen (active, positive) unit, and those of layers 4 and 1, each directly below an
# unpooling — so the signal arriving there sits at switches only.
#
# - The deconvnet and guided backprop differ only where a *positive* signal arrives at a
#   unit that was *off* going forward (guided drops it, the deconvnet passes it).  A
#   switch is at an inactive unit only when its whole pooling window was inactive.
# - The deconvnet and the gradient differ where the signal is *negative* (the gradient
#   passes it at active units, the deconvnet drops it) and at those same positive values
#   at inactive units.
#
# We measure both shares of the signal, by magnitude, at each ReLU, for each rule's own
# walk down, and then the correlations over all 27 units of the top-9 grid, not just
# this one.

# %%
def shares_at_relus(rule):
    """{layer: (share of |r| that is negative, share that is positive at an inactive
    unit)} for the signal arriving at each ReLU below the top, walking down with rule."""
    out = {}
    g = np.zeros_like(trace.outputs[LAYER])
    g[0, feature, h, w] = values[0]
    for i in range(LAYER, -1, -1):
        if type(net.layers[i]).__name__ == "ReLU" and i < LAYER:
            magnitude = np.abs(g)
            off = trace.records[i] <= 0                 # the ReLU's forward input
            out[i] = (magnitude[g < 0].sum() / magnitude.sum(),
                      magnitude[(g > 0) & off].sum() / magnitude.sum())
        g = net.layers[i].backward(g, trace.records[i], rule=rule)
    return out


shares = {rule: shares_at_relus(rule) for rule in rules}
for rule in rules:
    for i, (negative, positive_off) in shares[rule].items():
        print(f"{rule:9s} at the ReLU of layer {i}: {negative:.0%} of the arriving |signal| "
              f"is negative, {positive_off:.0%} positive at inactive units")
all_shares = np.array([pair for rule in rules for pair in shares[rule].values()])
assert all_shares[:, 0].min() > all_shares[:, 1].max()     # negative ≫ positive-and-off
correlation = {(a, b): np.corrcoef(flat[a], flat[b])[0, 1]
               for a, b in [("deconvnet", "guided"), ("deconvnet", "backprop")]}
over_grid, grid_units = {pair: [] for pair in correlation}, []
for channel, top in grid:
    batch = {rule: vis.project(net, images[top.indices], LAYER, channel, rule=rule)
             for rule in rules}                      # each image's strongest unit
    for k in range(len(top.indices)):
        for a, b in over_grid:
            over_grid[a, b].append(np.corrcoef(batch[a][k].ravel(),
                                               batch[b][k].ravel())[0, 1])
        position = tuple(int(v) for v in top.positions[k])
        grid_units.append((channel, int(top.indices[k]), position,
                           {rule: batch[rule][k] for rule in rules}))
for (a, b), values_grid in over_grid.items():
    print(f"correlation {a} / {b}: {correlation[a, b]:.3f} for this unit; over the "
          f"{len(values_grid)} units of the top-9 grid median {np.median(values_grid):.2f}, "
          f"range {min(values_grid):.2f} … {max(values_grid):.2f}")
assert np.median(over_grid["deconvnet", "guided"]) > np.median(over_grid["deconvnet",
                                                                         "backprop"])
for pair, values_grid in over_grid.items():         # this unit is in the grid, and ...
    assert abs(correlation[pair] - max(values_grid)) < 1e-9    # ... the most alike of all

# the figure: this unit (the most alike), the median and the least alike of the 27, by
# the correlation of the deconvnet with the gradient
order = np.argsort(over_grid["deconvnet", "backprop"], kind="stable")
shown_rows = []
for name, k in (("median", order[len(order) // 2]), ("least alike", order[0])):
    channel, k_image, position, maps = grid_units[k]
    field_k = net.receptive_field(LAYER).window(position)
    shown_rows.append((f"{name}: feature {channel}, image {k_image}\n"
                       f"r(deconvnet, backprop) = "
                       f"{over_grid['deconvnet', 'backprop'][k]:.2f}",
                       images[k_image], maps, field_k))
    print(f"three-rules figure, {name} of the 27: feature {channel}, image {k_image}, "
          f"unit {position}: correlation deconvnet / backprop "
          f"{over_grid['deconvnet', 'backprop'][k]:.2f}, deconvnet / guided "
          f"{over_grid['deconvnet', 'guided'][k]:.2f}")
fig = plots.compare_rules(image, projections, f"layer {LAYER}: the three rules on the "
                          f"most alike, the median and the least alike of the "
                          f"{len(order)} units of the top-9 grid",
                          window=(r0, r1, c0, c1), rows=shown_rows,
                          label=f"most alike: feature {feature}, image {index}\n"
                                f"r(deconvnet, backprop) = "
                                f"{correlation['deconvnet', 'backprop']:.2f}")
plots.save_lesson_figure(fig, "07_three_rules", thumbnail="07", thumbnail_axes=fig.axes[:2])

# %% [markdown]
# The figure puts this unit, the most alike of the 27 (deconvnet against the gradient),
# above the median and the least alike unit of the grid: there the gradient's picture
# parts from the deconvnet's (correlation 0.79 and 0.61), guided backprop's does not
# (0.96 and 0.97).
#
# So, in this network: about half of the signal reaching each lower ReLU is negative
# (49–57 % by magnitude), and dropping it — the deconvnet's rectification — is most of
# what sets the deconvnet apart from the gradient (median correlation about 0.8 over the
# grid; this unit's 0.96 is the highest of the 27).  The positive signal at inactive
# units, the only thing that separates the deconvnet from guided backprop, is a much
# smaller share (5–14 %), and those two pictures stay close (median about 0.98; this
# unit's 1.00 is again the highest).  These are measurements on this three-convolution
# network, not laws: with other weights, depths or images the shares, and so the
# correlations, change.

# %% [markdown]
# Occlusion
# ---------
# Which pixels would change an activation, to first order, is what the *gradient* says
# (the backprop rule).  The deconvnet's projection is not that gradient — it drops the
# negative signal and ignores the forward masks — and none of the three says what the
# *classifier* needs.  Zeiler & Fergus's test: slide a grey square (8 × 8, the image's
# mean colour) over the image and record the probability of the true class each time.
# Where it drops, the classifier needed what the square hides.  We try the best image of each of our three
# features and draw the one the square hurts most.  Some images survive the square
# wherever it goes: their lowest probability, printed below, stays at the unoccluded
# value.

# %%
def class_probability(x, label):
    logits = net(x[None])[0]
    p = np.exp(logits - logits.max())
    return p[label] / p.sum()


occlusion = {}
for channel, top in grid:
    k = int(top.indices[0])
    label = int(labels[k])
    scores = vis.occlusion_map(net, images[k], target=label, patch=8, stride=2)
    occlusion[k] = (label, class_probability(images[k], label), scores)
    print(f"image {k:3d} ({CLASSES[label]:8s}): p = {occlusion[k][1]:.3f} unoccluded, "
          f"lowest {scores.min():.3f} under the square")
k = min(occlusion, key=lambda j: occlusion[j][2].min() / occlusion[j][1])
label, baseline, scores = occlusion[k]
worst = np.unravel_index(np.argmin(scores), scores.shape)
print(f"image {k}: the square lowers p({CLASSES[label]}) by more than half at "
      f"{np.mean(scores < baseline / 2):.0%} of its positions; lowest with the square "
      f"centred near pixel ({2 * worst[0]}, {2 * worst[1]})")
assert scores.min() < baseline / 2
fig = plots.occlusion_figure(images[k], scores, 2, f"Occlusion: p({CLASSES[label]}) as an "
                             f"8 × 8 grey square moves over image {k}",
                             f"p({CLASSES[label]})", baseline=baseline)
plots.save_lesson_figure(fig, "07_occlusion")

# %% [markdown]
# What to take away
# -----------------
# - The deconvnet is the chain of transposes: unpool with the recorded switches, rectify,
#   apply Wᵀ — layer by layer, from one activation down to the pixels of its receptive
#   field.
# - It is not a reconstruction (lessons 2–3), and not the gradient either (it drops
#   negative signals and ignores the forward ReLU masks): it is a pattern in pixel
#   space, built with this image's switches.  On this network it correlates 0.93–1.00
#   with guided backprop and 0.61–0.96 with the gradient over the 27 units of the grid.
# - The deconvnet, the gradient and guided backprop share every step except the ReLU
#   rule; occlusion asks a different question — what the classifier needs — and answers
#   it without any backward pass.

# %%
print(f"lesson 7 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **Receptive fields by hand.**  From the kernel sizes, strides and paddings of the
#    shipped network, work out the size, the jump and the start of the receptive field
#    after every layer, and check with ``net.receptive_field``.  Then test the
#    definition: fill every pixel outside a layer-7 unit's window with noise.  Does the
#    unit change?
# 2. **Which projection is the gradient?**  For a layer-7 unit of value a, compare
#    ⟨projection, v⟩ with a·(a(x + εv) − a(x − εv)) / 2ε for a few random directions v,
#    for each rule (run the network in float64: ``net.astype(np.float64)``).  Which rule
#    answers "which pixels would change the activation"?
# 3. **What the deconvnet reads from the image.**  Rerun the way back
#    (``net.backward``) after replacing the records of the ReLU layers with noise, and
#    again after replacing the pooling layers' records (the switches) with another
#    image's.  Which rules notice each change?  Given the unit's value, what does the
#    deconvnet's picture depend on?
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/07_the_deconvnet.py``.
