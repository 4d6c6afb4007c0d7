"""Every mistake on the command line meets one line on stderr that names the flag, exit 2
for the command line and 1 for the run, no traceback — and no work before the checks."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.backend_bases  # noqa: E402,F401  (imported here, not timed in the cases)

from minideconv import compile as compiling  # noqa: E402
from minideconv.cli import checks as cli_checks, demo as cli_demo  # noqa: E402
from minideconv.cli import outputs as cli_outputs  # noqa: E402
from minideconv import (cli, data, nn, plots,  # noqa: E402
                        train, visualize)

from support.cli import assert_one_error_line, main_status  # noqa: E402

CASES = [
    # (args, exit code, flag, a substring of the error line); {tmp} is a folder of bad
    # inputs (see bad_inputs); project's required flags are filled in by the test
    (["demo", "--out", "{tmp}/afile"], 2, "--out", "'{tmp}/afile' is a file; give a"),
    (["demo", "--out", "{tmp}/afile/sub"], 2, "--out", "'{tmp}/afile' is a file, not a"),
    (["demo", "--out", "/proc/minideconv-test"], 1, "--out", "cannot create folder"),
    (["demo", "--out", "{tmp}/o", "--images", "0"], 2, "--images",
     "must be an integer in [9, 2000]"),
    (["demo", "--out", "{tmp}/o", "--images", "5"], 2, "--images", "top-9 needs 9"),
    (["demo", "--out", "{tmp}/o", "--images", "10000000"], 2, "--images", "got 10000000"),
    (["demo", "--out", "{tmp}/o", "--images", "many"], 2, "--images", "got 'many'"),
    (["demo", "--out", "{tmp}/o", "--features", "0"], 2, "--features",
     "must be an integer >= 1, got 0"),
    (["demo", "--out", "{tmp}/o", "--features", "-2"], 2, "--features", "got -2"),
    (["demo", "--out", "{tmp}/o", "--features", "17"], 2, "--features",
     "must be in [1, 16] (block 1 has 16 feature maps), got 17"),
    (["demo", "--out", "{tmp}/o", "--model", "{tmp}/adir"], 2, "--model", "is a folder"),
    (["demo", "--out", "{tmp}/o", "--model", "{tmp}/missing.npz"], 2, "--model",
     "no such file"),
    (["demo", "--out", "{tmp}/o", "--model", "{tmp}/truncated.npz"], 1, "--model",
     "is damaged (not a complete .npz)"),
    (["demo", "--out", "{tmp}/o", "--model", "{tmp}/text.npz"], 1, "--model",
     "'{tmp}/text.npz' is not a minideconv network file (.npz)"),
    (["demo", "--out", "{tmp}/o", "--model", "{tmp}/empty.npz"], 1, "--model",
     "is not a minideconv network file (.npz)"),
    (["demo", "--out", "{tmp}/o", "--model", "{tmp}/objects.npz"], 1, "--model",
     "holds Python objects, not plain arrays"),
    (["demo", "--out", "{tmp}/o", "--model", "{tmp}/plain.npz"], 1, "--model",
     "no 'architecture' entry"),
    (["demo", "--out", "{tmp}/o", "--model", "{tmp}/linear.npz"], 1, "--model",
     "first layer is a Conv2d"),
    (["demo", "--out", "{tmp}/o", "--model", "{tmp}/wide.npz"], 1, "--model",
     "takes inputs of shape (3, 64, 64)"),
    (["demo"], 2, "--out", "the following arguments are required: --out"),

    (["project", "--out", "{tmp}/adir"], 2, "--out", "is a folder; give a file name"),
    (["project", "--out", "{tmp}/new/"], 2, "--out", "so it names a folder; give a file"),
    (["project", "--out", "{tmp}/afile/p.png"], 2, "--out", "is a file, not a folder"),
    (["project", "--out", "{tmp}/p.xyz"], 2, "--out", "unknown file type '.xyz'"),
    (["project", "--out", "/proc/minideconv-test/p.png"], 1, "--out",
     "cannot create folder"),
    (["project", "--image", "test:3000000"], 2, "--image",
     "the test split has 2000 images, so the index must be in [0, 2000)"),
    (["project", "--image", "test:2000"], 2, "--image", "the test split has 2000 images"),
    (["project", "--image", "train:20000"], 2, "--image", "the train split has 20000"),
    (["project", "--image", "test:-1"], 2, "--image", "expected test:<index>"),
    (["project", "--image", "test:"], 2, "--image", "expected test:<index>"),
    (["project", "--image", "{tmp}/adir"], 2, "--image", "'{tmp}/adir' is a folder"),
    (["project", "--image", "{tmp}/missing.jpg"], 2, "--image",
     "is not an image file, a sample name (grace_hopper)"),
    (["project", "--image", "hopper"], 2, "--image", "is not an image file, a sample name"),
    (["project", "--image", "{tmp}/afile"], 1, "--image", "could not read"),
    (["project", "--layer", "10"], 2, "--layer",
     "must be an index in [-10, 10) (the network has 10 layers; negative counts from the "
     "end) or a name of net.names ('0', '1', '2', '3', '4', '5', '6', '7', … 10 in all), "
     "got 10"),
    (["project", "--layer", "-11"], 2, "--layer", "got -11"),
    (["project", "--layer", "five"], 2, "--layer", "no layer named 'five'; layer must be an index in [-10, 10)"),
    (["project", "--channel", "-1"], 2, "--channel", "must be an integer >= 0, got -1"),
    (["project", "--channel", "32"], 2, "--channel",
     "must be in [0, 32) (layer 5 (MaxPool2d) has 32 feature maps), got 32"),
    (["project", "--layer", "9", "--channel", "10"], 2, "--channel",
     "must be in [0, 10) (layer 9 (Linear) has 10 outputs)"),
    (["project", "--position", "7,0"], 2, "--position", "must lie in the 7x7 feature map"),
    (["project", "--position", "0,7"], 2, "--position", "W in [0, 7)), got 0,7"),
    (["project", "--layer", "9", "--position", "0,0"], 2, "--position",
     "has no spatial positions"),
    (["project", "--position", "3"], 2, "--position", "must be H,W (two integers >= 0"),
    (["project", "--position", "a,b"], 2, "--position", "got 'a,b'"),
    (["project", "--position", "1,2,3"], 2, "--position", "got '1,2,3'"),
    (["project", "--position=-1,2"], 2, "--position", "got '-1,2'"),
    (["project", "--position", "-1,2"], 2, "--position", "expected one argument"),
    (["project", "--rule", "saliency"], 2, "--rule", "invalid choice: 'saliency'"),
    (["project", "--model", "{tmp}/text.npz"], 1, "--model", "not a minideconv network"),
    (["project", "--model", "{tmp}/adir"], 2, "--model", "is a folder"),
    (["project", "--layer"], 2, "--layer", "expected one argument"),
    # project on a network of another input shape (or an .onnx file)
    (["project", "--model", "{tmp}/missing.onnx"], 2, "--model", "no such file"),
    (["project", "--size", "64"], 2, "--size",
     "the network takes (3, 32, 32) inputs; give --size 32 32 or leave it out"),
    (["project", "--size", "1", "2", "3"], 2, "--size", "give H or H W"),
    (["project", "--resize", "16"], 2, "--resize",
     "must be >= 32, the crop's longer side (the network takes 32x32)"),
    (["project", "--resize", "40"], 2, "--resize",
     "'test:0' is a dataset image, already 32x32; --resize applies to image files"),
    (["project", "--model", "{tmp}/wide.npz"], 2, "--image",
     "'test:0' is a 3x32x32 dataset image, but the network takes (3, 64, 64) inputs"),
    (["project", "--model", "{tmp}/grey.npz", "--image", "grace_hopper",
      "--normalize", "imagenet"], 2, "--normalize",
     "imagenet needs a network of 3 input channels (RGB); this one takes 1"),
    (["project", "--model", "{tmp}/two.npz", "--image", "{tmp}/photos/0.png"], 1,
     "--model", "takes 2-channel inputs; images are read as grey (1) or RGB (3)"),
    (["figure2", "--model", "{tmp}/two.npz"], 1, "--model", "takes 2-channel inputs"),
    (["project", "--normalize", "zscore"], 2, "--normalize", "invalid choice: 'zscore'"),

    (["train", "--out", "{tmp}/adir"], 2, "--out", "is a folder; give a file name"),
    (["train", "--out", "{tmp}/afile/m.npz"], 2, "--out", "is a file, not a folder"),
    (["train", "--out", "{tmp}/m.bin"], 2, "--out", "unknown file type '.bin'"),
    (["train", "--out", "{tmp}/m.NPZ"], 2, "--out", "unknown file type '.NPZ'"),
    (["train", "--out", "/proc/minideconv-test/m.npz"], 1, "--out", "cannot create folder"),
    (["train", "--epochs", "0"], 2, "--epochs", "must be an integer in [1, 1000]"),
    (["train", "--epochs", "-1"], 2, "--epochs", "got -1"),
    (["train", "--n-train", "0"], 2, "--n-train", "must be an integer in [64, 20000]"),
    (["train", "--n-train", "63"], 2, "--n-train", "one batch of 64"),
    (["train", "--n-train", "20001"], 2, "--n-train", "got 20001"),
    (["train", "--seed", "-1"], 2, "--seed", "must be an integer >= 0, got -1"),
    (["train", "--seed", "x"], 2, "--seed", "got 'x'"),

    (["crosscheck", "--images", "0"], 2, "--images", "must be an integer in [1, 2000]"),
    (["crosscheck", "--onnx", "/dev/null"], 2, "--onnx", "is not a regular file"),
    (["crosscheck", "--onnx", "{tmp}/fifo"], 2, "--onnx", "is not a regular file"),
    (["crosscheck", "--model", "/dev/null"], 2, "--model", "is not a regular file"),
    (["crosscheck", "--seed", "-3"], 2, "--seed", "got -3"),
    (["crosscheck", "--models", "resnet"], 2, "--models", "invalid choice: 'resnet'"),
    (["crosscheck", "--dtype", "float16"], 2, "--dtype", "invalid choice: 'float16'"),

    # an existing path that is not a regular file (a device, a pipe)
    (["project", "--image", "/dev/null"], 2, "--image", "'/dev/null' is not a regular file"),
    (["project", "--image", "{tmp}/fifo"], 2, "--image", "is not a regular file"),
    (["project", "--model", "/dev/null"], 2, "--model", "is not a regular file"),
    (["project", "--model", "{tmp}/fifo"], 2, "--model", "is not a regular file"),
    (["project", "--out", "{tmp}/fifo.png"], 2, "--out", "is not a regular file"),
    (["figure2", "--model", "{tmp}/fifo.onnx"], 2, "--model", "is not a regular file"),
    # an empty path, refused before any work
    (["train", "--out", ""], 2, "--out", "an empty path; give a file name"),
    (["demo", "--out", ""], 2, "--out", "an empty path; give a folder"),
    (["project", "--out", ""], 2, "--out", "an empty path; give a file name"),
    (["figure2", "--out", ""], 2, "--out", "an empty path; give a folder"),
    # a name that is only a suffix
    (["project", "--out", ".png"], 2, "--out", "'.png' is only a suffix; give a file name, "
                                              "e.g. 'out.png'"),
    (["project", "--out", "{tmp}/.PDF"], 2, "--out", "is only a suffix"),
    (["train", "--out", ".npz"], 2, "--out", "'.npz' is only a suffix"),
    # a name longer than the file system allows
    (["project", "--out", "{tmp}/" + "a" * 300 + ".png"], 2, "--out",
     "is 304 bytes long; the file system allows"),
    (["demo", "--out", "{tmp}/" + "d" * 300 + "/figs"], 2, "--out", "300 bytes long"),
    (["train", "--out", "{tmp}/" + "m" * 253], 2, "--out", "'mmmmmmmmmmmmmmmmmmmmmmmm…' "
     "is 257 bytes long"),      # with the .npz it adds
    # --layer: the accepted forms after an empty name
    (["project", "--layer", ""], 2, "--layer",
     "an empty name in ''; must be an index in [-10, 10) (the network has 10 layers; "
     "negative counts from the end) or a name of net.names ('0', '1'"),
    (["figure2", "--layer", "5,,"], 2, "--layer",
     "an empty name in '5,,'; must be an index in [-10, 10)"),
    (["project", "--layer", "1e3"], 2, "--layer", "no layer named '1e3'; layer must be an index"),
    # bounds on what scales run time: --epochs, figure2's --k
    (["train", "--epochs", "99999999999999999999"], 2, "--epochs",
     "must be an integer in [1, 1000] (a bound against typos"),
    (["train", "--epochs", "1001"], 2, "--epochs", "got 1001"),
    (["figure2", "--k", "99999999999"], 2, "--k", "must be at most 100 (each figure shows"),
    (["figure2", "--k", "nan"], 2, "--k", "got 'nan'"),
    (["figure2", "--images", "{tmp}/few", "--k", "5"], 2, "--k",
     "--k: must be at most the number of images, got 5; --images"),
    (["figure2", "--images", "{tmp}/few"], 2, "--images", "has 3 image files (.jpg/"),
    (["figure2", "--resize", "10000000"], 1, "--resize", "of memory but"),
    (["figure2", "--features", "99999999999", "--batch-size", "99999999999"], 1,
     "--batch-size", "give a smaller --batch-size"),
    (["figure2", "--images", "/dev/null"], 2, "--images", "is a file; give a folder"),
    (["figure2", "--model", "{tmp}"], 2, "--model", "is a folder"),
]

DEFAULTS = {  # the required flags the test fills in
    "project": {"--image": "test:0", "--layer": "5", "--channel": "0", "--out": "{tmp}/p.png"},
    "figure2": {"--images": "{tmp}/photos", "--layer": "5", "--out": "{tmp}/f2"},
}


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    """A folder of things that are not what a flag wants."""
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "afile").write_text("not an image, not a network\n")
    (tmp / "adir").mkdir()
    model = open(data.model_path(), "rb").read()
    (tmp / "truncated.npz").write_bytes(model[:len(model) // 2])
    (tmp / "text.npz").write_text("hello\n")
    (tmp / "empty.npz").write_bytes(b"")
    np.savez(tmp / "objects.npz", a=np.array([{"a": 1}], dtype=object))
    np.savez(tmp / "plain.npz", a=np.zeros(3))
    nn.Sequential(nn.Flatten(), nn.Linear(np.zeros((10, 3 * 32 * 32), np.float32)),
                  input_shape=(3, 32, 32)).save(tmp / "linear.npz")
    nn.Sequential(nn.Conv2d(np.zeros((2, 3, 3, 3), np.float32)),
                  input_shape=(3, 64, 64)).save(tmp / "wide.npz")
    nn.Sequential(nn.Conv2d(np.zeros((2, 1, 3, 3), np.float32)),
                  input_shape=(1, 28, 28)).save(tmp / "grey.npz")
    nn.Sequential(nn.Conv2d(np.zeros((2, 2, 3, 3), np.float32)),
                  input_shape=(2, 8, 8)).save(tmp / "two.npz")
    if hasattr(os, "mkfifo"):        # a pipe: opening it to read would wait forever
        os.mkfifo(tmp / "fifo")
        os.mkfifo(tmp / "fifo.onnx")
        os.mkfifo(tmp / "fifo.png")
    from PIL import Image
    for folder, count in (("photos", 10), ("few", 3)):
        (tmp / folder).mkdir()
        for i in range(count):
            Image.new("RGB", (40, 36), (20 * i, 100, 200)).save(tmp / folder / f"{i}.png")
    return tmp


@pytest.fixture
def no_work(monkeypatch):
    """Each command's work fails the test if it starts: the checks must come first."""
    def started(*args, **kwargs):
        pytest.fail("the work started before the command line was checked")
    for module, name in [(cli_demo, "demo"), (visualize, "project"), (train, "train_default"),
                         (train, "fit"), (data, "load_dataset"), (plots, "save"),
                         (visualize, "rank_top_k"), (compiling, "warm_up")]:
        monkeypatch.setattr(module, name, started)


