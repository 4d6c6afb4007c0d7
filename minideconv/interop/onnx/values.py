"""What an ONNX tensor is while ``from_onnx`` reads the graph, and the onnx package.

Reading walks the ONNX nodes in order and keeps, for each tensor name, one of:

* a NumPy array — a constant (an initializer, a ``Constant`` node, or a shape computed
  from them); a shape read off an activation holds the marker ``BATCH`` for its batch size;
* an ``Activation`` — a value that depends on the images: the output of a minideconv node;
* a ``PendingPool`` — a step of the Transpose → GatherND → Transpose → ReduceMean chain
  that PyTorch writes for an adaptive average pool, not yet a layer;
* a ``PendingShuffle`` — a step of the Reshape → Transpose → Reshape chain of a channel
  shuffle, not yet a layer;
* a ``ChannelsLast`` / ``FlatChannelsLast`` — an activation transposed to (N, H, W, C),
  then flattened, on its way into a dense layer (``layouts``), not yet a layer;
* a ``PendingGroups`` — a step of the Reshape → InstanceNormalization → Reshape chain of
  a GroupNorm (``product_ops``);
* a ``FlatBatch`` — an activation flattened batch and all, on its way through a Gather
  that puts it back (``regions``).

``import_onnx`` imports onnx when a function needs it (``import minideconv.interop.onnx``
works without it); ``attributes`` reads a node's attributes as Python values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

INSTALL = "pip install 'minideconv[onnx]'"


def import_onnx():
    """The ``onnx`` package (with ``onnx.numpy_helper``), or an ImportError saying how to
    install it."""
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401
    except ImportError:
        raise ImportError(f"minideconv.interop.onnx needs the onnx package: {INSTALL}") \
            from None
    return onnx


def attributes(node) -> dict:
    """The attributes of an ONNX node as ``{name: value}``: strings decoded, tensors as
    NumPy arrays."""
    onnx = import_onnx()
    values = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, onnx.TensorProto):
            value = onnx.numpy_helper.to_array(value)
        values[attribute.name] = value
    return values


class _Batch:
    """The batch size in a shape computed from an activation (``Shape(x)[0]``): unknown
    while the graph is read, and kept as this marker through the shape operations."""

    def __repr__(self):
        return "N"


BATCH = _Batch()


@dataclass
class Activation:
    """A value that depends on the network's input: the output of minideconv node
    ``node`` (None: the network's input), of ``shape`` without the batch axis."""

    node: Optional[str]
    shape: Tuple[int, ...]


@dataclass
class PendingPool:
    """A step of the Transpose → GatherND → Transpose → ReduceMean chain of an adaptive
    pool, not yet a layer: ``stage`` says how far the chain has come, ``names`` are the
    ONNX nodes read so far, ``indices`` the GatherND's (once it is read)."""

    stage: str
    source: Activation
    names: List[str]
    indices: Optional[np.ndarray] = None


@dataclass
class ChannelsLast:
    """The output of a Transpose(perm 0,2,3,1) of ``source`` (N, C, H, W): the same
    values in (N, H, W, C), not yet a layer.  It is read only by a Flatten / Reshape to
    (N, −1), which then feeds a Gemm or MatMul (``layouts``); ``names`` are the ONNX
    nodes read so far."""

    source: Activation
    names: List[str]


@dataclass
class FlatChannelsLast:
    """A ``ChannelsLast`` value flattened to (N, H·W·C): ``flat`` is minideconv's Flatten
    of the (C, H, W) activation — the same features in (C, H, W) order — and the Gemm or
    MatMul that reads it takes its weight's columns in that order (``layouts``)."""

    flat: Activation
    chw: Tuple[int, int, int]
    names: List[str]


@dataclass
class PendingShuffle:
    """A step of the Reshape (N, g, C/g, H, W) → Transpose(perm 0,2,1,3,4) → Reshape
    (N, C, H, W) chain of a channel shuffle, not yet a layer: ``stage`` is ``"grouped"``
    after the first Reshape, ``"swapped"`` after the Transpose; ``names`` are the ONNX
    nodes read so far (``structure_ops``)."""

    stage: str
    source: Activation
    groups: int
    names: List[str]


@dataclass
class PendingGroups:
    """A step of the Reshape (N, G, −1) → InstanceNormalization → Reshape (N, C, H, W)
    chain that PyTorch writes for ``nn.GroupNorm``: ``source`` is the activation grouped,
    ``groups`` G; once the InstanceNormalization is read, its ``eps`` and its scale and
    bias per channel (``weight``, ``bias``; None: 1 and 0) (``product_ops``)."""

    source: Activation
    groups: int
    names: List[str]
    eps: Optional[float] = None
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None


@dataclass
class FlatBatch:
    """An activation reshaped to one axis, its batch included (Reshape to [−1]), that
    only Gathers read: the first step of an ``as_strided`` that puts every value back
    where it was (``regions``)."""

    source: Activation
    names: List[str]


#: the values that are a step of a chain, not yet a layer nor a constant
PENDING = (PendingPool, ChannelsLast, FlatChannelsLast, PendingShuffle, PendingGroups,
           FlatBatch)
