"""Graph networks and the layers that join or rescale: the DAG forward pass, the way back
that adds signals where a value fans out, names, receptive fields through joins, files —
checked against a hand-written torch forward (autograd and rule ReLUs), against the
sparse matrices of ``matrices.network`` (an independent way back) and by dottests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minideconv as md
from minideconv import matrices, nn
from minideconv.dottest import dottest

torch = pytest.importorskip("torch")
F = torch.nn.functional

RULES = ("backprop", "deconvnet", "guided")


def _bn(rng, c):
    return nn.BatchNorm2d(rng.uniform(0.5, 1.5, c), 0.1 * rng.standard_normal(c),
                          0.1 * rng.standard_normal(c), rng.uniform(0.5, 1.5, c), eps=1e-3)


def small_graph(seed=0, bias=True):
    """stem → (conv → bn → relu → conv) + stem (residual) → relu → cat with a 1×1 branch
    → avgpool → maxpool → adaptive pool (larger than its input) → dropout → flatten → fc."""
    rng = np.random.default_rng(seed)

    def conv(c_in, c_out, k, **kw):
        w = rng.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k)
        return nn.Conv2d(w, 0.1 * rng.standard_normal(c_out) if bias else None, **kw)

    nodes = [
        ("stem", conv(2, 4, 3, padding=1), ("input",)),
        ("stem_relu", nn.ReLU(), ("stem",)),
        ("block.conv1", conv(4, 4, 3, padding=1), ("stem_relu",)),
        ("block.bn1", _bn(rng, 4), ("block.conv1",)),
        ("block.relu", nn.ReLU(), ("block.bn1",)),
        ("block.conv2", conv(4, 4, 3, padding=1), ("block.relu",)),
        ("add", nn.Add(), ("block.conv2", "stem_relu")),
        ("relu", nn.ReLU(), ("add",)),
        ("side", conv(4, 3, 1), ("stem_relu",)),
        ("cat", nn.Concat(), ("relu", "side")),
        ("avg", nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
         ("cat",)),
        ("pool", nn.MaxPool2d(2, 2), ("avg",)),
        ("adaptive", nn.AdaptiveAvgPool2d((3, 4)), ("pool",)),
        ("drop", nn.Dropout(0.2), ("adaptive",)),
        ("flatten", nn.Flatten(), ("drop",)),
        ("fc", nn.Linear(rng.standard_normal((5, 7 * 3 * 4)) / 9.0,
                         0.1 * rng.standard_normal(5) if bias else None), ("flatten",)),
    ]
    return nn.Graph(nodes, input_shape=(2, 10, 10))


def _rule_relu(rule):
    """A torch ReLU whose backward is the rule's (tests/support/torch_reference.py: plain
    autograd for backprop, an autograd.Function with the rule's backward for the
    others)."""
    from support.torch_reference import RULE_RELUS
    return RULE_RELUS[rule]


def torch_forward(graph, x, relu=torch.relu):
    """small_graph written out in torch, returning every node's value by name."""
    p = {name: layer for name, layer in zip(graph.names, graph.layers)}
    t = lambda a: None if a is None else torch.from_numpy(a)

    def conv(name, v):
        layer = p[name]
        return F.conv2d(v, t(layer.weight), t(layer.bias), layer.stride, layer.padding)

    def bn(name, v):
        layer = p[name]
        return F.batch_norm(v, t(layer.running_mean), t(layer.running_var), t(layer.weight),
                            t(layer.bias), False, 0.0, layer.eps)

    out = {}
    out["stem"] = conv("stem", x)
    out["stem_relu"] = relu(out["stem"])
    out["block.conv1"] = conv("block.conv1", out["stem_relu"])
    out["block.bn1"] = bn("block.bn1", out["block.conv1"])
    out["block.relu"] = relu(out["block.bn1"])
    out["block.conv2"] = conv("block.conv2", out["block.relu"])
    out["add"] = out["block.conv2"] + out["stem_relu"]
    out["relu"] = relu(out["add"])
    out["side"] = conv("side", out["stem_relu"])
    out["cat"] = torch.cat([out["relu"], out["side"]], 1)
    out["avg"] = F.avg_pool2d(out["cat"], 3, 2, 1, ceil_mode=True, count_include_pad=False)
    out["pool"] = F.max_pool2d(out["avg"], 2, 2)
    out["adaptive"] = F.adaptive_avg_pool2d(out["pool"], (3, 4))
    out["drop"] = out["adaptive"]
    out["flatten"] = torch.flatten(out["drop"], 1)
    out["fc"] = F.linear(out["flatten"], t(p["fc"].weight), t(p["fc"].bias))
    return out


