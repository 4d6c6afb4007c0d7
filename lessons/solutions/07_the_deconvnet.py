# %% [markdown]
# Lesson 7, solutions to the exercises
# ====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: receptive fields worked out by hand and probed by changing pixels,
# directional derivatives of the forward pass measured by finite differences, and
# backward passes rerun on deliberately corrupted records.  The network runs in float64
# here (``net.astype``), so that finite differences are accurate.  Run it as a script;
# it fails loudly if an answer is wrong.

# %%
import dataclasses
import time

import numpy as np

from minideconv import visualize as vis
from minideconv.data import load_dataset, load_model

start = time.perf_counter()
rng = np.random.default_rng(707)
net = load_model().astype(np.float64)
images, _ = load_dataset("test", n=2)
image, other = images.astype(np.float64)
LAYER = 7
trace = net.trace(image[None], upto=LAYER)
activation = trace.outputs[LAYER][0]
channel, h, w = (int(v) for v in np.unravel_index(np.argmax(activation), activation.shape))
a = activation[channel, h, w]
print(f"test image 0: its strongest layer-{LAYER} unit is feature {channel} at ({h}, {w}), "
      f"a = {a:.3f}")

# %% [markdown]
# Exercise 1: receptive fields by hand
# ------------------------------------
# Walk up the network with the size r of the field, the jump j between neighbouring
# units (in pixels) and the image row of the field's first pixel for unit 0, start:
# a layer with kernel k, stride s and padding p gives r ← r + (k − 1) j,
# start ← start − p j, j ← j s.  From (r, j, start) = (1, 1, 0):
#
# - conv 5 × 5, p 0: (5, 1, 0); pool 3 × 3 / 2, p 1: (7, 2, −1);
# - conv 3 × 3, p 1: (11, 2, −3); pool 3 × 3 / 2, p 1: (15, 4, −5);
# - conv 3 × 3, p 1: (23, 4, −9): a layer-7 unit at row h sees rows 4h − 9 … 4h + 13.
#
# Checked against ``net.receptive_field``, and by the definition: fill every pixel
# outside the window with noise, and the unit's value does not change at all.

# %%
by_hand = {0: (5, 1, 0), 2: (7, 2, -1), 3: (11, 2, -3), 5: (15, 4, -5), 6: (23, 4, -9),
           7: (23, 4, -9)}
for layer, (size, jump, first) in by_hand.items():
    field = net.receptive_field(layer)
    print(f"layer {layer}: by hand size {size}, jump {jump}, start {first}; "
          f"net.receptive_field: {field.size[0]}, {field.jump[0]}, {field.start[0]}")
    assert field.size == (size, size) and field.jump == (jump, jump)
    assert field.start == (first, first)

rows = (4 * h - 9, 4 * h + 13)
cols = (4 * w - 9, 4 * w + 13)
assert net.receptive_field(LAYER).window((h, w)) == (rows[0], rows[1] + 1,
                                                      cols[0], cols[1] + 1)
inside = np.zeros(image.shape[1:], dtype=bool)
inside[max(rows[0], 0):rows[1] + 1, max(cols[0], 0):cols[1] + 1] = True
scrambled = np.where(inside, image, rng.standard_normal(image.shape))
changed_out = net.trace(scrambled[None], upto=LAYER).outputs[LAYER][0, channel, h, w]
nudged = image.copy()
nudged[:, inside] += 0.5 * rng.standard_normal((3, inside.sum()))
changed_in = net.trace(nudged[None], upto=LAYER).outputs[LAYER][0, channel, h, w]
print(f"rows {rows[0]}..{rows[1]}, columns {cols[0]}..{cols[1]}: noise outside the "
      f"window changes a by {abs(changed_out - a):.1e}; noise inside by "
      f"{abs(changed_in - a):.2f}")
assert abs(changed_out - a) <= 1e-12 * abs(a)          # in fact bit for bit: 0.0
assert abs(changed_in - a) > 1e-3

# %% [markdown]
# Exercise 2: which projection is the gradient?
# ---------------------------------------------
# ``vis.project`` starts the way back from the value a, so the backprop projection
# should be a·∇ₓa, and then for every direction v, ⟨projection, v⟩ = a·(a(x + εv) −
# a(x − εv)) / 2ε — a directional derivative of the *forward* pass, with no backward
# code at all (exact up to rounding, as long as ±εv crosses no ReLU or switch
# boundary).  The deconvnet and guided projections are not gradients: they fail this
# test.  "Which pixels would change the activation" is the gradient's question.

# %%
projections = {rule: vis.project(net, image, LAYER, channel, position=(h, w), rule=rule)
               for rule in ("backprop", "deconvnet", "guided")}
directions = rng.standard_normal((8,) + image.shape)
eps = 1e-5
values = net.trace(np.concatenate([image + eps * directions, image - eps * directions]),
                   upto=LAYER).outputs[LAYER][:, channel, h, w]
derivatives = a * (values[:8] - values[8:]) / (2 * eps)
mismatch = {}
for rule, projection in projections.items():
    inner = np.einsum("chw,nchw->n", projection, directions)
    mismatch[rule] = np.abs(inner - derivatives).max() / np.abs(derivatives).max()
    print(f"{rule:9s}: max |⟨projection, v⟩ − a·∂a/∂v| / max |a·∂a/∂v| over 8 random "
          f"directions = {mismatch[rule]:.1e}")
assert mismatch["backprop"] < 1e-7
assert mismatch["deconvnet"] > 0.05 and mismatch["guided"] > 0.05

# %% [markdown]
# Exercise 3: what the deconvnet reads from the forward pass
# ----------------------------------------------------------
# The way back reads two things from the forward pass: the input of each ReLU (the
# records of the ReLU layers, used by backprop and guided backprop) and the switches
# (the records of the pooling layers, used by all three rules).  Break them on purpose:
#
# - replace every ReLU record by noise: the deconvnet projection does not change at
#   all, backprop's and guided backprop's do;
# - replace the switches by those of another image: the deconvnet projection changes.
#
# So, for a given unit value a, the deconvnet's picture depends on the image *only*
# through the switches.

# %%
signal = np.zeros_like(trace.outputs[LAYER])
signal[0, channel, h, w] = a
kinds = [type(layer).__name__ for layer in net.layers[:LAYER + 1]]
noisy_relus = dataclasses.replace(trace, records=[
    rng.standard_normal(record.shape) if kind == "ReLU" else record
    for kind, record in zip(kinds, trace.records)])
other_trace = net.trace(other[None], upto=LAYER)
other_switches = dataclasses.replace(trace, records=[
    theirs if kind == "MaxPool2d" else ours
    for kind, ours, theirs in zip(kinds, trace.records, other_trace.records)])
changes = {}
for rule, projection in projections.items():
    assert np.array_equal(net.backward(signal, trace, rule=rule)[0], projection)
    changes[rule, "ReLU"] = np.abs(net.backward(signal, noisy_relus, rule=rule)[0]
                                   - projection).max()
    changes[rule, "switches"] = np.abs(net.backward(signal, other_switches, rule=rule)[0]
                                       - projection).max()
    print(f"{rule:9s}: max change with noisy ReLU records {changes[rule, 'ReLU']:.2f}, "
          f"with another image's switches {changes[rule, 'switches']:.2f}")
assert changes["deconvnet", "ReLU"] == 0.0
assert changes["backprop", "ReLU"] > 0.1 and changes["guided", "ReLU"] > 0.1
assert all(changes[rule, "switches"] > 0.1 for rule in projections)

# %%
print(f"solutions of lesson 7 ran in {time.perf_counter() - start:.1f} s")
