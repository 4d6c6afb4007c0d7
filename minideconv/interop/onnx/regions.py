"""Channels-last regions in ONNX: Transpose(perm 0,2,3,1) … Transpose(perm 0,3,1,2) around
position-wise operations, read as NCHW layers with the Transposes dropped.

PyTorch exports ConvNeXt's block and its LayerNorm2d as::

    Conv → Transpose(0,2,3,1) → LayerNormalization(axis −1) → MatMul → Add → Relu/Gelu
         → MatMul → Add → Transpose(0,3,1,2)

``layouts`` reads the first Transpose as a pending ``ChannelsLast`` value of an NCHW
activation, and the second as that activation again.  Between them, here:

* LayerNormalization over the last axis → ``nn.ChannelLayerNorm``;
* MatMul by a constant (C_in, C_out) → a 1×1 ``nn.Conv2d`` (the Add after it its bias);
* an element-wise operation (``ELEMENT_WISE``: Relu, Add, Mul, … — whichever the reader
  has) → its own translation, run on the NCHW activations, a constant that broadcasts
  over (N, H, W, C) transposed to broadcast over (N, C, H, W) ((C,) → (1, C, 1, 1)).

The result is again channels-last, with no ONNX tensor of its own for the cross-check
(onnxruntime's is the (N, H, W, C) permutation of it).  Joining a channels-last value with
an NCHW one is refused; anything else reading one is refused by ``layouts``.

The dynamo exporter writes a permute of ConvNeXt's pooled (N, C, 1, 1) as an
``as_strided``: Reshape to [−1] (the batch flattened too) → Gather by the indices 0, 1, 2, …
in the shape (N, C, 1, 1) — every value back where it was.  That pair is read as the
activation itself; a Gather by any other indices is refused.

``position_wise(operations)`` returns the table of translations with these wrapped in.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from .layouts import TO_NCHW
from .values import Activation, ChannelsLast, FlatBatch

#: the element-wise operations whose translations read channels-last values too
ELEMENT_WISE = ("Relu", "Add", "Mul", "Sub", "Div", "Dropout", "Identity", "Sigmoid",
                "Tanh", "Erf", "Gelu", "LeakyRelu", "PRelu", "Clip", "Elu", "HardSigmoid",
                "HardSwish", "Softplus", "Selu", "Celu", "Mish")


def _regions_of(reader, node):
    """The channels-last inputs of ``node`` (their ``ChannelsLast`` values), after
    checking that no input is an NCHW activation beside them."""
    values = [reader.values.get(name) for name in node.input if name]
    inside = [v for v in values if isinstance(v, ChannelsLast)]
    if inside and any(isinstance(v, Activation) for v in values):
        reader.fail(node, f"joins the channels-last value of the Transpose "
                          f"{inside[0].names[0]!r} with an (N, C, H, W) activation")
    return inside


def _as_channels_first(value):
    """A constant that broadcasts over (N, H, W, C), as one that broadcasts over
    (N, C, H, W) (a single value as it is); a channels-last value as its activation."""
    if isinstance(value, ChannelsLast):
        return value.source
    if isinstance(value, np.ndarray) and value.size > 1 and 1 <= value.ndim <= 4:
        return np.transpose(value.reshape((1,) * (4 - value.ndim) + value.shape), TO_NCHW)
    return value


def _channels_last_result(reader, node, region):
    """The node's output, computed as an NCHW activation, marked channels-last again."""
    out = reader.values.get(node.output[0])
    if isinstance(out, Activation):
        reader.channels_last.add(out.node)      # onnxruntime's is its permutation
        reader.set_value(node, ChannelsLast(out, region.names))


def _element_wise(translate):
    def read(reader, node, attrs):
        inside = _regions_of(reader, node)
        if not inside:
            return translate(reader, node, attrs)
        saved = {name: reader.values[name] for name in node.input if name in reader.values}
        try:
            for name, value in saved.items():
                reader.values[name] = _as_channels_first(value)
            translate(reader, node, attrs)
        finally:
            for name, value in saved.items():
                if name not in node.output:
                    reader.values[name] = value
        _channels_last_result(reader, node, inside[0])
    read.__doc__ = translate.__doc__
    return read


