"""The small network that the layer, training and visualization tests build."""

from __future__ import annotations

import numpy as np

from minideconv import nn


def small_net(rng, dtype=np.float64, *, biases=None, weight_sign=None):
    """conv 3×3 (pad 1) → ReLU → max-pool 3×3/2 (pad 1, overlapping windows) → conv 3×3
    → ReLU → flatten → linear, on 3×9×9 inputs; 4, 5 and 6 outputs.

    The weights are drawn from ``rng``, normal and scaled by √(2 / fan-in);
    ``weight_sign=+1`` takes their absolute values, so that every weight is ≥ 0.
    ``biases``: None draws each layer's biases from ``rng`` right after its weights (as
    the weights of a layer with one input); one number gives every layer that bias; three
    give the two convolutions' and the linear layer's.
    """
    def w(*shape):
        value = rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))
        return (np.abs(value) if weight_sign == 1 else value).astype(dtype)

    fixed = None if biases is None else np.broadcast_to(np.asarray(biases, np.float64), 3)

    def b(layer, n):
        return w(n, 1)[:, 0] if fixed is None else np.full(n, fixed[layer], dtype)

    return nn.Sequential(
        nn.Conv2d(w(4, 3, 3, 3), b(0, 4), padding=1), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(w(5, 4, 3, 3), b(1, 5)), nn.ReLU(),
        nn.Flatten(), nn.Linear(w(6, 45), b(2, 6)),
        input_shape=(3, 9, 9))
