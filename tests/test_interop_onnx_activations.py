"""The ONNX activations (``interop.onnx.activations``): torch networks with ReLU6,
LeakyReLU, PReLU, Hardswish, Hardsigmoid, ELU, Tanh, Sigmoid exported with
``torch.onnx.export`` and read with ``from_onnx`` — forward against onnxruntime and
torch, projections under the three rules against the rule table in torch — and
hand-built nodes for the options torch does not write (Clip's attributes, PRelu's
slope shapes, HardSigmoid's alpha, Gelu), with the refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from minideconv import nn, rules, visualize  # noqa: E402
from minideconv.interop.onnx import from_onnx, onnxruntime_outputs  # noqa: E402

from support.rectifier_table import (rectifier_model, smooth_model,  # noqa: E402
                                     table_projection)

tnn = torch.nn


def rel(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


def exported(model, x, tmp_path):
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.float(), (torch.from_numpy(x.astype(np.float32)),),
                          str(path), input_names=["x"], dynamo=False, opset_version=17)
    model.double()
    return onnx.load(str(path))


def smooth_without_silu():
    """smooth_model with its SiLU (exported as Sigmoid · x, a Mul) as a Hardsigmoid and
    its GELU (written as Mul, Tanh, Add before opset 20) as an ELU."""
    model = smooth_model()
    model[1], model[4] = tnn.Hardsigmoid(), tnn.ELU(0.3)
    return model


@pytest.fixture
def images():
    return np.random.default_rng(0).normal(size=(2, 3, 8, 8))


@pytest.mark.parametrize("make, kinds", [
    (rectifier_model, ["ClippedReLU", "LeakyReLU", "PReLU"]),
    (smooth_without_silu, ["Hardsigmoid", "Hardswish", "ELU", "Tanh", "Sigmoid"]),
])
def test_exported_networks_read_back(make, kinds, images, tmp_path):
    model = make()
    proto = exported(model, images, tmp_path)
    net = from_onnx(proto)
    found = [type(layer).__name__ for layer in net.layers]
    assert all(kind in found for kind in kinds), found
    x32 = images.astype(np.float32)
    ort = onnxruntime_outputs(proto, x32)[proto.graph.output[0].name]
    assert rel(net(x32), ort) < 1e-5
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    assert rel(net.astype(np.float64)(images), expected) < 1e-6   # float32 weights, cast


@pytest.mark.parametrize("rule", rules.NAMES)
def test_exported_projections_equal_the_table_in_torch(rule, images, tmp_path):
    model = rectifier_model()
    net = from_onnx(exported(model, images, tmp_path)).astype(np.float64)
    with torch.no_grad():     # the float32 file's weights, back in float64 on both sides
        for p in model.parameters():
            p.copy_(p.float().double())
    kinds = [type(layer) for layer in net.layers]
    for torch_index, layer_type in ((3, nn.LeakyReLU), (5, nn.PReLU), (7, nn.Linear)):
        index = kinds.index(layer_type)
        out = net.trace(images, upto=index).outputs[index]
        unit = np.unravel_index(np.argmax(out[0]), out.shape[1:])
        position = tuple(unit[1:]) if len(unit) == 3 else None
        ours = visualize.project(net, images, index, unit[0], position=position, rule=rule)
        assert rel(ours, table_projection(model, torch_index, images, unit, rule)) < 1e-6


@pytest.mark.parametrize("rule", rules.NAMES)
def test_silu_exports_as_sigmoid_times_its_input_and_passes_the_gradient(rule, images,
                                                                          tmp_path):
    """torch.onnx writes SiLU as x · Sigmoid(x): a Sigmoid and a Mul of two activations,
    whose way back is the product rule — SiLU's derivative — under every rule."""
    model = tnn.Sequential(tnn.Conv2d(3, 3, 1), tnn.SiLU(), tnn.Conv2d(3, 2, 3)).double()
    net = from_onnx(exported(model, images, tmp_path)).astype(np.float64)
    assert {nn.Sigmoid, nn.Mul} <= {type(layer) for layer in net.layers}
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.float().double())
        expected = model(torch.from_numpy(images)).numpy()
    assert rel(net(images), expected) < 1e-10
    unit = np.unravel_index(np.argmax(expected[0]), expected.shape[1:])
    x = torch.from_numpy(images).requires_grad_(True)
    out = model(x)
    seed = torch.zeros_like(out)
    seed[(slice(None),) + tuple(unit)] = out[(slice(None),) + tuple(unit)].detach()
    (gradient,) = torch.autograd.grad(out, x, seed)    # SiLU has no rule: the gradient
    ours = visualize.project(net, images, -1, unit[0], position=tuple(unit[1:]), rule=rule)
    assert rel(ours, gradient.numpy()) < 1e-10


