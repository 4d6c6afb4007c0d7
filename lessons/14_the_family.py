# %% [markdown]
"""
Lesson 14: The family
=====================

The deconvnet was the first of many maps that explain a network's decision in pixels:
the gradient (saliency), input × gradient, integrated gradients, SmoothGrad, Grad-CAM,
guided Grad-CAM, layer-wise relevance propagation.  Each is usually presented as its own
idea.  This lesson writes each one as a *seed and a rule on the same chain of
transposes* that lessons 4–7 built — ``Network.backward`` from the seed e_t at a logit,
with the gradient's rule, the deconvnet's, guided backprop's or a reweighted one —
and checks every identity against ``minideconv.attribution``, on the shipped network.
"""

# %%
import time

import numpy as np

from minideconv import attribution, nn, ops, plots
from minideconv.data import CLASSES, load_dataset, load_model

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
print(f"guided Grad-CAM = guided backprop ⊙ up(Grad-CAM): the same array as "
      f"attribution.guided_grad_cam")

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
print(f"IG by hand vs attribution.integrated_gradients (50 Gauss–Legendre steps): "
      f"relative difference {relative(ig, attribution.integrated_gradients(net, x, t)):.1e}")
assert relative(ig, attribution.integrated_gradients(net, x, t)) < 1e-13

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
        print(f"{method:17s} {n:3d} steps: |Σ IG − Δz| / |Δz| median {np.median(error):.1e}, "
              f"max {error.max():.1e}; Σ IG / Δz from {ratio.min():.4f} to "
              f"{ratio.max():.4f} ((n − 1)/n = {(n - 1) / n:.4f})")
assert np.median(errors["gausslegendre", 200]) < np.median(errors["gausslegendre", 50]) < 0.01
quoted(100 * errors["gausslegendre", 50].max(), 0.6, 0.05)
quoted(100 * errors["gausslegendre", 200].max(), 0.5, 0.05)
quoted(100 * np.median(errors["gausslegendre", 200]), 0.06, 0.005)
for n in (50, 200):                    # Captum's trapezoid: close to the (n − 1)/n undershoot
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


flat_net = nn.Sequential(*[affine(layer) for layer in net.layers], input_shape=net.input_shape)
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
print(f"image 0 on the path: dz_t/dα changes between {jumps} of the {len(fine) - 1} pairs of "
      f"neighbouring points; z_t rises from {along[0]:.2f} to {along[-1]:.2f}")
assert jumps > 20

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
axes[1].set(xlabel="α", ylabel="⟨∂z_t/∂x(α x), x⟩", title="its derivative: piecewise constant")
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
assert np.array_equal(attribution.smoothgrad(net, x, t, noise=np.zeros((1,) + x.shape)), grad)
print("SmoothGrad with one sample of zero noise: the same array as the gradient")

# %% [markdown]
# The family on three images
# --------------------------
# ``attribution.METHODS`` holds every map under one signature, each with the settings
# this package's tables use (IG from the black image with 50 Gauss–Legendre steps,
# SmoothGrad with 50 samples of σ = 0.15 of the image's range, Grad-CAM at layer 7,
# occlusion with Zeiler & Fergus's grey square).  Each map is summed over the colour
# channels and drawn on its own symmetric scale (Grad-CAM's 7 × 7 map is ≥ 0).

# %%
FAMILY = [name for name in attribution.METHODS if not name.startswith("lrp")]
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
plots.save_lesson_figure(fig, "14_family", thumbnail="14", thumbnail_axes=axes[0, :6])

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
# the layer's own transpose Wᵀ between two divisions by the forward pass.  A ReLU
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
# The biases take nothing here, so Σ R at the pixels is not z_t (next cell).

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
from minideconv.matrices import conv2d_matrix  # noqa: E402  (used from here on)

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
      f"{np.count_nonzero(M)} non-zero entries (W⁺: {np.count_nonzero(W_plus.data)}); column sums from "
      f"{column_sums.min():.3f} to {column_sums.max():.3f}")
