# %% [markdown]
# Lesson 4, solutions to the exercises
# ====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: central finite differences, the dot-product test, a brute-force scan of
# input lengths through ``conv2d``, and window counts made with ``numpy.add.at``.  Run
# it as a script; it fails loudly if an answer is wrong.

# %%
import time

import numpy as np

import minideconv as md
from minideconv import shapes

start = time.perf_counter()
rng = np.random.default_rng(404)
conv = dict(stride=2, padding=1)

# %% [markdown]
# Exercise 1: the gradient with respect to the weights
# ----------------------------------------------------
# ⟨conv2d(x, w), r⟩ is linear in w too, so its gradient with respect to w is the
# adjoint of w ↦ conv2d(x, w): ``md.conv2d_weight_grad(x, r, w.shape)``.  Checked on
# the lesson's layer (2 → 3 channels, 3 × 3, stride 2, padding 1, 7 × 8 image) with the
# dot-product test and with central finite differences, one weight at a time.

# %%
x = rng.standard_normal((1, 2, 7, 8))
weight = rng.standard_normal((3, 2, 3, 3))
r = rng.standard_normal(md.conv2d(x, weight, **conv).shape)
grad_w = md.conv2d_weight_grad(x, r, weight.shape, **conv)

adjoint = md.dottest(lambda w: md.conv2d(x, w, **conv),
                     lambda s: md.conv2d_weight_grad(x, s, weight.shape, **conv),
                     weight.shape, r.shape)
h = 1e-3
finite_diff = np.zeros_like(weight)
for i in np.ndindex(weight.shape):
    step = np.zeros_like(weight)
    step[i] = h
    finite_diff[i] = (np.vdot(md.conv2d(x, weight + step, **conv), r)
                      - np.vdot(md.conv2d(x, weight - step, **conv), r)) / (2 * h)
fd_error = np.abs(finite_diff - grad_w).max()
print(f"dot test w ↦ conv2d(x, w) / conv2d_weight_grad: mismatch "
      f"{adjoint.relative_error:.1e}")
print(f"max |conv2d_weight_grad − finite differences| over {weight.size} weights = "
      f"{fd_error:.1e}")
assert adjoint.relative_error < 1e-10
assert fd_error < 1e-8

# %% [markdown]
# Exercise 2: three wrong transposes, and what catches them
# ---------------------------------------------------------
# A hand-written backward pass can go wrong in ways that still return an array of the
# right shape.  On a layer with 2 → 2 channels (so that swapping the two channel axes
# of the weight still fits):
#
# - the kernel rotated by 180° (a convolution where a correlation was meant),
# - the two channel axes of the weight swapped (weight[c, o] instead of weight[o, c]),
# - ``output_size`` forgotten: the transpose returns 7 × 7, not 7 × 8.
#
# The first two pass any shape check and fail the dot-product test (``DotTestError``);
# the third is a shape error, which ``md.dottest`` reports as a ``ValueError``.

# %%
w2 = rng.standard_normal((2, 2, 3, 3))
x2_shape = (1, 2, 7, 8)
y2_shape = md.conv2d(np.zeros(x2_shape), w2, **conv).shape


def forward(z):
    return md.conv2d(z, w2, **conv)


candidates = {
    "right": lambda s: md.conv_transpose2d(s, w2, output_size=(7, 8), **conv),
    "kernel rotated": lambda s: md.conv_transpose2d(
        s, w2[..., ::-1, ::-1].copy(), output_size=(7, 8), **conv),
    "channel axes swapped": lambda s: md.conv_transpose2d(
        s, w2.transpose(1, 0, 2, 3).copy(), output_size=(7, 8), **conv),
    "output_size forgotten": lambda s: md.conv_transpose2d(s, w2, **conv),
}
caught = {}
for name, adjoint_candidate in candidates.items():
    message = ""
    try:
        md.dottest(forward, adjoint_candidate, x2_shape, y2_shape)
        caught[name] = "passes"
    except (md.DotTestError, ValueError) as err:   # DotTestError is an AssertionError
        caught[name] = type(err).__name__
        message = str(err).splitlines()[0]
    print(f"{name:22s}: {caught[name]:12s} {message[:80]}".rstrip())
