"""Grad-CAM (Selvaraju et al. 2017) and guided Grad-CAM: the gradient pooled at one layer.

Take a layer whose output A has feature maps A_c (N, C, H′, W′).  Grad-CAM weighs each
map by the spatial mean of the gradient of the logit on it, and keeps the positive part
of the sum:

    α_c = (1 / H′W′) Σ_ij ∂z_t/∂A_c[i, j],      L = relu(Σ_c α_c A_c)   (H′, W′).

∂z_t/∂A is the seed e_t passed down the chain of transposes only as far as A
(``Network.backward(stop=layer)``): Grad-CAM is the gradient's chain cut at a layer and
pooled.  Its map has the layer's resolution, and is ≥ 0.

Guided Grad-CAM multiplies guided backprop's pixel map (the "guided" rule of
``minideconv.rules``, seeded with 1 at z_t) by L upsampled to the image by nearest
neighbour (``ops.upsample_nearest2d``, torch's rule), the same L for every colour channel:

    G(x) = guided(x) ⊙ up(L).

Captum: ``LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)``
((N, 1, H′, W′): here (N, H′, W′)) and ``GuidedGradCam(model, layer).attribute(x,
target=t)`` (its default ``interpolate_mode="nearest"``).  Captum's guided backprop
overrides ``nn.ReLU`` modules only (``minideconv.rules``: which peers do what), so the two
agree where every rectifier is an ``nn.ReLU``.
"""

from __future__ import annotations

import numpy as np

from ..ops import upsample_nearest2d
from .targets import as_batch, backward_from_logits, check_network, traced_logits

__all__ = ["grad_cam", "guided_grad_cam", "spatial_layer", "last_spatial_layer"]


def spatial_layer(net, layer, input_shape=None) -> int:
    """The index of ``layer`` (an index or a name of ``net.names`` / ``net.aliases``),
    which must come before the logits and — for images of ``input_shape`` (C, H, W),
    default ``net.input_shape`` — have feature maps (C, H′, W′)."""
    check_network(net)
    index = net.index(layer)
    shape_of_input = input_shape if input_shape is not None else net.input_shape
    shape = None if shape_of_input is None else net.layer_shapes(shape_of_input)[index]
    if index >= net.output_layer():
        raise ValueError(f"layer must come before the logits "
                         f"({net.describe(net.output_layer())}), got {net.describe(index)}")
    if shape is not None and len(shape) != 3:
        raise ValueError(f"Grad-CAM needs a layer with feature maps (C, H, W); "
                         f"{net.describe(index)} outputs {shape}")
    return index


def last_spatial_layer(net, input_shape=None) -> int:
    """The last layer before the logits whose output has feature maps (C, H′, W′) larger
    than 1 × 1, for images of ``input_shape`` (default ``net.input_shape``): the usual
    choice of Grad-CAM's layer, the last convolutional block.  (After a global pool, a
    1 × 1 map locates nothing.)"""
    check_network(net)
    layer_shapes = net.layer_shapes(input_shape)
    candidates = [i for i in range(net.output_layer())
                  if len(layer_shapes[i]) == 3 and layer_shapes[i][1] * layer_shapes[i][2] > 1]
    if not candidates:
        raise ValueError("the network has no layer with feature maps (C, H, W) larger than "
                         "1 x 1 before its logits, so Grad-CAM has no layer to pool")
    return candidates[-1]


def _cam(net, images, layer, target):
    """(L, trace, logits index, targets): Grad-CAM maps (N, H′, W′) and the pass made."""
    layer = spatial_layer(net, layer, images.shape[1:])
    trace, logits, targets = traced_logits(net, images, target)
    activation = trace.outputs[layer]
    if activation.ndim != 4:
        raise ValueError(f"Grad-CAM needs a layer with feature maps (N, C, H, W); "
                         f"{net.describe(layer)} outputs {activation.shape}")
    grad = backward_from_logits(net, trace, logits, targets, stop=layer)
    alpha = grad.mean(axis=(2, 3))                         # α_c per image: (N, C)
    weighted = np.einsum("nc,nchw->nhw", alpha, activation)
    return np.maximum(weighted, 0), trace, logits, targets


def grad_cam(net, x, layer, target):
    """L = relu(Σ_c α_c A_c), α_c the spatial mean of ∂z_t/∂A_c (the module docstring).

    ``layer``: the layer A (an index or a name, as ``Network.index``) — its output, as
    Captum's ``LayerGradCam`` takes a module's output; ``x``: an image (C, H, W) or a
    batch, not modified; ``target``: an int or one per image.  Returns (H′, W′) for an
    image, (N, H′, W′) for a batch."""
    images, single = as_batch(x)
    cam = _cam(net, images, layer, target)[0]
    return cam[0] if single else cam


def guided_grad_cam(net, x, layer, target):
    """guided backprop ⊙ Grad-CAM upsampled to the image by nearest neighbour (the module
    docstring); arguments as ``grad_cam``.  Returns x's shape."""
    images, single = as_batch(x)
    cam, trace, logits, targets = _cam(net, images, layer, target)
    guided = backward_from_logits(net, trace, logits, targets, rule="guided")
    up = upsample_nearest2d(cam[:, None], size=images.shape[2:])
    result = guided * up
    return result[0] if single else result
