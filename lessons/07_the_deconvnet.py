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
fig, axes = plt.subplots(2, 4, figsize=(11.5, 6.6), layout="constrained")
axes = axes.ravel()
axes[0].imshow(plots.as_rgb(image))
plots.draw_window_box(axes[0], (r0, r1, c0, c1), color="yellow")
axes[0].set_title(f"image {index} ({CLASSES[labels[index]]})\nbox: receptive field")
for ax, (title, values_shown) in zip(axes[1:], stages):
    ax.imshow(values_shown, cmap=plots.UNSIGNED)
    ax.set_title(title, fontsize=10)
axes[6].imshow(plots.signed_rgb(projection))
axes[6].set_title("after layer 0: W₁ᵀ\npixels, 3 × 32 × 32 (grey = 0)", fontsize=10)
axes[7].imshow(plots.signed_rgb(vis.window_patch(projection, (r0, r1, c0, c1))))
axes[7].set_title(f"the same, cropped to the\n{r1 - r0} × {c1 - c0} receptive field",
                  fontsize=10)
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
# field (right) beside the deconvnet projection of that single activation (left).  The
# projections show *which* pixels of the patch drove the unit.

# %%
grid = [(channel, vis.top_k_patches(net, images, LAYER, channel, k=9))
        for channel in features]
for channel, top in grid:
    assert np.all(np.diff(top.values) <= 0)
    print(f"feature {channel:2d}: top-9 activations {np.round(top.values, 1)}")
assert grid[0][1].indices[0] == index
fig = plots.feature_grid(grid, f"layer {LAYER} (ReLU after the third convolution)")
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
fig = plots.compare_rules(image, projections, f"layer {LAYER}, feature {feature}, "
                          f"unit ({h}, {w}) of image {index}", window=(r0, r1, c0, c1))
plots.save_lesson_figure(fig, "07_three_rules", thumbnail="07", thumbnail_axes=fig.axes[:2])

# %% [markdown]
# Occlusion
# ---------
# A projection says which pixels would change an activation; it does not say what the
# *classifier* needs.  Zeiler & Fergus's test: slide a grey square (8 × 8, the image's
# mean colour) over the image and record the probability of the true class each time.
# Where it drops, the network was looking.  We try the best image of each of our three
# features and draw the one the square hurts most.  Some images survive the square
# wherever it goes — enough of the object is always left to be recognised.

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
# - It is not a reconstruction (lessons 2–3): it shows which pixel patterns drive the
#   unit, for this image, up to scale.
# - The deconvnet, the gradient and guided backprop share every step except the ReLU
#   rule; occlusion asks a different question — what the classifier needs — and answers
#   it without any backward pass.

# %%
print(f"lesson 7 ran in {time.perf_counter() - start:.1f} s")
