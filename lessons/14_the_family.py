# %% [markdown]
"""
Lesson 14: The family
=====================

The deconvnet was followed by many maps that explain a network's decision in pixels:
the gradient (saliency), input × gradient, integrated gradients, SmoothGrad, Grad-CAM,
guided Grad-CAM, layer-wise relevance propagation.  Each was published as its own
idea.  This lesson writes each one as a *seed and a rule on the same chain of
transposes* that lessons 4–7 built — ``Network.backward`` from the seed e_t at a logit,
with the gradient's rule, the deconvnet's, guided backprop's or a reweighted one —
and checks every identity against ``minideconv.attribution``, on the shipped network.
"""

# %%
import dataclasses
import time

import numpy as np

from minideconv import attribution, nn, ops, plots
from minideconv.attribution.lrp import Composite
from minideconv.data import CLASSES, load_dataset, load_model
from minideconv.matrices import conv2d_matrix

plt = plots.setup()
start = time.perf_counter()


def quoted(value, number, tolerance=0.01):
    """The text quotes ``number`` for ``value``: make sure it still says so."""
    assert abs(value - number) <= tolerance, f"measured {value:.4g}, the text says {number}"


def relative(a, b):
    """max |a − b| / max |b|: how far a is from b, as a share of b's scale."""
    return float(np.abs(a - b).max() / np.abs(b).max())


# %% [markdown]
# One chain, one seed
# -------------------
# Every method here explains one class logit z_t (the network's output before a
# softmax).  Its seed is e_t: 1 at z_t, 0 at the other logits.  Passed down the chain
# with the gradient's rule at every ReLU, it arrives at the pixels as ∂z_t/∂x — the
# "backprop" map of lesson 6, seeded with 1 at the logit.  We take the shipped network
# in float64 (so that identities show to rounding) and the first 8 test images, each
# explained for its true class (the network classifies all 8 correctly).

# %%
net = load_model().astype(np.float64)
images, labels = load_dataset("test", n=8)
x = images.astype(np.float64)
LOGITS = net.output_layer()
trace = net.trace(x, upto=LOGITS)
logits = trace.outputs[LOGITS]
t = labels                                       # the class each map explains
assert np.array_equal(logits.argmax(axis=1), t)
e_t = np.zeros_like(logits)
e_t[np.arange(len(t)), t] = 1
grad = net.backward(e_t, trace, start=LOGITS)    # ∂z_t/∂x, one pass down
assert np.array_equal(grad, attribution.gradient(net, x, t))


def logit(batch, target):
    """z_target of each image of the batch: one forward pass."""
    return net.forward_outputs(batch, [LOGITS])[LOGITS][:, target]


# central differences of z_t at image 0, at 256 of its pixel values drawn at random
h = 1e-6
picked = np.random.default_rng(0).choice(x[0].size, 256, replace=False)
steps = h * np.eye(x[0].size)[picked].reshape((len(picked),) + x[0].shape)
numeric = (logit(x[0] + steps, t[0]) - logit(x[0] - steps, t[0])) / (2 * h)
print(f"gradient = net.backward(e_t): the same array as attribution.gradient; vs central "
      f"differences (image 0, {len(picked)} pixel values): relative error "
      f"{relative(grad[0].ravel()[picked], numeric):.1e}")
assert relative(grad[0].ravel()[picked], numeric) < 1e-7

# %% [markdown]
# Grad-CAM: the chain cut at a layer, pooled
# ------------------------------------------
# Grad-CAM stops the same pass at a layer A with feature maps A_c (``stop=``), averages
# the gradient over each map, α_c = mean_ij ∂z_t/∂A_c[i, j], and keeps the positive part
# of Σ_c α_c A_c.  On the shipped network the layer with feature maps larger than 1 × 1
# nearest the logits is layer 7, the ReLU after the last convolution (32 maps of 7 × 7).
# After it come only Flatten and the linear layer, so ∂z_t/∂A is the linear layer's row
# t, reshaped: the same for every image of class t, and α_c is the mean of that row over
# the channel's 49 entries.  The image enters Grad-CAM here only through A.

# %%
LAYER = attribution.last_spatial_layer(net)
assert LAYER == 7
dA = net.backward(e_t, trace, start=LOGITS, stop=LAYER)        # ∂z_t/∂A, (8, 32, 7, 7)
rows = net.layers[LOGITS].weight[t].reshape(dA.shape)            # the linear layer's rows
assert np.array_equal(dA, rows)
alpha = dA.mean(axis=(2, 3))                                     # α_c, (8, 32)
A = trace.outputs[LAYER]
cam = np.maximum(np.einsum("nc,nchw->nhw", alpha, A), 0)
assert np.array_equal(cam, attribution.grad_cam(net, x, LAYER, t))
print(f"Grad-CAM at layer {LAYER}: ∂z_t/∂A = the linear layer's row t (exactly); α by hand "
      f"from net.backward(..., stop={LAYER}) gives the same maps as attribution.grad_cam; "
      f"α ranges over [{alpha.min():.3f}, {alpha.max():.3f}]")

