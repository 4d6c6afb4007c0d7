"""minideconv.nn layers, Sequential, save/load, and the training step (minideconv.train)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minideconv import conv2d, dottest, max_pool2d, nn, train


def small_net(rng, dtype=np.float64):
    """conv 3×3 (pad 1) → ReLU → pool 3×3/2 (pad 1, overlapping) → conv 3×3 → ReLU →
    flatten → linear, on 3×9×9 inputs."""
    def w(*shape):
        return (rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))).astype(dtype)
    return nn.Sequential(
        nn.Conv2d(w(4, 3, 3, 3), w(4, 1)[:, 0], padding=1), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(w(5, 4, 3, 3), w(5, 1)[:, 0]), nn.ReLU(),
        nn.Flatten(), nn.Linear(w(6, 45), w(6, 1)[:, 0]),
        input_shape=(3, 9, 9))


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


def test_loss_gradients_match_finite_differences(rng):
    net = small_net(rng)
    x = rng.standard_normal((4, 3, 9, 9))
    labels = np.array([0, 3, 5, 1])
    _, grads = train.loss_and_grads(net, x, labels)
    eps = 1e-6
    for i, layer in enumerate(net.layers):
        for name, grad in grads[i].items():
            weight = getattr(layer, name)
            for _ in range(3):
                idx = tuple(int(rng.integers(s)) for s in weight.shape)
                old = weight[idx]
                weight[idx] = old + eps
                plus = train.softmax_cross_entropy(net(x), labels)[0]
                weight[idx] = old - eps
                minus = train.softmax_cross_entropy(net(x), labels)[0]
                weight[idx] = old
                assert grad[idx] == pytest.approx((plus - minus) / (2 * eps), abs=1e-7), \
                    (i, name, idx)


def test_softmax_cross_entropy():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    loss, grad = train.softmax_cross_entropy(logits, np.array([0, 2]))
    assert loss == pytest.approx(np.log(3) / 2)
    assert np.allclose(grad.sum(axis=1), 0)
    assert np.allclose(grad[1], np.array([1, 1, -2]) / 3 / 2)


def test_shift_input_is_exact(rng):
    net = train.build_model(seed=3)
    x = rng.uniform(0, 1, (2, 3, 32, 32)).astype(np.float32)
    before = net(x)
    train.shift_input(net, 0.5)
    assert np.allclose(net(x - np.float32(0.5)), before, atol=1e-4)
    train.shift_input(net, -0.5)
    assert np.allclose(net(x), before, atol=1e-4)


def test_training_a_few_steps_lowers_the_loss():
    from minideconv.data import load_dataset
    images, labels = load_dataset("train", n=128)
    net = train.build_model(seed=0)

    def loss():
        return train.softmax_cross_entropy(net(images), labels)[0]

    start = loss()
    history = train.fit(net, images, labels, epochs=2, batch_size=32, lr=0.05, seed=0,
                        progress=False)            # 8 SGD steps
    assert len(history) == 2 and history[1] < history[0]
    assert loss() < start - 0.03


def test_save_load_round_trip(tmp_path, rng):
    net = small_net(rng, np.float32)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = nn.load(path)
    assert np.array_equal(nn.Sequential.load(path).layers[0].weight, net.layers[0].weight)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    assert np.array_equal(loaded(x), net(x))
    assert [type(a) for a in loaded.layers] == [type(b) for b in net.layers]
    assert loaded.input_shape == (3, 9, 9)
    with np.load(path, allow_pickle=False) as npz:        # plain arrays only
        assert json.loads(str(npz["architecture"]))["layers"][2]["type"] == "MaxPool2d"


def _rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(out, **arrays)


def test_load_errors_name_the_layer(tmp_path, rng):
    net = small_net(rng, np.float32)
    path = tmp_path / "net.npz"
    net.save(path)

    bad = tmp_path / "bad_shape.npz"
    _rewrite(path, bad, **{"layers.3.weight": np.zeros((5, 7, 3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"layer 3 \(Conv2d\)"):
        nn.load(bad)

    bad_bias = tmp_path / "bad_bias.npz"
    _rewrite(path, bad_bias, **{"layers.0.bias": np.zeros(9, np.float32)})
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2d\).*bias"):
        nn.load(bad_bias)

    missing = tmp_path / "missing.npz"
    _rewrite(path, missing, **{"layers.6.weight": None})
    with pytest.raises(ValueError, match=r"layer 6 \(Linear\).*missing"):
        nn.load(missing)

    with pytest.raises(FileNotFoundError, match="no network file"):
        nn.load(tmp_path / "nowhere.npz")
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match="not a minideconv network"):
        nn.load(text)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, architecture=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a minideconv network"):
        nn.load(pickled)


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