def _mat_mul(translate):
    def read(reader, node, attrs):
        inside = _regions_of(reader, node)
        if not inside:
            return translate(reader, node, attrs)
        b = reader.constant(node, 1, "B")
        x = inside[0].source
        if b is None or b.ndim != 2 or b.shape[0] != x.shape[0]:
            reader.fail(node, f"multiplies the channels-last value of "
                              f"{inside[0].names[0]!r} ({x.shape[0]} channels) by "
                              f"{None if b is None else b.shape}; minideconv reads a "
                              f"constant (C_in, C_out) there (a Linear on the channels)")
        weight = np.ascontiguousarray(b.T)[:, :, None, None]
        reader.add_layer(node, nn.Conv2d(weight), [x])
        _channels_last_result(reader, node, inside[0])
    read.__doc__ = translate.__doc__
    return read


def layer_normalization(reader, node, attrs):
    """LayerNormalization over the last axis of a channels-last value → ChannelLayerNorm."""
    inside = _regions_of(reader, node)
    axis = int(attrs.get("axis", -1))
    if not inside or axis not in (-1, 3):
        reader.fail(node, f"normalises over the axes from {axis} on; minideconv reads a "
                          f"LayerNormalization over the last axis (the channels) of a "
                          f"Transpose(perm [0, 2, 3, 1]) only")
    reader.only_first_output_used(node)          # Mean and InvStdDev unread
    x = inside[0].source
    scale = reader.constant(node, 1, "Scale")
    bias = reader.constant(node, 2, "B")
    for what, value in (("Scale", scale), ("B", bias)):
        if value is not None and value.size != x.shape[0]:
            reader.fail(node, f"its {what} has shape {value.shape}, not one value per "
                              f"channel ({x.shape[0]},)")
    layer = nn.ChannelLayerNorm(None if scale is None else scale.reshape(-1),
                                None if bias is None else bias.reshape(-1),
                                eps=float(attrs.get("epsilon", 1e-5)))
    reader.add_layer(node, layer, [x])
    _channels_last_result(reader, node, inside[0])


# ------------------------------------------------------------ as_strided of an identity

def _read_by_gathers(reader, tensor):
    readers = [n for n in reader.graph.node if tensor in n.input]
    return bool(readers) and all(n.op_type == "Gather" for n in readers)


def _flat_batch_reshape(translate):
    """Reshape of an activation to [−1], read by Gathers only: pending (``FlatBatch``)."""
    def read(reader, node, attrs):
        value, target = reader.value(node, 0), reader.value(node, 1)
        if isinstance(value, Activation) and isinstance(target, np.ndarray) and \
                target.dtype != object and list(np.ravel(target)) == [-1] and \
                _read_by_gathers(reader, node.output[0]):
            return reader.set_value(node, FlatBatch(value, [node.name or node.output[0]]))
        return translate(reader, node, attrs)
    read.__doc__ = translate.__doc__
    return read


def _identity_gather(translate):
    """Gather of a ``FlatBatch`` by indices (n, *shape) = 0, 1, 2, … — each value back in
    its place (the dynamo exporter's ``as_strided`` of ConvNeXt's head): the activation."""
    def read(reader, node, attrs):
        value = reader.value(node, 0)
        if not isinstance(value, FlatBatch):
            return translate(reader, node, attrs)
        indices = reader.constant(node, 1, "indices")
        shape = value.source.shape
        if attrs.get("axis", 0) != 0 or indices is None or indices.ndim != len(shape) + 1 \
                or tuple(indices.shape[1:]) != shape or \
                not np.array_equal(indices, np.arange(indices.size).reshape(indices.shape)):
            reader.fail(node, f"gathers from {value.names[0]!r}, the activation flattened "
                              f"batch and all, by indices that do not put every value back "
                              f"in place; minideconv reads only that (an as_strided of an "
                              f"identity)")
        reader.set_value(node, value.source)
    read.__doc__ = translate.__doc__
    return read


def position_wise(operations):
    """``operations`` (op_type → translation) with the element-wise ones and MatMul
    reading channels-last values too, LayerNormalization added, and the Reshape(−1) →
    Gather that puts an activation back in place read as that activation."""
    table = dict(operations)
    for op_type in ELEMENT_WISE:
        if op_type in table:
            table[op_type] = _element_wise(table[op_type])
    table["MatMul"] = _mat_mul(table["MatMul"])
    table["LayerNormalization"] = layer_normalization
    table["Reshape"] = _flat_batch_reshape(table["Reshape"])
    table["Gather"] = _identity_gather(table["Gather"])
    return table
