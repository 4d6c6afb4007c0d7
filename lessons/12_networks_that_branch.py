# %% [markdown]
"""
Lesson 12: Networks that branch
===============================

Lessons 1–10 followed one chain: conv → ReLU → pool → …, each layer reading the one
before.  A ResNet is not a chain.  Each of its blocks reads its input twice — into a
stack of two convolutions and, through the *shortcut*, straight into a sum — and an
Inception module concatenates branches.  This lesson asks what the way back does where
a network branches and joins.  The answer is one fact about transposes: the transpose
of a copy is a sum.  From it follow how a projection splits between the branches of a
residual block, what the receptive field of a join is, and what ``from_torch`` does
with your own PyTorch ResNet.
"""

# %%
import time

import numpy as np

import minideconv as md
from minideconv import nn, plots
from minideconv.data import load_image
from minideconv.dottest import dottest

plt = plots.setup()
start = time.perf_counter()
rng = np.random.default_rng(11)
rules = md.rules.NAMES  # ("backprop", "deconvnet", "guided")

# %% [markdown]
# The transpose of a fan-out is a sum
# -----------------------------------
# A network that branches does two things a chain never does.  It *reads a value twice*
# (a fan-out: a residual block's input goes into its first convolution and into the
# shortcut), and it *joins two values* (a sum, ``nn.Add``, or a concatenation along the
# channels, ``nn.Concat``).  All three are linear maps with simple matrices:
#
# - copy, x ↦ (x, x), is C = [I; I] (I stacked on I); its transpose Cᵀ = [I I] maps
#   (r₁, r₂) ↦ r₁ + r₂: **the transpose of a copy adds**;
# - Add, (x₁, x₂) ↦ x₁ + x₂, is [I I], so its transpose is [I; I]: the signal is
#   **copied** to both inputs;
# - Concat, (x₁, x₂) ↦ [x₁; x₂], is the identity with its columns grouped by input; its
#   transpose **cuts** the signal back into the inputs' channel blocks.
#
# Copy and Add are each other's transposes.  We check all three with the dot test of
# lesson 4: ⟨A x, y⟩ = ⟨x, B y⟩ for random x and y holds exactly when B = Aᵀ.  A pair of
# inputs (x₁, x₂) of one shape is stored as one array with a leading axis of 2; the
# Concat's two inputs, which differ in channels, as one flat vector.

# %%
shape = (1, 3, 5, 5)                     # one image, 3 channels, 5 × 5
add = nn.Add()
add_record = add.forward(np.zeros(shape), np.zeros(shape))[1]


def copy(x):
    """x ↦ (x, x): the fan-out."""
    return np.stack([x, x])


def add_forward(pair):
    return add.forward(pair[0], pair[1])[0]


def add_backward(r):
    return np.stack(add.backward(r, add_record))


concat = nn.Concat()
parts = [(1, 2, 5, 5), (1, 3, 5, 5)]     # 2 channels and 3 channels
sizes = [int(np.prod(p)) for p in parts]
concat_record = concat.forward(*(np.zeros(p) for p in parts))[1]


def concat_forward(flat):
    x1, x2 = np.split(flat, [sizes[0]])
    return concat.forward(x1.reshape(parts[0]), x2.reshape(parts[1]))[0]


def concat_backward(r):
    return np.concatenate([g.ravel() for g in concat.backward(r, concat_record)])


checks = {"copy x ↦ (x, x)  vs  Add.forward (the sum)":
          dottest(copy, add_forward, shape, (2,) + shape),
          "Add.forward  vs  Add.backward (the copy)":
          dottest(add_forward, add_backward, (2,) + shape, shape),
          "Concat.forward  vs  Concat.backward (the split)":
          dottest(concat_forward, concat_backward, (sum(sizes),), (1, 5, 5, 5))}
for name, check in checks.items():
    print(f"dot test, {name:48s}: ⟨Ax, y⟩ = {check.forward_side:9.4f}, "
          f"⟨x, Bᵀy⟩ = {check.adjoint_side:9.4f}, "
          f"relative error {check.relative_error:.1e}")
    assert check.relative_error < 1e-14

n = 3
C = np.vstack([np.eye(n), np.eye(n)])    # the copy as a matrix, 2n × n
assert np.array_equal(C.T, np.hstack([np.eye(n), np.eye(n)]))         # Cᵀ = [I I]
r1, r2 = rng.standard_normal((2, n))
assert np.array_equal(C.T @ np.concatenate([r1, r2]), r1 + r2)         # ... adds

fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.6), layout="constrained",
                         gridspec_kw=dict(width_ratios=[1, 2]))
x_names = [f"x{'₁₂₃'[i]}" for i in range(n)]
r_names = [f"r₁,{'₁₂₃'[i]}" for i in range(n)] + [f"r₂,{'₁₂₃'[i]}" for i in range(n)]
plots.matrix(axes[0], C, "copy  x ↦ (x, x)\nC = [I; I]", xlabel="x", ylabel="(x, x)",
             annotate=True, cbar=False, blocks=(n, n))
plots.matrix(axes[1], C.T,
             "its transpose  Cᵀ = [I  I]\n(r₁, r₂) ↦ r₁ + r₂: the matrix of Add",
             xlabel="(r₁, r₂)", ylabel="r₁ + r₂", annotate=True, cbar=False, blocks=(n, n))
axes[0].set_xticks(range(n), x_names)
axes[0].set_yticks(range(2 * n), x_names * 2)
axes[1].set_xticks(range(2 * n), r_names)
axes[1].set_yticks(range(n), [f"entry {i + 1}" for i in range(n)])
fig.suptitle("A value read twice: going back, the two signals add")
plots.save_lesson_figure(fig, "12_copy_and_sum")

# %% [markdown]
# So the way back through a network mirrors its forward pass: where the forward pass
# *sums*, the signal is *copied* back to every input, and where it *copied* (a value read
# by several layers), the signals coming back from the readers *add*.
# ``nn.Graph.backward`` does exactly this (``minideconv/nn/graph.py``).  For the gradient
# it is the multivariable chain rule: if x is read by f and by g, then
# ∂L/∂x = f′ᵀ ∂L/∂f + g′ᵀ ∂L/∂g.
#
# The deconvnet and guided backprop differ from the gradient only at the ReLUs
# (lesson 6); copies, sums and concatenations have the same transpose under all three
# rules.  So where a ReLU's output is read twice, the two signals coming back add
# *first*, and the ReLU's rule then acts on the sum.  For the gradient the order does
# not matter, because its rule D(x > 0) is linear.  For the deconvnet it does:
# max(r₁ + r₂, 0) is not max(r₁, 0) + max(r₂, 0) wherever r₁ and r₂ have opposite
# signs.  A graph shows it: a ReLU read by two convolutions whose outputs are summed.

# %%
wa, wb = rng.standard_normal((2, 2, 1, 3, 3))
fan = nn.Graph([("relu", nn.ReLU(), ("input",)),
                ("a", nn.Conv2d(wa, padding=1), ("relu",)),
                ("b", nn.Conv2d(wb, padding=1), ("relu",)),
                ("sum", nn.Add(), ("a", "b"))])
print(fan)
x = rng.standard_normal((1, 1, 6, 6))
trace = fan.trace(x)
top = rng.standard_normal(trace.outputs[-1].shape)     # any signal at the output
r_a = md.conv_transpose2d(top, wa, padding=1)          # what comes back through a
r_b = md.conv_transpose2d(top, wb, padding=1)          # ... and through b
opposite = np.count_nonzero(np.sign(r_a) * np.sign(r_b) < 0)
print(f"{opposite} of the {r_a.size} positions get signals of opposite signs from a and b")
for rule in rules:
    graph_says = fan.backward(top, trace, rule=rule)
    sum_first = md.relu_backward(r_a + r_b, x, rule)
    rule_first = md.relu_backward(r_a, x, rule) + md.relu_backward(r_b, x, rule)
    print(f"{rule:9s}: max |Graph.backward − rule(r_a + r_b)| = "
          f"{np.abs(graph_says - sum_first).max():.1e},   "
          f"max |Graph.backward − (rule(r_a) + rule(r_b))| = "
          f"{np.abs(graph_says - rule_first).max():.2f}")
    assert np.abs(graph_says - sum_first).max() < 1e-12
    if rule == "backprop":
        assert np.abs(graph_says - rule_first).max() < 1e-12
    else:
        assert np.abs(graph_says - rule_first).max() > 0.1

