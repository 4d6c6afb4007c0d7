"""One unit's projection, computed only where it can be non-zero: in its receptive field.

A unit A_L[c, h, w] depends on the pixels of its receptive field alone, and its
projection is zero outside that window: every transpose on the way down spreads the
signal only over the inputs the forward pass read.  Layer by layer, from the top, the
window of the signal is

    unit:            rows [h, h + 1)
    below a layer    rows [a·s − p, (b − 1)·s − p + d·(k − 1) + 1)   of its input,
    with window [a, b) at its output (kernel k, stride s, padding p, dilation d);

and so for columns.  An element-wise layer (ReLU and the other activations, batch norm,
dropout) keeps the window.  Clipped to the layer's input, a window holds the only values
the unit needs; the part outside is the layer's padding, which the window's layer adds
itself (zeros for a convolution or an average, −∞ for a max-pool, as the forward pass
does implicitly) and then runs *without* padding.  So each layer sees, in a small window,
exactly the numbers it would see in the whole image, and both passes — the unit's trace
and its projection — cost the window's area instead of the image's (a unit of VGG-16's
conv3_3 sees 40 × 40 of 224 × 224 pixels: 3 % of them).

``unit_window_plan`` says whether a network's layers up to the unit allow it (a chain of
convolutions with zero padding, max- and average-pools without ``ceil_mode``, and
element-wise layers; anything else — a branch, a layer that mixes positions, circular
padding — gives ``None``: then project the whole image); ``project_unit_in_window``
traces one image in the window and projects its unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from ..nn import NETWORK_INPUT, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Identity, MaxPool2d, \
    ReLU
from ..nn.activations import ACTIVATIONS
from .projection import seed

#: the layers that act on each position alone: a window passes through them unchanged
ELEMENT_WISE = (ReLU, BatchNorm2d, Identity, Dropout) + ACTIVATIONS


@dataclass
class WindowStep:
    """Layer ``index`` of the network, as the window sees it: ``layer`` without its
    padding, ``pad_value`` what its padding holds (0, or −∞ for a max-pool), and its
    (kernel, stride, top-left padding, dilation) per axis — None for an element-wise
    layer."""

    index: int
    layer: object
    pad_value: float
    geometry: Optional[Tuple[tuple, tuple, tuple, tuple]]


@dataclass
class UnitWindowPlan:
    """``steps[i]`` for layers 0 … ``layer`` of a network and ``sizes[i]`` (H, W) of each
    layer's input for images of ``image_shape`` (C, H, W); ``sizes[i + 1]`` is layer i's
    output size."""

    layer: int
    image_shape: Tuple[int, int, int]
    steps: List[WindowStep]
    sizes: List[Tuple[int, int]]

    def windows(self, position):
        """For the unit at ``position`` (h, w) of the layer's output: per layer (forward
        order), the window of its input it reads, clipped to the input, as (row0, row1,
        col0, col1), and the padding ((top, bottom), (left, right)) it adds around it."""
        h, w = position
        rows, cols = (h, h + 1), (w, w + 1)
        plan = []
        for step, size in zip(reversed(self.steps), reversed(self.sizes[:-1])):
            if step.geometry is None:
                plan.append(((rows[0], rows[1], cols[0], cols[1]), ((0, 0), (0, 0))))
                continue
            kernel, stride, padding, dilation = step.geometry
            spans, pads = [], []
            for (a, b), k, s, p, d, length in zip((rows, cols), kernel, stride, padding,
                                                  dilation, size):
                start, stop = a * s - p, (b - 1) * s - p + d * (k - 1) + 1
                spans.append((max(start, 0), min(stop, length)))
                pads.append((max(start, 0) - start, stop - min(stop, length)))
            rows, cols = spans
            plan.append(((rows[0], rows[1], cols[0], cols[1]), tuple(pads)))
        return plan[::-1]


def _window_step(index, layer) -> Optional[WindowStep]:
    """The layer as a window runs it, or None when a window cannot stand for it."""
    if isinstance(layer, ELEMENT_WISE):
        return WindowStep(index, layer, 0.0, None)
    if isinstance(layer, Conv2d) and layer.padding_mode == "zeros":
        kernel, stride, padding, dilation = layer.geometry()
        bare = Conv2d(layer.weight, layer.bias, stride=layer.stride, padding=0,
                      dilation=layer.dilation, groups=layer.groups)
        return WindowStep(index, bare, 0.0, (tuple(kernel), stride, padding, dilation))
    if isinstance(layer, MaxPool2d) and not layer.ceil_mode:
        bare = MaxPool2d(layer.kernel_size, layer.stride, 0, layer.dilation)
        return WindowStep(index, bare, -np.inf, layer.geometry())
    if isinstance(layer, AvgPool2d) and not layer.ceil_mode and \
            (layer.count_include_pad or layer.padding == (0, 0)):
        # counting the padding, every window divides by its full size: padding by hand
        # with zeros and averaging without padding gives the same means
        bare = AvgPool2d(layer.kernel_size, layer.stride, 0,
                         divisor_override=layer.divisor_override)
        return WindowStep(index, bare, 0.0, layer.geometry())
    return None


def unit_window_plan(net, layer: int, image_shape) -> Optional[UnitWindowPlan]:
    """The plan of ``project_unit_in_window`` for units at the output of ``net``'s layer
    ``layer`` (an index in [0, n)) in images of ``image_shape`` (C, H, W); None unless
    layers 0 … ``layer`` are a chain (each reads the one before) of layers a window can
    stand for (the module docstring) and the layer's output has positions."""
    steps = []
    for i in range(layer + 1):
        if tuple(net.inputs_of(i)) != ((i - 1,) if i else (NETWORK_INPUT,)):
            return None
        step = _window_step(i, net.layers[i])
        if step is None:
            return None
        steps.append(step)
    shapes = net.layer_shapes(tuple(image_shape))
    if len(shapes[layer]) != 3:
        return None
    sizes = [tuple(image_shape[1:])] + [tuple(shape[1:]) for shape in shapes[:layer + 1]]
    return UnitWindowPlan(layer, tuple(image_shape), steps, sizes)


