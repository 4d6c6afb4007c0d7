"""Plotting helpers shared by the lessons (``lessons/NN_*.py``).

Every lesson draws the same few kinds of picture — a matrix, a small signed image, a row
of images on one colour scale, a spectrum, singular values, 1-D signals — so they live
here once instead of being copied into every lesson.  They follow ``style``'s convention:
signed values centred on zero with ``SIGNED`` (RdBu_r, white = 0) from −m to +m, m the
largest |value| (``symmetric_limit``), nonnegative values with ``UNSIGNED`` (viridis),
square pixels without smoothing, a colour bar wherever the values matter (``colorbar``).

``setup()`` forces the non-interactive Agg backend (the lessons run headless), except
inside a Jupyter kernel where the inline backend is kept, and sets readable font sizes.
``save_lesson_figure()`` writes a PNG under ``output_dir()`` with ``style.save``:
``$MINIDECONV_LESSON_OUTPUT`` when set, else ``lessons/_output``.  Figures are left open
after saving so that sphinx-gallery can collect them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .style import SIGNED, UNSIGNED, colorbar, imshow_signed, save, symmetric_limit

#: matplotlib settings of the lessons' figures, chosen for slides.
LESSON_STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 10,
    "figure.titlesize": 13,
    "figure.dpi": 100,
    "image.interpolation": "nearest",
}


def setup():
    """Headless matplotlib (Agg, unless inside Jupyter) with ``LESSON_STYLE``.

    Returns ``matplotlib.pyplot``.
    """
    import matplotlib
    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    plt.rcParams.update(LESSON_STYLE)
    return plt


def output_dir() -> Path:
    """Where figures go: ``$MINIDECONV_LESSON_OUTPUT``, else ``lessons/_output`` (found
    from the working directory: the repository root, or ``lessons/`` itself as under
    sphinx-gallery or Jupyter).  Created if missing."""
    env = os.environ.get("MINIDECONV_LESSON_OUTPUT")
    if env:
        out = Path(env)
    else:
        cwd = Path.cwd()
        if cwd.name == "lessons":
            out = cwd / "_output"
        elif (cwd / "lessons").is_dir():
            out = cwd / "lessons" / "_output"
        else:
            out = cwd / "_output"
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_lesson_figure(fig, name: str, thumbnail: str | None = None,
                       thumbnail_axes=None) -> Path:
    """Write ``fig`` to ``output_dir()/name.png`` (``style.save``, left open) and print
    where.

    ``thumbnail="NN"`` marks the figure as the lesson's thumbnail for the README's lesson
    list: when ``$MINIDECONV_LESSON_THUMBNAILS`` is set (``docs/make_thumbnails.py`` sets
    it and collects them) it also writes ``thumb_NN.png``, 320 px wide — the whole
    figure, or only the panels ``thumbnail_axes`` (a list of axes) when given.
    """
    path = save(fig, output_dir() / f"{name}.png", close=False)
    if thumbnail is not None and os.environ.get("MINIDECONV_LESSON_THUMBNAILS"):
        _save_thumbnail(fig, output_dir() / f"thumb_{thumbnail}.png", thumbnail_axes)
    print(f"saved {path}")
    return path


def _save_thumbnail(fig, path, axes=None, width_px=320):
    """Save a small copy, cropped to ``axes`` (all panels by default), without the
    headline.  The layout engine is paused so that the panels stay where the full-size
    figure put them (re-running it without the suptitle would move them)."""
    from matplotlib.transforms import Bbox
    renderer = fig.canvas.get_renderer()
    if axes is not None and len(axes):
        box = Bbox.union([ax.get_tightbbox(renderer) for ax in list(axes)])
        box = box.transformed(fig.dpi_scale_trans.inverted()).padded(0.05)
    else:
        box = fig.get_tightbbox(renderer).padded(0.05)
    engine = fig.get_layout_engine()
    suptitle = getattr(fig, "_suptitle", None)       # matplotlib's Text of the headline
    hidden = suptitle is not None and suptitle.get_visible()
    fig.set_layout_engine("none")
    if hidden:
        suptitle.set_visible(False)
    try:
        fig.savefig(path, dpi=width_px / box.width, bbox_inches=box)
    finally:
        if hidden:
            suptitle.set_visible(True)
        fig.set_layout_engine(engine)


# --------------------------------------------------------------------------- helpers

def dense(matrix) -> np.ndarray:
    """A scipy.sparse matrix or an array as a dense 2-D ndarray."""
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def annotate_values(ax, values, fmt="{:g}", fontsize=9, skip_zeros=False, mappable=None):
    """Write every entry of a small 2-D array in its cell.

    With the ``mappable`` (the image drawn) the text is black on light cells and white on
    dark ones; without it, a signed map is assumed (dark at ± the largest value)."""
    values = np.asarray(values)
    limit = symmetric_limit(values)
    for (r, c), v in np.ndenumerate(values):
        if skip_zeros and v == 0:
            continue
        if mappable is not None:
            red, green, blue, _ = mappable.to_rgba(v)
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
        else:
            light = abs(v) < 0.6 * limit
        text = ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=fontsize,
                       color="black" if light else "white", clip_on=True)
        text.set_in_layout(False)      # hundreds of labels: keep layout and tight bbox fast


# --------------------------------------------------------------------------- pictures

def matrix(ax, m, title=None, xlabel="column", ylabel="row", signed=True, vmax=None,
           cbar=True, blocks=None, annotate=False, fmt="{:g}", cbar_label=None):
    """Draw a matrix entry by entry: one square cell per entry, zeros white.

    ``blocks=(row_block, col_block)`` draws thin grey lines between blocks (e.g. the
    image rows of a 2-D convolution matrix); ``annotate`` writes the values in the cells
    (for small matrices).
    """
    m = dense(m)
    if signed:
        im = imshow_signed(ax, m, vmax)
    else:
        im = ax.imshow(m, cmap=UNSIGNED, vmin=0, vmax=vmax, aspect="equal")
    if blocks is not None:
        row_block, col_block = blocks
        for r in range(row_block, m.shape[0], row_block):
            ax.axhline(r - 0.5, color="0.6", linewidth=0.6)
        for c in range(col_block, m.shape[1], col_block):
            ax.axvline(c - 0.5, color="0.6", linewidth=0.6)
    if annotate:
        annotate_values(ax, m, fmt=fmt, skip_zeros=True, mappable=im)
    if title:
        ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if cbar:
        colorbar(ax, im, cbar_label)
    return im


def image(ax, a, title=None, signed=True, vmax=None, cbar=True, annotate=False,
          fmt="{:.2g}", ticks=False, cbar_label=None):
    """A small 2-D array as an image (square pixels), signed → ``SIGNED`` centred on 0."""
    a = np.asarray(a)
    if signed:
        im = imshow_signed(ax, a, vmax)
    else:
        im = ax.imshow(a, cmap=UNSIGNED, vmin=0 if vmax is not None else None, vmax=vmax,
                       aspect="equal")
    if annotate:
        annotate_values(ax, a, fmt=fmt, mappable=im)
    if not ticks:
        ax.set_xticks([])
        ax.set_yticks([])
    for spine in ax.spines.values():          # a full frame around every image
        spine.set_visible(True)
    if title:
        ax.set_title(title)
    if cbar:
        colorbar(ax, im, cbar_label)
    return im


def image_row(arrays, suptitle=None, shared=True, signed=True, annotate=False,
              fmt="{:.2g}", panel_size=2.8, cbar_label=None):
    """One row of images, ``arrays`` = {title: 2-D array}.

    ``shared=True``: one colour scale for all (one colour bar, at the right), so the
    panels can be compared value for value; else each panel has its own colour bar.
    Returns the figure.
    """
    plt = setup()
    n = len(arrays)
    fig, axes = plt.subplots(1, n, figsize=(panel_size * n + (0.8 if shared else 0.9 * n),
                                            panel_size + 0.9), squeeze=False,
                             layout="constrained")
    axes = axes[0]
    limit = symmetric_limit(*arrays.values()) if (shared and signed) else None
    vmax = None
    if shared and not signed:
        vmax = max(float(np.max(a)) for a in arrays.values())
    last = None
    for ax, (title, a) in zip(axes, arrays.items()):
        last = image(ax, a, title, signed=signed, vmax=limit if signed else vmax,
                     cbar=not shared, annotate=annotate, fmt=fmt, cbar_label=cbar_label)
    if shared:
        colorbar(list(axes), last, cbar_label, fraction=0.046 / n * 2, pad=0.02)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def spectrum(ax, power, title=None, vmax=None, cbar_label="|K̂(ω)|²"):
    """A power spectrum |K̂(ω)|² on the DFT grid, zero frequency in the centre
    (``np.fft.fftshift``), axes in cycles per pixel."""
    power = np.asarray(power)
    h, w = power.shape
    fy = np.fft.fftshift(np.fft.fftfreq(h))
    fx = np.fft.fftshift(np.fft.fftfreq(w))
    dy = 1.0 / h
    dx = 1.0 / w
    extent = (fx[0] - dx / 2, fx[-1] + dx / 2, fy[-1] + dy / 2, fy[0] - dy / 2)
    im = ax.imshow(np.fft.fftshift(power), cmap=UNSIGNED, vmin=0, vmax=vmax, extent=extent,
                   aspect="equal")
    ax.set_xlabel("ω_x (cycles / pixel)")
    ax.set_ylabel("ω_y (cycles / pixel)")
    if title:
        ax.set_title(title)
    colorbar(ax, im, cbar_label)
    return im


def singular_values(ax, sigma, title=None, label=None, reference=1.0, **plot_kwargs):
    """σ_1 ≥ σ_2 ≥ … against their index, with a dashed line at ``reference``
    (σ = 1 everywhere is what an orthonormal W would have)."""
    sigma = np.asarray(sigma)
    ax.plot(np.arange(1, sigma.size + 1), sigma, marker="o", markersize=3,
            linewidth=1, label=label, **plot_kwargs)
    if reference is not None:
        ax.axhline(reference, color="0.4", linestyle="--", linewidth=1)
    ax.set_xlabel("index i")
    ax.set_ylabel("singular value σ_i")
    if title:
        ax.set_title(title)
    return ax


def bars(ax, values, title=None, ylabel=None, shade=None, shade_label=None, ylim=None):
    """A 1-D signal as bars, red where > 0 and blue where < 0 (the signed map's ends).

    ``shade`` (a boolean array) greys the positions where it is True, e.g. where a
    ReLU's forward input was ≤ 0."""
    import matplotlib.pyplot as plt
    values = np.asarray(values, dtype=float)
    cmap = plt.get_cmap(SIGNED)
    colors = [cmap(0.85) if v > 0 else cmap(0.15) for v in values]
    positions = np.arange(values.size)
    if shade is not None:
        first = True
        for i in np.flatnonzero(shade):
            ax.axvspan(i - 0.5, i + 0.5, color="0.88", zorder=0,
                       label=shade_label if first else None)
            first = False
    ax.bar(positions, values, color=colors, width=0.7, zorder=2)
    ax.axhline(0, color="0.2", linewidth=0.8, zorder=3)
    ax.set_xticks(positions)
    ax.set_xlim(-0.6, values.size - 0.4)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, loc="left")
    return ax


