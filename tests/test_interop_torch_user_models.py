"""Networks written the way users write them: a ReLU (or a whole convolution) reused in an
``nn.Sequential``, and the caller's model left exactly as it was by every function that
takes one.  Each is checked against torch itself."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from minideconv import nn, visualize  # noqa: E402
from minideconv.interop.torch import compare, crosscheck, from_torch, to_torch  # noqa: E402
from support.torch_reference import deconvnet_relu, guided_relu  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore::UserWarning:captum")]


def reused_modules(seed=0):
    """conv1 → act → conv2 → act → conv2 → act → pool → flatten → linear: one ReLU
    object three times, one convolution twice."""
    torch.manual_seed(seed)
    act = torch.nn.ReLU()
    conv2 = torch.nn.Conv2d(6, 6, 3, padding=1)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), act, conv2, act, conv2,
                               act, torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(6 * 4 * 4, 5)).eval()


def images(n=2, seed=1, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal((n, 3, 8, 8)).astype(dtype)


def test_a_reused_module_is_converted_at_every_call():
    model = reused_modules().double()
    net = from_torch(model)
    x = images()
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x), expected, rtol=1e-12, atol=1e-12)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds.count("ReLU") == 3 and kinds.count("Conv2d") == 3, kinds


def test_a_reused_module_cross_checks_every_rule_against_torch():
    model = reused_modules().double()
    report = crosscheck(model, images())
    assert report.passed, str(report)


@pytest.mark.parametrize("rule", ["backprop", "deconvnet", "guided"])
def test_the_maps_of_a_reused_relu_equal_torchs_by_hand(rule):
    """An independent reference: the rule by hand in torch — each ReLU call replaced by
    an autograd Function whose backward is the rule (support.torch_reference)."""
    relu = {"backprop": torch.relu, "deconvnet": deconvnet_relu, "guided": guided_relu}[rule]
    model = reused_modules().double()
    net = from_torch(model)
    x = images(1)
    xt = torch.from_numpy(x).requires_grad_(True)
    h = xt
    for module in model:     # iterating a Sequential gives every occurrence
        h = relu(h) if isinstance(module, torch.nn.ReLU) else module(h)
    unit = int(h[0].argmax())
    (h[0, unit] * h[0, unit].detach()).backward()
    expected = xt.grad.numpy()
    ours = visualize.project(net, x, len(net.layers) - 1, unit, rule=rule)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)


def test_compare_refuses_a_sequential_net_against_a_model_that_reuses_a_module():
    model = reused_modules().double()
    plain = nn.Sequential(*from_torch(model).layers)       # the same layers, one per call
    with pytest.raises(ValueError, match="reuses"):
        compare(plain, model, images())


# --------------------------------------------------------------------------- the caller's model

def user_model():
    """A float32 model in training mode, with BatchNorm (running statistics, a counter),
    Dropout and an in-place ReLU: what a user hands over mid-training."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(2),
                                torch.nn.Dropout(0.5), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 4 * 4, 3))
    with torch.no_grad():   # running statistics that are not the defaults
        model(torch.randn(8, 3, 8, 8))
    return model.train()


class GraphModel(torch.nn.Module):
    """The same layers behind a forward of its own, with a branch and a join (the fx
    route), also in training mode."""

    def __init__(self):
        super().__init__()
        body = user_model()
        self.conv, self.bn, self.pool, self.drop, self.fc = (body[i] for i in (0, 1, 3, 4, 6))

    def forward(self, x):
        h = self.bn(self.conv(x))
        h = torch.relu(h) + h
        return self.fc(torch.flatten(self.drop(self.pool(h)), 1))


def snapshot(model):
    return {"dtype": {p.dtype for p in model.parameters()},
            "training": [m.training for m in model.modules()],
            "state": {k: v.clone() for k, v in model.state_dict().items()},
            "requires_grad": [p.requires_grad for p in model.parameters()],
            "grads": [p.grad for p in model.parameters()]}


def assert_unchanged(before, model):
    after = snapshot(model)
    assert after["dtype"] == before["dtype"]
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert all(g is None for g in after["grads"])
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        assert after["state"][key].dtype == value.dtype, key
        assert torch.equal(after["state"][key], value), key


CALLS = {
    "from_torch": lambda model: from_torch(model),
    "crosscheck float64": lambda model: crosscheck(model, images(2)),
    "crosscheck float32": lambda model: crosscheck(model, images(2, dtype=np.float32)),
    "compare": lambda model: compare(from_torch(copy.deepcopy(model)), model,
                                     images(2, dtype=np.float32)),
}


