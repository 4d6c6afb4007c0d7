"""The ONNX operations evaluated on constants while the graph is read: no layers.

``Constant``, ``Shape``, ``Gather``, ``Unsqueeze``, ``Squeeze`` and ``Cast`` compute
constants — mostly the target shape of a ``Reshape`` from the activation's own shape,
the ``Shape → Gather → Unsqueeze → Concat`` chain PyTorch writes for
``x.view(x.size(0), -1)``.  A shape read off an activation holds ``BATCH`` for its batch
size.  (Identity, Add, Concat, Reshape and Transpose of constants are evaluated too, by
their translations in ``layer_ops`` / ``mean_ops``.)

Each translation is ``f(reader, node, attrs)`` with ``reader`` the
``reader.GraphReader``; ``OPERATIONS`` maps op_type to it.
"""

from __future__ import annotations

import numpy as np

from .values import BATCH, Activation, import_onnx


def constant(reader, node, attrs):
    """Constant: its value (``value``, ``value_float(s)``, ``value_int(s)``)."""
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = np.array(attrs[key])
            if key == "value_float" or key == "value_floats":
                value = value.astype(np.float32)
            elif key != "value":
                value = value.astype(np.int64)
            return reader.set_value(node, value)
    reader.fail(node, f"has none of the value attributes minideconv reads "
                      f"({sorted(attrs)})")


def shape(reader, node, attrs):
    """Shape: of a constant, or of an activation (batch size ``BATCH``)."""
    value = reader.value(node, 0)
    if isinstance(value, Activation):
        dims = np.array((BATCH,) + value.shape, dtype=object)
    elif isinstance(value, np.ndarray):
        dims = np.array(value.shape, dtype=np.int64)
    else:
        reader.fail(node, "reads a value whose shape is not known here")
    start, end = attrs.get("start", 0), attrs.get("end", None)
    reader.set_value(node, dims[start:end])


def gather(reader, node, attrs):
    """Gather of constants: ``np.take``."""
    data = reader.constant(node, 0, "data")
    indices = reader.constant(node, 1, "indices")
    reader.set_value(node, np.take(data, indices.astype(np.int64),
                                   axis=attrs.get("axis", 0)))


def unsqueeze(reader, node, attrs):
    """Unsqueeze of a constant: new axes of length 1."""
    data = reader.constant(node, 0, "data")
    axes = reader.axes(node, attrs, 1)
    rank = data.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        data = np.expand_dims(data, axis)
    reader.set_value(node, data)


def squeeze(reader, node, attrs):
    """Squeeze of a constant: axes of length 1 dropped."""
    data = reader.constant(node, 0, "data")
    axes = reader.axes(node, attrs, 1)
    reader.set_value(node, np.squeeze(data, axis=None if axes is None else tuple(axes)))


def cast(reader, node, attrs):
    """Cast of a constant to the dtype ``to`` (a shape holding ``BATCH`` as it is)."""
    data = reader.constant(node, 0, "data")
    if data.dtype == object:                # a shape holding the batch marker
        return reader.set_value(node, data)
    dtype = import_onnx().helper.tensor_dtype_to_np_dtype(attrs["to"])
    reader.set_value(node, data.astype(dtype))


OPERATIONS = {"Constant": constant, "Shape": shape, "Gather": gather,
              "Unsqueeze": unsqueeze, "Squeeze": squeeze, "Cast": cast}
