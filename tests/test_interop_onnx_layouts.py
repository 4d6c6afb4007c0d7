"""ONNX files in tf2onnx's channels-last layout (``minideconv.interop.onnx_layouts``).

Keras models take images (N, H, W, C); tf2onnx writes a Transpose(perm 0,3,1,2) after
the input so that Conv runs in (N, C, H, W), and a Transpose(perm 0,2,3,1) back before
the Flatten / Reshape that feeds a dense layer, so that the features come in Keras's
(h, w, c) order.  The models here are written by hand with onnx.helper in that form
(random float32 weights) and read with ``from_onnx``:

* the Graph takes (N, C, H, W) images, the input Transpose is gone, and no Transpose
  becomes a layer;
* its logits and every node with an ONNX tensor of its own agree with onnxruntime fed
  the same images in (N, H, W, C) — fed here by hand, and through ``crosscheck_onnx`` /
  ``onnxruntime_outputs`` / ``minideconv crosscheck --onnx``, which transpose them;
* the backprop projection of a logit is the gradient of a reference that keeps the
  file's (h, w, c) weights and flattens in (h, w, c) order (central differences in
  float64), and the folded dense layer passes the dot test;
* every other Transpose of an activation is refused, naming the node.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import minideconv as md  # noqa: E402
from minideconv import cli, nn, visualize  # noqa: E402
from minideconv.interop.onnx import layouts as onnx_layouts  # noqa: E402
from minideconv.interop.onnx import (TOLERANCE, crosscheck_onnx, from_onnx,  # noqa: E402
                                     input_layout, onnxruntime_outputs)

H, W, C = 10, 8, 3            # the Keras input (N, H, W, C); distinct sizes on purpose
FILTERS, CLASSES = 5, 7
POOLED = (FILTERS, H // 2, W // 2)          # after the 2×2 max pool, in (C, H, W)
FEATURES = int(np.prod(POOLED))


def _tensor(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        conv_w=rng.standard_normal((FILTERS, C, 3, 3)).astype(np.float32) * 0.3,
        conv_b=rng.standard_normal(FILTERS).astype(np.float32) * 0.1,
        # the dense layer's rows follow the channels-last features (h, w, c), as Keras's
        dense_w=rng.standard_normal((FEATURES, CLASSES)).astype(np.float32) * 0.1,
        dense_b=rng.standard_normal(CLASSES).astype(np.float32) * 0.1,
        head_w=rng.standard_normal((FILTERS, CLASSES)).astype(np.float32) * 0.3)


def _body(w):
    """NHWC input → Transpose → Conv (+bias) → Relu → MaxPool: (N, 5, 5, 4) NCHW."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x_nchw", "conv_w", "conv_b"], ["c"], name="conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
    ]
    return nodes, [_tensor("conv_w", w["conv_w"]), _tensor("conv_b", w["conv_b"])]


