"""The layers that enlarge an image (ConvTranspose2d, Upsample, Pad) and AdaptiveMaxPool2d,
without torch: each layer's backward against the network's sparse matrix (an
independent implementation of the way back) under the three rules, the dot test of each
layer's forward and backward, weight gradients by finite differences, save / load, and
the errors bad hyper-parameters get.
"""

from __future__ import annotations

import numpy as np
import pytest

import minideconv as md
from minideconv import matrices, nn


def decoder(rng):
    """conv → ReLU → adaptive max-pool → ConvTranspose2d → ReLU → bilinear ×1.5 →
    reflect pad → conv → ReLU → nearest to 9×7 → constant pad (0.5) → conv."""
    w = lambda *shape: rng.standard_normal(shape) * 0.5   # noqa: E731
    return nn.Sequential(
        nn.Conv2d(w(4, 2, 3, 3), w(4), padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d((3, 4)),
        nn.ConvTranspose2d(w(4, 6, 3, 3), w(6), stride=2, padding=1, output_padding=1,
                           groups=1),
        nn.ReLU(), nn.Upsample(scale_factor=1.5, mode="bilinear"),
        nn.Pad((1, 0, 2, 1), "reflect"), nn.Conv2d(w(3, 6, 3, 3), padding_mode="replicate",
                                                   padding=1), nn.ReLU(),
        nn.Upsample(size=(9, 7)), nn.Pad(1, value=0.5), nn.Conv2d(w(2, 3, 2, 2)),
        input_shape=(2, 5, 7))


@pytest.mark.parametrize("rule", md.rules.NAMES)
def test_backward_equals_the_network_matrix(rule):
    rng = np.random.default_rng(0)
    net = decoder(rng)
    x = rng.standard_normal((1, 2, 5, 7))
    trace = net.trace(x)
    top = rng.standard_normal(trace.outputs[-1].shape)
    ours = net.backward(top, trace, rule=rule)
    back = matrices.network_backward_map(net, x[0], -1, top[0], rule=rule)
    np.testing.assert_allclose(ours[0], back.projection, rtol=1e-12, atol=1e-12)


def test_forward_is_the_network_matrix_plus_its_constants():
    rng = np.random.default_rng(1)
    net = decoder(rng)
    # the ReLUs' masks fixed by x: compare the linear map around x with finite steps
    x = rng.standard_normal((1, 2, 5, 7))
    m = matrices.network_forward_map(net, x[0])
    step = 1e-6 * rng.standard_normal(x.shape)
    np.testing.assert_allclose((net(x + step) - net(x)).ravel(), m @ step.ravel(),
                               rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("layer, shape", [
    (nn.Upsample(scale_factor=(2, 1.5), mode="nearest-exact"), (2, 3, 4, 5)),
    (nn.Upsample(size=3, mode="bilinear", align_corners=True), (2, 3, 4, 5)),
    (nn.Pad((2, 1, 0, 3), "replicate"), (2, 3, 4, 5)),
    (nn.Pad((1, 1, 1, 1), "circular"), (2, 3, 4, 5)),
    (nn.ConvTranspose2d(np.ones((3, 2, 2, 3)), stride=(2, 1), dilation=(1, 2)), (2, 3, 4, 5)),
    # output_padding ≥ stride (dilation 3 allows it): rows no input reaches
    (nn.ConvTranspose2d(np.ones((3, 2, 2, 2)), stride=2, dilation=3, output_padding=2),
     (1, 3, 3, 4)),
])
def test_each_layers_backward_passes_the_dot_test(layer, shape):
    y_shape = (shape[0],) + layer.output_shape(shape[1:])
    md.dottest(lambda v: layer(v), lambda r: layer.backward(r, layer.forward(
        np.zeros(shape))[1]), shape, y_shape)


def test_conv_transpose_weight_grads_equal_finite_differences():
    rng = np.random.default_rng(2)
    layer = nn.ConvTranspose2d(rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(6),
                               stride=2, padding=1, groups=2)
    x = rng.standard_normal((2, 4, 4, 5))
    y, record = layer.forward(x)
    r = rng.standard_normal(y.shape)
    grads = layer.param_grads(r, record)
    dw = rng.standard_normal(layer.weight.shape)
    moved = nn.ConvTranspose2d(layer.weight + 1e-6 * dw, layer.bias, stride=2, padding=1,
                               groups=2)
    assert np.isclose(np.vdot(moved(x) - y, r) / 1e-6, np.vdot(grads["weight"], dw),
                      rtol=1e-6)
    np.testing.assert_allclose(grads["bias"], r.sum(axis=(0, 2, 3)))


def test_save_and_load_keep_every_layer(tmp_path):
    net = decoder(np.random.default_rng(3))
    net.save(tmp_path / "decoder.npz")
    back = nn.load(tmp_path / "decoder.npz")
    assert [layer.config() for layer in back.layers] == [layer.config() for layer in net.layers]
    x = np.random.default_rng(4).standard_normal((2, 2, 5, 7))
    np.testing.assert_array_equal(back(x), net(x))


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.ConvTranspose2d(np.ones((4, 3, 3, 3)), output_padding=1), ValueError,
     "output_padding must be smaller than max"),
    (lambda: nn.ConvTranspose2d(np.ones((4, 3, 3, 3)), groups=3), ValueError,
     "groups=3 must divide the input channels"),
    (lambda: nn.ConvTranspose2d(np.ones((4, 3, 3, 3)), np.ones(4)), ValueError,
     "bias must have length 3"),
    (lambda: nn.Upsample(), ValueError, "exactly one of size and scale_factor"),
    (lambda: nn.Upsample(scale_factor=2, mode="bicubic"), ValueError, "mode must be one of"),
    (lambda: nn.AdaptiveMaxPool2d(0), ValueError, "output_size"),
    (lambda: nn.Pad(-1), ValueError, "padding must be an int ≥ 0"),
])
def test_bad_hyper_parameters_are_refused_by_name(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_a_layer_that_does_not_fit_its_input_says_so():
    with pytest.raises(ValueError, match="expects an input of 4 channels"):
        nn.ConvTranspose2d(np.ones((4, 3, 3, 3))).output_shape((3, 5, 5))
    with pytest.raises(ValueError, match="smaller than the input size"):
        nn.Pad(3, "reflect").output_shape((1, 3, 3))


def test_a_pad_shifts_the_receptive_field_as_a_convolution_s_own_padding():
    w = np.ones((1, 1, 3, 3))
    padded = nn.Sequential(nn.Pad((2, 2, 1, 1), "reflect"), nn.Conv2d(w), input_shape=(1, 8, 8))
    own = nn.Sequential(nn.Conv2d(w, padding=(1, 2)), input_shape=(1, 8, 8))
    assert padded.receptive_field(-1) == own.receptive_field(-1)
    assert nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(w),
                         input_shape=(1, 8, 8)).receptive_field(-1) is None


def test_output_padding_beyond_the_stride_in_the_matrix_and_the_weight_grads():
    rng = np.random.default_rng(6)
    layer = nn.ConvTranspose2d(rng.standard_normal((2, 3, 2, 2)), stride=(2, 1),
                               padding=(1, 0), dilation=(3, 2), output_padding=(2, 1))
    net = nn.Sequential(layer, input_shape=(2, 3, 4))
    x = rng.standard_normal((1, 2, 3, 4))
    y, record = layer.forward(x)
    r = rng.standard_normal(y.shape)
    back = matrices.network_backward_map(net, x[0], -1, r[0])
    np.testing.assert_allclose(layer.backward(r, record)[0], back.projection, rtol=1e-12,
                               atol=1e-12)
    dw = rng.standard_normal(layer.weight.shape)
    moved = nn.ConvTranspose2d(layer.weight + 1e-6 * dw, stride=(2, 1), padding=(1, 0),
                               dilation=(3, 2), output_padding=(2, 1))
    assert np.isclose(np.vdot(moved(x) - y, r) / 1e-6,
                      np.vdot(layer.param_grads(r, record)["weight"], dw), rtol=1e-6)
