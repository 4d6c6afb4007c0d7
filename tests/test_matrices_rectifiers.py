"""The matrices of the activations (``matrices.network``): each layer's block diag(f′(x))
against the layer's own backward, and the way back through a network of rectifiers —
the rule's diagonal at every ReLU6, LeakyReLU and PReLU — against ``Network.backward``
(two independent implementations of the table)."""

from __future__ import annotations

import numpy as np
import pytest

from minideconv import matrices, nn, rules


def rel(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


ACTIVATIONS = [nn.ReLU(), nn.ClippedReLU(1.5), nn.LeakyReLU(0.1), nn.LeakyReLU(-0.4),
               nn.PReLU(np.array([0.1, 0.3, -0.2])), nn.PReLU(np.array([0.25])), nn.SiLU(),
               nn.GELU(), nn.GELU("tanh"), nn.ELU(0.5), nn.Sigmoid(), nn.Tanh(),
               nn.Hardswish(), nn.Hardsigmoid()]


@pytest.mark.parametrize("layer", ACTIVATIONS, ids=repr)
def test_each_block_is_the_layers_gradient(layer):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 3, 4, 5)) * 3
    signal = rng.normal(size=x.shape)
    _, record = layer.forward(x)
    (block,) = matrices.layer_blocks(layer, record, [x.shape[1:]], x.dtype)
    assert block.shape == (x.size, x.size)
    np.testing.assert_allclose(block.T @ signal.ravel(),
                               layer.backward(signal, record, "backprop").ravel(),
                               rtol=1e-13, atol=1e-15)


def rectifier_net(rng):
    """conv – ReLU6 – conv – LeakyReLU – pool – PReLU – flatten – linear."""
    return nn.Sequential(
        nn.Conv2d(rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4) * 0.1, padding=1),
        nn.ClippedReLU(1.0),
        nn.Conv2d(rng.normal(size=(4, 4, 3, 3)) * 0.5),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2),
        nn.PReLU(np.array([0.05, 0.2, -0.1, 0.3])),
        nn.Flatten(),
        nn.Linear(rng.normal(size=(3, 64)) * 0.3),
        input_shape=(2, 10, 10))


def smooth_net(rng):
    return nn.Sequential(
        nn.Conv2d(rng.normal(size=(3, 2, 3, 3))), nn.SiLU(),
        nn.Conv2d(rng.normal(size=(3, 3, 3, 3)) * 0.5), nn.Hardswish(), nn.GELU("tanh"),
        nn.ELU(), nn.Tanh(), nn.Sigmoid(), nn.Hardsigmoid(), nn.LeakyReLU(0.2),
        input_shape=(2, 8, 8))


@pytest.mark.parametrize("rule", rules.NAMES)
@pytest.mark.parametrize("make, layer", [(rectifier_net, 3), (rectifier_net, 5),
                                         (rectifier_net, -1), (smooth_net, -1)])
def test_the_network_map_equals_backward(make, layer, rule):
    rng = np.random.default_rng(1)
    net = make(rng)
    x = rng.normal(size=(1,) + net.input_shape)
    start = net.index(layer)
    trace = net.trace(x, upto=start)
    top = rng.normal(size=trace.outputs[start].shape)
    ours = net.backward(top, trace, start=start, rule=rule)
    network_map = matrices.network_backward_map(net, x[0], layer, top, rule)
    assert rel(ours[0], network_map.projection) < 1e-12
    if rule == "backprop":      # the gradient's map is the transpose of the forward map
        forward = matrices.network_forward_map(net, x[0], layer)
        assert abs(forward.T - network_map.matrix).max() < 1e-12


def test_the_deconvnet_diagonal_is_rect_alpha_of_the_arriving_signal():
    layer = nn.PReLU(np.array([0.5, -2.0]))
    net = nn.Sequential(layer, input_shape=(2, 1, 2))
    x = np.array([[[1.0, -1.0]], [[1.0, -1.0]]])
    top = np.array([-1.0, 3.0, -1.0, 3.0])
    for rule, expected in (("deconvnet", [-0.5, 3.0, 2.0, 3.0]),
                           ("guided", [-0.5, 1.5, 2.0, -6.0]),
                           ("backprop", [-1.0, 1.5, -1.0, -6.0])):
        network_map = matrices.network_backward_map(net, x, 0, top, rule)
        np.testing.assert_allclose(network_map.projection.ravel(), expected)
