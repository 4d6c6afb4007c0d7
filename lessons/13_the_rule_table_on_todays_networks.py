# %% [markdown]
"""
Lesson 13: The rule table on today's networks
=============================================

Zeiler & Fergus's network had ReLUs and max-pools.  Today's networks have ReLU6,
LeakyReLU and SiLU, BatchNorm, depthwise convolutions, no max-pool at all, and
decoders that grow an image back with transposed convolutions and upsampling.  This
lesson asks what each of the three rules (backprop, deconvnet, guided) does there.
Three facts answer it: the rule table extends to every piecewise-linear rectifier and
leaves smooth activations alone; without max-pools the deconvnet's way back reads
nothing from the image; and the transpose of a transposed convolution, or of an
upsampling, is again an operator you know.  It ends with ZFNet, Zeiler & Fergus's own
network, read from an ONNX file.
"""

# %%
import importlib.util
import time

import numpy as np

import minideconv as md
from minideconv import nn, ops, plots
from minideconv.dottest import dottest
from minideconv.matrices import (conv2d_matrix, conv_transpose2d_matrix,
                                 network_forward_map, upsample_bilinear2d_matrix,
                                 upsample_nearest2d_matrix)

plt = plots.setup()
start = time.perf_counter()
rng = np.random.default_rng(13)
rules = md.rules.NAMES  # ("backprop", "deconvnet", "guided")

# %% [markdown]
# The rule table, extended
# ------------------------
# The rectifiers of today's networks share one shape: f(x) = α·x for x ≤ 0, x for
# 0 < x < m, and m for x ≥ m.  ReLU is α = 0, m = ∞; ReLU6 (``nn.ClippedReLU(6)``) is α = 0,
# m = 6; LeakyReLU(α) and PReLU (one α per channel) have m = ∞.  Its derivative is
# f′(x) = α, 1 or 0 on the three pieces.  Write rect_α(g) = max(g, 0) + α·min(g, 0) for
# the signal g "rectified by the unit's own shape".  Then (``minideconv.rules``):
#
# - backprop:  r = f′(x)·g, the chain rule;
# - deconvnet: r = rect_α(g), which does not look at x — not even at the cap: the cap
#   is a fact about forward values;
# - guided:    r = f′(x)·rect_α(g), both.
#
# A *smooth* activation (SiLU, GELU, ELU, Tanh, …) is not a rectifier, and the rules
# here leave it alone (as Captum does with every module but ``nn.ReLU``): all three
# pass its gradient f′(x)·g.  We check the table on a signal of 24 values with x
# running across every piece.

# %%
x = np.linspace(-3.0, 9.0, 24).reshape(1, 1, 1, 24)
g = rng.standard_normal(x.shape)
layers = {"ClippedReLU(6)": nn.ClippedReLU(6.0), "LeakyReLU(0.2)": nn.LeakyReLU(0.2)}
back = {name: {rule: layer.backward(g, layer.forward(x)[1], rule) for rule in rules}
        for name, layer in layers.items()}

inside = (x > 0) & (x < 6)                       # ReLU6's middle piece, 0 < x < 6
assert np.array_equal(back["ClippedReLU(6)"]["backprop"], inside * g)
assert np.array_equal(back["ClippedReLU(6)"]["deconvnet"], np.maximum(g, 0))
assert np.array_equal(back["ClippedReLU(6)"]["guided"], inside * np.maximum(g, 0))
alpha = 0.2
slope = np.where(x > 0, 1.0, alpha)              # LeakyReLU's f′(x), f′(0) = α
rect = np.maximum(g, 0) + alpha * np.minimum(g, 0)
assert np.allclose(back["LeakyReLU(0.2)"]["backprop"], slope * g, rtol=0, atol=1e-15)
assert np.allclose(back["LeakyReLU(0.2)"]["deconvnet"], rect, rtol=0, atol=1e-15)
assert np.allclose(back["LeakyReLU(0.2)"]["guided"], slope * rect, rtol=0, atol=1e-15)

