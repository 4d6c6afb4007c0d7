"""from_onnx of products and normalisations: the squeeze-and-excitation network and the
small ConvNeXt of tests/support/modern_layouts.py exported with ``torch.onnx.export``,
and hand-made graphs for the options torch does not write.

* Exports (float32 files): every node with an ONNX tensor of its own against onnxruntime
  (``crosscheck_onnx``), and the network in float64 against the torch model in float64
  with the file's weights — logits to 1e-10 (1e-6 where the exporter folded BatchNorm
  into the convolution in float32), every rule's projection of the strongest
  unit of every NCHW ReLU and of the logits against the torch reference
  (tests/support/torch_reference.py) to 1e-6.  The SE network both ways (the dynamo
  exporter and TorchScript's, ``dynamo=False``: GroupNorm as Reshape →
  InstanceNormalization → Reshape → Mul → Add either way); ConvNeXt both ways too
  (Transpose → LayerNormalization → MatMul → Add … → Transpose; the dynamo exporter
  writes the permute of the pooled (N, C, 1, 1) in its head as Reshape(−1) → Gather, an
  ``as_strided`` that puts every value back).
* By hand: GroupNormalization (opset 18: scale per group; 21: per channel),
  InstanceNormalization, Mul by per-channel constants folded into one ChannelAffine,
  Mul of two activations, a PRelu-free channels-last region with a Mul by a (C,)
  constant, and the refusals.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from minideconv import nn, visualize  # noqa: E402
from minideconv.interop.onnx import crosscheck_onnx, from_onnx, onnxruntime_outputs  # noqa: E402

from support import torch_reference  # noqa: E402
from support.modern_layouts import InstanceNormNet, SENet, TinyConvNeXt, randomised  # noqa: E402

pytestmark = pytest.mark.torch
RULES = ("backprop", "deconvnet", "guided")

#: id → (model, input shape, torch.onnx.export options)
EXPORTS = {
    "se": (SENet, (3, 8, 8), {}),
    "se-torchscript": (SENet, (3, 8, 8), dict(dynamo=False)),
    "convnext": (TinyConvNeXt, (3, 32, 32), {}),
    "convnext-torchscript": (TinyConvNeXt, (3, 32, 32), dict(dynamo=False)),
    "instance-norm": (InstanceNormNet, (3, 8, 8), {}),
    "instance-norm-torchscript": (InstanceNormNet, (3, 8, 8), dict(dynamo=False)),
}


def _export(build, shape, options, path):
    model = randomised(build()).float()
    x = np.random.default_rng(0).standard_normal((2,) + shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x),), str(path), input_names=["x"],
                          **options)
    return model, x


@pytest.fixture(scope="module", params=list(EXPORTS))
def exported(request, tmp_path_factory):
    build, shape, options = EXPORTS[request.param]
    if options.get("dynamo", True):
        pytest.importorskip("onnxscript")
    path = tmp_path_factory.mktemp(request.param) / "model.onnx"
    model, x = _export(build, shape, options, path)
    return dict(id=request.param, model=model, x=x, path=path,
                net=from_onnx(path, input_shape=shape))


def _rel(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


def _exact_tolerance(exported):
    """1e-10, or 1e-6 where the exporter folded BatchNorm into the weights in float32."""
    torch_bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in exported["model"].modules())
    our_bns = sum(isinstance(layer, nn.BatchNorm2d) for layer in exported["net"].layers)
    return 1e-10 if torch_bns == our_bns else 1e-6


def test_the_layers_read(exported):
    types = [type(layer) for layer in exported["net"].layers]
    if exported["id"].startswith("se"):
        assert types.count(nn.Mul) == 2 and types.count(nn.GroupNorm) == 2
        # GroupNorm's γ, β and the 0.5·x + 1 after it fold into the last GroupNorm
        assert nn.ChannelAffine not in types
    elif exported["id"].startswith("instance-norm"):
        assert types.count(nn.GroupNorm) == 2 and types.count(nn.ChannelLayerNorm) == 1
    else:
        assert types.count(nn.ChannelLayerNorm) == 6 and types.count(nn.ChannelAffine) == 3
        assert not any(isinstance(layer, nn.Linear) for layer in exported["net"].layers[:-1])


def test_every_node_against_onnxruntime(exported):
    report = crosscheck_onnx(exported["path"], exported["x"])
    print(f"\n{exported['id']}: float32 vs onnxruntime worst {report.worst:.1e} over "
          f"{len(report.nodes)} nodes")
    assert report.passed


def test_float64_logits_and_projections_equal_torch(exported):
    tolerance = _exact_tolerance(exported)
    net, x = exported["net"].astype(np.float64), exported["x"].astype(np.float64)
    model = copy.deepcopy(exported["model"]).double()     # the file's weights, in float64
    ref = torch_reference.TorchReference(model)
    with torch.no_grad():
        assert _rel(net(x), model(torch.from_numpy(x)).numpy()) <= tolerance
    relus = [name for name in ref.names
             if torch_reference.is_relu(ref.node(name), ref.modules)]
    ours = [i for i, layer in enumerate(net.layers) if isinstance(layer, nn.ReLU)]
    assert len(ours) == len(relus)
    # the ReLUs of NCHW values (a channels-last region's are (N, H, W, C) in torch)
    seeds = [(i, name) for i, name in zip(ours, relus) if "block" not in name] + \
        [(len(net.layers) - 1, ref.names[-1])]
    worst = 0.0
    for i, name in seeds:
        activation = net.forward_outputs(x, [i])[i]
        assert _rel(activation, ref.activation(x, name)) <= tolerance, name
        unit = torch_reference.strongest_unit(activation)
        position = unit[1:] if len(unit) == 3 else None
        errors = [_rel(visualize.project(net, x, i, unit[0], position=position, rule=rule),
                       ref.project(x, name, unit, rule)) for rule in RULES]
        worst = max([worst] + errors)
        assert max(errors) <= 1e-6, (name, errors)
    print(f"\n{exported['id']}: {len(seeds)} nodes x 3 rules vs torch, worst {worst:.1e}")


# --------------------------------------------------------------------------- by hand

def _tensor(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _model(nodes, inits, opset=13, shape=(2, 6, 4, 5)):
    graph = helper.make_graph(
        nodes, "products",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


RNG = np.random.default_rng(8)
CONV = [_tensor("w", RNG.standard_normal((6, 6, 1, 1))), _tensor("cb", RNG.standard_normal(6))]
PER_CHANNEL = _tensor("s", RNG.standard_normal((6, 1, 1)))
SHIFT = _tensor("t", RNG.standard_normal((1, 6, 1, 1)))


def _conv(out="c"):
    return helper.make_node("Conv", ["x", "w", "cb"], [out], name="conv")


HANDMADE = {
    "group-norm-18": (
        [_conv(), helper.make_node("GroupNormalization", ["c", "gs", "gb"], ["y"],
                                   name="gn", num_groups=3, epsilon=1e-3)],
        [_tensor("gs", RNG.standard_normal(3)), _tensor("gb", RNG.standard_normal(3))], 18,
        [nn.Conv2d, nn.GroupNorm]),
    "group-norm-21": (
        [_conv(), helper.make_node("GroupNormalization", ["c", "gs", "gb"], ["y"],
                                   name="gn", num_groups=2)],
        [_tensor("gs", RNG.standard_normal(6)), _tensor("gb", RNG.standard_normal(6))], 21,
        [nn.Conv2d, nn.GroupNorm]),
    "instance-norm": (
        [_conv(), helper.make_node("InstanceNormalization", ["c", "is", "ib"], ["y"],
                                   name="in", epsilon=1e-4)],
        [_tensor("is", RNG.standard_normal(6)), _tensor("ib", RNG.standard_normal(6))], 13,
        [nn.Conv2d, nn.GroupNorm]),
    "affine-folded": (       # (x·s + t)·2 + t: one ChannelAffine; the conv keeps its bias
        [_conv(), helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("Mul", ["r", "s"], ["m"], name="mul"),
         helper.make_node("Add", ["t", "m"], ["a"], name="add"),
         helper.make_node("Mul", ["a", "two"], ["m2"], name="mul2"),
         helper.make_node("Add", ["m2", "t"], ["y"], name="add2")],
        [PER_CHANNEL, SHIFT, _tensor("two", 2.0)], 13,
        [nn.Conv2d, nn.ReLU, nn.ChannelAffine]),
    "affine-after-fan-out": (  # the Add reads a ReLU: a ChannelAffine(1, t) of its own
        [_conv(), helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("Add", ["r", "t"], ["a"], name="add"),
         helper.make_node("Mul", ["a", "r"], ["y"], name="gate")],
        [SHIFT], 13, [nn.Conv2d, nn.ReLU, nn.ChannelAffine, nn.Mul]),
    "features-scaled": (       # a per-feature factor of (N, F): ChannelAffine of F
        [_conv(), helper.make_node("GlobalAveragePool", ["c"], ["p"]),
         helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("Mul", ["f", "fs"], ["m"], name="scale"),
         helper.make_node("Add", ["m", "fs"], ["y"], name="shift")],
        [_tensor("fs", RNG.standard_normal((1, 6)))], 13,
        [nn.Conv2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.ChannelAffine]),
    "region-with-constants": (  # Transpose → Mul by (C,) → Relu → Add (C,) → Transpose
        [_conv(), helper.make_node("Transpose", ["c"], ["p"], perm=[0, 2, 3, 1]),
         helper.make_node("Mul", ["p", "sc"], ["m"]),
         helper.make_node("Relu", ["m"], ["r"]),
         helper.make_node("Mul", ["r", "p"], ["g"]),
         helper.make_node("Add", ["g", "sc"], ["a"]),
         helper.make_node("Transpose", ["a"], ["y"], perm=[0, 3, 1, 2])],
        [_tensor("sc", RNG.standard_normal(6))], 13,
        [nn.Conv2d, nn.ChannelAffine, nn.ReLU, nn.Mul, nn.ChannelAffine]),
}


@pytest.mark.parametrize("name", list(HANDMADE))
def test_handmade_graphs_equal_onnxruntime(name):
    nodes, inits, opset, types = HANDMADE[name]
    model = _model(nodes, [*CONV, *inits], opset)
    net = from_onnx(model)
    assert [type(layer) for layer in net.layers] == types
    x = RNG.standard_normal((2, 6, 4, 5)).astype(np.float32)
    expected = onnxruntime_outputs(model, x)["y"]
    error = _rel(net(x), expected)
    assert error <= 1e-5, error
    assert crosscheck_onnx(model, x).passed


@pytest.mark.parametrize("nodes, inits, match", [
    ([_conv(), helper.make_node("Mul", ["c", "v"], ["y"], name="mul")],
     [_tensor("v", np.ones(5))], r"'mul' \(Mul\): its constant has shape \(5,\), not one "
                                 r"value per channel \(6, 1, 1\)"),
    ([_conv(), helper.make_node("LayerNormalization", ["c", "ls"], ["y"], name="ln")],
     [_tensor("ls", np.ones(5))], r"'ln' \(LayerNormalization\): normalises over the axes "
                                  r"from -1 on"),
    ([_conv(), helper.make_node("Transpose", ["c"], ["p"], perm=[0, 2, 3, 1]),
      helper.make_node("Mul", ["p", "c"], ["m"], name="mix"),
      helper.make_node("Transpose", ["m"], ["y"], perm=[0, 3, 1, 2])], [],
     r"'mix' \(Mul\): joins the channels-last value"),
    ([_conv(), helper.make_node("Transpose", ["c"], ["p"], perm=[0, 2, 3, 1]),
      helper.make_node("MaxPool", ["p"], ["y"], name="pool", kernel_shape=[2, 2])], [],
     r"'pool' \(MaxPool\): reads the output of the NCHW → NHWC Transpose"),
    ([_conv(), helper.make_node("Transpose", ["c"], ["p"], perm=[0, 2, 3, 1]),
      helper.make_node("Relu", ["p"], ["y"], name="relu")], [],
     r"perm=\[0, 2, 3, 1\] gives the network's output"),
    ([_conv(), helper.make_node("Reshape", ["c", "shape"], ["g"], name="group"),
      helper.make_node("InstanceNormalization", ["g", "is", "ib"], ["n"]),
      helper.make_node("Relu", ["n"], ["y"], name="relu")],
     [numpy_helper.from_array(np.array([0, 3, -1], np.int64), "shape"),
      _tensor("is", np.ones(3)), _tensor("ib", np.zeros(3))],
     r"'relu' \(Relu\): reads a step of the Reshape → InstanceNormalization → Reshape"),
    ([_conv(), helper.make_node("Reshape", ["c", "flat"], ["f"], name="flatten_all"),
      helper.make_node("Gather", ["f", "idx"], ["y"], name="shuffle")],
     [numpy_helper.from_array(np.array([-1], np.int64), "flat"),
      numpy_helper.from_array(np.arange(240)[::-1].reshape(2, 6, 4, 5).copy(), "idx")],
     r"'shuffle' \(Gather\): gathers from 'flatten_all', the activation flattened batch "
     r"and all, by indices that do not put every value back"),
    ([_conv(), helper.make_node("GroupNormalization", ["c", "gs", "gb"], ["y"], name="gn",
                                num_groups=4)],
     [_tensor("gs", np.ones(4)), _tensor("gb", np.ones(4))],
     r"'gn' \(GroupNormalization\): num_groups=4 does not divide the 6 channels"),
])
def test_what_cannot_be_read_is_refused_naming_the_node(nodes, inits, match):
    with pytest.raises(ValueError, match=match):
        from_onnx(_model(nodes, [*CONV, *inits], 18))
