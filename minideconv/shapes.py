"""Convolution arithmetic: how big is the output, and which input pixels does a unit see?

All relations follow Dumoulin & Visin, *A guide to convolution arithmetic for deep
learning* (2016), and PyTorch's conventions.  For one spatial axis with input length
``i``, kernel ``k``, stride ``s``, padding ``p`` and dilation ``d``:

* convolution / pooling:   o = ⌊(i + 2p − d(k−1) − 1) / s⌋ + 1
* transposed convolution:  o′ = s(i′ − 1) − 2p + d(k−1) + a + 1

The *output padding* ``a`` of the transposed convolution exists because the floor in the
first formula throws information away: the ``s`` input lengths
``i, i+1, …, i+s−1`` (with ``i`` the smallest) all give the same ``o``, so the way back
needs to be told which one to return.  ``a = (i + 2p − d(k−1) − 1) mod s`` recovers the
input length exactly.

Functions named ``*_length`` work on one axis and return plain ints (possibly ≤ 0, no
checks); functions named ``*_shape`` take ``(H, W)`` pairs and return ``(H, W)`` tuples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence, Tuple, Union

IntOrPair = Union[int, Tuple[int, int], Sequence[int]]


def _pair(value: IntOrPair) -> Tuple[int, int]:
    """(v, v) for an int, (a, b) for a pair.  Validation lives in ``checks``."""
    if isinstance(value, (tuple, list)):
        a, b = value
        return int(a), int(b)
    return int(value), int(value)


# --------------------------------------------------------------------------- one axis

def conv_output_length(i: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """o = ⌊(i + 2p − d(k−1) − 1) / s⌋ + 1 (may be ≤ 0 when the kernel does not fit)."""
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose_output_length(i: int, k: int, s: int = 1, p: int = 0,
                                 a: int = 0, d: int = 1) -> int:
    """o′ = s(i − 1) − 2p + d(k−1) + a + 1, the inverse *shape* map of a convolution."""
    return s * (i - 1) - 2 * p + d * (k - 1) + a + 1


def conv_transpose_reachable_lengths(i: int, k: int, s: int = 1, p: int = 0,
                                     d: int = 1) -> range:
    """The input lengths that a convolution maps to length ``i``: the ``s`` values
    ``o′(a)`` for ``a = 0 … s−1``.  ``conv_transpose2d(..., output_size=…)`` accepts exactly
    these (as PyTorch does)."""
    smallest = conv_transpose_output_length(i, k, s, p, 0, d)
    return range(smallest, smallest + s)


def output_padding_for_length(input_length: int, k: int, s: int = 1, p: int = 0,
                              d: int = 1) -> int:
    """a = (i + 2p − d(k−1) − 1) mod s: the output padding that makes the transposed
    convolution return an input of length ``input_length``."""
    return (input_length + 2 * p - d * (k - 1) - 1) % s


def valid_output_padding(s: int = 1, d: int = 1) -> range:
    """Output paddings PyTorch accepts: 0 ≤ a < max(s, d) (issue pytorch#56328).

    Only ``a < s`` corresponds to an input length a convolution could have come from;
    with ``s ≤ a < d`` the extra rows are simply never touched (they stay zero or bias).
    """
    return range(max(s, d))


def max_pool_output_length(i: int, k: int, s: int, p: int = 0, d: int = 1,
                           ceil_mode: bool = False) -> int:
    """Pooling output length, PyTorch's rule.

    ``ceil_mode`` rounds ⌈·⌉ instead of ⌊·⌋ in the convolution formula, but a last window
    must start inside the input or its left padding: if (o−1)s ≥ i + p, drop it.
    """
    span = i + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        o = -(-span // s) + 1
        if (o - 1) * s >= i + p:
            o -= 1
        return o
    return span // s + 1


def window_positions(o: int, k: int, s: int, p: int = 0, d: int = 1) -> range:
    """Input positions (padding included, so possibly < 0) seen by output ``o``:
    o·s − p + j·d for j = 0 … k−1."""
    start = o * s - p
    return range(start, start + d * (k - 1) + 1, d)


def empty_windows(i: int, k: int, s: int, p: int, d: int, n_out: int) -> list:
    """Outputs whose whole window falls in the padding (no real input position).

    PyTorch silently returns −inf and an out-of-range index for these; minideconv
    refuses such configurations instead.
    """
    return [o for o in range(n_out)
            if not any(0 <= q < i for q in window_positions(o, k, s, p, d))]


# --------------------------------------------------------------------------- (H, W)

def conv2d_output_shape(input_hw: IntOrPair, kernel_hw: IntOrPair, stride: IntOrPair = 1,
                        padding: IntOrPair = 0, dilation: IntOrPair = 1) -> Tuple[int, int]:
    """(H_out, W_out) of ``conv2d`` for integer (symmetric) padding."""
    return tuple(conv_output_length(i, k, s, p, d) for i, k, s, p, d in
                 zip(_pair(input_hw), _pair(kernel_hw), _pair(stride), _pair(padding),
                     _pair(dilation)))


def conv_transpose2d_output_shape(input_hw: IntOrPair, kernel_hw: IntOrPair,
                                  stride: IntOrPair = 1, padding: IntOrPair = 0,
                                  output_padding: IntOrPair = 0,
                                  dilation: IntOrPair = 1) -> Tuple[int, int]:
    """(H_out, W_out) of ``conv_transpose2d``."""
    return tuple(conv_transpose_output_length(i, k, s, p, a, d) for i, k, s, p, a, d in
                 zip(_pair(input_hw), _pair(kernel_hw), _pair(stride), _pair(padding),
                     _pair(output_padding), _pair(dilation)))


def max_pool2d_output_shape(input_hw: IntOrPair, kernel_size: IntOrPair,
                            stride: IntOrPair | None = None, padding: IntOrPair = 0,
                            dilation: IntOrPair = 1,
                            ceil_mode: bool = False) -> Tuple[int, int]:
    """(H_out, W_out) of ``max_pool2d``; ``stride=None`` means ``stride=kernel_size``."""
    stride = kernel_size if stride is None else stride
    return tuple(max_pool_output_length(i, k, s, p, d, ceil_mode) for i, k, s, p, d in
                 zip(_pair(input_hw), _pair(kernel_size), _pair(stride), _pair(padding),
                     _pair(dilation)))


# --------------------------------------------------------------------------- receptive fields

@dataclass(frozen=True)
class ReceptiveField:
    """Where a unit of the last layer looks in the input, per axis (H, W).

    Unit ``(h, w)`` of the output sees input rows ``start[0] + h·jump[0]`` up to
    ``start[0] + h·jump[0] + size[0] − 1`` (likewise for columns).  ``start`` can be
    negative: the first units partly see padding.
    """

    size: Tuple[int, int]
    jump: Tuple[int, int]
    start: Tuple[int, int]

    def window(self, position: Tuple[int, int]) -> Tuple[int, int, int, int]:
        """(row0, row1, col0, col1), half-open, of the input window of unit ``position``;
        not clipped to the image."""
        h, w = position
        r0 = self.start[0] + h * self.jump[0]
        c0 = self.start[1] + w * self.jump[1]
        return r0, r0 + self.size[0], c0, c0 + self.size[1]


def receptive_field_step(field: ReceptiveField, kernel: IntOrPair, stride: IntOrPair,
                         padding: IntOrPair, dilation: IntOrPair) -> ReceptiveField:
    """The receptive field one layer further up: a unit of a layer with ``(kernel, stride,
    padding, dilation)`` whose input units each see ``field``.  Per axis (Dumoulin &
    Visin §2; Araujo et al. 2019):

        size  ← size + d(k−1)·jump
        start ← start − p·jump
        jump  ← jump·s
    """
    size, jump, start = list(field.size), list(field.jump), list(field.start)
    for axis, (k, s, p, d) in enumerate(zip(_pair(kernel), _pair(stride), _pair(padding),
                                            _pair(dilation))):
        size[axis] += d * (k - 1) * jump[axis]
        start[axis] -= p * jump[axis]
        jump[axis] *= s
    return ReceptiveField(tuple(size), tuple(jump), tuple(start))


def union_of_receptive_fields(fields: Sequence[ReceptiveField]) -> ReceptiveField:
    """The smallest window that holds the windows of several branches that join (a sum or
    a concatenation): per axis from the lowest start to the highest end.  The branches
    must step by the same jump — they do whenever their outputs have one shape."""
    fields = list(fields)
    if any(f.jump != fields[0].jump for f in fields):
        raise ValueError(f"branches that join must have the same jump (stride product), "
                         f"got {[f.jump for f in fields]}")
    start = tuple(min(f.start[a] for f in fields) for a in range(2))
    end = tuple(max(f.start[a] + f.size[a] for f in fields) for a in range(2))
    return ReceptiveField(tuple(e - s for s, e in zip(start, end)), fields[0].jump, start)


#: a single input pixel: where every receptive field starts from
PIXEL = ReceptiveField((1, 1), (1, 1), (0, 0))


def receptive_field(layers: Iterable[Tuple[IntOrPair, IntOrPair, IntOrPair, IntOrPair]]
                    ) -> ReceptiveField:
    """Receptive field of a chain of convolutions / poolings.

    ``layers`` lists ``(kernel, stride, padding, dilation)`` per layer (ints or pairs);
    an element-wise layer (ReLU) contributes ``(1, 1, 0, 1)`` and can be left out.  Each
    layer is one ``receptive_field_step`` from a single pixel up."""
    field = PIXEL
    for kernel, stride, padding, dilation in layers:
        field = receptive_field_step(field, kernel, stride, padding, dilation)
    return field


__all__ = [
    "conv_output_length", "conv_transpose_output_length", "conv_transpose_reachable_lengths",
    "output_padding_for_length", "valid_output_padding", "max_pool_output_length",
    "window_positions", "empty_windows", "conv2d_output_shape",
    "conv_transpose2d_output_shape", "max_pool2d_output_shape", "ReceptiveField",
    "receptive_field", "receptive_field_step", "union_of_receptive_fields", "PIXEL",
]