# PReLU: one α per channel, the same table channel by channel
alphas = np.array([0.1, 0.5])
xc, gc = rng.standard_normal((2, 1, 2, 4, 4))
prelu = nn.PReLU(alphas)
a = alphas.reshape(1, 2, 1, 1)
assert np.allclose(prelu.backward(gc, prelu.forward(xc)[1], "deconvnet"),
                   np.maximum(gc, 0) + a * np.minimum(gc, 0), rtol=0, atol=1e-15)
assert np.allclose(prelu.backward(gc, prelu.forward(xc)[1], "guided"),
                   np.where(xc > 0, 1, a) * (np.maximum(gc, 0) + a * np.minimum(gc, 0)),
                   rtol=0, atol=1e-15)

# the same formulas straight from the operator of the layers: ops.rectifier_backward
for rule in rules:
    assert np.array_equal(ops.rectifier_backward(g, x, rule, cap=6.0),
                          back["ClippedReLU(6)"][rule])

# smooth activations: every rule is the gradient, checked by central differences
h = 1e-6
for smooth in (nn.SiLU(), nn.GELU(), nn.ELU(), nn.Tanh()):
    record = smooth.forward(x)[1]
    derivative = (smooth.forward(x + h)[0] - smooth.forward(x - h)[0]) / (2 * h)
    answers = [smooth.backward(g, record, rule) for rule in rules]
    assert all(np.array_equal(answers[0], other) for other in answers[1:])
    error = np.abs(answers[0] - derivative * g).max()
    print(f"{type(smooth).__name__:5s}: the three rules agree; max |r − f′(x)·g| "
          f"(central differences) = {error:.1e}")
    assert error < 1e-8
print("the rule table holds at ClippedReLU(6), LeakyReLU(0.2) and PReLU(0.1, 0.5)")

fig, axes = plt.subplots(2, 1, figsize=(9.5, 6.4), layout="constrained", sharex=True)
position = np.arange(x.size)
top = 1.05 * np.abs(g).max()
for ax, (name, answers) in zip(axes, back.items()):
    pieces = [(x.ravel() <= 0, "x ≤ 0"), (inside.ravel(), "0 < x < m")]
    if name.startswith("Clipped"):
        pieces.append((x.ravel() >= 6, "x ≥ m = 6"))
    else:
        pieces = [(x.ravel() <= 0, "x ≤ 0"), (x.ravel() > 0, "x > 0")]
    for (piece, label), shade in zip(pieces, ("0.93", "1.0", "0.85")):
        where = position[piece]
        ax.axvspan(where.min() - 0.5, where.max() + 0.5, color=shade, zorder=0)
        ax.text(where.mean(), 1.15 * top, label, ha="center", fontsize=9)
    ax.plot(position, g.ravel(), "k.-", lw=0.8, label="g (the signal arriving)")
    for rule, marker in zip(rules, ("o", "s", "^")):
        ax.plot(position, answers[rule].ravel(), marker, mfc="none", ms=7 if
                marker == "o" else 5, label=rule)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_ylim(-top, 1.3 * top)
    ax.set_title(f"{name}: the three ways back of g")
