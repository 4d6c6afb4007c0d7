"""Integrated gradients (Sundararajan et al. 2017): the gradient averaged along the
straight path from a baseline x̄ to the image x, times the step x − x̄,

    IG(x) = (x − x̄) ⊙ ∫₀¹ ∂z_t/∂x (x̄ + α (x − x̄)) dα
          ≈ (x − x̄) ⊙ Σ_k w_k ∂z_t/∂x (x̄ + α_k (x − x̄)).

Why its sum is the change of the logit (*completeness*): along the path γ(α) = x̄ + α(x −
x̄), dz_t(γ(α))/dα = ⟨∂z_t/∂x(γ(α)), x − x̄⟩, so the exact integral sums to
Σ IG = z_t(x) − z_t(x̄) — the fundamental theorem of calculus.  A quadrature leaves an
error that shrinks with the number of steps; for an affine network the gradient is
constant along the path and any rule whose weights sum to 1 is exact.

The quadratures, Captum's (``IntegratedGradients.attribute(n_steps=steps, method=…)``):

* ``"gausslegendre"`` (the default): Gauss–Legendre nodes on [0, 1], α_k = (1 + u_k)/2
  and w_k = v_k / 2 for the nodes u_k and weights v_k on [−1, 1]; exact for an integrand
  polynomial of degree < 2·steps, and the weights sum to 1.
* ``"riemann_trapezoid"``: α_k = k/(n − 1), k = 0 … n − 1, with Captum's weights
  [1/2n, 1/n, …, 1/n, 1/2n].  These sum to (n − 1)/n, not 1 (the textbook trapezoid's
  weights are 1/(n − 1) with halves at the ends): Captum's sum undershoots the change of
  the logit by a factor (n − 1)/n even for an affine network.  Kept as Captum has it, so
  that the two can be compared.
* ``"riemann_left"``, ``"riemann_right"``, ``"riemann_middle"``: α_k = k/n, (k + 1)/n,
  (k + ½)/n, weights 1/n.

Every point of the path is one image of a batch: the ``steps`` × N gradients are taken in
passes of at most ``batch_size`` images (default: all at once), and summed where the chain
stops depending on the point (``path_gradients``: the affine layers before the first
rectifier are passed twice up, at x̄ and x, and once down).
"""

from __future__ import annotations

import numpy as np

from .. import checks
from .path_gradients import split_affine_prefix, weighted_gradient_sum
from .targets import as_batch, targets_for

METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right",
           "riemann_middle")

__all__ = ["METHODS", "path_points", "integrated_gradients"]


def path_points(steps: int, method: str = "gausslegendre"):
    """(α, w): the ``steps`` points on [0, 1] and their quadrature weights."""
    steps = checks.check_int(steps, "steps", minimum=1)
    method = checks.check_choice(method, "method", METHODS)
    n = steps
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return (nodes + 1) / 2, weights / 2
    if method == "riemann_trapezoid":
        if n < 2:
            raise ValueError("steps must be ≥ 2 for method='riemann_trapezoid' (its two "
                             "ends), got 1")
        weights = np.full(n, 1.0 / n)
        weights[[0, -1]] = 1.0 / (2 * n)
        return np.linspace(0.0, 1.0, n), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (np.arange(n) + offset) / n, np.full(n, 1.0 / n)


def integrated_gradients(net, x, target, baseline=None, steps: int = 50,
                         method: str = "gausslegendre", batch_size=None):
    """IG(x) = (x − x̄) ⊙ Σ_k w_k ∂z_t/∂x(x̄ + α_k (x − x̄)) (the module docstring).

    ``x``: an image (C, H, W) or a batch, not modified; ``target``: an int or one per
    image; ``baseline`` x̄: None (zeros), a number, or an array of x's shape (or of one
    image's, for every image); ``steps``, ``method``: the quadrature (``METHODS``);
    ``batch_size``: the most path points per forward pass.  Returns x's shape."""
    images, single = as_batch(x)
    targets = targets_for(net, images, target)
    alphas, weights = path_points(steps, method)
    base = _baseline(baseline, images)
    # the path's points after the network's affine prefix L: L(x̄) + α (L(x) − L(x̄))
    split = split_affine_prefix(net)
    start = split.forward(base)
    step = split.forward(images) - start
    alphas = alphas.astype(images.dtype).reshape((-1,) + (1,) * step.ndim)

    def points_after_prefix(samples):
        points = alphas[samples] * step[None]
        points += start[None]            # in place: one array of S·N points, not two
        return points

    total = weighted_gradient_sum(split, images, targets, weights, points_after_prefix,
                                  batch_size)
    result = (images - base) * total
    return result[0] if single else result


def _baseline(baseline, images):
    """x̄ as an array of the images' shape: zeros, a number, or an array of the images' or
    of one image's shape."""
    if baseline is None:
        return np.zeros_like(images)
    if isinstance(baseline, (int, float, np.integer, np.floating)) and \
            not isinstance(baseline, bool):          # a number: every pixel's value
        return np.full_like(images, float(baseline))
    if not isinstance(baseline, np.ndarray):
        raise TypeError(f"baseline must be None, a number or an array, got "
                        f"{type(baseline).__name__}")
    if baseline.shape not in (images.shape, images.shape[1:]):
        raise ValueError(f"baseline must have the images' shape {images.shape} or one "
                         f"image's {images.shape[1:]}, got {baseline.shape}")
    return np.broadcast_to(baseline.astype(images.dtype), images.shape)