# %% [markdown]
# Guided Grad-CAM is a product: guided backprop's pixel map (the guided rule on the same
# chain, seeded with e_t) times the Grad-CAM map, upsampled from 7 × 7 to 32 × 32 by
# nearest neighbour and the same for every colour channel.

# %%
guided = net.backward(e_t, trace, start=LOGITS, rule="guided")
up = ops.upsample_nearest2d(cam[:, None], size=x.shape[2:])
assert np.array_equal(guided * up, attribution.guided_grad_cam(net, x, LAYER, t))
print("guided Grad-CAM = guided backprop ⊙ up(Grad-CAM): the same array as "
      "attribution.guided_grad_cam")

# %% [markdown]
# Integrated gradients: an average of gradients along a path
# ----------------------------------------------------------
# Integrated gradients seeds the same chain at many images: the points x̄ + α(x − x̄) of
# the straight path from a baseline x̄ (here the black image, 0) to x.  It averages the
# gradients with quadrature weights w_k and multiplies by x − x̄:
#
#     IG(x) = (x − x̄) ⊙ Σ_k w_k ∂z_t/∂x(x̄ + α_k (x − x̄)).
#
# Why its sum is the change of the logit (*completeness*): along the path γ(α),
# dz_t(γ(α))/dα = ⟨∂z_t/∂x(γ(α)), x − x̄⟩, so the exact integral sums to
# Σ IG = z_t(x) − z_t(x̄), the fundamental theorem of calculus.  A quadrature leaves an
# error.  By hand, with 50 Gauss–Legendre points:

# %%
nodes, weights = np.polynomial.legendre.leggauss(50)
alphas, weights = (nodes + 1) / 2, weights / 2                  # from [−1, 1] to [0, 1]
path = alphas[:, None, None, None, None] * x[None]              # x̄ = 0: (50, 8, C, H, W)
on_path = path.reshape((-1,) + x.shape[1:])
path_trace = net.trace(on_path, upto=LOGITS)
path_seed = np.zeros_like(path_trace.outputs[LOGITS])
path_seed[np.arange(len(on_path)), np.tile(t, len(alphas))] = 1
path_grads = net.backward(path_seed, path_trace, start=LOGITS).reshape(path.shape)
ig = x * np.tensordot(weights, path_grads, axes=1)
packaged = attribution.integrated_gradients(net, x, t)
print(f"IG by hand vs attribution.integrated_gradients (50 Gauss–Legendre steps): "
      f"relative difference {relative(ig, packaged):.1e}")
assert relative(ig, packaged) < 1e-13

change = logits[np.arange(len(t)), t] - logit(np.zeros_like(x), t).diagonal()


def completeness(network, images, targets, delta, steps, method):
    """|Σ IG − (z_t(x) − z_t(0))| / |z_t(x) − z_t(0)| for each image, and Σ IG / Δz."""
    total = attribution.integrated_gradients(network, images, targets, steps=steps,
                                             method=method).sum(axis=(1, 2, 3))
    return np.abs(total - delta) / np.abs(delta), total / delta


counts = (4, 16, 50, 200)
errors, ratios = {}, {}
for method in ("gausslegendre", "riemann_trapezoid"):
    for n in counts:
        errors[method, n], ratios[method, n] = completeness(net, x, t, change, n, method)
for method in ("gausslegendre", "riemann_trapezoid"):
    for n in (50, 200):
        error, ratio = errors[method, n], ratios[method, n]
        undershoot = "" if method == "gausslegendre" else \
            f" ((n − 1)/n = {(n - 1) / n:.4f})"
        print(f"{method:17s} {n:3d} steps: |Σ IG − Δz| / |Δz| median "
              f"{np.median(error):.1e}, max {error.max():.1e}; Σ IG / Δz from "
              f"{ratio.min():.4f} to {ratio.max():.4f}{undershoot}")
gauss = {n: np.median(errors["gausslegendre", n]) for n in (50, 200)}
assert gauss[200] < gauss[50] < 0.01
quoted(100 * errors["gausslegendre", 50].max(), 0.6, 0.05)
quoted(100 * errors["gausslegendre", 200].max(), 0.5, 0.05)
quoted(100 * np.median(errors["gausslegendre", 200]), 0.06, 0.005)
for n in (50, 200):          # Captum's trapezoid: close to the (n − 1)/n undershoot
    assert np.all(np.abs(errors["riemann_trapezoid", n] - 1 / n) < 0.5 / n)

# %% [markdown]
# With 50 Gauss–Legendre points the sum misses Δz by at most 0.6 % on these 8 images,
# with 200 by at most 0.5 % (median 0.06 %): the error shrinks, but slowly for a
# quadrature that is exact for polynomials of degree below 2n.  The reason is the
# integrand: on a network of ReLUs and max-pools z_t is piecewise linear, so along the
# path the gradient is piecewise *constant*, and it jumps wherever a ReLU turns on or a
# switch moves.  No polynomial rule integrates a jump exactly.
#
# Captum's ``riemann_trapezoid`` misses by about 1/n: its weights (1/2n, 1/n, …, 1/n,
# 1/2n) sum to (n − 1)/n, not 1 (the textbook trapezoid on n points has step 1/(n − 1)).
# Rescaled by n/(n − 1), it is an ordinary trapezoid rule:

