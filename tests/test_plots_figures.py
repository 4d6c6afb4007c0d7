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


def test_a_one_channel_image_and_map_are_drawn_in_grey():
    """A grey network's image and projection are drawn grey (R = G = B), as the captions
    ('grey = 0') say, not through imshow's default colour map."""
    rng = np.random.default_rng(0)
    image, projection = rng.random((1, 6, 7)), rng.standard_normal((1, 6, 7))
    for rgb, expected in [(plots.as_rgb(image), image[0]),
                          (plots.signed_rgb(projection, limit=3.0),
                           np.clip(0.5 + projection[0] / 6.0, 0, 1))]:
        assert rgb.shape == (6, 7, 3)
        for channel in range(3):
            np.testing.assert_allclose(rgb[..., channel], expected)
    fig = plots.projection_figure(image, projection, "grey")
    drawn = [ax.get_images()[0].get_array() for ax in fig.axes]
    assert all(np.ndim(a) == 3 and a.shape[2] == 3 for a in drawn)   # no colour map
    plt.close(fig)


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


def test_compare_rules_boxes_every_panel_and_adds_rows():
    from matplotlib.patches import Rectangle
    image = np.full((3, 8, 8), 0.5)
    rng = np.random.default_rng(0)
    projections = {name: rng.standard_normal((3, 8, 8)) for name in rules.NAMES}
    other = {name: rng.standard_normal((3, 8, 8)) for name in rules.NAMES}
    fig = plots.compare_rules(image, projections, "title", window=(0, 4, 0, 4),
                              rows=[("least alike", image, other, (2, 6, 2, 6))])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 * (1 + len(rules.NAMES))
    assert all(any(isinstance(a, Rectangle) for a in ax.patches) for ax in panels)
    assert [panels[0].get_ylabel(), panels[1 + len(rules.NAMES)].get_ylabel()] == \
        ["this unit", "least alike"]
    with pytest.raises(ValueError, match="rules"):
        plots.compare_rules(image, projections, "t", rows=[("x", image, {"guided": image},
                                                             None)])
    plt.close("all")


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
    users = [*sorted((PACKAGE.parent / "cli").glob("*.py")),
             *sorted((PACKAGE.parents[1] / "lessons").glob("*.py"))]
    for user in users:
        text = user.read_text()
        assert "plots._" not in text and "lesson_plots" not in text, user.name


# --------------------------------------------------------------------------- inversion