@pytest.fixture(scope="module")
def graph_and_images():
    rng = np.random.default_rng(1)
    return small_graph(), rng.standard_normal((3, 2, 10, 10))


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def test_forward_equals_torch_at_every_node(graph_and_images):
    graph, x = graph_and_images
    trace = graph.trace(x)
    reference = torch_forward(graph, torch.from_numpy(x))
    for i, name in enumerate(graph.names):
        assert _rel(trace.outputs[i], reference[name].numpy()) < 1e-12, name
    assert _rel(graph(x), reference["fc"].numpy()) < 1e-12


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("layer", ["stem_relu", "add", "cat", "avg", "adaptive", "fc", -1])
def test_projection_equals_torch_rule_reference(graph_and_images, rule, layer):
    """The rule ReLUs in torch's autograd (which sums the gradients of a tensor read by
    several ops) against Graph.backward, seeded at each image's strongest unit."""
    graph, x = graph_and_images
    projected = md.visualize.project(graph, x, layer, channel=1, rule=rule)
    xt = torch.from_numpy(x).requires_grad_(True)
    value = torch_forward(graph, xt, relu=_rule_relu(rule))[graph.names[graph.index(layer)]]
    flat = value[:, 1].reshape(len(x), -1)
    seed = torch.zeros_like(flat)
    rows = torch.arange(len(x))
    best = flat.detach().argmax(1)
    seed[rows, best] = flat.detach()[rows, best]
    (reference,) = torch.autograd.grad(flat, xt, seed)
    assert _rel(projected, reference.numpy()) < 1e-12


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("layer", ["add", "cat", "pool", "fc"])
def test_backward_equals_the_sparse_network_map(graph_and_images, rule, layer):
    graph, x = graph_and_images
    trace = graph.trace(x[:1], upto=layer)
    start = graph.index(layer)
    rng = np.random.default_rng(2)
    top = rng.standard_normal(trace.outputs[start].shape)
    ours = graph.backward(top, trace, start=start, rule=rule)[0]
    network_map = matrices.network_backward_map(graph, x[0], layer, top, rule)
    assert _rel(ours, network_map.projection) < 1e-12
    if rule == "backprop":  # the gradient's map is the transpose of the forward map
        forward = matrices.network_forward_map(graph, x[0], layer)
        assert abs(forward.T - network_map.matrix).max() < 1e-12


def test_forward_map_reproduces_the_output_without_constants():
    graph = small_graph(bias=False)
    for layer in graph.layers:                  # BatchNorm's shift is a constant too
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean[:] = 0.0
            layer.bias = None
    x = np.random.default_rng(3).standard_normal((2, 10, 10))
    forward = matrices.network_forward_map(graph, x)
    assert _rel(forward @ x.ravel(), graph(x[None])[0]) < 1e-12


def test_fan_out_signals_add():
    """y = relu(x)·w₁ + relu(x)·w₂ reads relu(x) twice; the gradient must be the sum."""
    rng = np.random.default_rng(4)
    w1, w2 = rng.standard_normal((2, 3, 1, 1, 1))
    graph = nn.Graph([("r", nn.ReLU(), "input"),
                      ("a", nn.Conv2d(w1), ("r",)), ("b", nn.Conv2d(w2), ("r",)),
                      ("c", nn.Conv2d(w1 * 0 + 1.0), ("r",)),
                      ("sum", nn.Add(), ("a", "b", "c"))])
    x = rng.standard_normal((1, 1, 4, 4))
    grad = graph.backward(np.ones((1, 3, 4, 4)), graph.trace(x))
    expected = (w1.sum() + w2.sum() + 3.0) * (x > 0)
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_a_node_may_read_one_value_twice():
    """x + x and [x; x]: each input is a separate use, so the transposes add both."""
    graph = nn.Graph([("r", nn.ReLU(), "input"), ("twice", nn.Add(), ("r", "r")),
                      ("both", nn.Concat(), ("twice", "twice"))])
    x = np.random.default_rng(8).standard_normal((1, 2, 3, 3))
    np.testing.assert_array_equal(graph(x), np.concatenate([2 * np.maximum(x, 0)] * 2, 1))
    np.testing.assert_array_equal(graph(x), graph.trace(x).outputs[-1])
    grad = graph.backward(np.ones((1, 4, 3, 3)), graph.trace(x))
    np.testing.assert_array_equal(grad, 4.0 * (x > 0))


