"""Occlusion sensitivity (Zeiler & Fergus 2014, §4.2): hide part of the image, watch a score.

``score`` is the number watched — a class probability or logit, or the total activation
of one feature map — and ``occlusion_map`` slides a square over the image and records the
score at each position: where it drops, the network was looking.
"""

from __future__ import annotations

import numpy as np

from .. import checks
from ..nn import Network
from .projection import as_images, check_channel, check_layer

__all__ = ["score", "occlusion_map"]

#: What ``score`` reports for a class target: its softmax probability or its logit.
OUTPUTS = ("probability", "logit")


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
    images, single = as_images(image, "image")
    if not single and images.shape[0] != 1:
        raise ValueError(f"image must be one image (C, H, W), got shape {images.shape}")
    image = images[0]
    channels, height, width = image.shape
    patch = checks.check_int(patch, "patch", 1, min(height, width),
                             why=f"the image is {height}x{width}")
    stride = checks.check_int(stride, "stride", 1)
    output = checks.check_choice(output, "output", OUTPUTS)
    if isinstance(target, (tuple, list)):
        if len(target) != 2:
            raise ValueError(f"target must be a class index or (layer, channel), "
                             f"got {target!r}")
        target = (check_layer(net, target[0]), target[1])
    elif checks.is_int(target):
        target = checks.check_index(target, "target", net(images).shape[1],
                                    why="a class index")
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
