"""Mapping one activation back to pixel space: deconvnet, backprop and guided backprop.

``project`` follows Zeiler & Fergus (2014, §2.1).  Pick one activation a = A_L[c, h, w]
at the output of layer L, set every other activation of that layer to zero, and pass
this signal r down the layers that produced it, each by its *transpose*:

* a convolution y = W x + b:   r ↦ Wᵀ r   (``conv_transpose2d`` with the same weights; the
  bias is not subtracted — it is a constant, and the way back is linear);
* a max-pool y = P(s) x:      r ↦ P(s)ᵀ r (``max_unpool2d`` into the recorded switches s);
* a linear layer y = x Wᵀ + b: r ↦ r W;
* a ReLU y = max(x, 0), the only place where the three methods differ: by one of the
  rules of ``minideconv.rules`` — the gradient's ("backprop", Simonyan et al. 2013),
  Zeiler & Fergus's ("deconvnet", rectify the signal) or both ("guided").

Scale and sign.  The signal starts as the activation's own value a (not 1), and every step
is linear in r, so the result scales with a.  With ``rule="backprop"`` it is exactly
``a · ∂a/∂x``: the gradient of the activation times its value.  Deconvnet and guided
projections are not gradients; they are ≥ 0 just above every ReLU, but the first layer's
filters are signed, so in pixel space every method gives positive *and* negative values.
A projection is a direction in pixel space (what to add to the image to raise the
activation, for backprop), not an image: ``minideconv.plots`` shows it symmetric about
zero, 0 ↦ mid-grey.

Here: ``project``, ``warm_up`` and occlusion sensitivity (``occlusion_map``, §4.2).  The
checks that name an activation and its seed are ``minideconv.seeds``; Figure 2 (each
feature's top-k images) is ``minideconv.top_k``.  Both are re-exported here, so
``minideconv.visualize`` keeps every name it has always had.
"""

from __future__ import annotations

import numbers
from typing import Optional, Tuple

import numpy as np

from . import checks
from .rules import get_rule
from .ops import relu_backward
from .nn import Network
from .seeds import check_channel, check_layer, check_position, project_traced, strongest
from .top_k import (TOP_K_BATCH, TopKTable, TopPatches, channel_maxima, max_activations,
                    project_top_k, rank_top_k, top_k, top_k_patches, window_patch)

__all__ = [
    "project", "warm_up", "score", "occlusion_map",
    "check_layer", "check_channel", "check_position", "strongest",
    "TopPatches", "window_patch", "channel_maxima", "max_activations", "top_k_patches",
    "TOP_K_BATCH", "TopKTable", "rank_top_k", "project_top_k", "top_k",
]


# --------------------------------------------------------------------------- the input

def _as_images(x, name="x"):
    """(N, C, H, W) float array from an array of 3 or 4 dims, a sample name or a path;
    also says whether the caller gave a single (C, H, W) image."""
    if not isinstance(x, np.ndarray):
        from .data import load_image
        x = load_image(x)
    checks.check_float_array(x, name)
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"{name} must be an image (C, H, W) or a batch (N, C, H, W), "
                         f"got shape {x.shape}")
    return x, False


# --------------------------------------------------------------------------- projection

def project(net: Network, x, layer: int, channel: int,
            position: Optional[Tuple[int, int]] = None, rule: str = "deconvnet"):
    """Project one activation of ``net.layers[layer]``'s output back to the input.

    Parameters
    ----------
    net : a ``minideconv.nn`` network (``Sequential`` or ``Graph``)
    x : an image (C, H, W) or a batch (N, C, H, W), float32/float64 like the weights
        (or a sample name / file path, see ``minideconv.data.load_image``)
    layer : an index into ``net.layers`` or a name of ``net.names``; the activation is taken
        at that layer's OUTPUT
    channel : feature map (or output unit, after ``Flatten``) of that layer
    position : (h, w) in the feature map; ``None`` takes each image's maximum
    rule : ``"backprop"``, ``"deconvnet"`` or ``"guided"`` — the ReLU backward rule
        (``minideconv.rules``)

    Returns
    -------
    An array of x's shape.  With ``rule="backprop"`` it is ``a · ∂a/∂x`` (a = the chosen
    activation); see the module docstring for scale and sign.
    """
    rule = get_rule(rule)  # resolved once here; the layers below pass it on
    layer = check_layer(net, layer)
    images, single = _as_images(x)
    trace = net.trace(images, upto=layer)
    activation = trace.outputs[layer]
    name = net.describe(layer)
    channel = check_channel(activation.shape[1:], channel, name)
    position = check_position(activation, position, name)
    if position is None:
        positions, _ = strongest(activation, channel)
    else:
        positions = np.tile(np.array(position, np.int64), (len(images), 1))
    result = project_traced(net, trace, layer, channel, positions, rule)
    return result[0] if single else result


