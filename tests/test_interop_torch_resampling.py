"""from_torch / to_torch of the layers that enlarge an image: ConvTranspose2d, Upsample
(and UpsamplingNearest2d / UpsamplingBilinear2d), F.interpolate and F.upsample, the
padding modules and F.pad, and Conv2d(padding_mode="reflect" / "replicate").  A tiny
U-Net of each kind (conv → pool → conv → enlarge → cat with the skip → conv), and a
VGG-ish chain with reflect / replicate convolutions and every padding module, and a
chain with a dilated MaxPool2d and an AdaptiveMaxPool2d (and F.adaptive_max_pool2d), give
torch's values at every node and its projections under the three rules to 1e-10
(tests/support/torch_reference.py), the layer's backward and weight gradients equal
autograd's, to_torch round trips, and what cannot be read is refused by name.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: interop tests skipped")

from hypothesis import given  # noqa: E402

from support.strategies import conv_transpose_cases  # noqa: E402
from support.torch_reference import RULES, TorchReference, strongest_unit  # noqa: E402

from minideconv import matrices, nn, visualize  # noqa: E402
from minideconv.interop.torch import crosscheck, from_torch, to_torch  # noqa: E402

pytestmark = [pytest.mark.torch,   # F.upsample_nearest is deprecated, and read all the same
              pytest.mark.filterwarnings("ignore:`nn.functional.upsample:UserWarning")]
tnn = torch.nn
F = torch.nn.functional
TOLERANCE = 1e-10


def rel_error(ours, reference):
    scale = float(np.max(np.abs(reference)))
    return float(np.max(np.abs(ours - reference))) / (scale if scale > 0 else 1.0)


class TinyUNet(tnn.Module):
    """conv → pool → conv → ``up`` (back to the skip's size) → cat skip → conv."""

    def __init__(self, up, functional=None):
        super().__init__()
        self.enc = tnn.Conv2d(2, 3, 3, padding=1)
        self.pool = tnn.MaxPool2d(2)
        self.mid = tnn.Conv2d(3, 4, 3, padding=1)
        self.up = up
        self.functional = functional
        channels = 4 if up is None or not isinstance(up, tnn.ConvTranspose2d) \
            else up.out_channels
        self.dec = tnn.Conv2d(3 + channels, 2, 3, padding=1)

    def forward(self, x):
        skip = torch.relu(self.enc(x))
        y = torch.relu(self.mid(self.pool(skip)))
        y = self.up(y) if self.functional is None else self.functional(y)
        return self.dec(torch.cat([skip, y], dim=1))


class FunctionalConvTranspose(TinyUNet):
    """The enlarging step as F.conv_transpose2d with a module's weight and bias."""

    def __init__(self):
        super().__init__(tnn.ConvTranspose2d(4, 3, 3))
        self.functional = self.enlarge

    def enlarge(self, y):
        return F.conv_transpose2d(y, self.up.weight, self.up.bias, stride=2, padding=1,
                                  output_padding=(1, 1))


UNETS = {
    "conv_transpose": lambda: TinyUNet(tnn.ConvTranspose2d(4, 3, 2, stride=2)),
    "conv_transpose_padded": lambda: TinyUNet(tnn.ConvTranspose2d(4, 4, 3, stride=2,
                                                                  padding=1,
                                                                  output_padding=1,
                                                                  groups=2)),
    "nearest": lambda: TinyUNet(tnn.Upsample(scale_factor=2)),
    "bilinear": lambda: TinyUNet(tnn.Upsample(scale_factor=2, mode="bilinear")),
    "bilinear_corners": lambda: TinyUNet(tnn.UpsamplingBilinear2d(size=(6, 8))),
    "nearest_module": lambda: TinyUNet(tnn.UpsamplingNearest2d(scale_factor=2)),
    "interpolate": lambda: TinyUNet(None, lambda y: F.interpolate(
        y, size=(6, 8), mode="bilinear", align_corners=False)),
    "upsample_nearest": lambda: TinyUNet(None, lambda y: F.upsample_nearest(
        y, scale_factor=2)),
    "functional_conv_transpose": lambda: FunctionalConvTranspose(),
    "padded_interpolate": lambda: TinyUNet(None, lambda y: F.pad(
        F.interpolate(y, size=(5, 7)), (0, 1, 1, 0), mode="replicate")),
    "vgg_reflect": lambda: tnn.Sequential(
        tnn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"), tnn.ReLU(),
        tnn.Conv2d(4, 4, 3, padding=(2, 1), padding_mode="replicate"), tnn.ReLU(),
        tnn.MaxPool2d(2), tnn.ReflectionPad2d((1, 0, 2, 1)), tnn.Conv2d(4, 3, 3), tnn.ReLU(),
        tnn.ReplicationPad2d(1), tnn.ZeroPad2d((0, 1, 1, 0)), tnn.ConstantPad2d(1, 0.5),
        tnn.Flatten(), tnn.Linear(3 * 10 * 8, 5)),
    "pools": lambda: tnn.Sequential(      # a dilated max-pool, then an adaptive one
        tnn.Conv2d(2, 4, 3, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2, dilation=2),
        tnn.AdaptiveMaxPool2d((3, 2)), tnn.Conv2d(4, 3, 1), tnn.Flatten(), tnn.Linear(18, 4)),
    "adaptive_max": lambda: TinyUNet(None, lambda y: F.interpolate(
        F.adaptive_max_pool2d(y, (2, 5)), size=(6, 8))),
}


@pytest.fixture(scope="module", params=sorted(UNETS))
def unet(request):
    torch.manual_seed(0)
    model = UNETS[request.param]().double().eval()
    net = from_torch(model, input_shape=(2, 6, 8))
    x = np.random.default_rng(5).standard_normal((2, 2, 6, 8))
    return request.param, model, net, x, TorchReference(model)


def test_every_node_equals_torch(unet):
    _, model, net, x, ref = unet
    with torch.no_grad():
        assert rel_error(net(x), model(torch.from_numpy(x)).numpy()) <= TOLERANCE
    trace = net.trace(x)
    for name in net.names:
        assert rel_error(trace.outputs[net.index(name)], ref.activation(x, name)) \
            <= TOLERANCE, name


@pytest.mark.parametrize("rule", RULES)
def test_projections_equal_the_torch_reference(unet, rule):
    kind, _, net, x, ref = unet
    for name in net.names:
        unit = strongest_unit(ref.activation(x, name))
        ours = visualize.project(net, x, name, unit[0],
                                 position=unit[1:] if len(unit) == 3 else None, rule=rule)
        assert rel_error(ours, ref.project(x, name, unit, rule)) <= TOLERANCE, (kind, name)


def test_the_matrices_give_the_same_projections(unet):
    _, _, net, x, ref = unet
    name = net.names[-1]
    unit = strongest_unit(ref.activation(x, name))
    output = net.trace(x[:1]).outputs[-1][0]
    top = np.zeros(output.shape)
    top[unit] = output[unit]
    for rule in RULES:
        back = matrices.network_backward_map(net, x[0], name, top, rule=rule)
        assert rel_error(back.projection, ref.project(x[:1], name, unit, rule)[0]) \
            <= TOLERANCE, rule


def test_crosscheck_passes(unet):
    """The library's own cross-check (forward and every rule, Captum or rule ReLUs in an
    fx copy) reads these models too."""
    _, model, _, x, _ = unet
    report = crosscheck(model, x)
    assert report.passed, str(report)


def test_to_torch_round_trips(unet):
    _, model, net, x, _ = unet
    copy = to_torch(net)
    with torch.no_grad():
        assert rel_error(copy(torch.from_numpy(x)).numpy(),
                         model(torch.from_numpy(x)).numpy()) <= TOLERANCE
    back = from_torch(copy, (2, 6, 8))
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in net.layers]


