"""Padding of an image's borders and its transpose: zeros (``"constant"``), circular
(wrap around), reflect (mirror without repeating the edge) and replicate (repeat the
edge), as ``torch.nn.functional.pad``.

Every mode is a map from the padded positions of one axis to the input position each
copies, ``padded_sources`` (−1: a zero):

    circular   q ↦ q mod L                         (-1 → L − 1)
    reflect    q ↦ q mirrored at 0 and L − 1        (-1 → 1, L → L − 2)
    replicate  q ↦ min(max(q, 0), L − 1)            (-1 → 0, L → L − 1)

so padding is a gather, P x, and its transpose Pᵀ crops the centre and ADDS every padded
row and column back onto the one it was a copy of: circular folds the opposite border
back, reflect folds the mirrored cells back, replicate adds the border into the edge,
zero padding just crops.  A convolution with ``padding_mode`` m is ``conv(pad(x, m))``,
and its adjoint is ``pad_adjoint(conv_transpose(y), m)``.

Written with array slicing only, so the same code serves NumPy and CuPy arrays.
"""

from __future__ import annotations

import numpy as np

from .checks import array_module, check_choice

#: the modes, by ``torch.nn.functional.pad``'s names
MODES = ("constant", "circular", "reflect", "replicate")


def padded_sources(length: int, before: int, after: int, mode: str) -> np.ndarray:
    """The input position each of the ``before + length + after`` padded positions of one
    axis copies (int64), −1 where it is a zero (``"constant"``)."""
    check_choice(mode, "mode", MODES)
    q = np.arange(-before, length + after)
    if mode == "circular":
        return q % length
    if mode == "replicate":
        return np.clip(q, 0, length - 1)
    if mode == "reflect":
        if length == 1:
            return np.zeros_like(q)
        period = 2 * (length - 1)
        q = q % period
        return np.where(q < length, q, period - q)
    return np.where((q >= 0) & (q < length), q, -1)


def check_pads(pads, hw, mode: str, name: str = "padding") -> None:
    """PyTorch's limits, per axis: circular padding at most the input's size (it wraps
    once), reflect padding smaller than it (it mirrors once, the edge not repeated)."""
    check_choice(mode, "mode", MODES)
    top, bottom, left, right = pads
    if mode == "circular" and (max(top, bottom) > hw[0] or max(left, right) > hw[1]):
        raise ValueError(f"{name} {tuple(pads)} must not exceed the input size {tuple(hw)} "
                         f"with mode 'circular' (wrap-around goes once)")
    if mode == "reflect" and (max(top, bottom) >= hw[0] or max(left, right) >= hw[1]):
        raise ValueError(f"{name} {tuple(pads)} must be smaller than the input size "
                         f"{tuple(hw)} with mode 'reflect' (the mirror goes once)")


def pad(x, pads, mode: str):
    """Pad the last two axes of ``x`` by ``pads = (top, bottom, left, right)`` in ``mode``
    (the limits of ``check_pads`` apply): the image copied into the centre, then each
    border row, then each border column (corners included), copied from its source."""
    top, bottom, left, right = pads
    height, width = x.shape[-2:]
    check_pads(pads, (height, width), mode)
    xp = array_module(x)
    out = xp.empty(x.shape[:-2] + (height + top + bottom, width + left + right), x.dtype)
    out[..., top:top + height, left:left + width] = x
    for k, source in _border(height, top, bottom, mode):
        out[..., k, left:left + width] = 0 if source < 0 else x[..., source, :]
    for k, source in _border(width, left, right, mode):
        out[..., k] = 0 if source < 0 else out[..., left + source]
    return out


def _border(length, before, after, mode):
    """(padded position, its source) of the border cells of one axis."""
    sources = padded_sources(length, before, after, mode)
    return [(k, int(sources[k])) for k in list(range(before)) +
            list(range(before + length, before + length + after))]


def pad_adjoint(padded, pads, mode: str):
    """The transpose of ``pad``: crop the centre and add every padded row, then every
    padded column, onto the one it was a copy of (a zero's is dropped)."""
    top, bottom, left, right = pads
    height = padded.shape[-2] - top - bottom
    width = padded.shape[-1] - left - right
    rows = padded[..., top:top + height, :].copy()
    for k, source in _border(height, top, bottom, mode):
        if source >= 0:
            rows[..., source, :] += padded[..., k, :]
    out = rows[..., left:left + width].copy()
    for k, source in _border(width, left, right, mode):
        if source >= 0:
            out[..., source] += rows[..., k]
    return out
