"""minideconv.nn.channel_maps: Softmax, LocalResponseNorm and ChannelShuffle — each
forward against torch, each way back against torch autograd's Jacobian, each sparse
block (matrices.channel_maps) against that Jacobian (those tests skip without torch),
the way back through a network against the sparse network's, files and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minideconv import dottest, nn
from minideconv.matrices import layer_blocks
from minideconv.nn.channel_maps import window_sum


@pytest.fixture
def rng():
    return np.random.default_rng(27)


def torch_layer(layer):
    """The torch module computing what ``layer`` computes (torch's own definitions)."""
    torch = pytest.importorskip("torch")
    if isinstance(layer, nn.Softmax):
        return torch.nn.Softmax(dim=1)
    if isinstance(layer, nn.LocalResponseNorm):
        return torch.nn.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    return torch.nn.ChannelShuffle(layer.groups)


LAYERS = [nn.Softmax(), nn.LocalResponseNorm(5, 0.3, 0.75, 1.5),
          nn.LocalResponseNorm(4, 2e-2, 0.6, 0.8), nn.LocalResponseNorm(1, 0.5, 1.2, 2.0),
          nn.ChannelShuffle(3)]
IDS = ["softmax", "lrn5", "lrn4-even", "lrn1", "shuffle3"]


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
def test_forward_and_backward_equal_torch_and_its_autograd(layer, rng):
    torch = pytest.importorskip("torch")
    x = rng.normal(size=(2, 6, 3, 4)) * 3
    grad = rng.normal(size=x.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_layer(layer)(xt)
    yt.backward(torch.tensor(grad))
    y, record = layer.forward(x)
    assert np.max(np.abs(y - yt.detach().numpy())) <= 1e-10 * np.max(np.abs(y))
    for rule in ("backprop", "deconvnet", "guided"):      # no rectifier: one Jacobian
        back = layer.backward(grad, record, rule)
        assert np.max(np.abs(back - xt.grad.numpy())) <= 1e-10 * np.max(np.abs(back))


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
@pytest.mark.parametrize("shape", [(6, 3, 4), (6,)], ids=["chw", "features"])
def test_the_sparse_block_is_torch_autograds_jacobian(layer, shape, rng):
    torch = pytest.importorskip("torch")
    if not isinstance(layer, nn.Softmax) and len(shape) == 1:
        shape = (6, 1, 1)            # torch's LRN and shuffle take (N, C, …) of 3-D or more
    x = rng.normal(size=(1,) + shape) * 2
    _, record = layer.forward(x)
    (block,) = layer_blocks(layer, record, [shape], x.dtype)
    module = torch_layer(layer)
    jacobian = torch.autograd.functional.jacobian(
        lambda t: module(t.reshape((1,) + shape)).reshape(-1), torch.tensor(x.ravel()))
    assert np.max(np.abs(block.toarray() - jacobian.numpy())) <= 1e-12
    grad = rng.normal(size=x.shape)
    assert np.allclose(block.T @ grad.ravel(), layer.backward(grad, record).ravel(),
                       rtol=1e-12, atol=1e-14)


def test_the_softmax_jacobian_is_diag_p_minus_p_p_transposed(rng):
    x = rng.normal(size=(1, 5))
    p, record = nn.Softmax().forward(x)
    (block,) = layer_blocks(nn.Softmax(), record, [(5,)], x.dtype)
    assert np.allclose(block.toarray(), np.diag(p[0]) - np.outer(p[0], p[0]), atol=1e-15)
    assert np.allclose(p.sum(axis=1), 1) and np.all(p > 0)
    big = np.array([[1000.0, 0.0, -1000.0]])   # a finite exp: shifted by the maximum
    assert np.allclose(nn.Softmax()(big), [[1, 0, 0]])


def test_the_channel_shuffle_transpose_is_its_inverse(rng):
    layer = nn.ChannelShuffle(2)
    x = rng.normal(size=(2, 6, 2, 3))
    y, record = layer.forward(x)
    assert np.array_equal(y[:, [0, 1, 2, 3, 4, 5]], x[:, [0, 3, 1, 4, 2, 5]])
    assert np.array_equal(layer.backward(y, record), x)
    result = dottest(lambda v: layer.forward(v)[0], lambda r: layer.backward(r, None),
                     x.shape, x.shape)
    assert result.relative_error <= 1e-12


@pytest.mark.parametrize("before, after", [(2, 2), (2, 1), (1, 2), (0, 0), (0, 3)])
def test_window_sum_sums_each_window(before, after, rng):
    v = rng.normal(size=(2, 6, 2))
    expected = np.stack([v[:, max(0, c - before):c + after + 1].sum(axis=1)
                         for c in range(6)], axis=1)
    assert np.allclose(window_sum(v, before, after), expected, atol=1e-14)


def test_an_even_lrn_window_follows_before(rng):
    # ONNX's window of size 4 has 1 channel before c; torch's has 2: mirror images
    x = rng.normal(size=(1, 5, 2, 2))
    onnx_style = nn.LocalResponseNorm(4, 0.5, 0.75, 1.0, before=1)
    flipped = nn.LocalResponseNorm(4, 0.5, 0.75, 1.0)(x[:, ::-1])[:, ::-1]
    assert np.allclose(onnx_style(x), flipped, atol=1e-14)
    assert not np.allclose(onnx_style(x), nn.LocalResponseNorm(4, 0.5, 0.75, 1.0)(x))


@pytest.mark.parametrize("layer", LAYERS + [nn.LocalResponseNorm(4, before=1)],
                         ids=IDS + ["lrn4-onnx"])
def test_the_layers_round_trip_through_a_file(layer, tmp_path, rng):
    json.dumps(layer.config())
    net = nn.Sequential(nn.Conv2d(rng.normal(size=(6, 2, 1, 1))), layer,
                        input_shape=(2, 3, 3))
    net.save(tmp_path / "net.npz")
    loaded = nn.load(tmp_path / "net.npz")
    x = rng.normal(size=(2, 2, 3, 3))
    assert type(loaded.layers[1]) is type(layer)
    assert loaded.layers[1].config() == layer.config()
    assert np.array_equal(loaded(x), net(x))


def test_output_layer_is_the_logits_before_a_closing_softmax(rng):
    linear = nn.Linear(rng.normal(size=(3, 4)))
    classifier = nn.Sequential(linear, nn.Softmax(), input_shape=(4,))
    assert classifier.output_layer() == 0 and classifier.index(-1) == 1
    assert nn.Sequential(linear, input_shape=(4,)).output_layer() == 0
    assert nn.Sequential(nn.Softmax(), input_shape=(4,)).output_layer() == 0


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.Softmax(dim=2), ValueError, "channel axis"),
    (lambda: nn.LocalResponseNorm(0), ValueError, "size"),
    (lambda: nn.LocalResponseNorm(3, k=0.0), ValueError, "k"),
    (lambda: nn.LocalResponseNorm(3, alpha=-1.0), ValueError, "alpha"),
    (lambda: nn.LocalResponseNorm(3, before=3), ValueError, "before"),
    (lambda: nn.LocalResponseNorm(2.5), TypeError, "size"),
    (lambda: nn.ChannelShuffle(0), ValueError, "groups"),
    (lambda: nn.ChannelShuffle(4).output_shape((6, 2, 2)), ValueError, "divide"),
    (lambda: nn.Softmax(-1).output_shape((6, 2, 2)), ValueError, "dim=-1"),
    (lambda: nn.Softmax()(np.zeros((2, 3, 4))), ValueError, r"\(N, C\)"),
])
def test_bad_arguments_are_refused_naming_them(make, error, message):
    with pytest.raises(error, match=message):
        make()


