"""The torch modules ``to_torch`` writes for the products and normalisations that torch.nn
has no module of, so that each is one call at the path of its node's name — which
``from_torch`` reads back (``fx`` traces them as single calls):

* ``Product``: y = a * b (minideconv's ``nn.Mul``);
* ``ChannelAffine``: y = s_c · x + t_c, s and t buffers of shape (C,) or (1,);
* ``ChannelLayerNorm``: LayerNorm over the channels of (N, C, H, W) — permute to
  (N, H, W, C), ``F.layer_norm`` over the last axis, permute back.

``module_for(layer, dtype)`` writes one (GroupNorm as ``torch.nn.GroupNorm``),
``layer_for(module)`` reads one back.  Imported once PyTorch is needed; a ``torch.save``'d
model pickles these classes by this module's path.
"""

from __future__ import annotations

import numpy as np
import torch

from ... import nn

F = torch.nn.functional


def _buffer(value, dtype):
    return None if value is None else torch.tensor(np.ascontiguousarray(value), dtype=dtype)


class Product(torch.nn.Module):
    """y = a * b (minideconv's ``nn.Mul``)."""

    def forward(self, a, b):
        return a * b


class ChannelAffine(torch.nn.Module):
    """y = s_c · x + t_c on (N, C, …) (minideconv's ``nn.ChannelAffine``)."""

    def __init__(self, scale, shift=None):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x):
        shape = (-1,) + (1,) * (x.dim() - 2)
        y = x * self.scale.reshape(shape)
        return y if self.shift is None else y + self.shift.reshape(shape)


class ChannelLayerNorm(torch.nn.Module):
    """LayerNorm over the channels at every position of (N, C, H, W) (minideconv's
    ``nn.ChannelLayerNorm``)."""

    def __init__(self, weight=None, bias=None, eps=1e-5):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.eps = eps

    def forward(self, x):
        channels_last = x.permute(0, 2, 3, 1)
        normalised = F.layer_norm(channels_last, (x.shape[1],), self.weight, self.bias,
                                  self.eps)
        return normalised.permute(0, 3, 1, 2)


#: the modules fx keeps as single calls
LEAVES = (Product, ChannelAffine, ChannelLayerNorm)


def module_for(layer, dtype):
    """The torch module of a Mul, ChannelAffine, ChannelLayerNorm or GroupNorm layer;
    None for any other layer."""
    if isinstance(layer, nn.Mul):
        return Product()
    if isinstance(layer, nn.ChannelAffine):
        return ChannelAffine(_buffer(layer.scale, dtype), _buffer(layer.shift, dtype))
    if isinstance(layer, nn.ChannelLayerNorm):
        return ChannelLayerNorm(_buffer(layer.weight, dtype), _buffer(layer.bias, dtype),
                                layer.eps)
    if isinstance(layer, nn.GroupNorm):
        affine = layer.weight is not None or layer.bias is not None
        module = torch.nn.GroupNorm(layer.num_groups, layer.channels or layer.num_groups,
                                    eps=layer.eps, affine=affine, dtype=dtype)
        if affine:          # γ = 1, β = 0 stand in for a missing one
            with torch.no_grad():
                module.weight.copy_(_buffer(layer.weight, dtype) if layer.weight is not None
                                    else torch.ones(layer.channels, dtype=dtype))
                module.bias.copy_(_buffer(layer.bias, dtype) if layer.bias is not None
                                  else torch.zeros(layer.channels, dtype=dtype))
        return module
    return None


def layer_for(module):
    """The minideconv layer of one of this module's modules; None for any other."""
    def array(tensor):          # a copy: later changes to the module do not reach it
        return None if tensor is None else tensor.detach().cpu().numpy().copy()

    if isinstance(module, Product):
        return nn.Mul()
    if isinstance(module, ChannelAffine):
        return nn.ChannelAffine(array(module.scale), array(module.shift))
    if isinstance(module, ChannelLayerNorm):
        return nn.ChannelLayerNorm(array(module.weight), array(module.bias), module.eps)
    return None
