"""Figures of feature inversion (``minideconv.invert``): the pre-image beside the image
and the deconvnet projection of the same activation."""

from __future__ import annotations

__all__: list = []
