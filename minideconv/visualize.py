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
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from . import _checks
from .rules import get_rule
from .ops import relu_backward
from .nn import Sequential


# --------------------------------------------------------------------------- checks

def _as_images(x, name="x"):
    """(N, C, H, W) float array from an array of 3 or 4 dims, a sample name or a path;
    also says whether the caller gave a single (C, H, W) image."""
    if not isinstance(x, np.ndarray):
        from .data import load_image
        x = load_image(x)
    _checks.check_float_array(x, name)
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"{name} must be an image (C, H, W) or a batch (N, C, H, W), "
                         f"got shape {x.shape}")
    return x, False


def check_layer(net: Sequential, layer) -> int:
    """``layer`` must index ``net.layers`` (negative counts from the end)."""
    if not isinstance(net, Sequential):
        raise TypeError(f"net must be a minideconv.nn.Sequential, got {type(net).__name__}")
    if not isinstance(layer, numbers.Integral) or isinstance(layer, bool):
        raise TypeError(f"layer must be an int index into net.layers, got {layer!r}")
    n = len(net.layers)
    if not -n <= layer < n:
        raise ValueError(f"layer must be in [0, {n}) (the network has {n} layers), "
                         f"got {layer}")
    return int(layer) % n


def check_channel(shape, channel, layer_name):
    """``channel`` as an int; it must index the first axis of a layer output of ``shape``
    (without N), else a TypeError or ValueError naming ``layer_name``."""
    if not isinstance(channel, numbers.Integral) or isinstance(channel, bool):
        raise TypeError(f"channel must be an int, got {channel!r}")
    channels = shape[0]
    if not 0 <= channel < channels:
        raise ValueError(f"channel must be in [0, {channels}): {layer_name} has {channels} "
                         f"{'feature maps' if len(shape) == 3 else 'outputs'}, "
                         f"got {channel}")
    return int(channel)


def check_position(activation, position, layer_name):
    """``position`` as (h, w) inside the feature map of ``activation`` (N, C, H, W), or
    None (each image's maximum); a TypeError or ValueError naming ``layer_name``."""
    if position is None:
        return None
    if activation.ndim == 2:
        raise ValueError(f"position must be None: {layer_name} has no spatial positions "
                         "(its output is (N, features))")
    if not (isinstance(position, (tuple, list)) and len(position) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                    for v in position)):
        raise TypeError(f"position must be None or a pair of ints (h, w), got {position!r}")
    height, width = activation.shape[2:]
    h, w = position
    if not (0 <= h < height and 0 <= w < width):
        raise ValueError(f"position must lie in the {height}x{width} feature map of "
                         f"{layer_name}, got {tuple(position)}")
    return int(h), int(w)


# --------------------------------------------------------------------------- projection

def strongest(activation, channel):
    """Per image: the position (h, w) and value of the maximum of feature map ``channel``
    (the first maximum in scan order); positions are (0, 0) for (N, F) activations."""
    if activation.ndim == 2:
        values = activation[:, channel]
        return np.zeros((len(values), 2), np.int64), values
    maps = activation[:, channel].reshape(activation.shape[0], -1)
    flat = maps.argmax(axis=1)
    positions = np.stack(np.unravel_index(flat, activation.shape[2:]), axis=1)
    return positions, maps[np.arange(len(flat)), flat]


def _seed(activation, channel, positions):
    """Zero everywhere except A[n, channel, h_n, w_n], which keeps its value."""
    seed = np.zeros_like(activation)
    n = np.arange(activation.shape[0])
    if activation.ndim == 2:
        seed[n, channel] = activation[n, channel]
    else:
        h, w = positions[:, 0], positions[:, 1]
        seed[n, channel, h, w] = activation[n, channel, h, w]
    return seed


def _project_traced(net, trace, layer, channel, positions, rule):
    """Seed one activation per image and pass it down to the input (``Sequential.backward``)."""
    seed = _seed(trace.outputs[layer], channel, positions)
    return net.backward(seed, trace, start=layer, rule=rule)


