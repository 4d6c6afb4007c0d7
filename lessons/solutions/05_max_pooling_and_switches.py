# %% [markdown]
# Lesson 5, solutions to the exercises
# ====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: a prediction written with NumPy alone, ``numpy.bincount`` of the
# switches, the column sums of P(s), and the dot-product test.  Run it as a script; it
# fails loudly if an answer is wrong.

# %%
import time

import numpy as np

import minideconv as md
from minideconv import matrices

start = time.perf_counter()
rng = np.random.default_rng(505)


def pool_at_switches(z, switches):
    """P(s) z: the entries of z at the switches (max-pooling with its switches fixed)."""
    planes = z.reshape(z.shape[:2] + (-1,))
    flat = switches.reshape(switches.shape[:2] + (-1,))
    return np.take_along_axis(planes, flat, axis=2).reshape(switches.shape)


# %% [markdown]
# Exercise 1: unpool, then pool *again*
# -------------------------------------
# With 2 × 2 windows and stride 2, unpooling puts yᵢ at its switch and zeros on the
# other three pixels of window i.  Pooling that image again takes the maximum of yᵢ and
# three zeros: **max_pool2d(max_unpool2d(y)) = max(y, 0)**, not y.  A negative value
# loses to the zeros, so y = (−1, −3, −9, −11) comes back as (0, 0, 0, 0).  Only the
# *linear map with the switches fixed* gives y back: P(s) P(s)ᵀ y = y.

# %%
x = rng.permutation(16).astype(float).reshape(1, 1, 4, 4)
_, switches = md.max_pool2d(x, 2, 2)
for y in (np.array([-1.0, -3.0, -9.0, -11.0]).reshape(1, 1, 2, 2),
          rng.standard_normal((1, 1, 2, 2))):
    unpooled = md.max_unpool2d(y, switches, 2, 2, output_size=(4, 4))
    pooled_again, _ = md.max_pool2d(unpooled, 2, 2)
    fixed = pool_at_switches(unpooled, switches)
    print(f"y = {y.ravel().round(3)} → pool(unpool(y)) = {pooled_again.ravel().round(3)},"
          f"  P(s)P(s)ᵀ y = {fixed.ravel().round(3)}")
    assert np.array_equal(pooled_again, np.maximum(y, 0))
    assert np.array_equal(fixed, y)

# %% [markdown]
# Exercise 2: how many outputs can share one switch?
# --------------------------------------------------
# A pixel lies in as many windows as there are window positions covering it, per axis:
# with 3 × 3 windows and stride 2 at most ⌈3/2⌉ = 2 per axis, so **at most 4** outputs
# share a switch; with stride 1, at most 3 per axis, **9**.  The count of outputs that
# chose pixel j is Σᵢ P(s)ᵢⱼ, the column sum of P(s), and it is P(s)ᵀ·1 =
# ``max_unpool2d(ones)``.  Checked against ``numpy.bincount`` of the switches on random
# input, and on a single bright pixel, which reaches the bound.

# %%
for stride, bound in ((2, 4), (1, 9)):
    noise = rng.standard_normal((1, 1, 33, 33))
    _, s_noise = md.max_pool2d(noise, 3, stride)
    counts = md.max_unpool2d(np.ones(s_noise.shape), s_noise, 3, stride,
                             output_size=(33, 33))
    by_bincount = np.bincount(s_noise.ravel(), minlength=33 * 33).reshape(1, 1, 33, 33)
    column_sums = np.asarray(matrices.max_pool2d_matrix(s_noise[0], (1, 33, 33))
                             .sum(axis=0)).reshape(1, 1, 33, 33)
    assert np.array_equal(counts, by_bincount) and np.array_equal(counts, column_sums)
    assert counts.sum() == s_noise.size

    spike = rng.uniform(0, 1, (1, 1, 9, 9))
    spike[0, 0, 4, 4] = 2.0
    _, s_spike = md.max_pool2d(spike, 3, stride)
    reached = np.bincount(s_spike.ravel()).max()
    print(f"3 × 3 windows, stride {stride}: at most {bound} predicted; random 33 × 33 "
          f"input: at most {int(counts.max())}; one bright pixel wins {reached} windows")
    assert counts.max() <= bound and reached == bound

# %% [markdown]
# Exercise 3: unpooling that overwrites, caught by the dot-product test
# ---------------------------------------------------------------------
# Write PyTorch's ``max_unpool2d`` in NumPy: ``plane[switches] = y``, an assignment, so
# where several outputs share a switch only one of their values is kept.  Against the
# forward map P(s) (pooling with the switches fixed) the dot-product test passes for
# 2 × 2 / 2 windows, where no switch is shared, and fails for 3 × 3 / 2.  The same with
# ``numpy.add.at`` (adding, the transpose) passes both, and equals ``md.max_unpool2d``.

# %%
def unpool_assign(y, switches, input_hw):
    out = np.zeros(y.shape[:2] + (input_hw[0] * input_hw[1],))
    for n, c in np.ndindex(y.shape[:2]):
        out[n, c, switches[n, c].ravel()] = y[n, c].ravel()     # one value per switch
    return out.reshape(y.shape[:2] + tuple(input_hw))


def unpool_add(y, switches, input_hw):
    out = np.zeros(y.shape[:2] + (input_hw[0] * input_hw[1],))
    for n, c in np.ndindex(y.shape[:2]):
        np.add.at(out[n, c], switches[n, c].ravel(), y[n, c].ravel())
    return out.reshape(y.shape[:2] + tuple(input_hw))


z = rng.standard_normal((2, 3, 11, 11))
results = {}
for k, s in ((2, 2), (3, 2)):
    pooled, sw = md.max_pool2d(z, k, s)
    repeats = sw.size - sum(len(np.unique(sw[n, c])) for n, c in np.ndindex(sw.shape[:2]))
    for name, unpool in (("assign", unpool_assign), ("add", unpool_add)):
        test = md.dottest(lambda v, sw=sw: pool_at_switches(v, sw),
                          lambda r, sw=sw, unpool=unpool: unpool(r, sw, (11, 11)),
                          z.shape, pooled.shape, raise_error=False)
        results[k, name] = test.relative_error
        print(f"{k} × {k} / {s} ({repeats:2d} repeated switches), unpool by {name:6s}: "
              f"dot-test mismatch {test.relative_error:.1e}")
    r = rng.standard_normal(pooled.shape)
    assert np.array_equal(unpool_add(r, sw, (11, 11)),
                          md.max_unpool2d(r, sw, k, s, output_size=(11, 11)))
assert results[2, "assign"] < 1e-10 and results[2, "add"] < 1e-10
assert results[3, "assign"] > 1e-3 and results[3, "add"] < 1e-10

# %%
print(f"solutions of lesson 5 ran in {time.perf_counter() - start:.1f} s")