def _model(nodes, inits, batch="N"):
    graph = helper.make_graph(
        nodes, "tf2onnx_style",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, H, W, C])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def reshape_gemm_model(w=None):
    """(a): … → Transpose back → Reshape(-1, F) → Gemm (B as (in, out), as tf2onnx)."""
    w = w or _weights()
    nodes, inits = _body(w)
    nodes += [
        helper.make_node("Transpose", ["p"], ["p_nhwc"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["p_nhwc", "flat_shape"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "dense_w", "dense_b"], ["y"], name="dense"),
    ]
    inits += [_tensor("flat_shape", np.array([-1, FEATURES], np.int64)),
              _tensor("dense_w", w["dense_w"]), _tensor("dense_b", w["dense_b"])]
    return _model(nodes, inits)


def flatten_matmul_model(w=None):
    """(b): … → Transpose back → Flatten → MatMul → Add."""
    w = w or _weights()
    nodes, inits = _body(w)
    nodes += [
        helper.make_node("Transpose", ["p"], ["p_nhwc"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Flatten", ["p_nhwc"], ["f"], name="flatten", axis=1),
        helper.make_node("MatMul", ["f", "dense_w"], ["m"], name="dense"),
        helper.make_node("Add", ["m", "dense_b"], ["y"], name="dense_bias"),
    ]
    inits += [_tensor("dense_w", w["dense_w"]), _tensor("dense_b", w["dense_b"])]
    return _model(nodes, inits)


def global_pool_model(w=None):
    """(c): … → GlobalAveragePool → Flatten → Gemm: no Transpose back."""
    w = w or _weights()
    nodes, inits = _body(w)
    nodes += [
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "head_w", "dense_b"], ["y"], name="dense"),
    ]
    inits += [_tensor("head_w", w["head_w"]), _tensor("dense_b", w["dense_b"])]
    return _model(nodes, inits)


def reduce_mean_model(w=None):
    """(c'): … → ReduceMean over (H, W), keepdims=0 (tf2onnx's GlobalAveragePooling2D
    once its transpose optimizer has moved the axes to NCHW) → Gemm."""
    w = w or _weights()
    nodes, inits = _body(w)
    nodes += [
        helper.make_node("ReduceMean", ["p"], ["g"], name="mean", axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["g", "head_w", "dense_b"], ["y"], name="dense"),
    ]
    inits += [_tensor("head_w", w["head_w"]), _tensor("dense_b", w["dense_b"])]
    return _model(nodes, inits)


MODELS = {"reshape-gemm": reshape_gemm_model, "flatten-matmul": flatten_matmul_model,
          "global-pool": global_pool_model, "reduce-mean": reduce_mean_model}
KINDS = {"reshape-gemm": ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"],
         "flatten-matmul": ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"],
         "global-pool": ["Conv2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d", "Flatten",
                         "Linear"],
         "reduce-mean": ["Conv2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d", "Flatten",
                         "Linear"]}


def _images(n=3, seed=1):
    """Images as minideconv takes them: (N, C, H, W)."""
    return np.random.default_rng(seed).standard_normal((n, C, H, W)).astype(np.float32)


def _onnxruntime_nhwc(model, x_nchw):
    """onnxruntime's output fed by hand: the images transposed to (N, H, W, C) here."""
    options = ort.SessionOptions()       # no fusions, as the cross-check's session
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))})[0]


