"""The cross-check against onnxruntime: ``crosscheck_onnx`` returns a report.

>>> print(crosscheck_onnx("model.onnx", images))   # doctest: +SKIP

Every node of the converted ``nn.Graph`` is compared with the tensor onnxruntime computes
for it (each one made a graph output of a copy of the model), as a relative error
max |ours − theirs| / max |theirs|.  A model whose input is NHWC (``input_layout``) gets the
(N, C, H, W) images transposed to (N, H, W, C) for onnxruntime.  ``onnxruntime`` is
imported when a function runs: ``pip install 'minideconv[onnx]'``.
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np

from .convert import convert_with_tensors, load_model
from .layouts import images_for_model, input_layout
from .values import INSTALL, import_onnx

#: max relative error per node that passes ``crosscheck_onnx``: onnxruntime computes in
#: float32 on the CPU, and minideconv, with its own order of sums, rounds differently
TOLERANCE = 1e-5


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(f"the ONNX cross-check needs onnxruntime: {INSTALL}") from None
    return onnxruntime


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
    """An onnxruntime ``InferenceSession`` that also returns the ONNX tensors ``tensors``
    (added to the graph's outputs while onnxruntime reads it, then removed: ``model`` is
    left as it was)."""
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
    net, tensor_of = convert_with_tensors(model, x.shape[1:])
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


__all__ = ["crosscheck_onnx", "onnxruntime_outputs", "OnnxCrosscheckReport", "NodeCheck",
           "TOLERANCE"]
