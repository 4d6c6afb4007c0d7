"""The ONNX products and normalisations: Mul, Add with a constant, InstanceNormalization,
GroupNormalization, and the Reshape → InstanceNormalization → Reshape that PyTorch writes
for ``nn.GroupNorm``.

* Mul or Add of a per-channel constant after a BatchNorm2d read by it alone: folded into
  the batch norm (``folding.fold_into_batch_norm``: the model zoo's DenseNet-121 and
  Inception-v2 write their Caffe "Scale" layers so).
* Mul of two activations → ``nn.Mul`` (a (N, C, 1, 1) gate broadcast: squeeze-and-
  excitation; ``x * Sigmoid(x)``: SiLU); of an activation and a per-channel constant
  ((C, 1, 1), (1, C, 1, 1) or one value) → ``nn.ChannelAffine``, folded into the scale of
  the ChannelAffine / GroupNorm / ChannelLayerNorm that computed the activation when
  this Mul alone reads it; of two constants, their product.
* Add of an activation and a per-channel constant: the bias of the Conv / Gemm / MatMul
  before it (``layer_ops.add``), the shift of a ChannelAffine / GroupNorm /
  ChannelLayerNorm read by this Add alone, or else a ``ChannelAffine(1, shift)``.
* ``nn.GroupNorm(G, C)`` is exported as Reshape to (N, G, −1) → InstanceNormalization
  (scale 1 and bias 0 per group, or any per-group values) → Reshape back to (N, C, H, W)
  → Mul (γ) → Add (β): read as one ``nn.GroupNorm`` whose γ and β are the Mul's and the
  Add's.  InstanceNormalization of an (N, C, H, W) activation is GroupNorm with C groups;
  GroupNormalization (opset 18: scale and bias per group; 21: per channel) → GroupNorm.

Each translation is ``f(reader, node, attrs)`` with ``reader`` the ``reader.GraphReader``;
``OPERATIONS`` maps op_type to it.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from . import folding, layer_ops
from .values import BATCH, Activation, PendingGroups

#: the layers whose per-channel scale and shift a following Mul / Add by a constant joins
SCALED = (nn.ChannelAffine, nn.GroupNorm, nn.ChannelLayerNorm)


def per_channel(reader, node, constant, x):
    """``constant`` as one value per channel (C,) or one for all (1,), else refused: for
    an (N, C, H, W) activation ``x`` a per-channel constant is (C, 1, 1) or (1, C, 1, 1)
    ((C,) would run along W); for an (N, F) one, (F,) or (1, F)."""
    channels, rank = x.shape[0], len(x.shape)
    core = constant.shape
    while len(core) > rank and core[0] == 1:         # (1, C, 1, 1) → (C, 1, 1)
        core = core[1:]
    if constant.size == 1:
        return constant.reshape(1)
    if core == (channels,) + (1,) * (rank - 1):
        return np.ascontiguousarray(constant.reshape(channels))
    wanted = (channels,) + (1,) * (rank - 1)
    reader.fail(node, f"its constant has shape {constant.shape}, not one value per "
                      f"channel {wanted} nor a single value")


def _read_once(reader, x):
    """The layer that computed activation ``x`` when one ONNX node alone reads it."""
    layer = reader.layers.get(x.node)
    return layer if reader.readers.get(reader.tensor_of.get(x.node), 0) == 1 else None


def _operands(reader, node):
    a, b = reader.value(node, 0), reader.value(node, 1)
    if isinstance(a, Activation) and isinstance(b, np.ndarray):
        return a, b
    if isinstance(b, Activation) and isinstance(a, np.ndarray):
        return b, a
    return None, None


def _ones(values, channels):
    return np.ones(channels, values.dtype)


def _with_scale(layer, scale, channels):
    """``layer`` followed by ×scale per channel, as one layer of the same type."""
    if isinstance(layer, nn.ChannelAffine):
        shift = None if layer.shift is None else layer.shift * scale
        return nn.ChannelAffine(np.ascontiguousarray(layer.scale * scale), shift)
    weight = _ones(scale, channels) if layer.weight is None else layer.weight
    bias = None if layer.bias is None else layer.bias * scale
    return _rebuilt(layer, np.ascontiguousarray(np.broadcast_to(weight * scale,
                                                                (channels,))), bias)


def _with_shift(layer, shift, channels):
    """``layer`` followed by +shift per channel, as one layer of the same type."""
    if isinstance(layer, nn.ChannelAffine):
        total = shift if layer.shift is None else layer.shift + shift
        return nn.ChannelAffine(layer.scale, np.ascontiguousarray(total))
    total = shift if layer.bias is None else layer.bias + shift
    return _rebuilt(layer, layer.weight,
                    np.ascontiguousarray(np.broadcast_to(total, (channels,))))


def _rebuilt(layer, weight, bias):
    return type(layer).from_config(layer.config(), {"weight": weight, "bias": bias})


def mul(reader, node, attrs):
    """Mul: of two activations ``nn.Mul``; of an activation and a per-channel constant a
    ChannelAffine (or the scale of the one before it); of constants, their product."""
    a, b = reader.value(node, 0), reader.value(node, 1)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return folding.arithmetic(reader, node, attrs)      # shapes and weights, evaluated
    if isinstance(a, Activation) and isinstance(b, Activation):
        return reader.add_layer(node, nn.Mul(), [a, b])
    x, constant = _operands(reader, node)
    if x is None:
        reader.fail(node, "multiplies values that are neither activations nor constants")
    channels = x.shape[0]
    scale = per_channel(reader, node, constant, x)
    before = _read_once(reader, x)
    if isinstance(before, nn.BatchNorm2d):
        return folding.fold_into_batch_norm(reader, node, x, scale, "scale")
    if isinstance(before, SCALED):
        return reader.replace_layer(x, _with_scale(before, scale, channels), node.output[0])
    reader.add_layer(node, nn.ChannelAffine(scale), [x])


def add(reader, node, attrs):
    """Add: of an activation and a per-channel constant after a BatchNorm2d /
    ChannelAffine / GroupNorm / ChannelLayerNorm read once, its shift; after anything but
    a Conv / Gemm / MatMul, a ChannelAffine(1, shift); every other Add as
    ``layer_ops.add``."""
    x, constant = _operands(reader, node)
    before = None if x is None else _read_once(reader, x)
    if x is None or isinstance(before, (nn.Conv2d, nn.Linear)):
        return layer_ops.add(reader, node, attrs)
    channels = x.shape[0]
    shift = per_channel(reader, node, constant, x)
    if isinstance(before, nn.BatchNorm2d):
        return folding.fold_into_batch_norm(reader, node, x, shift, "shift")
    if isinstance(before, SCALED):
        return reader.replace_layer(x, _with_shift(before, shift, channels), node.output[0])
    reader.add_layer(node, nn.ChannelAffine(np.ones(1, shift.dtype), shift), [x])


# ------------------------------------------------------------ group normalisation

def _affine_per_channel(reader, node, values, what, channels, groups):
    """A GroupNormalization's / InstanceNormalization's scale or bias per channel: given
    per channel (C,), or per group (G,) and repeated over each group's channels."""
    if values is None:
        return None
    values = np.ravel(values)
    if len(values) == channels:
        return np.ascontiguousarray(values)
    if len(values) == groups:
        return np.repeat(values, channels // groups)
    reader.fail(node, f"its {what} has {len(values)} values, neither one per channel "
                      f"({channels}) nor one per group ({groups})")


def group_normalization(reader, node, attrs):
    """GroupNormalization → GroupNorm (scale and bias per group or per channel)."""
    x = reader.activation(node, 0, ndim=4)
    groups = int(attrs.get("num_groups", 0))
    channels = x.shape[0]
    if groups < 1 or channels % groups:
        reader.fail(node, f"num_groups={groups} does not divide the {channels} channels")
    weight, bias = (_affine_per_channel(reader, node, reader.constant(node, i, what), what,
                                        channels, groups)
                    for i, what in ((1, "scale"), (2, "bias")))
    reader.add_layer(node, nn.GroupNorm(groups, weight, bias,
                                        float(attrs.get("epsilon", 1e-5))), [x])


def instance_normalization(reader, node, attrs):
    """InstanceNormalization: of (N, C, H, W), GroupNorm with C groups; of the
    (N, G, −1) Reshape of GroupNorm's export, a step of that chain."""
    value = reader.value(node, 0)
    scale = reader.constant(node, 1, "scale")
    bias = reader.constant(node, 2, "B")
    eps = float(attrs.get("epsilon", 1e-5))
    if isinstance(value, PendingGroups) and value.eps is None:
        source, groups = value.source, value.groups
        channels = source.shape[0]
        weight, shift = (_affine_per_channel(reader, node, v, what, channels, groups)
                         for v, what in ((scale, "scale"), (bias, "B")))
        return reader.set_value(node, PendingGroups(source, groups, value.names +
                                                    [node.name or node.output[0]],
                                                    eps, weight, shift))
    x = reader.activation(node, 0, ndim=4)
    channels = x.shape[0]
    reader.add_layer(node, nn.GroupNorm(channels, *(
        _affine_per_channel(reader, node, v, what, channels, channels)
        for v, what in ((scale, "scale"), (bias, "B"))), eps), [x])


def _read_by_instance_norm(reader, tensor):
    """Is ``tensor`` read by InstanceNormalization nodes only (GroupNorm's export)?"""
    readers = [n for n in reader.graph.node if tensor in n.input]
    return bool(readers) and all(n.op_type == "InstanceNormalization" for n in readers)


def reshape(reader, node, attrs):
    """Reshape: of an (N, C, H, W) activation to (N, G, −1), the first step of GroupNorm's
    export; of its InstanceNormalization back to (N, C, H, W), that GroupNorm; any other
    as ``layer_ops.reshape``."""
    value = reader.value(node, 0)
    target = reader.value(node, 1)
    if not isinstance(target, np.ndarray):
        return layer_ops.reshape(reader, node, attrs)
    target = list(np.ravel(target))
    name = node.name or node.output[0]
    if isinstance(value, Activation) and len(value.shape) == 3 and len(target) == 3 and \
            _read_by_instance_norm(reader, node.output[0]) and \
            (target[0] is BATCH or target[0] in (0, -1) or target[0] > 0) and \
            target[2] is not BATCH and target[2] == -1 and target[1] is not BATCH and \
            target[1] > 0 and value.shape[0] % target[1] == 0:
        return reader.set_value(node, PendingGroups(value, int(target[1]), [name]))
    if isinstance(value, PendingGroups):
        if value.eps is None or len(target) != 4 or \
                [v for v in target[1:]] != list(value.source.shape):
            reader.fail(node, f"reshapes the (N, {value.groups}, -1) grouping of "
                              f"{value.names[0]!r} to {target}; minideconv reads it only "
                              f"as Reshape → InstanceNormalization → Reshape back to "
                              f"(N, {', '.join(map(str, value.source.shape))}) (GroupNorm)")
        layer = nn.GroupNorm(value.groups, value.weight, value.bias, value.eps)
        return reader.add_layer(node, layer, [value.source])
    return layer_ops.reshape(reader, node, attrs)


OPERATIONS = {"Mul": mul, "Add": add, "GroupNormalization": group_normalization,
              "InstanceNormalization": instance_normalization, "Reshape": reshape}
