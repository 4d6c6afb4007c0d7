"""The walk of an ONNX graph into an ``nn.Graph``: ``GraphReader`` and ``convert``.

``GraphReader`` goes through the ONNX nodes in their (topological) order and hands each
one to the translation of its ``op_type`` (``OPERATIONS``, gathered from
``shape_ops``, ``folding``, ``layer_ops``, ``structure_ops``, ``product_ops``,
``regions``, ``mean_ops``, ``resize_ops``, ``layouts`` and ``activations``).  It keeps
the book a translation reads and writes:

* ``layout`` — the input's layout, ``"NCHW"`` or tf2onnx's ``"NHWC"`` (``layouts``);
  ``input_shape`` is (C, H, W) either way;
* ``values`` — what each ONNX tensor is so far (see ``values``);
* ``nodes`` / ``layers`` — the minideconv nodes built so far, and their layers by name;
* ``tensor_of`` — the ONNX tensor each minideconv node computes (for the cross-check);
* ``readers`` — how many ONNX nodes (and graph outputs) read each tensor;
* ``channels_last`` — the nodes of a channels-last region (``regions``), whose ONNX
  tensor is the (N, H, W, C) permutation of their output.

A translation reads its inputs with ``value`` / ``constant`` / ``activation``, writes its
result with ``add_layer`` (a new minideconv node) or ``set_value`` (a constant or a
pending step), and refuses a node with ``fail`` (a ValueError naming it).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ... import nn
from . import (activations, folding, layer_ops, layouts, mean_ops, product_ops, regions,
               resize_ops, shape_ops, structure_ops)
from .values import (PENDING, Activation, PendingGroups, PendingPool, PendingShuffle,
                     attributes, import_onnx)

#: the operations ``from_onnx`` reads (besides the shape operations evaluated on constants)
SUPPORTED = ("Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean",
             "BatchNormalization", "Gemm", "MatMul", "Add", "Flatten", "Reshape", "Concat",
             "Dropout", "Identity", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze",
             "Cast", "Transpose", "GatherND", "Sum", "LRN", "Softmax", "ConstantOfShape",
             "Mul", "Sub", "Div", "InstanceNormalization", "GroupNormalization",
             "LayerNormalization", "ConvTranspose", "Resize", "Upsample", "Pad", "Slice",
             "GlobalMaxPool") + tuple(activations.OPERATIONS)

#: ONNX op_type → its translation ``f(reader, node, attrs)``
OPERATIONS = regions.position_wise({**shape_ops.OPERATIONS, **folding.OPERATIONS,
                                    **layer_ops.OPERATIONS, **structure_ops.OPERATIONS,
                                    **mean_ops.OPERATIONS, **layouts.OPERATIONS,
                                    **activations.OPERATIONS, **resize_ops.OPERATIONS,
                                    **product_ops.OPERATIONS})   # (layouts: Transpose)


class GraphReader:
    """Walks the ONNX graph in its (topological) order, building the minideconv nodes."""

    def __init__(self, model, input_shape):
        onnx = import_onnx()
        self.graph = model.graph
        self.values: Dict[str, object] = {}
        for tensor in self.graph.initializer:
            self.values[tensor.name] = onnx.numpy_helper.to_array(tensor)
        # old files list every weight among the inputs: an initialised or computed one
        # (a ConstantOfShape's output) is a weight, not the images
        computed = {name for node in self.graph.node for name in node.output}
        inputs = [v for v in self.graph.input
                  if v.name not in self.values and v.name not in computed]
        if len(inputs) != 1:
            raise ValueError(f"the ONNX graph must have one input (the images), got "
                             f"{[v.name for v in inputs]}")
        self.input = inputs[0]
        self.layout = layouts.input_layout(model)
        # the standard domain's version: Softmax's axis means another thing before 13
        self.opset = next((o.version for o in model.opset_import
                           if o.domain in ("", "ai.onnx")), 1)
        self.input_dtype = onnx.helper.tensor_dtype_to_np_dtype(
            self.input.type.tensor_type.elem_type)
        self.input_shape = self._input_shape(input_shape)
        self.values[self.input.name] = Activation(None, self.input_shape)
        self.nodes: List[nn.Node] = []
        self.layers: Dict[str, nn.Layer] = {}
        self.tensor_of: Dict[str, Optional[str]] = {}   # minideconv node → ONNX tensor
        self.channels_last = set()     # nodes whose ONNX tensor is their NHWC permutation
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
            nhwc = " (of the images in NCHW: the input is NHWC, read through a " \
                "Transpose)" if self.layout == "NHWC" else ""
            raise ValueError(f"the ONNX input {self.input.name!r} has shape "
                             f"{[d.dim_value or d.dim_param for d in dims]}: pass "
                             f"input_shape=(C, H, W){nhwc}")
        return (known[2],) + known[:2] if self.layout == "NHWC" else known

    # ------------------------------------------------------------ what translations use

    def fail(self, node, why):
        """Raise a ValueError naming ``node`` (its name and op_type) and saying ``why``."""
        where = f"ONNX node {node.name or node.output[0]!r} ({node.op_type})"
        raise ValueError(f"{where}: {why}")

    def value(self, node, i):
        """Input i of ``node`` ('' or missing: None)."""
        if i >= len(node.input) or node.input[i] == "":
            return None
        name = node.input[i]
        if name not in self.values:
            self.fail(node, f"reads {name!r}, which no earlier node computes")
        return self.values[name]

    def constant(self, node, i, what):
        """Input i of ``node`` (its ``what``), which must be a constant (or missing: None)."""
        value = self.value(node, i)
        if value is not None and not isinstance(value, np.ndarray):
            self.fail(node, f"its {what} (input {i}) must be a constant (an initializer "
                            f"or a Constant node), not computed from the images")
        return value

    def activation(self, node, i=0, ndim=None):
        """Input i of ``node``, which must be an ``Activation`` (of ``ndim`` axes with the
        batch, when given)."""
        value = self.value(node, i)
        if layouts.refusal(value):
            self.fail(node, layouts.refusal(value))
        if isinstance(value, PendingPool):
            self.fail(node, "reads a step of the Transpose → GatherND → Transpose → "
                            "ReduceMean chain of an adaptive pool; only that chain is "
                            "read")
        if isinstance(value, PendingShuffle):
            self.fail(node, f"reads a step of the channel shuffle "
                            f"{' → '.join(value.names)}; only the Reshape → Transpose → "
                            f"Reshape chain is read")
        if isinstance(value, PendingGroups):
            self.fail(node, f"reads a step of the Reshape → InstanceNormalization → "
                            f"Reshape chain of a GroupNorm ({value.names[0]!r}); only that "
                            f"chain is read")
        if not isinstance(value, Activation):
            self.fail(node, f"input {i} must depend on the network's input")
        if ndim is not None and len(value.shape) + 1 != ndim:
            self.fail(node, f"expects a {ndim}-D input (N, …), got (N, "
                            f"{', '.join(map(str, value.shape))})")
        return value

    def axes(self, node, attrs, position):
        """The ``axes`` of ``node`` as a list of ints: its attribute (opset < 13) or its
        constant input ``position``; None when it has neither."""
        axes = attrs.get("axes")
        if axes is None and len(node.input) > position:
            axes = self.constant(node, position, "axes")
        return None if axes is None else [int(a) for a in np.ravel(axes)]

    def only_first_output_used(self, node):
        """Refuse ``node`` if any output but its first is read: a layer has one output."""
        for name in node.output[1:]:
            if name and self.readers.get(name, 0):
                self.fail(node, f"its output {name!r} is read, and minideconv gives "
                                f"only the first output")

    def _name(self, node):
        base = node.name or node.output[0]
        name, k = base, 1
        while name in self.used_names:
            name, k = f"{base}_{k}", k + 1
        self.used_names.add(name)
        return name

    def add_layer(self, node, layer, inputs, tensor=None, name=None):
        """Add a minideconv node for ``layer`` reading ``inputs`` (activations); its
        output becomes ``tensor`` (default the ONNX node's first output).  Returns that
        output's ``Activation``."""
        name = name or self._name(node)
        reads = tuple(nn.Graph.INPUT if a.node is None else a.node for a in inputs)
        shapes = [a.shape for a in inputs]
        try:
            shape = tuple(layer.output_shape(*shapes))
        except ValueError as err:
            self.fail(node, f"does not fit its input {shapes}: {err}")
        self.nodes.append(nn.Node(name, layer, reads))
        self.layers[name] = layer
        tensor = node.output[0] if tensor is None else tensor
        self.tensor_of[name] = tensor
        out = Activation(name, shape)
        if tensor is not None:
            self.values[tensor] = out
        return out

    def replace_layer(self, x, layer, tensor):
        """The node that computed the activation ``x`` computes with ``layer`` from now
        on, and ``x`` is the ONNX tensor ``tensor`` (a bias folded into a Conv / Linear:
        the biased value is the Add's output)."""
        i = next(k for k, n in enumerate(self.nodes) if n.name == x.node)
        self.nodes[i] = nn.Node(x.node, layer, self.nodes[i].inputs)
        self.layers[x.node] = layer
        self.tensor_of[x.node] = tensor
        self.values[tensor] = x

    def set_value(self, node, value):
        """The first output of ``node`` is ``value`` (a constant or a pending step)."""
        if not isinstance(value, (Activation, np.ndarray) + PENDING):
            value = np.asarray(value)        # e.g. a scalar taken out of a shape
        self.values[node.output[0]] = value

    # ------------------------------------------------------------ the walk

    def read(self) -> Tuple[nn.Graph, Dict[str, Optional[str]]]:
        """``(graph, {node name: the ONNX tensor it computes, or None})``."""
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx"):
                self.fail(node, f"is in the domain {node.domain!r}; only standard ONNX "
                                f"operations are read")
            translate = OPERATIONS.get(node.op_type)
            if translate is None:
                self.fail(node, f"op_type {node.op_type!r} is not supported (minideconv "
                                f"reads {', '.join(SUPPORTED)})")
            translate(self, node, attributes(node))
        if len(self.graph.output) != 1:
            raise ValueError(f"the ONNX graph must have one output, got "
                             f"{[v.name for v in self.graph.output]}")
        out = self.values.get(self.graph.output[0].name)
        if layouts.refusal(out, as_output=True):
            raise ValueError(layouts.refusal(out, as_output=True))
        if not isinstance(out, Activation) or out.node is None:
            raise ValueError(f"the ONNX output {self.graph.output[0].name!r} is not "
                             f"computed by a layer from the network's input")
        nodes = self._needed_for(out.node)
        graph = nn.Graph(nodes, input_shape=self.input_shape)
        return graph, {node.name: None if node.name in self.channels_last   # not compared
                       else self.tensor_of[node.name] for node in nodes}

    def _needed_for(self, last):
        """The nodes the output depends on (in order): others are left out."""
        needed = {last}
        for node in reversed(self.nodes):
            if node.name in needed:
                needed.update(node.inputs)
        # the output's ancestors come before it in a topological order: it is last
        return [node for node in self.nodes if node.name in needed]


def convert(model, input_shape=None):
    """``(graph, {node name: the ONNX tensor it computes, or None})`` for the
    ``onnx.ModelProto`` ``model``; ``input_shape`` (C, H, W) overrides the file's."""
    return GraphReader(model, input_shape).read()