# %% [markdown]
# A residual block, path by path
# ------------------------------
# ResNet's basic block (He et al. 2016) computes y = relu(F(x) + x) with
# F = conv → ReLU → conv.  We build one with ``nn.Graph`` on a grey 16 × 16 crop of a
# test image (the ring, centred to mean 0), with random weights: the first convolution
# widens to 4 channels and the second comes back to 1, so that the shortcut can be the
# identity.  The node names are the ones ``from_torch`` gives torchvision's
# ``BasicBlock``: its one ``self.relu`` module runs twice, as ``relu`` and ``relu_1``.

# %%
grey = load_image("test:1").astype(np.float64).mean(axis=0, keepdims=True)
image = grey[:, 4:20, 4:20] - grey[:, 4:20, 4:20].mean()       # (1, 16, 16)
w1 = rng.standard_normal((4, 1, 3, 3)) / 3.0
w2 = rng.standard_normal((1, 4, 3, 3)) / 2.0


def residual_block(w1, w2, input_shape=image.shape):
    return nn.Graph([("conv1", nn.Conv2d(w1, padding=1), ("input",)),
                     ("relu", nn.ReLU(), ("conv1",)),
                     ("conv2", nn.Conv2d(w2, padding=1), ("relu",)),
                     ("add", nn.Add(), ("conv2", "input")),     # the shortcut: the input
                     ("relu_1", nn.ReLU(), ("add",))], input_shape=input_shape)


block = residual_block(w1, w2)
print(block)
readers = [node.name for node in block.nodes if "input" in node.inputs]
print("the nodes that read the input (the fan-out):", readers)
assert readers == ["conv1", "add"]

# %% [markdown]
# Take the strongest unit of the output whose receptive field lies inside the crop, and
# project it with the deconvnet (``visualize.project``).  Then walk the way back by hand,
# with the operators of lessons 4–6, one path at a time.  The seed is the unit's
# activation a at its position, zero elsewhere; the rule at ``relu_1`` acts on it; the
# Add copies the result r into both of its inputs, and then
#
# - **the shortcut** passes r to the image unchanged (the identity's transpose is the
#   identity): a single pixel, at the unit's position;
# - **the branch** passes r through conv2ᵀ, the rule at ``relu`` and conv1ᵀ.
#
# The block reads the image itself, so the two paths meet only at the image, where the
# fan-out adds them.

# %%
trace = block.trace(image[None])
out = trace.outputs[block.index("relu_1")][0, 0]
field = block.receptive_field("relu_1")
inside = np.zeros(out.shape, bool)
inside[2:-2, 2:-2] = True                     # units whose 5 × 5 window fits in the crop
h, w = (int(v) for v in np.unravel_index(np.argmax(np.where(inside, out, -np.inf)),
                                         out.shape))
a = out[h, w]
window = field.window((h, w))
print(f"unit: channel 0 of relu_1 at ({h}, {w}), a = {a:.3f}; receptive field "
      f"{field.size[0]} × {field.size[1]}, window rows {window[0]}–{window[1] - 1}, "
      f"columns {window[2]}–{window[3] - 1}")
assert a > 0


def paths(rule):
    """The projection of unit (h, w) through the branch and through the shortcut."""
    seed = np.zeros_like(trace.outputs[-1])
    seed[0, 0, h, w] = a
    r = md.relu_backward(seed, trace.outputs[block.index("add")], rule)   # rule at relu_1
    shortcut = r                                                          # identityᵀ
    g = md.conv_transpose2d(r, w2, padding=1)                             # conv2ᵀ
    g = md.relu_backward(g, trace.outputs[block.index("conv1")], rule)    # rule at relu
    branch = md.conv_transpose2d(g, w1, padding=1)                        # conv1ᵀ
    return branch[0], shortcut[0]


maps = {}
for rule in rules:
    total = md.visualize.project(block, image, "relu_1", 0, (h, w), rule=rule)
    branch, shortcut = paths(rule)
    maps[rule] = branch, shortcut, total
    error = np.abs(branch + shortcut - total).max()
    print(f"{rule:9s}: max |branch + shortcut − total| = {error:.1e}; the shortcut puts "
          f"{shortcut[0, h, w]:.3f} at ({h}, {w}) and nothing elsewhere; the branch "
          f"covers {np.count_nonzero(branch)} pixels")
    assert error < 1e-12
    assert shortcut[0, h, w] == a and np.count_nonzero(shortcut) == 1

