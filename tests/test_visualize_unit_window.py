"""visualize.unit_window: one unit traced and projected in its receptive field alone, against
the whole image's trace and ``Network.backward`` — at every layer, at the corners, edges and
centre, under the three rules and both seeds — and the networks it must leave alone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from minideconv import nn
from minideconv.visualize import project_top_k, rank_top_k, top_k_patches
from minideconv.visualize.figure2 import WINDOW_SHARE
from minideconv.visualize import unit_window as uw
from minideconv.visualize.projection import seed

RULES = ("backprop", "deconvnet", "guided")


def conv(rng, c_in, c_out, k, dtype=np.float64, groups=1, **kwargs):
    weight = rng.standard_normal((c_out, c_in // groups, k, k)) / k
    return nn.Conv2d(weight.astype(dtype), (rng.standard_normal(c_out) * 0.1).astype(dtype),
                     groups=groups, **kwargs)


def every_windowed_layer(rng, dtype=np.float64):
    """Each layer a window stands for, with the padding, stride and dilation that move a
    window's border: a max-pool on the signed image first (its −∞ padding then matters),
    a strided dilated convolution, "same" padding, groups, both average pools."""
    bn = nn.BatchNorm2d(*(v.astype(dtype) for v in (rng.random(4) + 0.5,
                                                   rng.standard_normal(4),
                                                   rng.standard_normal(4),
                                                   rng.random(4) + 0.5)))
    return nn.Sequential(
        nn.MaxPool2d(3, stride=1, padding=1),
        conv(rng, 3, 4, 3, dtype, padding=1), nn.ReLU(), bn,
        nn.MaxPool2d(3, stride=2, padding=1, dilation=1),
        conv(rng, 4, 6, 3, dtype, stride=2, padding=2, dilation=2), nn.Dropout(0.3),
        nn.ReLU(), nn.AvgPool2d(2, stride=1, padding=1),
        conv(rng, 6, 6, 3, dtype, padding="same", groups=2), nn.Identity(), nn.ReLU(),
        nn.AvgPool2d(3, stride=2, padding=1, divisor_override=4),
        nn.MaxPool2d(2, dilation=2))


def whole_image_projection(net, image, layer, channel, position, rule, seed_value):
    trace = net.trace(image[None], upto=layer)
    signal = seed(trace.outputs[layer], channel, [position], seed_value)
    return trace.outputs[layer][0, channel][position], \
        net.backward(signal, trace, start=layer, rule=rule)[0]


def positions_to_try(shape):
    height, width = shape
    return sorted(itertools.product({0, height // 2, height - 1}, {0, width // 2, width - 1}))


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_the_window_gives_the_whole_images_numbers(dtype, tolerance):
    rng = np.random.default_rng(3)
    net = every_windowed_layer(rng, dtype)
    image = rng.standard_normal((3, 29, 31)).astype(dtype)
    shapes = net.layer_shapes(image.shape)
    for layer in range(len(net)):
        plan = uw.unit_window_plan(net, layer, image.shape)
        assert plan is not None, net.describe(layer)
        channel = layer % shapes[layer][0]
        for position, rule, seed_value in itertools.product(
                positions_to_try(shapes[layer][1:]), RULES, ("activation", "one")):
            value, whole = whole_image_projection(net, image, layer, channel, position,
                                                  rule, seed_value)
            activation, (r0, r1, c0, c1), inside = uw.project_unit_in_window(
                plan, image, channel, position, rule, seed_value)
            where = f"{net.describe(layer)}, unit {position}, {rule}, seed {seed_value}"
            np.testing.assert_allclose(activation, value, rtol=tolerance, err_msg=where)
            assert inside.dtype == dtype
            mine = np.zeros_like(whole)
            mine[:, r0:r1, c0:c1] = inside
            scale = max(np.abs(whole).max(), np.finfo(dtype).tiny)
            assert np.abs(mine - whole).max() / scale <= tolerance, where


def test_the_window_lies_in_the_receptive_field_and_is_it_inside_the_image():
    rng = np.random.default_rng(4)
    net = every_windowed_layer(rng)
    image_shape = (3, 29, 31)
    for layer in range(len(net)):
        plan = uw.unit_window_plan(net, layer, image_shape)
        height, width = net.layer_shapes(image_shape)[layer][1:]
        field = net.receptive_field(layer)
        for position in itertools.product(range(height), range(width)):
            r0, r1, c0, c1 = plan.windows(position)[0][0]
            f0, f1, g0, g1 = field.window(position)
            clipped = (max(f0, 0), min(f1, 29), max(g0, 0), min(g1, 31))
            # clipping on the way down can only shrink it
            assert clipped[0] <= r0 < r1 <= clipped[1] and clipped[2] <= c0 < c1 <= clipped[3]
            if f0 >= 0 and f1 <= 29 and g0 >= 0 and g1 <= 31:   # no padding seen
                assert (r0, r1, c0, c1) == clipped
            assert uw.window_area(plan, position) == \
                pytest.approx((r1 - r0) * (c1 - c0) / (29 * 31))


def test_the_unit_window_of_a_deep_unit_is_its_receptive_field():
    # conv3_3 of VGG-16 at 224 x 224: a 40 x 40 window, 3 % of the image
    rng = np.random.default_rng(5)
    layers = []
    for c_in, c_out, convs in ((3, 2, 2), (2, 2, 2), (2, 2, 3)):
        for i in range(convs):
            layers += [conv(rng, c_in if i == 0 else c_out, c_out, 3, np.float32, padding=1),
                       nn.ReLU()]
        layers.append(nn.MaxPool2d(2))
    net = nn.Sequential(*layers[:-1], input_shape=(3, 224, 224))
    plan = uw.unit_window_plan(net, len(net) - 1, (3, 224, 224))
    assert plan.windows((20, 30))[0][0] == (80 - 18, 80 - 18 + 40, 120 - 18, 120 - 18 + 40)
    assert uw.window_area(plan, (20, 30)) == pytest.approx(40 * 40 / 224 ** 2)


def test_a_window_cannot_stand_for_these_networks():
    rng = np.random.default_rng(6)
    image_shape = (3, 8, 8)
    chains = {
        "circular padding": [conv(rng, 3, 2, 3, padding=1, padding_mode="circular")],
        "ceil_mode": [nn.MaxPool2d(3, stride=2, ceil_mode=True)],
        "an average that leaves out its padding":
            [nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)],
        "an adaptive pool": [nn.AdaptiveAvgPool2d(2)],
    }
    for why, layers in chains.items():
        net = nn.Sequential(*layers, nn.ReLU())
        assert uw.unit_window_plan(net, 1, image_shape) is None, why
    flat = nn.Sequential(conv(rng, 3, 2, 3), nn.Flatten(),
                         nn.Linear(rng.standard_normal((4, 72)), None))
    assert uw.unit_window_plan(flat, 0, image_shape) is not None
    assert uw.unit_window_plan(flat, 1, image_shape) is None      # no positions
    assert uw.unit_window_plan(flat, 2, image_shape) is None
    branch = nn.Graph([nn.Node("a", conv(rng, 3, 3, 3, padding=1), ["input"]),
                       nn.Node("sum", nn.Add(), ["a", "input"]),
                       nn.Node("relu", nn.ReLU(), ["sum"])])
    assert uw.unit_window_plan(branch, 0, image_shape) is not None
    assert uw.unit_window_plan(branch, 2, image_shape) is None


@pytest.mark.parametrize("layer", [7, 12])
def test_figure2_projects_small_fields_in_their_windows(monkeypatch, layer):
    # layer 7: an 8 x 8 map, every field 7 % to 25 % of the image; layer 12: a 5 x 5 map,
    # fields of 29 % to 100 %: some units in their windows, the others together
    rng = np.random.default_rng(7)
    net = every_windowed_layer(rng)
    images = rng.standard_normal((8, 3, 29, 31))
    channels, k = [0, 2, 5], 4
    calls = []
    real = uw.project_unit_in_window
    monkeypatch.setattr("minideconv.visualize.figure2.project_unit_in_window",
                        lambda *args, **kwargs: calls.append(args[3]) or real(*args, **kwargs))
    table = rank_top_k(net, images, [layer], k=k, keep_images=True)[layer]
    tops = project_top_k(net, table, channels=channels, rule="guided", batch_size=5)
    plan = uw.unit_window_plan(net, layer, images.shape[1:])
    small = [tuple(p) for c in channels for p in table.positions[c]
             if uw.window_area(plan, p) <= WINDOW_SHARE]
    assert sorted(calls) == sorted(small)       # exactly the small fields, each once
    assert 0 < len(calls) <= len(channels) * k and (layer == 7) == (len(calls) == 12)
    for channel, top in zip(channels, tops):
        reference = top_k_patches(net, images, layer, channel, k=k, rule="guided")
        np.testing.assert_array_equal(top.positions, reference.positions)
        np.testing.assert_allclose(top.projections, reference.projections, rtol=1e-13,
                                   atol=1e-13 * np.abs(reference.projections).max())
        assert np.abs(top.projections).max() > 0


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::UserWarning:captum")
def test_the_window_equals_captums_maps_of_a_torch_network():
    torch = pytest.importorskip("torch")
    captum = pytest.importorskip("captum.attr")
    from minideconv.interop.torch import from_torch
    torch.manual_seed(0)
    relu = torch.nn.ReLU(inplace=True)          # one ReLU object, reused in place
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), relu, torch.nn.Conv2d(8, 8, 3, padding=1), relu,
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16),
        relu, torch.nn.MaxPool2d(3, stride=2, padding=1), torch.nn.Conv2d(16, 16, 3, padding=1),
        relu).double().eval()
    with torch.no_grad():
        model[6].running_mean.uniform_(-0.5, 0.5)
        model[6].running_var.uniform_(0.5, 2.0)
    net = from_torch(model, input_shape=(3, 40, 40))
    layer = len(net) - 1
    plan = uw.unit_window_plan(net, layer, (3, 40, 40))
    image = np.random.default_rng(8).random((3, 40, 40))
    methods = {"deconvnet": captum.NeuronDeconvolution, "guided": captum.NeuronGuidedBackprop,
               "backprop": captum.NeuronGradient}
    activation = net.trace(image[None]).outputs[layer][0]
    for (h, w), (rule, method) in itertools.product([(0, 0), (4, 9), (9, 9), (5, 0)],
                                                    methods.items()):
        channel = int(np.argmax(activation[:, h, w]))     # an active unit: a map not 0
        _, (r0, r1, c0, c1), inside = uw.project_unit_in_window(plan, image, channel,
                                                                (h, w), rule, "one")
        mine = np.zeros_like(image)
        mine[:, r0:r1, c0:c1] = inside
        theirs = method(model, model[-1]).attribute(
            torch.from_numpy(image)[None], neuron_selector=(channel, h, w))[0].numpy()
        assert np.abs(theirs).max() > 0, (h, w, rule)
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-13 * np.abs(theirs).max(),
                                   err_msg=f"unit {(channel, h, w)}, {rule}")