def signed_rgb_colorbar(ax, values, label="value per colour channel (0 = mid-grey)",
                        limit=None, percentile=None):
    """A colour bar for a pixel-space map drawn with ``style.signed_rgb``.

    ``signed_rgb`` maps each colour channel's value v to the intensity 0.5 + v / 2m of
    that channel (clipped to [0, 1]), so one grey bar from −m (black) to +m (white) reads
    every channel; m is ``limit``, else ``symmetric_limit(values, percentile=...)`` —
    the limit ``signed_rgb`` used (``PROJECTION_PERCENTILE`` by default).  The bar gets
    arrow ends where values are clipped."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from .style import PROJECTION_PERCENTILE
    if limit is None:
        limit = symmetric_limit(values, percentile=PROJECTION_PERCENTILE
                                if percentile is None else percentile)
    mappable = ScalarMappable(Normalize(-float(limit), float(limit)), cmap="gray")
    mappable.set_array(np.asarray(values, dtype=float).ravel())
    return colorbar(ax, mappable, label)


def top_patches_figure(features, title, panel_size=3.7, gap=2):
    """Zeiler & Fergus's Figure 2, laid out for a slide: one column per feature, the
    deconvnet projections of its top activations above the image patches under them
    (3 × 3 mosaics, each tile labelled with its activation).

    ``features`` is a list of ``(channel, TopPatches)`` (``visualize.top_k_patches``).
    Projections are drawn with ``style.signed_rgb``, each tile on its own scale (grey =
    0); patch pixels outside the image are light grey.  Returns the figure."""
    from .figures import mosaic
    from .style import as_rgb, signed_rgb
    plt = setup()
    n = len(features)
    fig, axes = plt.subplots(2, n, figsize=(panel_size * n + 0.3, 2 * panel_size + 1.5),
                             squeeze=False, layout="constrained")
    for q, (channel, top) in enumerate(features):
        projections = np.stack([signed_rgb(p) for p in top.projections])
        patches = np.stack([as_rgb(p, inside) for p, inside in zip(top.patches, top.inside)])
        tile = patches.shape[1]
        cols = 3
        for row, tiles, name in [(0, projections, "deconvnet projections"),
                                 (1, patches, "receptive-field patches")]:
            ax = axes[row, q]
            ax.imshow(mosaic(tiles, cols=cols, gap=gap), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"feature {channel}: {name}" if row == 0 else name)
        for k, value in enumerate(top.values):
            r, c = divmod(k, cols)
            text = axes[1, q].text(c * (tile + gap) + 0.5, r * (tile + gap) + 0.5,
                                   f"{value:.1f}", fontsize=8, ha="left", va="top",
                                   color="white",
                                   bbox=dict(facecolor="black", alpha=0.55, pad=1.2,
                                             linewidth=0))
            text.set_in_layout(False)
    size = features[0][1].patches.shape[-1]
    fig.suptitle(f"{title}\nthe {len(features[0][1].values)} strongest activations of each "
                 f"feature, one per image: projections (top; grey = 0, each tile its own "
                 f"scale;\ntheir colours are per-channel signs, not image colours) and the "
                 f"{size} × {size} patches under them\n(bottom; the activation in the "
                 "corner; light grey = outside the image)")
    return fig
