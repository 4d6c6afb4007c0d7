"""One activation of a network, named and seeded: what a projection starts from.

A projection (``minideconv.visualize.project``, Figure 2's ``minideconv.top_k``) picks
one activation a = A_L[c, h, w] at the output of layer L: ``check_layer``,
``check_channel`` and ``check_position`` check the three coordinates against the network,
``strongest`` finds each image's maximum of a feature map, and ``seed`` is that layer's
output zeroed everywhere but at a — the signal that ``project_traced`` passes down to the
input, by ``Network.backward``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .nn import Network


# --------------------------------------------------------------------------- checks

def check_layer(net, layer) -> int:
    """``layer`` must index ``net.layers`` (negative counts from the end) or be one of
    ``net.names``; returns the index in [0, n)."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minideconv.nn.Sequential or nn.Graph (an "
                        f"nn.Network), got {type(net).__name__}")
    if isinstance(layer, str):
        return net.index(layer)
    if not isinstance(layer, numbers.Integral) or isinstance(layer, bool):
        raise TypeError(f"layer must be an int index into net.layers or a name from "
                        f"net.names, got {layer!r}")
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


# --------------------------------------------------------------------------- the seed

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


def seed(activation, channel, positions):
    """``activation`` (N, C, H, W) or (N, F) zeroed everywhere except A[n, channel, h_n,
    w_n] (``positions[n]`` = (h_n, w_n), ignored for (N, F)), which keeps its value."""
    signal = np.zeros_like(activation)
    n = np.arange(activation.shape[0])
    if activation.ndim == 2:
        signal[n, channel] = activation[n, channel]
    else:
        h, w = positions[:, 0], positions[:, 1]
        signal[n, channel, h, w] = activation[n, channel, h, w]
    return signal


def project_traced(net, trace, layer, channel, positions, rule):
    """Seed one activation per image (``seed``) in ``trace`` (``net.trace``, at least up to
    ``layer``) and pass it down to the input under ``rule`` (``Network.backward``)."""
    signal = seed(trace.outputs[layer], channel, positions)
    return net.backward(signal, trace, start=layer, rule=rule)

