"""ONNX → minideconv: read a network exported from PyTorch, Keras, TF or JAX, and check it
against onnxruntime.

>>> net = from_onnx("model.onnx")                  # doctest: +SKIP
>>> print(crosscheck_onnx("model.onnx", images))   # doctest: +SKIP

``from_onnx`` always returns an ``nn.Graph`` (a chain is a graph too), whose node names
are the ONNX node names (the first output's name where a node has none), made unique.
Each ONNX operation becomes the minideconv layer with the same map:

====================================  =====================================================
ONNX                                  minideconv
====================================  =====================================================
Conv                                  Conv2d (pads equal on both sides, or ``"same"``;
                                      auto_pad NOTSET / VALID / SAME_UPPER / SAME_LOWER;
                                      group, dilations)
Relu                                  ReLU
MaxPool                               MaxPool2d (pads, dilations, ceil_mode)
AveragePool                           AvgPool2d (pads, ceil_mode, count_include_pad)
GlobalAveragePool                     AdaptiveAvgPool2d(1)
ReduceMean over (H, W)                AdaptiveAvgPool2d(1) (then Flatten if keepdims=0)
Transpose → GatherND → Transpose →    AdaptiveAvgPool2d(output size) — what PyTorch's
ReduceMean                            exporter writes for an adaptive pool whose windows
                                      all have one length (e.g. 1×1 → 7×7)
BatchNormalization (inference)        BatchNorm2d
Gemm (transA=0, alpha, beta, transB)  Linear: W = α·B (transB=1) or α·Bᵀ, b = β·C
MatMul, then Add of a constant        one Linear (the Add is its bias)
Conv / Gemm, then Add of a constant   the bias of that Conv2d / Linear
Flatten (axis=1), Reshape to (N, −1)  Flatten
Add of two activations                Add
Concat (axis=1)                       Concat
Dropout, Identity                     Dropout, Identity
====================================  =====================================================

Reshape's target shape may be a constant or computed from the activation's own shape —
the ``Shape → Gather → Unsqueeze → Concat`` chain PyTorch writes for
``x.view(x.size(0), -1)``: constants, ``Constant`` nodes and those shape operations
(Shape, Gather, Unsqueeze, Squeeze, Concat, Cast, Identity on constants) are evaluated
here while the graph is read.  A target (n, F) with F the number of features is read as
a flatten that keeps the batch, whatever batch size n the exporter wrote in.

Weights (initializers and ``Constant`` nodes, ``onnx.numpy_helper.to_array``) keep their
dtype.  Any other operation — or one of these with options minideconv's layer does not
have (padding larger on one side, a pooling's indices output, training mode) — raises a
ValueError naming the op_type and the node.  Nodes that the output does not depend on
are left out.

``onnx`` (and ``onnxruntime`` for ``crosscheck_onnx``) are imported when a function runs:
``pip install 'minideconv[onnx]'``.
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .. import nn
from ..geometry import adaptive_windows, normalise_padding

INSTALL = "pip install 'minideconv[onnx]'"

#: the operations ``from_onnx`` reads (besides the shape operations evaluated on constants)
SUPPORTED = ("Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean",
             "BatchNormalization", "Gemm", "MatMul", "Add", "Flatten", "Reshape", "Concat",
             "Dropout", "Identity", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze",
             "Cast", "Transpose", "GatherND")

#: max relative error per node that passes ``crosscheck_onnx``: onnxruntime computes in
#: float32 on the CPU, and minideconv, with its own order of sums, rounds differently
TOLERANCE = 1e-5


def _onnx():
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401
    except ImportError:
        raise ImportError(f"minideconv.interop.onnx needs the onnx package: {INSTALL}") \
            from None
    return onnx


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(f"the ONNX cross-check needs onnxruntime: {INSTALL}") from None
    return onnxruntime


def load_model(path_or_model):
    """An ``onnx.ModelProto`` from a path (its external data read from beside it) or a
    ModelProto (returned as is)."""
    onnx = _onnx()
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model
    if not isinstance(path_or_model, (str, os.PathLike)):
        raise TypeError(f"path_or_model must be a path or an onnx.ModelProto, got "
                        f"{type(path_or_model).__name__}")
    return onnx.load(os.fspath(path_or_model))


# --------------------------------------------------------------------------- values

class _Batch:
    """The batch size in a shape computed from an activation (``Shape(x)[0]``): unknown
    while the graph is read, and kept as this marker through the shape operations."""

    def __repr__(self):
        return "N"


BATCH = _Batch()


@dataclass
class _Activation:
    """A value that depends on the network's input: the output of minideconv node
    ``node`` (None: the network's input), of ``shape`` without the batch axis."""

    node: Optional[str]
    shape: Tuple[int, ...]


@dataclass
class _Pending:
    """A step of the Transpose → GatherND → Transpose → ReduceMean chain of an adaptive
    pool, not yet a layer: ``stage`` says how far the chain has come."""

    stage: str
    source: _Activation
    names: List[str]
    indices: Optional[np.ndarray] = None


def _attributes(node) -> dict:
    onnx = _onnx()
    values = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, onnx.TensorProto):
            value = onnx.numpy_helper.to_array(value)
        values[attribute.name] = value
    return values


