"""Activations through the torch importer (``interop.torch``): modules, functions and
methods (in place or not) read as the layers of ``nn.activations``, written back by
``to_torch``; projections under the three rules against an independent torch override of
the rule table (each rectifier's f′ from torch's own autograd); ``crosscheck`` compares
with Captum only where Captum applies — a ReLU6 network gets Captum's gradient instead."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

from minideconv import nn, rules, visualize  # noqa: E402
from minideconv.interop.torch import crosscheck, from_torch, to_torch  # noqa: E402

from support.rectifier_table import (rectifier_model, smooth_model,  # noqa: E402
                                     table_projection)

tnn, F = torch.nn, torch.nn.functional


def rel(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


@pytest.fixture
def images():
    return np.random.default_rng(0).normal(size=(2, 3, 8, 8))


def test_the_rectifier_network_visits_every_piece(images):
    model = rectifier_model()
    with torch.no_grad():
        before = model[0](torch.from_numpy(images))
    assert (before < 0).any() and ((before > 0) & (before < 6)).any() and (before > 6).any()


@pytest.mark.parametrize("rule", rules.NAMES)
@pytest.mark.parametrize("index", [1, 3, 5, 7])
def test_projections_equal_the_table_in_torch(images, rule, index):
    model = rectifier_model()
    net = from_torch(model)
    assert [type(layer).__name__ for layer in net.layers] == [
        "Conv2d", "ClippedReLU", "Conv2d", "LeakyReLU", "MaxPool2d", "PReLU", "Flatten",
        "Linear"]
    with torch.no_grad():
        out = tnn.Sequential(*list(model)[:index + 1])(torch.from_numpy(images)).numpy()
    unsaturated = np.where(out[0] < 5.5, out[0], -np.inf)   # a ReLU6 at 6 passes nothing
    unit = np.unravel_index(np.argmax(unsaturated), out.shape[1:])
    position = tuple(unit[1:]) if len(unit) == 3 else None
    ours = visualize.project(net, images, index, unit[0], position=position, rule=rule)
    assert np.abs(ours).max() > 0
    assert rel(ours, table_projection(model, index, images, unit, rule)) < 1e-10


def test_crosscheck_passes_and_does_not_use_captum_where_it_does_not_apply(images):
    report = crosscheck(rectifier_model(), images)
    assert report.passed, str(report)
    assert "Captum" not in report.reference.split("(")[0]
    report = crosscheck(smooth_model(), images)
    assert report.passed, str(report)


def test_captums_deconvnet_at_a_relu6_is_the_gradient_and_not_the_table(images):
    """Captum overrides nn.ReLU modules only: at a ReLU6 its 'deconvnet' is autograd's
    gradient.  The table's deconvnet differs, and crosscheck compares with the table."""
    torch.manual_seed(2)
    model = tnn.Sequential(tnn.Conv2d(3, 4, 3), tnn.ReLU6(), tnn.Conv2d(4, 4, 3),
                           tnn.ReLU6()).double().eval()
    x = torch.from_numpy(images[:1])
    unit = (1, 2, 2)

    def neuron(output):
        return output[(slice(None),) + unit]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        captum = captum_attr.NeuronDeconvolution(model, model[3]).attribute(
            x, neuron_selector=neuron).numpy()
    xt = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(neuron(model(xt)).sum(), xt)
    np.testing.assert_allclose(captum, gradient.numpy(), rtol=1e-12)     # just the gradient
    net = from_torch(model)
    ours = visualize.project(net, images[:1], 3, unit[0], position=unit[1:],
                             rule="deconvnet", seed_value="one")
    assert rel(ours, captum) > 0.1
    assert rel(ours, table_projection(model, 3, images[:1], unit, "deconvnet") /
               float(model(x)[(0,) + unit].detach())) < 1e-10
    report = crosscheck(model, images)
    assert report.passed, str(report)


