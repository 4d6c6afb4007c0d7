"""Normalisations by each image's own statistics: ``ChannelLayerNorm`` (LayerNorm over the
channels at every position — ConvNeXt's) and ``GroupNorm``.

Both standardise a set S of m values of one image and scale and shift each channel:

    x̂ = (x − μ_S) / σ_S,   μ_S = mean_S x,   σ_S = √(var_S x + ε),   y = γ_c x̂ + β_c

S is the C channels at one (h, w) for ``ChannelLayerNorm``, and the C/G channels of one
group over all (H, W) for ``GroupNorm``.  Unlike batch norm at inference these are not
affine in x (μ and σ depend on it); the Jacobian of x ↦ x̂ over one set is

    ∂x̂/∂x = (1/σ) (I − 11ᵀ/m − x̂ x̂ᵀ/m)        — symmetric,

so with g′ = γ g the way back is  (1/σ)(g′ − mean_S g′ − x̂ · mean_S(g′ x̂)).  The forward
pass records x̂ and 1/σ, which is all that needs.  No rectifier: every rule passes this
exact Jacobian.
"""

from __future__ import annotations

import numpy as np

from .. import checks
from .layers import Layer, affine_grads


def standardise(x, axes, eps):
    """``(x̂, 1/σ)`` of x over ``axes``: x̂ = (x − mean) / √(var + ε) (the biased variance,
    as torch's layer_norm and group_norm); 1/σ keeps its reduced axes as size 1."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    inv_std = 1.0 / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
    centred *= inv_std                  # in place: x̂, one array fewer to allocate
    return centred, inv_std


def standardise_backward(grad, normalised, inv_std, axes):
    """The transpose of ∂x̂/∂x (symmetric) applied to ``grad``: (1/σ)(g − mean g −
    x̂ · mean(g x̂)), the means over ``axes``."""
    mean_grad = grad.mean(axis=axes, keepdims=True)
    mean_projection = (grad * normalised).mean(axis=axes, keepdims=True)
    return inv_std * (grad - mean_grad - normalised * mean_projection)


def _check_affine(weight, bias, channels_from):
    """γ and β: (C,) each or None, of one dtype.  Returns C (None when both are None)."""
    channels = None
    for name, value in (("weight", weight), ("bias", bias)):
        if value is None:
            continue
        checks.check_float_array(value, name, ndim=1, layout="(C,)")
        if channels is not None and len(value) != channels:
            raise ValueError(f"{name} has {len(value)} values, weight {channels}: one "
                             f"per channel each")
        channels = len(value)
    if weight is not None and bias is not None:
        checks.check_same_dtype(weight, "weight", bias, "bias")
    return channels if channels is not None else channels_from


class _Standardisation(Layer):
    """What both layers share: γ and β, the checks, the scale and shift of x̂, the grads."""

    param_names = ("weight", "bias")

    def _check_input(self, x):
        checks.check_float_array(x, "x", ndim=4, layout="(N, C, H, W)")
        if self.channels is not None and x.shape[1] != self.channels:
            raise ValueError(f"x must have {self.channels} channels, got shape {x.shape}")
        for value, name in ((self.weight, "weight"), (self.bias, "bias")):
            if value is not None:
                checks.check_same_dtype(x, "x", value, name)

    def input_channels(self):
        return self.channels

    def _affine(self, normalised):
        if self.weight is None and self.bias is None:
            return normalised.copy()          # the record keeps x̂: the output is its own
        y = normalised * (1 if self.weight is None else self.weight[:, None, None])
        if self.bias is not None:
            y += self.bias[:, None, None]     # in place: y is a fresh array
        return y

    def _scaled_signal(self, grad):
        return grad if self.weight is None else grad * self.weight[:, None, None]

    def param_grads(self, grad, record):
        return affine_grads(grad, self.normalised(record), self.weight, self.bias)

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or (self.channels is not None and
                                     input_shape[0] != self.channels):
            want = "C" if self.channels is None else self.channels
            raise ValueError(f"expects an input ({want}, H, W), got {tuple(input_shape)}")
        return tuple(input_shape)


class ChannelLayerNorm(_Standardisation):
    """LayerNorm over the channels at every position of an (N, C, H, W) input — what
    ``nn.LayerNorm(C)`` computes on the (N, H, W, C) permutation of it (ConvNeXt):
    y[n, :, h, w] = γ ⊙ (x − μ) / σ + β, μ and σ over the C values at (n, h, w).
    ``weight`` (γ) and ``bias`` (β) are (C,) or None (γ = 1, β = 0).  Records (x̂, 1/σ)."""

    def __init__(self, weight=None, bias=None, eps=1e-5):
        self.channels = _check_affine(weight, bias, None)
        self.weight, self.bias = weight, bias
        self.eps = checks.check_real(eps, "eps", above=0)

    def forward(self, x):
        self._check_input(x)
        normalised, inv_std = standardise(x, (1,), self.eps)
        return self._affine(normalised), (normalised, inv_std)

    def normalised(self, record):
        return record[0]

    def backward(self, grad, record, rule="backprop"):
        normalised, inv_std = record
        return standardise_backward(self._scaled_signal(grad), normalised, inv_std, (1,))

    def config(self):
        return dict(eps=self.eps)


class GroupNorm(_Standardisation):
    """Group normalisation (``torch.nn.GroupNorm``): the C channels of an (N, C, H, W)
    input in ``num_groups`` groups of C/G consecutive channels, each group of each image
    standardised over its (C/G)·H·W values, then γ_c x̂ + β_c.  ``weight`` (γ) and
    ``bias`` (β) are (C,) or None.  Records (x̂, 1/σ), x̂ in (N, G, C/G, H, W)."""

    #: the axes of (N, G, C/G, H, W) one group's statistics run over
    AXES = (2, 3, 4)
    #: every output depends, through μ and σ, on every position of its group
    mixes_positions = True

    def __init__(self, num_groups, weight=None, bias=None, eps=1e-5):
        self.num_groups = checks.check_int(num_groups, "num_groups", minimum=1)
        self.channels = _check_affine(weight, bias, None)
        if self.channels is not None and self.channels % self.num_groups:
            raise ValueError(f"num_groups={num_groups} must divide the {self.channels} "
                             f"channels of weight and bias")
        self.weight, self.bias = weight, bias
        self.eps = checks.check_real(eps, "eps", above=0)

    def _grouped(self, a):
        n, c, h, w = a.shape
        return a.reshape(n, self.num_groups, c // self.num_groups, h, w)

    def forward(self, x):
        self._check_input(x)
        if x.shape[1] % self.num_groups:
            raise ValueError(f"x has {x.shape[1]} channels, which num_groups="
                             f"{self.num_groups} does not divide")
        normalised, inv_std = standardise(self._grouped(x), self.AXES, self.eps)
        return self._affine(normalised.reshape(x.shape)), (normalised, inv_std)

    def normalised(self, record):
        n, g, per_group, h, w = record[0].shape
        return record[0].reshape(n, g * per_group, h, w)

    def backward(self, grad, record, rule="backprop"):
        normalised, inv_std = record
        passed = standardise_backward(self._grouped(self._scaled_signal(grad)), normalised,
                                      inv_std, self.AXES)
        return passed.reshape(grad.shape)

    def output_shape(self, input_shape):
        shape = super().output_shape(input_shape)
        if shape[0] % self.num_groups:
            raise ValueError(f"num_groups={self.num_groups} does not divide the "
                             f"{shape[0]} channels of the input {shape}")
        return shape

    def config(self):
        return dict(num_groups=self.num_groups, eps=self.eps)
