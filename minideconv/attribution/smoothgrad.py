"""SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the image,

    SG(x) = (1/S) Σ_s ∂z_t/∂x (x + ε_s),    ε_s ~ N(0, σ_n² I),

a Monte-Carlo estimate of the gradient of z_t smoothed by a Gaussian: the gradient of a
ReLU network is piecewise constant and jumps from one linear region to the next, and the
average over a neighbourhood of x keeps what the regions around x agree on.

The noise level, Smilkov et al.'s: σ_n = ``sigma`` · (max x_n − min x_n), a fraction of
each image's own range (their 10–20 %; ``sigma=0.15`` by default).  The draws come from
``numpy.random.default_rng(seed)``, all S·N images at once and in the images' float type,
so one seed gives the same map on every run (float32 and float64 images draw different
numbers).  Or give the noise itself, ``noise`` of shape (S,) + x.shape — the way
to compare with another library's draws (Captum's ``NoiseTunnel(Saliency(model))``
with ``nt_type="smoothgrad"`` draws N(0, stdevs²) from torch's generator).  One sample of
zero noise (``sigma=0``) is the gradient itself.  The S·N gradients are taken as one batch
or in passes of at most ``batch_size`` images, and averaged where the chain stops
depending on the point (``path_gradients``: one pass down the affine layers before the
first rectifier for all S samples).
"""

from __future__ import annotations

import numpy as np

from .. import checks
from .path_gradients import split_affine_prefix, weighted_gradient_sum
from .targets import as_batch, targets_for

__all__ = ["smoothgrad", "noise_levels"]


def noise_levels(images, sigma: float) -> np.ndarray:
    """σ_n = sigma · (max − min) of each image n, shaped (N, 1, 1, 1) to scale its noise."""
    sigma = checks.check_real(sigma, "sigma", minimum=0)
    spread = images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3))
    return (sigma * spread).astype(images.dtype)[:, None, None, None]


def smoothgrad(net, x, target, noise=None, samples: int = 50, sigma: float = 0.15,
               seed: int = 0, batch_size=None):
    """SG(x) = mean over s of ∂z_t/∂x(x + ε_s) (the module docstring).

    ``x``: an image (C, H, W) or a batch, not modified; ``target``: an int or one per
    image.  Either ``noise``, an array (S,) + x.shape of the ε_s, or ``samples`` draws of
    N(0, (sigma · (max x_n − min x_n))²) per image from ``default_rng(seed)``.
    Returns x's shape."""
    images, single = as_batch(x)
    targets = targets_for(net, images, target)
    if noise is None:
        samples = checks.check_int(samples, "samples", minimum=1)
        rng = np.random.default_rng(checks.check_int(seed, "seed", minimum=0))
        # drawn in the images' own float type: float32 images get float32 draws
        noise = rng.standard_normal((samples,) + images.shape, dtype=images.dtype)
        noise *= noise_levels(images, sigma)[None]
    else:
        given = images.shape[1:] if single else images.shape     # x's own shape
        if not isinstance(noise, np.ndarray) or noise.shape[1:] != given or not len(noise):
            raise ValueError(f"noise must be an array (S,) + x.shape = (S,) + {given} with "
                             f"S ≥ 1, got {getattr(noise, 'shape', type(noise).__name__)}")
        checks.check_float_array(noise, "noise")
        noise = noise.reshape((len(noise),) + images.shape).astype(images.dtype)
    split = split_affine_prefix(net)

    def points_after_prefix(samples):
        noisy = images[None] + noise[samples]
        after = split.forward(noisy.reshape((-1,) + images.shape[1:]))
        return after.reshape(noisy.shape[:2] + after.shape[1:])

    weights = np.full(len(noise), 1.0 / len(noise))
    result = weighted_gradient_sum(split, images, targets, weights, points_after_prefix,
                                   batch_size)
    return result[0] if single else result