class Functions(tnn.Module):
    """Every activation function and method, some in place, some reading a value an
    in-place op overwrites later."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 4, 3, padding=1)
        self.weight = tnn.Parameter(torch.tensor([0.1, -0.2, 0.3, 0.05]))
        self.conv2 = tnn.Conv2d(4 * 12, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        parts = [F.relu6(x), F.hardtanh(x, 0.0, 2.0), F.leaky_relu(x, 0.2),
                 F.prelu(x, self.weight), torch.clamp(x, min=0), x.clamp(0, 3), F.silu(x),
                 F.gelu(x), F.elu(x, 0.5), torch.sigmoid(x), x.tanh(), F.hardswish(x)]
        y = self.conv2(torch.cat(parts, 1))
        a = torch.tanh(y)
        F.leaky_relu_(a, 0.3)                   # in place: later readers read its output
        a.clip_(0, 1.5)
        return F.hardsigmoid(a) + F.relu6(y, inplace=True)


def test_functions_and_methods_are_read_and_checked(images):
    torch.manual_seed(3)
    model = Functions().double().eval()
    with torch.no_grad():
        model.conv.weight.mul_(4)
    net = from_torch(model)
    kinds = [type(layer).__name__ for layer in net.layers]
    for kind in ("ClippedReLU", "LeakyReLU", "PReLU", "ReLU", "SiLU", "GELU", "ELU",
                 "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid"):
        assert kind in kinds
    expected = model(torch.from_numpy(images)).detach().numpy()
    assert rel(net(images), expected) < 1e-12
    report = crosscheck(model, images)
    for check in report.layers:
        assert check.forward.rel < 1e-12, check.name
        # below the Hardsigmoid, torch's float64 gradient has the float32 slope 1/6
        # (test_nn_activations): 3e-8 relative; everywhere else the two agree to 1e-10
        bound = 1e-7 if "hardsigmoid" in check.name or "'add'" in check.name else 1e-10
        for rule, error in check.projections.items():
            assert error.rel < bound, (check.name, rule, error)


def test_to_torch_writes_every_activation_back(images):
    rng = np.random.default_rng(4)
    layers = [nn.Conv2d(rng.normal(size=(3, 3, 3, 3))), nn.ClippedReLU(6.0),
              nn.ClippedReLU(2.0), nn.LeakyReLU(0.1), nn.PReLU(np.array([0.1, 0.2, 0.3])),
              nn.SiLU(), nn.GELU("tanh"), nn.ELU(0.3), nn.Sigmoid(), nn.Tanh(),
              nn.Hardswish(), nn.Hardsigmoid()]
    net = nn.Sequential(*layers, input_shape=(3, 8, 8))
    model = to_torch(net)
    assert [type(m).__name__ for m in model][1:] == [
        "ReLU6", "Hardtanh", "LeakyReLU", "PReLU", "SiLU", "GELU", "ELU", "Sigmoid", "Tanh",
        "Hardswish", "Hardsigmoid"]
    expected = model(torch.from_numpy(images)).detach().numpy()
    assert rel(net(images), expected) < 1e-12
    with pytest.raises(ValueError, match="torch's has alpha=1/6"):
        to_torch(nn.Sequential(nn.Hardsigmoid(alpha=0.2), input_shape=(3, 8, 8)))


@pytest.mark.parametrize("module, message", [
    (tnn.Hardtanh(), r"Hardtanh/clamp with min_val=-1.0 is not a rectifier of the rule table"),
    (tnn.Hardtanh(-0.5, 2.0), r"min_val=-0.5 is not a rectifier"),
])
def test_hardtanh_that_is_no_rectifier_is_refused(module, message):
    with pytest.raises(ValueError, match=message):
        from_torch(tnn.Sequential(tnn.Conv2d(3, 3, 1), module))


@pytest.mark.parametrize("body, message", [
    (lambda x: x.clamp(max=1.0), r"clamp without min=0 is not a rectifier"),
    (lambda x: torch.clamp(x, -1.0, 1.0), r"min_val=-1.0 is not a rectifier"),
    (lambda x: F.hardtanh(x), r"min_val=-1.0 is not a rectifier"),
])
def test_clamps_that_are_no_rectifier_are_refused(body, message):
    class Body(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(3, 3, 1)

        def forward(self, x):
            return body(self.conv(x))

    with pytest.raises(ValueError, match=message):
        from_torch(Body())
