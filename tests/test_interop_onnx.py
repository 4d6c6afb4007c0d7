"""ONNX import (``minideconv.interop.onnx``): torchvision's layouts exported with
``torch.onnx.export`` and read back with ``from_onnx``.

* The forward pass, node by node, against onnxruntime.  onnxruntime's CPU Conv has no
  float64 kernel, so the files are float32 and onnxruntime computes in float32: the
  logits must agree to 1e-6 relative, every node to ``TOLERANCE`` (two float32
  implementations that sum in different orders round differently).
* The same network in float64 (the float32 weights cast exactly) against the torch model
  in float64 with those same weights: logits and every rule's projection, from several
  ReLUs and the logits, against the independent torch reference
  (tests/support/torch_reference.py) to 1e-10 — or to 1e-6 where the exporter folded
  BatchNorm into the convolutions' weights in float32 (then the file's network is not
  exactly torch's: a float32 rounding apart).
* A hand-built model (onnx.helper) with the options torch does not write; errors.

Exports: the default exporter (``dynamo=True`` since torch 2.9, which needs onnxscript) —
what ``torch.onnx.export(model, (x,), path)`` does — for every network, and the
TorchScript one (``dynamo=False``) for the two patterns only it writes: BatchNormalization
nodes (``do_constant_folding=False``) and ``x.view(x.size(0), -1)`` as
Shape → Gather → Unsqueeze → Concat → Reshape (a dynamic batch axis).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from minideconv import nn  # noqa: E402
from minideconv.interop import onnx as md_onnx  # noqa: E402
from minideconv.interop.onnx import (crosscheck_onnx, from_onnx,  # noqa: E402
                                     onnxruntime_outputs)

from support import onnx_exports, torch_reference, torchvision_layouts  # noqa: E402
from support.cli import main_status  # noqa: E402

pytestmark = pytest.mark.torch

RULES = ("backprop", "deconvnet", "guided")
N_IMAGES = 2

#: id → (layout, keyword arguments of torch.onnx.export)
EXPORTS = {
    "alexnet": ("alexnet", {}),
    "vgg16": ("vgg16", {}),
    "vgg16_bn": ("vgg16_bn", {}),
    "resnet18": ("resnet18", {}),
    "concat": ("concat", {}),
    "resnet18-torchscript": ("resnet18", dict(dynamo=False, do_constant_folding=False)),
    "concat-torchscript": ("concat", dict(dynamo=False,
                                          dynamic_axes={"x": {0: "batch"}})),
}


@pytest.fixture(scope="module", params=list(EXPORTS))
def exported(request, tmp_path_factory):
    """One export per network and module run: the float32 torch model exported, the
    file, ``from_onnx`` of it, and images."""
    layout, options = EXPORTS[request.param]
    if options.get("dynamo", True):
        pytest.importorskip("onnxscript")
    model, shape = torchvision_layouts.build(layout)
    yield dict(onnx_exports.export(model, shape, tmp_path_factory.mktemp(request.param),
                                   **options), id=request.param)


def _rel(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


def _exact_tolerance(exported):
    """1e-10, or 1e-6 where the exporter folded BatchNorm into the weights in float32."""
    torch_bns = sum(isinstance(m, torch.nn.BatchNorm2d)
                    for m in exported["model"].modules())
    our_bns = sum(isinstance(layer, nn.BatchNorm2d) for layer in exported["net"].layers)
    return 1e-10 if torch_bns == our_bns else 1e-6


# --------------------------------------------------------------------------- exported nets

def test_import_keeps_names_and_dtype(exported):
    net = exported["net"]
    assert isinstance(net, nn.Graph)
    assert len(set(net.names)) == len(net.names)
    assert all(a.dtype == np.float32
               for layer in net.layers for a in layer.params().values())
    assert net.input_shape == exported["shape"]
    kinds = {type(layer).__name__ for layer in net.layers}
    if exported["id"] == "resnet18-torchscript":
        assert {"BatchNorm2d", "Add", "AdaptiveAvgPool2d", "Flatten"} <= kinds
    if exported["id"].startswith("concat"):
        assert {"Concat", "AvgPool2d", "Flatten"} <= kinds
    if exported["id"] in ("alexnet", "vgg16", "vgg16_bn"):
        assert "AdaptiveAvgPool2d" in kinds          # the gather chain, read back


def test_forward_against_onnxruntime(exported):
    report = crosscheck_onnx(exported["proto"], exported["x"])
    print(f"\n{exported['id']}: float32 vs onnxruntime worst {report.worst:.2e}, "
          f"logits {report.nodes[-1].rel:.2e}")
    assert report.nodes[-1].index == len(exported["net"].layers) - 1
    assert report.nodes[-1].rel <= 1e-6, str(report)
    assert report.passed, str(report)
    report64 = crosscheck_onnx(exported["proto"], exported["x"], dtype=np.float64)
    print(f"{exported['id']}: float64 vs onnxruntime worst {report64.worst:.2e}, "
          f"logits {report64.nodes[-1].rel:.2e}")
    assert report64.nodes[-1].rel <= 1e-6, str(report64)
    assert report64.passed, str(report64)


def test_forward_equals_torch_in_float64(exported):
    with onnx_exports.in_float64(exported) as (net, x, model), torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    error = _rel(net(x), expected)
    print(f"\n{exported['id']}: float64 logits vs torch {error:.2e}")
    assert error <= _exact_tolerance(exported)


def test_projections_against_torch_reference(exported):
    """Every rule's projection of the strongest unit of several ReLUs and of the logits,
    in float64, against autograd (backprop) and autograd with the rule's ReLU."""
    tolerance = _exact_tolerance(exported)
    with onnx_exports.in_float64(exported) as (net, x, model):
        ref = torch_reference.TorchReference(model)
        ref_relus = [name for name in ref.names
                     if torch_reference.is_relu(ref.node(name), ref.modules)]
        our_relus = [i for i, layer in enumerate(net.layers) if isinstance(layer, nn.ReLU)]
        assert len(our_relus) == len(ref_relus)
        picks = sorted({0, len(our_relus) // 2, len(our_relus) - 1})
        seeds = [(our_relus[k], ref_relus[k]) for k in picks] + \
            [(len(net.layers) - 1, ref.names[-1])]
        worst = 0.0
        for i, name in seeds:
            trace = net.trace(x, upto=i)
            activation = trace.outputs[i]
            assert _rel(activation, ref.activation(x, name)) <= tolerance, name
            unit = torch_reference.strongest_unit(activation)
            index = (slice(None),) + unit
            for rule in RULES:
                seed = np.zeros_like(activation)
                seed[index] = activation[index]
                ours = net.backward(seed, trace, start=i, rule=rule)
                error = _rel(ours, ref.project(x, name, unit, rule))
                worst = max(worst, error)
                assert error <= tolerance, (net.names[i], name, rule, error)
    print(f"\n{exported['id']}: projections vs torch, worst {worst:.2e} "
          f"({len(seeds)} nodes x 3 rules)")


def test_float64_export_keeps_float64(tmp_path):
    """A float64 file (which onnxruntime's CPU Conv cannot run) reads as float64 weights,
    and its logits are torch's to float64 rounding."""
    model, shape = torchvision_layouts.build("concat")            # float64
    x = np.random.default_rng(5).standard_normal((2,) + shape)
    path = tmp_path / "concat64.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x),), str(path), dynamo=False)
    net = from_onnx(path)
    assert {a.dtype for layer in net.layers for a in layer.params().values()} == \
        {np.dtype(np.float64)}
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert _rel(net(x), expected) <= 1e-12


# --------------------------------------------------------------------------- by hand

def _tensor(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def handmade_model(rng=None):
    """Every option torch's exporter does not write: SAME_UPPER with an even kernel,
    groups and dilations, a Conv bias as a separate Add, BatchNormalization with its own
    epsilon, ceil_mode pools, count_include_pad both ways, Identity, GlobalAveragePool,
    Reshape to a constant (0, -1), Gemm with alpha, beta and either transB, Dropout with
    a ratio input, MatMul + Add."""
    rng = np.random.default_rng(1) if rng is None else rng

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]) or 1)) \
            .astype(np.float32)

    inits = [
        _tensor("w1", w(6, 4, 4, 4)), _tensor("b1", w(6)),
        _tensor("bn_scale", (rng.random(6) + 0.5).astype(np.float32)),
        _tensor("bn_bias", w(6)), _tensor("bn_mean", w(6)),
        _tensor("bn_var", (rng.random(6) + 0.5).astype(np.float32)),
        _tensor("w2", w(8, 3, 3, 3)), _tensor("bias2", w(1, 8, 1, 1)),
        _tensor("w3", w(8, 6, 1, 1)),
        _tensor("shape", np.array([0, -1], dtype=np.int64)),
        _tensor("g1_b", w(16, 12)), _tensor("g1_c", w(12)),
        _tensor("ratio", np.array(0.3, dtype=np.float32)),
        _tensor("g2_b", w(10, 12)), _tensor("g2_c", w(1, 10)),
        _tensor("mm_w", w(10, 7)), _tensor("mm_b", w(7)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv_same",
                         auto_pad="SAME_UPPER"),
        helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean",
                                                "bn_var"], ["bn"], name="bn", epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv_grouped", group=2,
                         dilations=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("Add", ["bias2", "c2"], ["c2b"], name="bias_add"),
        helper.make_node("Conv", ["r1", "w3"], ["c3"], name="conv_1x1"),
        helper.make_node("Add", ["c2b", "c3"], ["sum"], name="residual"),
        helper.make_node("Relu", ["sum"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["mp"], name="maxpool", kernel_shape=[2, 2],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("AveragePool", ["r2"], ["ap"], name="avgpool_pad",
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         count_include_pad=1),
        helper.make_node("Concat", ["mp", "ap"], ["cat"], name="concat", axis=1),
        helper.make_node("AveragePool", ["cat"], ["ap2"], name="avgpool_ceil",
                         kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("Identity", ["ap2"], ["id"], name="identity"),
        helper.make_node("GlobalAveragePool", ["id"], ["gap"], name="gap"),
        helper.make_node("Reshape", ["gap", "shape"], ["flat"], name="reshape"),
        helper.make_node("Gemm", ["flat", "g1_b", "g1_c"], ["g1"], name="gemm_plain",
                         alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["g1"], ["r3"], name="relu3"),
        helper.make_node("Dropout", ["r3", "ratio"], ["d"], name="dropout"),
        helper.make_node("Gemm", ["d", "g2_b", "g2_c"], ["g2"], name="gemm_transposed",
                         alpha=1.5, beta=0.25, transB=1),
        helper.make_node("MatMul", ["g2", "mm_w"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "mm_b"], ["y"], name="matmul_bias"),
    ]
    graph = helper.make_graph(
        nodes, "handmade",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 9, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 7])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def test_handmade_model_reads_every_option():
    model = handmade_model()
    net = from_onnx(model)
    assert net.names == ["conv_same", "bn", "relu1", "conv_grouped", "conv_1x1",
                         "residual", "relu2", "maxpool", "avgpool_pad", "concat",
                         "avgpool_ceil", "identity", "gap", "reshape", "gemm_plain",
                         "relu3", "dropout", "gemm_transposed", "matmul"]
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "Conv2d", "Add", "ReLU",
                     "MaxPool2d", "AvgPool2d", "Concat", "AvgPool2d", "Identity",
                     "AdaptiveAvgPool2d", "Flatten", "Linear", "ReLU", "Dropout",
                     "Linear", "Linear"]
    layers = dict(zip(net.names, net.layers))
    assert layers["conv_same"].padding == "same"
    assert layers["conv_grouped"].groups == 2 and layers["conv_grouped"].dilation == (2, 2)
    assert layers["conv_grouped"].bias is not None            # the Add, folded
    assert layers["matmul"].bias is not None
    assert layers["avgpool_pad"].count_include_pad and \
        not layers["avgpool_ceil"].count_include_pad
    assert layers["dropout"].p == pytest.approx(0.3)
    assert layers["bn"].eps == pytest.approx(1e-3)
    assert net.input_shape == (4, 9, 9)
    assert net.layer_shapes()[-1] == (7,)

    x = np.random.default_rng(2).standard_normal((3, 4, 9, 9)).astype(np.float32)
    for dtype in (np.float32, np.float64):
        report = crosscheck_onnx(model, x, dtype=dtype)
        assert len(report.nodes) == len(net.layers)
        assert report.worst <= 1e-6, str(report)
    # the caller's model is not touched by the extra outputs the cross-check asks for
    assert [v.name for v in model.graph.output] == ["y"]


