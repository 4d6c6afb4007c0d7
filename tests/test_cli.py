"""The `minideconv` command: demo, project, train, --help; headless (Agg)."""

from __future__ import annotations

import subprocess
import sys

import matplotlib
import pytest

matplotlib.use("Agg")

from minideconv import cli, nn  # noqa: E402


@pytest.mark.parametrize("command", [[], ["demo"], ["project"], ["train"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(command + ["--help"])
    assert exit_.value.code == 0
    assert "usage: minideconv" in capsys.readouterr().out


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
    out = tmp_path / "sub" / "p.png"
    code = cli.main(["project", "--image", "test:3", "--layer", "5", "--channel", "2",
                     "--rule", "guided", "--out", str(out)])
    assert code == 0
    assert out.stat().st_size > 5000
    assert "activation" in capsys.readouterr().out
    code = cli.main(["project", "--image", "grace_hopper", "--layer", "9", "--channel", "0",
                     "--out", str(tmp_path / "q.png")])
    assert code == 0


@pytest.mark.parametrize("args, message", [
    (["--layer", "10", "--channel", "0"], "layer must be in [0, 10)"),
    (["--layer", "5", "--channel", "99"], "channel must be in [0, 32)"),
    (["--layer", "5", "--channel", "0", "--position", "7,0"],
     "position must lie in the 7x7 feature map"),
    (["--layer", "9", "--channel", "0", "--position", "0,0"], "position must be None"),
])
def test_project_errors(tmp_path, capsys, args, message):
    code = cli.main(["project", "--image", "test:0", "--out", str(tmp_path / "p.png")]
                    + args)
    assert code == 2
    assert message in capsys.readouterr().err


def test_project_bad_image(tmp_path, capsys):
    code = cli.main(["project", "--image", str(tmp_path / "missing.jpg"), "--layer", "1",
                     "--channel", "0", "--out", str(tmp_path / "p.png")])
    assert code == 2
    assert "image file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["project", "--image", "test:0", "--layer", "1", "--channel", "0",
                  "--rule", "saliency", "--out", str(tmp_path / "p.png")])


def test_train_command(tmp_path, capsys):
    out = tmp_path / "tiny.npz"
    code = cli.main(["train", "--epochs", "1", "--n-train", "128", "--out", str(out),
                     "--no-progress"])
    assert code == 0
    assert "test accuracy" in capsys.readouterr().out
    assert nn.load(out).input_shape == (3, 32, 32)
