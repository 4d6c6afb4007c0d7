"""The NHWC (channels-last) layout that tf2onnx writes for Keras / TensorFlow models.

A Keras model takes images (N, H, W, C).  tf2onnx keeps that input and, so that Conv runs
in ONNX's (N, C, H, W), writes::

    input (N, H, W, C) → Transpose(perm 0,3,1,2) → Conv → … → MaxPool            (N, C, H, W)
        → Transpose(perm 0,2,3,1) → Reshape / Flatten to (N, −1) → Gemm or MatMul (+ Add)

The Transpose back to channels-last makes the flattened features come in Keras's order
(h, w, c) for the dense layer.  Here:

* the input's Transpose disappears: the minideconv graph takes (N, C, H, W) images, of
  the transposed shape.  ``input_layout(model)`` says ``"NHWC"`` for such a file, and the
  cross-check transposes its images to (N, H, W, C) before feeding onnxruntime
  (``images_for_model``);
* the Transpose back and the flatten become one minideconv ``Flatten`` of the (C, H, W)
  activation, and the dense layer's weight columns are permuted from (h, w, c) order to
  (c, h, w) order (``weight_columns_to_chw``): the same logits, no new layer type.  The
  Flatten computes no ONNX tensor of its own (its features are in the other order), so
  the cross-check skips it;
* a Transpose(perm 0,3,1,2) right after a Transpose(perm 0,2,3,1) undoes it.

Any other Transpose of an activation (besides the gather chain of ``mean_ops`` and the
channel shuffle of ``structure_ops``), or
a channels-last value read by anything but a flatten into a dense layer, is refused with
``reader.fail``.

Each translation is ``f(reader, node, attrs)`` with ``reader`` the
``reader.GraphReader``; ``OPERATIONS`` maps op_type to it.
"""

from __future__ import annotations

import numpy as np

from . import mean_ops, structure_ops
from .values import (Activation, ChannelsLast, FlatChannelsLast, PendingPool,
                     PendingShuffle, attributes)

#: Transpose perms of a 4-D tensor: channels-last to channels-first, and back
TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]

#: what the refusals say is read
READ = ("minideconv reads a Transpose of an activation only as the NHWC → NCHW "
        "Transpose(perm [0, 3, 1, 2]) of the network's input, as the NCHW → NHWC "
        "Transpose(perm [0, 2, 3, 1]) before a Flatten / Reshape to (N, -1) that feeds "
        "a Gemm or MatMul, as the same Transpose before position-wise operations "
        "(LayerNormalization over the channels, MatMul, element-wise ones) closed by a "
        "Transpose(perm [0, 3, 1, 2]), inside the Transpose → GatherND → Transpose → "
        "ReduceMean chain of an adaptive average pool, or as the Transpose(perm "
        "[0, 2, 1, 3, 4]) of a channel shuffle")


def input_layout(model) -> str:
    """``"NHWC"`` when the images input of the ``onnx.ModelProto`` ``model`` is read only
    by Transpose(perm [0, 3, 1, 2]) nodes (tf2onnx's channels-last input), else
    ``"NCHW"``."""
    graph = model.graph
    constants = {tensor.name for tensor in graph.initializer}
    inputs = [v.name for v in graph.input if v.name not in constants]
    if len(inputs) != 1:
        return "NCHW"             # the reader refuses such a graph with its own error
    readers = [node for node in graph.node if inputs[0] in node.input]
    if readers and all(node.op_type == "Transpose" and
                       list(attributes(node).get("perm", [])) == TO_NCHW
                       for node in readers):
        return "NHWC"
    return "NCHW"


def images_for_model(model, x):
    """The images ``x`` (N, C, H, W), as minideconv takes them, in the layout of the
    ``onnx.ModelProto`` ``model``'s input: transposed to (N, H, W, C) for an NHWC one."""
    x = np.asarray(x)
    if input_layout(model) == "NHWC":
        return np.ascontiguousarray(np.transpose(x, TO_NHWC))
    return x


def weight_columns_to_chw(weight, chw):
    """A dense weight (out, H·W·C) whose columns follow channels-last features (h, w, c)
    as the same weight (out, C·H·W) for minideconv's flatten of (C, H, W)."""
    c, h, w = chw
    out = weight.shape[0]
    return np.ascontiguousarray(weight.reshape(out, h, w, c).transpose(0, 3, 1, 2)
                                .reshape(out, c * h * w))