def test_a_chain_as_a_graph_is_the_sequential():
    net = md.data.load_model().astype(np.float64)
    names = [f"n{i}" for i in range(len(net))]
    graph = nn.Graph([(name, layer, (names[i - 1] if i else "input",))
                      for i, (name, layer) in enumerate(zip(names, net.layers))],
                     input_shape=net.input_shape)
    x = md.data.load_dataset("test", n=2)[0].astype(np.float64)
    np.testing.assert_array_equal(graph(x), net(x))
    for rule in RULES:
        np.testing.assert_array_equal(md.visualize.project(graph, x, 7, 3, rule=rule),
                                      md.visualize.project(net, x, 7, 3, rule=rule))
    assert graph.receptive_field(7) == net.receptive_field(7)
    assert graph.layer_shapes() == net.layer_shapes()
    for target in (3, ("n5", 2)):
        np.testing.assert_array_equal(
            md.visualize.occlusion_map(graph, x[0], target, patch=8, stride=4),
            md.visualize.occlusion_map(net, x[0], (5, 2) if target != 3 else 3,
                                       patch=8, stride=4))


# --------------------------------------------------------------------------- adjoints

@settings(max_examples=20, deadline=None)
@given(inputs=st.integers(2, 4), channels=st.lists(st.integers(1, 4), min_size=4,
                                                    max_size=4),
       size=st.integers(1, 5), seed=st.integers(0, 1000))
def test_add_and_concat_are_adjoint_to_their_backward(inputs, channels, size, seed):
    channels = channels[:inputs]
    for layer, shapes in ((nn.Add(), [(2, channels[0], size, size)] * inputs),
                          (nn.Concat(), [(2, c, size, size) for c in channels])):
        sizes = [int(np.prod(s)) for s in shapes]
        edges = np.cumsum(sizes)[:-1]
        out_shape = layer.output_shape(*[s[1:] for s in shapes])

        def forward(flat, layer=layer, shapes=shapes):
            parts = np.split(flat, edges)
            return layer.forward(*[p.reshape(s) for p, s in zip(parts, shapes)])[0]

        record = layer.forward(*[np.zeros(s) for s in shapes])[1]

        def adjoint(r, layer=layer, record=record):
            return np.concatenate([g.ravel() for g in layer.backward(r, record)])

        dottest(forward, adjoint, (sum(sizes),), (2,) + out_shape, seed=seed)


@settings(max_examples=20, deadline=None)
@given(channels=st.integers(1, 5), size=st.integers(1, 6), affine=st.booleans(),
       seed=st.integers(0, 1000), dtype=st.sampled_from([np.float32, np.float64]))
def test_batchnorm_linear_part_is_adjoint_to_its_backward(channels, size, affine, seed,
                                                          dtype):
    rng = np.random.default_rng(seed)
    layer = nn.BatchNorm2d(**_bn_args(rng, channels, affine, dtype))
    zero = np.zeros((2, channels, size, size), dtype)
    shift = layer(zero)
    dottest(lambda x: layer(x) - shift, lambda r: layer.backward(r, None), zero.shape,
            zero.shape, dtype=dtype, rtol=1e-5 if dtype == np.float32 else 1e-12, seed=seed)


def _bn_args(rng, channels, affine, dtype):
    cast = lambda a: a.astype(dtype)
    return dict(weight=cast(rng.uniform(0.5, 2, channels)) if affine else None,
                bias=cast(rng.standard_normal(channels)) if affine else None,
                running_mean=cast(rng.standard_normal(channels)),
                running_var=cast(rng.uniform(0.1, 2, channels)), eps=1e-5)