def project(net: Sequential, x, layer: int, channel: int,
            position: Optional[Tuple[int, int]] = None, rule: str = "deconvnet"):
    """Project one activation of ``net.layers[layer]``'s output back to the input.

    Parameters
    ----------
    net : ``minideconv.nn.Sequential``
    x : an image (C, H, W) or a batch (N, C, H, W), float32/float64 like the weights
        (or a sample name / file path, see ``minideconv.data.load_image``)
    layer : index into ``net.layers``; the activation is taken at that layer's OUTPUT
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
    result = _project_traced(net, trace, layer, channel, positions, rule)
    return result[0] if single else result


def warm_up(net: Sequential, rules=("deconvnet",)):
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


# --------------------------------------------------------------------------- top-k patches

@dataclass
class TopPatches:
    """The ``k`` images where one feature fires most, strongest first.

    ``values[i]`` is the activation, at ``positions[i]`` = (h, w) of image
    ``indices[i]``; ``windows[i]`` = (row0, row1, col0, col1), half-open, is that unit's
    receptive field in the image (it may stick out of the image); ``patches[i]`` and
    ``projections[i]`` are the image and the projection cropped to it, zero where the
    window lies outside the image (the zero padding the convolutions see there);
    ``inside[i]`` (h, w) is True on the pixels that lie in the image."""

    values: np.ndarray
    indices: np.ndarray
    positions: np.ndarray
    windows: np.ndarray
    patches: np.ndarray
    projections: np.ndarray
    inside: np.ndarray


def window_patch(image, window):
    """The part of ``image`` (C, H, W) under ``window = (r0, r1, c0, c1)``,
    ``image[:, r0:r1, c0:c1]``, where the window may extend past the border (zeros there)."""
    r0, r1, c0, c1 = window
    channels, height, width = image.shape
    out = np.zeros((channels, r1 - r0, c1 - c0), image.dtype)
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = min(r1, height), min(c1, width)
    if bottom > top and right > left:
        out[:, top - r0:bottom - r0, left - c0:right - c0] = image[:, top:bottom, left:right]
    return out


def channel_maxima(net, images, layers, batch_size=256):
    """Every feature's maximum in every image, for several layers in one forward pass.

    Returns ``{layer: (positions, values)}`` with ``values[n, c]`` the maximum of feature
    map c of ``net.layers[layer]``'s output on image n and ``positions[n, c]`` its (h, w)
    (the first maximum in scan order; (0, 0) for (N, F) outputs).  The images go through
    the network once, ``batch_size`` at a time, up to the deepest of ``layers``."""
    layers = sorted({check_layer(net, layer) for layer in layers})
    if not layers:
        raise ValueError("layers must name at least one layer")
    _checks.check_float_array(images, "images", ndim=4)
    found = {layer: ([], []) for layer in layers}
    for start in range(0, len(images), batch_size):
        outputs = net.trace(images[start:start + batch_size], upto=layers[-1]).outputs
        for layer in layers:
            positions, values = _maxima_of_every_channel(outputs[layer])
            found[layer][0].append(positions)
            found[layer][1].append(values)
    return {layer: (np.concatenate(p), np.concatenate(v)) for layer, (p, v) in found.items()}


def _maxima_of_every_channel(activation):
    """``strongest`` for all channels at once: positions (N, C, 2), values (N, C)."""
    if activation.ndim == 2:
        return np.zeros(activation.shape + (2,), np.int64), activation
    maps = activation.reshape(activation.shape[0], activation.shape[1], -1)
    flat = maps.argmax(axis=2)
    values = np.take_along_axis(maps, flat[..., None], axis=2)[..., 0]
    positions = np.stack(np.unravel_index(flat, activation.shape[2:]), axis=-1)
    return positions.astype(np.int64), values


def _maxima_of_channel(net, images, layer, channel, maxima):
    """One channel of ``channel_maxima``'s result for ``layer``, checked against the
    images and the layer."""
    positions, values = maxima
    shape = net.layer_shapes(images.shape[1:])[layer]
    if values.shape != (len(images), shape[0]) or positions.shape != values.shape + (2,):
        raise ValueError(f"maxima must be channel_maxima(net, images, ...)[{layer}] for "
                         f"these {len(images)} images: values ({len(images)}, {shape[0]}) "
                         f"and positions ({len(images)}, {shape[0]}, 2), got "
                         f"{values.shape} and {positions.shape}")
    channel = check_channel(shape, channel, net.describe(layer))
    return positions[:, channel], values[:, channel]


def max_activations(net, images, layer, channel, batch_size=256):
    """``(positions, values)`` of feature ``channel``'s maximum in each image."""
    layer = check_layer(net, layer)
    _checks.check_float_array(images, "images", ndim=4)
    channel = check_channel(net.layer_shapes(images.shape[1:])[layer], channel,
                                net.describe(layer))
    positions, values = channel_maxima(net, images, [layer], batch_size)[layer]
    return positions[:, channel], values[:, channel]


def top_k_patches(net: Sequential, images, layer: int, channel: int, k: int = 9,
                  rule: str = "deconvnet", batch_size: int = 256,
                  maxima=None) -> TopPatches:
    """Zeiler & Fergus's Figure 2 for one feature: the ``k`` strongest activations of
    feature map ``channel`` at the output of ``net.layers[layer]`` over ``images``
    (N, C, H, W) — at most one per image — with the input patches under each unit's
    receptive field (``shapes.receptive_field``) and the projections (``rule``) of that
    single activation, cropped the same way.

    ``maxima``, if given, is ``channel_maxima(net, images, [layer, ...])[layer]``: the
    maxima of every feature, found once for many calls, so that this call passes only its
    ``k`` images through the network."""
    rule = get_rule(rule)  # resolved once here; the layers below pass it on
    layer = check_layer(net, layer)
    _checks.check_float_array(images, "images", ndim=4)
    if not isinstance(k, numbers.Integral) or isinstance(k, bool):
        raise TypeError(f"k must be an int, got {k!r}")
    if not 1 <= k <= len(images):
        raise ValueError(f"k must be in [1, {len(images)}] (one activation per image), "
                         f"got {k}")
    if maxima is None:
        positions, values = max_activations(net, images, layer, channel, batch_size)
    else:
        positions, values = _maxima_of_channel(net, images, layer, channel, maxima)
    order = np.argsort(-values, kind="stable")[:k]
    chosen = images[order]
    trace = net.trace(chosen, upto=layer)
    projections = _project_traced(net, trace, layer, channel, positions[order], rule)

    field = net.receptive_field(layer)
    height, width = images.shape[2:]
    if field is None:              # after Flatten every unit sees the whole image
        windows = np.tile([0, height, 0, width], (k, 1))
    else:
        windows = np.array([field.window(tuple(p)) for p in positions[order]])
    return TopPatches(values=values[order], indices=order, positions=positions[order],
                      windows=windows,
                      patches=np.stack([window_patch(im, w) for im, w in zip(chosen, windows)]),
                      projections=np.stack([window_patch(p, w) for p, w in
                                            zip(projections, windows)]),
                      inside=np.stack([window_patch(np.ones((1, height, width), bool), w)[0]
                                       for w in windows]))


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


def occlusion_map(net: Sequential, image, target, patch: int = 8, stride: int = 2,
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
