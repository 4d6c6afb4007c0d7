"""The gradient of a logit, and the gradient times the input.

Saliency (Simonyan et al. 2013) is the gradient of the class logit z_t with respect to
the pixels,

    S(x) = ∂z_t/∂x = J(x)ᵀ e_t,

one pass of the seed e_t down the chain of transposes with the gradient's rule at every
rectifier — the "backprop" map of ``minideconv.visualize.project`` at the logits, seeded
with 1.  Input × gradient (Shrikumar et al. 2016) multiplies it by the image,

    IxG(x) = x ⊙ ∂z_t/∂x.

For a ReLU network without biases z_t is positively homogeneous of degree 1 in x, so by
Euler's theorem Σ IxG(x) = Σ_i x_i ∂z_t/∂x_i = z_t(x): the map distributes the logit over
the pixels exactly.  With biases the sum misses their share.  Captum: ``Saliency(model)
.attribute(x, target=t, abs=False)`` and ``InputXGradient(model).attribute(x, target=t)``.
"""

from __future__ import annotations

from .targets import as_batch, backward_from_logits, traced_logits

__all__ = ["gradient", "input_x_gradient", "batch_gradient"]


def batch_gradient(net, images, targets):
    """∂z_t/∂x for a batch (N, C, H, W) and one target per image (or one int): the way
    every method here takes the gradient."""
    trace, logits, targets = traced_logits(net, images, targets)
    return backward_from_logits(net, trace, logits, targets)


def gradient(net, x, target):
    """∂z_t/∂x, the gradient of the target logit (Captum's ``Saliency(abs=False)``).

    ``x``: an image (C, H, W) or a batch (N, C, H, W), float like the weights — not
    modified; ``target``: the class whose logit is explained, an int or one int per
    image.  Returns x's shape."""
    images, single = as_batch(x)
    result = batch_gradient(net, images, target)
    return result[0] if single else result


def input_x_gradient(net, x, target):
    """x ⊙ ∂z_t/∂x (Captum's ``InputXGradient``); arguments as ``gradient``."""
    images, single = as_batch(x)
    result = images * batch_gradient(net, images, target)
    return result[0] if single else result
