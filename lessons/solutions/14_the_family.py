# %% [markdown]
# Lesson 14, solutions to the exercises
# =====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: central differences through layers run by hand, quadrature weights
# written out, Captum's ``IntegratedGradients`` (where PyTorch and Captum are
# installed) and the sparse matrices of ``minideconv.matrices``.  Run it as a script;
# it fails loudly if an answer is wrong.

# %%
import importlib.util
import time

import numpy as np

from minideconv import attribution, nn
from minideconv.attribution.integrated_gradients import path_points
from minideconv.attribution.lrp import Composite
from minideconv.data import load_dataset, load_model
from minideconv.matrices import conv2d_matrix

start = time.perf_counter()
net = load_model().astype(np.float64)
images, labels = load_dataset("test", n=40)
x, t = images.astype(np.float64), labels
LOGITS = net.output_layer()


def relative(a, b):
    """max |a − b| / max |b|."""
    return float(np.abs(a - b).max() / np.abs(b).max())


# %% [markdown]
# Exercise 1: Grad-CAM one block lower
# ------------------------------------
# Stopping the pass at layer 4 gives ∂z_t/∂A (N, 32, 14, 14); α_c is its mean over each
# map and Grad-CAM is relu(Σ_c α_c A_c).  Independently, z_t as a function of A is
# layers 5–9 applied to A; central differences of that function give ∂z_t/∂A.  Above
# layer 4 sit a max-pool and a ReLU, whose switches and masks depend on the image, so
# ∂z_t/∂A is no longer the same for two images of one class (at layer 7 it was the
# linear layer's row).

# %%
LAYER = 4
trace = net.trace(x, upto=LOGITS)
seed = np.zeros_like(trace.outputs[LOGITS])
seed[np.arange(len(t)), t] = 1
dA = net.backward(seed, trace, start=LOGITS, stop=LAYER)
A = trace.outputs[LAYER]
cam = np.maximum(np.einsum("nc,nchw->nhw", dA.mean(axis=(2, 3)), A), 0)
assert np.array_equal(cam, attribution.grad_cam(net, x, LAYER, t))
print(f"Grad-CAM at layer {LAYER} by hand = attribution.grad_cam: maps of {cam.shape[1:]}")


def top(a, target):
    """z_target from the output A of layer 4: layers 5–9 run by hand."""
    for layer in net.layers[LAYER + 1:LOGITS + 1]:
        a = layer.forward(a)[0]
    return a[:, target]


h = 1e-6
# only where A > 0: a max-pool window of zeros is a tie, where z_t has no derivative
# (+h makes that entry the maximum, −h does not)
picked = np.random.default_rng(14).choice(np.flatnonzero(A[0] > 0), 200, replace=False)
steps = h * np.eye(A[0].size)[picked].reshape((len(picked),) + A[0].shape)
numeric = (top(A[0] + steps, t[0]) - top(A[0] - steps, t[0])) / (2 * h)
error = relative(dA[0].ravel()[picked], numeric)
print(f"∂z_t/∂A at layer {LAYER} (image 0, 200 entries > 0) vs central differences through "
      f"layers 5–9: relative error {error:.1e}")
assert error < 1e-7

same_class = np.flatnonzero(t == t[0])[:2]
gap = relative(dA[same_class[1]], dA[same_class[0]])
print(f"images {same_class[0]} and {same_class[1]} (the same class): ∂z_t/∂A at layer "
      f"{LAYER} differs by {gap:.2f} of its largest value (at layer 7: 0)")
assert gap > 0.1
dA7 = net.backward(seed, trace, start=LOGITS, stop=7)
assert np.array_equal(dA7[same_class[0]], dA7[same_class[1]])

# %% [markdown]
# Exercise 2: Captum's trapezoid
# ------------------------------
# Captum's weights are 1/2n at the two ends and 1/n at the n − 2 points between, so they
# sum to 2/2n + (n − 2)/n = (n − 1)/n.  Times n/(n − 1) they become 1/(2(n − 1)) at the
# ends and 1/(n − 1) between: the textbook trapezoid rule with step 1/(n − 1) on the
# same points α_k = k/(n − 1), whose weights sum to 1 — exact on an affine network,
# whose gradient is the same along the path.

# %%
for n in (2, 5, 50, 200):
    alphas, weights = path_points(n, "riemann_trapezoid")
    textbook = np.full(n, 1 / (n - 1))
    textbook[[0, -1]] = 1 / (2 * (n - 1))
    assert abs(weights.sum() - (n - 1) / n) < 1e-14
    assert np.allclose(weights * n / (n - 1), textbook, rtol=1e-14, atol=0)
    assert np.allclose(alphas, np.arange(n) / (n - 1), rtol=0, atol=1e-15)
print("riemann_trapezoid: the weights sum to (n − 1)/n, and × n/(n − 1) they are the "
      "textbook trapezoid's, for n = 2, 5, 50, 200")


# an affine network of its own: a convolution, an average pool, a convolution and a
# linear layer, random weights and biases, no rectifier
r = np.random.default_rng(2)
flat_net = nn.Sequential(
    nn.Conv2d(r.standard_normal((6, 3, 5, 5)) / 5, r.standard_normal(6)),
    nn.AvgPool2d(2), nn.Conv2d(r.standard_normal((4, 6, 3, 3)) / 4, r.standard_normal(4)),
    nn.Flatten(),
    nn.Linear(r.standard_normal((10, 4 * 12 * 12)) / 24, r.standard_normal(10)),
    input_shape=(3, 32, 32))

