"""Every map of the family under one name and one signature, for the tables, figures and
the command line that compare them:

    METHODS[name](net, images, targets) -> maps

with images (N, C, H, W), targets (N,) class indices, and maps of the images' shape —
but for ``"grad_cam"``, whose maps (N, H′, W′) have its layer's resolution.  Each entry
fixes what its method leaves open, the way this package's figures and tables use it:

=======================  ==================================================================
name                     the map
=======================  ==================================================================
``deconvnet``            Zeiler & Fergus's rule at every rectifier, seeded with 1 at z_t
``guided_backprop``      the guided rule, seeded with 1 at z_t
``gradient``             ∂z_t/∂x
``input_x_gradient``     x ⊙ ∂z_t/∂x
``integrated_gradients`` IG from a zero image, 50 Gauss–Legendre steps
``smoothgrad``           50 noisy copies, σ = 0.15 of each image's range, seed 0
``grad_cam``             Grad-CAM at the last layer with feature maps larger than 1 × 1
``guided_grad_cam``      guided backprop ⊙ that Grad-CAM upsampled
``lrp``                  LRP, the ``epsilon_plus_flat`` composite
``lrp_alpha_beta``       LRP, the ``epsilon_alpha2_beta1_flat`` composite
``occlusion``            Zeiler & Fergus's grey square (8 px, stride 2): the drop of the
                         logit z_t, at every pixel the square covered at its centre
=======================  ==================================================================

``describe(name)`` is the line of this table; ``compute(name, net, x, target)`` takes an
image or a batch and one int or one per image, as every method does.
"""

from __future__ import annotations

import numpy as np

from .. import checks
from .grad_cam import grad_cam, guided_grad_cam, last_spatial_layer
from .gradient import gradient, input_x_gradient
from .integrated_gradients import integrated_gradients
from .smoothgrad import smoothgrad
from .targets import as_batch, backward_from_logits, targets_for, traced_logits

__all__ = ["METHODS", "DESCRIPTIONS", "compute", "describe"]


def _rule_map(rule):
    def method(net, images, targets):
        trace, logits, targets = traced_logits(net, images, targets)
        return backward_from_logits(net, trace, logits, targets, rule=rule)
    return method


def _grad_cam(net, images, targets):
    return grad_cam(net, images, last_spatial_layer(net, images.shape[1:]), targets)


def _guided_grad_cam(net, images, targets):
    return guided_grad_cam(net, images, last_spatial_layer(net, images.shape[1:]), targets)


def _lrp(composite):
    def method(net, images, targets):
        from .lrp import lrp
        return lrp(net, images, targets, composite=composite)
    return method


def _occlusion(net, images, targets):
    """The drop z_t(x) − z_t(x with the square) at each square position, repeated over the
    stride × stride block it is centred on and over the channels: a pixel map."""
    from ..visualize import occlusion_map
    from .targets import logits_of
    stride = 2
    clean = logits_of(net, images)[np.arange(len(images)), targets]
    maps = np.empty_like(images)
    for n, image in enumerate(images):
        scores = occlusion_map(net, image, int(targets[n]), patch=8, stride=stride,
                               output="logit")
        drop = np.kron(clean[n] - scores, np.ones((stride, stride)))
        maps[n] = drop[:image.shape[1], :image.shape[2]][None]
    return maps


METHODS = {
    "deconvnet": _rule_map("deconvnet"),
    "guided_backprop": _rule_map("guided"),
    "gradient": lambda net, images, targets: gradient(net, images, targets),
    "input_x_gradient": lambda net, images, targets: input_x_gradient(net, images, targets),
    "integrated_gradients": lambda net, images, targets:
        integrated_gradients(net, images, targets, steps=50),
    "smoothgrad": lambda net, images, targets:
        smoothgrad(net, images, targets, samples=50, sigma=0.15, seed=0),
    "grad_cam": _grad_cam,
    "guided_grad_cam": _guided_grad_cam,
    "lrp": _lrp("epsilon_plus_flat"),
    "lrp_alpha_beta": _lrp("epsilon_alpha2_beta1_flat"),
    "occlusion": _occlusion,
}

DESCRIPTIONS = {
    "deconvnet": "deconvnet (Zeiler & Fergus 2014), seeded with 1 at the logit",
    "guided_backprop": "guided backpropagation (Springenberg et al. 2014)",
    "gradient": "gradient / saliency (Simonyan et al. 2013)",
    "input_x_gradient": "input × gradient (Shrikumar et al. 2016)",
    "integrated_gradients": "integrated gradients (Sundararajan et al. 2017), zero baseline",
    "smoothgrad": "SmoothGrad (Smilkov et al. 2017), 50 samples, σ = 0.15",
    "grad_cam": "Grad-CAM (Selvaraju et al. 2017), last spatial layer",
    "guided_grad_cam": "guided Grad-CAM (Selvaraju et al. 2017)",
    "lrp": "LRP, ε / z⁺ / flat (zennit's EpsilonPlusFlat)",
    "lrp_alpha_beta": "LRP, ε / α2β1 / flat (zennit's EpsilonAlpha2Beta1Flat)",
    "occlusion": "occlusion (Zeiler & Fergus 2014), 8-px square, logit drop",
}


def describe(name: str) -> str:
    """The one-line description of method ``name``."""
    return DESCRIPTIONS[checks.check_choice(name, "method", tuple(METHODS))]


def compute(name: str, net, x, target):
    """``METHODS[name]`` on an image (C, H, W) or a batch and an int or one per image;
    returns one map for one image."""
    method = METHODS[checks.check_choice(name, "method", tuple(METHODS))]
    images, single = as_batch(x)
    result = method(net, images, targets_for(net, images, target))
    return result[0] if single else result