def _rel(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


# --------------------------------------------------------------------------- reading

@pytest.mark.parametrize("kind", list(MODELS))
def test_nhwc_input_is_read_as_nchw(kind):
    model = MODELS[kind]()
    assert input_layout(model) == "NHWC"
    net = from_onnx(model)
    assert net.input_shape == (C, H, W)            # the transposed shape
    assert [type(layer).__name__ for layer in net.layers] == KINDS[kind]
    assert "to_nchw" not in net.names and "to_nhwc" not in net.names
    assert net.layer_shapes()[-1] == (CLASSES,)


def test_a_plain_nchw_model_keeps_its_layout():
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    graph = helper.make_graph(
        [node], "nchw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert input_layout(model) == "NCHW"
    x = _images(1)[:, :, :4, :4]
    np.testing.assert_array_equal(onnxruntime_outputs(model, x)["y"], np.maximum(x, 0))


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_against_onnxruntime_fed_nhwc(kind, dtype):
    model = MODELS[kind]()
    x = _images()
    net = from_onnx(model).astype(dtype)
    expected = _onnxruntime_nhwc(model, x)
    assert _rel(net(x.astype(dtype)), expected) <= TOLERANCE
    # onnxruntime_outputs transposes the (N, C, H, W) images it is given
    np.testing.assert_array_equal(onnxruntime_outputs(model, x)["y"], expected)
    report = crosscheck_onnx(model, x, dtype=dtype)
    assert report.passed and report.worst <= TOLERANCE, str(report)
    assert report.layout == "NHWC" and "input is NHWC" in str(report)
    checked = [check.name for check in report.nodes]
    # every node with an ONNX tensor of its own; the flatten after the Transpose back
    # has its features in the other order and is left out
    assert checked[:3] == ["conv", "relu", "pool"] and checked[-1] == "dense"
    assert ("flatten" in checked) == (kind == "global-pool")
    if kind == "reduce-mean":          # its pool (N, C, 1, 1) has no ONNX tensor: skipped
        assert checked[3:] == ["mean_1", "dense"]


def test_fixed_batch_and_given_input_shape():
    """A file with batch 2 cross-checks 3 images; a file of unknown size takes
    input_shape in (C, H, W), the images' layout."""
    model = reshape_gemm_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    assert crosscheck_onnx(model, _images(3)).passed
    for dim in model.graph.input[0].type.tensor_type.shape.dim[1:]:
        dim.dim_param = "unknown"
    with pytest.raises(ValueError, match=r"input_shape=\(C, H, W\) \(of the images in NCHW"):
        from_onnx(model)
    assert from_onnx(model, input_shape=(C, H, W)).input_shape == (C, H, W)


def test_a_transpose_undone_at_once_disappears():
    w = _weights()
    nodes, inits = _body(w)
    nodes += [
        helper.make_node("Transpose", ["p"], ["p_nhwc"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["p_nhwc"], ["p_back"], name="back", perm=[0, 3, 1, 2]),
        helper.make_node("GlobalAveragePool", ["p_back"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "head_w", "dense_b"], ["y"], name="dense"),
    ]
    inits += [_tensor("head_w", w["head_w"]), _tensor("dense_b", w["dense_b"])]
    model = _model(nodes, inits)
    assert from_onnx(model).names == ["conv", "relu", "pool", "gap", "flatten", "dense"]
    assert crosscheck_onnx(model, _images()).passed


# --------------------------------------------------------------------------- the fold

def test_folded_weight_is_the_files_in_chw_order():
    w = _weights()
    layer = from_onnx(reshape_gemm_model(w)).layers[-1]
    c, h, width = POOLED
    for (k, i, j) in [(0, 0, 0), (1, 2, 3), (c - 1, h - 1, width - 1)]:
        # minideconv's feature (c, h, w) is the file's feature (h, w, c)
        np.testing.assert_array_equal(layer.weight[:, (k * h + i) * width + j],
                                      w["dense_w"][(i * width + j) * c + k])


def test_a_wrong_permutation_fails_these_checks(monkeypatch):
    """Folding with (w, h, c) order instead of (h, w, c) gives a weight of the right
    shape but other logits: the comparison with onnxruntime catches it."""
    def wrong(weight, chw):
        c, h, width = chw
        return np.ascontiguousarray(weight.reshape(-1, width, h, c).transpose(0, 3, 2, 1)
                                    .reshape(weight.shape[0], -1))
    monkeypatch.setattr(onnx_layouts, "weight_columns_to_chw", wrong)
    model, x = reshape_gemm_model(), _images()
    assert _rel(from_onnx(model)(x), _onnxruntime_nhwc(model, x)) > 1e-2
    assert not crosscheck_onnx(model, x).passed


def _reference_logits(w, net, x):
    """The logits with the file's own dense weights: minideconv's conv, relu and pool,
    then the channels-last flatten and the (h, w, c)-ordered weight, in NumPy."""
    pooled = net.trace(x, upto="pool").outputs[-1]
    flat = pooled.transpose(0, 2, 3, 1).reshape(len(x), -1)
    return flat @ w["dense_w"].astype(np.float64) + w["dense_b"]


@pytest.mark.parametrize("make", [reshape_gemm_model, flatten_matmul_model])
def test_backprop_projection_is_the_gradient_of_the_nhwc_network(make):
    w = _weights()
    net = from_onnx(make(w)).astype(np.float64)
    x = _images(1).astype(np.float64)
    unit = 3
    projection = visualize.project(net, x[0], layer=len(net.layers) - 1, channel=unit,
                                    rule="backprop")
    logit = _reference_logits(w, net, x)[0, unit]
    rng = np.random.default_rng(5)
    eps = 1e-6
    for _ in range(12):
        idx = tuple(rng.integers(0, n) for n in x.shape)
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        slope = (_reference_logits(w, net, up)[0, unit] -
                 _reference_logits(w, net, down)[0, unit]) / (2 * eps)
        # backprop's projection is a · ∂a/∂x
        assert projection[idx[1:]] == pytest.approx(logit * slope, rel=1e-6, abs=1e-9)


def test_folded_dense_layer_passes_the_dot_test():
    net = from_onnx(flatten_matmul_model()).astype(np.float64)
    flatten, dense = net.layers[-2], net.layers[-1]
    linear = nn.Linear(dense.weight)                   # the bias makes it affine

    def forward(v):
        return linear.forward(flatten.forward(v)[0])[0]

    def adjoint(y):
        _, record = flatten.forward(np.zeros((len(y),) + POOLED))
        return flatten.backward(linear.backward(y, None), record)

    md.dottest(forward, adjoint, (2,) + POOLED, (2, CLASSES))


# --------------------------------------------------------------------------- refusals

def _refused(last_nodes, inits=()):
    w = _weights()
    nodes, body_inits = _body(w)
    graph_nodes = nodes + last_nodes
    model = _model(graph_nodes, body_inits + list(inits))
    with pytest.raises(ValueError) as err:
        from_onnx(model)
    return str(err.value)


def test_another_perm_is_refused_naming_the_node():
    message = _refused([
        helper.make_node("Transpose", ["p"], ["t"], name="odd_perm", perm=[0, 1, 3, 2]),
        helper.make_node("Flatten", ["t"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "dense_w"], ["y"], name="dense"),
    ], [_tensor("dense_w", _weights()["dense_w"])])
    assert message.startswith("ONNX node 'odd_perm' (Transpose): perm=[0, 1, 3, 2]")
    assert "perm [0, 2, 3, 1]" in message and "Gemm or MatMul" in message


def test_channels_last_into_a_conv_is_refused_naming_the_transpose():
    message = _refused([
        helper.make_node("Transpose", ["p"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Conv", ["t", "w2"], ["y"], name="conv_nhwc", kernel_shape=[1, 1]),
    ], [_tensor("w2", np.ones((CLASSES, W // 2, 1, 1), np.float32))])
    assert message.startswith("ONNX node 'conv_nhwc' (Conv): reads the output of the "
                              "NCHW → NHWC Transpose 'to_nhwc' (perm [0, 2, 3, 1])")
    assert "Flatten / Reshape to (N, -1) that feeds a Gemm or MatMul" in message


def test_channels_last_features_into_anything_but_a_dense_layer_are_refused():
    message = _refused([
        helper.make_node("Transpose", ["p"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Flatten", ["t"], ["f"], name="flatten"),
        helper.make_node("Relu", ["f"], ["y"], name="relu_flat"),
    ])
    assert message.startswith("ONNX node 'relu_flat' (Relu): reads the channels-last "
                              "features of to_nhwc → flatten")


def test_an_input_read_beside_its_transpose_is_not_nhwc():
    w = _weights()
    nodes, inits = _body(w)
    nodes += [helper.make_node("Relu", ["x"], ["x_relu"], name="also_reads_x"),
              helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
              helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "head_w"], ["y"], name="dense")]
    model = _model(nodes, inits + [_tensor("head_w", w["head_w"])])
    assert input_layout(model) == "NCHW"
    with pytest.raises(ValueError, match=r"ONNX node 'to_nchw' \(Transpose\): perm=\[0, 3, "
                                         r"1, 2\] of the network's input, which other"):
        from_onnx(model)


# --------------------------------------------------------------------------- the command

@pytest.mark.parametrize("kind", list(MODELS))
def test_cli_crosscheck_onnx_on_an_nhwc_file(kind, tmp_path, capsys):
    path = tmp_path / f"{kind}.onnx"
    onnx.save(MODELS[kind](), str(path))
    status = cli.main(["crosscheck", "--onnx", str(path), "--images", "2"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "input is NHWC" in out and "dense" in out
    assert out.strip().splitlines()[-1].startswith("PASS: worst relative error")


def test_channels_last_as_the_output_is_refused_naming_the_transpose():
    w = _weights()
    nodes, inits = _body(w)
    nodes += [helper.make_node("Transpose", ["p"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
              helper.make_node("Flatten", ["t"], ["y"], name="flatten")]
    with pytest.raises(ValueError, match=r"^ONNX node 'to_nhwc' \(Transpose\): perm=\[0, 2, "
                                         r"3, 1\] and 'flatten' give the network's output"):
        from_onnx(_model(nodes, inits))
