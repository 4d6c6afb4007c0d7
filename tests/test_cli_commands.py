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
             "rules_compared.png", "occlusion.png", "layer1_filters.png"}
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
