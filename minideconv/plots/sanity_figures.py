"""Figures of the sanity experiments (``minideconv.visualize.sanity``,
``minideconv.attribution.cascade``): randomization cascades and switch swaps, in the style
of Adebayo et al. (2018), Fig. 2 — the maps along the cascade in a row per method, the
similarity curves below.

Every map is a signed pixel-space projection cropped to the unit's receptive field and
drawn centred on zero on its own scale (``style.signed_rgb``, ±m with m the 99th
percentile of |v|: mid-grey = 0): redrawn weights change a projection's magnitude by
orders of magnitude, so the tiles are compared by pattern, and the numbers are read off
the curves (and the tiles' captions).  One-channel maps use ``style.imshow_signed``.
"""

from __future__ import annotations

import numpy as np

from .style import (PROJECTION_PERCENTILE, SIGNED, as_rgb, draw_window_box, pyplot,
                    signed_rgb, symmetric_limit)

__all__ = ["randomization_figure", "randomization_summary_figure",
           "switch_swap_figure", "family_cascade_figure"]

#: The similarity measures of a ``RandomizationResult``, and how the figures name them.
METRICS = {"spearman": "signed rank correlation",
           "spearman_abs": "rank correlation of |map|",
           "ssim": "SSIM"}

TITLE_SIZE = 10
SUPTITLE_SIZE = 12
GREY_IS_ZERO = "each map cropped to the receptive field, on its own scale, grey = 0"


def _crop(a, window):
    r0, r1, c0, c1 = window
    return a[..., r0:r1, c0:c1]