# %%
for n in (50, 200):
    rescaled = np.abs(ratios["riemann_trapezoid", n] * n / (n - 1) - 1)
    print(f"riemann_trapezoid {n:3d} steps × n/(n − 1): |Σ IG − Δz| / |Δz| median "
          f"{np.median(rescaled):.1e}, max {rescaled.max():.1e}")
    assert np.median(rescaled) < np.median(errors["riemann_trapezoid", n]) / 5

# %% [markdown]
# For an affine network the gradient is the same at every point of the path, so any
# rule whose weights sum to 1 is exact, with one step as with fifty.  The shipped
# network with its ReLUs replaced by ``nn.Identity`` and its max-pools by average pools
# of the same geometry is affine (same weights, same shapes):

# %%
def affine(layer):
    """The layer, or a linear stand-in of the same shapes for a ReLU or a max-pool."""
    if isinstance(layer, nn.ReLU):
        return nn.Identity()
    if isinstance(layer, nn.MaxPool2d):
        return nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding)
    return layer


flat_net = nn.Sequential(*[affine(layer) for layer in net.layers],
                         input_shape=net.input_shape)
flat_logits = {name: flat_net.forward_outputs(batch, [LOGITS])[LOGITS][np.arange(len(t)), t]
               for name, batch in (("x", x), ("0", np.zeros_like(x)))}
flat_change = flat_logits["x"] - flat_logits["0"]
for method, n in (("gausslegendre", 1), ("gausslegendre", 50), ("riemann_trapezoid", 50)):
    _, ratio = completeness(flat_net, x, t, flat_change, n, method)
    expected = (n - 1) / n if method == "riemann_trapezoid" else 1.0
    print(f"affine network, {method:17s} {n:2d} step(s): max |Σ IG / Δz − {expected:g}| = "
          f"{np.abs(ratio - expected).max():.1e}")
    assert np.abs(ratio - expected).max() < 1e-12

# %% [markdown]
# The path itself shows why the quadrature converges slowly.  Below, for image 0, the
# logit along the path and its derivative ⟨∂z_t/∂x(γ(α)), x⟩ at 500 points, and the
# completeness error of three rules as the number of steps grows (median over the 8
# images).

# %%
fine = np.linspace(0, 1, 500)
fine_trace = net.trace(fine[:, None, None, None] * x[0][None], upto=LOGITS)
fine_seed = np.zeros_like(fine_trace.outputs[LOGITS])
fine_seed[:, t[0]] = 1
along = fine_trace.outputs[LOGITS][:, t[0]]
slope = (net.backward(fine_seed, fine_trace, start=LOGITS) * x[0]).sum(axis=(1, 2, 3))
jumps = int(np.count_nonzero(np.abs(np.diff(slope)) > 1e-9 * np.abs(slope).max()))
print(f"image 0 on the path: dz_t/dα changes between {jumps} of the {len(fine) - 1} "
      f"pairs of neighbouring points; z_t rises from {along[0]:.2f} to {along[-1]:.2f}")
assert jumps > 20
quoted(jumps, 477, 0)

trapezoid = [ratios["riemann_trapezoid", n] for n in counts]
curves = {"Gauss–Legendre": [np.median(errors["gausslegendre", n]) for n in counts],
          "Captum's trapezoid": [np.median(np.abs(r - 1)) for r in trapezoid],
          "trapezoid × n/(n − 1)": [np.median(np.abs(r * n / (n - 1) - 1))
                                    for r, n in zip(trapezoid, counts)]}

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
axes[0].plot(fine, along, "k-")
axes[0].set(xlabel="α", ylabel=f"z_t(α x), t = {CLASSES[t[0]]}",
            title="the logit along the path (image 0)")
axes[1].plot(fine, slope, "k-", lw=0.8)
axes[1].set(xlabel="α", ylabel="⟨∂z_t/∂x(α x), x⟩",
            title="its derivative: piecewise constant")
for (name, values), marker in zip(curves.items(), ("o", "s", "^")):
    axes[2].loglog(counts, values, marker + "-", label=name)
axes[2].loglog(counts, 1 / np.array(counts), "k:", label="1/n")
axes[2].set(xlabel="steps n", ylabel="median |Σ IG − Δz| / |Δz|",
            title="completeness error, 8 images")
axes[2].legend(fontsize=8)
plots.save_lesson_figure(fig, "14_integrated_gradients_path")

# %% [markdown]
# SmoothGrad: an average over noise
# ---------------------------------
# SmoothGrad seeds the chain at noisy copies x + ε_s of the image, ε_s ~ N(0, σ²), and
# averages the gradients.  With the noise given, it is one batch through the same pass;
# one sample of zero noise is the gradient itself.

