"""The adjoint checks that the operator tests share: the dot test at the inner
product's rounding scale, and P(s)ᵀ (the unpooling) by brute force."""

from __future__ import annotations

import numpy as np

import minideconv as md

from .strategies import RTOL


def dottest_at_rounding_scale(forward, adjoint, x_shape, y_shape, dtype, rounding_scale,
                              seed=0):
    """``md.dottest`` with its tolerance at the rounding scale of the inner product:

        |<A x, y> − <x, Aᵀ y>| <= RTOL[dtype] · rounding_scale(x, y)

    for dottest's random x and y.  dottest itself measures the difference against the
    larger side, max |<A x, y>|, |<x, Aᵀ y>|, which cancellation makes small now and then
    (for float32 a true adjoint then misses 1e-5 in about one case in 500);
    ``rounding_scale`` (<|A| |x|, |y|>) cannot cancel.  A first dottest, not raising,
    records the x and y it draws; the second, with the same seed and so the same x and y,
    is the check: it raises DotTestError when the adjoint is wrong.
    """
    drawn = {}

    def forward_recording(x):
        drawn["x"] = x
        return forward(x)

    def adjoint_recording(y):
        drawn["y"] = y
        return adjoint(y)

    probe = md.dottest(forward_recording, adjoint_recording, x_shape, y_shape, dtype=dtype,
                       seed=seed, raise_error=False)
    larger_side = max(abs(probe.forward_side), abs(probe.adjoint_side))
    tolerance = RTOL[np.dtype(dtype)] * max(rounding_scale(drawn["x"], drawn["y"]), 1e-300)
    rtol = tolerance / larger_side if larger_side > 0 else RTOL[np.dtype(dtype)]
    return md.dottest(forward, adjoint, x_shape, y_shape, dtype=dtype, seed=seed, rtol=rtol)


def brute_unpool(g, switches, hw):
    """P(s)ᵀ g by np.add.at (accumulates duplicate indices)."""
    N, C = g.shape[:2]
    out = np.zeros((N, C, hw[0] * hw[1]), g.dtype)
    for n in range(N):
        for c in range(C):
            np.add.at(out[n, c], switches[n, c].ravel(), g[n, c].ravel())
    return out.reshape(N, C, hw[0], hw[1])