def _colorbars(fig):
    """The colour-bar axes of a figure (matplotlib labels them '<colorbar>')."""
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _saved_png(fig, path):
    plots.save(fig, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, (path.name, len(data))
    return path


def test_inversion_figure(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (3, 12, 12))
    small, large = 0.01 * rng.standard_normal(image.shape), rng.standard_normal(image.shape)
    panels = [plots.InversionPanel("layer 0", image + small, rng.standard_normal(image.shape),
                                   "ch 1 at (2, 3)", 0.0074, 4.5e-4, window=(0, 5, 1, 6)),
              plots.InversionPanel("layer 5", image + large, rng.standard_normal(image.shape),
                                   "ch 7 at (0, 1)", 0.14, 0.36)]
    fig = plots.inversion_figure(image, panels, "the title", rule="guided")
    tiles = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(tiles) == 2 * 4 and len(fig.axes) == 2 * 4 + 1
    assert fig.get_suptitle() == "the title"
    assert [ax.get_ylabel() for ax in tiles[::4]] == ["layer 0", "layer 5"]
    assert tiles[1].get_title().endswith("feature error 0.74 %\nimage error 0.045 %")
    assert tiles[5].get_title() == "feature error 14 %\nimage error 36 %"
    assert tiles[3].get_title().startswith("guided projection") and \
        tiles[3].get_title().endswith("ch 1 at (2, 3)")
    assert tiles[7].get_title() == "ch 7 at (0, 1)"
    # the unit's field is boxed on the image and on the projection, where it is given
    assert [len(ax.patches) for ax in tiles] == [1, 0, 0, 1, 0, 0, 0, 0]
    # one colour bar, for x̂ − x₀: one scale over both rows, set by the larger difference
    (bar,) = _colorbars(fig)
    limit = plots.symmetric_limit(small, large, percentile=plots.PROJECTION_PERCENTILE)
    assert limit > 10 * plots.symmetric_limit(small, percentile=plots.PROJECTION_PERCENTILE)
    assert bar.get_xlim() == pytest.approx((-limit, limit))          # horizontal, ±limit
    assert bar.get_xlabel().startswith("x̂ − x₀ in each colour channel")
    # each projection on its own scale, printed under it
    for tile, panel in ((tiles[3], panels[0]), (tiles[7], panels[1])):
        own = plots.symmetric_limit(panel.projection, percentile=plots.PROJECTION_PERCENTILE)
        assert tile.get_xlabel() == f"full colour at ±{own:.2g}"
        np.testing.assert_allclose(tile.get_images()[0].get_array(),
                                   plots.signed_rgb(panel.projection, limit=own))
    np.testing.assert_allclose(tiles[2].get_images()[0].get_array(),
                               plots.signed_rgb(small, limit=limit))
    np.testing.assert_allclose(tiles[6].get_images()[0].get_array(),
                               plots.signed_rgb(large, limit=limit))
    _saved_png(fig, tmp_path / "inversion.png")
    with pytest.raises(ValueError, match="at least one"):
        plots.inversion_figure(image, [], "no rows")


def test_inversion_losses_figure(tmp_path):
    losses = {"layer 0": [1.0, 1e-2, 1e-5, 0.0], "layer 7": np.geomspace(1.0, 0.05, 30)}
    fig = plots.inversion_losses_figure(losses, "E during L-BFGS-B")
    (ax,) = fig.axes
    assert not _colorbars(fig)
    assert ax.get_yscale() == "log" and ax.get_title() == "E during L-BFGS-B"
    assert ax.get_xlabel() == "L-BFGS-B iteration k"
    assert ax.get_ylabel() == "E(x) after k steps"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(losses)
    first, second = ax.get_lines()
    assert first.get_xdata().tolist() == [0, 1, 2, 3] and len(second.get_xdata()) == 30
    assert first.get_ydata()[:3].tolist() == [1.0, 1e-2, 1e-5]
    assert 0 < first.get_ydata()[3] <= 1e-300            # E = 0 is drawn at the bottom
    _saved_png(fig, tmp_path / "losses.png")


# --------------------------------------------------------------------------- sanity

def _randomization_result(spearman, zero_steps=(), steps=("trained", "layer 3 (Conv2d)",
                                                            "layer 0 (Conv2d)")):
    """A RandomizationResult with the given signed rank correlations (the other two
    measures follow from it) and zero maps at ``zero_steps``."""
    from minideconv.visualize import sanity
    n = len(steps)
    maps = np.ones((n, 1, 4, 4))
    maps[list(zero_steps)] = 0.0
    spearman = np.asarray(spearman, dtype=float)
    return sanity.RandomizationResult(
        steps=tuple(steps), randomized=tuple(() if k == 0 else (0,) for k in range(n)),
        maps=maps, activations=np.ones(n), spearman=spearman,
        spearman_abs=np.abs(spearman), ssim=spearman / 2, layer=4, channel=1,
        position=(0, 0), window=(0, 4, 0, 4), rule="deconvnet", mode="cascade",
        where="backward", seed=0)


def test_randomization_summary_figure(tmp_path):
    from minideconv.plots.sanity_figures import METRICS
    deconvnet = [_randomization_result([1.0, s, s / 2]) for s in (0.2, 0.4, 0.9, 0.5)]
    backprop = [_randomization_result([1.0, -s, 0.0], zero_steps=[2] if s >= 0.3 else [])
                for s in (0.1, 0.3, 0.5)]
    fig = plots.randomization_summary_figure({"deconvnet": deconvnet, "backprop": backprop})
    assert len(fig.axes) == len(METRICS) == 3 and not _colorbars(fig)
    assert [ax.get_title() for ax in fig.axes] == list(METRICS.values())
    assert fig.get_suptitle() == "Median over 4 images (band: 25th to 75th percentile)"
    signed = fig.axes[0]
    lines = [line for line in signed.get_lines() if line.get_marker() == "o"]
    assert [line.get_label() for line in lines] == ["deconvnet", "backprop"]
    np.testing.assert_allclose(lines[0].get_ydata(), [1.0, 0.45, 0.225])   # the medians
    np.testing.assert_allclose(lines[1].get_ydata(), [1.0, -0.3, 0.0])
    assert len(signed.collections) == 2                  # one interquartile band per line
    np.testing.assert_allclose(fig.axes[1].get_lines()[1].get_ydata(), [1.0, 0.45, 0.225])
    # the tick labels read off the first line's results: all its maps are nonzero
    assert [t.get_text() for t in signed.get_xticklabels()] == \
        ["trained", "layer 3", "layer 0"]
    _saved_png(fig, tmp_path / "summary.png")

    rows = {"where = backward": {"backprop": backprop}, "where = network":
            {"deconvnet": deconvnet}}
    fig = plots.randomization_summary_figure(rows, title="two rows")
    assert len(fig.axes) == 2 * 3 and fig.get_suptitle() == "two rows"
    assert fig.axes[3].get_title() == "where = network: signed rank correlation"
    # 2 of backprop's 3 maps are zero at the last step: the tick says how many are not
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == \
        ["trained\n3/3 ≠ 0", "layer 3\n3/3 ≠ 0", "layer 0\n1/3 ≠ 0"]
    _saved_png(fig, tmp_path / "summary_rows.png")

    # a zero map scores 0: left out of the median by default, counted as 0 on request
    zeros = [_randomization_result([1.0, 0.0 if k < 2 else s], zero_steps=[1] if k < 2
                                   else [], steps=("trained", "layer 0"))
             for k, s in enumerate((0.5, 0.6, 0.7, 0.8, 0.9))]
    median = {}
    for mode in ("exclude", "count"):
        fig = plots.randomization_summary_figure({"deconvnet": zeros}, zero_maps=mode)
        median[mode] = [line for line in fig.axes[0].get_lines()
                        if line.get_marker() == "o"][0].get_ydata()
        plt.close(fig)
    np.testing.assert_allclose(median["exclude"], [1.0, 0.8])     # of 0.7, 0.8, 0.9
    np.testing.assert_allclose(median["count"], [1.0, 0.7])       # of 0, 0, 0.7, 0.8, 0.9
    with pytest.raises(ValueError, match="zero_maps"):
        plots.randomization_summary_figure({"deconvnet": zeros}, zero_maps="drop")

    with pytest.raises(ValueError, match="share the steps"):
        plots.randomization_summary_figure(
            {"mixed": [deconvnet[0], _randomization_result([1.0, 0.5], steps=("trained",
                                                                               "layer 0"))]})
