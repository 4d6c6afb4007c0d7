"""The weighted sum of many gradients — integrated gradients' path, SmoothGrad's noise —
taken where the chain stops depending on the point.

Integrated gradients and SmoothGrad both need Σ_s w_s ∂z_t/∂x(p_s) over S points p_s of
one image.  Cut the chain after its leading *affine* layers L (convolutions, linear
layers, batch norm, average pools, flatten, dropout, …, up to the first rectifier or max
pool).  Their way back is a fixed linear map Lᵀ that reads no value of the forward pass
(only sizes), so with r_s the signal at L's output,

    Σ_s w_s ∂z_t/∂x(p_s) = Σ_s w_s Lᵀ r_s = Lᵀ (Σ_s w_s r_s):

one pass down L for all S points instead of S.  On the straight path of integrated
gradients L's forward pass is affine too, L(x̄ + α(x − x̄)) = L(x̄) + α (L(x) − L(x̄)), so
two passes up L (at x̄ and at x) give every point's.  The first convolution is often the
widest of a network (the shipped one's reads 32 × 32 images): these two sums skip most
of its work.  The results are the direct ones up to the rounding of a reordered sum.

``split_affine_prefix`` cuts a network so (``AffineSplit``), and ``weighted_gradient_sum``
runs the points through the rest in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import checks, nn
from ..nn.network import NETWORK_INPUT
from .targets import backward_from_logits, traced_logits

__all__ = ["AFFINE_LAYERS", "AffineSplit", "split_affine_prefix", "weighted_gradient_sum"]

#: layers whose forward pass is affine and whose way back reads only sizes from it
AFFINE_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                 nn.Flatten, nn.Dropout, nn.Identity, nn.ConvTranspose2d, nn.Upsample,
                 nn.Pad, nn.ChannelAffine)


@dataclass
class AffineSplit:
    """A network cut after its first ``prefix`` layers, all affine (``AFFINE_LAYERS``):
    ``rest`` is the network of the other layers, reading layer ``prefix − 1``'s output
    (with ``prefix = 0``, the network itself)."""

    net: nn.Network
    prefix: int
    rest: nn.Network

    def forward(self, x):
        """L(x): the output of the prefix for images x (x itself when it is empty)."""
        if not self.prefix:
            return x
        return self.net.forward_outputs(x, [self.prefix - 1])[self.prefix - 1]

    def transpose(self, signal, images):
        """Lᵀ signal, the way down the prefix for a signal at its output; the sizes its
        layers need come from one pass on ``images``."""
        if not self.prefix:
            return signal
        trace = self.net.trace(images, upto=self.prefix - 1)
        return self.net.backward(signal, trace, start=self.prefix - 1)


def _reads_only_last_of_prefix(net, prefix):
    """True if layers 0 … prefix − 1 form a chain from the input whose only reader
    outside it is layer ``prefix − 1``'s output: then the rest is a network of its own."""
    for i in range(prefix):
        if net.inputs_of(i) != ((NETWORK_INPUT,) if i == 0 else (i - 1,)):
            return False
    inside = set(range(-1, prefix - 1))
    return all(not inside.intersection(net.inputs_of(i)) for i in range(prefix, len(net)))


def split_affine_prefix(net: nn.Network) -> AffineSplit:
    """Cut ``net`` after its longest run of leading affine layers that the rest reads only
    at its end (``AffineSplit``); the logits always stay in the rest."""
    prefix = 0
    while prefix < net.output_layer() and isinstance(net.layers[prefix], AFFINE_LAYERS):
        prefix += 1
    while prefix and not _reads_only_last_of_prefix(net, prefix):
        prefix -= 1
    if not prefix:
        return AffineSplit(net, 0, net)
    if isinstance(net, nn.Sequential):
        rest = nn.Sequential(*net.layers[prefix:])
    else:
        source = net.names[prefix - 1]
        rest = nn.Graph([nn.Node(node.name, node.layer,
                                 tuple(nn.Graph.INPUT if name == source else name
                                       for name in node.inputs))
                         for node in net.nodes[prefix:]])
    return AffineSplit(net, prefix, rest)


def weighted_gradient_sum(split: AffineSplit, images, targets, weights,
                          points_after_prefix: Callable, batch_size=None):
    """Σ_s w_s ∂z_t/∂x(p_s) for each image, (N, C, H, W).

    ``points_after_prefix(samples)`` returns L(p_s) for the sample indices ``samples``
    (a slice), shaped (len, N) + L's output shape; ``weights`` are the S w_s; the points
    go through the rest of the network ``batch_size`` images at a time (whole samples,
    at least one; default all at once)."""
    count, n = len(weights), len(images)
    per_pass = count if batch_size is None else \
        max(1, checks.check_int(batch_size, "batch_size", minimum=1) // n)
    total = None
    for first in range(0, count, per_pass):
        samples = slice(first, min(first + per_pass, count))
        points = points_after_prefix(samples)
        flat = points.reshape((-1,) + points.shape[2:])
        trace, logits, flat_targets = traced_logits(split.rest, flat,
                                                    np.tile(targets, len(points)))
        signal = backward_from_logits(split.rest, trace, logits, flat_targets)
        signal = signal.reshape(points.shape)
        part = np.tensordot(weights[samples].astype(signal.dtype), signal, axes=1)
        total = part if total is None else total + part
    return split.transpose(total, images)
