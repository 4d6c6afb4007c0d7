"""PyTorch/Captum interop: conversion both ways, and the cross-check report.

Skipped, with the reason shown, only when torch or captum is absent (CI installs both).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: interop tests skipped")
pytest.importorskip("captum", reason="Captum is not installed: interop tests skipped")

from minideconv import nn, rules  # noqa: E402
from minideconv.cli.crosscheck import crosscheck_builtin  # noqa: E402
from minideconv.interop.torch import compare, crosscheck, from_torch, to_torch  # noqa: E402
from minideconv.models import builtin_model  # noqa: E402

pytestmark = pytest.mark.torch
tnn = torch.nn


def _same_layers(a: nn.Sequential, b: nn.Sequential):
    assert [type(layer) for layer in a.layers] == [type(layer) for layer in b.layers]
    for la, lb in zip(a.layers, b.layers):
        assert la.config() == lb.config()
        for name, value in la.params().items():
            np.testing.assert_array_equal(value, lb.params()[name])
            assert value.dtype == lb.params()[name].dtype


@pytest.mark.parametrize("name", ["zfnet", "vgg"])
def test_round_trip_is_exact(name):
    net, _ = builtin_model(name)
    _same_layers(from_torch(to_torch(net)), net)


def test_to_torch_gives_one_fresh_relu_per_call_site():
    net, _ = builtin_model("vgg")
    relus = [m for m in to_torch(net) if isinstance(m, tnn.ReLU)]
    assert len(relus) == sum(isinstance(layer, nn.ReLU) for layer in net.layers)
    assert len({id(m) for m in relus}) == len(relus)
    assert not any(m.inplace for m in relus)


def test_from_torch_flattens_and_converts_every_supported_layer():
    torch.manual_seed(0)
    model = tnn.Sequential(
        tnn.Sequential(tnn.Conv2d(3, 4, 3, padding="same", padding_mode="circular"),
                       tnn.ReLU(inplace=True)),
        tnn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
        tnn.ReLU(),
        tnn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
        tnn.Conv2d(6, 4, 1, padding="valid", bias=False),
        tnn.Dropout(0.5),
        tnn.Flatten(),
        tnn.Linear(4 * 3 * 5, 3),
    ).double().eval()
    net = from_torch(model)
    assert [type(layer).__name__ for layer in net.layers] == [
        "Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "Dropout", "Flatten",
        "Linear"]
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 11))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x), expected, rtol=1e-12, atol=1e-12)
    report = crosscheck(model, x)
    assert report.passed, str(report)


@pytest.mark.parametrize("bad, where", [
    (tnn.BatchNorm2d(4, track_running_stats=False), "layer 1 (BatchNorm2d)"),
    (tnn.Softplus(), "layer 1 (Softplus)"),
    (tnn.Flatten(start_dim=2), "layer 1 (Flatten)"),
])
def test_unsupported_layers_are_named(bad, where):
    model = tnn.Sequential(tnn.Conv2d(3, 4, 3), bad)
    with pytest.raises(ValueError, match=where.replace("(", r"\(").replace(")", r"\)")):
        from_torch(model)


def test_from_torch_needs_a_module():
    with pytest.raises(TypeError, match="module"):
        from_torch(lambda x: x)
    lone = from_torch(tnn.Conv2d(3, 4, 3))      # a lone torch layer: a Sequential of one
    assert isinstance(lone, nn.Sequential) and len(lone.layers) == 1


@pytest.mark.parametrize("name", ["zfnet", "vgg", "embedded"])
def test_crosscheck_float64_agrees_to_1e10(name):
    net, shape = builtin_model(name)
    x = np.random.default_rng(1).random((2,) + tuple(shape))
    report = crosscheck(net, x)
    assert report.tolerance == 1e-10
    assert report.passed, str(report)
    assert len(report.layers) == len(net.layers)
    for check in report.layers:
        assert set(check.projections) == set(rules.NAMES)
    # the dictionary form carries the same numbers
    as_dict = report.as_dict()
    assert as_dict["worst_rel"] == report.worst and as_dict["passed"]


def test_crosscheck_float32_within_1e4():
    net, shape = builtin_model("vgg")
    x = np.random.default_rng(2).random((1,) + tuple(shape)).astype(np.float32)
    report = crosscheck(net, x, layers=[3, 9, 14])
    assert report.dtype == "float32" and report.tolerance == 1e-4
    assert report.passed, str(report)
    assert [c.index for c in report.layers] == [3, 9, 14]


def test_unpool_variant_differs_only_when_pooling_windows_overlap():
    """ZFNet pools 3x3/2 (overlapping): F.max_unpool2d drops shared switches, so the
    hand-written variant is not the transpose.  VGG pools 2x2/2: no overlap, no error."""
    zf, shape = builtin_model("zfnet")
    x = np.random.default_rng(3).random((1,) + tuple(shape))
    report = crosscheck(zf, x, rules=())
    after_pools = [c.unpool_variant.rel for c in report.layers if c.unpool_variant]
    assert max(after_pools) > 1e-3

    vgg, shape = builtin_model("vgg")
    report = crosscheck(vgg, np.random.default_rng(3).random((1,) + tuple(shape)), rules=())
    assert max(c.unpool_variant.rel for c in report.layers if c.unpool_variant) < 1e-12


def test_crosscheck_detects_a_wrong_implementation():
    """A report that cannot fail is worthless: perturb one weight of the torch side."""
    net, shape = builtin_model("vgg")
    model = to_torch(net)
    with torch.no_grad():
        model[2].weight[0, 0, 0, 0] += 1e-6
    x = np.random.default_rng(4).random((1,) + tuple(shape))
    assert compare(net, to_torch(net), x).passed
    report = compare(net, model, x)
    assert not report.passed and report.worst > 1e-9
    assert report.layers[1].forward.rel < 1e-12 < report.layers[2].forward.rel


def test_cli_exit_status_follows_the_tolerance(capsys):
    assert crosscheck_builtin(["vgg"], n_images=1) == 0
    assert "PASSED" in capsys.readouterr().out
    assert crosscheck_builtin(["vgg"], n_images=1, tolerance=1e-300) == 1
    assert "FAILED" in capsys.readouterr().out
