"""minideconv.nn: the layers and Sequential — what each layer computes, its backward as
the transpose of its linear part, the constructors' errors, dtypes and receptive fields."""

from __future__ import annotations

import numpy as np
import pytest

from minideconv import conv2d, dottest, max_pool2d, nn

from support.networks import small_net


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_layer_shapes_match_forward(rng):
    net = small_net(rng)
    x = rng.standard_normal((2, 3, 9, 9))
    trace = net.trace(x)
    assert [o.shape[1:] for o in trace.outputs] == net.layer_shapes()
    assert np.array_equal(net(x), trace.outputs[-1])
    assert len(net) == len(net.layers) == 7


@pytest.mark.parametrize("pool, message", [
    (nn.MaxPool2d(3, padding=2), "padding must be at most half the kernel"),
    (nn.MaxPool2d(5), "larger than the padded input"),
    (nn.AvgPool2d(3, padding=2), "padding must be at most half the kernel")])
def test_a_pool_that_cannot_run_is_refused_by_its_shape_as_by_its_forward_pass(pool,
                                                                                  message):
    # the shapes are what an importer checks a layer with before anything runs
    with pytest.raises(ValueError, match=message):
        pool.output_shape((2, 4, 4))
    with pytest.raises(ValueError, match=message):
        pool(np.zeros((1, 2, 4, 4)))


def test_layers_compute_what_they_say(rng):
    net = small_net(rng)
    x = rng.standard_normal((2, 3, 9, 9))
    conv, relu, pool, _, _, flatten, linear = net.layers
    y = conv(x)
    assert np.allclose(y, conv2d(x, conv.weight, conv.bias, padding=1))
    assert np.array_equal(relu(y), np.maximum(y, 0))
    assert np.array_equal(pool(y), max_pool2d(y, 3, 2, 1)[0])
    assert np.array_equal(flatten(y), y.reshape(2, -1))
    z = rng.standard_normal((2, 45))
    assert np.allclose(linear(z), z @ linear.weight.T + linear.bias)


def linear_part(layer, layer_input):
    """The linear map A of ``layer`` around ``layer_input``: the layer without its bias,
    and a max-pool with the switches it recorded for ``layer_input`` fixed (A = P(s))."""
    y, record = layer.forward(layer_input)
    if isinstance(layer, nn.MaxPool2d):
        switches = record[0]
        n, c = switches.shape[:2]

        def forward(v):
            return np.take_along_axis(v.reshape(n, c, -1), switches.reshape(n, c, -1),
                                      axis=2).reshape(switches.shape)
        np.testing.assert_array_equal(forward(layer_input), y)
        return forward
    bias = getattr(layer, "bias", None)
    if bias is None:
        return lambda v: layer.forward(v)[0]
    bias = bias.reshape(1, -1, 1, 1) if y.ndim == 4 else bias
    return lambda v: layer.forward(v)[0] - bias


@pytest.mark.parametrize("index", [0, 2, 3, 5, 6])
def test_backward_is_the_transpose(rng, index):
    """⟨A x, r⟩ = ⟨x, Aᵀ r⟩ (``minideconv.dottest``) for the linear part A of each layer
    (bias left out; the pool with its switches fixed)."""
    net = small_net(rng)
    x = net.trace(rng.standard_normal((2, 3, 9, 9)), upto=index)
    layer = net.layers[index]
    layer_input = x.input if index == 0 else x.outputs[index - 1]
    y, record = layer.forward(layer_input)
    dottest(linear_part(layer, layer_input), lambda r: layer.backward(r, record),
            layer_input.shape, y.shape, rtol=1e-10)