def _name(node):
    return node.name or node.output[0]


def transpose(reader, node, attrs):
    """Transpose: the input's NHWC → NCHW (gone), NCHW → NHWC before a flatten (pending),
    one undoing the other; the gather chain's and a constant's are
    ``mean_ops.transpose``; any other is refused."""
    value = reader.value(node, 0)
    perm = list(attrs.get("perm", []))
    if perm == TO_NCHW and isinstance(value, Activation) and value.node is None \
            and reader.layout == "NHWC":
        return reader.set_value(node, value)        # the images come in NCHW already
    if perm == TO_NCHW and isinstance(value, ChannelsLast):
        return reader.set_value(node, value.source)  # back where it was
    if perm == TO_NHWC and isinstance(value, Activation) and len(value.shape) == 3:
        return reader.set_value(node, ChannelsLast(value, [_name(node)]))
    if isinstance(value, PendingShuffle):
        return structure_ops.transpose_step(reader, node, value, perm)
    if isinstance(value, (np.ndarray, PendingPool)) or \
            (isinstance(value, Activation) and perm == [2, 3, 0, 1]):
        return mean_ops.transpose(reader, node, attrs)
    if perm == TO_NCHW and isinstance(value, Activation) and value.node is None:
        reader.fail(node, f"perm={perm} of the network's input, which other nodes read "
                          f"too: an NHWC input must be read by such Transposes only")
    reader.fail(node, f"perm={perm}: {READ}")


def flat_input(reader, node):
    """The input of a Flatten / Reshape: ``(activation, ChannelsLast or None)``; a
    channels-last value is read as the (C, H, W) activation it came from."""
    value = reader.value(node, 0)
    if isinstance(value, ChannelsLast):
        return value.source, value
    return reader.activation(node), None


def add_flatten(reader, node, layer, x, channels_last):
    """Add the Flatten ``layer`` of ``x``; after a channels-last Transpose its output is
    the pending ``FlatChannelsLast`` that a Gemm / MatMul reads, and it has no ONNX
    tensor of its own."""
    flat = reader.add_layer(node, layer, [x])
    if channels_last is not None:
        reader.tensor_of[flat.node] = None          # (h, w, c) there, (c, h, w) here
        reader.set_value(node, FlatChannelsLast(flat, x.shape,
                                                channels_last.names + [_name(node)]))
    return flat


def dense_input(reader, node):
    """The input of a Gemm / MatMul: ``(activation (N, F), (C, H, W) or None)``; the
    shape is given when the features come flattened from channels-last and the weight's
    columns must be permuted with ``weight_columns_to_chw``."""
    value = reader.value(node, 0)
    if isinstance(value, FlatChannelsLast):
        return value.flat, value.chw
    return reader.activation(node, 0, ndim=2), None


def check_columns(reader, node, weight, chw):
    """``weight`` (out, in) with its columns in (c, h, w) order when ``chw`` is given."""
    if chw is None:
        return weight
    if weight.ndim != 2 or weight.shape[1] != int(np.prod(chw)):
        reader.fail(node, f"its weight {weight.shape} does not take the "
                          f"{int(np.prod(chw))} flattened features (H, W, C) = "
                          f"{(chw[1], chw[2], chw[0])}")
    return weight_columns_to_chw(weight, chw)


def refusal(value, as_output=False):
    """Why an operation may not read the pending channels-last ``value`` — or, with
    ``as_output``, why it cannot be the network's output, naming the Transpose as
    ``reader.fail`` names a node.  None when ``value`` is not channels-last."""
    if not isinstance(value, (ChannelsLast, FlatChannelsLast)):
        return None
    flat = isinstance(value, FlatChannelsLast)
    dense_only = "minideconv reads them only in a Gemm or MatMul"
    if as_output:
        gives = (f"and {value.names[-1]!r} give the network's output as channels-last "
                 f"features; {dense_only}" if flat else f"gives the network's output; {READ}")
        return f"ONNX node {value.names[0]!r} (Transpose): perm=[0, 2, 3, 1] {gives}"
    if flat:
        return (f"reads the channels-last features of {' → '.join(value.names)}; "
                f"{dense_only} (the dense layer whose weight columns it reorders)")
    return (f"reads the output of the NCHW → NHWC Transpose {value.names[0]!r} "
            f"(perm [0, 2, 3, 1]); {READ}")


OPERATIONS = {"Transpose": transpose}