def _bare(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _show_map(ax, p):
    """A signed (C, H, W) map centred on zero: RGB for three channels, else the sum over
    channels on the diverging map."""
    p = np.asarray(p, dtype=float)
    if p.shape[0] == 3:
        ax.imshow(signed_rgb(p), interpolation="nearest")
    else:
        plane = p.sum(axis=0)
        m = symmetric_limit(plane, percentile=PROJECTION_PERCENTILE)
        ax.imshow(plane, cmap=SIGNED, vmin=-m, vmax=m, interpolation="nearest")
    _bare(ax)


def _show_image(ax, image, window=None):
    image = np.asarray(image, dtype=float)
    if image.shape[0] == 3:
        ax.imshow(as_rgb(image), interpolation="nearest")
    else:
        ax.imshow(image.mean(axis=0), cmap="gray", interpolation="nearest")
    if window is not None:
        draw_window_box(ax, window)
    _bare(ax)


def _as_groups(results):
    """{label: result} from one result, a dict, or a sequence (labelled by rule)."""
    if hasattr(results, "steps"):
        return {results.rule: results}
    if isinstance(results, dict):
        return dict(results)
    return {r.rule: r for r in results}


def _step_ticks(steps):
    """Short tick labels: 'trained', 'layer 6', ..."""
    return [s if s == "trained" else s.split(" (")[0] for s in steps]


def _on_ticks(steps, lines):
    """Step labels, with "k/n ≠ 0" under each where some maps are zero (the unit is off;
    such a map counts as similarity 0) — the counts of the first label's results."""
    results = next(iter(lines.values()))
    nonzero = np.sum([[np.any(m) for m in r.maps] for r in results], axis=0)
    ticks = _step_ticks(steps)
    if np.all(nonzero == len(results)):
        return ticks
    return [f"{t}\n{k}/{len(results)} ≠ 0" for t, k in zip(ticks, nonzero)]


def _curves(axes, groups, steps, cascade):
    for ax, (metric, name) in zip(axes, METRICS.items()):
        ax.axhline(0, color="0.6", linewidth=0.8)
        for label, values in groups.items():
            ax.plot(range(len(steps)), values[metric], marker="o", label=label)
        ax.set_xticks(range(len(steps)))
        ax.set_xticklabels(_step_ticks(steps), fontsize=9)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(name, fontsize=TITLE_SIZE)
        ax.grid(alpha=0.3)
        ax.set_xlabel("randomized from the top down to" if cascade else
                      "the one layer randomized", fontsize=9)
    axes[0].set_ylabel("similarity with the trained map")
    axes[0].legend(fontsize=9, loc="lower left")


def randomization_figure(results, image, title=None):
    """The maps of one or more ``RandomizationResult`` (one row each: a dict
    ``{label: result}``, a list labelled by rule, or one result), the image with the unit's
    receptive field boxed, and below, the three similarity curves with one line per row.
    The results must share their steps and window (the same unit, seed and mode)."""
    groups = _as_groups(results)
    first = next(iter(groups.values()))
    for label, r in groups.items():
        if r.steps != first.steps or r.window != first.window:
            raise ValueError(f"results must share their steps and window: {label!r} has "
                             f"{r.steps} / {r.window}, not {first.steps} / {first.window}")
    steps, window = first.steps, first.window
    cascade = first.mode == "cascade"
    plt = pyplot()
    rows, cols = len(groups), 1 + len(steps)
    fig = plt.figure(figsize=(1.9 * cols + 0.6, 1.95 * rows + 3.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.95 * rows + 0.5, 3.1])
    axes = np.atleast_2d(top.subplots(rows, cols, squeeze=False))
    for ax in axes[:, 0]:
        ax.axis("off")
    axes[0, 0].axis("on")
    _show_image(axes[0, 0], image, window)
    axes[0, 0].set_title("image\nbox: receptive field", fontsize=TITLE_SIZE)
    if rows > 1:
        axes[1, 0].axis("on")
        _show_image(axes[1, 0], _crop(image, window))
        axes[1, 0].set_title("the patch", fontsize=TITLE_SIZE)
    for row, (label, r) in enumerate(groups.items()):
        for k, m in enumerate(r.maps):
            ax = axes[row, 1 + k]
            _show_map(ax, _crop(m, window))
            if row == 0:
                head = "trained" if k == 0 else \
                    (("down to " if cascade else "only ") + steps[k].split(" (")[0])
                ax.set_title(head, fontsize=TITLE_SIZE)
            caption = f"ρ = {r.spearman[k]:+.2f}, SSIM {r.ssim[k]:.2f}"
            if not np.any(_crop(m, window)):
                caption = "zero map (the unit is off)"
            ax.set_xlabel(caption, fontsize=9)
        axes[row, 1].set_ylabel(label, fontsize=TITLE_SIZE + 1)
    how = "on the way back only (the trained switches and masks)" \
        if first.where == "backward" else "in the whole network (forward pass re-run)"
    head = (f"{'Cascading' if cascade else 'Independent'} randomization of layer "
            f"{first.layer}, channel {first.channel}, unit {first.position}\n"
            f"weights redrawn {how}")
    top.suptitle(f"{title or head}\n{GREY_IS_ZERO}; ρ: signed rank correlation with the "
                 "trained map", fontsize=SUPTITLE_SIZE)
    curve_axes = bottom.subplots(1, len(METRICS), sharey=True)
    _curves(curve_axes, {label: {m: getattr(r, m) for m in METRICS}
                         for label, r in groups.items()}, steps, cascade)
    return fig


def randomization_summary_figure(groups, title=None, zero_maps="exclude"):
    """Median (line) and interquartile range (band) of each similarity over many images.

    ``groups`` is ``{label: [RandomizationResult, ...]}`` (one line per label), or
    ``{row title: {label: [...]}}`` for one row of panels per experiment.  Within a row
    the results must share their steps.  A map that is zero (the redrawn network left
    the unit off) scores 0; ``zero_maps="exclude"`` (the default) leaves such maps out
    of each step's median and band, ``"count"`` counts them as 0.  Either way the tick
    labels say how many maps are ≠ 0 where some are not."""
    if zero_maps not in ("exclude", "count"):
        raise ValueError(f"zero_maps must be 'exclude' or 'count', got {zero_maps!r}")
    first_value = next(iter(groups.values()))
    nested = groups if isinstance(first_value, dict) else {None: groups}
    plt = pyplot()
    rows = len(nested)
    fig, axes = plt.subplots(rows, len(METRICS), figsize=(11.5, 3.3 * rows + 0.6),
                             sharey=True, squeeze=False, layout="constrained")
    for row, (row_title, lines) in enumerate(nested.items()):
        steps = next(iter(lines.values()))[0].steps
        cascade = next(iter(lines.values()))[0].mode == "cascade"
        for label, results in lines.items():
            if any(r.steps != steps for r in results):
                raise ValueError(f"groups: the results of {label!r} must share the steps "
                                 f"{steps}")
        for col, (metric, name) in enumerate(METRICS.items()):
            ax = axes[row, col]
            ax.axhline(0, color="0.6", linewidth=0.8)
            for label, results in lines.items():
                values = np.array([getattr(r, metric) for r in results], dtype=float)
                if zero_maps == "exclude":
                    nonzero = np.array([[np.any(m) for m in r.maps] for r in results])
                    values = np.where(nonzero, values, np.nan)
                low, mid, high = _percentiles(values)
                x = np.arange(len(steps))
                line, = ax.plot(x, mid, marker="o", label=f"{label}")
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.18)
            ax.set_xticks(range(len(steps)))
            ax.set_xticklabels(_on_ticks(steps, lines), fontsize=9)
            ax.set_ylim(-1.05, 1.05)
            ax.grid(alpha=0.3)
            ax.set_title(name if row_title is None else f"{row_title}: {name}",
                         fontsize=TITLE_SIZE)
            if row == rows - 1:
                ax.set_xlabel("randomized from the top down to" if cascade else
                              "the one layer randomized", fontsize=9)
        axes[row, 0].set_ylabel("similarity with the trained map")
        axes[row, 0].legend(fontsize=9, loc="lower left")
    n = len(next(iter(next(iter(nested.values())).values())))
    fig.suptitle(title or f"Median over {n} images (band: 25th to 75th percentile)",
                 fontsize=SUPTITLE_SIZE)
    return fig


