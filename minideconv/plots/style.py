"""The conventions every minideconv figure follows, in one place.

Signed maps.  Projections, filters, matrices and differences are signed, and every signed
map is drawn *centred on zero*: one limit m, from ``symmetric_limit``, and the colours
run from −m to +m with 0 exactly in the middle.  Two renderings share that limit:

* three-channel maps in pixel space (a projection, a first-layer filter): ``signed_rgb``
  draws 0.5 + v / 2m in all three channels together, so 0 is mid-grey, ±m saturate to
  black or full colour, and the balance between R, G and B is kept;
* one-channel maps (a matrix, one channel, a sum over channels): ``imshow_signed`` with
  the diverging map ``SIGNED`` (RdBu_r, white = 0, red +, blue −) and a colour bar.

m is the ``percentile`` of |v| over the non-zero entries.  100 (the maximum) wherever the
values are read off a colour bar or written in the cells, so that nothing is clipped;
``PROJECTION_PERCENTILE`` = 99 for pixel-space projections, which are compared by pattern
only (their magnitudes differ by orders of magnitude between rules and layers) and where
a plain maximum lets one extreme pixel turn the rest of the tile grey.  A colour bar whose
limit clips some values gets arrow ends (``colorbar``).

Values ≥ 0 use the sequential map ``UNSIGNED`` (viridis).  Images are drawn pixel for
pixel (no smoothing) with square pixels.  matplotlib is imported on first use only, so
``import minideconv.plots`` stays cheap and chooses no backend.
"""

from __future__ import annotations

import numpy as np

#: Diverging colour map for one-channel signed values (white = 0, red > 0, blue < 0).
SIGNED = "RdBu_r"
#: Sequential colour map for values ≥ 0.
UNSIGNED = "viridis"
#: The percentile of |v| that sets the limit of a pixel-space projection.
PROJECTION_PERCENTILE = 99.0
#: Grey level of patch pixels that lie outside the image.
OUTSIDE = 0.8
#: Colour of a receptive-field box drawn on an RGB image.
WINDOW_COLOR = "yellow"

#: Colour bars: width as a fraction of the axes, gap, and font sizes.
CBAR_FRACTION = 0.046
CBAR_PAD = 0.04
CBAR_TICK_SIZE = 9
CBAR_LABEL_SIZE = 10

#: Resolution of every saved figure.
DPI = 150


def pyplot():
    """``matplotlib.pyplot``, imported on first use."""
    import matplotlib.pyplot as plt
    return plt


def symmetric_limit(*arrays, percentile=100.0) -> float:
    """The limit m of a signed map drawn from −m to +m: the ``percentile`` of |v| over the
    finite non-zero entries of all ``arrays`` together (100: max |v|); 1 when there are
    none, so an all-zero map is drawn as zero."""
    magnitudes = [np.abs(np.asarray(a, dtype=float)).ravel() for a in arrays]
    values = np.concatenate(magnitudes) if magnitudes else np.zeros(0)
    values = values[np.isfinite(values) & (values > 0)]
    if not values.size:
        return 1.0
    limit = float(values.max() if percentile >= 100 else np.percentile(values, percentile))
    return limit if limit > 0 else 1.0


def _three_channels(hwc):
    """(H, W, 1) → (H, W, 3), the grey repeated: ``imshow`` would draw one channel
    through a colour map (viridis), not as grey."""
    return np.repeat(hwc, 3, axis=2) if hwc.shape[2] == 1 else hwc


def signed_rgb(p, limit=None, percentile=PROJECTION_PERCENTILE):
    """(C, H, W) signed pixel-space map → (H, W, 3) in [0, 1] for ``imshow``, centred on
    zero: 0 ↦ mid-grey 0.5, ±m ↦ 0 / 1 (clipped beyond), m = ``limit`` or
    ``symmetric_limit(p, percentile=percentile)``.  One channel (a grey network) is drawn
    in grey."""
    p = np.asarray(p, dtype=float)
    m = symmetric_limit(p, percentile=percentile) if limit is None else float(limit)
    return _three_channels(np.clip(0.5 + p / (2 * m), 0, 1).transpose(1, 2, 0))


def as_rgb(image, inside=None):
    """(C, H, W) image in [0, 1] → (H, W, 3) for ``imshow`` (one channel: grey); pixels
    where ``inside`` is False are drawn light grey (``OUTSIDE``)."""
    rgb = _three_channels(np.clip(image, 0, 1).transpose(1, 2, 0))
    if inside is not None:
        rgb = np.where(inside[..., None], rgb, OUTSIDE)
    return rgb


def imshow_signed(ax, values, limit=None, **kwargs):
    """A one-channel signed map with ``SIGNED`` from −m to +m (m = ``limit`` or
    ``symmetric_limit(values)``), square pixels.  Returns the image."""
    m = symmetric_limit(values) if limit is None else float(limit)
    return ax.imshow(values, cmap=SIGNED, vmin=-m, vmax=m, aspect="equal",
                     interpolation="nearest", **kwargs)


def colorbar(ax, mappable, label=None, fraction=CBAR_FRACTION, pad=CBAR_PAD):
    """A slim colour bar beside ``ax`` (one axes or a list of axes sharing it), with arrow
    ends where the data go beyond its limits."""
    data = np.asarray(mappable.get_array(), dtype=float)
    data = data[np.isfinite(data)]
    low, high = mappable.norm.vmin, mappable.norm.vmax
    below = data.size and low is not None and data.min() < low
    above = data.size and high is not None and data.max() > high
    extend = {(True, True): "both", (True, False): "min",
              (False, True): "max"}.get((bool(below), bool(above)), "neither")
    first = ax[0] if isinstance(ax, (list, tuple, np.ndarray)) else ax
    bar = first.figure.colorbar(mappable, ax=ax, fraction=fraction, pad=pad, extend=extend)
    bar.ax.tick_params(labelsize=CBAR_TICK_SIZE)
    if label:
        bar.set_label(label, fontsize=CBAR_LABEL_SIZE)
    return bar


def draw_window_box(ax, window, color=WINDOW_COLOR, linewidth=1.5, linestyle="-",
                    inset=0.0):
    """Outline the half-open pixel window ``(r0, r1, c0, c1)`` — rows r0..r1−1, columns
    c0..c1−1 — on an ``imshow`` axis.  The box is clipped to the image so that all four
    sides show (a receptive field may reach past the border); ``inset`` shrinks it, so
    that overlapping boxes stay distinguishable."""
    from matplotlib.patches import Rectangle
    height, width = ax.images[0].get_array().shape[:2]
    r0, r1, c0, c1 = (int(v) for v in window)
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, height), min(c1, width)
    return ax.add_patch(Rectangle((c0 - 0.5 + inset, r0 - 0.5 + inset),
                                  c1 - c0 - 2 * inset, r1 - r0 - 2 * inset, fill=False,
                                  edgecolor=color, linewidth=linewidth,
                                  linestyle=linestyle, clip_on=False, zorder=5))


def save(fig, path, dpi=DPI, close=True):
    """Write ``fig`` to ``path`` (its suffix names the format) and return ``path``.

    A figure laid out by matplotlib (all of minideconv's are "constrained") already fits
    its canvas; any other is cropped to its contents.  ``close=False`` leaves it open
    (sphinx-gallery collects the figures still open after each lesson cell)."""
    tight = None if fig.get_layout_engine() is not None else "tight"  # a second render
    fig.savefig(path, dpi=dpi, bbox_inches=tight)
    if close:
        pyplot().close(fig)
    return path