def warm_up(net: Network, rules=("deconvnet",)):
    """Compile (or load from Numba's cache) every kernel that a forward pass of ``net``
    and a projection under each of ``rules`` need, on one image of zeros of the network's
    dtype — so that later calls run at full speed from the first.  Only what is asked
    for is compiled: the network's dtype, its layers' operators, the given rules.

    On a first run (Numba's cache cold) col2im and unpooling compile in a second process
    meanwhile (``backends.precompile``), and load from the cache here."""
    if net.input_shape is None:
        raise ValueError("warm_up needs net.input_shape to make an input")
    from .backends import precompile
    from .backends.compile_notice import notify_on_compile
    rules = [get_rule(rule) for rule in rules]
    dtype = next((a.dtype for layer in net.layers for a in layer.params().values()),
                 np.dtype(np.float32))
    image = np.zeros((1,) + tuple(net.input_shape), dtype)
    helper = []

    def compile_way_back_beside():  # first compile seen: the cache is cold
        helper.append(precompile.start(dtype))

    with notify_on_compile(compile_way_back_beside):
        trace = net.trace(image)     # the forward kernels, compiled here
        for rule in rules:           # and the ReLU rules
            relu_backward(image, image, rule)
    for child in helper:
        precompile.wait(child)
    for rule in rules:  # from the last layer back, through every layer
        net.backward(np.zeros_like(trace.outputs[-1]), trace, rule=rule)


# --------------------------------------------------------------------------- occlusion

def score(net, images, target, output="probability"):
    """One number per image (N, C, H, W): for an int ``target`` the class score
    (``output="probability"``: softmax; ``"logit"``: the raw output), for
    ``(layer, channel)`` the total activation of that feature map."""
    if isinstance(target, tuple):
        layer, channel = target
        activation = net.trace(images, upto=layer).outputs[layer]
        check_channel(activation.shape[1:], channel, net.describe(layer))
        return activation[:, channel].reshape(len(images), -1).sum(axis=1)
    logits = net(images)
    if output == "logit":
        return logits[:, target]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True))[:, target]


def occlusion_map(net: Network, image, target, patch: int = 8, stride: int = 2,
                  fill=None, output: str = "probability", batch_size: int = 256):
    """Zeiler & Fergus §4.2: how a score changes as a grey square hides part of the image.

    Parameters
    ----------
    image : (C, H, W) array, sample name or file path
    target : an int — class ``target`` of the network's output, scored by ``output``
        (``"probability"``, the softmax, or ``"logit"``) — or a pair ``(layer, channel)``:
        the total activation Σ_{h,w} A[channel, h, w] of that feature map at the output of
        ``net.layers[layer]``
    patch : side of the square, pixels
    stride : step between square positions, pixels
    fill : the square's value: ``None`` for the image's mean colour (ZF's grey square),
        a number, or one value per channel

    Returns
    -------
    scores : (⌈H/stride⌉, ⌈W/stride⌉) array.  ``scores[i, j]`` is the score with the square
    centred on the image block rows [i·stride, (i+1)·stride), columns [j·stride, …): its
    rows are [i·stride − (patch − stride)//2, … + patch), clipped to the image.  Shown with
    ``extent=(0, cols·stride, rows·stride, 0)`` it lines up with the image.
    """
    images, single = _as_images(image, "image")
    if not single and images.shape[0] != 1:
        raise ValueError(f"image must be one image (C, H, W), got shape {images.shape}")
    image = images[0]
    channels, height, width = image.shape
    for name, value, top in (("patch", patch, min(height, width)), ("stride", stride, None)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < 1 or (top is not None and value > top):
            raise ValueError(f"{name} must be in [1, {top or 'inf'}], got {value}")
    if output not in ("probability", "logit"):
        raise ValueError(f"output must be 'probability' or 'logit', got {output!r}")
    if isinstance(target, (tuple, list)):
        if len(target) != 2:
            raise ValueError(f"target must be a class index or (layer, channel), "
                             f"got {target!r}")
        target = (check_layer(net, target[0]), target[1])
    elif isinstance(target, numbers.Integral) and not isinstance(target, bool):
        classes = net(images).shape[1]
        if not 0 <= target < classes:
            raise ValueError(f"target must be a class index in [0, {classes}), got {target}")
    else:
        raise TypeError(f"target must be a class index (int) or (layer, channel), "
                        f"got {target!r}")
    if fill is None:
        fill = image.mean(axis=(1, 2))
    fill = np.broadcast_to(np.asarray(fill, image.dtype).reshape(-1, 1, 1)
                           if np.ndim(fill) else np.asarray(fill, image.dtype),
                           (channels, 1, 1))

    rows, cols = -(-height // stride), -(-width // stride)
    offset = (patch - stride) // 2
    occluded = np.repeat(image[None], rows * cols, axis=0)
    for i in range(rows):
        for j in range(cols):
            r0, c0 = max(i * stride - offset, 0), max(j * stride - offset, 0)
            r1, c1 = i * stride - offset + patch, j * stride - offset + patch
            occluded[i * cols + j, :, r0:r1, c0:c1] = fill
    scores = np.concatenate([score(net, occluded[s:s + batch_size], target, output)
                             for s in range(0, len(occluded), batch_size)])
    return scores.reshape(rows, cols)
