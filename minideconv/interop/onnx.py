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
NHWC input → Transpose(0,3,1,2)       nothing: the Graph takes (N, C, H, W) images
Transpose(0,2,3,1) → Flatten /        Flatten, then Linear with the weight's columns
Reshape(N, −1) → Gemm / MatMul        reordered from (h, w, c) to (c, h, w)
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

Files that tf2onnx writes for Keras / TensorFlow take channels-last images (N, H, W, C)
and begin with a Transpose to (N, C, H, W) (``input_layout(model)`` is then ``"NHWC"``):
``from_onnx`` drops that Transpose, so the Graph takes (N, C, H, W) images — its
``input_shape`` (C, H, W) is the transposed one — and ``crosscheck_onnx`` /
``onnxruntime_outputs`` transpose the (N, C, H, W) images they are given to (N, H, W, C)
for onnxruntime.  The Transpose back to channels-last before a dense layer is folded
into that layer's weight (see ``onnx_layouts``); any other Transpose is refused.

Weights (initializers and ``Constant`` nodes, ``onnx.numpy_helper.to_array``) keep their
dtype.  Any other operation — or one of these with options minideconv's layer does not
have (padding larger on one side, a pooling's indices output, training mode) — raises a
ValueError naming the op_type and the node.  Nodes that the output does not depend on
are left out.

``onnx`` (and ``onnxruntime`` for ``crosscheck_onnx``) are imported when a function runs:
``pip install 'minideconv[onnx]'``.

Where the code lives: this module has ``from_onnx`` and the cross-check against
onnxruntime; ``onnx_reader`` walks the graph and keeps the book (``GraphReader``);
``onnx_layer_ops``, ``onnx_mean_ops``, ``onnx_shape_ops`` and ``onnx_layouts`` (the
NHWC Transposes) translate the operations (one function each); ``onnx_values`` says what
a tensor is while the graph is read.
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from .. import nn
from .onnx_layouts import images_for_model, input_layout
from .onnx_reader import SUPPORTED, convert
from .onnx_values import BATCH, INSTALL, import_onnx

#: max relative error per node that passes ``crosscheck_onnx``: onnxruntime computes in
#: float32 on the CPU, and minideconv, with its own order of sums, rounds differently
TOLERANCE = 1e-5


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(f"the ONNX cross-check needs onnxruntime: {INSTALL}") from None
    return onnxruntime


def load_model(path_or_model):
    """An ``onnx.ModelProto`` from a path (its external data read from beside it) or a
    ModelProto (returned as is)."""
    onnx = import_onnx()
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model
    if not isinstance(path_or_model, (str, os.PathLike)):
        raise TypeError(f"path_or_model must be a path or an onnx.ModelProto, got "
                        f"{type(path_or_model).__name__}")
    return onnx.load(os.fspath(path_or_model))


def _convert(path_or_model, input_shape=None):
    """``(graph, {node name: the ONNX tensor it computes, or None})``."""
    return convert(load_model(path_or_model), input_shape)


def from_onnx(path_or_model,
              input_shape: Optional[Tuple[int, int, int]] = None) -> nn.Graph:
    """The ONNX network at ``path_or_model`` (a file path or an ``onnx.ModelProto``) as an
    ``nn.Graph`` (see the module docstring for what each operation becomes).

    ``input_shape`` (C, H, W) is needed only when the file's input has no fixed size.
    The Graph takes images (N, C, H, W), also from a file whose input is NHWC
    (``input_layout``): its Transpose to NCHW is dropped, ``input_shape`` is the
    transposed (C, H, W)."""
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
    layout: str = "NCHW"             # the file's input: "NHWC" had the images transposed

    @property
    def worst(self) -> float:
        return max((check.rel for check in self.nodes), default=0.0)

    @property
    def passed(self) -> bool:
        return self.worst <= self.tolerance

    def __str__(self):
        lines = [f"{self.source}: minideconv ({self.dtype}) against onnxruntime (float32 "
                 f"on the CPU), {self.n_images} image(s), max relative error per node"
                 + (" (the file's input is NHWC: onnxruntime got the images transposed "
                    "to (N, H, W, C))" if self.layout == "NHWC" else ""),
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
    onnx, ort = import_onnx(), _onnxruntime()
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
    the images ``x`` (N, C, H, W), as a dict; ``x`` is cast to the model's input dtype
    and, for a model whose input is NHWC (``input_layout``), transposed to
    (N, H, W, C).  A model
    exported with a fixed batch size b runs on chunks of b images (the last one filled
    up with copies of its first image, whose results are dropped)."""
    model = load_model(path_or_model)
    tensors = list(tensors) or [model.graph.output[0].name]
    session = _session(model, tensors)
    feed = session.get_inputs()[0]
    dtype = np.float64 if feed.type == "tensor(double)" else np.float32
    x = np.ascontiguousarray(images_for_model(model, x), dtype=dtype)
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
    and compare the activation of every node that has an ONNX tensor of its own (a file
    whose input is NHWC gets the images transposed to (N, H, W, C), see ``input_layout``).
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
                                  tolerance=TOLERANCE if tolerance is None else tolerance,
                                  layout=input_layout(model))
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

    from ..cli_checks import RunError, UsageError
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
           "load_model", "input_layout",
           "OnnxCrosscheckReport", "NodeCheck", "SUPPORTED", "TOLERANCE", "BATCH"]