@pytest.mark.parametrize("config", [
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 3), padding=(0, 1), dilation=(2, 1), output_padding=(1, 0)),
    dict(stride=1, padding=2, groups=2),
])
def test_conv_transpose_backward_and_weight_grads_equal_autograd(config):
    torch.manual_seed(1)
    module = tnn.ConvTranspose2d(4, 6, 3, **config).double()
    layer = from_torch(tnn.Sequential(module), (4, 5, 6)).layers[0]
    assert isinstance(layer, nn.ConvTranspose2d)
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 6))
    tx = torch.from_numpy(x).requires_grad_()
    ty = module(tx)
    y, record = layer.forward(x)
    assert y.shape[1:] == layer.output_shape(x.shape[1:])
    assert rel_error(y, ty.detach().numpy()) <= TOLERANCE
    r = np.random.default_rng(1).standard_normal(y.shape)
    gx, gw, gb = torch.autograd.grad(ty, (tx, module.weight, module.bias), torch.from_numpy(r))
    assert rel_error(layer.backward(r, record), gx.numpy()) <= TOLERANCE
    grads = layer.param_grads(r, record)
    assert rel_error(grads["weight"], gw.numpy()) <= TOLERANCE
    assert rel_error(grads["bias"], gb.numpy()) <= TOLERANCE


