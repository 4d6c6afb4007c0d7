"""Mapping one activation back to pixel space: deconvnet, backprop and guided backprop.

``project`` follows Zeiler & Fergus (2014, §2.1).  Pick one activation a = A_L[c, h, w]
at the output of layer L, set every other activation of that layer to zero, and pass
this signal r down the layers that produced it, each by its *transpose*:

* a convolution y = W x + b:   r ↦ Wᵀ r   (``conv_transpose2d`` with the same weights; the
  bias is not subtracted — it is a constant, and the way back is linear);
* a max-pool y = P(s) x:      r ↦ P(s)ᵀ r (``max_unpool2d`` into the recorded switches s);
* a linear layer y = x Wᵀ + b: r ↦ r W;
* a ReLU y = max(x, 0) — or another rectifier (ReLU6, LeakyReLU, PReLU) — the only place
  where the three methods differ: by one of the rules of ``minideconv.rules`` — the
  gradient's ("backprop", Simonyan et al. 2013), Zeiler & Fergus's ("deconvnet", rectify
  the signal) or both ("guided"); a smooth activation (SiLU, GELU, …) passes f′(x)·r.

Scale and sign: the seed.  The signal starts, at the unit, as ``seed_value``:

* ``"activation"`` (the default, Zeiler & Fergus): the activation's own value a.  With
  ``rule="backprop"`` the result is exactly ``a · ∂a/∂x``, the gradient of the unit times
  its value.  The deconvnet and guided rules are positively homogeneous, not linear
  (rect(c g) = c rect(g) only for c ≥ 0): for a > 0 the result is a times the map of the
  unit; for a < 0 (a negative logit, say) it is |a| times the map of −a — the map of the
  unit with its sign turned, not the unit's map scaled by a.
* ``"one"``: the seed is 1, whatever a — the unit's own map: ``∂a/∂x`` for backprop, and
  what Captum's ``attribute(x, target=c)`` (or ``neuron_selector``) computes for every rule.

Deconvnet and guided projections are not gradients; they are ≥ 0 just above every ReLU,
but the first layer's filters are signed, so in pixel space every method gives positive
*and* negative values.
A projection is a direction in pixel space (what to add to the image to raise the
activation, for backprop), not an image: ``minideconv.plots`` shows it symmetric about
zero, 0 ↦ mid-grey.

Here: the checks that name a unit (``check_layer``, ``check_channel``,
``check_position``), the choice of the unit and its seed — the one place every method
and cross-check takes them from (``strongest``, ``strongest_unit``, ``unit_positions``,
``seed``) — the way down (``project_traced``) and ``project``, which does the three in
turn.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import checks
from ..rules import get_rule
from ..nn import Network

#: what a projection's seed holds at its unit: the activation's own value a (Zeiler &
#: Fergus), or 1 (the unit's own map: Captum's ``attribute(x, target=c)``)
SEED_VALUES = ("activation", "one")

__all__ = ["SEED_VALUES", "check_layer", "check_channel", "check_position", "strongest",
           "strongest_unit", "unit_positions", "seed", "project_traced", "as_images", "project"]


# --------------------------------------------------------------------------- checks

def check_layer(net, layer: int | str) -> int:
    """``net`` must be a network, and ``layer`` one of its layers (``Network.index``: an
    index in [-n, n) or a name of ``net.names``); returns the index in [0, n)."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minideconv.nn.Sequential or nn.Graph (an "
                        f"nn.Network), got {type(net).__name__}")
    return net.index(layer)


def check_channel(shape, channel, layer_name):
    """``channel`` as an int; it must index the first axis of a layer output of ``shape``
    (without N), else a TypeError or ValueError naming ``layer_name``."""
    kind = "feature maps" if len(shape) == 3 else "outputs"
    return checks.check_index(channel, "channel", shape[0],
                              why=f"{layer_name} has {shape[0]} {kind}")


def check_position(activation, position, layer_name):
    """``position`` as (h, w) inside the feature map of ``activation`` (N, C, H, W), or
    None (each image's maximum); a TypeError or ValueError naming ``layer_name``."""
    if position is None:
        return None
    if activation.ndim == 2:
        raise ValueError(f"position must be None: {layer_name} has no spatial positions "
                         "(its output is (N, features))")
    if not (isinstance(position, (tuple, list)) and len(position) == 2
            and all(map(checks.is_int, position))):
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


