"""From one unit of a network back to pixels, and the experiments on what that shows.

A projection picks one activation a = A_L[c, h, w] (a *unit*), seeds the layer's output
with it alone, and passes that signal down the layers, each by its transpose — with one
of the three ReLU rules of ``minideconv.rules``.  Everything here is built on that chain:

================  =======================================================================
``projection``    one unit → its seed → down the transposes: ``project``, the checks
                  that name a unit (``check_layer``, ``check_channel``, ``check_position``),
                  the one choice of a unit and its seed (``strongest``, ``strongest_unit``,
                  ``seed``)
``figure2``       Zeiler & Fergus's Figure 2: each feature's top-k images and their
                  projections (``top_k``, streamed: ``rank_top_k`` then ``project_top_k``;
                  ``merge_top_k``, the merge of two top-k tables)
``figure2_dask``  Figure 2's ranking on a Dask cluster: each batch a task, the tables
                  merged in a tree (``rank_top_k_dask``, ``rank_folder_dask``), the
                  tables of one ``rank_top_k`` pass, bit for bit
``unit_window``   one unit traced and projected in its receptive field alone: the
                  same numbers for the window's share of the work (Figure 2's route
                  for units that see a small part of their image)
``batch_memory``  the memory of Figure 2's two passes per image, read off one real
                  pass, and the largest batches that fit a budget
``occlusion``     occlusion sensitivity (§4.2): ``occlusion_map`` and its ``score``
``sanity``        what the picture depends on: weight randomization, switch swaps,
                  similarity measures (Adebayo et al. 2018)
``invert``        an actual inverse beside the projection: feature inversion
                  (Mahendran & Vedaldi 2015)
================  =======================================================================

The face: ``project``, ``occlusion_map``, ``score`` and Figure 2's functions are
importable from ``minideconv.visualize``; ``sanity``, ``invert`` and ``unit_window`` are
its submodules.
"""

from . import invert, sanity, unit_window
from .figure2 import (TOP_K, TOP_K_BATCH, TopKTable, TopPatches, batch_top_k, channel_maxima,
                      max_activations, merge_top_k, project_top_k, rank_top_k, top_k,
                      top_k_patches, window_patch)
from .figure2_dask import rank_folder_dask, rank_top_k_dask
from .occlusion import occlusion_map, score
from .projection import (SEED_VALUES, check_channel, check_layer, check_position, project,
                         seed, strongest, strongest_unit)

__all__ = [
    "project", "SEED_VALUES", "check_layer", "check_channel", "check_position", "strongest", "strongest_unit",
    "seed",
    "occlusion_map", "score",
    "TOP_K", "TOP_K_BATCH", "TopPatches", "TopKTable", "window_patch", "channel_maxima",
    "max_activations", "top_k_patches", "rank_top_k", "project_top_k", "top_k",
    "batch_top_k", "merge_top_k", "rank_top_k_dask", "rank_folder_dask",
    "sanity", "invert", "unit_window",
]
