"""Layers that join several inputs: the residual sum and the channel concatenation.

Both are linear, and their transposes are the two ways of undoing a join:

* ``Add``:    y = x₁ + x₂ + …  = [I I …] [x₁; x₂; …]   →   the transpose copies the signal
  to every input:  [I I …]ᵀ r = (r, r, …);
* ``Concat``: y = [x₁; x₂; …] (stacked along the channels, a permutation of the
  identity) →   the transpose splits the signal into the inputs' channel blocks.

Neither touches a ReLU, so the three rules treat them alike.
"""

from __future__ import annotations

import numpy as np

from .. import checks
from .layers import Layer


def _check_inputs(xs, what):
    if len(xs) < 2:
        raise ValueError(f"{what} joins two or more inputs, got {len(xs)}")
    for i, x in enumerate(xs):
        checks.check_float_array(x, f"inputs[{i}]")
        if x.dtype != xs[0].dtype:
            raise TypeError(f"{what}: inputs[{i}] has dtype {x.dtype}, inputs[0] "
                            f"{xs[0].dtype}")


class Add(Layer):
    """y = x₁ + x₂ + … (a residual connection); every input has the same shape."""

    n_inputs = None

    def forward(self, *xs):
        _check_inputs(xs, "Add")
        for i, x in enumerate(xs[1:], start=1):
            if x.shape != xs[0].shape:
                raise ValueError(f"Add: inputs[{i}] has shape {x.shape}, inputs[0] "
                                 f"{xs[0].shape}; a sum needs equal shapes")
        total = xs[0].copy()
        for x in xs[1:]:
            total += x
        return total, len(xs)

    def backward(self, grad, record, rule="backprop"):
        return (grad,) * record            # [I I …]ᵀ r: the same signal to each input

    def output_shape(self, *input_shapes):
        if any(tuple(s) != tuple(input_shapes[0]) for s in input_shapes):
            raise ValueError(f"Add needs inputs of one shape, got "
                             f"{[tuple(s) for s in input_shapes]}")
        return tuple(input_shapes[0])


class Concat(Layer):
    """y = the inputs stacked along axis ``dim`` (1, the channels: ``torch.cat(xs, 1)``)."""

    n_inputs = None

    def __init__(self, dim=1):
        if not (checks.is_int(dim) and dim == 1):
            raise ValueError(f"Concat joins along the channel axis only (dim=1), "
                             f"got dim={dim!r}")
        self.dim = 1

    def forward(self, *xs):
        _check_inputs(xs, "Concat")
        for i, x in enumerate(xs[1:], start=1):
            if x.ndim != xs[0].ndim or x.shape[:1] + x.shape[2:] != \
                    xs[0].shape[:1] + xs[0].shape[2:]:
                raise ValueError(f"Concat: inputs[{i}] has shape {x.shape}, inputs[0] "
                                 f"{xs[0].shape}; only the channel axis may differ")
        return np.concatenate(xs, axis=1), [x.shape[1] for x in xs]

    def backward(self, grad, record, rule="backprop"):
        edges = np.cumsum(record)[:-1]      # split the signal into each input's channels
        return tuple(np.ascontiguousarray(part) for part in np.split(grad, edges, axis=1))

    def output_shape(self, *input_shapes):
        first = tuple(input_shapes[0])
        if any(len(s) != len(first) or tuple(s[1:]) != first[1:] for s in input_shapes):
            raise ValueError(f"Concat needs inputs that differ only in channels, got "
                             f"{[tuple(s) for s in input_shapes]}")
        return (sum(s[0] for s in input_shapes),) + first[1:]

    def config(self):
        return dict(dim=self.dim)
