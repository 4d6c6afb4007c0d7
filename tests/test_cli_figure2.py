"""`minideconv figure2`: Figure 2 streamed over a folder of one's own images — a mixed
folder with broken files, the top-k table it writes, its usage errors (one line, exit 2),
and memory that does not grow with the number of images."""

from __future__ import annotations

import os
import sys
import tracemalloc
from importlib.util import find_spec

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from PIL import Image  # noqa: E402

from minideconv import cli, data, nn, plots, visualize
from minideconv.data import images as image_folder  # noqa: E402
from minideconv.data.images import ImageFolder  # noqa: E402

from support.cli import main_status  # noqa: E402


def write_images(folder, rng, count=10):
    """``count`` small images in every mode figure2 reads, of several sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        h, w = 40 + 7 * i, 64 - 3 * i
        pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        kind = i % 5
        if kind == 0:
            image, name = Image.fromarray(pixels[..., :3]), f"rgb{i}.png"
        elif kind == 1:
            image, name = Image.fromarray(pixels[..., 0]), f"grey{i}.PNG"
        elif kind == 2:
            image, name = Image.fromarray(pixels, "RGBA"), f"rgba{i}.png"
        elif kind == 3:
            image, name = Image.fromarray(pixels[..., :3]).convert("P"), f"palette{i}.png"
        else:
            image, name = Image.fromarray(pixels[..., :3]), f"photo{i}.jpeg"
        image.save(folder / name)
        made.append(str(folder / name))
    return sorted(made)


@pytest.fixture
def mixed(tmp_path):
    """10 readable images, 3 broken ones, a text file, and 2 images in a subfolder."""
    folder = tmp_path / "photos"
    readable = write_images(folder, np.random.default_rng(0))
    good = (folder / "rgb0.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[:len(good) // 2])
    (folder / "notes.png").write_text("not an image\n")
    (folder / "empty.JPG").write_bytes(b"")
    (folder / "readme.txt").write_text("the photographs\n")
    write_images(folder / "sub", np.random.default_rng(1), count=2)
    return folder, readable


def run(args, capsys):
    return main_status(args), capsys.readouterr()


def test_mixed_folder(mixed, tmp_path, capsys):
    folder, readable = mixed
    out = tmp_path / "fig2"
    code, printed = run(["figure2", "--images", str(folder), "--layer", "2,5", "--layer",
                         "5", "--out", str(out), "--k", "4", "--features", "3",
                         "--batch-size", "3", "--no-progress"], capsys)
    assert code == 0, printed.err
    assert "Traceback" not in printed.err
    lines = printed.out.splitlines()
    skipped = sorted(line.split(":")[0].removeprefix("skipped ") for line in lines
                     if line.startswith("skipped "))
    assert skipped == sorted(str(folder / name) for name in
                             ("truncated.png", "notes.png", "empty.JPG"))
    assert ("read 10 images; skipped 3 unreadable file(s); ignored 1 file(s) without an "
            "image suffix (.jpg/.jpeg/.png/.bmp/.gif/.tif/.tiff/.webp)") in lines
    names = {"figure2_layer2_top4.png", "figure2_layer5_top4.png", "figure2_top4.npz",
             "figure2_ranking.npz"}
    assert {p.name for p in out.iterdir()} == names
    for name in names:
        assert f"  written: {out / name}" in lines
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the table: every feature of both layers, equal to top_k on the same arrays
    table = np.load(out / "figure2_top4.npz", allow_pickle=False)
    assert sorted(table["skipped_path"]) == skipped
    net = data.load_model()
    images = ImageFolder(folder, (32, 32)).load(readable)
    for layer in (2, 5):
        reference = visualize.top_k(net, images, layer, k=4)
        rows = table["layer"] == layer
        assert rows.sum() == 4 * len(reference)
        assert set(table["layer_name"][rows]) == {str(layer)}
        for channel, top in enumerate(reference):
            mine = rows & (table["channel"] == channel)
            assert list(table["rank"][mine]) == [0, 1, 2, 3]
            assert list(table["path"][mine]) == [readable[i] for i in top.indices]
            assert np.array_equal(table["image_index"][mine], top.indices)
            assert np.array_equal(table["position"][mine], top.positions)
            assert np.array_equal(table["value"][mine], top.values)


def test_recursive_and_names(mixed, tmp_path, capsys):
    folder, _ = mixed
    out = tmp_path / "fig2"
    code, printed = run(["figure2", "--images", str(folder), "--layer", "-1", "--out",
                         str(out), "--k", "2", "--features", "20", "--recursive",
                         "--rule", "guided", "--no-progress"], capsys)
    assert code == 0, printed.err
    assert "read 12 images" in printed.out                   # the subfolder's 2 too
    assert {p.name for p in out.iterdir()} == {"figure2_layer9_top2.png",
                                               "figure2_top2.npz", "figure2_ranking.npz"}
    table = np.load(out / "figure2_top2.npz")
    assert len(table["value"]) == 10 * 2                     # all 10 outputs, 2 each


def test_a_list_of_layers_may_start_with_a_negative_index(mixed, tmp_path, capsys):
    """``--layer -1,5`` (not only ``--layer=-1,5``): argparse would take '-1,5' for a flag."""
    folder, _ = mixed
    out = tmp_path / "fig2"
    code, printed = run(["figure2", "--images", str(folder), "--layer", "-1,5", "--out",
                         str(out), "--k", "2", "--no-progress"], capsys)
    assert code == 0, printed.err
    assert {p.name for p in out.iterdir()} == {"figure2_layer9_top2.png",
                                               "figure2_layer5_top2.png", "figure2_top2.npz",
                                               "figure2_ranking.npz"}


def test_graph_network_by_node_name(tmp_path, capsys):
    rng = np.random.default_rng(3)
    readable = write_images(tmp_path / "photos", rng, count=4)
    conv = nn.Conv2d(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), padding=1)
    net = nn.Graph([("features.0", conv, ("input",)), ("features.1", nn.ReLU(),
                                                        ("features.0",))],
                   input_shape=(3, 16, 16))
    net.save(tmp_path / "g.npz")
    code, printed = run(["figure2", "--images", str(tmp_path / "photos"), "--layer",
                         "features.1", "--out", str(tmp_path / "o"), "--k", "2",
                         "--model", str(tmp_path / "g.npz"), "--no-progress"], capsys)
    assert code == 0, printed.err
    assert (tmp_path / "o" / "figure2_layer1_features.1_top2.png").exists()
    assert len(readable) == 4


# --------------------------------------------------------------------------- errors

@pytest.fixture
def folders(mixed, tmp_path):
    folder, _ = mixed
    (tmp_path / "afile").write_text("x\n")
    (tmp_path / "textonly").mkdir()
    (tmp_path / "textonly" / "a.txt").write_text("x\n")
    few = tmp_path / "few"
    write_images(few, np.random.default_rng(5), count=3)
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(9):
        (broken / f"b{i}.png").write_text("no\n")
    (tmp_path / "text.onnx").write_text("not a model\n")
    return {"photos": str(folder), "tmp": str(tmp_path)}


HAS_ONNX = find_spec("onnx") is not None

ERRORS = [
    # (args after figure2, exit code, flag, a substring of the error line)
    (["--images", "{tmp}/missing"], 2, "--images", "no such folder"),
    (["--images", "{tmp}/afile"], 2, "--images", "is a file; give a folder"),
    (["--images", "{tmp}/textonly"], 2, "--images", "has 0 image files (.jpg/"),
    (["--images", "{tmp}/few"], 2, "--images", "--k 9 needs at least 9"),
    (["--layer", "conv9"], 2, "--layer", "no layer named 'conv9'; layer must be an index in [-10, 10)"),
    (["--layer", "10"], 2, "--layer", "must be an index in [-10, 10)"),
    (["--layer", "2,,5"], 2, "--layer", "an empty name"),
    (["--k", "0"], 2, "--k", "must be an integer >= 1, got 0"),
    (["--features", "0"], 2, "--features", "must be an integer >= 1"),
    (["--batch-size", "0"], 2, "--batch-size", "must be an integer >= 1"),
    (["--batch-size", "many"], 2, "--batch-size", "got 'many'"),
    (["--size", "1", "2", "3"], 2, "--size", "give H or H W"),
    (["--size", "64"], 2, "--size", "the network takes (3, 32, 32) inputs"),
    (["--resize", "16"], 2, "--resize", "must be >= 32"),
    (["--normalize", "zscore"], 2, "--normalize", "invalid choice: 'zscore'"),
    (["--rule", "lrp"], 2, "--rule", "invalid choice: 'lrp'"),
    (["--model", "{tmp}/missing.onnx"], 2, "--model", "no such file"),
    (["--model", "{tmp}/missing.npz"], 2, "--model", "no such file"),
    # a newcomer without onnx is told what to install before the file is read
    (["--model", "{tmp}/text.onnx"], 1, "--model",
     "is not a readable ONNX file" if HAS_ONNX else "needs the onnx package"),
    (["--out", "{tmp}/afile"], 2, "--out", "is a file; give a folder"),
    (["--images", "{tmp}/broken"], 1, "--images",
     "0 of the 9 files could be read as images; --k 9 needs at least 9"),
]


@pytest.mark.parametrize("args, code, flag, text", ERRORS,
                         ids=[" ".join(case[0]) for case in ERRORS])
def test_usage_errors(args, code, flag, text, folders, capsys):
    given = dict(zip(args[::2], args[1::2])) if len(args) % 2 == 0 else {}
    defaults = {"--images": "{photos}", "--layer": "5", "--out": "{tmp}/out"}
    full = ["figure2"] + args + [v for f, value in defaults.items()
                                 if f not in given and f not in args for v in (f, value)]
    full = [a.format(**folders) for a in full] + ["--no-progress"]
    status, printed = run(full, capsys)
    assert status == code, printed.err
    lines = printed.err.strip().splitlines()
    assert "Traceback" not in printed.err
    last = lines[-1]
    assert last.startswith("minideconv figure2: error: ")
    assert flag in last and text.format(**folders) in last, last
    assert len(lines) == 1, printed.err
    if code == 2 and "broken" not in " ".join(full):
        assert not os.path.exists(os.path.join(folders["tmp"], "out")) or \
            flag == "--out", "the output folder was made before the checks"


def test_onnx_without_the_onnx_package(folders, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)      # import onnx -> ImportError
    status, printed = run(["figure2", "--images", folders["photos"], "--layer", "1",
                           "--out", folders["tmp"] + "/o", "--model",
                           folders["tmp"] + "/text.onnx"], capsys)
    assert status == 1
    assert printed.err.strip() == ("minideconv figure2: error: --model: reading an .onnx "
                                   "file needs the onnx package, which is not installed: "
                                   "pip install onnx")


# --------------------------------------------------------------------------- memory

def traced_peak(folder, out, monkeypatch, capsys):
    """tracemalloc's peak over one figure2 run (figures not drawn: they cost the same for
    any number of images)."""
    monkeypatch.setattr(plots, "feature_grid", lambda *a, **k: None)
    monkeypatch.setattr(plots, "save", lambda fig, path: path)
    cli.main(["figure2", "--images", str(folder), "--layer", "2", "--out", str(out),
              "--k", "3", "--features", "2", "--batch-size", "5", "--no-progress"])
    tracemalloc.start()
    try:
        code = cli.main(["figure2", "--images", str(folder), "--layer", "2", "--out",
                         str(out), "--k", "3", "--features", "2", "--batch-size", "5",
                         "--no-progress"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0, capsys.readouterr().err
    return peak


def test_memory_does_not_grow_with_the_images(tmp_path, monkeypatch, capsys):
    """Ten times the images (the same files linked ten times over) must not mean ten
    times the memory: one batch, its trace and the top-k table are all that is held.
    Holding the 200 decoded images alone would add more than half the peak of 20."""
    sources = write_images(tmp_path / "src", np.random.default_rng(2), count=20)
    for copies, name in ((1, "small"), (10, "large")):
        folder = tmp_path / name
        folder.mkdir()
        for c in range(copies):
            for path in sources:
                os.symlink(path, folder / f"{c:02d}_{os.path.basename(path)}")
    small = traced_peak(tmp_path / "small", tmp_path / "o1", monkeypatch, capsys)
    large = traced_peak(tmp_path / "large", tmp_path / "o2", monkeypatch, capsys)
    assert large < 1.3 * small, (small, large)


def test_image_folder_reads_as_read_image(tmp_path):
    """For the shipped network (32 × 32, no normalisation) a PNG reads exactly as
    minideconv.data.read_image reads it: the same centred square, the same box filter."""
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (50, 90, 3), dtype=np.uint8)   # (90 − 50) / 2 whole
    Image.fromarray(pixels).save(tmp_path / "a.png")
    folder = ImageFolder(tmp_path, (32, 32))
    assert np.array_equal(folder.read(tmp_path / "a.png"),
                          data.read_image(tmp_path / "a.png"))


def test_image_folder_conversions(tmp_path):
    """Transparency over the background, grey repeated, luma for 1 channel, 16-bit grey,
    normalisation, and the crop's geometry on a picture with a known centre."""
    opaque = np.zeros((8, 8, 4), np.uint8)
    opaque[..., 0] = 255                    # red, alpha 0 on the left half
    opaque[:, 4:, 3] = 255
    Image.fromarray(opaque, "RGBA").save(tmp_path / "half.png")
    rgb = ImageFolder(tmp_path, (8, 8)).read(tmp_path / "half.png")
    assert np.allclose(rgb[:, :, :4], 0.5)                         # mid-grey background
    assert np.allclose(rgb[:, :, 4:], np.array([1, 0, 0])[:, None, None])
    normalised = ImageFolder(tmp_path, (8, 8), mean=image_folder.IMAGENET_MEAN,
                             std=image_folder.IMAGENET_STD).read(tmp_path / "half.png")
    assert np.allclose(normalised[:, :, :4], 0, atol=1e-6)         # the mean: 0

    grey = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    Image.fromarray(grey).save(tmp_path / "deep.png")               # 16-bit grey
    deep = ImageFolder(tmp_path, (8, 8)).read(tmp_path / "deep.png")
    assert np.allclose(deep, grey / 65535, atol=1e-6) and deep.shape == (3, 8, 8)
    one = ImageFolder(tmp_path, (8, 8), channels=1).read(tmp_path / "half.png")
    assert one.shape == (1, 8, 8)
    assert np.allclose(one[0, :, 4:], 0.299)

    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 255                                            # the centre square
    Image.fromarray(wide).save(tmp_path / "wide.png")
    crop = ImageFolder(tmp_path, (5, 5)).read(tmp_path / "wide.png")
    assert np.allclose(crop, 1.0)                                   # only the centre
    bigger = ImageFolder(tmp_path, (5, 5), resize=15).read(tmp_path / "wide.png")
    assert np.allclose(bigger, 1.0)             # S = 15: the centre 5 of 45 columns
    with pytest.raises(ValueError, match="resize must be an int >= max"):
        ImageFolder(tmp_path, (5, 5), resize=4)


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["figure2", "--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "usage: minideconv figure2" in printed and "exit status:" in printed
    for flag in ("--images", "--layer", "--out", "--model", "--k", "--features",
                 "--batch-size", "--normalize", "--size", "--resize", "--recursive"):
        assert flag in printed


def test_many_skipped_files_are_counted(tmp_path, capsys):
    folder = tmp_path / "photos"
    write_images(folder, np.random.default_rng(6), count=9)
    for i in range(12):
        (folder / f"bad{i:02d}.png").write_text("no\n")
    code, printed = run(["figure2", "--images", str(folder), "--layer", "2", "--out",
                         str(tmp_path / "o"), "--no-progress"], capsys)
    assert code == 0, printed.err
    lines = printed.out.splitlines()
    assert sum(line.startswith("skipped " + str(folder)) for line in lines) == 10
    assert "skipped 2 more (every skipped file and its reason: skipped_path and " \
           "skipped_reason in the .npz)" in lines
    assert "read 9 images; skipped 12 unreadable file(s)" in printed.out
    table = np.load(tmp_path / "o" / "figure2_top9.npz")
    assert len(table["skipped_path"]) == 12


@pytest.mark.filterwarnings("ignore::DeprecationWarning")     # torch's legacy exporter
def test_onnx_model_with_imagenet_normalisation(tmp_path, capsys):
    """An .onnx network (exported by torch): read by interop.onnx, ImageNet's mean and std
    by default; the table equals top_k on the normalised arrays."""
    pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2)).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 16, 16), str(tmp_path / "m.onnx"),
                      dynamo=False)
    readable = write_images(tmp_path / "photos", np.random.default_rng(8), count=5)
    code, printed = run(["figure2", "--images", str(tmp_path / "photos"), "--layer", "-1",
                         "--out", str(tmp_path / "o"), "--k", "2", "--model",
                         str(tmp_path / "m.onnx"), "--resize", "20", "--no-progress"],
                        capsys)
    assert code == 0, printed.err
    assert "normalisation: imagenet" in printed.out
    from minideconv.interop.onnx import from_onnx
    net = from_onnx(str(tmp_path / "m.onnx"))
    images = ImageFolder(tmp_path / "photos", (16, 16), resize=20,
                         mean=image_folder.IMAGENET_MEAN,
                         std=image_folder.IMAGENET_STD).load(readable)
    table = np.load(tmp_path / "o" / "figure2_top2.npz")
    for channel, top in enumerate(visualize.top_k(net, images.astype(net.dtype()), -1, k=2)):
        rows = table["channel"] == channel
        assert list(table["path"][rows]) == [readable[i] for i in top.indices]
        assert np.array_equal(table["value"][rows], top.values)