@pytest.mark.parametrize("make", [user_model, GraphModel], ids=["Sequential", "fx graph"])
@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
def test_the_callers_model_is_left_as_it_was(make, call):
    model = make()
    before = snapshot(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CALLS[call](model)
    assert_unchanged(before, model)
    model(torch.randn(2, 3, 8, 8))         # the user's next float32 training step still runs


def test_a_model_in_training_mode_is_converted_at_inference_with_one_warning():
    model = user_model()
    with pytest.warns(UserWarning, match="training mode") as caught:
        net = from_torch(model)
    assert len([w for w in caught if "training mode" in str(w.message)]) == 1
    x = images(2, dtype=np.float32)
    with torch.no_grad():
        expected = copy.deepcopy(model).eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x), expected, rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # in eval mode: no warning
        from_torch(model.eval())


def test_to_torch_round_trip_of_a_reused_module_network():
    model = reused_modules().double()
    net = from_torch(model)
    back = to_torch(net)
    x = torch.from_numpy(images())
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- the unpooling variant

def pools_then_averages(max_pool, average):
    torch.manual_seed(5)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                               torch.nn.ReLU(), max_pool, torch.nn.Conv2d(4, 4, 3, padding=1),
                               torch.nn.ReLU(), average, torch.nn.Flatten()).eval().double()


@pytest.mark.parametrize("average", [torch.nn.AvgPool2d(2), torch.nn.AdaptiveAvgPool2d(1),
                                     torch.nn.AdaptiveAvgPool2d(3)],
                         ids=["AvgPool2d", "AdaptiveAvgPool2d(1)", "AdaptiveAvgPool2d(3)"])
def test_the_unpool_variant_walks_back_through_every_layer(average):
    """Windows that do not overlap (2×2/2) share no switch, so F.max_unpool2d is then the
    true transpose: the variant must equal minideconv's deconvnet to rounding — through
    BatchNorm and the average pools, which it used to pass unchanged or skip."""
    x = np.random.default_rng(2).standard_normal((2, 3, 12, 12))
    report = crosscheck(pools_then_averages(torch.nn.MaxPool2d(2), average), x)
    assert report.passed, str(report)
    variants = [c.unpool_variant for c in report.layers if c.index >= 3]
    assert variants and all(v is not None and v.rel < 1e-12 for v in variants), str(report)


@pytest.mark.parametrize("max_pool", [torch.nn.MaxPool2d(3, 2), torch.nn.MaxPool2d(3, 2,
                                                                                  dilation=2)],
                         ids=["3x3/2", "3x3/2 dilation 2"])
def test_the_unpool_variant_of_overlapping_windows_differs_and_does_not_crash(max_pool):
    x = np.random.default_rng(3).standard_normal((2, 3, 16, 16))
    report = crosscheck(pools_then_averages(max_pool, torch.nn.AdaptiveAvgPool2d(1)), x)
    assert report.passed, str(report)
    pooled = [c.unpool_variant.rel for c in report.layers if c.index >= 3]
    assert max(pooled) > 1e-3      # shared switches keep one value instead of the sum


def test_the_assignment_at_switches_is_what_max_unpool2d_does():
    """The written-out assignment (used where F.max_unpool2d refuses dilation) equals
    F.max_unpool2d where the latter runs, overlapping windows included."""
    from minideconv.interop.torch.reference import assign_at_switches
    F = torch.nn.functional
    x = torch.randn(2, 3, 13, 13, dtype=torch.float64)
    y, idx = F.max_pool2d(x, 3, 2, return_indices=True)
    r = torch.randn_like(y)
    torch.testing.assert_close(assign_at_switches(r, idx, x.shape),
                               F.max_unpool2d(r, idx, 3, 2, output_size=x.shape[2:]),
                               rtol=0, atol=0)


class StraightThrough(torch.autograd.Function):
    """A ReLU whose backward passes the signal unchanged (a straight-through estimator):
    its forward is a supported op, its backward is not the chain rule through it."""

    @staticmethod
    def forward(ctx, x):
        return x.relu()

    @staticmethod
    def backward(ctx, grad):
        return grad


class CallsAFunction(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return StraightThrough.apply(self.conv(x)).flatten(1)


@pytest.mark.parametrize("make", [
    CallsAFunction,
    lambda: torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3), CallsAFunction())])
def test_a_custom_autograd_function_is_refused_naming_it(make):
    model = make().double().eval()
    with pytest.raises(ValueError, match=r"calls the torch.autograd.Function "
                                         r"\S*StraightThrough, whose backward"):
        from_torch(model, input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="StraightThrough"):
        crosscheck(model, images())
    # the Function works as before once the refusal is over, with its own backward
    # (straight through: ones where the chain rule through the ReLU would give zeros)
    x = torch.from_numpy(images()).requires_grad_()
    StraightThrough.apply(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