def _with_defaults(args):
    given = {a.split("=")[0] for a in args}
    return args + [v for flag, value in DEFAULTS.get(args[0], {}).items()
                   if flag not in given for v in (flag, value)]


@pytest.mark.parametrize("args, code, flag, text", CASES,
                         ids=[" ".join(case[0]) for case in CASES])
def test_bad_command_line(args, code, flag, text, bad_inputs, no_work, capsys):
    if "/proc/" in " ".join(args) and not sys.platform.startswith("linux"):
        pytest.skip("/proc is Linux's")
    if any(a.startswith("{tmp}/fifo") for a in args) and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    if "/dev/null" in args and not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null here")
    args = [a.format(tmp=bad_inputs) for a in _with_defaults(args)]
    text = text.format(tmp=bad_inputs)
    start = time.perf_counter()
    status = main_status(args)
    seconds = time.perf_counter() - start
    captured = capsys.readouterr()
    assert status == code
    assert_one_error_line(captured.err, args[0], flag, text)
    assert "Traceback" not in captured.out
    assert seconds < 1.0 or args[0] != "train", "train must check before it trains"


@pytest.mark.parametrize("args, message", [
    ([], "the following arguments are required: COMMAND"),
    (["deconv"], "argument COMMAND: invalid choice: 'deconv'"),
])
def test_bad_command(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines               # no usage block: one line
    assert lines[0].startswith("minideconv: error: ")
    assert message in lines[0] and "minideconv --help" in lines[0]


def run(args, capsys):
    status = cli.main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return status, err


def project_args(tmp_path, *extra):
    return ["project", "--image", "test:0", "--layer", "5", "--channel", "0",
            "--out", str(tmp_path / "p.png"), *extra]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
@pytest.mark.parametrize("command", ["demo", "project", "train"])
def test_read_only_folder(tmp_path, no_work, capsys, command):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        out = str(folder / ("figs" if command == "demo" else "out.npz"))
        args = {"demo": ["demo", "--out", out], "train": ["train", "--out", out],
                "project": project_args(tmp_path)[:-1] + [out + ".png"]}[command]
        status, err = run(args, capsys)
    finally:
        folder.chmod(0o700)
    assert status == 1 and "--out" in err and "ermission denied" in err


def test_unwritable_folder_as_root_too(tmp_path, monkeypatch, no_work, capsys):
    """The write probe's answer, whoever runs the tests."""
    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))
    monkeypatch.setattr(cli_outputs.tempfile, "NamedTemporaryFile", refuse)
    status, err = run(["train", "--out", str(tmp_path / "m.npz")], capsys)
    assert status == 1
    assert f"--out: cannot write in '{tmp_path}': Permission denied" in err