# %% [markdown]
# The sum is exact under all three rules, and the shortcut's share is always the same:
# the activation a itself, at the unit's own pixel — a > 0 passes every rule at
# ``relu_1``, and the identity moves nothing.  Everything else in the projection comes
# from the branch.  The figure shows the deconvnet's three maps on one colour scale,
# with the unit's receptive field (the box).

# %%
branch, shortcut, total = maps["deconvnet"]
limit = plots.symmetric_limit(branch, shortcut, total)
fig, axes = plt.subplots(1, 4, figsize=(13.5, 4.0), layout="constrained")
span = np.abs(image).max()
axes[0].imshow(image[0], cmap="gray", vmin=-span, vmax=span)
axes[0].set_title("input: grey ring crop, mean 0\n(box: the unit's receptive field)")
panels = [(branch, "through the branch\nconv2ᵀ → rule → conv1ᵀ"),
          (shortcut, "through the shortcut\n(identity: one pixel)"),
          (total, "total = branch + shortcut\n(visualize.project)")]
for ax, (p, title) in zip(axes[1:], panels):
    shown = plots.imshow_signed(ax, p[0], limit)
    ax.set_title(title)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
    plots.draw_window_box(ax, window, color="black" if ax is not axes[0] else "yellow")
plots.colorbar(list(axes[1:]), shown, "projection (one scale, 0 = white)", fraction=0.03)
fig.suptitle(f"A residual block y = relu(F(x) + x): the deconvnet projection of relu_1 "
             f"at ({h}, {w}), a = {a:.2f}, is the sum of its two paths")
plots.save_lesson_figure(fig, "12_residual_paths", thumbnail="12",
                         thumbnail_axes=list(axes[1:]))

# %% [markdown]
# Why the split is this clean here: the block reads the image, so after the two paths
# meet no ReLU rule acts on their sum.  In a real ResNet there is a ReLU below every
# block (the stem's, or the previous block's), and there, as the graph above showed,
# the deconvnet and guided rules act on the sum of the two signals — the projection
# through the whole network then need not be the sum of the two paths' projections,
# while the gradient's always is (exercise 1).

# %% [markdown]
# The receptive field of a join
# -----------------------------
# A unit after a join sees what every branch sees.  ``net.receptive_field`` computes, per
# node, the window of input pixels a unit can depend on (lesson 7); at an Add or a
# Concat it takes the smallest window that holds every branch's window
# (``shapes.union_of_receptive_fields``).  In the residual block the branch sees 5 × 5
# (two 3 × 3 convolutions) and the shortcut 1 × 1, its own pixel, inside it: the union
# is 5 × 5.
#
# We check the window by brute force: the pixels where the gradient of the unit is
# nonzero.  With positive inputs, positive weights and no biases every pre-activation
# is positive, every ReLU is on, and no sum of products can cancel, so the gradient is
# nonzero at exactly the pixels that some path of the network joins to the unit.  With
# signed weights it can be zero at more pixels (a ReLU that is off cuts its paths, and
# terms can cancel), never at fewer: the window is a bound.

# %%
def support(net, layer, channel, position, x):
    """The pixels where the gradient of one unit is nonzero (any input channel)."""
    p = md.visualize.project(net, x, layer, channel, position, rule="backprop")
    return np.abs(p).sum(axis=0) > 0


def bounding_box(mask):
    rows, cols = np.nonzero(mask)
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


CENTER = (8, 8)                                        # a unit in the middle of the crop
positive = residual_block(np.abs(w1), np.abs(w2))
bright = grey[:, 4:20, 4:20] + 0.1                     # pixels in [0.1, 1.1]
fields = {"branch (conv2)": positive.receptive_field("conv2"),
          "shortcut (the input)": md.shapes.PIXEL,
          "join (relu_1)": positive.receptive_field("relu_1")}
for name, f in fields.items():
    print(f"receptive field of {name:22s}: {f.size[0]} × {f.size[1]}, start {f.start}")
residual_support = support(positive, "relu_1", 0, CENTER, bright)
print(f"relu_1 at {CENTER}: window {field.window(CENTER)}, gradient nonzero on "
      f"{residual_support.sum()} pixels, bounding box {bounding_box(residual_support)}")
assert fields["join (relu_1)"] == md.shapes.union_of_receptive_fields(
    [fields["branch (conv2)"], fields["shortcut (the input)"]])
