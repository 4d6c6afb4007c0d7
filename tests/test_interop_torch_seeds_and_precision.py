"""The seed of a projection made explicit (the activation, or 1 as Captum seeds), checked on
negative logits against Captum and autograd; and a float32 cross-check judged against the
float64 truth of both sides, on a network whose first layer float32 gets only to percents."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

from minideconv import visualize  # noqa: E402
from minideconv.interop.torch import compare, crosscheck, from_torch  # noqa: E402
from minideconv.interop.torch.report import FLOAT32_DRIFT_FACTOR  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore::UserWarning:captum")]


def classifier(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 6, 3, padding=1),
                               torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(6 * 4 * 4, 7)).eval().double()


@pytest.fixture
def negative_logit():
    model = classifier()
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8))
    with torch.no_grad():
        logits = model(torch.from_numpy(x))[0].numpy()
    c = int(np.argmin(logits))
    assert logits[c] < 0
    return model, from_torch(model), x, c, float(logits[c])


def captum(rule, model, x, neuron):
    cls = {"deconvnet": captum_attr.NeuronDeconvolution,
           "guided": captum_attr.NeuronGuidedBackprop}[rule]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(model, model[-1]).attribute(torch.from_numpy(x),
                                               neuron_selector=neuron).numpy()


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_seed_one_is_captums_convention_on_a_negative_logit(negative_logit, rule):
    model, net, x, c, _ = negative_logit
    ours = visualize.project(net, x, -1, c, rule=rule, seed_value="one")
    np.testing.assert_allclose(ours, captum(rule, model, x, c), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_the_activation_seed_of_a_negative_logit_is_its_size_times_the_map_of_minus_it(
        negative_logit, rule):
    """Zeiler & Fergus's seed a < 0: the rules are positively homogeneous, so the map is
    |a| times the map of the neuron −a — not a times the unit's own map."""
    model, net, x, c, a = negative_logit
    ours = visualize.project(net, x, -1, c, rule=rule)
    minus = captum(rule, model, x, lambda out: -out[:, c])
    np.testing.assert_allclose(ours, abs(a) * minus, rtol=1e-10, atol=1e-14)
    assert not np.allclose(ours, a * captum(rule, model, x, c), atol=1e-6)


def test_backprop_is_the_gradient_with_seed_one_and_a_times_it_by_default(negative_logit):
    model, net, x, c, a = negative_logit
    xt = torch.from_numpy(x).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xt)[0, c], xt)
    np.testing.assert_allclose(visualize.project(net, x, -1, c, rule="backprop",
                                                 seed_value="one"), grad.numpy(),
                               rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(visualize.project(net, x, -1, c, rule="backprop"),
                               a * grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("seed_value", ["activation", "one"])
def test_crosscheck_compares_like_with_like_under_either_seed(seed_value):
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    report = crosscheck(classifier(), x, seed_value=seed_value)
    assert report.passed and report.seed_value == seed_value, str(report)
    assert ("seeded with the activation" if seed_value == "activation" else
            "seeded with 1") in str(report)


def test_a_wrong_seed_value_is_refused_before_any_work():
    net = from_torch(classifier())
    with pytest.raises(ValueError, match=r"seed_value must be one of \('activation', 'one'\)"):
        visualize.project(net, np.zeros((1, 3, 8, 8)), -1, 0, seed_value="1")
    with pytest.raises(ValueError, match="seed_value"):
        crosscheck(classifier(), np.zeros((1, 3, 8, 8)), seed_value="unit")


# --------------------------------------------------------------------------- float32 precision

#: a grey image: every position of the first convolution computes the same sum
GREY = np.full((2, 3, 8, 8), 0.7)


def cancelling_in_float32(seed=0, delta=2.0 ** -17):
    """On ``GREY``, conv1's pre-activation is 0.7·Σw + b with its float32 bias b set to
    −(1 − δ)·0.7·Σw: the exact value is δ ≈ 7.6e-6 of its terms, so float32 arithmetic
    (rounding ~6e-8 per term, summed in each library's own order) gets it only to
    percents — on both sides alike — while float64 gets it to ~1e-11.  The way back does
    not cancel (∂z/∂x is the filter).  Every weight is a float32 number, so the float64
    truth is exact: the float32 disagreement is rounding, not a wrong answer."""
    torch.manual_seed(seed)
    conv1 = torch.nn.Conv2d(3, 4, 3)
    with torch.no_grad():
        total = 0.7 * conv1.weight.sum(dim=(1, 2, 3))
        conv1.bias.copy_(-(1 - delta) * total)                         # in float32
    return torch.nn.Sequential(conv1, torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, padding=1),
                               torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 3)).eval()


def test_a_float32_check_that_rounding_moves_agrees_to_float32_precision():
    model = cancelling_in_float32()
    exact = crosscheck(copy.deepcopy(model).double(), GREY)
    assert exact.within_tolerance, str(exact)                          # float64: exact
    report = crosscheck(model, GREY.astype(np.float32))
    assert not report.within_tolerance, str(report)    # float32 alone would say FAILED
    judged = report.float32_judged
    assert judged is not None and judged.float64_worst <= 1e-10
    assert judged.torch_drift > 1e-3               # PyTorch's own float32 moves as much
    assert judged.drift_ratio <= FLOAT32_DRIFT_FACTOR
    assert report.passed and str(report).splitlines()[-2].startswith(
        "AGREES TO FLOAT32 PRECISION"), str(report)


def test_a_real_difference_still_fails_in_float32():
    """A network that differs from the model (one weight changed): the float64 check
    fails too, so the float32 check says FAILED, with the float64 number beside it."""
    model = cancelling_in_float32()
    net = from_torch(model)
    net.layers[2].weight[0, 0, 1, 1] += 0.5
    report = compare(net, model, GREY.astype(np.float32))
    assert not report.passed
    assert report.float32_judged is not None and report.float32_judged.float64_worst > 1e-3
    assert str(report).splitlines()[-2].startswith("FAILED"), str(report)


@pytest.mark.slow
def test_the_float32_check_of_vgg16_at_224_does_not_fail():
    """torchvision's VGG-16 layout (random weights), one 224×224 image in float32: the
    maps of the classifier's output move by percents between float32 and float64 in
    PyTorch itself (ReLU masks flip), so the plain float32 check is beyond 1e-4 — and the
    judged one agrees, the float64 check being exact (~35 s on 2 cores)."""
    from support.torchvision_layouts import build
    model, _ = build("vgg16")
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    report = crosscheck(model, x, layers=["features.29", "classifier.6"],
                        unpool_variant=False)
    assert report.passed, str(report)
    if not report.within_tolerance:
        assert report.float32_judged.float64_worst <= 1e-10, str(report)
