"""ONNX import of the layers that enlarge an image: the tiny U-Nets of
tests/test_interop_torch_resampling.py exported with ``torch.onnx.export`` (the default
dynamo exporter, the TorchScript one at opset 11, and at opset 9 its Upsample) and read
back with ``from_onnx``: every node against onnxruntime (float32), and in float64 the
output and every rule's projection against the torch reference to 1e-10.  Hand-built
ConvTranspose / Resize nodes for the options torch does not write, and refusals that
name the node and the attribute.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from minideconv import nn  # noqa: E402
from minideconv.interop.onnx import crosscheck_onnx, from_onnx, onnxruntime_outputs  # noqa: E402

from support import torch_reference  # noqa: E402
from test_interop_torch_resampling import UNETS  # noqa: E402

pytestmark = [pytest.mark.torch,
              pytest.mark.filterwarnings("ignore:`nn.functional.upsample:UserWarning")]
SHAPE = (2, 6, 8)

#: id → (U-Net, keyword arguments of torch.onnx.export, the layer it must become)
EXPORTS = {
    "conv_transpose": ("conv_transpose_padded", {}, nn.ConvTranspose2d),
    "conv_transpose-opset11": ("conv_transpose", dict(dynamo=False, opset_version=11),
                               nn.ConvTranspose2d),
    "nearest": ("nearest", {}, nn.Upsample),
    "nearest-opset11": ("nearest", dict(dynamo=False, opset_version=11), nn.Upsample),
    "nearest-opset9": ("nearest_module", dict(dynamo=False, opset_version=9), nn.Upsample),
    "bilinear": ("bilinear", {}, nn.Upsample),
    "bilinear-opset11": ("bilinear", dict(dynamo=False, opset_version=11), nn.Upsample),
    "corners": ("bilinear_corners", {}, nn.Upsample),
    "corners-opset11": ("bilinear_corners", dict(dynamo=False, opset_version=11),
                        nn.Upsample),
    "sizes-opset11": ("interpolate", dict(dynamo=False, opset_version=11), nn.Upsample),
    "padded": ("padded_interpolate", {}, nn.Pad),
    "reflect": ("vgg_reflect", {}, nn.Pad),
    "reflect-opset11": ("vgg_reflect", dict(dynamo=False, opset_version=11), nn.Pad),
}


def _rel(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


@pytest.fixture(scope="module", params=list(EXPORTS))
def exported(request, tmp_path_factory):
    unet, options, kind = EXPORTS[request.param]
    if options.get("dynamo", True):
        pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = UNETS[unet]().float().eval()
    x = np.random.default_rng(0).standard_normal((2,) + SHAPE).astype(np.float32)
    path = tmp_path_factory.mktemp(request.param) / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x),), str(path), input_names=["x"],
                          **options)
    net = from_onnx(str(path), input_shape=SHAPE)
    assert any(isinstance(layer, kind) for layer in net.layers)
    return model, net, x, path


def test_every_node_against_onnxruntime(exported):
    _, _, x, path = exported
    report = crosscheck_onnx(str(path), x)
    assert report.passed, str(report)


def test_float64_output_and_projections_equal_torch(exported):
    model, net, x, _ = exported
    net, x, model = net.astype(np.float64), x.astype(np.float64), model.double()
    try:
        with torch.no_grad():
            assert _rel(net(x), model(torch.from_numpy(x)).numpy()) <= 1e-10
        ref = torch_reference.TorchReference(model)
        trace = net.trace(x)
        out = trace.outputs[-1]
        unit = torch_reference.strongest_unit(out)
        index = (slice(None),) + unit
        for rule in ("backprop", "deconvnet", "guided"):
            seed = np.zeros_like(out)
            seed[index] = out[index]
            ours = net.backward(seed, trace, rule=rule)
            assert _rel(ours, ref.project(x, ref.names[-1], unit, rule)) <= 1e-10, rule
    finally:
        model.float()


# --------------------------------------------------------------------------- by hand

def _model(nodes, inits=(), x_shape=(1, 4, 5, 6), opset=13):
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def assert_equals_onnxruntime(model):
    x = np.random.default_rng(2).standard_normal((1, 4, 5, 6)).astype(np.float32)
    expected = onnxruntime_outputs(model, x)["y"]
    ours = from_onnx(model)(x)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


W = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
SCALES = np.array([1, 1, 2, 1.5], np.float32)


@pytest.mark.parametrize("attrs", [
    dict(strides=[2, 2], output_shape=[11, 12]),
    dict(strides=[1, 3], auto_pad="SAME_UPPER"),
    dict(strides=[2, 3], auto_pad="SAME_LOWER"),
    dict(strides=[2, 2], pads=[1, 0, 0, 0], output_padding=[0, 1]),
    dict(strides=[3, 2], dilations=[2, 1], pads=[2, 1, 2, 1], output_padding=[1, 1]),
])
def test_conv_transpose_options_equal_onnxruntime(attrs):
    model = _model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up",
                                     **attrs)], [("w", W)])
    assert_equals_onnxruntime(model)


@pytest.mark.parametrize("mode, coordinates, rounding", [
    ("nearest", "asymmetric", "floor"),
    ("nearest", "half_pixel", "round_prefer_ceil"),
    ("linear", "half_pixel", "floor"),
    ("linear", "pytorch_half_pixel", "floor"),
    ("linear", "align_corners", "floor"),
])
@pytest.mark.parametrize("by", ["scales", "sizes"])
def test_resize_modes_equal_onnxruntime(mode, coordinates, rounding, by):
    inputs = ["x", "", "s"] if by == "scales" else ["x", "", "", "s"]
    value = SCALES if by == "scales" else np.array([1, 4, 9, 7], np.int64)
    model = _model([helper.make_node("Resize", inputs, ["y"], name="rs", mode=mode,
                                     coordinate_transformation_mode=coordinates,
                                     nearest_mode=rounding)], [("s", value)])
    assert_equals_onnxruntime(model)


@pytest.mark.parametrize("node, inits, match", [
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="cubic"),
     [("s", SCALES)], r"'rs' \(Resize\): mode='cubic'"),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="linear",
                      coordinate_transformation_mode="asymmetric"),
     [("s", SCALES)], r"'rs' \(Resize\): .*coordinate_transformation_mode='asymmetric'"),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="nearest"),
     [("s", SCALES)], r"'rs' \(Resize\): coordinate_transformation_mode='half_pixel' "
                      r"with nearest_mode='round_prefer_floor'"),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="linear",
                      antialias=1),
     [("s", SCALES)], r"'rs' \(Resize\): antialias=1"),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="linear"),
     [("s", np.array([1, 2, 2, 2], np.float32))], r"'rs' \(Resize\): scales .* N or C"),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="linear",
                      coordinate_transformation_mode="align_corners"),
     [("s", np.array([1, 1, 0.6, 0.6], np.float32))],
     r"'rs' \(Resize\): coordinate_transformation_mode='align_corners' with scales"),
    (helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="ct", pads=[0, 0, 2, 0]),
     [("w", W)], r"'ct' \(ConvTranspose\): pads \(start 0, end 2\)"),
])
def test_what_cannot_be_read_is_refused_naming_node_and_attribute(node, inits, match):
    with pytest.raises(ValueError, match=match):
        from_onnx(_model([node], inits, opset=19 if "antialias" in match else 13))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("opset", [11, 19])
def test_pad_modes_equal_onnxruntime(mode, opset):
    pads = np.array([0, 0, 2, 1, 0, 0, 1, 3], np.int64)
    inputs, inits = ["x", "p"], [("p", pads)]
    if mode == "constant":
        inputs, inits = inputs + ["v"], inits + [("v", np.array(0.75, np.float32))]
    assert_equals_onnxruntime(_model([helper.make_node("Pad", inputs, ["y"], name="pd",
                                                       mode=mode)], inits, opset=opset))


def test_global_max_pool_equals_onnxruntime():
    net = from_onnx(_model([helper.make_node("GlobalMaxPool", ["x"], ["y"], name="gmp")]))
    assert isinstance(net.layers[0], nn.AdaptiveMaxPool2d)
    assert_equals_onnxruntime(_model([helper.make_node("GlobalMaxPool", ["x"], ["y"])]))


def test_pad_of_the_channels_is_refused():
    model = _model([helper.make_node("Pad", ["x", "p"], ["y"], name="pd")],
                   [("p", np.array([0, 1, 0, 0, 0, 0, 0, 0], np.int64))])
    with pytest.raises(ValueError, match=r"'pd' \(Pad\): pads .* the batch or the channels"):
        from_onnx(model)


def test_upsample_linear_of_opset_9_is_refused():
    model = _model([helper.make_node("Upsample", ["x", "s"], ["y"], name="up",
                                     mode="linear")], [("s", SCALES)], opset=9)
    with pytest.raises(ValueError, match=r"'up' \(Upsample\): mode='linear'.*asymmetric"):
        from_onnx(model)
