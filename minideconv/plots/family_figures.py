"""Figures of the attribution family (``minideconv.attribution``): one map of a class logit
beside its image (``attribution_figure``, for ``minideconv project --method``), and every
method on one image (``family_figure``, for ``minideconv demo``).

A map of pixel space (C, H, W) is signed and drawn by the one convention
(``style.signed_rgb``): centred on zero on its own scale, mid-grey = 0, the strongest 1 %
saturate — the methods' magnitudes differ by orders of magnitude, so the panels compare
patterns.  A coarse map (H′, W′) — Grad-CAM's, at its layer's resolution, ≥ 0 — is drawn
over the image in ``UNSIGNED`` (viridis), each of its cells stretched over the share of
the image it stands for (``extent``), not resampled.
"""

from __future__ import annotations

import textwrap

import numpy as np

from .figures import GREY_IS_ZERO, SUPTITLE_SIZE, TITLE_SIZE
from .style import UNSIGNED, as_rgb, colorbar, pyplot, signed_rgb

__all__ = ["draw_attribution", "attribution_figure", "family_figure", "COARSE_ALPHA"]

#: Opacity of a coarse map drawn over its image.
COARSE_ALPHA = 0.6


def _bare(ax, title=None, size=TITLE_SIZE):
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=size)


def draw_attribution(ax, image, amap, title=None, size=TITLE_SIZE):
    """One map on ``ax``: (C, H, W) as a signed pixel-space map (mid-grey = 0), or a
    coarse (H′, W′) map over the image (C, H, W), its cells covering the image's extent.
    Returns the coarse map's ``AxesImage`` (for a colour bar), or None."""
    amap = np.asarray(amap)
    if amap.ndim == 3:
        ax.imshow(signed_rgb(amap), interpolation="nearest")
        _bare(ax, title, size)
        return None
    if amap.ndim != 2:
        raise ValueError(f"amap must be a pixel-space map (C, H, W) or a coarse map "
                         f"(H', W'), got shape {amap.shape}")
    height, width = image.shape[1:]
    ax.imshow(as_rgb(image), interpolation="nearest")
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    top = float(amap.max()) if amap.size and amap.max() > 0 else 1.0
    shown = ax.imshow(amap, cmap=UNSIGNED, vmin=0, vmax=top, alpha=COARSE_ALPHA,
                      extent=extent, interpolation="nearest")
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    _bare(ax, title, size)
    return shown


def attribution_figure(image, amap, title, map_title="map", width=72):
    """The image (C, H, W) in [0, 1] and one attribution map of it, side by side (a coarse
    map over the image, with a colour bar); each line of ``title`` wrapped at ``width``
    characters."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.9), layout="constrained")
    axes[0].imshow(as_rgb(image), interpolation="nearest")
    _bare(axes[0], "input")
    coarse = draw_attribution(axes[1], image, amap)
    if coarse is None:
        _bare(axes[1], f"{map_title} ({GREY_IS_ZERO})")
    else:
        _bare(axes[1], f"{map_title} ({amap.shape[0]}×{amap.shape[1]}, over the input)")
        colorbar(axes[1], coarse)
    lines = [textwrap.fill(line, width) for line in title.splitlines()]
    fig.suptitle("\n".join(lines), fontsize=SUPTITLE_SIZE)
    return fig


def family_figure(image, maps, title, notes=None, cols=4, wrap=30):
    """The image first, then one panel per method: ``maps`` maps a method's name to its
    map of that image, in the order to show them (pixel-space or coarse, as
    ``draw_attribution``); ``notes`` (name → one line, e.g. ``attribution.describe``)
    are written small under each name."""
    plt = pyplot()
    n = 1 + len(maps)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.75 * rows + 0.8),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    panels = [("input", None)] + list(maps.items())
    for ax, (name, amap) in zip(axes.flat, panels):
        ax.axis("on")
        note = (notes or {}).get(name)
        label = name if not note else f"{name}\n" + textwrap.fill(note, wrap)
        if amap is None:
            ax.imshow(as_rgb(image), interpolation="nearest")
            _bare(ax, label, TITLE_SIZE - 1)
        else:
            draw_attribution(ax, image, amap, label, TITLE_SIZE - 1)
    fig.suptitle(f"{title}\npixel-space maps each on its own scale, centred on 0 "
                 f"({GREY_IS_ZERO}); coarse maps (viridis, ≥ 0) over the input",
                 fontsize=SUPTITLE_SIZE)
    return fig