axes[1].set_xlabel("position (x rises from −3 to 9 along the axis)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4)
plots.save_lesson_figure(fig, "13_rule_table")

# %% [markdown]
# In the ClippedReLU panel, backprop and guided are zero on both outer pieces (f′ = 0
# there), while the deconvnet passes max(g, 0) everywhere, even where x ≥ 6 and the
# unit is saturated.  In the LeakyReLU panel nothing is zeroed: a negative g comes back
# scaled by α under the deconvnet, and by α² under guided backprop where x ≤ 0.

# %% [markdown]
# What "deconvnet" means on a MobileNet
# -------------------------------------
# MobileNetV2 has no max-pool.  Its stem is a stride-2 convolution; then BatchNorm,
# ReLU6, depthwise convolutions (one 3 × 3 filter per channel, ``groups = C``),
# pointwise 1 × 1 convolutions, inverted residual blocks joined by an ``nn.Add``, a
# global average pool and a linear layer.  Look at what each layer's way back reads:
#
# - convolutions, the linear layer, the average pool and the Add are linear: their
#   transposes are fixed matrices;
# - BatchNorm at inference is a constant affine map per channel, y = s·x + t: its way
#   back multiplies by s;
# - ReLU6, under the deconvnet rule, passes relu(g): it does not read x.
#
# So nothing on the deconvnet's way back reads the image.  The image only picks the
# *unit* (``position=None`` takes the strongest), and with ``seed_value="activation"``
# it scales the seed.  Fix both — a logit, seeded with 1 — and the deconvnet map must
# be the same for every image.  We build such a network with random weights and measure.

# %%
C, E = 8, 16                                     # channels, expanded channels


def mobilenet_like(activation=lambda: nn.ClippedReLU(6.0), max_pool=False, seed=7):
    """A small MobileNet-like graph with random weights from ``seed``; ``activation``
    makes each nonlinearity, ``max_pool`` puts a 2 × 2 max-pool after the stem."""
    r = np.random.default_rng(seed)

    def conv(c_out, c_in, k, **kw):
        return nn.Conv2d(r.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k),
                         **kw)

    def bn(c):
        return nn.BatchNorm2d(weight=r.uniform(0.5, 1.5, c), bias=r.normal(0, 0.1, c),
                              running_mean=r.normal(0, 0.1, c),
                              running_var=r.uniform(0.5, 1.5, c))

    nodes = [("stem", conv(C, 3, 3, stride=2, padding=1), ("input",)),
             ("stem_bn", bn(C), ("stem",)), ("stem_act", activation(), ("stem_bn",))]
    last = "stem_act"
    if max_pool:
        nodes.append(("pool", nn.MaxPool2d(2), ("stem_act",)))
        last = "pool"
    nodes += [("dw", conv(C, 1, 3, padding=1, groups=C), (last,)),
              ("dw_bn", bn(C), ("dw",)), ("dw_act", activation(), ("dw_bn",)),
              ("pw", conv(C, C, 1), ("dw_act",)), ("pw_bn", bn(C), ("pw",)),
              # the inverted residual: expand, depthwise, project back, add the input
              ("expand", conv(E, C, 1), ("pw_bn",)), ("expand_bn", bn(E), ("expand",)),
              ("expand_act", activation(), ("expand_bn",)),
              ("dw2", conv(E, 1, 3, padding=1, groups=E), ("expand_act",)),
              ("dw2_bn", bn(E), ("dw2",)), ("dw2_act", activation(), ("dw2_bn",)),
              ("project", conv(C, E, 1), ("dw2_act",)), ("project_bn", bn(C), ("project",)),
              ("add", nn.Add(), ("project_bn", "pw_bn")),
              ("gap", nn.AdaptiveAvgPool2d(1), ("add",)), ("flat", nn.Flatten(), ("gap",)),
              ("fc", nn.Linear(r.standard_normal((10, C)) / np.sqrt(C)), ("flat",))]
    return nn.Graph(nodes, input_shape=(3, 32, 32))


images = rng.uniform(0, 1, (2, 3, 32, 32))       # two different images
LOGIT = 3


def maps(net):
    """Each rule's map of logit LOGIT (seeded with 1) for each of the two images."""
    return {rule: md.visualize.project(net, images, "fc", LOGIT, rule=rule,
                                       seed_value="one") for rule in rules}


def difference(m):
    """max |map(image 1) − map(image 2)| relative to max |map(image 1)|."""
    return float(np.abs(m[0] - m[1]).max() / np.abs(m[0]).max())


networks = {"ReLU6, no max-pool": mobilenet_like(),
            "ReLU6 + a 2 × 2 max-pool": mobilenet_like(max_pool=True),
            "SiLU, no max-pool": mobilenet_like(activation=nn.SiLU)}
measured = {name: maps(net) for name, net in networks.items()}
print("max |map(image 1) − map(image 2)| / max |map(image 1)|, logit 3 seeded with 1:")
for name, m in measured.items():
    print(f"  {name:26s}: " + ",  ".join(f"{rule} {difference(m[rule]):.2e}"
                                         for rule in rules))
