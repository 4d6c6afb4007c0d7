"""The `minideconv` command: demo, project, train, --help; headless (Agg)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from minideconv import cli, nn  # noqa: E402
from minideconv.cli import demo as cli_demo  # noqa: E402


@pytest.mark.parametrize("command", [[], ["demo"], ["project"], ["train"], ["crosscheck"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(command + ["--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "usage: minideconv" in printed
    assert "exit status:" in printed and "130" in printed     # the exit codes, documented


def test_version(capsys):
    from minideconv import __version__
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"minideconv {__version__}\n"


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "minideconv", "project", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--layer" in result.stdout


def test_demo_writes_figures(tmp_path, capsys):
    out = tmp_path / "figures"
    code = cli.main(["demo", "--out", str(out), "--images", "150", "--features", "2",
                     "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    names = {"block1_top9.png", "block2_top9.png", "block3_top9.png",
             "rules_compared.png", "occlusion.png", "layer1_filters.png", "family.png"}
    assert {p.name for p in out.iterdir()} == names
    for name in names:
        path = out / name
        assert path.stat().st_size > 5000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(path) in printed            # it says where each figure is


def test_project_command(tmp_path, capsys):
    out = tmp_path / "sub" / "p"             # no suffix: '.png' is added, and reported
    code = cli.main(["project", "--image", "test:3", "--layer", "5", "--channel", "2",
                     "--rule", "guided", "--out", str(out)])
    assert code == 0
    written = tmp_path / "sub" / "p.png"
    assert written.stat().st_size > 5000
    captured = capsys.readouterr()
    assert "activation" in captured.out
    assert captured.out.rstrip().endswith(f"figure written to {written}")
    assert captured.err == "" and "note:" not in captured.out
    code = cli.main(["project", "--image", "grace_hopper", "--layer", "-1",   # the last
                     "--channel", "0", "--out", str(tmp_path / "q.png")])
    assert code == 0
    assert "at output unit" in capsys.readouterr().out


def dead_network(path):
    """A network whose every unit is 0: a conv with zero weights and bias −1, then ReLU."""
    conv = nn.Conv2d(np.zeros((2, 3, 5, 5), np.float32), -np.ones(2, np.float32))
    nn.Sequential(conv, nn.ReLU(), input_shape=(3, 32, 32)).save(path)
    return path


@pytest.mark.parametrize("position, note", [
    ([], "feature 1 of layer 1 (ReLU) is never active on this image (its maximum is 0)"),
    (["--position", "3,4"], "feature 1 of layer 1 (ReLU) is not active at position (3, 4)"),
])
def test_project_says_when_the_projection_is_zero(tmp_path, capsys, position, note):
    model = dead_network(tmp_path / "dead.npz")
    out = tmp_path / "p.png"
    code = cli.main(["project", "--image", "test:0", "--layer", "1", "--channel", "1",
                     "--model", str(model), "--out", str(out)] + position)
    assert code == 0                          # the figure is still written, with a note
    assert out.stat().st_size > 0
    captured = capsys.readouterr()
    assert f"note: {note}" in captured.out
    assert "the projection is all zero" in captured.out and captured.err == ""


def test_demo_notes_features_that_never_fire():
    values = {3: np.zeros(9), 4: np.r_[0.5, np.zeros(8)], 5: np.zeros(9)}
    feats = [(c, SimpleNamespace(values=v)) for c, v in values.items()]
    assert cli_demo.inactive_features(feats) == [3, 5]


def test_train_command(tmp_path, capsys):
    out = tmp_path / "tiny"                  # '.npz' is added, as numpy does, and reported
    code = cli.main(["train", "--epochs", "1", "--n-train", "128", "--out", str(out),
                     "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed
    assert f"weights written to {out}.npz" in printed
    assert nn.load(f"{out}.npz").input_shape == (3, 32, 32)


@pytest.mark.parametrize("command, documented", [
    ("train", "in [1, 1000]: each one takes as long as the first"),
    ("figure2", "images per feature, in [1, 100]"),
    ("project", "a name that is only a suffix ('.png'), are refused"),
])
def test_help_documents_the_bounds(command, documented, capsys):
    """The upper bounds on what scales run time, and the refused names."""
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert documented in " ".join(capsys.readouterr().out.split())


# --------------------------------------------------------------------------- any network

def photo(folder, name="photo.png", size=(45, 70), seed=0):
    """An RGB PNG of random pixels, wider than high: the crop and the resize both matter."""
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / name)
    return folder / name


def project_spied(monkeypatch, args):
    """``minideconv project ARGS``: what it drew (the image shown, the projection, the
    figure), which must have been written."""
    from minideconv import plots
    seen, figure = {}, plots.projection_figure

    def spy(image, projection, *rest, **kwargs):
        seen.update(image=image, projection=projection)
        seen["figure"] = figure(image, projection, *rest, **kwargs)
        return seen["figure"]

    monkeypatch.setattr(plots, "projection_figure", spy)
    assert cli.main(["project", *args]) == 0
    return seen


def random_network(path, input_shape, rng, out_channels=4):
    """Conv2d → ReLU → MaxPool2d → Flatten → Linear of random weights, for input_shape."""
    c, h, w = input_shape
    conv = nn.Conv2d(rng.normal(size=(out_channels, c, 3, 3)).astype(np.float32),
                     rng.normal(size=out_channels).astype(np.float32) * 0.1)
    features = out_channels * ((h - 2) // 2) * ((w - 2) // 2)
    linear = nn.Linear(rng.normal(size=(5, features)).astype(np.float32) * 0.01)
    net = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), linear,
                        input_shape=input_shape)
    net.save(path)
    return nn.load(path)


def test_project_a_grey_network_on_an_rgb_photo(tmp_path, monkeypatch, capsys):
    """A 1 × 28 × 28 network reads an RGB file as grey (its luma) at 28 × 28, as figure2's
    ImageFolder does, and shows it in grey."""
    from minideconv import visualize
    from minideconv.data.images import ImageFolder
    net = random_network(tmp_path / "grey.npz", (1, 28, 28), np.random.default_rng(1))
    path = photo(tmp_path / "photos")
    seen = project_spied(monkeypatch, ["--model", str(tmp_path / "grey.npz"), "--image",
                                       str(path), "--layer", "2", "--channel", "1",
                                       "--out", str(tmp_path / "p.png")])
    expected = ImageFolder(tmp_path / "photos", (28, 28), channels=1).read(path)
    assert expected.shape == (1, 28, 28)
    assert np.array_equal(seen["image"], expected)
    wanted = visualize.project(net, expected, 2, 1)
    assert np.abs(wanted).max() > 0
    assert np.array_equal(seen["projection"], wanted)
    shown = seen["figure"].axes[0].images[0].get_array()           # drawn in grey
    assert np.array_equal(shown[..., 0], shown[..., 1]) and \
        np.array_equal(shown[..., 0], shown[..., 2])
    assert (tmp_path / "p.png").stat().st_size > 0
    assert "figure written to" in capsys.readouterr().out


def test_project_a_64x64_network_with_resize(tmp_path, monkeypatch):
    """A 3 × 64 × 64 network: the file's shorter side scaled to --resize, the centre
    64 × 64 cut out; a sample name is read for the same shape."""
    from minideconv import data, visualize
    from minideconv.data.images import ImageFolder
    net = random_network(tmp_path / "wide.npz", (3, 64, 64), np.random.default_rng(2))
    path = photo(tmp_path / "photos", size=(90, 120))
    base = ["--model", str(tmp_path / "wide.npz"), "--layer", "2", "--channel", "0",
            "--out", str(tmp_path / "p.png")]
    seen = project_spied(monkeypatch, base + ["--image", str(path), "--resize", "80"])
    expected = ImageFolder(tmp_path / "photos", (64, 64), resize=80).read(path)
    assert np.array_equal(seen["image"], expected)
    assert np.array_equal(seen["projection"], visualize.project(net, expected, 2, 0))
    seen = project_spied(monkeypatch, base + ["--image", "grace_hopper"])
    assert np.array_equal(seen["image"], data.images.read_file(
        data.sample_path("grace_hopper"), (64, 64)))


def test_project_normalises_a_dataset_image_when_asked(tmp_path, monkeypatch):
    """--normalize imagenet on test:<i> (documented as allowed): the network gets
    (x − mean) / std, the figure shows x."""
    from minideconv import data, visualize
    from minideconv.data.images import IMAGENET_MEAN, IMAGENET_STD
    seen = project_spied(monkeypatch, ["--image", "test:3", "--layer", "5", "--channel",
                                       "2", "--normalize", "imagenet", "--out",
                                       str(tmp_path / "p.png")])
    image = data.load_image("test:3")
    mean, std = (np.array(v)[:, None, None] for v in (IMAGENET_MEAN, IMAGENET_STD))
    normalised = ((image - mean) / std).astype(np.float32)
    assert np.allclose(seen["image"], image, atol=1e-6)
    assert np.array_equal(seen["projection"],
                          visualize.project(data.load_model(), normalised, 5, 2))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")     # torch's legacy exporter
def test_project_an_onnx_network_with_imagenet_normalisation(tmp_path, monkeypatch):
    """An .onnx model (exported by torch) at 3 × 48 × 48: read by from_onnx, the image
    normalised with ImageNet's mean and std; the figure shows the image as read."""
    pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    from minideconv import visualize
    from minideconv.data.images import IMAGENET_MEAN, IMAGENET_STD, ImageFolder
    from minideconv.interop.onnx import from_onnx
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2)).eval()
    onnx_path = str(tmp_path / "m.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, 48, 48), onnx_path, dynamo=False)
    path = photo(tmp_path / "photos", size=(60, 50))
    seen = project_spied(monkeypatch, ["--model", onnx_path, "--image", str(path),
                                       "--normalize", "imagenet", "--layer", "-1",
                                       "--channel", "2", "--out", str(tmp_path / "p.png")])
    net = from_onnx(onnx_path)
    normalised = ImageFolder(tmp_path / "photos", (48, 48), mean=IMAGENET_MEAN,
                             std=IMAGENET_STD, dtype=net.dtype()).read(path)
    wanted = visualize.project(net, normalised, -1, 2)
    assert np.abs(wanted).max() > 0
    assert np.array_equal(seen["projection"], wanted)
    as_read = ImageFolder(tmp_path / "photos", (48, 48)).read(path)
    assert np.allclose(seen["image"], as_read, atol=1e-6)       # before normalisation