few, few_t = x[:4], t[:4]
rows = np.arange(len(few_t))
out = flat_net.output_layer()
change = (flat_net.forward_outputs(few, [out])[out] -
          flat_net.forward_outputs(np.zeros_like(few), [out])[out])[rows, few_t]
for n in (5, 50):
    total = attribution.integrated_gradients(flat_net, few, few_t, steps=n,
                                             method="riemann_trapezoid").sum(axis=(1, 2, 3))
    error = np.abs(total * n / (n - 1) - change).max() / np.abs(change).max()
    print(f"affine network, {n} steps: the rescaled trapezoid sums to Δz, relative error "
          f"{error:.1e}")
    assert error < 1e-12

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("captum") is None:
    print("PyTorch or Captum is not installed: skipping the comparison with Captum's "
          "IntegratedGradients")
else:
    import torch
    from captum.attr import IntegratedGradients

    from minideconv.interop.torch import to_torch

    model = to_torch(net).double().eval()
    inputs = torch.from_numpy(few)
    for method in ("gausslegendre", "riemann_trapezoid"):
        theirs = IntegratedGradients(model).attribute(
            inputs, baselines=torch.zeros_like(inputs), target=torch.from_numpy(few_t),
            n_steps=50, method=method).detach().numpy()
        ours = attribution.integrated_gradients(net, few, few_t, steps=50, method=method)
        # Captum rounds its quadrature weights to float32 (torch.tensor(step_sizes)
        # .float()): the same sum with the weights so rounded is Captum's to rounding
        alphas, weights = path_points(50, method)
        grads = np.stack([attribution.gradient(net, a * few, few_t) for a in alphas])
        rounded = few * np.tensordot(weights.astype(np.float32).astype(np.float64), grads,
                                     axes=1)
        print(f"Captum {method}, 50 steps: relative difference "
              f"{relative(ours, theirs):.1e}; with the weights rounded to float32 "
              f"{relative(rounded, theirs):.1e}")
        assert relative(ours, theirs) < 1e-6 and relative(rounded, theirs) < 1e-13

# %% [markdown]
# Exercise 3: z⁺ through two layers
# ---------------------------------
# With u = W₁x + b₁, a = relu(u) and y = W₂a + b₂, z⁺ at the second convolution maps R
# at y to R_a = diag(a) W₂⁺ᵀ diag(1/stab(W₂⁺a + b₂⁺)) R =: M₂ R.  The ReLU passes
# relevance unchanged (R_u = R_a), and z⁺ at the first convolution maps it on with
# M₁ = diag(x) W₁⁺ᵀ diag(1/stab(W₁⁺x + b₁⁺)).  So the map of the stack is M₁ M₂: the
# ReLU's only trace in it is a, the forward activations that scale M₂'s rows (a unit
# the ReLU turned off has a = 0 and passes nothing down).  Both inputs x and a are ≥ 0,
# which is where this form of z⁺ (without the x⁻ terms) is the whole rule.

# %%
rng = np.random.default_rng(1414)
w1, b1 = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
w2, b2 = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5)
x_small = rng.uniform(0, 1, (3, 8, 8))                       # → (4, 6, 6) → (5, 4, 4)
outputs = 5 * 4 * 4
stack = nn.Sequential(nn.Conv2d(w1, b1), nn.ReLU(), nn.Conv2d(w2, b2), nn.Flatten(),
                      nn.Linear(np.eye(outputs), np.zeros(outputs)),
                      input_shape=x_small.shape)


def zplus_matrix(weight, bias, a):
    """diag(a) W⁺ᵀ diag(1/stab(W⁺a + b⁺)) for the convolution on the input a ≥ 0."""
    W_plus = conv2d_matrix(np.maximum(weight, 0), a.shape)
    positions = W_plus.shape[0] // len(bias)
    z = W_plus @ a.ravel() + np.repeat(np.maximum(bias, 0), positions)
    return a.ravel()[:, None] * (W_plus.T.toarray() / (z + 1e-6)[None, :])


u = conv2d_matrix(w1, x_small.shape) @ x_small.ravel() + np.repeat(b1, 36)
a = np.maximum(u, 0).reshape(4, 6, 6)
product = zplus_matrix(w1, b1, x_small) @ zplus_matrix(w2, b2, a)       # 192 × 80
columns = attribution.lrp(stack, np.repeat(x_small[None], outputs, axis=0),
                          np.arange(outputs),
                          composite=Composite("zplus", "zplus", "epsilon", epsilon=1e-100))
error = relative(columns.reshape(outputs, -1).T, product)
print(f"z⁺ through conv → ReLU → conv: M₁ M₂ ({product.shape[0]} × {product.shape[1]}, "
      f"{int((a == 0).sum())} of {a.size} ReLU units off) vs attribution.lrp: relative "
      f"difference {error:.1e}")
assert error < 1e-12
assert (a == 0).any()                       # the ReLU did turn units off

print(f"solutions to lesson 14 ran in {time.perf_counter() - start:.1f} s")