relu6 = measured["ReLU6, no max-pool"]
assert np.array_equal(relu6["deconvnet"][0], relu6["deconvnet"][1])  # exactly, bit for bit
assert difference(relu6["backprop"]) > 0.05 and difference(relu6["guided"]) > 0.05
assert difference(measured["ReLU6 + a 2 × 2 max-pool"]["deconvnet"]) > 0.05
assert difference(measured["SiLU, no max-pool"]["deconvnet"]) > 0.05
silu = measured["SiLU, no max-pool"]                  # no rectifier left: one rule
assert all(np.array_equal(silu["backprop"], silu[rule]) for rule in rules)

# a fixed map of a pooled logit: away from the border it repeats with the stem's stride
deconvnet_map = relu6["deconvnet"][0]
interior = deconvnet_map[:, 8:24, 8:24]
shifted = deconvnet_map[:, 10:26, 10:26]
print(f"deconvnet map, 16 × 16 middle vs the same shifted by 2 pixels: max |difference| "
      f"= {np.abs(interior - shifted).max():.1e} (its largest |value| "
      f"{np.abs(deconvnet_map).max():.1e})")
assert np.allclose(interior, shifted, rtol=0, atol=1e-12)
assert not np.allclose(deconvnet_map[:, :2, :2], deconvnet_map[:, 2:4, 2:4], atol=1e-6)

fig, axes = plt.subplots(2, 4, figsize=(10.5, 5.6), layout="constrained")
for row, image in enumerate(images):
    axes[row, 0].imshow(image.transpose(1, 2, 0))
    axes[row, 0].set_xticks([]), axes[row, 0].set_yticks([])
    axes[row, 0].set_title(f"image {row + 1}")
    for col, rule in enumerate(rules, 1):
        plots.image(axes[row, col], relu6[rule][row].sum(axis=0),
                    f"{rule}, image {row + 1}", cbar=False)
fig.suptitle("A MobileNet-like network (ReLU6, no max-pool): logit 3's map, summed over "
             "colour\nthe deconvnet's two maps are the same array; backprop's and guided's "
             "differ")
plots.save_lesson_figure(fig, "13_mobilenet_deconvnet", thumbnail="13")

# %% [markdown]
# The deconvnet's two maps are the same array, bit for bit, while backprop's and
# guided's change with the image.  The deconvnet's map is a repeating pattern: after
# the global average pool the signal is the same at every position, every layer is
# applied alike at every position, so away from the border (where the zero padding
# differs) the map repeats with the stem's stride of 2, as measured above.  Two
# changes bring the image back into the deconvnet's way:
#
# - a max-pool: its switches record where each window's maximum was in *this* image
#   (lesson 5), and the signal goes back to those pixels;
# - a smooth activation: SiLU passes f′(x)·g under every rule, and f′(x) depends on x.
#   With SiLU everywhere no rectifier is left, and the three rules give the same
#   maps (the SiLU row's three equal numbers).
#
# In general: on a network without max-pools whose nonlinearities are all
# rectifiers, and whose other layers have a way back that does not read their input
# (convolutions, linear layers, average pools, joins, BatchNorm at inference), the
# deconvnet rule gives one fixed map per seeded unit, a property of the weights alone;
# which unit is seeded, and the seed's value, are then the only ways the image enters.
# A layer whose way back reads its input — a product such as squeeze-and-excitation's
# gate (whose way back multiplies by the other factor), a local response
# normalisation, a LayerNorm, a smooth activation — reads the image under every
# rule.  Guided backprop keeps the forward masks f′(x) and so still reads the image.

# %% [markdown]
# The transpose of a transposed convolution is a convolution
# ----------------------------------------------------------
# Many U-Net decoders grow a feature map with ``nn.ConvTranspose2d``: the transpose Wᵀ
# of a strided convolution W (lesson 2).  Its way back is then (Wᵀ)ᵀ = W: the strided
# convolution itself, ``ops.conv2d`` with the same weight, stride and padding.  We check
# it three ways: against ``conv2d``, with the dot test, and with the sparse matrices of
# ``minideconv.matrices``, each built independently.