def channel_mixing_net(rng):
    """Conv → ReLU → LRN → MaxPool → ChannelShuffle → Conv → ReLU → Flatten → Linear →
    Softmax: every channel map inside a network whose rules differ at the ReLUs (logits
    of order 1: a saturated softmax passes back nothing but rounding)."""
    return nn.Sequential(
        nn.Conv2d(rng.normal(size=(6, 2, 3, 3)), rng.normal(size=6) * 0.1, padding=1),
        nn.ReLU(), nn.LocalResponseNorm(3, 0.5, 0.75, 1.0), nn.MaxPool2d(2),
        nn.ChannelShuffle(3), nn.Conv2d(rng.normal(size=(4, 6, 3, 3)), padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(rng.normal(size=(5, 36)) * 0.02), nn.Softmax(),
        input_shape=(2, 6, 6))


@pytest.mark.parametrize("rule", ["backprop", "deconvnet", "guided"])
@pytest.mark.parametrize("layer", [-1, -2, 4, 2])
def test_the_way_back_through_the_channel_maps_is_the_sparse_networks(rule, layer, rng):
    from minideconv.matrices import network_backward_map, network_forward_map
    net = channel_mixing_net(rng)
    x = rng.normal(size=(1, 2, 6, 6))
    trace = net.trace(x, upto=layer)
    start = net.index(layer)
    top = rng.normal(size=trace.outputs[start].shape)
    ours = net.backward(top, trace, start=start, rule=rule)
    sparse = network_backward_map(net, x[0], layer, top, rule).projection
    assert np.max(np.abs(ours[0] - sparse)) <= 1e-12 * np.max(np.abs(sparse))
    if rule == "backprop":              # and the gradient is the forward map's transpose
        forward = network_forward_map(net, x[0], layer)
        assert np.allclose(forward.T @ top.ravel(), ours[0].ravel(), rtol=1e-12, atol=0)


def test_the_forward_map_defaults_to_the_logits(rng):
    from minideconv.matrices import network_forward_map
    net = channel_mixing_net(rng)
    x = rng.normal(size=(2, 6, 6))
    logits = network_forward_map(net, x)
    assert logits.shape == (5, x.size)
    assert abs(logits - network_forward_map(net, x, -2)).max() == 0    # the Linear's
    assert abs(logits - network_forward_map(net, x, -1)).max() > 1e-3  # not the Softmax's
