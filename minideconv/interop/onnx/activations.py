"""The ONNX activations beside Relu, each one layer of ``minideconv.nn.activations``.

=================================  ====================================================
ONNX                               minideconv
=================================  ====================================================
Clip(0, m)                         ClippedReLU(m) — min/max as inputs (opset ≥ 11) or
                                   attributes (opset 6); Clip(0) alone: ReLU; any other
                                   min is refused (not a rectifier of the rule table)
LeakyRelu(alpha)                   LeakyReLU(alpha)
PRelu(x, slope)                    PReLU: slope a constant of shape (C, 1, 1),
                                   (1, C, 1, 1), (1,) or () ((C,) on an (N, C) input)
Sigmoid, Tanh                      Sigmoid, Tanh
Elu(alpha)                         ELU(alpha)
HardSigmoid(alpha, beta)           Hardsigmoid(alpha, beta) (ONNX's defaults 0.2, 0.5;
                                   torch exports 1/6, 0.5)
HardSwish                          Hardswish
Gelu(approximate) (opset 20)       GELU("none" or "tanh")
=================================  ====================================================

PyTorch exports SiLU as Sigmoid then Mul(x, sigmoid(x)): the product of two activations,
which is not one of these.
"""

from __future__ import annotations

import numpy as np

from ... import nn

#: a Clip bound this large is no bound (opset 6's defaults are ±FLT_MAX)
NO_BOUND = 3.0e38


def _bound(reader, node, attrs, index, name):
    """Clip's ``name`` bound: its constant input ``index`` (opset ≥ 11) or attribute
    (opset 6); None when absent or beyond ``NO_BOUND``."""
    value = reader.constant(node, index, name) if index < len(node.input) else None
    if value is None:
        value = attrs.get(name)
    if value is None:
        return None
    value = float(np.asarray(value).reshape(()))
    return None if abs(value) >= NO_BOUND else value


def clip(reader, node, attrs):
    """Clip(0, m) → ClippedReLU(m); Clip(0) → ReLU."""
    x = reader.activation(node)
    low, high = _bound(reader, node, attrs, 1, "min"), _bound(reader, node, attrs, 2, "max")
    if low != 0.0:
        reader.fail(node, f"Clip with min={low} is not a rectifier of the rule table "
                          f"(min must be 0: Clip(0, m) is a clipped ReLU)")
    if high is not None and not high > 0:
        reader.fail(node, f"Clip with max={high} must have max > 0")
    reader.add_layer(node, nn.ReLU() if high is None else nn.ClippedReLU(high), [x])


def leaky_relu(reader, node, attrs):
    """LeakyRelu → LeakyReLU(alpha)."""
    reader.add_layer(node, nn.LeakyReLU(float(attrs.get("alpha", 0.01))),
                     [reader.activation(node)])


def prelu(reader, node, attrs):
    """PRelu → PReLU: one slope, or one per channel broadcast along axis 1."""
    x = reader.activation(node)
    slope = reader.constant(node, 1, "slope")
    if slope is None:
        reader.fail(node, "needs its slope")
    channels = x.shape[0]
    per_channel = [(channels, 1, 1), (1, channels, 1, 1)] if len(x.shape) == 3 else \
        [(channels,), (1, channels)]
    if slope.size == 1:
        weight = slope.reshape(1)
    elif slope.shape in per_channel:
        weight = slope.reshape(channels)
    else:
        reader.fail(node, f"slope of shape {slope.shape} does not give one slope per "
                          f"channel of an input (N, {', '.join(map(str, x.shape))}): "
                          f"expected {' or '.join(map(str, per_channel))}, (1,) or ()")
    reader.add_layer(node, nn.PReLU(np.ascontiguousarray(weight)), [x])


def elu(reader, node, attrs):
    """Elu → ELU(alpha)."""
    reader.add_layer(node, nn.ELU(float(attrs.get("alpha", 1.0))), [reader.activation(node)])


def hard_sigmoid(reader, node, attrs):
    """HardSigmoid → Hardsigmoid(alpha, beta): max(0, min(1, alpha·x + beta))."""
    alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    if not alpha > 0:
        reader.fail(node, f"alpha={alpha} must be > 0")
    reader.add_layer(node, nn.Hardsigmoid(alpha, beta), [reader.activation(node)])


def gelu(reader, node, attrs):
    """Gelu (opset 20) → GELU(approximate)."""
    approximate = attrs.get("approximate", "none")
    if approximate not in nn.activations.GELU_APPROXIMATIONS:
        reader.fail(node, f"approximate={approximate!r} is not 'none' or 'tanh'")
    reader.add_layer(node, nn.GELU(approximate), [reader.activation(node)])


def _plain(layer_type):
    """The translation of an operation without attributes into ``layer_type()``."""
    def translate(reader, node, attrs):
        reader.add_layer(node, layer_type(), [reader.activation(node)])
    translate.__doc__ = f"{layer_type.__name__}, no attributes."
    return translate


OPERATIONS = {"Clip": clip, "LeakyRelu": leaky_relu, "PRelu": prelu, "Elu": elu,
              "HardSigmoid": hard_sigmoid, "Gelu": gelu, "Sigmoid": _plain(nn.Sigmoid),
              "Tanh": _plain(nn.Tanh), "HardSwish": _plain(nn.Hardswish)}