# %%
rng = np.random.default_rng(14)
noise = 0.15 * rng.standard_normal((10,) + x.shape)           # σ = 0.15, images in [0, 1]
noisy = (x[None] + noise).reshape((-1,) + x.shape[1:])
noisy_trace = net.trace(noisy, upto=LOGITS)
noisy_seed = np.zeros_like(noisy_trace.outputs[LOGITS])
noisy_seed[np.arange(len(noisy)), np.tile(t, 10)] = 1
by_hand = net.backward(noisy_seed, noisy_trace, start=LOGITS).reshape(noise.shape).mean(0)
sg = attribution.smoothgrad(net, x, t, noise=noise)
print(f"SmoothGrad by hand vs attribution.smoothgrad (the same 10 draws): relative "
      f"difference {relative(by_hand, sg):.1e}")
assert relative(by_hand, sg) < 1e-13
zero_noise = np.zeros((1,) + x.shape)
assert np.array_equal(attribution.smoothgrad(net, x, t, noise=zero_noise), grad)
print("SmoothGrad with one sample of zero noise: the same array as the gradient")

# %% [markdown]
# LRP-0 is input × gradient
# -------------------------
# Layer-wise relevance propagation (Bach et al. 2015) passes a *relevance* R down from
# the logit, each layer by a rule.  Its basic rule, LRP-0, at a layer z = W a + b with
# input a, gives each input its share of each output's relevance in proportion to what
# it put in:
#
#     R_in = a ⊙ Wᵀ(R / z),
#
# the layer's own transpose Wᵀ between a division by its output z and a multiplication
# by its input a, both from the forward pass.  A ReLU
# passes R unchanged; a max-pool sends R to its switches (its transpose, as the
# gradient does); Flatten reshapes it.
#
# On a network of ReLUs and max-pools this is input × gradient.  Write g for the
# gradient ∂z_t/∂(·) of the logit at any layer.  If the relevance arriving at a weighted
# layer's output has the form R = z ⊙ g, then R / z = g and R_in = a ⊙ Wᵀ g, which is
# a ⊙ g at its input.  The form survives each layer: at a ReLU a = relu(u), and
# a ⊙ g_a = u ⊙ 1[u > 0] g_a = u ⊙ g_u, so passing R unchanged is right; at a max-pool
# y = P u selects inputs, and Pᵀ(P u ⊙ g_y) = u ⊙ Pᵀ g_y = u ⊙ g_u.  Seeded with
# R = z ⊙ e_t = z_t e_t at the logits, it arrives at the pixels as x ⊙ ∂z_t/∂x.  (Seeded
# with 1 at z_t, as ``attribution.lrp`` seeds it, LRP-0 is input × gradient / z_t.)
# Each bias keeps its share b_j / z_j of R_j (it has no input to pass it to), so Σ R at
# the pixels is not z_t (next cell).

# %%
def lrp0(network, tr, relevance):
    """LRP-0 from ``relevance`` at the logits down to the pixels, along the trace ``tr``:
    a ⊙ Wᵀ(R / z) at each Conv2d and Linear (its own backward is Wᵀ), R unchanged at each
    ReLU, and the way back of max-pools and Flatten (switches, reshape) elsewhere."""
    for k in range(network.output_layer(), -1, -1):
        layer, record = network.layers[k], tr.records[k]
        below = tr.input if k == 0 else tr.outputs[k - 1]
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            relevance = below * layer.backward(relevance / tr.outputs[k], record)
        elif not isinstance(layer, nn.ReLU):
            relevance = layer.backward(relevance, record)
    return relevance


input_x_gradient = attribution.input_x_gradient(net, x, t)
lrp_zero = lrp0(net, trace, logits * e_t)
print(f"LRP-0 seeded with z_t vs input × gradient: relative difference "
      f"{relative(lrp_zero, input_x_gradient):.1e}")
assert relative(lrp_zero, input_x_gradient) < 1e-12
share = input_x_gradient.sum(axis=(1, 2, 3)) / logits[np.arange(len(t)), t]
print(f"Σ (x ⊙ ∂z_t/∂x) / z_t over the 8 images: from {share.min():.2f} to "
      f"{share.max():.2f} (1 would be a network without biases, by Euler's theorem)")
quoted(share.min(), 0.85)
quoted(share.max(), 1.24)

# attribution.lrp with the ε rule everywhere and ε → 0 is LRP-0, seeded with 1 at z_t
LRP0 = Composite("epsilon", "epsilon", "epsilon", epsilon=1e-100, stabilizer=1e-100)
seeded_with_one = attribution.lrp(net, x, t, composite=LRP0)
z_t = logits[np.arange(len(t)), t][:, None, None, None]
print(f"attribution.lrp (ε → 0 everywhere) × z_t vs input × gradient: relative difference "
      f"{relative(seeded_with_one * z_t, input_x_gradient):.1e}")
assert relative(seeded_with_one * z_t, input_x_gradient) < 1e-12

# %% [markdown]
# z⁺: a transpose with reweighted entries
# ----------------------------------------
# The z⁺ rule (α = 1, β = 0) lets only the positive contributions share R.  For an
# input a ≥ 0 (an image, or the output of a ReLU) they are those through the positive
# weights W⁺ = max(W, 0):
#
#     R_in = a ⊙ W⁺ᵀ(R / stab(W⁺a + b⁺)),    stab(z) = z + 10⁻⁶ (z ≥ 0 here),
#
# a linear map of R, with the matrix diag(a) W⁺ᵀ diag(1 / stab(z⁺)): the transpose of
# the positive part of W, its rows weighed by the image and its columns by the forward
# pass — as the deconvnet's way back is the transpose with the signal rectified.  We
# write that matrix for a small convolution (4 filters 3 × 3 on a 3 × 6 × 6 input ≥ 0,
# a 4 × 4 × 4 output) with ``minideconv.matrices.conv2d_matrix``.  Its column sums are
# (W⁺a)_k / stab(z⁺)_k ≤ 1: the relevance of output k is kept, but for the share of
# the positive bias b⁺ (and of the stabiliser).