def test_handmade_model_from_a_file_equals_onnxruntime(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(handmade_model(), str(path))
    x = np.random.default_rng(3).standard_normal((2, 4, 9, 9)).astype(np.float32)
    expected = onnxruntime_outputs(path, x)["y"]
    assert _rel(from_onnx(str(path))(x), expected) <= 1e-6


def test_fixed_batch_runs_in_chunks():
    """A file exported with batch 2 still cross-checks 3 images (onnxruntime in chunks of
    2); minideconv's Flatten keeps whatever batch it is given."""
    model = handmade_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    x = np.random.default_rng(4).standard_normal((3, 4, 9, 9)).astype(np.float32)
    assert crosscheck_onnx(model, x).worst <= 1e-6


@pytest.mark.parametrize("op, options", [("MaxPool", {}),
                                         ("AveragePool", dict(count_include_pad=1)),
                                         ("AveragePool", dict(count_include_pad=0))])
def test_ceil_mode_drops_a_window_that_starts_in_the_padding(op, options):
    """5 pixels, kernel 2, stride 2, padding 1, ceil_mode: a 4th window would start in
    the right padding; torch and onnxruntime drop it (ONNX's shape inference keeps it)."""
    node = helper.make_node(op, ["x"], ["y"], name="pool", kernel_shape=[2, 2],
                            strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, **options)
    model = _small_model([node], x_shape=(2, 1, 5, 5), opset=19)
    x = np.random.default_rng(6).standard_normal((2, 1, 5, 5)).astype(np.float32)
    expected = onnxruntime_outputs(model, x)["y"]
    assert expected.shape == (2, 1, 3, 3)
    np.testing.assert_array_equal(from_onnx(model)(x), expected)


@pytest.mark.parametrize("axis", [1, -3])
def test_flatten_at_axis_1_counted_either_way(axis):
    """Flatten's axis may count from the end (ONNX: axis in [−r, r]); −3 of a
    (N, C, H, W) input is axis 1."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["y"], name="flat", axis=axis)]
    model = _small_model(nodes, x_shape=(2, 3, 4, 5))
    x = np.random.default_rng(8).standard_normal((2, 3, 4, 5)).astype(np.float32)
    expected = onnxruntime_outputs(model, x)["y"]
    assert expected.shape == (2, 60)
    np.testing.assert_array_equal(from_onnx(model)(x), expected)


# --------------------------------------------------------------------------- errors

def _small_model(nodes, inits=(), x_shape=("N", 3, 8, 8), opset=13, out="y"):
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


CONV_W = _tensor("w", np.ones((4, 3, 3, 3), np.float32))


def test_unsupported_op_names_the_node():
    model = _small_model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                          helper.make_node("Softplus", ["c"], ["y"], name="gate")], [CONV_W])
    with pytest.raises(ValueError, match=r"ONNX node 'gate' \(Softplus\): op_type 'Softplus' "
                                         r"is not supported"):
        from_onnx(model)


@pytest.mark.parametrize("nodes, inits, match", [
    # a pool padded more at the top / left (a Conv reads any four pads)
    ([helper.make_node("MaxPool", ["x"], ["y"], name="c", strides=[2, 2],
                       kernel_shape=[3, 3], pads=[1, 1, 0, 0])], [],
     r"'c' \(MaxPool\): pads .* differ"),
    ([helper.make_node("Relu", ["x"], ["r"], name="r"),
      helper.make_node("Add", ["r", "k"], ["y"], name="shift")],
     [_tensor("k", np.ones((1, 3, 8, 1), np.float32))],
     r"'shift' \(Add\): its constant has shape \(1, 3, 8, 1\), not one value per channel"),
    ([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
     [_tensor("s", np.array([0, 3, -1], np.int64))], r"'rs' \(Reshape\): reshapes"),
    ([helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=2)], [],
     r"'fl' \(Flatten\)"),
    ([helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=-1)], [],
     r"'fl' \(Flatten\): axis=-1: .*axis=1, or -3"),
    ([helper.make_node("Concat", ["x", "x"], ["y"], name="cc", axis=2)], [],
     r"'cc' \(Concat\): axis=2"),
    ([helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2, 2]),
      helper.make_node("Identity", ["idx"], ["z"], name="uses_idx")], [],
     r"'mp' \(MaxPool\): its output 'idx' is read"),
    ([helper.make_node("Transpose", ["x"], ["y"], name="t", perm=[0, 2, 3, 1])], [],
     r"'t' \(Transpose\): perm=\[0, 2, 3, 1\]"),
    # pads over half the kernel: refused at import, naming the node and the padding, by
    # both pools alike (the forward pass would refuse them later, naming neither)
    ([helper.make_node("MaxPool", ["x"], ["y"], name="mp_pad", kernel_shape=[3, 3],
                       pads=[2, 2, 2, 2])], [],
     r"'mp_pad' \(MaxPool\).*padding must be at most half the kernel"),
    ([helper.make_node("AveragePool", ["x"], ["y"], name="ap_pad", kernel_shape=[3, 3],
                       pads=[2, 2, 2, 2])], [],
     r"'ap_pad' \(AveragePool\).*padding must be at most half the kernel"),
])
def test_unreadable_options_name_the_node(nodes, inits, match):
    with pytest.raises(ValueError, match=match):
        from_onnx(_small_model(nodes, inits))


def test_input_of_unknown_size_needs_input_shape():
    model = _small_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                         [CONV_W], x_shape=("N", 3, "H", "W"))
    with pytest.raises(ValueError, match="pass input_shape"):
        from_onnx(model)
    assert from_onnx(model, input_shape=(3, 8, 8)).layer_shapes() == [(4, 6, 6)]


def test_nodes_the_output_does_not_need_are_left_out():
    model = _small_model([helper.make_node("Relu", ["x"], ["dead"], name="dead"),
                          helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                         [CONV_W])
    assert from_onnx(model).names == ["conv"]


def test_bad_argument_and_missing_onnx(monkeypatch):
    with pytest.raises(TypeError, match="path or an onnx.ModelProto"):
        from_onnx(42)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'minideconv\[onnx\]'"):
        from_onnx("model.onnx")


# --------------------------------------------------------------------------- the command

def _main(argv, capsys):
    status = main_status(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def handmade_file(tmp_path):
    path = tmp_path / "handmade.onnx"
    onnx.save(handmade_model(), str(path))
    return str(path)


def test_cli_crosscheck_onnx_passes(handmade_file, capsys):
    status, out, err = _main(["crosscheck", "--onnx", handmade_file, "--images", "3"],
                             capsys)
    assert status == 0, err
    assert "3 image(s)" in out and "gemm_transposed" in out
    assert out.strip().splitlines()[-1].startswith("PASS: worst relative error")


def test_cli_crosscheck_onnx_fails_beyond_tolerance(handmade_file, capsys, monkeypatch):
    monkeypatch.setattr(md_onnx.comparison, "TOLERANCE", -1.0)
    status, out, err = _main(["crosscheck", "--onnx", handmade_file, "--dtype", "float32"],
                             capsys)
    assert status == 1
    assert out.strip().splitlines()[-1].startswith("FAIL")


def _unsupported_file(tmp_path):
    path = tmp_path / "softplus.onnx"
    onnx.save(_small_model([helper.make_node("Softplus", ["x"], ["y"], name="gate")]),
              str(path))
    return str(path)


def _garbage_file(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"not a protobuf at all \xff\xfe")
    return str(path)


@pytest.mark.parametrize("make, code, needle", [
    (lambda tmp: str(tmp / "missing.onnx"), 2, "--onnx: no such file"),
    (lambda tmp: str(tmp), 2, "is a folder"),
    (_garbage_file, 1, "is not a readable ONNX file"),
    (_unsupported_file, 1, "--onnx: ONNX node 'gate' (Softplus)"),
])
def test_cli_crosscheck_onnx_errors(tmp_path, capsys, make, code, needle):
    status, out, err = _main(["crosscheck", "--onnx", make(tmp_path)], capsys)
    assert status == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minideconv crosscheck: error:"), err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_cli_crosscheck_onnx_without_onnxruntime(handmade_file, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    status, out, err = _main(["crosscheck", "--onnx", handmade_file], capsys)
    assert status == 1
    assert err.strip() == ("minideconv crosscheck: error: --onnx: the ONNX cross-check "
                           "needs onnxruntime, not installed: pip install "
                           "'minideconv[onnx]'")


def test_cli_onnx_and_models_exclude_each_other(handmade_file, capsys):
    status, out, err = _main(["crosscheck", "--onnx", handmade_file, "--models", "vgg"],
                             capsys)
    assert status == 2
    assert "--models: not allowed with argument --onnx" in err