assert bounding_box(residual_support) == positive.receptive_field("relu_1").window(CENTER)
assert residual_support.sum() == 25

# %% [markdown]
# The window is a box, but a union of windows need not be one.  Join a 1 × 5 and a 5 × 1
# convolution of the image with an Add: each branch sees a line of 5 pixels, the join
# their union, a cross of 9 pixels.  ``receptive_field`` returns the smallest box that
# holds it, 5 × 5: the gradient is nonzero on the cross only.

# %%
cross = nn.Graph([("row", nn.Conv2d(np.ones((1, 1, 1, 5)), padding=(0, 2)), ("input",)),
                  ("column", nn.Conv2d(np.ones((1, 1, 5, 1)), padding=(2, 0)), ("input",)),
                  ("add", nn.Add(), ("row", "column"))], input_shape=image.shape)
cross_field = cross.receptive_field("add")
cross_support = support(cross, "add", 0, CENTER, bright)
print(f"1 × 5 branch: {cross.receptive_field('row').size}, 5 × 1 branch: "
      f"{cross.receptive_field('column').size}, join: {cross_field.size}; gradient nonzero "
      f"on {cross_support.sum()} of the window's {np.prod(cross_field.size)} pixels")
assert cross_field.size == (5, 5)
assert bounding_box(cross_support) == cross_field.window(CENTER)
assert cross_support.sum() == 9

# %%
fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.6), layout="constrained")
for ax, (mask, net_, layer, title) in zip(axes, [
        (residual_support, positive, "relu_1",
         "residual block: the branch's 5 × 5\n∪ the shortcut's 1 × 1"),
        (cross_support, cross, "add",
         "two branches: a 1 × 5 convolution\n∪ a 5 × 1 convolution")]):
    gradient = md.visualize.project(net_, bright, layer, 0, CENTER, rule="backprop")[0]
    shown = ax.imshow(np.where(mask, gradient, np.nan), cmap=plots.UNSIGNED, vmin=0)
    ax.set_facecolor("white")
    plots.draw_window_box(ax, net_.receptive_field(layer).window(CENTER), color="C3",
                          linewidth=2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{title}\ngradient ≠ 0 on {mask.sum()} pixels\nred box: receptive_field, "
                 f"{net_.receptive_field(layer).size[0]} × "
                 f"{net_.receptive_field(layer).size[1]}")
    plots.colorbar(ax, shown, "backprop projection a · ∂a/∂pixel")
fig.suptitle(f"The receptive field of a join holds every branch's window "
             f"(unit at {CENTER}; white: gradient 0)")
plots.save_lesson_figure(fig, "12_join_fields")

# %% [markdown]
# Your own network
# ----------------
# A ResNet written in PyTorch is made of these parts.  ``minideconv.interop.torch``'s
# ``from_torch`` turns a module that ``torch.fx.symbolic_trace`` can trace, made of the
# operations minideconv has, into an ``nn.Graph`` (a plain ``nn.Sequential`` of layers
# into an ``nn.Sequential``): one node per operation, named after the module that ran
# it, with ``_1``, ``_2``, … for a module called again, and after the fx node otherwise
# (``add``, ``flatten``).  The README's section "Your own network and your own images"
# lists the operations it reads; any other is refused with its name.
#
# Below, a small ResNet written the way torchvision writes ``BasicBlock``: one
# ``self.relu`` module called three times, an in-place ``out += identity``, and
# ``torch.flatten`` before the classifier.  ``crosscheck`` then compares, node by node,
# the forward activations with torch's and the projection of each node's strongest unit
# under the three rules with torch's autograd (for the deconvnet and guided rules,
# through ReLUs whose backward is the rule's).  It runs on two float64 images, where
# its tolerance is 10⁻¹⁰ relative.

# %%
try:
    import torch
except ImportError:
    torch = None
    print("NOTE: PyTorch is not installed, so this section is skipped.  "
          "pip install 'minideconv[crosscheck]' (PyTorch and Captum) to run it.")