@given(conv_transpose_cases(dtypes=(np.float64,)))
def test_conv_transpose_layer_equals_torch_over_drawn_configurations(case):
    """nn.ConvTranspose2d read by from_torch: forward, backward and both weight gradients
    equal torch's module and autograd (drawn strides, paddings, output paddings,
    dilations, groups)."""
    c = case.conv
    module = tnn.ConvTranspose2d(c.c_out, c.c_in, c.kernel, c.stride, c.int_padding,
                                 case.output_padding, c.groups, True, c.dilation).double()
    layer = from_torch(tnn.Sequential(module)).layers[0]
    y, _, _, r = case.arrays()
    ty = torch.from_numpy(y).requires_grad_()
    tx = module(ty)
    x, record = layer.forward(y)
    assert rel_error(x, tx.detach().numpy()) <= TOLERANCE
    gy, gw, gb = torch.autograd.grad(tx, (ty, module.weight, module.bias),
                                     torch.from_numpy(r))
    assert rel_error(layer.backward(r, record), gy.numpy()) <= TOLERANCE
    grads = layer.param_grads(r, record)
    assert rel_error(grads["weight"], gw.numpy()) <= TOLERANCE
    assert rel_error(grads["bias"], gb.numpy()) <= TOLERANCE


def test_the_layers_save_and_load(tmp_path, unet):
    _, _, net, x, _ = unet
    net.save(tmp_path / "unet.npz")
    np.testing.assert_array_equal(nn.load(tmp_path / "unet.npz")(x), net(x))


class Functional(tnn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


class OutputSize(tnn.Module):
    """A ConvTranspose2d told its output size in forward (torch's ``output_size``)."""

    def __init__(self):
        super().__init__()
        self.up = tnn.ConvTranspose2d(1, 1, 3, stride=2)

    def forward(self, x):
        return self.up(x, output_size=[10, 10])


@pytest.mark.parametrize("model, match", [
    (tnn.Sequential(tnn.Upsample(scale_factor=2, mode="bicubic")), "mode='bicubic'"),
    (tnn.Sequential(tnn.Upsample(scale_factor=2, mode="nearest", align_corners=None),
                    tnn.Upsample(size=3, mode="area")), "mode='area'"),
    (Functional(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear",
                                        antialias=True)), "antialias=True"),
    (Functional(lambda x: F.interpolate(x, size=x.shape[2:])), "size must be a constant"),
    (OutputSize(), r"node 'up' .*output_size given in forward is not supported"),
])
def test_what_cannot_be_read_is_refused_by_name(model, match):
    with pytest.raises(ValueError, match=match):
        from_torch(model, (1, 4, 4))