def test_constructor_errors():
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="weight must be 4-D"):
        nn.Conv2d(np.zeros((4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="bias must have length 4"):
        nn.Conv2d(w, np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="stride"):
        nn.Conv2d(w, stride=1.5)
    with pytest.raises(TypeError, match="weight"):
        nn.Linear([[1.0]])
    with pytest.raises(TypeError, match="layer 1"):
        nn.Sequential(nn.ReLU(), "relu")
    with pytest.raises(ValueError, match=r"layer 2 \(Conv2d\) does not fit.*3 channels.*got \(5, 6, 6\)"):
        nn.Sequential(nn.Conv2d(np.zeros((5, 3, 3, 3), np.float32)), nn.ReLU(),
                      nn.Conv2d(w), input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match=r"layer 1 \(Linear\).*Flatten"):
        nn.Sequential(nn.ReLU(), nn.Linear(np.zeros((2, 3), np.float32)), input_shape=(3,
                                                                                      4, 4))


def test_astype_and_receptive_field(rng):
    net = small_net(rng, np.float32)
    assert net.astype(np.float64).layers[0].weight.dtype == np.float64
    assert net.layers[0].weight.dtype == np.float32
    field = net.receptive_field(3)               # conv3 → pool 3/2 → conv3
    assert field.size == (3 + 2 + 2 * 2,) * 2 and field.jump == (2, 2)
    assert net.receptive_field(6) is None        # after Flatten: the whole image


def test_sequential_backward_is_the_gradient(rng):
    """net.backward(r, trace) = ∂⟨net(x), r⟩/∂x, checked along random directions."""
    net = small_net(rng)
    x = rng.standard_normal((2, 3, 9, 9))
    r = rng.standard_normal((2, 6))
    gradient = net.backward(r, net.trace(x))
    assert gradient.shape == x.shape
    eps = 1e-6
    for _ in range(3):
        v = rng.standard_normal(x.shape)
        slope = (np.sum(net(x + eps * v) * r) - np.sum(net(x - eps * v) * r)) / (2 * eps)
        assert np.sum(gradient * v) == pytest.approx(slope, rel=1e-6)
    # from an inner layer: the gradient of ⟨output of layer 2, r2⟩
    r2 = rng.standard_normal((2, 4, 5, 5))
    inner = net.backward(r2, net.trace(x, upto=2))
    v = rng.standard_normal(x.shape)
    pool = net.layers[2]
    slope = (np.sum(pool(net.layers[1](net.layers[0](x + eps * v))) * r2)
             - np.sum(pool(net.layers[1](net.layers[0](x - eps * v))) * r2)) / (2 * eps)
    assert np.sum(inner * v) == pytest.approx(slope, rel=1e-6)


# --------------------------------------------------------------------------- what a network takes

def _two_networks(dtype=np.float32):
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(rng.standard_normal((4, 3, 3, 3)).astype(dtype), padding=1)
    seq = nn.Sequential(conv, nn.ReLU(), input_shape=(3, 8, 8))
    graph = nn.Graph([("conv", conv, "input"), ("relu", nn.ReLU(), "conv"),
                      ("sum", nn.Add(), ("relu", "conv"))])       # no input_shape
    return seq, graph


@pytest.mark.parametrize("which", [0, 1], ids=["Sequential", "Graph"])
def test_images_of_another_dtype_are_refused_saying_how_to_convert(which):
    net = _two_networks()[which]
    for call in (net, net.trace):
        with pytest.raises(TypeError, match=r"weights are float32, the images float64: "
                                            r"give float32 images .*net\.astype\(np\.float64\)"):
            call(np.zeros((1, 3, 8, 8)))


@pytest.mark.parametrize("which", [0, 1], ids=["Sequential", "Graph"])
def test_channels_last_images_are_refused_naming_what_the_network_takes(which):
    net = _two_networks()[which]
    shape = r"\(3, 8, 8\)" if which == 0 else r"\(3, H, W\)"
    with pytest.raises(ValueError, match=rf"takes images \(N, C, H, W\) with \(C, H, W\) = "
                                         rf"{shape} \(layer 0 .*Conv2d\) reads 3 channels\).*"
                                         rf"channels-last.*transpose\(0, 3, 1, 2\)"):
        net(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="reads 3 channels"):
        net.trace(np.zeros((2, 1, 8, 8), np.float32))
    assert net(np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 4, 8, 8)


def test_aliases_name_layers_too(rng, tmp_path):
    from minideconv.cli.checks import layer_index
    layers = small_net(rng).layers
    names = ["0.0", "0.1", "pool", "1.0", "1.1", "flatten", "fc"]
    net = nn.Sequential(*layers, names=names, aliases={"0": "0.1", "1": "1.1"})
    assert net.index("0") == 1 and net.index(0) == 0 and net.index("1") == 4
    assert layer_index(net, "0") == 1            # on the command line a name wins too
    assert layer_index(net, "-1") == 6
    net.save(tmp_path / "net.npz")
    assert nn.load(tmp_path / "net.npz").aliases == net.aliases == net.astype(
        np.float32).aliases
    with pytest.raises(ValueError, match=r"no layer named 'pol' \(the nearest: 'pool'\)"):
        net.index("pol")
    for aliases, error, message in [({"pool": "fc"}, ValueError, "already a layer's name"),
                                    ({"head": "logits"}, ValueError, "no layer's name"),
                                    ({"": "fc"}, TypeError, "non-empty str"),
                                    ([("head", "fc")], TypeError, "must be a dict")]:
        with pytest.raises(error, match=message):
            nn.Sequential(*layers, names=names, aliases=aliases)
