# %% [markdown]
# Lesson 10, solutions to the exercises
# =====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: a walk down the layers by hand and the explicit matrix W₀, a loop over
# the units, and the maps of two classes.  Run it as a script; it fails loudly if an
# answer is wrong.

# %%
import time

import numpy as np

from minideconv import matrices
from minideconv import visualize as vis
from minideconv.visualize import sanity
from minideconv.data import load_dataset, load_model

start = time.perf_counter()
LAYER = 7
net = load_model()
images, _ = load_dataset("test", n=16)

# %% [markdown]
# Exercise 1: pasted filters by hand
# ----------------------------------
# Seed image 0's strongest unit of layer 7 with its value and pass it down through
# layers 7 … 1 with the deconvnet's rule: what arrives is r₀, the signal at the output
# of layer 0.  It is ``sanity.pasted_filters``'s ``signal``; the explicit matrix W₀
# (``matrices.conv2d_matrix``) turns it into the projection, W₀ᵀ r₀; and a loop over
# the units gives the share of |r₀| that lands on units that were on (z > 0), the
# deconvnet's r₀ being ≥ 0.

# %%
image = images[0]
trace = net.trace(image[None], upto=LAYER)
top = trace.outputs[LAYER][0]
c, h, w = (int(v) for v in np.unravel_index(top.argmax(), top.shape))
signal = np.zeros_like(trace.outputs[LAYER])
signal[0, c, h, w] = top[c, h, w]
for i in range(LAYER, 0, -1):
    signal = net.layers[i].backward(signal, trace.records[i], rule="deconvnet")
r0 = signal[0].astype(np.float64)
found = sanity.pasted_filters(net, image, LAYER, c, "deconvnet", (h, w))
W0 = matrices.conv2d_matrix(net.layers[0].weight.astype(np.float64), image.shape)
projection = (W0.T @ r0.ravel()).reshape(image.shape)
expected = vis.project(net, image, LAYER, c, (h, w), "deconvnet")
z = trace.outputs[0][0]
on_weight = total = 0.0
for u in np.ndindex(r0.shape):
    total += abs(r0[u])
    if r0[u] > 0 and z[u] > 0:
        on_weight += abs(r0[u])
print(f"unit ({c}, {h}, {w}): r₀ by hand = pasted_filters' signal: "
      f"{np.allclose(r0, found.signal)}; max |W₀ᵀ r₀ − projection| = "
      f"{np.abs(projection - expected).max():.1e}; share of |r₀| on units that were on: "
      f"{on_weight / total:.3f} (pasted_filters: {found.agreement:.3f})")
assert np.allclose(r0, found.signal) and np.all(r0 >= 0)
assert np.allclose(projection, expected, atol=1e-5 * np.abs(expected).max())
assert abs(on_weight / total - found.agreement) < 1e-9

# %% [markdown]
# Exercise 2: how many random filters make WᵀW ≈ cI?
# --------------------------------------------------
# Averaged over Gaussian draws, WᵀW is diagonal (two different pixels are never
# multiplied by the same weight in one row), and its diagonal counts, at each pixel, the
# window positions that cover it: 25 in the interior, fewer near the border.  One draw
# fluctuates around that average, less the more filters there are, so the cosine
# between WᵀW x₀ and x₀ grows with the number of filters (five draws each) — up to the
# cosine of the average itself, below 1 because of the border; 256 filters reach it.

# %%
x = images.reshape(len(images), -1).astype(np.float64).T
coverage = np.zeros(images.shape[2:])
for i, j in np.ndindex(28, 28):                        # every 5 × 5 window position
    coverage[i:i + 5, j:j + 5] += 1
average = np.broadcast_to(coverage, images.shape[1:]).ravel()[:, None] * x


def median_cosine(back):
    return float(np.median(np.sum(back * x, axis=0) / (np.linalg.norm(back, axis=0)
                                                       * np.linalg.norm(x, axis=0))))


limit = median_cosine(average)
by_count = {}
for n_filters in (4, 16, 64, 256):
    draws = []
    for seed in range(5):
        weight = np.random.default_rng((n_filters, seed)).standard_normal((n_filters, 3, 5, 5))
        W = matrices.conv2d_matrix(weight, images.shape[1:])
        draws.append(median_cosine(W.T @ (W @ x)))
    by_count[n_filters] = float(np.median(draws))
    print(f"{n_filters:3d} random filters, median over 5 draws of the median cos(WᵀW x₀, "
          f"x₀): {by_count[n_filters]:.3f}")
print(f"the average of WᵀW (each pixel's window count): median cosine {limit:.3f}")
counts = list(by_count)
assert all(by_count[a] < by_count[b] for a, b in zip(counts, counts[1:]))
assert limit - by_count[256] < 0.01 and limit < 0.95

# %% [markdown]
# Exercise 3: the least likely class
# ----------------------------------
# Guided backprop's map of the least likely class is further from the top class's than
# the runner-up's was (the lesson measured 0.92), but still alike (about 0.7); the
# gradient's two maps are anti-correlated: what raises one logit lowers the other.

# %%
logits = net.trace(images).outputs[-1]
last = len(net.layers) - 1
correlations = {rule: [] for rule in ("guided", "backprop")}
for i in range(len(images)):
    order = np.argsort(-logits[i])
    for rule in correlations:
        a, b = (vis.project(net, images[i], last, int(k), rule=rule, seed_value="one")
                for k in (order[0], order[-1]))
        correlations[rule].append(np.corrcoef(a.ravel(), b.ravel())[0, 1])
medians = {rule: float(np.median(v)) for rule, v in correlations.items()}
print("top class vs least likely, median correlation: "
      + ", ".join(f"{rule} {v:.2f}" for rule, v in medians.items()))
RUNNER_UP = 0.92                                  # lesson 10, guided, top two classes
assert RUNNER_UP > medians["guided"] > 0.5 > 0 > medians["backprop"]

# %%
print(f"solutions of lesson 10 ran in {time.perf_counter() - start:.1f} s")