# %%
rng = np.random.default_rng(1414)
w_small = rng.standard_normal((4, 3, 3, 3))
b_small = rng.standard_normal(4)
a_small = rng.uniform(0, 1, (3, 6, 6))
W_plus = conv2d_matrix(np.maximum(w_small, 0), a_small.shape)          # 64 × 108, sparse
b_plus = np.repeat(np.maximum(b_small, 0), 16)                         # per output unit
z_plus = W_plus @ a_small.ravel() + b_plus
M = (a_small.ravel()[:, None] * (W_plus.T.toarray() / (z_plus + 1e-6)[None, :]))
column_sums = M.sum(axis=0)
expected = (W_plus @ a_small.ravel()) / (z_plus + 1e-6)
assert np.allclose(column_sums, expected, rtol=1e-13, atol=0) and column_sums.max() <= 1
print(f"z⁺ on the small convolution: a {M.shape[0]} × {M.shape[1]} matrix with "
      f"{np.count_nonzero(M)} non-zero entries (W⁺: {np.count_nonzero(W_plus.data)}); "
      f"column sums from "
      f"{column_sums.min():.3f} to {column_sums.max():.3f}")

# %% [markdown]
# ``attribution.lrp`` applies z⁺ layer by layer (with zennit's rules).  To read its map
# of this one convolution, put the convolution under an identity linear layer, one
# logit per output unit, with the ε rule at ε → 0: that layer hands R = e_k to output k
# unchanged.  Then ``lrp`` with target k is column k of the matrix above, and the 64
# targets give all of it:

# %%
small = nn.Sequential(nn.Conv2d(w_small, b_small), nn.Flatten(),
                      nn.Linear(np.eye(64), np.zeros(64)), input_shape=a_small.shape)
ZPLUS = Composite("zplus", "zplus", "epsilon", epsilon=1e-100)   # z⁺ at the convolution
columns = attribution.lrp(small, np.repeat(a_small[None], 64, axis=0), np.arange(64),
                          composite=ZPLUS)
by_lrp = columns.reshape(64, -1).T                                # column k: target k
print(f"attribution.lrp's z⁺ on the small convolution vs diag(a) W⁺ᵀ diag(1/stab(z⁺)) "
      f"(from conv2d_matrix): relative difference {relative(by_lrp, M):.1e}")
assert relative(by_lrp, M) < 1e-12

# %% [markdown]
# The deconvnet's map of a convolution is Wᵀ, the same for every image; z⁺'s is W⁺ᵀ with
# its rows scaled by the input and its columns by 1/z⁺, so it reads the image at every
# layer.  On the shipped network ``attribution.lrp``'s default composite
# (``epsilon_plus_flat``) uses the flat rule at the first convolution, z⁺ at the other
# two and ε at the linear layer; ``epsilon_alpha2_beta1_flat`` uses α = 2, β = 1 in
# place of z⁺, which also lets the negative contributions share R (with weight −1).

# %% [markdown]
# The family on three images
# --------------------------
# ``attribution.METHODS`` holds every map under one signature, each with the settings
# this package's tables use (IG from the black image with 50 Gauss–Legendre steps,
# SmoothGrad with 50 samples of σ = 0.15 of the image's range, Grad-CAM at layer 7,
# LRP with the two composites above, occlusion with Zeiler & Fergus's grey square).
# Each map is summed over the colour channels and drawn on its own symmetric scale
# (Grad-CAM's 7 × 7 map is ≥ 0).

# %%
FAMILY = list(attribution.METHODS)
shown = [0, 1, 2]
family_maps = {name: attribution.compute(name, net, x[shown], t[shown]) for name in FAMILY}
fig, axes = plt.subplots(len(shown), len(FAMILY) + 1, figsize=(1.55 * (len(FAMILY) + 1),
                                                               1.75 * len(shown)),
                         layout="constrained")
for row, i in enumerate(shown):
    axes[row, 0].imshow(x[i].transpose(1, 2, 0))
    axes[row, 0].set_ylabel(CLASSES[t[i]])
    for col, name in enumerate(FAMILY, 1):
        m = family_maps[name][row]
        plots.image(axes[row, col], m if m.ndim == 2 else m.sum(axis=0),
                    name.replace("_", " ") if row == 0 else None, cbar=False)
for ax in axes[:, 0]:
    ax.set_xticks([]), ax.set_yticks([])
for ax in axes[0]:
    ax.title.set_fontsize(7)
fig.suptitle("The family on the shipped network, each map explaining the true class's "
             "logit\nsummed over colour, each on its own scale (red > 0, blue < 0)")
