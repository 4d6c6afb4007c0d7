"""from_torch of the products and normalisations of modern networks: a ConvNeXt stage
written out as torchvision's code (CNBlock with Permute modules, LayerNorm, Linear on
channels-last values and ``layer_scale`` as an ``nn.Parameter``; LayerNorm2d for the
downsampling), a squeeze-and-excitation block, a SiLU-like x ⊙ g(x) and GroupNorm.

Each is compared in float64 with torch: the logits to 1e-10, every rule's projection
against the independent reference of tests/support/torch_reference.py (autograd, rule
ReLUs as autograd Functions) to 1e-6 at every node outside the channels-last regions, and
``crosscheck`` (torch's values and projections at every node, the regions' values
permuted back to NCHW).  Then the one-line refusals: model tensors used otherwise, a
permute that is not closed or not a channels-last one, other operations inside a region.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: interop tests skipped")

from support.modern_layouts import InstanceNormNet, SENet, TinyConvNeXt, randomised  # noqa: E402
from support.torch_reference import RULES, TorchReference, strongest_unit  # noqa: E402

from minideconv import nn  # noqa: E402
from minideconv.interop.torch import crosscheck, from_torch, to_torch  # noqa: E402
from minideconv.interop.torch.fx import graph_from_fx  # noqa: E402

pytestmark = pytest.mark.torch
tnn = torch.nn
F = torch.nn.functional
TOLERANCE = 1e-10
PROJECTION_TOLERANCE = 1e-6


# --------------------------------------------------------------------------- the layouts

MODELS = {"convnext": (TinyConvNeXt, (3, 32, 32)), "se": (SENet, (3, 8, 8)),
          "instance-norm": (InstanceNormNet, (3, 8, 8))}


@pytest.fixture(scope="module", params=list(MODELS))
def case(request):
    build, shape = MODELS[request.param]
    model = randomised(build())
    x = np.random.default_rng(3).standard_normal((2,) + shape)
    return dict(id=request.param, model=model, net=from_torch(model, input_shape=shape),
                x=x)


def rel(ours, reference):
    scale = float(np.max(np.abs(reference)))
    return float(np.max(np.abs(ours - reference))) / (scale if scale else 1.0)


# --------------------------------------------------------------------------- the imports

def test_the_layers_read(case):
    types = {type(layer) for layer in case["net"].layers}
    if case["id"] == "convnext":
        assert {nn.ChannelLayerNorm, nn.ChannelAffine, nn.Conv2d, nn.Add} <= types
        net = case["net"]
        lns = [layer for layer in net.layers if isinstance(layer, nn.ChannelLayerNorm)]
        assert len(lns) == 3 + 3 and all(layer.eps == 1e-6 for layer in lns)
        one_by_one = [layer for layer in net.layers if isinstance(layer, nn.Conv2d)
                      and layer.weight.shape[2:] == (1, 1)]
        assert len(one_by_one) == 2 * 3              # the Linear layers of 3 blocks
        assert "features.1.0.block.3" in net.names   # named after the Linear module
    elif case["id"] == "se":
        assert {nn.Mul, nn.GroupNorm, nn.ChannelAffine} <= types
        muls = [layer for layer in case["net"].layers if isinstance(layer, nn.Mul)]
        assert len(muls) == 2
    else:              # γ (C,) multiplies inside the region: a ChannelAffine of C values
        layers = dict(zip(case["net"].names, case["net"].layers))
        assert layers["mul"].scale.shape == (8,) and layers["block.norm"].eps == 1e-6
        assert layers["inorm"].num_groups == 8 and layers["plain"].weight is None


def test_logits_equal_torch(case):
    with torch.no_grad():
        expected = case["model"](torch.from_numpy(case["x"])).numpy()
    error = rel(case["net"](case["x"]), expected)
    print(f"\n{case['id']}: logits vs torch {error:.1e}")
    assert error <= TOLERANCE


def test_projections_equal_the_torch_reference(case):
    """Every rule, from the strongest unit of every node that is not in a channels-last
    region (where torch's values are (N, H, W, C)), against autograd with rule ReLUs."""
    net, x = case["net"], case["x"]
    ref = TorchReference(case["model"])
    channels_last = graph_from_fx(case["model"]).channels_last
    trace = net.trace(x)
    worst, count = 0.0, 0
    for i, name in enumerate(net.names):
        if name not in ref.names or name in channels_last:
            continue
        theirs = ref.activation(x, name)
        assert rel(trace.outputs[i], theirs) <= TOLERANCE, name
        unit = strongest_unit(trace.outputs[i])
        for rule in RULES:
            seed = np.zeros_like(trace.outputs[i])
            index = (slice(None),) + unit
            seed[index] = trace.outputs[i][index]
            ours = net.backward(seed, trace, start=i, rule=rule)
            error = rel(ours, ref.project(x, name, unit, rule))
            worst = max(worst, error)
            assert error <= PROJECTION_TOLERANCE, (name, rule, error)
        count += 1
    print(f"\n{case['id']}: {count} nodes x 3 rules vs the torch reference, worst "
          f"{worst:.1e}")
    assert count >= 5


def test_crosscheck_passes_at_every_node(case):
    report = crosscheck(case["model"], case["x"])
    print(f"\n{case['id']}: crosscheck worst {report.worst:.1e}")
    assert report.passed and len(report.layers) == len(case["net"].layers)


def test_save_and_load_keep_the_network(case, tmp_path):
    path = tmp_path / "net.npz"
    case["net"].save(path)
    assert np.array_equal(nn.load(path)(case["x"]), case["net"](case["x"]))


def test_in_place_product_and_method_forms():
    class Forms(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(2, 4, 3)
            self.scale = tnn.Parameter(torch.randn(1, 4, 1, 1))

        def forward(self, x):
            y = self.conv(x)
            z = y.mul(self.scale)
            z *= torch.mul(y, 2.0)            # in place: later readers see the product
            return z.add(self.scale) + z

    model = randomised(Forms())
    net = from_torch(model)
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert rel(net(x), expected) <= TOLERANCE
    assert [type(layer).__name__ for layer in net.layers] == \
        ["Conv2d", "ChannelAffine", "ChannelAffine", "Mul", "ChannelAffine", "Add"]


def test_per_channel_constants_of_every_shape_inside_and_outside_a_region():
    class Shapes(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(3, 4, 1)
            self.last = tnn.Parameter(torch.randn(1, 1, 1, 4))     # channels-last (C,)
            self.plain = tnn.Parameter(torch.randn(4))
            self.first = tnn.Parameter(torch.randn(1, 4, 1, 1))

        def forward(self, x):
            y = self.conv(x).permute(0, 2, 3, 1) * self.last + 1.5
            y = (self.plain + y).permute(0, 3, 1, 2)
            return y * self.first

    model = randomised(Shapes())
    net = from_torch(model)
    x = np.random.default_rng(4).standard_normal((2, 3, 5, 6))
    with torch.no_grad():
        assert rel(net(x), model(torch.from_numpy(x)).numpy()) <= TOLERANCE
    assert [type(layer) for layer in net.layers] == [nn.Conv2d] + [nn.ChannelAffine] * 4


# --------------------------------------------------------------------------- refusals

def _module(forward, **tensors):
    class Model(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(3, 4, 1)
            self.norm = tnn.LayerNorm(4)
            for name, value in tensors.items():
                self.register_buffer(name, value)

    Model.forward = forward
    return Model()


@pytest.mark.parametrize("forward, tensors, match", [
    (lambda self, x: self.conv(x) * self.t, dict(t=torch.ones(1, 4, 3, 3)),
     r"node 'mul' .*shape \(1, 4, 3, 3\), not one value per channel"),
    (lambda self, x: self.conv(x) + self.t, dict(t=torch.ones(4)),
     r"node 'add' .*shape \(4,\), not one value per channel \(C, 1, 1\)"),
    (lambda self, x: torch.cat([self.conv(x), self.t], 1), dict(t=torch.ones(1, 4, 5, 5)),
     r"node 't' \(get_attr 't'\) is not supported.*per-channel factor"),
    (lambda self, x: self.conv(x).permute(0, 2, 3, 1), {},
     r"permute\(0, 2, 3, 1\) node 'permute' .*is not closed"),
    (lambda self, x: self.conv(x).permute(0, 1, 3, 2), {},
     r"node 'permute' .*permute\(0, 1, 3, 2\) of an NCHW value"),
    (lambda self, x: self.conv(x).permute(0, 2, 3, 1).permute(0, 2, 1, 3), {},
     r"node 'permute_1' .*inside a channels-last region"),
    (lambda self, x: self.conv(x).permute(0, 2, 3, 1).mean(-1, keepdim=True)
     .permute(0, 3, 1, 2), {},
     r"node 'mean' \(call_method Tensor.mean\) reads the channels-last value of the "
     r"region opened by node 'permute'"),
    (lambda self, x: torch.flatten(self.conv(x).permute(0, 2, 3, 1), 1), {},
     r"node 'flatten' .*channels-last"),
    (lambda self, x: (self.conv(x).permute(0, 2, 3, 1) + self.conv(x)).permute(0, 3, 1, 2),
     {}, r"node 'add' .*joins the channels-last value .* 'conv_1', which is channels-first"),
    (lambda self, x: self.norm(self.conv(x)), {},
     r"node 'norm' .*LayerNorm of an NCHW value normalises over W"),
])
def test_what_cannot_be_read_is_refused_in_one_line(forward, tensors, match):
    model = _module(forward, **tensors)
    with pytest.raises(ValueError, match=match) as error:
        from_torch(model)
    assert "\n" not in str(error.value)


def test_to_torch_writes_modules_that_read_back():
    """to_torch's Product, ChannelAffine and ChannelLayerNorm modules (and torch's
    GroupNorm) are single calls at the nodes' names: from_torch reads the same network
    back, and crosscheck(net) compares it with them at every node."""
    rng = np.random.default_rng(2)
    net = nn.Graph([
        ("conv", nn.Conv2d(rng.standard_normal((6, 3, 3, 3)), padding=1), "input"),
        ("relu", nn.ReLU(), ("conv",)),
        ("affine", nn.ChannelAffine(rng.standard_normal(6), rng.standard_normal(6)),
         ("relu",)),
        ("scalar", nn.ChannelAffine(np.array([2.0])), ("affine",)),
        ("norm", nn.ChannelLayerNorm(rng.standard_normal(6), None, 1e-6), ("scalar",)),
        ("group", nn.GroupNorm(3, rng.standard_normal(6), rng.standard_normal(6)),
         ("norm",)),
        ("plain", nn.GroupNorm(2), ("group",)),
        ("gate", nn.AdaptiveAvgPool2d(1), ("plain",)),
        ("mul", nn.Mul(), ("relu", "gate"))], input_shape=(3, 6, 6))
    x = rng.standard_normal((2, 3, 6, 6))
    module = to_torch(net)
    with torch.no_grad():
        assert rel(module(torch.from_numpy(x)).numpy(), net(x)) <= TOLERANCE
    back = from_torch(module)
    assert back.names == net.names
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in net.layers]
    assert np.array_equal(back(x), net(x))
    report = crosscheck(net, x)
    assert report.passed and len(report.layers) == len(net.layers)