assert caught["right"] == "passes"
assert caught["kernel rotated"] == caught["channel axes swapped"] == "DotTestError"
assert caught["output_size forgotten"] == "ValueError"

# %% [markdown]
# Exercise 3: sizes through a stride of 3, and a stride without checkerboard
# --------------------------------------------------------------------------
# (a) k = 5, s = 3, p = 1: o = ⌊(i + 2 − 4 − 1) / 3⌋ + 1 = ⌊(i − 3) / 3⌋ + 1, so o = 4
# for **i = 12, 13, 14**, and the way back needs ``output_padding`` 0, 1, 2 to return
# them.  Checked against ``shapes`` and against ``conv2d`` run on every length up to 30.
#
# (b) Wᵀ·1 counts the windows covering each pixel.  Along one axis, stride 2, a pixel
# away from the border is covered by ⌊k/2⌋ or ⌈k/2⌉ windows: 1 or 2 for k = 3 (hence
# 1, 2 and 4 in 2-D, the checkerboard), but always 2 for k = 4 — **a kernel size
# divisible by the stride covers the interior evenly (4 in 2-D)**, Odena et al.'s cure.
# The counts are checked against windows added up with ``numpy.add.at``.

# %%
k, s, p = 5, 3, 1
predicted = [12, 13, 14]
brute = [i for i in range(k - 2 * p, 31)          # every length the padded kernel fits
         if md.conv2d(np.zeros((1, 1, 1, i)), np.zeros((1, 1, 1, k)), stride=(1, s),
                      padding=(0, p)).shape[-1] == 4]
reachable = list(shapes.conv_transpose_reachable_lengths(4, k, s, p))
print(f"k = 5, s = 3, p = 1: lengths mapped to 4 — predicted {predicted}, shapes "
      f"{reachable}, brute force {brute}")
assert predicted == reachable == brute
signal = rng.standard_normal((1, 1, 4, 4))
for i, a in zip(predicted, range(3)):
    assert shapes.output_padding_for_length(i, k, s, p) == a
    back = md.conv_transpose2d(signal, np.ones((1, 1, k, k)), stride=s, padding=p,
                               output_padding=a)
    assert back.shape[-2:] == (i, i)
print("output_padding 0, 1, 2 return 12, 13, 14")


def coverage_by_hand(n, k, s, p):
    """Windows covering each pixel of an n × n image, counted window by window."""
    counts = np.zeros((n + 2 * p, n + 2 * p))
    o = shapes.conv_output_length(n, k, s, p)
    for a in range(o):
        for b in range(o):
            np.add.at(counts, (slice(a * s, a * s + k), slice(b * s, b * s + k)), 1)
    return counts[p:p + n, p:p + n]


for k_size in (3, 4):
    n, p_size = 12, 1
    o = shapes.conv_output_length(n, k_size, 2, p_size)
    a = shapes.output_padding_for_length(n, k_size, 2, p_size)
    coverage = md.conv_transpose2d(np.ones((1, 1, o, o)), np.ones((1, 1, k_size, k_size)),
                                   stride=2, padding=p_size, output_padding=a)[0, 0]
    assert np.array_equal(coverage, coverage_by_hand(n, k_size, 2, p_size))
    interior = np.unique(coverage[2:-2, 2:-2])
    print(f"k = {k_size}, stride 2: windows per interior pixel {interior.tolist()}")
    assert interior.tolist() == ([1.0, 2.0, 4.0] if k_size == 3 else [4.0])

# %%
print(f"solutions of lesson 4 ran in {time.perf_counter() - start:.1f} s")
