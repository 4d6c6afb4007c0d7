"""ONNX import of the model zoo's classifiers, and of the operations they need.

* The nine "light" models the onnx package ships (``onnx/backend/test/data/light``: the
  zoo's architectures — AlexNet, ZFNet-512, VGG-19, ResNet-50, GoogLeNet, Inception-v2,
  SqueezeNet, ShuffleNet, DenseNet-121 — with weights written by ConstantOfShape, opset
  9): ``from_onnx`` of each, run on the input onnx's backend test feeds them (arange(n)
  / n in the input's shape, ``generate_dummy_data`` with random=False), equals the
  shipped reference output within onnx's own tolerances, and every node equals
  onnxruntime's value of its tensor (``crosscheck_onnx``, float32 both sides).
* One-node and few-node graphs (onnx.helper) for each new reading, against
  onnxruntime: Softmax before and from opset 13, LRN (an even size: ONNX's window),
  the channel shuffle's Reshape → Transpose → Reshape, Sum, a one-input Concat,
  ConstantOfShape, a BatchNorm's Mul / Add folded, asymmetric pads; and the refusals.
* SqueezeNet's architecture with random weights on a small image: the three rules'
  projections from its logits against PyTorch (``crosscheck``: autograd, rule ReLUs as
  autograd Functions) in float64.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from minideconv import nn  # noqa: E402
from minideconv.interop.onnx import (crosscheck_onnx, from_onnx,  # noqa: E402
                                     onnxruntime_outputs)

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")

#: model → (rtol of onnx's backend test, a layer type its reading must contain)
ZOO = {"bvlc_alexnet": (1e-3, nn.LocalResponseNorm), "zfnet512": (1e-3, nn.LocalResponseNorm),
       "vgg19": (1e-3, nn.Linear), "resnet50": (1e-3, nn.Add),
       "inception_v1": (1e-3, nn.LocalResponseNorm), "inception_v2": (1e-3, nn.Concat),
       "squeezenet": (1e-3, nn.Concat), "shufflenet": (1e-3, nn.ChannelShuffle),
       "densenet121": (2e-3, nn.BatchNorm2d)}
#: float32 on both sides, summed in other orders: each node's max relative error
NODE_TOLERANCE = 5e-5


def backend_test_input(model):
    """The input onnx's backend test feeds a light model: arange(n) / n, float32."""
    constants = {tensor.name for tensor in model.graph.initializer}
    (x,) = [v for v in model.graph.input if v.name not in constants]
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1
                  for d in x.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_a_light_zoo_model_gives_the_reference_output_and_onnxruntimes(name):
    model = onnx.load(os.path.join(LIGHT, f"light_{name}.onnx"))
    reference = numpy_helper.to_array(
        onnx.load_tensor(os.path.join(LIGHT, f"light_{name}_output_0.pb")))
    rtol, kind = ZOO[name]
    x = backend_test_input(model)
    net = from_onnx(model)
    assert any(isinstance(layer, kind) for layer in net.layers)
    y = net(x)
    np.testing.assert_allclose(y.reshape(reference.shape), reference, rtol=rtol, atol=1e-7)
    ours = onnxruntime_outputs(model, x)[model.graph.output[0].name]
    np.testing.assert_allclose(y.reshape(ours.shape), ours, rtol=rtol, atol=1e-7)
    report = crosscheck_onnx(model, x, tolerance=NODE_TOLERANCE)
    assert report.passed, str(report)
    assert len(report.nodes) >= len(net.layers) - 2


def test_a_zoo_classifier_projects_from_its_logits_before_the_softmax():
    net = from_onnx(os.path.join(LIGHT, "light_vgg19.onnx"))
    assert isinstance(net.layers[-1], nn.Softmax)
    logits = net.output_layer()
    assert isinstance(net.layers[logits], nn.Linear) and logits == len(net.layers) - 2


