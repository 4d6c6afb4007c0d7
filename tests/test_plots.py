"""minideconv.plots: one convention for signed maps, one window box, one save; headless."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from minideconv import plots, rules  # noqa: E402

PACKAGE = Path(plots.__file__).parent


def test_symmetric_limit():
    assert plots.symmetric_limit(np.array([-3.0, 1.0]), np.array([2.0])) == 3.0
    assert plots.symmetric_limit(np.zeros(4)) == 1.0                 # all zero: drawn as 0
    assert plots.symmetric_limit(np.array([np.nan, -2.0, np.inf])) == 2.0
    values = np.r_[np.zeros(50), np.arange(1.0, 101.0)]               # zeros are ignored
    assert plots.symmetric_limit(values, percentile=50) == pytest.approx(50.5)


def test_signed_rgb_is_centred_on_zero():
    p = np.zeros((3, 4, 5))
    p[0, 0, 0], p[1, 1, 1] = 2.0, -2.0
    shown = plots.signed_rgb(p, percentile=100)
    assert shown.shape == (4, 5, 3)
    assert shown[2, 2].tolist() == [0.5, 0.5, 0.5]                   # 0 is mid-grey
    assert shown[0, 0, 0] == 1.0 and shown[1, 1, 1] == 0.0           # ±m saturate
    assert np.all(plots.signed_rgb(np.zeros((3, 2, 2))) == 0.5)


def test_one_channel_maps_share_the_limit_and_mark_clipping():
    fig, ax = plt.subplots()
    values = np.array([[-1.0, 0.5], [0.25, 4.0]])
    image = plots.imshow_signed(ax, values, limit=2.0)
    assert image.get_clim() == (-2.0, 2.0) and image.get_cmap().name == plots.SIGNED
    bar = plots.colorbar(ax, image, "value")
    assert bar.extend == "max"                                       # 4 > 2: arrow end
    assert plots.imshow_signed(ax, values).get_clim() == (-4.0, 4.0)
    plt.close(fig)


def test_draw_window_box_is_clipped_to_the_image():
    fig, ax = plt.subplots()
    ax.imshow(np.zeros((32, 32, 3)))
    box = plots.draw_window_box(ax, (-5, 18, 20, 43))
    assert (box.get_x(), box.get_y()) == (19.5, -0.5)
    assert (box.get_width(), box.get_height()) == (12, 18)
    plt.close(fig)


def test_compare_rules_titles_come_from_the_rule_table():
    image = np.full((3, 8, 8), 0.5)
    rng = np.random.default_rng(0)
    projections = {name: rng.standard_normal((3, 8, 8)) for name in rules.NAMES}
    fig = plots.compare_rules(image, projections, "title", window=(0, 4, 0, 4))
    titles = [ax.get_title() for ax in fig.axes[1:]]
    assert titles == [f"{name}\nr = {rules.RULES[name].formula}" for name in rules.NAMES]
    plt.close(fig)


def test_save(tmp_path):
    fig, _ = plt.subplots(layout="constrained")
    path = plots.save(fig, tmp_path / "f.png", close=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.fignum_exists(fig.number)                    # left open for sphinx-gallery
    plots.save(fig, tmp_path / "g.png")
    assert not plt.fignum_exists(fig.number)


def test_save_lesson_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIDECONV_LESSON_OUTPUT", str(tmp_path))
    monkeypatch.delenv("MINIDECONV_LESSON_THUMBNAILS", raising=False)
    fig, _ = plt.subplots(layout="constrained")
    path = plots.save_lesson_figure(fig, "01_x", thumbnail="01")
    assert path == tmp_path / "01_x.png" and path.exists()
    assert not (tmp_path / "thumb_01.png").exists()
    assert capsys.readouterr().out == f"saved {path}\n"
    plt.close(fig)


def test_one_package_and_no_private_names_across_modules():
    with pytest.raises(ImportError):
        importlib.import_module("minideconv.lesson_plots")
    for module in PACKAGE.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{module.name} imports {private}"
    for name in plots.__all__:
        assert hasattr(plots, name), name
    users = [PACKAGE.parent / "cli.py", *sorted((PACKAGE.parents[1] / "lessons").glob("*.py"))]
    for user in users:
        text = user.read_text()
        assert "plots._" not in text and "lesson_plots" not in text, user.name