def window_area(plan: UnitWindowPlan, position) -> float:
    """The share of the image's pixels inside the input window of the unit at
    ``position``."""
    r0, r1, c0, c1 = plan.windows(position)[0][0]
    height, width = plan.image_shape[1:]
    return (r1 - r0) * (c1 - c0) / (height * width)


def project_unit_in_window(plan: UnitWindowPlan, image, channel: int, position, rule,
                           seed_value="activation"):
    """The projection of unit (``channel``, ``position``) of ``image`` (C, H, W) under
    ``rule`` (a rule of ``minideconv.rules``), traced and projected in the unit's window
    only.  Equal, to rounding, to seeding ``net.trace(image[None]).outputs[layer]`` and
    passing it down ``net.backward``.

    Returns ``(activation, window, projection)``: the unit's value, its input window
    (row0, row1, col0, col1) clipped to the image, and the projection there (C, rows,
    cols); the projection is zero everywhere else."""
    windows = plan.windows(position)
    (r0, r1, c0, c1), _ = windows[0]
    signal = image[None, :, r0:r1, c0:c1]
    records, pads = [], []
    for step, (_, pad) in zip(plan.steps, windows):
        # the padding the whole image's layer would add at this window's border
        signal = np.pad(signal, ((0, 0), (0, 0)) + pad, constant_values=step.pad_value)
        signal, record = step.layer.forward(signal)
        records.append(record)
        pads.append(pad)
    # the unit is the one position left in the window of the layer's output
    grad = seed(signal, channel, [(0, 0)], seed_value)
    activation = signal[0, channel, 0, 0]
    for step, record, ((top, bottom), (left, right)) in zip(reversed(plan.steps),
                                                            reversed(records),
                                                            reversed(pads)):
        grad = step.layer.backward(grad, record, rule=rule)
        # what went back into the padding leaves the network there
        grad = grad[:, :, top:grad.shape[2] - bottom, left:grad.shape[3] - right]
    return activation, (r0, r1, c0, c1), grad[0]