class _Reader:
    """Walks the ONNX graph in its (topological) order, building the minideconv nodes."""

    def __init__(self, model, input_shape):
        onnx = _onnx()
        self.graph = model.graph
        self.values: Dict[str, object] = {}
        for tensor in self.graph.initializer:
            self.values[tensor.name] = onnx.numpy_helper.to_array(tensor)
        inputs = [v for v in self.graph.input if v.name not in self.values]
        if len(inputs) != 1:
            raise ValueError(f"the ONNX graph must have one input (the images), got "
                             f"{[v.name for v in inputs]}")
        self.input = inputs[0]
        self.input_dtype = onnx.helper.tensor_dtype_to_np_dtype(
            self.input.type.tensor_type.elem_type)
        self.input_shape = self._input_shape(input_shape)
        self.values[self.input.name] = _Activation(None, self.input_shape)
        self.nodes: List[nn.Node] = []
        self.layers: Dict[str, nn.Layer] = {}
        self.tensor_of: Dict[str, Optional[str]] = {}   # minideconv node → ONNX tensor
        self.used_names = {nn.Graph.INPUT}
        self.readers: Dict[str, int] = {}              # ONNX tensor → number of readers
        for node in self.graph.node:
            for name in node.input:
                self.readers[name] = self.readers.get(name, 0) + 1
        for output in self.graph.output:
            self.readers[output.name] = self.readers.get(output.name, 0) + 1

    def _input_shape(self, given):
        dims = self.input.type.tensor_type.shape.dim
        if given is not None:
            given = tuple(int(v) for v in given)
            if len(given) != 3 or min(given) < 1:
                raise ValueError(f"input_shape must be (C, H, W), got {given}")
            return given
        known = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims[1:])
        if len(dims) != 4 or None in known or min(known) < 1:
            raise ValueError(f"the ONNX input {self.input.name!r} has shape "
                             f"{[d.dim_value or d.dim_param for d in dims]}: pass "
                             f"input_shape=(C, H, W)")
        return known

    # ------------------------------------------------------------ helpers

    def _where(self, node):
        return f"ONNX node {node.name or node.output[0]!r} ({node.op_type})"

    def _fail(self, node, why):
        raise ValueError(f"{self._where(node)}: {why}")

    def _value(self, node, i):
        """Input i of ``node`` ('' or missing: None)."""
        if i >= len(node.input) or node.input[i] == "":
            return None
        name = node.input[i]
        if name not in self.values:
            self._fail(node, f"reads {name!r}, which no earlier node computes")
        return self.values[name]

    def _constant(self, node, i, what):
        value = self._value(node, i)
        if value is not None and not isinstance(value, np.ndarray):
            self._fail(node, f"its {what} (input {i}) must be a constant (an initializer "
                             f"or a Constant node), not computed from the images")
        return value

    def _activation(self, node, i=0, ndim=None):
        value = self._value(node, i)
        if isinstance(value, _Pending):
            self._fail(node, "reads a step of the Transpose → GatherND → Transpose → "
                             "ReduceMean chain of an adaptive pool; only that chain is "
                             "read")
        if not isinstance(value, _Activation):
            self._fail(node, f"input {i} must depend on the network's input")
        if ndim is not None and len(value.shape) + 1 != ndim:
            self._fail(node, f"expects a {ndim}-D input (N, …), got (N, "
                             f"{', '.join(map(str, value.shape))})")
        return value

    def _only_first_output_used(self, node):
        for name in node.output[1:]:
            if name and self.readers.get(name, 0):
                self._fail(node, f"its output {name!r} is read, and minideconv gives "
                                 f"only the first output")

    def _name(self, node):
        base = node.name or node.output[0]
        name, k = base, 1
        while name in self.used_names:
            name, k = f"{base}_{k}", k + 1
        self.used_names.add(name)
        return name

    def _add(self, node, layer, inputs, tensor=None, name=None):
        """Add a minideconv node for ``layer`` reading ``inputs`` (activations); its
        output becomes ``tensor`` (default the ONNX node's first output)."""
        name = name or self._name(node)
        reads = tuple(nn.Graph.INPUT if a.node is None else a.node for a in inputs)
        shapes = [a.shape for a in inputs]
        try:
            shape = tuple(layer.output_shape(*shapes))
        except ValueError as err:
            self._fail(node, f"does not fit its input {shapes}: {err}")
        self.nodes.append(nn.Node(name, layer, reads))
        self.layers[name] = layer
        tensor = node.output[0] if tensor is None else tensor
        self.tensor_of[name] = tensor
        out = _Activation(name, shape)
        if tensor is not None:
            self.values[tensor] = out
        return out

    def _set(self, node, value):
        if not isinstance(value, (_Activation, _Pending, np.ndarray)):
            value = np.asarray(value)        # e.g. a scalar taken out of a shape
        self.values[node.output[0]] = value

    # ------------------------------------------------------------ the walk

    def read(self) -> Tuple[nn.Graph, Dict[str, Optional[str]]]:
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx"):
                self._fail(node, f"is in the domain {node.domain!r}; only standard ONNX "
                                 f"operations are read")
            method = getattr(self, f"_op_{node.op_type}", None)
            if method is None:
                self._fail(node, f"op_type {node.op_type!r} is not supported (minideconv "
                                 f"reads {', '.join(SUPPORTED)})")
            method(node, _attributes(node))
        if len(self.graph.output) != 1:
            raise ValueError(f"the ONNX graph must have one output, got "
                             f"{[v.name for v in self.graph.output]}")
        out = self.values.get(self.graph.output[0].name)
        if not isinstance(out, _Activation) or out.node is None:
            raise ValueError(f"the ONNX output {self.graph.output[0].name!r} is not "
                             f"computed by a layer from the network's input")
        nodes = self._needed_for(out.node)
        graph = nn.Graph(nodes, input_shape=self.input_shape)
        return graph, {node.name: self.tensor_of[node.name] for node in nodes}

    def _needed_for(self, last):
        """The nodes the output depends on (in order): others are left out."""
        needed = {last}
        for node in reversed(self.nodes):
            if node.name in needed:
                needed.update(node.inputs)
        # the output's ancestors come before it in a topological order: it is last
        return [node for node in self.nodes if node.name in needed]

    # ------------------------------------------------------------ constants and shapes

    def _op_Constant(self, node, attrs):
        for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                value = np.array(attrs[key])
                if key == "value_float" or key == "value_floats":
                    value = value.astype(np.float32)
                elif key != "value":
                    value = value.astype(np.int64)
                return self._set(node, value)
        self._fail(node, f"has none of the value attributes minideconv reads "
                         f"({sorted(attrs)})")

    def _op_Shape(self, node, attrs):
        value = self._value(node, 0)
        if isinstance(value, _Activation):
            shape = np.array((BATCH,) + value.shape, dtype=object)
        elif isinstance(value, np.ndarray):
            shape = np.array(value.shape, dtype=np.int64)
        else:
            self._fail(node, "reads a value whose shape is not known here")
        start, end = attrs.get("start", 0), attrs.get("end", None)
        self._set(node, shape[start:end])

    def _op_Gather(self, node, attrs):
        data = self._constant(node, 0, "data")
        indices = self._constant(node, 1, "indices")
        self._set(node, np.take(data, indices.astype(np.int64), axis=attrs.get("axis", 0)))

    def _axes(self, node, attrs, position):
        axes = attrs.get("axes")
        if axes is None and len(node.input) > position:
            axes = self._constant(node, position, "axes")
        return None if axes is None else [int(a) for a in np.ravel(axes)]

    def _op_Unsqueeze(self, node, attrs):
        data = self._constant(node, 0, "data")
        axes = self._axes(node, attrs, 1)
        rank = data.ndim + len(axes)
        for axis in sorted(a % rank for a in axes):
            data = np.expand_dims(data, axis)
        self._set(node, data)

    def _op_Squeeze(self, node, attrs):
        data = self._constant(node, 0, "data")
        axes = self._axes(node, attrs, 1)
        self._set(node, np.squeeze(data, axis=None if axes is None else tuple(axes)))

    def _op_Cast(self, node, attrs):
        data = self._constant(node, 0, "data")
        if data.dtype == object:                # a shape holding the batch marker
            return self._set(node, data)
        dtype = _onnx().helper.tensor_dtype_to_np_dtype(attrs["to"])
        self._set(node, data.astype(dtype))

    # ------------------------------------------------------------ layers

    def _op_Identity(self, node, attrs):
        value = self._value(node, 0)
        if isinstance(value, np.ndarray):
            return self._set(node, value)
        self._add(node, nn.Identity(), [self._activation(node)])

    def _op_Relu(self, node, attrs):
        self._add(node, nn.ReLU(), [self._activation(node)])

    def _op_Dropout(self, node, attrs):
        x = self._activation(node)
        ratio = self._constant(node, 1, "ratio")
        training = self._constant(node, 2, "training_mode")
        if training is not None and bool(training):
            self._fail(node, "is in training mode; minideconv reads inference graphs")
        self._only_first_output_used(node)
        p = float(ratio) if ratio is not None else float(attrs.get("ratio", 0.5))
        self._add(node, nn.Dropout(p), [x])

    def _pads(self, node, attrs, in_hw, kernel, stride, dilation):
        """(top, bottom, left, right) from ``pads`` or ``auto_pad``."""
        auto = attrs.get("auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            if len(pads) != 4:
                self._fail(node, f"pads must have 4 entries for a 2-D input, got {pads}")
            return pads[0], pads[2], pads[1], pads[3]
        if auto == "VALID":
            return 0, 0, 0, 0
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            self._fail(node, f"auto_pad {auto!r} is not one of NOTSET, VALID, SAME_UPPER, "
                             f"SAME_LOWER")
        pads = []
        for i, k, s, d in zip(in_hw, kernel, stride, dilation):
            out = -(-i // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - i, 0)
            small, large = total // 2, total - total // 2
            pads += [small, large] if auto == "SAME_UPPER" else [large, small]
        return tuple(pads)

    def _symmetric(self, node, pads, what):
        top, bottom, left, right = pads
        if top != bottom or left != right:
            self._fail(node, f"pads (top, bottom, left, right) = {tuple(pads)} differ "
                             f"between the two sides; minideconv's {what} pads both "
                             f"sides alike")
        return top, left

    def _pool_options(self, node, attrs, x):
        kernel = tuple(attrs["kernel_shape"])
        if len(kernel) != 2:
            self._fail(node, f"kernel_shape must have 2 entries, got {list(kernel)}")
        stride = tuple(attrs.get("strides", (1, 1)))
        dilation = tuple(attrs.get("dilations", (1, 1)))
        pads = self._pads(node, attrs, x.shape[1:], kernel, stride, dilation)
        return kernel, stride, self._symmetric(node, pads, "pooling"), dilation, \
            bool(attrs.get("ceil_mode", 0))

    def _op_Conv(self, node, attrs):
        x = self._activation(node, 0, ndim=4)
        weight = self._constant(node, 1, "weight")
        bias = self._constant(node, 2, "bias")
        if weight is None or weight.ndim != 4:
            self._fail(node, "needs a 4-D weight (C_out, C_in/group, kh, kw)")
        kernel = tuple(attrs.get("kernel_shape", weight.shape[2:]))
        if kernel != tuple(weight.shape[2:]):
            self._fail(node, f"kernel_shape {list(kernel)} does not match the weight "
                             f"{weight.shape}")
        stride = tuple(attrs.get("strides", (1, 1)))
        dilation = tuple(attrs.get("dilations", (1, 1)))
        pads = tuple(self._pads(node, attrs, x.shape[1:], kernel, stride, dilation))
        if pads[0] == pads[1] and pads[2] == pads[3]:
            padding = (pads[0], pads[2])
        elif stride == (1, 1) and \
                pads == normalise_padding("same", kernel, dilation, stride):
            padding = "same"         # the extra pixel bottom/right, as torch's "same"
        else:
            padding = self._symmetric(node, pads, "Conv2d")
        layer = nn.Conv2d(weight, bias, stride=stride, padding=padding, dilation=dilation,
                          groups=int(attrs.get("group", 1)))
        self._add(node, layer, [x])

    def _op_MaxPool(self, node, attrs):
        x = self._activation(node, 0, ndim=4)
        self._only_first_output_used(node)       # Indices (and storage_order) unused
        kernel, stride, padding, dilation, ceil_mode = self._pool_options(node, attrs, x)
        self._add(node, nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode), [x])

    def _op_AveragePool(self, node, attrs):
        x = self._activation(node, 0, ndim=4)
        kernel, stride, padding, dilation, ceil_mode = self._pool_options(node, attrs, x)
        if dilation != (1, 1):
            self._fail(node, f"dilations {list(dilation)}: minideconv's AvgPool2d has none")
        self._add(node, nn.AvgPool2d(kernel, stride, padding, ceil_mode,
                                     bool(attrs.get("count_include_pad", 0))), [x])

    def _op_GlobalAveragePool(self, node, attrs):
        self._add(node, nn.AdaptiveAvgPool2d(1), [self._activation(node, 0, ndim=4)])

    def _op_BatchNormalization(self, node, attrs):
        x = self._activation(node, 0, ndim=4)
        scale, bias, mean, var = (self._constant(node, i, what) for i, what in
                                  enumerate(("scale", "B", "mean", "var"), start=1))
        if attrs.get("training_mode", 0) or attrs.get("spatial", 1) != 1:
            self._fail(node, "is in training mode (or not spatial); minideconv reads "
                             "inference graphs")
        self._only_first_output_used(node)
        eps = float(attrs.get("epsilon", 1e-5))
        layer = nn.BatchNorm2d(scale, bias, mean, var, eps=eps)
        self._add(node, layer, [x])

    def _op_Gemm(self, node, attrs):
        x = self._activation(node, 0, ndim=2)
        b = self._constant(node, 1, "B")
        c = self._constant(node, 2, "C")
        if attrs.get("transA", 0):
            self._fail(node, "transA=1 would transpose the batch of images")
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        weight = b if attrs.get("transB", 0) else b.T          # (out_features, in_features)
        weight = np.ascontiguousarray(weight if alpha == 1.0 else alpha * weight)
        bias = None
        if c is not None:
            if c.size != 1 and c.shape not in ((weight.shape[0],), (1, weight.shape[0])):
                self._fail(node, f"C of shape {c.shape} is not a bias of "
                                 f"{weight.shape[0]} outputs")
            bias = np.broadcast_to(c.reshape(-1), (weight.shape[0],))   # a scalar: all
            bias = (bias if beta == 1.0 else beta * bias).astype(weight.dtype)
        self._add(node, nn.Linear(weight, bias), [x])

    def _op_MatMul(self, node, attrs):
        x = self._activation(node, 0, ndim=2)
        b = self._constant(node, 1, "B")
        if b is None or b.ndim != 2:
            self._fail(node, "needs a 2-D constant B (in_features, out_features)")
        self._add(node, nn.Linear(np.ascontiguousarray(b.T)), [x])

    def _op_Add(self, node, attrs):
        a, b = self._value(node, 0), self._value(node, 1)
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return self._set(node, a + b)
        if isinstance(a, _Activation) and isinstance(b, _Activation):
            return self._add(node, nn.Add(), [a, b])
        x, constant = (a, b) if isinstance(a, _Activation) else (b, a)
        if not isinstance(x, _Activation) or not isinstance(constant, np.ndarray):
            self._fail(node, "adds values that are neither activations nor constants")
        self._fold_bias(node, x, constant)

    def _fold_bias(self, node, x, constant):
        """activation + constant: the bias of the Conv2d / Linear that computed x."""
        layer = self.layers.get(x.node)
        producer_tensor = self.tensor_of.get(x.node)
        if not isinstance(layer, (nn.Conv2d, nn.Linear)) or \
                self.readers.get(producer_tensor, 0) != 1:
            self._fail(node, "adds a constant to a value that is not the output of a "
                             "Conv / Gemm / MatMul read by this Add alone (minideconv "
                             "reads such a constant as that layer's bias only)")
        channels = layer.weight.shape[0]
        core = constant.shape
        while core and core[0] == 1:                    # leading ones broadcast away
            core = core[1:]
        per_channel = [(channels,)] if isinstance(layer, nn.Linear) else \
            [(channels, 1, 1), (1, 1)]                  # (C,) would add along W
        if core and core not in per_channel and set(core) != {1}:
            self._fail(node, f"adds a constant of shape {constant.shape}, which is not a "
                             f"bias (one value per output channel) of {x.node!r}")
        extra = np.broadcast_to(constant.reshape(-1), (channels,))
        extra = extra.astype(layer.weight.dtype)
        bias = extra if layer.bias is None else layer.bias + extra
        new = type(layer).from_config(layer.config(),
                                      {"weight": layer.weight, "bias": bias})
        i = next(k for k, n in enumerate(self.nodes) if n.name == x.node)
        self.nodes[i] = nn.Node(x.node, new, self.nodes[i].inputs)
        self.layers[x.node] = new
        self.tensor_of[x.node] = node.output[0]       # the biased value is the Add's
        self.values[node.output[0]] = x

    def _op_Flatten(self, node, attrs):
        x = self._activation(node)
        if attrs.get("axis", 1) != 1:
            self._fail(node, f"axis={attrs['axis']}: minideconv flattens to (N, features) "
                             f"only (axis=1)")
        self._add(node, nn.Flatten(), [x])

    def _op_Reshape(self, node, attrs):
        data = self._value(node, 0)
        shape = self._constant(node, 1, "shape")
        if isinstance(data, np.ndarray):
            return self._set(node, data.reshape([int(v) for v in shape]))
        x = self._activation(node)
        features = int(np.prod(x.shape))
        target = list(np.ravel(shape))
        if len(target) == 2:
            first, second = target
            keeps_batch = first is BATCH or (first is not BATCH and (
                first > 0 or (first == 0 and not attrs.get("allowzero", 0))
                or (first == -1 and second is not BATCH and second == features)))
            if keeps_batch and second is not BATCH and second in (-1, features):
                return self._add(node, nn.Flatten(), [x])
        self._fail(node, f"reshapes (N, {', '.join(map(str, x.shape))}) to {target}; "
                         f"minideconv reads a reshape to (N, {features}) = (N, -1) only")

    def _op_Concat(self, node, attrs):
        values = [self._value(node, i) for i in range(len(node.input))]
        if all(isinstance(v, np.ndarray) for v in values):
            return self._set(node, np.concatenate([np.atleast_1d(v) for v in values],
                                                  axis=attrs.get("axis", 0)))
        xs = [self._activation(node, i) for i in range(len(node.input))]
        axis = attrs.get("axis")
        if axis not in (1, 1 - len(xs[0].shape) - 1):
            self._fail(node, f"axis={axis}: minideconv concatenates along the channels "
                             f"(axis=1) only")
        self._add(node, nn.Concat(1), xs)

    # ------------------------------------------------------------ averages over H, W

    def _op_ReduceMean(self, node, attrs):
        value = self._value(node, 0)
        axes = self._axes(node, attrs, 1)
        keepdims = attrs.get("keepdims", 1)
        if isinstance(value, _Pending) and value.stage == "gathered, N C first":
            if sorted(a % 6 for a in axes) != [3, 5] or keepdims:
                self._fail(node, "ends a gather chain by averaging other axes than the "
                                 "two window axes")
            return self._adaptive_from_gather(node, value)
        x = self._activation(node, 0, ndim=4)
        if axes is None or sorted(a % 4 for a in axes) != [2, 3]:
            self._fail(node, f"averages over axes {axes}; minideconv reads the mean over "
                             f"(H, W) only")
        if keepdims:
            return self._add(node, nn.AdaptiveAvgPool2d(1), [x])
        pooled = self._add(node, nn.AdaptiveAvgPool2d(1), [x], tensor=None)
        self._add(node, nn.Flatten(), [pooled])

    def _op_Transpose(self, node, attrs):
        value = self._value(node, 0)
        perm = list(attrs.get("perm", []))
        name = node.name or node.output[0]
        if isinstance(value, _Activation) and perm == [2, 3, 0, 1] and \
                len(value.shape) == 3:
            return self._set(node, _Pending("H W first", value, [name]))
        if isinstance(value, _Pending) and value.stage == "gathered" and \
                perm == [4, 5, 0, 1, 2, 3]:
            return self._set(node, _Pending("gathered, N C first", value.source,
                                            value.names + [name], value.indices))
        if isinstance(value, np.ndarray):
            return self._set(node, np.transpose(value, perm or None))
        self._fail(node, f"perm={perm}: minideconv reads a Transpose only as part of the "
                         f"Transpose → GatherND → Transpose → ReduceMean chain of an "
                         f"adaptive average pool")

    def _op_GatherND(self, node, attrs):
        value = self._value(node, 0)
        indices = self._constant(node, 1, "indices")
        if not (isinstance(value, _Pending) and value.stage == "H W first") or \
                attrs.get("batch_dims", 0) != 0 or indices.ndim != 5 or \
                indices.shape[-1] != 2:
            self._fail(node, "is read only inside the Transpose → GatherND → Transpose → "
                             "ReduceMean chain of an adaptive average pool")
        self._set(node, _Pending("gathered", value.source, value.names +
                                 [node.name or node.output[0]], indices))

    def _adaptive_from_gather(self, node, pending):
        """y[n, c, i, j] = mean over (a, b) of x[n, c, idx[i, a, j, b]]: an adaptive
        average pool when idx lists exactly its windows (all of one length per axis)."""
        (h, w), idx = pending.source.shape[1:], pending.indices
        out_h, k_h, out_w, k_w, _ = idx.shape
        rows, cols = adaptive_windows(h, out_h), adaptive_windows(w, out_w)
        expected = np.zeros_like(idx)
        if all(r.stop - r.start == k_h for r in rows) and \
                all(c.stop - c.start == k_w for c in cols):
            for i, r in enumerate(rows):
                for j, c in enumerate(cols):
                    expected[i, :, j, :, 0] = (r.start + np.arange(k_h))[:, None]
                    expected[i, :, j, :, 1] = (c.start + np.arange(k_w))[None, :]
            if np.array_equal(expected, idx):
                return self._add(node, nn.AdaptiveAvgPool2d((out_h, out_w)),
                                 [pending.source])
        self._fail(node, f"the gather chain {pending.names} averages windows that are not "
                         f"those of an adaptive average pool of ({h}, {w}) to "
                         f"({out_h}, {out_w})")


def _convert(path_or_model, input_shape=None):
    """``(graph, {node name: the ONNX tensor it computes, or None})``."""
    return _Reader(load_model(path_or_model), input_shape).read()


def from_onnx(path_or_model,
              input_shape: Optional[Tuple[int, int, int]] = None) -> nn.Graph:
    """The ONNX network at ``path_or_model`` (a file path or an ``onnx.ModelProto``) as an
    ``nn.Graph`` (see the module docstring for what each operation becomes).

    ``input_shape`` (C, H, W) is needed only when the file's input has no fixed size."""
    return _convert(path_or_model, input_shape)[0]


# ------------------------------------------------------------------------- the cross-check

def _relative(ours, reference) -> Tuple[float, float]:
    """(max |ours − reference|, that divided by max |reference|)."""
    diff = float(np.max(np.abs(ours - reference))) if ours.size else 0.0
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    return diff, diff / scale if scale > 0 else diff


@dataclass
class NodeCheck:
    index: int
    name: str
    kind: str
    shape: Tuple[int, ...]
    abs: float
    rel: float


@dataclass
class OnnxCrosscheckReport:
    """minideconv's forward activation at every node against onnxruntime's value of the
    same ONNX tensor; ``passed`` when every relative error is within ``tolerance``."""

    source: str
    dtype: str
    n_images: int
    nodes: List[NodeCheck] = field(default_factory=list)
    tolerance: float = TOLERANCE

    @property
    def worst(self) -> float:
        return max((check.rel for check in self.nodes), default=0.0)

    @property
    def passed(self) -> bool:
        return self.worst <= self.tolerance

    def __str__(self):
        lines = [f"{self.source}: minideconv ({self.dtype}) against onnxruntime (float32 "
                 f"on the CPU), {self.n_images} image(s), max relative error per node",
                 f"  {'#':>3}  {'node':<32} {'layer':<18} {'shape':<16} {'rel. error':>10}"]
        for c in self.nodes:
            lines.append(f"  {c.index:>3}  {c.name[:32]:<32} {c.kind:<18} "
                         f"{str(c.shape):<16} {c.rel:>10.2e}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"{verdict}: worst relative error {self.worst:.2e} "
                     f"(tolerance {self.tolerance:.0e})")
        return "\n".join(lines)


def _session(model, tensors):
    """An onnxruntime session that also returns the ONNX tensors ``tensors`` (added to
    the graph's outputs for the session only: ``model`` is left as it was)."""
    onnx, ort = _onnx(), _onnxruntime()
    elem_type = model.graph.input[0].type.tensor_type.elem_type
    have = {v.name for v in model.graph.output}
    added = 0
    for name in dict.fromkeys(tensors):
        if name not in have:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, elem_type,
                                                                         None))
            added += 1
    options = ort.SessionOptions()
    # no fusions: every tensor keeps the value the file's graph defines
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        try:
            data = model.SerializeToString()
        except ValueError:                      # over protobuf's 2 GB: through a file
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "model.onnx")
                # (saving moves the weights out of the proto it is given: a copy)
                onnx.save(copy.deepcopy(model), path, save_as_external_data=True)
                return ort.InferenceSession(path, options,
                                            providers=["CPUExecutionProvider"])
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    finally:
        for _ in range(added):
            model.graph.output.pop()