def strongest_unit(activation) -> Tuple[int, ...]:
    """The unit (channel, h, w) — or (unit,) for (N, F) activations — of image 0's
    largest activation over all channels (the first in scan order: the lowest channel,
    then ``strongest``'s position in it)."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(activation[0]),
                                                 activation.shape[1:]))


def unit_positions(activation, channel, position, layer_name):
    """The unit to seed in each image of ``activation`` (N, C, H, W) or (N, F): the checked
    ``channel`` and the positions (N, 2) — ``position`` in every image, or each image's
    maximum of the feature map (``strongest``) when it is None; (0, 0) for (N, F)."""
    channel = check_channel(activation.shape[1:], channel, layer_name)
    position = check_position(activation, position, layer_name)
    if position is None:
        positions, _ = strongest(activation, channel)
    else:
        positions = np.tile(np.array(position, np.int64), (len(activation), 1))
    return channel, positions


def seed(activation, channel, positions, value="activation"):
    """The seed of a projection: ``activation`` (N, C, H, W) or (N, F) zeroed everywhere
    except A[n, channel, h_n, w_n], which holds the activation's own value (``value=
    "activation"``, so that the projection scales with it) or 1 (``"one"``; see the module
    docstring).  ``positions`` is (N, 2), one (h_n, w_n) per image, or one (h, w) for
    every image; it is ignored for (N, F)."""
    value = checks.check_choice(value, "seed_value", SEED_VALUES)
    signal = np.zeros_like(activation)
    n = np.arange(activation.shape[0])
    if activation.ndim == 2:
        unit = (n, channel)
    else:
        positions = np.broadcast_to(np.asarray(positions, np.int64).reshape(-1, 2),
                                    (len(n), 2))
        unit = (n, channel, positions[:, 0], positions[:, 1])
    signal[unit] = activation[unit] if value == "activation" else 1
    return signal


def project_traced(net, trace, layer, channel, positions, rule, seed_value="activation"):
    """Seed one activation per image (``seed``) in ``trace`` (``net.trace``, at least up to
    ``layer``) and pass it down to the input under ``rule`` (``Network.backward``)."""
    signal = seed(trace.outputs[layer], channel, positions, seed_value)
    return net.backward(signal, trace, start=layer, rule=rule)


# --------------------------------------------------------------------------- the input

def as_images(x, name="x"):
    """(N, C, H, W) float array from an array of 3 or 4 dims, a sample name or a path;
    also says whether the caller gave a single (C, H, W) image."""
    if not isinstance(x, np.ndarray):
        from ..data import load_image
        x = load_image(x)
    checks.check_float_array(x, name)
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"{name} must be an image (C, H, W) or a batch (N, C, H, W), "
                         f"got shape {x.shape}")
    return x, False


# --------------------------------------------------------------------------- projection

def project(net: Network, x, layer: int | str, channel: int,
            position: Optional[Tuple[int, int]] = None, rule: str = "deconvnet",
            seed_value: str = "activation"):
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
    seed_value : ``"activation"`` (the default, Zeiler & Fergus: the signal starts as the
        activation a) or ``"one"`` (it starts as 1: Captum's convention)

    Returns
    -------
    An array of x's shape.  With ``rule="backprop"`` it is ``a · ∂a/∂x`` (a = the chosen
    activation), or ``∂a/∂x`` with ``seed_value="one"``; the deconvnet and guided maps of
    a negative a are |a| times the map of −a (see the module docstring: scale and sign).
    """
    rule = get_rule(rule)  # resolved once here; the layers below pass it on
    checks.check_choice(seed_value, "seed_value", SEED_VALUES)
    layer = check_layer(net, layer)
    images, single = as_images(x)
    trace = net.trace(images, upto=layer)
    channel, positions = unit_positions(trace.outputs[layer], channel, position,
                                        net.describe(layer))
    result = project_traced(net, trace, layer, channel, positions, rule, seed_value)
    return result[0] if single else result