plots.save_lesson_figure(fig, "14_family", thumbnail="14",
                         thumbnail_axes=list(axes[:, :4].ravel()))

# %% [markdown]
# Which map points at the object?
# -------------------------------
# The drawn dataset knows the mask of every object (``load_dataset(..., masks=True)``),
# so each map can be scored against the pixels the object covers.
# ``attribution.localisation_table`` turns every map into a heatmap R ≥ 0 (Σ_c |m_c|
# for a pixel map; Grad-CAM's upsampled bilinearly) and measures, on the same images:
#
# - the *pointing game* (Zhang et al. 2018): is the maximum of R on the object?
# - the *relevance mass* (Arras et al. 2022): the share of Σ R that lies on the object
#   (a uniform map scores the mask's share of the image);
# - the *deletion AUC* (Petsiuk et al. 2018): the logit, over its first value, as the
#   pixels are replaced by the image's mean colour from the most relevant down in 16
#   steps; the area under that curve (lower is better).
#
# Beside the methods, two maps that know nothing of the network: a Gaussian at the
# centre (TorchRay's baseline) and uniform noise.  The shipped network in
# float32, as shipped, and the first 100 test images, each explained for its true class:

# %%
shipped = load_model()
test_images, test_labels, test_masks = load_dataset("test", 100, masks=True)
table = attribution.localisation_table(shipped, test_images, test_labels, test_masks,
                                       attribution.METHODS)
print(table)
pointing, mass, auc = table.mean("pointing"), table.mean("mass"), table.mean("auc")


def paired_difference(a, b, values):
    """The mean of values[a] − values[b] over the images and its standard error."""
    d = values[a] - values[b]
    return d.mean(), d.std(ddof=1) / np.sqrt(len(d))


for a, b in (("deconvnet", "centre"), ("lrp", "centre"), ("grad_cam", "centre"),
             ("guided_backprop", "deconvnet")):
    diff, se = paired_difference(a, b, table.pointing)
    print(f"pointing, {a} − {b}: {100 * diff:+.0f} points (standard error of the paired "
          f"difference {100 * se:.1f})")

# Grad-CAM's layer: the map whose sum is exactly the logit's share from layer 7,
# relu(Σ_c W_t,c ⊙ A_c) (z_t = Σ_c ⟨W_t,c, A_c⟩ + b_t), against Grad-CAM's pooled weights
layer7 = shipped.trace(test_images, upto=LAYER).outputs[LAYER]
row_maps = shipped.layers[LOGITS].weight[test_labels].reshape(layer7.shape)
exact_share = np.maximum((row_maps * layer7).sum(axis=1), 0)
share_pointing = np.nanmean(attribution.pointing_game(
    attribution.heatmap(exact_share, test_images.shape[2:]), test_masks))
print(f"pointing of relu(Σ_c W_t,c ⊙ A_c) at layer {LAYER}: {100 * share_pointing:.0f} % "
      f"(Grad-CAM's relu(Σ_c α_c A_c): {100 * pointing['grad_cam']:.0f} %)")

for name in attribution.METHODS:
    if name != "grad_cam":
        assert mass[name] > mass["centre"]
assert max(pointing, key=pointing.get) == "lrp" and max(mass, key=mass.get) == "lrp"
assert min(auc, key=auc.get) == "guided_backprop"
assert pointing["grad_cam"] <= pointing["random"] and auc["grad_cam"] > auc["random"]
assert abs(mass["random"] - table.mask_fraction) < 0.005
for value, number in ((pointing["lrp"], 0.77), (mass["lrp"], 0.437),
                      (pointing["guided_backprop"], 0.67), (mass["guided_backprop"], 0.426),
                      (auc["guided_backprop"], 0.097), (auc["lrp"], 0.115),
                      (pointing["deconvnet"], 0.62), (pointing["centre"], 0.53),
                      (pointing["grad_cam"], 0.24), (pointing["random"], 0.24),
                      (auc["grad_cam"], 0.443), (auc["random"], 0.422),
                      (pointing["gradient"], 0.52), (pointing["guided_grad_cam"], 0.52),
                      (mass["centre"], 0.293), (mass["smoothgrad"], 0.331),
                      (share_pointing, 0.27)):
    quoted(value, number, 0.001)
assert not any(np.isnan(table.pointing[name]).any() for name in table.names)
quoted(100 * paired_difference("deconvnet", "centre", table.pointing)[1], 7.0, 0.05)
quoted(100 * paired_difference("grad_cam", "centre", table.pointing)[1], 6.6, 0.05)