def test_read_only_file(tmp_path, monkeypatch, no_work, capsys):
    out = tmp_path / "p.png"
    out.write_bytes(b"")
    real_access = os.access
    monkeypatch.setattr(os, "access",
                        lambda path, mode, **kw: os.fspath(path) != str(out)
                        and real_access(path, mode, **kw))
    status, err = run(project_args(tmp_path), capsys)
    assert status == 1 and f"--out: cannot overwrite '{out}': permission denied" in err


@pytest.mark.parametrize("args, flag", [
    (["demo", "--out", "{tmp}/figs"], "--images"),
    (["train", "--out", "{tmp}/m.npz", "--n-train", "64"], "--n-train"),
])
def test_not_enough_memory_is_refused_first(tmp_path, monkeypatch, no_work, capsys, args,
                                            flag):
    monkeypatch.setattr(cli_checks, "available_memory", lambda: 2**20)
    status, err = run([a.format(tmp=tmp_path) for a in args], capsys)
    assert status == 1
    assert f"error: {flag} " in err and "of memory but 1.0 MiB is available" in err
    assert f"give a smaller {flag}" in err


def test_available_memory_is_known_here():
    available = cli_checks.available_memory()
    assert available is None or available > 0


def fail_with(monkeypatch, error):
    def raise_it(*args, **kwargs):
        raise error
    monkeypatch.setattr(visualize, "project", raise_it)