def onnxruntime_outputs(path_or_model, x, tensors=()):
    """onnxruntime's values of the ONNX tensors ``tensors`` (default: the output) for
    the images ``x``, as a dict; ``x`` is cast to the model's input dtype.  A model
    exported with a fixed batch size b runs on chunks of b images (the last one filled
    up with copies of its first image, whose results are dropped)."""
    model = load_model(path_or_model)
    tensors = list(tensors) or [model.graph.output[0].name]
    session = _session(model, tensors)
    feed = session.get_inputs()[0]
    dtype = np.float64 if feed.type == "tensor(double)" else np.float32
    x = np.ascontiguousarray(x, dtype=dtype)
    batch = feed.shape[0] if isinstance(feed.shape[0], int) and feed.shape[0] > 0 \
        else len(x)
    parts = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        filled = np.concatenate([chunk] + [chunk[:1]] * (batch - len(chunk)))
        values = session.run(tensors, {feed.name: filled})
        parts.append([v[:len(chunk)] for v in values])
    return {name: np.concatenate([part[k] for part in parts])
            for k, name in enumerate(tensors)}


def crosscheck_onnx(path_or_model, x, dtype=None, tolerance=None,
                    source=None) -> OnnxCrosscheckReport:
    """Run ``from_onnx(path_or_model)`` and onnxruntime on the images ``x`` (N, C, H, W)
    and compare the activation of every node that has an ONNX tensor of its own.
    ``dtype``: minideconv's (default the weights'); onnxruntime runs the file as it is
    (float32: its CPU Conv has no float64 kernel).  ``tolerance`` defaults to
    ``TOLERANCE``."""
    model = load_model(path_or_model)
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be images (N, C, H, W), got shape {x.shape}")
    net, tensor_of = _convert(model, x.shape[1:])
    if dtype is not None:
        net = net.astype(dtype)
    dtype = np.dtype(net.dtype())
    checked = [(i, name) for i, name in enumerate(net.names) if tensor_of[name] is not None]
    reference = onnxruntime_outputs(model, x, [tensor_of[name] for _, name in checked])
    trace = net.trace(x.astype(dtype))
    if source is None:
        source = os.fspath(path_or_model) if isinstance(path_or_model, (str, os.PathLike)) \
            else "the ONNX model"
    report = OnnxCrosscheckReport(source, dtype.name, len(x),
                                  tolerance=TOLERANCE if tolerance is None else tolerance)
    for i, name in checked:
        ours, theirs = trace.outputs[i], reference[tensor_of[name]]
        if ours.shape != theirs.shape:
            raise RuntimeError(f"node {name!r}: minideconv gives shape {ours.shape}, "
                               f"onnxruntime {theirs.shape}")
        error_abs, error_rel = _relative(ours.astype(np.float64), theirs.astype(np.float64))
        report.nodes.append(NodeCheck(i, name, type(net.layers[i]).__name__,
                                      tuple(ours.shape[1:]), error_abs, error_rel))
    return report


