"""Constant folding: the ONNX arithmetic on constants that is evaluated while the graph
is read, and a per-channel scale or shift folded into the batch norm before it.

* ``ConstantOfShape(shape)`` — a tensor of that shape filled with ``value`` (0 by
  default): how the model zoo's "light" files write their weights;
* ``Mul``, ``Sub``, ``Div`` of constants — evaluated with NumPy's broadcasting (``Add``,
  ``Concat``, ``Reshape``, ``Gather``, ``Unsqueeze``, ``Cast`` and ``Shape`` are in
  ``layer_ops`` and ``shape_ops``);
* ``BatchNormalization → Mul(m) → Add(a)`` with m, a one value per channel (DenseNet-121
  and Inception-v2 of the zoo write their BN's γ and β so): y = m (s x + t) + a is again
  a batch norm, with γ′ = m γ, β′ = m β (the Mul) and β′ = β + a (the Add) — provided the
  batch norm's output is read by that Mul / Add alone.

Each translation is ``f(reader, node, attrs)`` with ``reader`` the
``reader.GraphReader``; ``OPERATIONS`` maps op_type to it.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from .values import BATCH

#: how ONNX writes each arithmetic operation on constants
ARITHMETIC = {"Mul": np.multiply, "Sub": np.subtract, "Div": np.divide}


def constant_of_shape(reader, node, attrs):
    """ConstantOfShape: an array of the constant ``shape`` filled with ``value``."""
    shape = reader.constant(node, 0, "shape")
    if shape is None or shape.dtype == object:
        reader.fail(node, "needs a constant shape (a shape holding the batch size makes "
                          "a tensor of the batch's size, which minideconv does not read)")
    value = attrs.get("value", np.zeros(1, np.float32))
    reader.set_value(node, np.full([int(v) for v in np.ravel(shape)],
                                   np.ravel(value)[0], dtype=value.dtype))


def arithmetic(reader, node, attrs):
    """Mul / Sub / Div of constants, evaluated (a Mul of an activation is
    ``product_ops.mul``'s); Sub or Div of an activation is refused."""
    a, b = (_without_marker(reader, node, reader.value(node, i)) for i in (0, 1))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        result = ARITHMETIC[node.op_type](a, b)
        if node.op_type == "Div" and np.issubdtype(a.dtype, np.integer):
            result = np.trunc(result).astype(a.dtype)      # ONNX's integer division
        return reader.set_value(node, result.astype(np.result_type(a, b), copy=False))
    reader.fail(node, f"{node.op_type} of an activation: minideconv evaluates "
                      f"{node.op_type} of constants only")


def _without_marker(reader, node, value):
    """``value``, a shape taken off an activation as plain int64 when it does not hold
    the batch size (``Shape(x)[1]``: C); one that does is refused."""
    if not isinstance(value, np.ndarray) or value.dtype != object:
        return value
    if any(v is BATCH for v in value.ravel()):
        reader.fail(node, "computes with the batch size (a shape taken off the images); "
                          "minideconv evaluates shapes of known sizes only")
    return value.astype(np.int64)


def fold_into_batch_norm(reader, node, x, value, part):
    """x · m (``part="scale"``) or x + a (``"shift"``), x the output of a BatchNorm2d read
    by ``node`` alone and ``value`` m or a, one per channel or one for all
    (``product_ops.per_channel``): the same batch norm with γ′ = m γ, β′ = m β, or
    β′ = β + a."""
    layer = reader.layers[x.node]
    dtype = layer.running_mean.dtype
    value = np.broadcast_to(value, (layer.channels,)).astype(dtype)
    weight = np.ones(layer.channels, dtype) if layer.weight is None else layer.weight
    bias = np.zeros(layer.channels, dtype) if layer.bias is None else layer.bias
    if part == "scale":
        weight, bias = weight * value, bias * value
    else:
        bias = bias + value
    new = nn.BatchNorm2d(weight, bias, layer.running_mean, layer.running_var, eps=layer.eps)
    reader.replace_layer(x, new, node.output[0])    # the folded value is the node's


#: (Mul is ``product_ops.mul``, which calls ``arithmetic`` for two constants)
OPERATIONS = {"ConstantOfShape": constant_of_shape, "Sub": arithmetic, "Div": arithmetic}
