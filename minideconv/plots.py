"""Figures for the CLI and the lessons (matplotlib; works headless with MPLBACKEND=Agg).

How projections are shown.  A projection is signed (``minideconv.visualize``), so every
projection tile is drawn *symmetric about zero*, each tile on its own scale s:

    shown = clip(0.5 + p / (2 s), 0, 1)      (all three colour channels together)

with s the 99th percentile of |p| over the tile's non-zero values, so 0 is mid-grey, the
strongest 1 % saturate to black or full colour, and the colour balance between R, G and B
is kept.  (A plain s = max|p| lets one extreme pixel turn the rest of the tile grey.)
Tiles are scaled one by one because only their pattern is compared — magnitudes differ
by orders of magnitude between rules and layers.  Images are drawn pixel for pixel (no
smoothing) with square pixels.
"""

from __future__ import annotations

import numpy as np


def _pyplot():
    import matplotlib.pyplot as plt
    return plt


def symmetric(p, percentile=99.0):
    """(C, H, W) signed projection → (H, W, C) in [0, 1]: 0 ↦ 0.5, ±s ↦ 0 / 1, with
    s the ``percentile`` of |p| over its non-zero entries (100: s = max|p|)."""
    magnitude = np.abs(p[p != 0])
    scale = np.percentile(magnitude, percentile) if magnitude.size else 0.0
    shown = 0.5 + p / (2 * scale) if scale > 0 else np.full_like(p, 0.5)
    return np.clip(shown, 0, 1).transpose(1, 2, 0)


OUTSIDE = 0.8       # grey level of patch pixels that lie outside the image


def as_rgb(image, inside=None):
    """(C, H, W) image in [0, 1] → (H, W, C) for ``imshow``; pixels where ``inside`` is
    False are drawn light grey (``OUTSIDE``)."""
    rgb = np.clip(image, 0, 1).transpose(1, 2, 0)
    if inside is not None:
        rgb = np.where(inside[..., None], rgb, OUTSIDE)
    return rgb


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
        ax.set_title(title, fontsize=9)


def _window_box(ax, window, color="yellow"):
    """Outline a half-open pixel window (r0, r1, c0, c1) on an imshow axis, clipped to
    the image so that all four sides show."""
    from matplotlib.patches import Rectangle
    height, width = ax.images[0].get_array().shape[:2]
    r0, r1, c0, c1 = window
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, height), min(c1, width)
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False,
                           edgecolor=color, linewidth=1.5, clip_on=False, zorder=5))


def feature_grid(features, title, cols=3):
    """Zeiler & Fergus Figure 2 for one layer.

    ``features`` is a list of ``(channel, TopPatches)``; for each feature, the projections
    of its top-k activations (left, 3×3) beside the image patches under them (right)."""
    plt = _pyplot()
    rows = -(-len(features) // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.0 * 2 * cols, 2.2 * rows + 0.9),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for f, (channel, top) in enumerate(features):
        r, q = divmod(f, cols)
        left, right = axes[r, 2 * q], axes[r, 2 * q + 1]
        projections = np.stack([symmetric(p) for p in top.projections])
        patches = np.stack([as_rgb(p, inside) for p, inside in zip(top.patches, top.inside)])
        _image_axis(left, mosaic(projections))
        _image_axis(right, mosaic(patches))
        left.axis("on")
        right.axis("on")
        left.set_title(f"feature {channel}: projections", fontsize=9, loc="left")
        right.set_title(f"patches (top {top.values[0]:.3g})", fontsize=9, loc="left")
    size = features[0][1].patches.shape[-1]
    fig.suptitle(f"{title}\nthe 9 strongest activations of each feature: deconvnet "
                 f"projections (left; grey = 0) and the {size}×{size} receptive-field "
                 "patches (right; light grey = outside the image)", fontsize=10)
    return fig


def compare_rules(image, projections, title, window=None):
    """The input, then one panel per rule: ``projections`` maps a rule name to its
    (C, H, W) projection of the same activation."""
    plt = _pyplot()
    n = 1 + len(projections)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.4), layout="constrained")
    _image_axis(axes[0], as_rgb(image), "input")
    if window is not None:
        _window_box(axes[0], window)
    notes = {"deconvnet": "ReLU: max(r, 0)", "backprop": "ReLU: r·[x>0] (gradient)",
             "guided": "ReLU: max(r, 0)·[x>0]"}
    for ax, (rule, p) in zip(axes[1:], projections.items()):
        _image_axis(ax, symmetric(p), f"{rule}\n{notes.get(rule, '')}")
    fig.suptitle(title + "\n(each panel symmetric about 0: grey = 0; yellow box = the unit's "
                         "receptive field, clipped to the image)", fontsize=10)
    return fig


def projection_figure(image, projection, title, window=None):
    """One image and one projection, side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(5.6, 3.5), layout="constrained")
    _image_axis(axes[0], as_rgb(image), "input")
    if window is not None:
        _window_box(axes[0], window)
    _image_axis(axes[1], symmetric(projection), "projection (grey = 0)")
    fig.suptitle(title, fontsize=10)
    return fig


def occlusion_figure(image, scores, stride, title, score_label, baseline=None):
    """The image, the score map as the grey square moves (aligned with the image), and
    the map over the image."""
    plt = _pyplot()
    height, width = image.shape[1:]
    rows, cols = scores.shape
    extent = (-0.5, cols * stride - 0.5, rows * stride - 0.5, -0.5)
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.6), layout="constrained")
    _image_axis(axes[0], as_rgb(image), "input")
    _image_axis(axes[1], scores, "score with the square centred here", cmap="viridis",
                extent=extent)
    axes[1].set_xlim(-0.5, width - 0.5)
    axes[1].set_ylim(height - 0.5, -0.5)
    colourbar = fig.colorbar(axes[1].images[0], ax=axes[1], fraction=0.046, pad=0.04)
    colourbar.set_label(score_label, fontsize=8)
    if baseline is not None:
        colourbar.ax.axhline(baseline, color="red", linewidth=2)
    _image_axis(axes[2], as_rgb(image), "overlay (dark = score drops)")
    axes[2].imshow(scores, cmap="gray", alpha=0.6, extent=extent, interpolation="nearest")
    axes[2].set_xlim(-0.5, width - 0.5)
    axes[2].set_ylim(height - 0.5, -0.5)
    fig.suptitle(title, fontsize=10)
    return fig


def filters_figure(weight, title, cols=8):
    """Layer-1 filters (C_out, 3, kh, kw) as small RGB images, each symmetric about 0."""
    plt = _pyplot()
    k = weight.shape[0]
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.15 * cols, 1.3 * rows + 0.8),
                             squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < k:
            _image_axis(ax, symmetric(weight[i]), f"{i}")
            ax.axis("on")
    fig.suptitle(title, fontsize=10)
    return fig


def save(fig, path, dpi=150):
    """Write ``fig`` to ``path`` and close it.  A figure laid out by matplotlib (these are
    "constrained") already fits its canvas; any other is cropped to its contents."""
    tight = None if fig.get_layout_engine() is not None else "tight"  # a second render
    fig.savefig(path, dpi=dpi, bbox_inches=tight)
    _pyplot().close(fig)
    return path