@pytest.mark.parametrize("error, code, text", [
    (MemoryError(), 1, "out of memory; free some memory"),
    (OSError(errno.ENOSPC, "No space left on device", "{tmp}/p.png"), 1,
     "--out: '{tmp}/p.png': No space left on device"),
    # a library ValueError during the work is a failed run, not a wrong command line
    (ValueError("k must be in [1, 5]"), 1,
     "internal error: ValueError: k must be in [1, 5]; run with MINIDECONV_DEBUG=1"),
    (UnicodeEncodeError("ascii", "ü", 0, 1, "ordinal not in range(128)"), 1,
     "internal error: UnicodeEncodeError"),
    (RuntimeError("boom"), 1,
     "internal error: RuntimeError: boom; run with MINIDECONV_DEBUG=1 for the traceback"),
])
def test_errors_during_the_work(tmp_path, monkeypatch, capsys, error, code, text):
    if isinstance(error, OSError):
        error.filename = error.filename.format(tmp=tmp_path)
    fail_with(monkeypatch, error)
    status, err = run(project_args(tmp_path), capsys)
    assert status == code and text.format(tmp=tmp_path) in err


def test_memory_error_in_demo_names_the_flag(tmp_path, monkeypatch, capsys):
    def out_of_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(data, "load_dataset", out_of_memory)
    status, err = run(["demo", "--out", str(tmp_path / "figs"), "--no-progress"], capsys)
    assert status == 1 and "out of memory; give a smaller --images" in err


