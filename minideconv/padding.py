"""Circular (wrap-around) padding and its transpose.

Circular padding copies rows/columns from the opposite side; its transpose therefore
*adds* each padded row/column back onto the row/column it was copied from.  A circular
convolution is ``conv(wrap_pad(x))`` and its adjoint is ``wrap_pad_adjoint(conv_transpose(y))``.

Written with array slicing only, so the same code serves NumPy and CuPy arrays.
"""

from __future__ import annotations

from .checks import array_module


def wrap_pad(x, pads):
    """Pad the last two axes of ``x`` circularly by ``pads = (top, bottom, left, right)``
    (each at most the size of its axis, as in PyTorch's ``F.pad(mode="circular")``)."""
    top, bottom, left, right = pads
    height, width = x.shape[-2:]
    rows = [x[..., height - top:, :]] if top else []
    rows += [x] + ([x[..., :bottom, :]] if bottom else [])
    tall = _concatenate(rows, axis=-2)
    cols = [tall[..., width - left:]] if left else []
    cols += [tall] + ([tall[..., :right]] if right else [])
    return _concatenate(cols, axis=-1)


def wrap_pad_adjoint(padded, pads):
    """The transpose of ``wrap_pad``: crop the centre and add every padded row/column onto
    the row/column it was a copy of."""
    top, bottom, left, right = pads
    height = padded.shape[-2] - top - bottom
    width = padded.shape[-1] - left - right
    rows = padded[..., top:top + height, :].copy()
    rows[..., height - top:, :] += padded[..., :top, :]
    rows[..., :bottom, :] += padded[..., top + height:, :]
    out = rows[..., left:left + width].copy()
    out[..., width - left:] += rows[..., :left]
    out[..., :right] += rows[..., left + width:]
    return out


def _concatenate(parts, axis):
    if len(parts) == 1:
        return parts[0]
    return array_module(parts[0]).concatenate(parts, axis=axis)
