"""Figures of the sanity experiments (``minideconv.sanity``): randomization cascades and
switch swaps, in the style of Adebayo et al. (2018), Fig. 2."""

from __future__ import annotations

__all__: list = []
