"""The command line's figures (``minideconv demo`` and ``minideconv project``); lesson 7
draws them too.  Headless with ``MPLBACKEND=Agg``.

Every projection tile is a signed pixel-space map, drawn centred on zero on its own scale
(``style.signed_rgb``: mid-grey = 0, the strongest 1 % saturate): tiles are compared by
pattern only, and their magnitudes differ by orders of magnitude between rules and layers.
Each function returns the figure; ``style.save`` writes it.
"""

from __future__ import annotations

import numpy as np

from .. import rules
from .style import as_rgb, colorbar, draw_window_box, pyplot, signed_rgb

TITLE_SIZE = 9        # panel titles
SUPTITLE_SIZE = 10    # figure headlines

GREY_IS_ZERO = "grey = 0"


def mosaic(tiles, cols=3, gap=1, background=1.0):
    """(k, H, W, 3) tiles → one (rows·(H+gap)−gap, cols·(W+gap)−gap, 3) image,
    row-major, separated by ``gap`` pixels of ``background`` (white)."""
    k, h, w, c = tiles.shape
    rows = -(-k // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, c), background)
    for i, tile in enumerate(tiles):
        r, q = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = tile
    return out


def _image_axis(ax, picture, title=None, **kwargs):
    ax.imshow(picture, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE)


def rule_note(name) -> str:
    """What a rule does at each ReLU, from the rule table: 'r = max(g, 0)'."""
    return f"r = {rules.RULES[name].formula}"


def feature_grid(features, title, cols=3, rule="deconvnet"):
    """Zeiler & Fergus Figure 2 for one layer.

    ``features`` is a list of ``(channel, TopPatches)``; for each feature, the projections
    (``rule``) of its top-k activations (left, in a square-ish mosaic: 3×3 for k = 9)
    beside the image patches under them (right)."""
    plt = pyplot()
    rows = -(-len(features) // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.0 * 2 * cols, 2.2 * rows + 0.9),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    k = len(features[0][1].values)
    side = int(np.ceil(np.sqrt(k)))
    for f, (channel, top) in enumerate(features):
        r, q = divmod(f, cols)
        left, right = axes[r, 2 * q], axes[r, 2 * q + 1]
        projections = np.stack([signed_rgb(p) for p in top.projections])
        patches = np.stack([as_rgb(p, inside) for p, inside in zip(top.patches, top.inside)])
        _image_axis(left, mosaic(projections, cols=side))
        _image_axis(right, mosaic(patches, cols=side))
        left.axis("on")
        right.axis("on")
        left.set_title(f"feature {channel}: projections", fontsize=TITLE_SIZE, loc="left")
        right.set_title(f"patches (top {top.values[0]:.3g})", fontsize=TITLE_SIZE,
                        loc="left")
    height, width = features[0][1].patches.shape[-2:]
    fig.suptitle(f"{title}\nthe {k} strongest activations of each feature: {rule} "
                 f"projections (left; {GREY_IS_ZERO}) and the {height}×{width} "
                 "receptive-field patches (right; light grey = outside the image)",
                 fontsize=SUPTITLE_SIZE)
    return fig


def compare_rules(image, projections, title, window=None, rows=None, label=None):
    """The input, then one panel per rule: ``projections`` maps a rule name to its
    (C, H, W) projection of the same activation, in the order to show them; each panel
    is titled with the rule's formula from ``minideconv.rules``, and ``window`` (the
    unit's receptive field) is boxed on every panel.

    ``rows``, if given, adds more units below, one row each: a sequence of
    ``(label, image, projections, window)`` with the same rules in the same order; the
    rows are then labelled, the first by ``label`` (default ``"this unit"``)."""
    plt = pyplot()
    first = (label or "this unit") if rows else label
    lines = [(first, image, projections, window)] + list(rows or [])
    n = 1 + len(projections)
    fig, axes = plt.subplots(len(lines), n, figsize=(2.6 * n, 2.75 * len(lines) + 0.9),
                             squeeze=False, layout="constrained")
    for i, (row, (name, picture, maps, box)) in enumerate(zip(axes, lines)):
        if list(maps) != list(projections):
            raise ValueError(f"rows: every row must show the rules {list(projections)}, "
                             f"got {list(maps)}")
        _image_axis(row[0], as_rgb(picture), "input" if i == 0 else None)
        for ax, (rule, p) in zip(row[1:], maps.items()):
            _image_axis(ax, signed_rgb(p), f"{rule}\n{rule_note(rule)}" if i == 0 else None)
        if box is not None:
            for ax in row:
                draw_window_box(ax, box)
        if name:
            row[0].set_ylabel(name, fontsize=TITLE_SIZE)
    boxed = "; yellow box = the unit's receptive field" if window is not None else ""
    fig.suptitle(f"{title}\nat each ReLU: g = the signal from above, x = its forward input"
                 f"\n(each panel on its own scale, centred on 0: {GREY_IS_ZERO}{boxed})",
                 fontsize=SUPTITLE_SIZE)
    return fig


def projection_figure(image, projection, title, window=None):
    """One image and one projection, side by side (``window``: the unit's receptive
    field, boxed on the image)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(5.6, 3.5), layout="constrained")
    _image_axis(axes[0], as_rgb(image), "input")
    if window is not None:
        draw_window_box(axes[0], window)
    _image_axis(axes[1], signed_rgb(projection), f"projection ({GREY_IS_ZERO})")
    fig.suptitle(title, fontsize=SUPTITLE_SIZE)
    return fig


def occlusion_figure(image, scores, stride, title, score_label, baseline=None):
    """The image, the score map as the grey square moves (aligned with the image; a red
    line on the colour bar at ``baseline``, the score without the square), and the map
    over the image."""
    plt = pyplot()
    height, width = image.shape[1:]
    rows, cols = scores.shape
    extent = (-0.5, cols * stride - 0.5, rows * stride - 0.5, -0.5)
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.6), layout="constrained")
    _image_axis(axes[0], as_rgb(image), "input")
    _image_axis(axes[1], scores, "score with the square centred here", cmap="viridis",
                extent=extent)
    axes[1].set_xlim(-0.5, width - 0.5)
    axes[1].set_ylim(height - 0.5, -0.5)
    if baseline is not None:
        low, high = axes[1].images[0].get_clim()
        axes[1].images[0].set_clim(low, max(high, baseline))   # keep the red line on the bar
        score_label += "  (red: without the square)"
    bar = colorbar(axes[1], axes[1].images[0], score_label)
    if baseline is not None:
        bar.ax.axhline(baseline, color="red", linewidth=3)
    _image_axis(axes[2], as_rgb(image), "overlay (dark = score drops)")
    axes[2].imshow(scores, cmap="gray", alpha=0.6, extent=extent, interpolation="nearest")
    axes[2].set_xlim(-0.5, width - 0.5)
    axes[2].set_ylim(height - 0.5, -0.5)
    fig.suptitle(title, fontsize=SUPTITLE_SIZE)
    return fig


def filters_figure(weight, title, cols=8):
    """Layer-1 filters (C_out, 3, kh, kw) as small RGB images, each centred on zero on
    its own scale."""
    plt = pyplot()
    k = weight.shape[0]
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.15 * cols, 1.3 * rows + 0.8),
                             squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < k:
            _image_axis(ax, signed_rgb(weight[i]), f"{i}")
            ax.axis("on")
    fig.suptitle(title, fontsize=SUPTITLE_SIZE)
    return fig