def test_batchnorm_equals_torch_eval_and_its_weight_gradients():
    rng = np.random.default_rng(5)
    module = torch.nn.BatchNorm2d(3, eps=1e-4).double().eval()
    with torch.no_grad():
        module.running_mean.copy_(torch.randn(3, dtype=torch.float64))
        module.running_var.copy_(torch.rand(3, dtype=torch.float64) + 0.2)
        module.weight.copy_(torch.randn(3, dtype=torch.float64))
        module.bias.copy_(torch.randn(3, dtype=torch.float64))
    layer = nn.BatchNorm2d(*(module.weight.detach().numpy().copy(),
                             module.bias.detach().numpy().copy(),
                             module.running_mean.numpy().copy(),
                             module.running_var.numpy().copy()), eps=1e-4)
    x = rng.standard_normal((2, 3, 4, 5))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = module(xt)
    y, record = layer.forward(x)
    assert _rel(y, yt.detach().numpy()) < 1e-13
    r = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(r))
    assert _rel(layer.backward(r, record), xt.grad.numpy()) < 1e-13
    grads = layer.param_grads(r, record)
    assert _rel(grads["weight"], module.weight.grad.numpy()) < 1e-12
    assert _rel(grads["bias"], module.bias.grad.numpy()) < 1e-12


def test_dropout_is_the_identity_at_inference():
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 4))
    layer = nn.Dropout(0.7)
    y, record = layer.forward(x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(layer.backward(x, record), x)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\] \(a probability\)"):
        nn.Dropout(1.5)


# --------------------------------------------------------------------------- names, fields

def test_names_index_and_the_output(graph_and_images):
    graph, x = graph_and_images
    assert graph.names[0] == "stem" and graph.names[-1] == "fc"
    assert graph.index("block.conv1") == 2
    assert graph.index(-1) == len(graph) - 1
    assert graph.describe(6) == "layer 6 'add' (Add)"
    assert graph.inputs_of(6) == (5, 1) and graph.consumers_of(1) == (2, 6, 8)
    assert graph.consumers_of(-1) == (0,) and graph.inputs_of(0) == (-1,)
    with pytest.raises(ValueError, match="node index"):
        graph.consumers_of(16)
    with pytest.raises(ValueError, match="no layer named 'blok'"):
        graph.index("blok")
    with pytest.raises(ValueError, match=r"layer must be an index in \[-16, 16\)"):
        graph.index(16)
    with pytest.raises(TypeError, match="layer must be an index in"):
        graph.index(2.0)
    np.testing.assert_array_equal(md.visualize.project(graph, x, "fc", 2),
                                  md.visualize.project(graph, x, -1, 2))


def test_receptive_field_through_a_residual_join_holds_the_gradient_support():
    """Brute force: the pixels whose change moves a unit of 'add' must lie in its window;
    the window is the union of the two branches' (5×5 through the convs, 3×3 through the
    shortcut), so it is exactly 7×7 here."""
    graph = small_graph()
    field = graph.receptive_field("add")
    assert field.size == (7, 7) and field.jump == (1, 1)
    assert graph.receptive_field("flatten") is None     # the adaptive pool mixes
    x = np.abs(np.random.default_rng(7).standard_normal((1, 2, 10, 10))) + 0.1
    trace = graph.trace(x, upto="add")
    for position in [(0, 0), (4, 5), (9, 9)]:
        seed = np.zeros_like(trace.outputs[6])
        seed[0, 0][position] = 1.0
        support = np.argwhere(np.abs(graph.backward(seed, trace, start=6)[0]).sum(0) > 0)
        r0, r1, c0, c1 = field.window(position)
        assert support[:, 0].min() >= r0 and support[:, 0].max() < r1
        assert support[:, 1].min() >= c0 and support[:, 1].max() < c1


# --------------------------------------------------------------------------- files, errors

def test_save_and_load_round_trip(tmp_path, graph_and_images):
    graph, x = graph_and_images
    path = tmp_path / "graph.npz"
    graph.save(path)
    loaded = nn.load(path)
    assert isinstance(loaded, nn.Graph)
    assert loaded.names == graph.names and loaded.input_shape == graph.input_shape
    assert [n.inputs for n in loaded.nodes] == [n.inputs for n in graph.nodes]
    np.testing.assert_array_equal(loaded(x), graph(x))
    for rule in RULES:
        np.testing.assert_array_equal(md.visualize.project(loaded, x, "cat", 0, rule=rule),
                                      md.visualize.project(graph, x, "cat", 0, rule=rule))
    as32 = graph.astype(np.float32)
    assert as32.layers[3].running_var.dtype == np.float32
    assert _rel(as32(x.astype(np.float32)), graph(x)) < 1e-5