def test_squeezenet_projections_from_the_logits_equal_torch_autograd():
    pytest.importorskip("torch")
    from minideconv.interop.torch import crosscheck
    net = from_onnx(os.path.join(LIGHT, "light_squeezenet.onnx"), input_shape=(3, 40, 40))
    rng = np.random.default_rng(9)
    layers = []                 # the file's weights are all 0.02: redrawn, He-scaled
    for layer in net.layers:
        if isinstance(layer, nn.Conv2d):
            fan_in = int(np.prod(layer.weight.shape[1:]))
            layer = nn.Conv2d.from_config(layer.config(), {
                "weight": rng.normal(size=layer.weight.shape) * np.sqrt(2 / fan_in),
                "bias": rng.normal(size=layer.weight.shape[0]) * 0.1})
        layers.append(layer.astype(np.float64))
    net = net.with_layers(layers)
    relu = max(i for i, layer in enumerate(net.layers[:20]) if isinstance(layer, nn.ReLU))
    report = crosscheck(net, rng.uniform(size=(1, 3, 40, 40)),
                        layers=[net.output_layer(), relu])
    assert report.passed, str(report)


# --------------------------------------------------------------------------- small graphs

def one_input_model(nodes, x_shape, constants=(), opset=13):
    """A model of ``nodes`` reading "x" (float32 ``x_shape``) and giving "y"."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in constants])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def assert_matches_onnxruntime(model, x, layer_type=None):
    net = from_onnx(model)
    if layer_type is not None:
        assert [type(layer) for layer in net.layers] == layer_type
    y = net(x)
    ours = onnxruntime_outputs(model, x)["y"]
    np.testing.assert_allclose(y, ours, rtol=1e-5, atol=1e-6)
    return net


@pytest.fixture
def rng():
    return np.random.default_rng(2027)


def softmax_model(opset, axis, what):
    """Softmax(axis) of the (2, 7, 3, 2) input ("chw"), of its average (2, 7, 1, 1)
    ("c11") or of that flattened to (2, 7) ("features")."""
    before = {"chw": [], "c11": [helper.make_node("GlobalAveragePool", ["x"], ["s"])],
              "features": [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
                           helper.make_node("Flatten", ["p"], ["s"])]}[what]
    attrs = {} if axis is None else {"axis": axis}
    softmax = helper.make_node("Softmax", ["s" if before else "x"], ["y"], **attrs)
    return one_input_model(before + [softmax], (2, 7, 3, 2), opset=opset)


@pytest.mark.parametrize("opset, axis, what", [(9, None, "features"), (9, 1, "c11"),
                                               (11, -1, "features"), (13, None, "features"),
                                               (13, 1, "chw"), (13, -3, "chw")])
def test_softmax_over_the_channels_is_read_at_every_opset(opset, axis, what, rng):
    net = assert_matches_onnxruntime(softmax_model(opset, axis, what),
                                     rng.normal(size=(2, 7, 3, 2)).astype(np.float32))
    assert isinstance(net.layers[-1], nn.Softmax)


@pytest.mark.parametrize("opset, axis, what", [(9, None, "chw"), (13, None, "chw"),
                                               (11, 2, "chw"), (13, 0, "features")])
def test_a_softmax_over_other_axes_is_refused(opset, axis, what):
    with pytest.raises(ValueError, match="Softmax.*over the channels"):
        from_onnx(softmax_model(opset, axis, what))


def onnx_lrn(x, size, alpha, beta, bias):
    """ONNX's LRN as its specification and backend test write it: the window of c is
    [c − ⌊(size − 1)/2⌋, c + ⌈(size − 1)/2⌉]."""
    square_sum = np.zeros_like(x)
    for c in range(x.shape[1]):
        low, high = c - (size - 1) // 2, c + size // 2       # ⌈(size − 1)/2⌉ = size // 2
        square_sum[:, c] = (x[:, max(0, low):high + 1] ** 2).sum(axis=1)
    return x / (bias + alpha / size * square_sum) ** beta


@pytest.mark.parametrize("size", [1, 3, 4, 5, 6])
def test_lrn_equals_onnx_with_its_window(size, rng):
    # onnxruntime's LRN takes odd sizes only (and onnx.reference's LRN sums over the
    # batch's range of channels): an even size against the specification's formula
    model = one_input_model([helper.make_node("LRN", ["x"], ["y"], size=size, alpha=0.5,
                                              beta=0.75, bias=1.5)], (2, 6, 3, 3))
    x = rng.normal(size=(2, 6, 3, 3)).astype(np.float32)
    net = from_onnx(model)          # (attributes are float32: these three are exact)
    assert [type(layer) for layer in net.layers] == [nn.LocalResponseNorm]
    np.testing.assert_allclose(net(x.astype(np.float64)),
                               onnx_lrn(x.astype(np.float64), size, 0.5, 0.75, 1.5),
                               rtol=1e-12)
    if size % 2:
        assert_matches_onnxruntime(model, x)
    assert net.layers[0].before == (size - 1) // 2


def shuffle_nodes(groups, channels, hw, first=1, perm=(0, 2, 1, 3, 4)):
    """Reshape (N, g, C/g, H, W) → Transpose → Reshape (N, C, H, W), as the zoo writes."""
    constants = [("split", np.array([first, groups, channels // groups, *hw], np.int64)),
                 ("join", np.array([first, channels, *hw], np.int64))]
    nodes = [helper.make_node("Reshape", ["x", "split"], ["grouped"]),
             helper.make_node("Transpose", ["grouped"], ["swapped"], perm=list(perm)),
             helper.make_node("Reshape", ["swapped", "join"], ["y"])]
    return nodes, constants


@pytest.mark.parametrize("first", [1, 0, -1])
def test_the_channel_shuffle_chain_is_one_layer(first, rng):
    nodes, constants = shuffle_nodes(3, 6, (2, 2), first)
    model = one_input_model(nodes, (1, 6, 2, 2), constants)
    net = assert_matches_onnxruntime(model, rng.normal(size=(1, 6, 2, 2)).astype(np.float32),
                                     [nn.ChannelShuffle])
    assert net.layers[0].groups == 3


@pytest.mark.parametrize("change, message", [
    (dict(perm=(0, 1, 2, 4, 3)), "perm"),
    (dict(hw=(4, 1)), "5-D reshape"),
])
def test_a_reshape_or_transpose_that_is_no_channel_shuffle_is_refused(change, message):
    hw = change.pop("hw", (2, 2))
    nodes, constants = shuffle_nodes(3, 6, hw, **change)
    if hw != (2, 2):
        constants[1] = ("join", np.array([1, 6, 2, 2], np.int64))
    model = one_input_model(nodes, (1, 6, 2, 2), constants)
    with pytest.raises(ValueError, match=message):
        from_onnx(model)


def test_a_channel_shuffle_step_read_by_another_node_is_refused():
    nodes, constants = shuffle_nodes(3, 6, (2, 2))
    nodes[2] = helper.make_node("Relu", ["swapped"], ["y"])
    with pytest.raises(ValueError, match="step of the channel shuffle"):
        from_onnx(one_input_model(nodes, (1, 6, 2, 2), constants))


def test_sum_of_activations_and_of_constants(rng):
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Sum", ["c1", "c2"], ["bias"]),
             helper.make_node("Conv", ["x", "w", "bias"], ["b"]),
             helper.make_node("Sum", ["x", "a", "b"], ["y"])]
    constants = [("c1", rng.normal(size=3).astype(np.float32)),
                 ("c2", rng.normal(size=3).astype(np.float32)),
                 ("w", rng.normal(size=(3, 3, 1, 1)).astype(np.float32))]
    assert_matches_onnxruntime(one_input_model(nodes, (2, 3, 4, 4), constants),
                               rng.normal(size=(2, 3, 4, 4)).astype(np.float32),
                               [nn.ReLU, nn.Conv2d, nn.Add])


def test_a_concat_of_one_input_is_the_identity(rng):
    nodes = [helper.make_node("Concat", ["x"], ["y"], axis=1)]
    assert_matches_onnxruntime(one_input_model(nodes, (2, 3, 4, 4)),
                               rng.normal(size=(2, 3, 4, 4)).astype(np.float32),
                               [nn.Identity])


def test_constant_of_shape_and_a_batch_norms_mul_and_add_fold(rng):
    # DenseNet-121 / Inception-v2 of the zoo: BN(γ = 1 … ) → Mul(Unsqueeze(m)) → Add(…)
    c = 4
    nodes = [helper.make_node("ConstantOfShape", ["c_shape"], ["ones"],
                              value=numpy_helper.from_array(np.ones(1, np.float32))),
             helper.make_node("BatchNormalization", ["x", "ones", "beta", "mean", "var"],
                              ["bn"]),
             helper.make_node("Unsqueeze", ["m"], ["m3"], axes=[1, 2]),
             helper.make_node("Mul", ["bn", "m3"], ["scaled"]),
             helper.make_node("Unsqueeze", ["a"], ["a3"], axes=[1, 2]),
             helper.make_node("Sub", ["a3", "half"], ["a3h"]),
             helper.make_node("Add", ["scaled", "a3h"], ["shifted"]),
             helper.make_node("Relu", ["shifted"], ["y"])]
    constants = [("c_shape", np.array([c], np.int64)),
                 ("beta", rng.normal(size=c).astype(np.float32)),
                 ("mean", rng.normal(size=c).astype(np.float32)),
                 ("var", rng.uniform(0.5, 2, size=c).astype(np.float32)),
                 ("m", rng.normal(size=c).astype(np.float32)),
                 ("a", rng.normal(size=c).astype(np.float32)),
                 ("half", np.array(0.5, np.float32))]
    model = one_input_model(nodes, (2, c, 3, 3), constants, opset=11)
    assert_matches_onnxruntime(model, rng.normal(size=(2, c, 3, 3)).astype(np.float32),
                               [nn.BatchNorm2d, nn.ReLU])


def test_a_mul_after_a_batch_norm_read_twice_is_a_channel_affine(rng):
    """The fold needs the batch norm's output read by the Mul alone; read twice, the Mul
    is its own per-channel scale, and both outputs stay right."""
    c = 3
    nodes = [helper.make_node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"],
                              ["bn"]),
             helper.make_node("Mul", ["bn", "m"], ["scaled"]),
             helper.make_node("Add", ["scaled", "bn"], ["y"])]
    constants = [("gamma", rng.uniform(0.5, 2, size=c).astype(np.float32)),
                 ("beta", rng.normal(size=c).astype(np.float32)),
                 ("mean", rng.normal(size=c).astype(np.float32)),
                 ("var", rng.uniform(0.5, 2, size=c).astype(np.float32)),
                 ("m", rng.normal(size=(c, 1, 1)).astype(np.float32))]
    model = one_input_model(nodes, (2, c, 3, 3), constants)
    assert_matches_onnxruntime(model, rng.normal(size=(2, c, 3, 3)).astype(np.float32),
                               [nn.BatchNorm2d, nn.ChannelAffine, nn.Add])


@pytest.mark.parametrize("op, pads", [
    (op, pads) for op in ("Conv", "MaxPool", "AveragePool")
    for pads in (dict(auto_pad="SAME_UPPER"), dict(pads=[0, 0, 1, 1]))
] + [("Conv", dict(auto_pad="SAME_LOWER")), ("Conv", dict(pads=[1, 0, 2, 1]))])
def test_asymmetric_pads_equal_onnxruntime(op, pads, rng):
    # (a pool padded more at the top / left is refused: the next test)
    attrs = dict(strides=[2, 2], kernel_shape=[3, 3], **pads)
    inputs = ["x", "w"] if op == "Conv" else ["x"]
    model = one_input_model([helper.make_node(op, inputs, ["y"], **attrs)], (1, 2, 8, 7),
                            [("w", rng.normal(size=(3, 2, 3, 3)).astype(np.float32))]
                            if op == "Conv" else [])
    assert_matches_onnxruntime(model, rng.normal(size=(1, 2, 8, 7)).astype(np.float32))


@pytest.mark.parametrize("attrs", [dict(auto_pad="SAME_LOWER"),
                                   dict(pads=[0, 0, 1, 1], count_include_pad=1)])
def test_an_average_pool_whose_pads_ceil_mode_cannot_give_is_refused(attrs):
    model = one_input_model([helper.make_node("AveragePool", ["x"], ["y"], strides=[2, 2],
                                              kernel_shape=[3, 3], **attrs)], (1, 2, 8, 8))
    with pytest.raises(ValueError, match="differ between the two sides"):
        from_onnx(model)


def test_a_pool_whose_one_window_holds_the_input_reads_as_a_window_of_its_size(rng):
    # GoogLeNet's last average pool: 7×7 over a 6×6 map padded by one at the bottom/right
    model = one_input_model([helper.make_node("AveragePool", ["x"], ["y"],
                                              kernel_shape=[7, 7], pads=[0, 0, 1, 1])],
                            (1, 3, 6, 6))
    net = assert_matches_onnxruntime(model, rng.normal(size=(1, 3, 6, 6)).astype(np.float32))
    assert net.layers[0].kernel_size == (6, 6)


def test_a_weight_listed_among_the_inputs_is_not_the_images(rng):
    # old files list their weights as graph inputs: initialised, or computed here
    nodes = [helper.make_node("ConstantOfShape", ["w_shape"], ["w"],
                              value=numpy_helper.from_array(np.full(1, 0.5, np.float32))),
             helper.make_node("Conv", ["x", "w", "b"], ["y"])]
    model = one_input_model(nodes, (1, 2, 4, 4), [("w_shape", np.array([3, 2, 1, 1])),
                                                  ("b", np.ones(3, np.float32))])
    for name in ("w", "b", "w_shape"):
        model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    x = rng.normal(size=(1, 2, 4, 4)).astype(np.float32)
    net = from_onnx(model)
    np.testing.assert_allclose(net(x), 0.5 * x.sum(axis=1, keepdims=True).repeat(3, 1) + 1,
                               rtol=1e-6)


def test_asymmetric_pool_pads_no_pooling_can_take_are_refused_naming_the_node():
    model = one_input_model([helper.make_node("MaxPool", ["x"], ["y"], name="mp",
                                              kernel_shape=[3, 3], pads=[2, 2, 3, 3])],
                            (1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"'mp' \(MaxPool\): pads"):
        from_onnx(model)


def test_an_average_that_counts_its_pads_keeps_them_in_one_whole_window(rng):
    model = one_input_model([helper.make_node("AveragePool", ["x"], ["y"],
                                              kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                              count_include_pad=1)], (1, 2, 1, 1))
    net = assert_matches_onnxruntime(model, rng.normal(size=(1, 2, 1, 1)).astype(np.float32))
    assert net.layers[0].kernel_size == (3, 3)


@pytest.mark.parametrize("export", [dict(dynamo=False),
                                    dict(dynamo=False, dynamic_axes={"x": {0: "n"}}),
                                    dict()], ids=["torchscript", "torchscript-dynamic",
                                                  "dynamo"])
def test_torchs_exports_of_a_channel_shuffle_and_a_softmax_are_read(export, tmp_path):
    torch = pytest.importorskip("torch")
    if not export:
        pytest.importorskip("onnxscript")       # the default exporter needs it

    class Shuffle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            x = self.conv(x)
            n, c, h, w = x.size()
            x = torch.transpose(x.view(n, 2, c // 2, h, w), 1, 2).contiguous()
            x = torch.cat([x.view(n, -1, h, w)], 1)
            return torch.softmax(x.mean((2, 3)), 1)

    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    path = tmp_path / "shuffle.onnx"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Shuffle().eval(), (x,), path, input_names=["x"], **export)
    report = crosscheck_onnx(path, x.numpy())
    assert report.passed, str(report)
    assert "ChannelShuffle" in [check.kind for check in report.nodes]
    assert report.nodes[-1].kind == "Softmax"


@pytest.mark.parametrize("op", ["Sub", "Div"])
def test_sub_and_div_of_an_activation_are_refused(op):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r", "k"], ["y"])]
    model = one_input_model(nodes, (1, 2, 3, 3), [("k", np.ones((2, 1, 1), np.float32))])
    with pytest.raises(ValueError, match=f"{op} of an activation: .*constants only"):
        from_onnx(model)
