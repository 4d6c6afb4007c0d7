"""Figures of feature inversion (``minideconv.visualize.invert``): the pre-image beside the
image and the deconvnet projection of the same activation.

Conventions (``plots.style``): images are drawn as they are (clipped to [0, 1]); every
signed map is centred on zero with ``signed_rgb`` (mid-grey = 0).  The differences
pre-image − image share one limit over all rows (they are in pixel units and comparable,
with a grey colour bar), the projections each have their own (``PROJECTION_PERCENTILE``:
they are compared by pattern only, their magnitudes differ by orders between layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .style import (CBAR_LABEL_SIZE, CBAR_TICK_SIZE, PROJECTION_PERCENTILE, as_rgb,
                    draw_window_box, pyplot, signed_rgb, symmetric_limit)

TITLE_SIZE = 10
SUPTITLE_SIZE = 12


@dataclass(frozen=True)
class InversionPanel:
    """One row of ``inversion_figure``: what was inverted and projected at one layer.

    ``label`` names the layer (e.g. ``"layer 2 (MaxPool2d)"``); ``preimage`` is the
    inversion's image (C, H, W); ``projection`` the projection of one activation of that
    layer (C, H, W); ``unit`` says which activation (e.g. ``"ch 5 at (3, 4)"``);
    ``window`` is its receptive field (r0, r1, c0, c1) or None; ``feature_error`` and
    ``image_error`` are the inversion's relative errors."""

    label: str
    preimage: np.ndarray
    projection: np.ndarray
    unit: str
    feature_error: float
    image_error: float
    window: Optional[Tuple[int, int, int, int]] = None


def _percent(value):
    """A share as a percentage with two significant digits, one format for all: 36 %,
    5.7 %, 0.75 %, 0.045 % (whole per cents from 100 % up)."""
    percent = 100 * float(value)
    return f"{percent:.0f} %" if percent >= 100 else f"{percent:.2g} %"


def _tile(ax, picture, title=None):
    ax.imshow(picture, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE)


def inversion_figure(image, panels: Sequence[InversionPanel], title: str,
                     rule: str = "deconvnet"):
    """One row per layer: the image (boxed: the projected unit's receptive field), the
    pre-image found from that layer's whole representation, the pre-image − image on
    one shared signed scale (its colour bar, in pixel units, at the bottom), and the
    ``rule`` projection of one activation of the same layer, on its own signed scale
    (printed under it)."""
    plt = pyplot()
    panels = list(panels)
    if not panels:
        raise ValueError("panels must hold at least one InversionPanel")
    rows = len(panels)
    fig, axes = plt.subplots(rows, 4, figsize=(9.6, 2.35 * rows + 1.6), squeeze=False,
                             layout="constrained")
    image = np.asarray(image, dtype=float)
    limit = symmetric_limit(*[p.preimage - image for p in panels],
                            percentile=PROJECTION_PERCENTILE)
    for row, (panel, line) in enumerate(zip(panels, axes)):
        _tile(line[0], as_rgb(image))
        if panel.window is not None:
            draw_window_box(line[0], panel.window)
        _tile(line[1], as_rgb(panel.preimage),
              f"feature error {_percent(panel.feature_error)}\n"
              f"image error {_percent(panel.image_error)}")
        _tile(line[2], signed_rgb(panel.preimage - image, limit=limit))
        scale = symmetric_limit(panel.projection, percentile=PROJECTION_PERCENTILE)
        _tile(line[3], signed_rgb(panel.projection, limit=scale), panel.unit)
        line[3].set_xlabel(f"full colour at ±{scale:.2g}", fontsize=TITLE_SIZE - 1)
        line[0].set_ylabel(panel.label, fontsize=TITLE_SIZE + 1)
        if panel.window is not None:
            draw_window_box(line[3], panel.window)
    for ax, head in zip(axes[0], ("image x₀\n(box: the projected unit's field)",
                                  "pre-image x̂", "x̂ − x₀\n(grey = 0, one scale)",
                                  f"{rule} projection\n(grey = 0, own scale)")):
        ax.set_title(f"{head}\n{ax.get_title()}" if ax.get_title() else head,
                     fontsize=TITLE_SIZE)
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    bar = fig.colorbar(ScalarMappable(Normalize(-limit, limit), "gray"), ax=axes[-1, 2],
                       orientation="horizontal", fraction=0.08, pad=0.04, extend="both")
    bar.ax.tick_params(labelsize=CBAR_TICK_SIZE)
    bar.set_label("x̂ − x₀ in each colour channel (its intensity: black −, white +;\n"
                  "a pixel's colour mixes its three channels)", fontsize=CBAR_LABEL_SIZE)
    fig.suptitle(title, fontsize=SUPTITLE_SIZE)
    return fig


def inversion_losses_figure(losses: dict, title: str, ylabel: str = "E(x) after k steps"):
    """``losses`` maps a label to a sequence of objective values per iteration
    (``Inversion.losses``); one log-scale curve each."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    for label, values in losses.items():
        values = np.asarray(values, dtype=float)
        ax.semilogy(np.arange(len(values)), np.maximum(values, 1e-300), label=label)
    ax.set_xlabel("L-BFGS-B iteration k")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(title, fontsize=TITLE_SIZE + 1)
    return fig


__all__ = ["InversionPanel", "inversion_figure", "inversion_losses_figure"]
