"""ONNX's own backend node tests, as one-node CNN graphs, through ``from_onnx``.

The onnx wheel ships the generators of its backend node tests
(``onnx.backend.test.case.node``): for every operator, small graphs of one node with
inputs and expected outputs.  Those of the operators a CNN uses are adapted here to what
``from_onnx`` reads — the first input is the image batch (an element-wise operator's
input of fewer than four dimensions is given leading axes of one, which changes neither
its values nor its output), every other input becomes a constant (an initializer) — and
each case ends one of three ways:

* **passes**: imported, and the network's output equals the expected output (the case's
  own rtol/atol);
* **refused**: ``from_onnx`` raises a ValueError or TypeError that names the ONNX node
  (its op_type and name) — what minideconv cannot read, said in one line;
* anything else is a failure of this test: an import that computes a **wrong** output,
  or an **unclear** end (another exception type, a refusal that does not name the node,
  a forward pass that fails after the import accepted the graph).
"""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed: ONNX tests skipped")

from minideconv.interop.onnx import from_onnx  # noqa: E402

#: the operators of CNNs (the node tests of every other operator are not applicable)
CNN_OPERATORS = {
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "LpPool", "MaxUnpool", "BatchNormalization", "InstanceNormalization",
    "LayerNormalization", "GroupNormalization", "LRN", "Relu", "LeakyRelu", "PRelu",
    "Clip", "Sigmoid", "Tanh", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "Gelu",
    "Softplus", "Mish", "Softmax", "LogSoftmax", "Identity", "Dropout", "Flatten",
    "Reshape", "Transpose", "Concat", "Pad", "Resize", "Upsample", "DepthToSpace",
    "SpaceToDepth", "Gemm", "MatMul", "Add", "Sum", "Mul", "ReduceMean", "GridSample",
}
#: element-wise operators: an input of fewer than 4 dimensions is given leading axes of 1
ELEMENT_WISE = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Elu", "Selu", "Celu",
                "HardSigmoid", "HardSwish", "Gelu", "Softplus", "Mish", "Identity"}


def one_node_cnn_graph(case):
    """``(model, x, expected)`` for a node test case a CNN importer can be asked to read,
    or None: one node, the first input a float image batch, the others constants."""
    if case.model is None or not case.data_sets or len(case.model.graph.node) != 1:
        return None
    node = case.model.graph.node[0]
    if node.op_type not in CNN_OPERATORS or node.domain not in ("", "ai.onnx"):
        return None
    inputs, outputs = case.data_sets[0]
    if not inputs or not outputs or not all(isinstance(v, np.ndarray) for v in inputs):
        return None
    x, expected = inputs[0], outputs[0]
    if x.dtype not in (np.float32, np.float64) or not isinstance(expected, np.ndarray):
        return None
    if x.ndim < 4 and node.op_type in ELEMENT_WISE and len(inputs) == 1 and \
            x.shape == expected.shape:
        lead = (1,) * (4 - x.ndim)
        x, expected = x.reshape(lead + x.shape), expected.reshape(lead + expected.shape)
    if x.ndim != 4:
        return None
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    first = onnx.helper.make_tensor_value_info(graph.input[0].name,
                                               graph.input[0].type.tensor_type.elem_type,
                                               list(x.shape))
    constants = [onnx.numpy_helper.from_array(value, graph.input[k].name)
                 for k, value in enumerate(inputs[1:], start=1)]
    del graph.input[:]
    graph.input.append(first)
    graph.initializer.extend(constants)
    del graph.output[1:]                 # minideconv computes one output: the first
    del graph.value_info[:]
    return model, x, expected


def run_case(case):
    """``(outcome, detail)``: "passes", "refused", "wrong" or "unclear"."""
    model, x, expected = one_node_cnn_graph(case)
    node = model.graph.node[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = from_onnx(model, input_shape=x.shape[1:])
    except (ValueError, TypeError) as error:
        named = node.op_type in str(error) and (not node.name or node.name in str(error))
        return ("refused" if named else "unclear"), f"{type(error).__name__}: {error}"
    except Exception as error:                    # noqa: BLE001 - any other end is unclear
        return "unclear", f"import: {type(error).__name__}: {error}"
    try:
        y = net(x)
    except Exception as error:                    # noqa: BLE001
        return "unclear", f"forward after import: {type(error).__name__}: {error}"
    if y.shape != expected.shape or not np.allclose(y, expected, rtol=case.rtol,
                                                    atol=case.atol):
        worst = float(np.max(np.abs(y - expected))) if y.shape == expected.shape else None
        return "wrong", f"shape {y.shape} vs {expected.shape}, max |diff| {worst}"
    return "passes", ""


@pytest.fixture(scope="module")
def outcomes():
    """case name → (op_type, outcome, detail), for every applicable case."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    result = {}
    for case in cases:
        if one_node_cnn_graph(case) is not None:
            result[case.name] = (case.model.graph.node[0].op_type,) + run_case(case)
    return result


def test_no_node_case_is_wrong_or_unclear(outcomes):
    counts = collections.Counter(outcome for _, outcome, _ in outcomes.values())
    print(f"\n{len(outcomes)} applicable ONNX node cases: {dict(counts)}")
    by_op = collections.defaultdict(collections.Counter)
    for op, outcome, _ in outcomes.values():
        by_op[op][outcome] += 1
    for op in sorted(by_op):
        print(f"  {op}: {dict(by_op[op])}")
    bad = {name: (op, outcome, detail) for name, (op, outcome, detail) in outcomes.items()
           if outcome in ("wrong", "unclear")}
    assert not bad, "\n".join(f"{name} ({op}): {outcome}: {detail}"
                              for name, (op, outcome, detail) in sorted(bad.items()))


def test_the_cases_cover_the_cnn_operators(outcomes):
    """The adaptation keeps cases of the operators every CNN has, and they pass."""
    passing = {op for op, outcome, _ in outcomes.values() if outcome == "passes"}
    assert {"Conv", "MaxPool", "AveragePool", "Relu", "BatchNormalization",
            "GlobalAveragePool", "Flatten"} <= passing


def test_a_wrong_reader_would_be_caught(outcomes, monkeypatch):
    """A deliberate mistake — every Relu read as the identity — makes Relu cases wrong."""
    from onnx.backend.test.case.node import collect_testcases

    from minideconv.interop.onnx import layer_ops, reader

    monkeypatch.setitem(reader.OPERATIONS, "Relu", layer_ops.identity)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        relu_cases = [case for case in collect_testcases("Relu")
                      if one_node_cnn_graph(case) is not None and
                      case.model.graph.node[0].op_type == "Relu"]
    assert relu_cases
    assert {run_case(case)[0] for case in relu_cases} == {"wrong"}
