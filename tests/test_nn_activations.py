"""minideconv.nn.activations and ops.rectifier: every activation's forward and gradient
against torch autograd (float64), the deconvnet and guided rules at every rectifier
against the rule table written independently in torch (an autograd override whose f′ is
torch's own derivative), PReLU's weight gradient, both backends, files and errors."""

from __future__ import annotations

import numpy as np
import pytest

import minideconv as md
from minideconv import nn, ops

torch = pytest.importorskip("torch")
F = torch.nn.functional

SHAPES = [(2, 3, 5, 4), (1, 4, 1, 7), (3, 6)]


def away_from_ties(shape, seed, scale=4.0):
    """Normal values × scale, none within 1e-3 of a kink (0, ±3, the caps 2 and 6)."""
    x = np.random.default_rng(seed).normal(size=shape) * scale
    for kink in (0.0, 2.0, 3.0, -3.0, 6.0):
        close = np.abs(x - kink) < 1e-3
        x[close] += 0.01
    return x


def torch_prelu(weight):
    module = torch.nn.PReLU(len(weight)).double()
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(weight))
    return module


def torch_modules(channels):
    """(minideconv layer, the torch module it stands for), every activation."""
    weight = np.linspace(0.05, 0.4, channels)
    return [
        (nn.ClippedReLU(6.0), torch.nn.ReLU6()),
        (nn.ClippedReLU(2.0), torch.nn.Hardtanh(0.0, 2.0)),
        (nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)),
        (nn.LeakyReLU(-0.3), torch.nn.LeakyReLU(-0.3)),
        (nn.PReLU(weight), torch_prelu(weight)),
        (nn.PReLU(np.array([0.2])), torch_prelu(np.array([0.2]))),
        (nn.SiLU(), torch.nn.SiLU()),
        (nn.GELU(), torch.nn.GELU()),
        (nn.GELU("tanh"), torch.nn.GELU(approximate="tanh")),
        (nn.ELU(0.7), torch.nn.ELU(0.7)),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.Hardswish(), torch.nn.Hardswish()),
        (nn.Hardsigmoid(), torch.nn.Hardsigmoid()),
    ]


def slope_of(module):
    """α of a torch rectifier module, shaped to broadcast over (N, C, …)."""
    if isinstance(module, torch.nn.PReLU):
        return module.weight.detach()
    if isinstance(module, torch.nn.LeakyReLU):
        return torch.tensor(module.negative_slope, dtype=torch.float64)
    return torch.tensor(0.0, dtype=torch.float64)


def table_backward(module, x, g, rule):
    """The rule table in torch, written from the table alone: rect_α(g) and f′(x) from
    torch's own autograd of the module."""
    xt = torch.from_numpy(x).requires_grad_(True)
    (derivative,) = torch.autograd.grad(module(xt).sum(), xt)       # f′(x), torch's
    g = torch.from_numpy(g)
    slope = slope_of(module)
    if slope.ndim == 1 and slope.numel() > 1:
        slope = slope.reshape((1, -1) + (1,) * (x.ndim - 2))
    rectified = torch.where(g > 0, g, slope * g)
    answer = {"backprop": derivative * g, "deconvnet": rectified,
              "guided": derivative * rectified}[rule]
    return answer.detach().numpy()


@pytest.mark.parametrize("shape", SHAPES)
def test_every_activation_forward_and_gradient_equal_torch(shape):
    x = away_from_ties(shape, 1)
    g = np.random.default_rng(2).normal(size=shape)
    for layer, module in torch_modules(shape[1]):
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = module(xt)
        (gt,) = torch.autograd.grad(yt, xt, torch.from_numpy(g))
        y, record = layer.forward(x)
        assert y.dtype == x.dtype and y.shape == x.shape
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=repr(layer))
        # torch's float64 Hardsigmoid backward multiplies by the float32 constant 1/6
        # (0.16666667163…): a relative 3e-8 from the exact slope
        tolerance = 1e-7 if isinstance(layer, nn.Hardsigmoid) else 1e-10
        np.testing.assert_allclose(layer.backward(g, record, "backprop"), gt.numpy(),
                                   rtol=tolerance, atol=1e-12, err_msg=repr(layer))


def test_torch_hardsigmoid_gradient_is_the_float32_sixth():
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(F.hardsigmoid(x).sum(), x)
    assert abs(g.item() - 1 / 6) > 1e-9 and g.item() == np.float32(1 / 6)
    layer = nn.Hardsigmoid()
    assert layer.backward(np.ones(1), np.zeros(1)) == 1 / 6      # the exact slope


@pytest.mark.parametrize("rule", md.rules.NAMES)
@pytest.mark.parametrize("shape", SHAPES)
def test_rectifier_rules_equal_the_table_in_torch(shape, rule):
    x = away_from_ties(shape, 3)
    g = np.random.default_rng(4).normal(size=shape)
    for layer, module in torch_modules(shape[1]):
        _, record = layer.forward(x)
        ours = layer.backward(g, record, rule)
        if isinstance(layer, nn.Rectifier):
            expected = table_backward(module, x, g, rule)
        else:       # smooth: the plain gradient under every rule
            expected = layer.backward(g, record, "backprop")
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-14,
                                   err_msg=f"{layer!r} {rule}")