def test_a_named_sequential_round_trips(tmp_path):
    net = md.data.load_model()
    named = nn.Sequential(*net.layers, input_shape=net.input_shape,
                          names=[f"features.{i}" for i in range(len(net))])
    named.save(tmp_path / "s.npz")
    loaded = nn.load(tmp_path / "s.npz")
    assert loaded.names == named.names and loaded.index("features.3") == 3
    assert loaded.describe(3) == "layer 3 'features.3' (Conv2d)"
    assert nn.load(md.data.model_path()).describe(3) == "layer 3 (Conv2d)"


@pytest.mark.parametrize("nodes, message", [
    ([("a", nn.ReLU(), ("b",))], r"reads \['b'\], which is not an earlier node"),
    ([("a", nn.ReLU(), ("input", "input"))], r"takes 1 input\(s\), got 2"),
    ([("a", nn.Add(), ("input",))], r"takes two or more input\(s\), got 1"),
    ([("a", nn.ReLU(), ("input",)), ("a", nn.ReLU(), ("a",))], "names must be unique"),
    ([("input", nn.ReLU(), ("input",))], "names the network's input"),
    ([("a", nn.ReLU(), ("input",)), ("b", nn.ReLU(), ("input",))],
     r"nodes \['a'\] feed nothing"),
    ([], "at least one node"),
])
def test_graph_construction_errors(nodes, message):
    with pytest.raises(ValueError, match=message):
        nn.Graph(nodes)


def test_shape_errors_name_the_node():
    graph = nn.Graph([("a", nn.Conv2d(np.ones((2, 1, 3, 3))), "input"),
                      ("b", nn.Add(), ("a", "input"))])
    with pytest.raises(ValueError, match=r"layer 1 'b' \(Add\) does not fit"):
        graph.layer_shapes((1, 5, 5))
    with pytest.raises(ValueError, match="Add: inputs\\[1\\] has shape"):
        graph(np.ones((1, 1, 5, 5)))
    with pytest.raises(TypeError, match="put it in an nn.Graph"):
        nn.Sequential(nn.Add())
    with pytest.raises(ValueError, match="only the channel axis may differ"):
        nn.Concat().forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 2)))


def test_sanity_and_inversion_run_on_graphs(graph_and_images):
    """Redrawing weights keeps the wiring (with_layers); the network-wide redraw of every
    weight layer changes the projection, the backward-only redraw keeps the forward pass."""
    from minideconv.visualize import invert, sanity
    graph, x = graph_and_images
    redrawn = sanity.randomize(graph, [graph.index("block.conv2")], seed=3)
    assert isinstance(redrawn, nn.Graph) and redrawn.names == graph.names
    assert not np.allclose(redrawn.layers[5].weight, graph.layers[5].weight)
    assert redrawn.layers[0] is graph.layers[0]
    result = sanity.randomization_test(graph, x[0], "relu", 0, rule="guided",
                                       where="backward")
    assert len(result.maps) == len(sanity.weight_layers(graph, "relu")) + 1
    np.testing.assert_array_equal(result.maps[0],
                                  md.visualize.project(graph, x[0], "relu", 0, rule="guided"))
    inversion = invert.invert_representation(graph, x[0], "stem_relu", max_iter=30)
    assert inversion.feature_error < 0.5


def test_occlusion_on_a_graph_equals_torch_on_the_occluded_images(graph_and_images):
    graph, x = graph_and_images
    image = x[0]
    scores = md.visualize.occlusion_map(graph, image, 1, patch=4, stride=5, output="logit")
    fill = image.mean(axis=(1, 2))[:, None, None]
    for i in range(2):
        for j in range(2):
            occluded = image.copy()     # rows [i·stride − (patch − stride)//2, … + patch)
            r0, c0 = i * 5 - (4 - 5) // 2, j * 5 - (4 - 5) // 2
            occluded[:, max(r0, 0):r0 + 4, max(c0, 0):c0 + 4] = fill
            logit = torch_forward(graph, torch.from_numpy(occluded[None]))["fc"][0, 1]
            assert abs(scores[i, j] - float(logit)) < 1e-12