# %%
w = rng.standard_normal((4, 2, 3, 3))            # a conv from 2 to 4 channels, 3 × 3
up = nn.ConvTranspose2d(w, stride=2, padding=1, output_padding=1)   # (4, 4, 4) → (2, 8, 8)
y_small = rng.standard_normal((1, 4, 4, 4))
grown, record = up.forward(y_small)
r_big = rng.standard_normal(grown.shape)
assert grown.shape == (1, 2, 8, 8)
assert np.array_equal(up.backward(r_big, record), ops.conv2d(r_big, w, stride=2, padding=1))

check = dottest(lambda v: up.forward(v)[0], lambda v: up.backward(v, record),
                y_small.shape, grown.shape)
print(f"dot test, ConvTranspose2d.forward vs .backward: relative error "
      f"{check.relative_error:.1e}")
W = conv2d_matrix(w, (2, 8, 8), stride=2, padding=1)             # (4·4·4) × (2·8·8)
Wt = conv_transpose2d_matrix(w, (2, 8, 8), stride=2, padding=1)  # (2·8·8) × (4·4·4)
gap = abs(Wt - W.T).max()
print(f"conv_transpose2d_matrix vs conv2d_matrix transposed: max |difference| = {gap:g}")
assert gap == 0 and check.relative_error < 1e-14
assert np.allclose(Wt @ y_small.ravel(), grown.ravel(), rtol=0, atol=1e-13)
assert np.allclose(W @ r_big.ravel(), up.backward(r_big, record).ravel(), rtol=0, atol=1e-13)

# %% [markdown]
# A stride-2 transposed convolution with a 3 × 3 kernel is known for *checkerboard*
# artefacts: away from the border, an output pixel receives 1, 2 or 4 of the kernel's
# taps depending on the parities of its row and column.  Its way back is a stride-2
# convolution, in which every output away from the border sums all 9 taps.  All-ones
# weights and inputs count the taps.

# %%
ones = np.ones((1, 1, 3, 3))
counts = nn.ConvTranspose2d(ones, stride=2, padding=1, output_padding=1).forward(
    np.ones((1, 1, 4, 4)))[0][0, 0]
print("forward, taps per output pixel (rows 1–4, columns 1–4):\n",
      counts[1:5, 1:5].astype(int))
back_counts = ops.conv2d(np.ones((1, 1, 8, 8)), ones, stride=2, padding=1)[0, 0]
print("way back, taps per pixel away from the top and left border:",
      np.unique(back_counts[1:, 1:]).astype(int))
assert set(np.unique(counts[1:7, 1:7])) == {1, 2, 4}
assert np.all(back_counts[1:, 1:] == 9)

# %% [markdown]
# So the tap-count checkerboard is a pattern of the forward pass: the way back
# through the transposed convolution computes one value for every second pixel of the
# signal, each from a full 3 × 3 window, like any strided convolution.  A decoder
# step — ConvTranspose2d, then a skip joined by ``nn.Concat``, then a 3 × 3
# convolution — is linear, so the backprop projection of a unit is one row of its
# matrix (``network_forward_map``, built without calling any backward).

# %%
unet = nn.Graph([("down", nn.Conv2d(w, stride=2, padding=1), ("input",)),
                 ("up", nn.ConvTranspose2d(rng.standard_normal((4, 2, 3, 3)), stride=2,
                                           padding=1, output_padding=1), ("down",)),
                 ("skip", nn.Concat(), ("up", "input")),
                 ("out", nn.Conv2d(rng.standard_normal((1, 4, 3, 3)), padding=1),
                  ("skip",))], input_shape=(2, 8, 8))
picture = rng.standard_normal((2, 8, 8))
unit = (3, 4)
projection = md.visualize.project(unet, picture, "out", 0, unit, rule="backprop",
                                  seed_value="one")
row = network_forward_map(unet, picture, "out")[[unit[0] * 8 + unit[1]]].toarray()
unet_error = np.abs(projection.ravel() - row.ravel()).max()
print(f"U-Net step: max |projection − row of the network's matrix| = {unet_error:.1e}")
assert unet_error < 1e-13