def test_rules_are_positively_homogeneous_and_deconvnet_ignores_the_cap():
    x = away_from_ties((2, 3, 4, 4), 5)
    g = np.random.default_rng(6).normal(size=x.shape)
    for layer in (nn.ClippedReLU(1.0), nn.LeakyReLU(0.2), nn.PReLU(np.array([.1, .2, .3]))):
        _, record = layer.forward(x)
        for rule in md.rules.NAMES:
            np.testing.assert_allclose(layer.backward(7.5 * g, record, rule),
                                       7.5 * layer.backward(g, record, rule), rtol=1e-14)
    # the deconvnet at a clipped ReLU is relu(g), whatever x and however large g is
    huge = 1e6 * g
    np.testing.assert_array_equal(nn.ClippedReLU(1.0).backward(huge, x, "deconvnet"),
                                  np.maximum(huge, 0))


def test_ties_follow_the_table():
    x = np.array([[-1.0, 0.0, 3.0, 6.0, 7.0]])
    g = np.ones_like(x)
    np.testing.assert_array_equal(md.rectifier_backward(g, x, cap=6.0), [[0, 0, 1, 0, 0]])
    np.testing.assert_array_equal(md.rectifier_backward(g, x, negative_slope=0.5),
                                  [[.5, .5, 1, 1, 1]])                 # f′(0) = α
    xt = torch.tensor(x, requires_grad=True)
    for f in (F.relu6, lambda t: F.hardtanh(t, 0.0, 6.0), lambda t: F.leaky_relu(t, 0.5)):
        (expected,) = torch.autograd.grad(f(xt).sum(), xt)
        slope = 0.5 if f(torch.tensor([-2.0])).item() < 0 else 0.0
        cap = None if slope else 6.0
        np.testing.assert_array_equal(md.rectifier_backward(g, x, "backprop", slope, cap),
                                      expected.numpy())


def test_prelu_weight_gradient_equals_torch():
    x = away_from_ties((2, 3, 4, 5), 7)
    g = np.random.default_rng(8).normal(size=x.shape)
    for weight in (np.array([0.1, 0.2, 0.3]), np.array([0.25])):
        module = torch_prelu(weight)
        module(torch.from_numpy(x)).backward(torch.from_numpy(g))
        grads = nn.PReLU(weight).param_grads(g, x)
        np.testing.assert_allclose(grads["weight"], module.weight.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_backends_agree_and_the_default_is_relu(monkeypatch, dtype):
    x = away_from_ties((3, 4, 6, 5), 9).astype(dtype)
    g = np.random.default_rng(10).normal(size=x.shape).astype(dtype)
    slopes = np.array([0.1, -0.2, 0.3, 0.0], dtype)
    results = {}
    for backend in ("cpu", "reference"):
        monkeypatch.setattr(ops, "CPU_BACKEND", backend)
        results[backend] = [md.rectifier(x, slopes, 2.5)] + \
            [md.rectifier_backward(g, x, rule, slopes, 2.5) for rule in md.rules.NAMES]
        np.testing.assert_array_equal(md.rectifier(x), md.relu(x))
        for rule in md.rules.NAMES:
            np.testing.assert_array_equal(md.rectifier_backward(g, x, rule),
                                          md.relu_backward(g, x, rule))
    for cpu, reference in zip(results["cpu"], results["reference"]):
        assert cpu.dtype == dtype
        np.testing.assert_array_equal(cpu, reference)


def test_nan_stays_nan():
    x = np.array([[np.nan, -1.0, 8.0]])
    assert np.isnan(md.rectifier(x, 0.1, 6.0)[0, 0])
    assert np.isnan(md.rectifier_backward(np.array([[np.nan, 1.0, 1.0]]), x, "deconvnet",
                                          0.1)[0, 0])


def test_files_keep_every_activation(tmp_path):
    rng = np.random.default_rng(11)
    layers = [nn.Conv2d(rng.normal(size=(3, 2, 3, 3)))] + \
        [layer for layer, _ in torch_modules(3)]
    net = nn.Sequential(*layers, input_shape=(2, 7, 7))
    net.save(tmp_path / "net.npz")
    loaded = nn.load(tmp_path / "net.npz")
    x = rng.normal(size=(2, 2, 7, 7))
    np.testing.assert_array_equal(loaded(x), net(x))
    assert [repr(a) for a in loaded.layers] == [repr(b) for b in net.layers]


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.ClippedReLU(0), ValueError, "cap must be > 0"),
    (lambda: nn.LeakyReLU("a"), TypeError, "negative_slope must be a real number"),
    (lambda: nn.PReLU(np.ones((2, 2))), ValueError, "weight"),
    (lambda: nn.GELU("erf"), ValueError, "approximate must be one of"),
    (lambda: md.rectifier(np.ones((1, 3, 2, 2)), np.ones(2)), ValueError,
     "negative_slope must have 1 or 3 values"),
    (lambda: md.rectifier(np.ones((1, 3)), [0.1]), TypeError, "negative_slope must be"),
    (lambda: md.rectifier(np.ones((1, 3)), cap=-1), ValueError, "cap must be > 0"),
    (lambda: md.rectifier_backward(np.ones((1, 3)), np.ones((1, 2))), ValueError,
     "grad must have the shape of x"),
    (lambda: md.rectifier_backward(np.ones((1, 3)), np.ones((1, 3)), "zeiler"), ValueError,
     "rule must be one of"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_float32_stays_float32():
    x = away_from_ties((2, 3, 4, 4), 12).astype(np.float32)
    for layer, _ in torch_modules(3):
        layer = layer.astype(np.float32)
        y, record = layer.forward(x)
        assert y.dtype == np.float32, repr(layer)
        for rule in md.rules.NAMES:
            assert layer.backward(x, record, rule).dtype == np.float32, repr(layer)
