"""`minideconv project --method`: every method of the attribution family through the
command line gives the library's own map, its flags change what they say, every bad value
meets one line naming its flag — and `demo` draws the family."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from minideconv import attribution, data, nn, plots  # noqa: E402
from minideconv.attribution.targets import logits_of  # noqa: E402
from minideconv.cli import attribute as cli_attribute  # noqa: E402
from minideconv.cli import demo as cli_demo  # noqa: E402

from support.cli import assert_one_error_line, main_status  # noqa: E402

IMAGE = "test:3"


@pytest.fixture(scope="module")
def shipped():
    net = data.load_model()
    image = data.load_image(IMAGE).astype(net.dtype())
    return net, image, int(logits_of(net, image[None])[0].argmax())


@pytest.fixture
def drawn(monkeypatch):
    """The maps the command hands to its figure, in order."""
    maps = []
    original = plots.attribution_figure

    def record(image, amap, *args, **kwargs):
        maps.append(np.array(amap))
        return original(image, amap, *args, **kwargs)
    monkeypatch.setattr(plots, "attribution_figure", record)
    return maps


def run_method(tmp_path, capsys, *flags):
    out = tmp_path / "map.png"
    status = main_status(["project", "--image", IMAGE, *flags, "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return captured.out


def needs(name):
    if name.startswith("lrp"):
        pytest.importorskip("minideconv.attribution.lrp")


@pytest.mark.parametrize("name", list(attribution.METHODS))
def test_each_method_gives_the_library_map(name, shipped, drawn, tmp_path, capsys):
    needs(name)
    net, image, predicted = shipped
    printed = run_method(tmp_path, capsys, "--method", name)
    (amap,) = drawn
    expected = attribution.compute(name, net, image, predicted)
    assert amap.shape == expected.shape and np.array_equal(amap, expected)
    assert np.any(amap)
    assert len(printed.splitlines()) == 1
    assert attribution.describe(name) in printed
    assert f"target class {predicted} ({data.CLASSES[predicted]!r}), the predicted" in printed
    assert printed.rstrip().endswith(f"figure written to {tmp_path / 'map.png'}")


@pytest.mark.parametrize("given, name", [("gradcam", "grad_cam"), ("GRAD-CAM", "grad_cam"),
                                         ("ig", "integrated_gradients"),
                                         ("guided_gradcam", "guided_grad_cam"),
                                         ("saliency", "gradient"), ("lrp", "lrp")])
def test_short_forms(given, name):
    assert cli_attribute.method_name(given) == name


def test_a_target_other_than_the_prediction(shipped, drawn, tmp_path, capsys):
    net, image, predicted = shipped
    target = (predicted + 1) % 10
    printed = run_method(tmp_path, capsys, "--method", "input_x_gradient",
                         "--target", str(target))
    expected = attribution.input_x_gradient(net, image, target)
    assert np.array_equal(drawn[0], expected)
    assert not np.array_equal(expected, attribution.input_x_gradient(net, image, predicted))
    assert f"target class {target} ({data.CLASSES[target]!r}), predicted {predicted}" in printed


@pytest.mark.parametrize("flags, library", [
    (["--method", "ig", "--steps", "7"],
     lambda net, x, t: attribution.integrated_gradients(net, x, t, steps=7)),
    (["--method", "smoothgrad", "--samples", "5", "--sigma", "0.3", "--seed", "4"],
     lambda net, x, t: attribution.smoothgrad(net, x, t, samples=5, sigma=0.3, seed=4)),
    (["--method", "smoothgrad", "--seed", "4"],
     lambda net, x, t: attribution.smoothgrad(net, x, t, seed=4)),
    (["--method", "gradcam", "--grad-cam-layer", "4"],
     lambda net, x, t: attribution.grad_cam(net, x, 4, t)),
    (["--method", "guided_gradcam", "--grad-cam-layer", "-7"],      # layer 3, a conv
     lambda net, x, t: attribution.guided_grad_cam(net, x, 3, t)),
])
def test_each_method_flag_reaches_the_library(flags, library, shipped, drawn, tmp_path,
                                              capsys):
    net, image, predicted = shipped
    printed = run_method(tmp_path, capsys, *flags)
    expected = library(net, image, predicted)
    assert np.array_equal(drawn[0], expected)
    default = attribution.compute(cli_attribute.method_name(flags[1]), net, image, predicted)
    assert expected.shape != default.shape or not np.array_equal(expected, default)
    assert flags[3] in printed or "pooled at layer" in printed


def test_the_shipped_grad_cam_layer_is_the_last_spatial_one(shipped):
    net, _, _ = shipped      # what the --grad-cam-layer help says
    assert attribution.last_spatial_layer(net) == 7


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    nn.Sequential(nn.Conv2d(np.ones((2, 3, 3, 3), np.float32)),
                  input_shape=(3, 32, 32)).save(tmp / "maps.npz")   # no class logits
    return tmp


ERRORS = [
    # (flags after --image and --out, exit status, flag named, text)
    (["--method", "nope"], 2, "--method", "must be one of deconvnet, guided_backprop"),
    (["--method", "gradient", "--layer", "5"], 2, "--layer",
     "--method explains a class logit (--target), not a unit: leave out --layer"),
    (["--method", "gradient", "--layer", "5", "--channel", "0"], 2, "--channel",
     "leave out --layer, --channel"),
    (["--method", "ig", "--rule", "guided"], 2, "--rule", "leave out --rule"),
    (["--method", "ig", "--position", "1,1"], 2, "--position", "leave out --position"),
    (["--layer", "5"], 2, "--channel", "required: --channel (or give --method NAME"),
    ([], 2, "--layer", "required: --layer, --channel"),
    (["--layer", "5", "--channel", "0", "--target", "3"], 2, "--target",
     "--target: applies with --method"),
    (["--layer", "5", "--channel", "0", "--steps", "3"], 2, "--steps",
     "--steps: applies with --method"),
    (["--method", "gradient", "--target", "10"], 2, "--target",
     "--target: must be a class index in [0, 10) (the network has 10 logits), got 10"),
    (["--method", "gradient", "--target", "-1"], 2, "--target",
     "must be an integer >= 0, got -1"),
    (["--method", "gradient", "--target", "dots"], 2, "--target", "got 'dots'"),
    (["--method", "ig", "--steps", "0"], 2, "--steps", "must be an integer >= 1, got 0"),
    (["--method", "gradient", "--steps", "5"], 2, "--steps",
     "--steps: applies to --method integrated_gradients only, got --method gradient"),
    (["--method", "ig", "--steps", "100000000000"], 1, "--steps", "of memory but"),
    (["--method", "sg", "--samples", "0"], 2, "--samples", "got 0"),
    (["--method", "sg", "--samples", "100000000000"], 1, "--samples", "of memory but"),
    (["--method", "sg", "--sigma", "-0.1"], 2, "--sigma", "must be a finite number >= 0"),
    (["--method", "sg", "--sigma", "nan"], 2, "--sigma", "got 'nan'"),
    (["--method", "sg", "--sigma", "inf"], 2, "--sigma", "got 'inf'"),
    (["--method", "sg", "--sigma", "wide"], 2, "--sigma", "got 'wide'"),
    (["--method", "sg", "--seed", "-1"], 2, "--seed", "got -1"),
    (["--method", "ig", "--seed", "1"], 2, "--seed", "applies to --method smoothgrad only"),
    (["--method", "ig", "--grad-cam-layer", "4"], 2, "--grad-cam-layer",
     "applies to --method grad_cam or guided_grad_cam only"),
    (["--method", "gradcam", "--grad-cam-layer", "9"], 2, "--grad-cam-layer",
     "layer must come before the logits"),
    (["--method", "gradcam", "--grad-cam-layer", "8"], 2, "--grad-cam-layer",
     "Grad-CAM needs a layer with feature maps (C, H, W); layer 8 (Flatten) outputs"),
    (["--method", "gradcam", "--grad-cam-layer", "pool"], 2, "--grad-cam-layer",
     "no layer named 'pool'"),
    (["--method", "gradcam", "--grad-cam-layer", "10"], 2, "--grad-cam-layer",
     "must be an index in [-10, 10)"),
    (["--method", "gradient", "--model", "{tmp}/maps.npz"], 1, "--model",
     "--method explains a class logit, but the network's output"),
]


@pytest.fixture
def no_work(monkeypatch):
    """The map and the figure fail the test if they start: the checks come first."""
    def started(*args, **kwargs):
        pytest.fail("the work started before the command line was checked")
    for module, name in [(cli_attribute, "attribution_map"), (plots, "save"),
                         (plots, "attribution_figure")]:
        monkeypatch.setattr(module, name, started)


@pytest.mark.parametrize("flags, code, flag, text", ERRORS,
                         ids=[" ".join(case[0]) or "nothing" for case in ERRORS])
def test_bad_values_meet_one_line(flags, code, flag, text, bad_models, no_work, tmp_path,
                                  capsys):
    args = ["project", "--image", IMAGE, *[f.format(tmp=bad_models) for f in flags],
            "--out", str(tmp_path / "map.png")]
    status = main_status(args)
    captured = capsys.readouterr()
    assert status == code, captured.err
    assert_one_error_line(captured.err, "project", flag, text)
    assert not (tmp_path / "map.png").exists()


def test_help_lists_the_methods_and_short_forms(capsys):
    assert main_status(["project", "--help"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    for name in attribution.METHODS:
        assert name in printed
    for short, name in cli_attribute.ALIASES.items():
        assert f"{short}={name}" in printed


def test_demo_draws_the_family(tmp_path):
    lines = []
    written = cli_demo.demo(tmp_path, n_images=150, features=2, progress=False,
                            log=lines.append)
    family = tmp_path / "family.png"
    assert str(family) in written and any(str(family) in line for line in lines)
    assert family.stat().st_size > 20000
    import matplotlib.image
    height, width = matplotlib.image.imread(family).shape[:2]
    panels = 1 + len(attribution.METHODS)
    assert (height, width) > (900, 900) and panels >= 10


def test_family_maps_are_the_library_maps(shipped):
    net, image, predicted = shipped
    maps = cli_demo.family_maps(net, image, predicted)
    assert list(maps) == list(attribution.METHODS)
    for name in ("gradient", "grad_cam", "smoothgrad"):
        assert np.array_equal(maps[name], attribution.compute(name, net, image, predicted))
    fig = plots.family_figure(image, maps, "the family", notes={"gradient": "∂z/∂x"})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "input" and titles[1:] == [
        name if name != "gradient" else "gradient\n∂z/∂x" for name in maps]
    plots.pyplot().close(fig)


def test_a_coarse_map_covers_its_image():
    rng = np.random.default_rng(0)
    image, cam = rng.random((3, 32, 32)), rng.random((7, 7))
    fig = plots.attribution_figure(image, cam, "Grad-CAM\nline two", "grad_cam")
    shown = fig.axes[1].images
    assert len(shown) == 2 and shown[1].get_extent() == [-0.5, 31.5, 31.5, -0.5]
    assert shown[1].get_clim() == (0, cam.max())
    assert len(fig.axes) == 3                       # the colour bar of the coarse map
    signed = plots.attribution_figure(image, rng.standard_normal((3, 32, 32)), "map")
    assert len(signed.axes) == 2 and len(signed.axes[1].images) == 1
    with pytest.raises(ValueError, match=r"amap must be a pixel-space map \(C, H, W\)"):
        plots.draw_attribution(fig.axes[1], image, np.zeros(5))
    plots.pyplot().close(fig)
    plots.pyplot().close(signed)


def test_the_family_leaves_out_a_method_that_refuses_the_network(shipped, monkeypatch):
    net, image, predicted = shipped

    def refuse(net, images, targets):
        raise ValueError("no rule for this layer")
    monkeypatch.setitem(attribution.METHODS, "occlusion", refuse)
    lines = []
    maps = cli_demo.family_maps(net, image, predicted, log=lines.append)
    assert "occlusion" not in maps and "gradient" in maps
    assert lines == ["note: occlusion is left out of the family figure: no rule for this "
                     "layer"]
