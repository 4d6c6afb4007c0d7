"""The ONNX operations of the model zoo's classifiers beyond plain CNN layers: Sum, LRN,
the trailing Softmax and ShuffleNet's channel shuffle.

* ``Sum`` of activations → ``nn.Add`` (any number of them); of constants, their sum;
* ``LRN`` → ``nn.LocalResponseNorm`` with ONNX's window: (size − 1) // 2 channels
  before c (torch puts size // 2 there; they differ for an even size);
* ``Softmax`` over the channels → ``nn.Softmax``.  Before opset 13 ONNX's Softmax(axis)
  flattens the input to (∏ dims before axis, ∏ dims from axis) and normalises each row,
  so axis 1 of (N, C, H, W) normalises over C·H·W values: the channels only when
  H = W = 1.  From opset 13 it normalises along the one axis;
* the channel shuffle ``Reshape (N, g, C/g, H, W) → Transpose(perm 0,2,1,3,4) → Reshape
  (N, C, H, W)`` → ``nn.ChannelShuffle(g)``: each step is a pending ``PendingShuffle``
  until the last; any other 5-D reshape, or a step read by anything else, is refused.

Each translation is ``f(reader, node, attrs)`` with ``reader`` the
``reader.GraphReader``; ``OPERATIONS`` maps op_type to it.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from .values import BATCH, Activation, PendingShuffle

#: the Transpose of a channel shuffle: the group axis and the channel-in-group axis swap
SWAP_GROUPS = [0, 2, 1, 3, 4]


def sum_values(reader, node, attrs):
    """Sum: of constants, their sum; of activations, ``nn.Add``."""
    values = [reader.value(node, i) for i in range(len(node.input))]
    if all(isinstance(v, np.ndarray) for v in values):
        return reader.set_value(node, sum(values[1:], values[0]))
    xs = [reader.activation(node, i) for i in range(len(node.input))]
    if len(xs) == 1:
        return reader.add_layer(node, nn.Identity(), xs)
    reader.add_layer(node, nn.Add(), xs)


def local_response_norm(reader, node, attrs):
    """LRN → LocalResponseNorm(size, alpha, beta, k=bias), ONNX's window."""
    x = reader.activation(node, 0, ndim=4)
    size = int(attrs["size"])
    layer = nn.LocalResponseNorm(size, float(attrs.get("alpha", 1e-4)),
                                 float(attrs.get("beta", 0.75)),
                                 float(attrs.get("bias", 1.0)), before=(size - 1) // 2)
    reader.add_layer(node, layer, [x])


def softmax(reader, node, attrs):
    """Softmax over the channels (the features of (N, F)) → Softmax."""
    x = reader.activation(node)
    rank = len(x.shape) + 1
    if reader.opset < 13:
        axis = attrs.get("axis", 1)
        axis = axis + rank if axis < 0 else axis
        over_channels = axis == 1 and all(v == 1 for v in x.shape[1:])
        why = (f"(opset {reader.opset}: over the values of axes {axis}… of "
               f"(N, {', '.join(map(str, x.shape))}) together)")
    else:
        axis = attrs.get("axis", -1)
        axis = axis + rank if axis < 0 else axis
        over_channels = axis == 1
        why = f"(opset {reader.opset}: along axis {axis})"
    if not over_channels:
        reader.fail(node, f"normalises {why}; minideconv's Softmax normalises over the "
                          f"channels (axis 1) at each position")
    reader.add_layer(node, nn.Softmax(1), [x])


# ------------------------------------------------------------ the channel shuffle

def _is_batch(value):
    """A reshape target's first entry that keeps the batch: N itself, 0 (copy), −1 (the
    rest fixed) or the batch size the exporter wrote in (as a flatten's, ``layer_ops``)."""
    return value is BATCH or int(value) >= -1


def reshape_step(reader, node, data, target):
    """A step of the channel shuffle's chain, when ``data`` / ``target`` are one:
    returns True once it is read (pending, or the ``ChannelShuffle`` layer)."""
    target = list(np.ravel(target))
    if isinstance(data, Activation) and len(data.shape) == 3 and len(target) == 5:
        channels, height, width = data.shape
        groups, per_group = target[1], target[2]
        if per_group == -1 and groups is not BATCH and groups > 0 and \
                channels % groups == 0:
            per_group = channels // groups          # (N, g, −1, H, W)
        if _is_batch(target[0]) and BATCH not in target[1:] and groups > 0 and \
                list(target[3:]) == [height, width] and groups * per_group == channels:
            reader.set_value(node, PendingShuffle("grouped", data, int(groups),
                                                  [node.name or node.output[0]]))
            return True
        reader.fail(node, f"reshapes (N, {channels}, {height}, {width}) to {target}; "
                          f"a 5-D reshape is read only as the (N, g, C/g, H, W) of a "
                          f"channel shuffle")
    if isinstance(data, PendingShuffle):
        source = data.source
        wanted = list(source.shape)
        if data.stage != "swapped" or len(target) != 4 or not _is_batch(target[0]) or \
                [int(v) if v is not BATCH else v for v in target[1:]] not in \
                (wanted, [-1] + wanted[1:]):
            reader.fail(node, f"reshapes a step of the channel shuffle "
                              f"{' → '.join(data.names)} to {target}; minideconv reads "
                              f"Reshape (N, g, C/g, H, W) → Transpose(perm "
                              f"{SWAP_GROUPS}) → Reshape (N, C, H, W) only")
        reader.add_layer(node, nn.ChannelShuffle(data.groups), [source])
        return True
    return False


def transpose_step(reader, node, value, perm):
    """Transpose(perm 0,2,1,3,4) of the grouped step of a channel shuffle."""
    if value.stage != "grouped" or list(perm) != SWAP_GROUPS:
        reader.fail(node, f"perm={list(perm)} of {' → '.join(value.names)}; a channel "
                          f"shuffle is Reshape (N, g, C/g, H, W) → Transpose(perm "
                          f"{SWAP_GROUPS}) → Reshape (N, C, H, W)")
    reader.set_value(node, PendingShuffle("swapped", value.source, value.groups,
                                          value.names + [node.name or node.output[0]]))


OPERATIONS = {"Sum": sum_values, "LRN": local_response_norm, "Softmax": softmax}