def _percentiles(values):
    """25th, 50th and 75th percentiles over axis 0, ignoring NaN (NaN where a column has
    no value)."""
    out = np.full((3, values.shape[1]), np.nan)
    for k in range(values.shape[1]):
        column = values[:, k][~np.isnan(values[:, k])]
        if column.size:
            out[:, k] = np.percentile(column, [25, 50, 75])
    return out


def switch_swap_figure(image, other, projections, window, title=None, scores=None,
                       captions=None):
    """The switch swap for one unit: ``projections`` is ``{rule: (own, swapped)}`` — the
    projection with the image's own forward trace and with ``other``'s
    (``sanity.switch_swap``), cropped to ``window`` and each on its own scale; ``scores``,
    if given, ``{rule: sanity.Similarity}`` of swapped with own, captions the swapped
    tiles; ``captions``, if given, ``{rule: (under own, under swapped)}``, captions both
    tiles (after the score, if any)."""
    plt = pyplot()
    rows = max(len(projections), 2)
    fig, axes = plt.subplots(rows, 3, figsize=(7.8, 2.45 * rows + 1.0), squeeze=False,
                             layout="constrained")
    for ax in axes[:, 0]:
        ax.axis("off")
    for ax in axes[len(projections):, 1:].ravel():
        ax.axis("off")
    for ax, picture, name in ((axes[0, 0], image, "image"),
                              (axes[1, 0], other, "other image")):
        ax.axis("on")
        _show_image(ax, picture, window)
        ax.set_title(f"{name}\nbox: the unit's field", fontsize=TITLE_SIZE)
    for row, (rule, (own, swapped)) in enumerate(projections.items()):
        _show_map(axes[row, 1], _crop(own, window))
        _show_map(axes[row, 2], _crop(swapped, window))
        axes[row, 1].set_ylabel(rule, fontsize=TITLE_SIZE + 1)
        under = ["", ""]
        if scores is not None and rule in scores:
            s = scores[rule]
            under[1] = f"ρ with the left map {s.spearman:+.2f}, SSIM {s.ssim:.2f}"
        if captions is not None and rule in captions:
            under = [("\n".join(filter(None, (u, c))))
                     for u, c in zip(under, captions[rule])]
        axes[row, 1].set_xlabel(under[0], fontsize=8.5)
        axes[row, 2].set_xlabel(under[1], fontsize=8.5)
    axes[0, 1].set_title("the image's own trace", fontsize=TITLE_SIZE)
    axes[0, 2].set_title("the other image's trace", fontsize=TITLE_SIZE)
    fig.suptitle(title or "The switch swap: one unit of the image, seeded with its "
                 "activation,\npassed down through two forward traces", fontsize=SUPTITLE_SIZE)
    fig.supxlabel(GREY_IS_ZERO + "\na trace: the switches (deconvnet), the switches and "
                  "the ReLU masks (guided, backprop)", fontsize=9)
    return fig


def family_cascade_figure(result, image, title=None):
    """The maps of a ``attribution.cascade.FamilyCascade``: the image, then one row per
    method with its map at every step (trained, then redrawn from the top down to each
    layer; the whole image, each map on its own scale, grey = 0; a coarse map (h, w) as
    the method returned it), each captioned with its signed rank correlation and SSIM
    with the trained map; below, the three similarity curves with one line per
    method."""
    names, steps = result.names, result.steps
    plt = pyplot()
    rows, cols = len(names), 1 + len(steps)
    fig = plt.figure(figsize=(1.7 * cols + 0.6, 1.8 * rows + 3.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.8 * rows + 0.5, 3.1])
    axes = top.subplots(rows, cols, squeeze=False)
    for ax in axes[1:, 0]:
        ax.axis("off")
    _show_image(axes[0, 0], image)
    axes[0, 0].set_title(f"image\nclass {result.target}", fontsize=TITLE_SIZE)
    for row, name in enumerate(names):
        maps = result.maps[name]
        for k, m in enumerate(maps):
            ax = axes[row, 1 + k]
            _show_map(ax, m if m.ndim == 3 else m[None])
            if row == 0:
                ax.set_title("trained" if k == 0 else
                             "down to " + steps[k].split(" (")[0], fontsize=TITLE_SIZE)
            caption = (f"ρ = {result.spearman[name][k]:+.2f}, "
                       f"SSIM {result.ssim[name][k]:.2f}")
            ax.set_xlabel("zero map" if not np.any(m) else caption, fontsize=8.5)
        axes[row, 1].set_ylabel(name, fontsize=TITLE_SIZE + 1)
    top.suptitle(f"{title or 'Cascading randomization of the methods of one logit'}\n"
                 f"weights redrawn in the whole network (forward pass re-run), seed "
                 f"{result.seed}\neach map on its own scale, grey = 0; ρ: signed rank "
                 "correlation with the trained map", fontsize=SUPTITLE_SIZE)
    curve_axes = bottom.subplots(1, len(METRICS), sharey=True)
    _curves(curve_axes, {name: result.curves(name) for name in names}, steps, True)
    return fig