# %% [markdown]
# Upsampling's transpose
# ----------------------
# ``nn.Upsample(scale_factor=2, mode="nearest")`` copies each pixel into a 2 × 2
# block.  The transpose of a copy is a sum (lesson 12), so its way back *sums* each
# 2 × 2 block of the signal: 4 × the 2 × 2 average pool.  Bilinear upsampling reads each
# output from up to four input pixels with weights; its transpose sends each signal
# value back to those pixels with the same weights.

# %%
nearest = nn.Upsample(scale_factor=2, mode="nearest")
bilinear = nn.Upsample(scale_factor=2, mode="bilinear")
small = rng.standard_normal((1, 3, 5, 5))
signal = rng.standard_normal((1, 3, 10, 10))
for name, layer, matrix in (
        ("nearest ×2", nearest, upsample_nearest2d_matrix((3, 5, 5), scale_factor=2)),
        ("bilinear ×2", bilinear, upsample_bilinear2d_matrix((3, 5, 5), scale_factor=2))):
    record = layer.forward(small)[1]
    returned = layer.backward(signal, record)
    check = dottest(lambda v: layer.forward(v)[0], lambda v: layer.backward(v, record),
                    small.shape, signal.shape)
    error = np.abs(returned.ravel() - matrix.T @ signal.ravel()).max()
    print(f"{name:11s}: dot test {check.relative_error:.1e}; max |backward − Aᵀ r| "
          f"(A from minideconv.matrices) = {error:.1e}")
    assert check.relative_error < 1e-14 and error < 1e-14
summed = nearest.backward(signal, nearest.forward(small)[1])
block_error = np.abs(summed - 4 * ops.avg_pool2d(signal, 2)).max()
print(f"nearest ×2's transpose vs 4 × avg_pool2d(r, 2): max |difference| = "
      f"{block_error:.1e}")
assert block_error < 1e-14

# %% [markdown]
# ZFNet, from an ONNX file
# ------------------------
# The ONNX model zoo ships ZFNet-512, and the ``onnx`` package carries its
# architecture among its backend test data (``backend/test/data/light/
# light_zfnet512.onnx``: the layers without the trained weights, each weight built as
# a constant of its shape, so only the shapes below mean anything).  ``from_onnx``
# reads it as an ``nn.Graph``.  Compare its layers with Figure 3 of Zeiler & Fergus
# (2014): layer 1 is 96 filters of 7 × 7 with stride 2, then a 3 × 3 max-pool with
# stride 2 and a contrast normalisation; layer 2 is 256 filters of 5 × 5 with stride 2,
# then the same pool; layers 3–5 are 3 × 3 convolutions with stride 1 (384, 384 and
# 256 filters in the paper), then a 3 × 3 max-pool with stride 2; then two fully
# connected layers of 4096 and a 1000-way softmax.

# %%
if importlib.util.find_spec("onnx") is None:
    print("onnx is not installed: skipping ZFNet (pip install 'minideconv[onnx]')")
else:
    import os

    import onnx

    from minideconv.interop.onnx import from_onnx

    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data",
                        "light", "light_zfnet512.onnx")
    zfnet = from_onnx(path)
    shapes = zfnet.layer_shapes()
    print(f"ZFNet-512, input {zfnet.input_shape}:")
    for i, (name, layer, shape) in enumerate(zip(zfnet.names, zfnet.layers, shapes)):
        kind = type(layer).__name__
        detail = ""
        if kind == "Conv2d":
            detail = (f"{layer.weight.shape[0]} filters {layer.weight.shape[2]}×"
                      f"{layer.weight.shape[3]}, stride {layer.stride[0]}")
        elif kind == "MaxPool2d":
            detail = (f"{layer.kernel_size[0]}×{layer.kernel_size[1]}, "
                      f"stride {layer.stride[0]}")
        elif kind == "Linear":
            detail = f"{layer.weight.shape[1]} → {layer.weight.shape[0]}"
        print(f"  {name:4s} {kind:18s} {detail:26s} → {shape}")
    convs = [layer for layer in zfnet.layers if type(layer).__name__ == "Conv2d"]
    pools = [layer for layer in zfnet.layers if type(layer).__name__ == "MaxPool2d"]
    fcs = [layer for layer in zfnet.layers if type(layer).__name__ == "Linear"]
    assert [(c.weight.shape[0], c.weight.shape[2], c.stride[0]) for c in convs[:2]] == \
        [(96, 7, 2), (256, 5, 2)]                                  # as Figure 3
    assert [(c.weight.shape[2], c.stride[0]) for c in convs[2:]] == [(3, 1)] * 3
    assert [c.weight.shape[0] for c in convs[2:]] == [512, 512, 512]   # paper: 384, 384, 256
    assert [(p.kernel_size[0], p.stride[0]) for p in pools] == [(3, 2), (3, 2), (2, 2)]
    assert [f.weight.shape[0] for f in fcs] == [4096, 1024, 1000]

