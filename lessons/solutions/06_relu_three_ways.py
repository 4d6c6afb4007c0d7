# %% [markdown]
# Lesson 6, solutions to the exercises
# ====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: the rules written out in NumPy, and the Jacobian of a small network
# measured by central finite differences of its forward pass.  Run it as a script; it
# fails loudly if an answer is wrong.

# %%
import time

import numpy as np

import minideconv as md
from minideconv import matrices

start = time.perf_counter()
rng = np.random.default_rng(606)
rules = md.rules.NAMES

# %% [markdown]
# Exercise 1: which rules are linear in the signal?
# -------------------------------------------------
# Predictions, for one ReLU with forward input x and signals r₁, r₂:
#
# - backprop, D(x > 0) r, is linear: additive, and B(c r) = c B(r) for every c;
# - the deconvnet, max(r, 0), and guided, max(r, 0)·[x > 0], are *positively*
#   homogeneous (c > 0) but neither additive nor odd: max(−r, 0) ≠ −max(r, 0).
#
# So only backprop is a matrix independent of r; the other two are matrices chosen by
# the sign of r.

# %%
x = rng.standard_normal(1000)
r1, r2 = rng.standard_normal((2, 1000))
for rule in rules:
    def back(r, rule=rule):
        return md.relu_backward(r, x, rule=rule)

    additive = np.abs(back(r1 + r2) - back(r1) - back(r2)).max()
    positive = np.abs(back(2.5 * r1) - 2.5 * back(r1)).max()
    odd = np.abs(back(-r1) + back(r1)).max()
    print(f"{rule:9s}: max |B(r₁+r₂) − B(r₁) − B(r₂)| = {additive:.2f}, "
          f"|B(2.5 r) − 2.5 B(r)| = {positive:.1e}, |B(−r) + B(r)| = {odd:.2f}")
    assert positive < 1e-12
    if rule == "backprop":
        assert additive < 1e-12 and odd < 1e-12
    else:
        assert additive > 0.1 and odd > 0.1

# %% [markdown]
# Exercise 2: guided backprop is the other two, one after the other
# -----------------------------------------------------------------
# D(x > 0) D(r > 0) r: apply the deconvnet rule, then the backprop rule, or the other
# way round — at one ReLU the two diagonal matrices commute, and the sign of r is not
# changed by the mask.  Checked with the operators, and with the matrices of
# ``matrices.relu_matrix``.

# %%
guided = md.relu_backward(r1, x, "guided")
deconv_then_backprop = md.relu_backward(md.relu_backward(r1, x, "deconvnet"), x, "backprop")
backprop_then_deconv = md.relu_backward(md.relu_backward(r1, x, "backprop"), x, "deconvnet")
D_x, D_r = matrices.relu_matrix(x), matrices.relu_matrix(r1)
print(f"guided = deconvnet then backprop: {np.array_equal(guided, deconv_then_backprop)}; "
      f"= backprop then deconvnet: {np.array_equal(guided, backprop_then_deconv)}; "
      f"D(x>0) D(r>0) = D(r>0) D(x>0): {(D_x @ D_r != D_r @ D_x).nnz == 0}")
assert np.array_equal(guided, deconv_then_backprop)
assert np.array_equal(guided, backprop_then_deconv)
assert np.array_equal(guided, np.maximum(r1, 0) * (x > 0))
assert (D_x @ D_r != D_r @ D_x).nnz == 0

# %% [markdown]
# Exercise 3: the backprop projection is the gradient, the deconvnet's is not
# ---------------------------------------------------------------------------
# The lesson's network (conv 3 × 3 → ReLU → max-pool 2 × 2 → conv 3 × 3 → ReLU, on 8 × 8)
# is piecewise linear, so near a given image it *is* the matrix F, and F's entries are
# the derivatives of the outputs.  Central finite differences of the forward pass, one
# pixel at a time, measure this Jacobian J without any backward code.  Prediction: the
# backprop projection of the top signal t equals Jᵀ t (it is Fᵀ t), the deconvnet's and
# guided backprop's do not.

# %%
image = rng.standard_normal((1, 1, 8, 8))
w1 = rng.standard_normal((2, 1, 3, 3))
w2 = rng.standard_normal((2, 2, 3, 3))


def network(z):
    a1 = md.conv2d(z, w1, padding=1)
    p1, s1 = md.max_pool2d(md.relu(a1), 2)
    a2 = md.conv2d(p1, w2, padding=1)
    return md.relu(a2), (a1, s1, a2)


h2, (a1, s1, a2) = network(image)
step = 1e-6
jacobian = np.zeros((h2.size, image.size))
for j in range(image.size):
    e = np.zeros(image.size)
    e[j] = step
    e = e.reshape(image.shape)
    jacobian[:, j] = (network(image + e)[0] - network(image - e)[0]).ravel() / (2 * step)

top = np.zeros_like(h2)
unit = np.unravel_index(np.argmax(h2[0, 0]), h2.shape[2:])
top[(0, 0) + unit] = h2[(0, 0) + unit]
gradient = jacobian.T @ top.ravel()
errors = {}
for rule in rules:
    g = md.relu_backward(top, a2, rule)
    g = md.conv_transpose2d(g, w2, padding=1)
    g = md.max_unpool2d(g, s1, 2, output_size=(8, 8))
    g = md.relu_backward(g, a1, rule)
    g = md.conv_transpose2d(g, w1, padding=1)
    errors[rule] = np.abs(g.ravel() - gradient).max() / np.abs(gradient).max()
    print(f"{rule:9s}: max |projection − Jᵀ t| / max |Jᵀ t| = {errors[rule]:.1e}  "
          f"(J by finite differences)")
assert errors["backprop"] < 1e-7
assert errors["deconvnet"] > 1e-2 and errors["guided"] > 1e-2

# %%
print(f"solutions of lesson 6 ran in {time.perf_counter() - start:.1f} s")