# --------------------------------------------------------------------------- hand-built

def single(op, attrs=None, inits=(), extra_inputs=(), opset=13, x_shape=(2, 3, 4, 4)):
    node = helper.make_node(op, ["x", *extra_inputs], ["y"], name="act", **(attrs or {}))
    graph = helper.make_graph(
        [node], "single", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, x_shape)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


PRELU_SLOPES = {"(C,1,1)": np.array([.1, .2, .3]).reshape(3, 1, 1),
                "(1,C,1,1)": np.array([.1, -.2, .3]).reshape(1, 3, 1, 1),
                "(1,)": np.array([0.2]), "()": np.array(0.3)}


@pytest.mark.parametrize("model, kind", [
    (single("Clip", inits=[("lo", 0.0), ("hi", 1.5)], extra_inputs=["lo", "hi"]),
     "ClippedReLU"),
    (single("Clip", inits=[("lo", 0.0)], extra_inputs=["lo"]), "ReLU"),
    (single("Clip", dict(min=0.0, max=6.0), opset=6), "ClippedReLU"),
    (single("LeakyRelu", dict(alpha=0.3)), "LeakyReLU"),
    (single("Elu", dict(alpha=0.4)), "ELU"),
    (single("HardSigmoid"), "Hardsigmoid"),                       # ONNX's alpha 0.2
    (single("HardSigmoid", dict(alpha=0.3, beta=0.4)), "Hardsigmoid"),
    (single("HardSwish", opset=14), "Hardswish"),
    (single("Sigmoid"), "Sigmoid"),
    (single("Tanh"), "Tanh"),
    (single("Gelu", opset=20), "GELU"),
    (single("Gelu", dict(approximate="tanh"), opset=20), "GELU"),
] + [(single("PRelu", inits=[("slope", s)], extra_inputs=["slope"]), "PReLU")
     for s in PRELU_SLOPES.values()],
    ids=lambda v: v if isinstance(v, str) else None)
def test_each_node_against_onnxruntime(model, kind):
    net = from_onnx(model)
    assert [type(layer).__name__ for layer in net.layers] == [kind]
    x = (np.random.default_rng(1).normal(size=(2, 3, 4, 4)) * 4).astype(np.float32)
    np.testing.assert_allclose(net(x), onnxruntime_outputs(model, x)["y"], rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("model, message", [
    (single("Clip", inits=[("lo", -1.0), ("hi", 1.0)], extra_inputs=["lo", "hi"]),
     r"ONNX node 'act' \(Clip\): Clip with min=-1.0 is not a rectifier of the rule table"),
    (single("Clip", dict(max=6.0), opset=6), r"Clip with min=None is not a rectifier"),
    (single("PRelu", inits=[("slope", np.ones(3))], extra_inputs=["slope"]),
     r"slope of shape \(3,\) does not give one slope per channel"),
])
def test_what_is_no_layer_is_refused_in_one_line(model, message):
    with pytest.raises(ValueError, match=message):
        from_onnx(model)