def run_crosscheck(path, n_images=2, dtype="float64", seed=0, log=print) -> int:
    """``minideconv crosscheck --onnx PATH``: ``n_images`` seeded standard-normal images
    of the file's input shape; prints the report and returns the exit status (0 when
    every node is within ``TOLERANCE``, 1 otherwise).  Each problem with the file is a
    ``UsageError`` / ``RunError`` naming ``--onnx``."""
    from importlib.util import find_spec

    from .._cli_checks import RunError, UsageError
    if not os.path.exists(path):
        raise UsageError(f"--onnx: no such file: {path!r}")
    if os.path.isdir(path):
        raise UsageError(f"--onnx: {path!r} is a folder, not an .onnx file")
    missing = [name for name in ("onnx", "onnxruntime") if find_spec(name) is None]
    if missing:
        raise RunError(f"--onnx: the ONNX cross-check needs {' and '.join(missing)}, not "
                       f"installed: {INSTALL}")
    try:
        model = load_model(path)
    except Exception as err:             # onnx's parse errors come in many types
        raise RunError(f"--onnx: {path!r} is not a readable ONNX file: "
                       f"{type(err).__name__}: {err}") from None
    try:
        net, _ = _convert(model)
    except (ValueError, TypeError) as err:
        raise RunError(f"--onnx: {err}") from None
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_images,) + tuple(net.input_shape)).astype(np.float32)
    try:
        report = crosscheck_onnx(model, x, dtype=dtype, source=path)
    except MemoryError:
        raise
    except Exception as err:             # onnxruntime's errors, a shape mismatch
        raise RunError(f"--onnx: {type(err).__name__}: {err}") from None
    log(str(report))
    return 0 if report.passed else 1


__all__ = ["run_crosscheck", "from_onnx", "crosscheck_onnx", "onnxruntime_outputs",
           "load_model",
           "OnnxCrosscheckReport", "NodeCheck", "SUPPORTED", "TOLERANCE", "BATCH"]