# %% [markdown]
# The objects cover 21.3 % of the pixels of these 100 images, and the random map puts
# 21.3 % of its mass on them: chance.  On this network and these images:
#
# - LRP with z⁺ (``lrp``, ε / z⁺ / flat) points at the object most often, 77 %, and puts
#   the largest share of its mass on it, 43.7 %.  Guided backprop follows (67 % and
#   42.6 %) and has the smallest deletion AUC, 0.097 (LRP: 0.115).
# - Every method but Grad-CAM puts more of its mass on the object than the centre
#   Gaussian does (29.3 %; the lowest of them, SmoothGrad, 33.1 %).  In the pointing
#   game the gradient and guided Grad-CAM (52 % each) do no better than the centre
#   (53 %).
# - The deconvnet points at the object in 62 % of the images, the centre baseline in
#   53 %.  In TorchRay's pointing-game table (VGG-16 on VOC07) the deconvnet is *below*
#   the centre baseline, 67.5 against 69.6; here it is above it, by 9 points, but the
#   standard error of that paired difference is 7.0 points: 100 images do not settle
#   the order of the two.
# - Grad-CAM at layer 7 points at the object as often as the random map (24 %), 29
#   points below the centre baseline (standard error 6.6), and its deletion AUC, 0.443,
#   is worse than the random map's, 0.422.  Averaging the gradient is not what costs it
#   here: the map Σ_c W_t,c ⊙ A_c, whose 49 cells sum to z_t − b_t exactly, taken
#   positive like Grad-CAM's, points at 27 %: at this layer the most positive evidence
#   for the class, upsampled to the image, lies off the object in 73 of the 100 images.

# %% [markdown]
# The sanity cascade for the whole family
# ---------------------------------------
# Lesson 9 ran Adebayo et al.'s cascading randomization on the three rules of one
# unit.  ``attribution.family_cascade`` runs it for any method on a logit: the weights
# of the linear layer, then of each convolution down to the first, are redrawn
# cumulatively in the network itself (its forward pass re-run, as Adebayo et al. did),
# and each map is compared with the trained network's map over the whole image — the
# signed rank correlation ρ, the rank correlation of |map| and SSIM.  Their headline
# (on Inception v3 and ImageNet): guided backprop and guided Grad-CAM barely change,
# the gradient and Grad-CAM do.  Here, on the first 8 test images, medians over the
# images at each step:

# %%
cascades = [attribution.family_cascade(shipped, test_images[i], int(test_labels[i]),
                                       attribution.METHODS) for i in range(8)]
cascade_steps = cascades[0].steps
print("median over 8 images of the signed rank correlation ρ with the trained map, "
      "weights redrawn from the top down to:")
print(f"   {'':21s}" + "".join(f"{s.split(' (')[0]:>10s}" for s in cascade_steps[1:]))
rho = {name: np.median([c.spearman[name] for c in cascades], axis=0)
       for name in attribution.METHODS}
ssim = {name: np.median([c.ssim[name] for c in cascades], axis=0)
        for name in attribution.METHODS}
for name in attribution.METHODS:
    print(f"   {name:21s}" + "".join(f"{v:>+10.2f}" for v in rho[name][1:]) +
          "   SSIM " + " ".join(f"{v:.2f}" for v in ssim[name][1:]))
for name, numbers in (("guided_backprop", (0.86, 0.77, 0.72, 0.22)),
                      ("guided_grad_cam", (0.31, 0.41, 0.34, 0.08)),
                      ("deconvnet", (0.45, 0.60, 0.58, 0.14)),
                      ("lrp", (0.49, 0.14, 0.01, 0.11))):
    for value, number in zip(rho[name][1:], numbers):
        quoted(value, number)
changing = ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad",
            "grad_cam", "occlusion")
assert max(np.abs(rho[name][1:]).max() for name in changing) < 0.2
assert np.all(rho["guided_backprop"][1:] > rho["guided_grad_cam"][1:])
assert pointing["occlusion"] == pointing["guided_backprop"]
for value, number in zip(ssim["guided_grad_cam"][1:], (0.58, 0.50, 0.32, 0.44)):
    quoted(value, number)

chosen = ("gradient", "guided_backprop", "grad_cam", "guided_grad_cam", "lrp")
first = cascades[0]
subset = dataclasses.replace(
    first, names=chosen, maps={n: first.maps[n] for n in chosen},
    spearman={n: first.spearman[n] for n in chosen},
    spearman_abs={n: first.spearman_abs[n] for n in chosen},
    ssim={n: first.ssim[n] for n in chosen})
fig = plots.family_cascade_figure(subset, test_images[0],
                                  title=f"Cascading randomization, test image 0 "
                                        f"({CLASSES[test_labels[0]]})")
plots.save_lesson_figure(fig, "14_cascade_image0")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained", sharey=True)
ticks = ["trained"] + [s.split(" (")[0] for s in cascade_steps[1:]]
colours = [f"C{i}" for i in range(10)] + ["black"]
for name, colour in zip(attribution.METHODS, colours):
    style = "-" if name in chosen else ":"
    for ax, values in zip(axes, (rho, ssim)):
        ax.plot(ticks, values[name], "o" + style, color=colour, ms=4,
                label=name.replace("_", " "))
axes[0].set(ylabel="median over 8 images", title="signed rank correlation ρ with the "
            "trained map")
axes[1].set(title="SSIM with the trained map")
for ax in axes:
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("weights redrawn from the top down to")
axes[1].legend(fontsize=7.5, ncols=2, loc="upper right")
plots.save_lesson_figure(fig, "14_cascade_summary")