# %% [markdown]
# Layers 1 and 2 are Figure 3's: the same filter counts, kernel sizes and strides,
# each followed by a local response normalisation and a 3 × 3 max-pool with stride 2
# (in the file the normalisation comes before the pool, in the paper after it).
# Layers 3–5 have 512 filters each where the paper has 384, 384 and 256, the last
# pool is 2 × 2, and the second fully connected layer has 1024 units where the paper
# has 4096.  The feature maps are one pixel smaller than the paper's
# (109, 54, 25 and 12 where Figure 3 has 110, 55, 26 and 13).  Every rectifier is a
# ReLU and the three pools are max-pools, so the deconvnet rule reads this image
# through the switches, as in Zeiler & Fergus's network (and, in minideconv, through
# the normalisations' Jacobians); ``visualize.project`` takes this graph as it takes
# any other.

# %% [markdown]
# What to take away
# -----------------
# - The rule table covers every rectifier of this shape: the deconvnet rectifies
#   the signal by the unit's own slope (relu(g) for ReLU6, rect_α(g) for LeakyReLU
#   and PReLU) without reading x or the cap; guided also masks by f′(x); backprop is
#   f′(x)·g.  Smooth activations pass f′(x)·g under every rule.
# - In a network without max-pools whose nonlinearities are all rectifiers (and no
#   product or normalisation whose way back reads its input), the deconvnet's way
#   back reads nothing from the image: a unit seeded with 1 has one map for every
#   image (measured here bit for bit on a MobileNet-like network).  A max-pool's
#   switches, or a smooth activation, bring the image back.
# - The transpose of a transposed convolution is the convolution (same weight, stride
#   and padding); a stride-2 transposed convolution's checkerboard of tap counts is a
#   pattern of its forward pass, not of its way back.
# - Nearest ×2 upsampling's transpose sums each 2 × 2 block (4 × the average pool);
#   bilinear's sends the signal back with the interpolation weights.

# %%
print(f"lesson 13 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **Homogeneous, not linear.**  For a LeakyReLU(α), show that the deconvnet rule
#    is positively homogeneous (r(c·g) = c·r(g) for c ≥ 0) but, unless α = 1, not
#    linear: find a g for which r(−g) ≠ −r(g).  For which α do all three rules give
#    back g unchanged?
# 2. **Nearest ×3.**  What is the transpose of ``nn.Upsample(scale_factor=3,
#    mode="nearest")``?  Express it with ``ops.avg_pool2d`` and check it against the
#    dense matrix of ``matrices.upsample_nearest2d_matrix``.
# 3. **The cap does not matter.**  Build a small MobileNet-like network (a stride-2
#    stem, BatchNorm, a clipped ReLU, a depthwise convolution, BatchNorm, a clipped
#    ReLU, a global average pool, a linear layer) twice with the same weights, once
#    with ``nn.ClippedReLU(6)`` and once with ``nn.ClippedReLU(1)``.  Show that the
#    two networks' deconvnet maps of a logit (seeded with 1) are the same array for
#    several images, while their backprop maps differ.  Check each backprop map
#    against central finite differences of the logit.
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/13_the_rule_table_on_todays_networks.py``.