if torch is not None:
    from minideconv.interop.torch import crosscheck, from_torch

    class TinyResNet(torch.nn.Module):
        """A stem, a basic block with the identity shortcut, a global pool, a classifier."""

        def __init__(self, width=4, classes=3):
            super().__init__()
            self.stem = torch.nn.Conv2d(1, width, 3, padding=1)
            self.conv1 = torch.nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn1 = torch.nn.BatchNorm2d(width)
            self.relu = torch.nn.ReLU(inplace=True)
            self.conv2 = torch.nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn2 = torch.nn.BatchNorm2d(width)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(width, classes)

        def forward(self, x):
            x = self.relu(self.stem(x))
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            out = self.relu(out)
            return self.fc(torch.flatten(self.pool(out), 1))

    torch.manual_seed(0)
    model = TinyResNet().eval()
    net = from_torch(model, input_shape=(1, 16, 16))
    print(type(net).__name__, net.names)
    joined = net.nodes[net.index("add")].inputs
    print(f"'add' reads {joined}: bn2 and the output of the stem's ReLU (identity)")
    assert net.names[:2] == ["stem", "relu"] and "relu_1" in net.names
    assert joined == ("bn2", "relu")
    print("receptive field of relu_2:", net.receptive_field("relu_2").size,
          "— of the pool:", net.receptive_field("pool"))
    assert net.receptive_field("relu_2").size == (7, 7)
    assert net.receptive_field("pool") is None

    images = np.random.default_rng(0).random((2, 1, 16, 16))       # float64
    report = crosscheck(model, images)
    print(report)
    assert report.passed and report.tolerance == 1e-10

# %% [markdown]
# The receptive field of ``relu_2`` is 7 × 7: the stem's 3 × 3 under the block's
# 5 × 5 ∪ 1 × 1.  After the global pool every unit sees the whole image, and
# ``receptive_field`` says so with ``None``.
#
# From here, a network of your own goes as far as the shipped one: every function that
# takes a layer (``visualize.project``, ``visualize.top_k``, …) takes a name from
# ``net.names`` (``"relu_2"``) or an index, ``net.save("mine.npz")`` writes the network
# for the command line, and ``minideconv figure2 --images photos/ --model mine.npz
# --layer NAME --out fig2/`` draws Zeiler & Fergus's Figure 2 for that layer over a
# folder of your own images.  The README's section "Your own network and your own
# images" has the whole recipe, with the options for an ImageNet network
# (``--normalize imagenet --resize 256``).

# %% [markdown]
# What to take away
# -----------------
# - The transpose of a copy is a sum.  Going back through a network, a join (Add)
#   copies the signal to its inputs, a concatenation splits it, and where a value was
#   read by several layers the signals coming back add — for the gradient that is the
#   chain rule, and the deconvnet and guided rules use the same sum, applying their
#   ReLU rule to it afterwards.
# - A residual block's projection is the branch's projection plus the shortcut's, as
#   long as no ReLU rule acts on the sum; the identity shortcut contributes the unit's
#   own activation at its own pixel.
# - The receptive field of a join is the smallest window holding every branch's window;
#   the pixels that actually reach a unit can be fewer (a cross inside a 5 × 5 box).
# - ``from_torch`` turns a traceable PyTorch ResNet into such a graph, named as torch
#   names it, and ``crosscheck`` confirms it node by node.

# %%
print(f"lesson 12 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **A ReLU below the fan-out.**  Put a stem — a 3 × 3 convolution from 1 to 1
#    channel, then a ReLU — below this lesson's residual block, so that the block reads
#    the stem's ReLU.  Project the same unit through the branch alone and through the
#    shortcut alone, each all the way to the image (through the stem, with the rule),
#    and compare their sum with the projection under each rule.  Which rules still
#    split into the two paths, and why?
# 2. **A concatenation's field, channel by channel.**  Join a 1 × 1 convolution
#    (1 → 2 channels) and a 3 × 3 convolution (1 → 2 channels) of the image with
#    ``nn.Concat``.  What does ``receptive_field`` give for the concatenation?  With
#    positive weights and inputs, find the support of a unit in each of its 4 channels.
#    Which units see less than the window, and why can a window per node not say so?
# 3. **The block as matrices.**  Around one forward pass of the residual block, write
#    its map from image to ``relu_1`` as D₂ (W₂ D₁ W₁ + I), with W the convolutions'
#    matrices and D the ReLUs' masks (lessons 1 and 6), and check it against
#    ``matrices.network_forward_map``.  Then check that the backprop way back is its
#    transpose, (W₁ᵀ D₁ W₂ᵀ + I) D₂, a sum of two products.
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/12_networks_that_branch.py``.
