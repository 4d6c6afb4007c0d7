"""Figures for the command line and the lessons (matplotlib, imported on first use;
headless with ``MPLBACKEND=Agg``).

* ``style``: the one convention for signed maps (centred on zero, ±m from
  ``symmetric_limit``; ``signed_rgb`` for pixel-space maps, ``imshow_signed`` with a
  colour bar for one-channel maps), ``colorbar``, ``draw_window_box`` and ``save``;
* ``figures``: the command line's figures (the top-9 grid, the three rules, a
  projection, occlusion, the first-layer filters);
* ``family_figures``: the attribution family's maps (``minideconv.attribution``): one
  map beside its image, every method on one image;
* ``sanity_figures``: randomization cascades and switch swaps
  (``minideconv.visualize.sanity``), and the cascade of any attribution method
  (``minideconv.attribution.cascade``);
* ``inversion_figures``: feature inversion beside the projection
  (``minideconv.visualize.invert``);
* ``lessons``: the lessons' helpers (matrices, small images, spectra, singular
  values, bars) and where they save.

Everything public is importable from ``minideconv.plots`` directly.
"""

from . import family_figures, inversion_figures, sanity_figures
from .figures import (compare_rules, feature_grid, filters_figure, mosaic, occlusion_figure,
                      projection_figure, rule_note)
from .lessons import (LESSON_STYLE, annotate_values, bars, dense, image, image_row, matrix,
                      output_dir, save_lesson_figure, setup, signed_rgb_colorbar,
                      singular_values, spectrum, top_patches_figure)
from .style import (CBAR_FRACTION, CBAR_LABEL_SIZE, CBAR_PAD, CBAR_TICK_SIZE, DPI, OUTSIDE,
                    PROJECTION_PERCENTILE, SIGNED, UNSIGNED, WINDOW_COLOR, as_rgb, colorbar,
                    draw_window_box, imshow_signed, pyplot, save, signed_rgb,
                    symmetric_limit)

__all__ = [
    # style
    "SIGNED", "UNSIGNED", "PROJECTION_PERCENTILE", "OUTSIDE", "WINDOW_COLOR",
    "CBAR_FRACTION", "CBAR_PAD", "CBAR_TICK_SIZE", "CBAR_LABEL_SIZE", "DPI",
    "pyplot", "symmetric_limit", "signed_rgb", "as_rgb", "imshow_signed", "colorbar",
    "draw_window_box", "save",
    # figures
    "mosaic", "rule_note", "feature_grid", "compare_rules", "projection_figure",
    "occlusion_figure", "filters_figure",
    # lessons
    "LESSON_STYLE", "setup", "output_dir", "save_lesson_figure", "dense",
    "annotate_values", "matrix", "image", "image_row", "spectrum", "singular_values",
    "bars", "signed_rgb_colorbar", "top_patches_figure",
]
from .family_figures import *  # noqa: E402,F401,F403  (the names of its __all__)
from .inversion_figures import *  # noqa: E402,F401,F403
from .sanity_figures import *  # noqa: E402,F401,F403

__all__ += sanity_figures.__all__ + inversion_figures.__all__ + family_figures.__all__