def test_interrupt(tmp_path, monkeypatch, capsys):
    fail_with(monkeypatch, KeyboardInterrupt())
    status, err = run(project_args(tmp_path), capsys)
    assert status == 130 and err == "minideconv project: interrupted\n"


def test_debug_shows_the_traceback_of_internal_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIDECONV_DEBUG", "1")
    fail_with(monkeypatch, RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(project_args(tmp_path))
    # a usage error stays one line
    status, err = run(project_args(tmp_path, "--layer", "10"), capsys)
    assert status == 2 and "--layer: must be an index in [-10, 10)" in err


def test_crosscheck_without_torch(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)     # import torch now fails
    status, err = run(["crosscheck"], capsys)
    assert status == 1
    assert "minideconv crosscheck: error: crosscheck needs torch" in err
    assert "pip install" in err


def test_project_an_onnx_file_without_the_onnx_package(bad_inputs, monkeypatch, no_work,
                                                     capsys):
    """figure2's one line, from project too."""
    monkeypatch.setitem(sys.modules, "onnx", None)      # import onnx -> ImportError
    (bad_inputs / "text.onnx").write_text("not a model\n")
    status, err = run(project_args(bad_inputs, "--model", str(bad_inputs / "text.onnx")),
                      capsys)
    assert status == 1
    assert err.strip() == ("minideconv project: error: --model: reading an .onnx file "
                           "needs the onnx package, which is not installed: pip install "
                           "onnx")


def test_load_image_checks_the_split_size():
    assert np.array_equal(data.load_image("test:1999"), data.load_dataset("test")[0][1999])
    with pytest.raises(ValueError, match=r"the test split has 2000 images, so the index "
                                         r"must be in \[0, 2000\)"):
        data.load_image("test:2000")
    with pytest.raises(ValueError, match="expected train:<index>"):
        data.load_image("train:")


@pytest.mark.parametrize("args, code, text", [
    (["project", "--image", "test:99999", "--layer", "1", "--channel", "0", "--out",
      "{tmp}/p.png"], 2, "--image: 'test:99999': the test split has 2000 images"),
    (["demo", "--out", "{tmp}/afile"], 2, "--out: '{tmp}/afile' is a file"),
    (["project", "--image", "test:0", "--layer", "1", "--channel", "0", "--model",
      "{tmp}/truncated.npz", "--out", "{tmp}/p.png"], 1, "--model: '{tmp}/truncated.npz'"),
])
def test_no_traceback_reaches_the_terminal(bad_inputs, args, code, text):
    result = subprocess.run([sys.executable, "-m", "minideconv"]
                            + [a.format(tmp=bad_inputs) for a in args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == code
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("\n") == 1 and text.format(tmp=bad_inputs) in result.stderr


def test_a_path_the_terminal_cannot_encode(tmp_path):
    """The work succeeds and its one-line report shows the path with backslash escapes;
    an error naming such a path stays one line that names the flag."""
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    base = ["project", "--image", "test:0", "--layer", "5", "--channel", "0", "--out"]
    result = subprocess.run([sys.executable, "-m", "minideconv", *base, "ünï2/x.png"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ünï2" / "x.png").is_file()
    assert result.stdout.count("\n") == 1 and "written to \\xfcn\\xef2/x.png" in result.stdout
    result = subprocess.run([sys.executable, "-m", "minideconv", *base, "ünï2/x.xyz"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "error: --out: unknown file type '.xyz' in '\\xfcn\\xef2/x.xyz'" in result.stderr


def test_a_path_with_a_newline_is_reported_on_one_line(tmp_path, capsys):
    out = tmp_path / "a\nb.png"
    status = cli.main(["project", "--image", "test:0", "--layer", "5", "--channel", "0",
                       "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0 and out.is_file()
    assert printed.count("\n") == 1 and repr(str(out)) in printed
