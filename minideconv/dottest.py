"""The dot test: is ``adjoint`` the transpose of ``forward``?

For a linear map A and its claimed transpose B, the adjoint identity

    ⟨A x, y⟩ = ⟨x, B y⟩   for all x, y

holds exactly when B = Aᵀ.  Testing it on random x and y is the standard check of a
hand-written transpose (Claerbout's "dot-product test"; PyLops' ``dottest``): a wrong
transpose almost surely breaks it, up to rounding.  It is the project's central check:
conv2d and conv_transpose2d, max-pooling and unpooling, every layer's forward and
backward pass, the sparse matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import checks


class DotTestError(AssertionError):
    """⟨A x, y⟩ and ⟨x, Aᵀ y⟩ differ by more than the tolerance: the adjoint is wrong."""


@dataclass(frozen=True)
class DotTest:
    """The two sides of the adjoint identity and their relative difference,
    |⟨A x, y⟩ − ⟨x, Aᵀ y⟩| / max(|⟨A x, y⟩|, |⟨x, Aᵀ y⟩|)."""

    forward_side: float   # ⟨A x, y⟩
    adjoint_side: float   # ⟨x, Aᵀ y⟩
    relative_error: float


def dottest(forward, adjoint, x_shape, y_shape, dtype=np.float64, rtol=None, seed=0,
            raise_error=True) -> DotTest:
    """Check ⟨forward(x), y⟩ = ⟨x, adjoint(y)⟩ on a random x of ``x_shape`` and y of
    ``y_shape`` (standard normal, from ``seed``).

    Parameters
    ----------
    forward, adjoint : callables taking one array and returning one array; ``forward``
        maps arrays of ``x_shape`` to ``y_shape``, ``adjoint`` the other way.
    dtype : float32 or float64
    rtol : the relative tolerance; by default 1e-10 for float64 and 1e-4 for float32.
    raise_error : raise ``DotTestError`` when the identity fails (else just return).

    Returns a ``DotTest`` with both sides and their relative difference.  Shapes that do
    not match (``forward(x)`` not of ``y_shape``, ``adjoint(y)`` not of ``x_shape``) are a
    ValueError.
    """
    dtype = np.dtype(dtype)
    if dtype not in checks.FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    if rtol is None:
        rtol = 1e-10 if dtype == np.float64 else 1e-4
    x_shape, y_shape = _shape(x_shape, "x_shape"), _shape(y_shape, "y_shape")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    y = rng.standard_normal(y_shape).astype(dtype)
    ax, aty = forward(x), adjoint(y)
    if tuple(np.shape(ax)) != y_shape:
        raise ValueError(f"forward(x) has shape {tuple(np.shape(ax))}, expected y_shape "
                         f"{y_shape}")
    if tuple(np.shape(aty)) != x_shape:
        raise ValueError(f"adjoint(y) has shape {tuple(np.shape(aty))}, expected x_shape "
                         f"{x_shape}")
    # the inner products in float64, so the test measures the maps, not the summation
    forward_side = float(np.vdot(np.asarray(ax, np.float64), np.asarray(y, np.float64)))
    adjoint_side = float(np.vdot(np.asarray(x, np.float64), np.asarray(aty, np.float64)))
    scale = max(abs(forward_side), abs(adjoint_side))
    error = abs(forward_side - adjoint_side) / scale if scale > 0 else 0.0
    result = DotTest(forward_side, adjoint_side, error)
    if raise_error and not error <= rtol:
        raise DotTestError(f"dot test failed: <A x, y> = {forward_side!r} but "
                           f"<x, A^T y> = {adjoint_side!r} (relative error {error:.3g} > "
                           f"rtol {rtol:g})")
    return result


def _shape(shape, name):
    if checks.is_int(shape):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(checks.is_int(v) and v >= 0
                                                       for v in shape):
        raise TypeError(f"{name} must be a tuple of non-negative ints, got {shape!r}")
    return tuple(int(v) for v in shape)