# %% [markdown]
# Guided backprop changes least: ρ = 0.86, 0.77 and 0.72 while the linear layer and the
# top two convolutions are redrawn, 0.22 once the first convolution is too.  The
# gradient, input × gradient, integrated gradients, SmoothGrad, Grad-CAM and occlusion
# lose their trained map as soon as the linear layer is redrawn: |ρ| < 0.2 at every
# step.  So Adebayo et al.'s headline holds here for guided backprop, the gradient and
# Grad-CAM.  Guided Grad-CAM, which they found to barely change, changes more than
# guided backprop here (ρ = 0.31, 0.41, 0.34, 0.08): it is guided backprop times a
# Grad-CAM map, and that factor changes with the weights as Grad-CAM does.  By SSIM it
# keeps more (0.58, 0.50, 0.32 and 0.44).  LRP (ε / z⁺ / flat) keeps ρ = 0.49 with the
# linear layer redrawn and 0.14 once the top convolution is; the deconvnet keeps
# 0.45–0.60 until the first convolution is redrawn (0.14).  These are medians over 8
# images for one random draw.

# %% [markdown]
# What each method can and cannot show
# ------------------------------------
# Every number below was printed above, on the shipped network.
#
# - **The gradient** is exactly ∂z_t/∂x (central differences agree to below 10⁻⁸): how
#   the logit moves if one pixel value moves.  It depends on all the weights (|ρ| < 0.2
#   once the linear layer is redrawn), but it says little about *where* the object is:
#   its maximum lies on the object in 52 % of the images, the centre Gaussian's in 53 %.
# - **Input × gradient** is LRP-0 seeded with z_t (the same map, to rounding) on this
#   network of ReLUs and max-pools.  Its sum is not the logit on a network with biases
#   (0.85 to 1.24 of z_t on 8 images).
# - **Integrated gradients** sums to z_t(x) − z_t(x̄) only as an exact integral.  On a
#   ReLU network the integrand jumps (along image 0's path dz_t/dα changes between 477
#   of 499 pairs of neighbouring points), so a quadrature misses: by up to 0.6 % with
#   50 Gauss–Legendre steps, up to 0.5 % with 200; Captum's trapezoid undershoots by
#   about 1/n (2 % at 50 steps).  For an affine network any rule whose weights sum to 1
#   is exact, to rounding.
# - **SmoothGrad** is an average of gradients; with one sample of zero noise it is the
#   gradient.  It is as sensitive to the weights as the gradient (|ρ| < 0.2).
# - **Grad-CAM** at the last 7 × 7 layer weighs each map by the mean of a row of the
#   linear layer over that map's cells, the same for every image of the class.  It
#   changes with the weights, as a map that explains the network must, but it points
#   at the object no more often than noise (24 %).
# - **Guided backprop** changes least in the cascade (ρ = 0.72 with all but the first
#   convolution redrawn) *and* localises well (67 %, the smallest deletion AUC,
#   0.097).  A localisation score therefore does not certify that a map explains what
#   the network learned: in lesson 9 guided backprop's projections of a unit resembled
#   the image even with every weight of the network random.
# - **LRP** (ε / z⁺ / flat) localises best here (77 %, 43.7 % of its mass) and changes
#   once the top convolution is redrawn (ρ = 0.14).  z⁺ is a transpose with reweighted
#   entries, diag(a) W⁺ᵀ diag(1/z⁺), the same to rounding as the sparse matrix.
# - **The deconvnet** points at the object in 62 % of the images, above the centre
#   baseline's 53 % by less than two standard errors of the difference (7.0 points).
#
# The two tests ask different questions — is the map on the object? does it depend on
# what the network learned? — and they do not order the methods alike: guided
# backprop, the least changed by redrawn weights, and occlusion, whose map is lost as
# soon as the linear layer is redrawn, point at the object equally often (67 %).

# %%
print(f"lesson 14 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **Grad-CAM one block lower.**  Compute Grad-CAM at layer 4 (the ReLU after the
#    second convolution, 32 maps of 14 × 14) by hand from ``net.backward(...,
#    stop=4)`` and compare it with ``attribution.grad_cam(net, x, 4, t)``.  Check
#    ∂z_t/∂A at layer 4 against central differences of z_t, running layers 5–9 by hand
#    from a perturbed A.  Is ∂z_t/∂A still the same for two images of the same class?
# 2. **Captum's trapezoid.**  Show that the weights of ``riemann_trapezoid`` sum to
#    (n − 1)/n, and that rescaling them by n/(n − 1) gives the textbook trapezoid rule
#    on n points (step 1/(n − 1)), which is exact on the affine network.  Where PyTorch
#    and Captum are installed, check ``attribution.integrated_gradients`` against
#    Captum's ``IntegratedGradients`` for both ``gausslegendre`` and
#    ``riemann_trapezoid``.
# 3. **z⁺ through two layers.**  Take a convolution, a ReLU and a second convolution
#    (small random weights, an input ≥ 0) under an identity linear layer.  Write the
#    z⁺ map of each convolution as a matrix with ``conv2d_matrix`` and check that their
#    product is ``attribution.lrp``'s map of the whole stack (z⁺ at both convolutions).
#    Why does the ReLU between them appear in the product only through the activations
#    a that scale the rows of the second matrix?
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/14_the_family.py``.
