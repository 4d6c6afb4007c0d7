"""The activation modules of ``torch.nn`` ↔ the layers of ``minideconv.nn.activations``.

=====================  =======================================  ==========================
torch module           minideconv layer                         back to torch
=====================  =======================================  ==========================
ReLU6                  ClippedReLU(6)                           ReLU6
Hardtanh(0, m)         ClippedReLU(m)                           Hardtanh(0, m)
LeakyReLU(α)           LeakyReLU(α)                             LeakyReLU(α)
PReLU                  PReLU(weight)                            PReLU
SiLU, GELU, ELU,       the layer of the same name               the same module
Sigmoid, Tanh,         (Hardsigmoid: α = 1/6, β = 1/2)
Hardswish, Hardsigmoid
=====================  =======================================  ==========================

``Hardtanh`` with ``min_val ≠ 0`` is not a rectifier of the rule table (its lower piece
is a cap, not a slope) and is refused.  ``inplace=True`` is read as an in-place layer
(``module_in_place``).  PyTorch is imported only when a function here runs.
"""

from __future__ import annotations

from ... import nn
from .tensors import copy_weight

#: what ``from_torch`` reads here, for ``layers.SUPPORTED``
SUPPORTED_ACTIVATIONS = ("ReLU6, Hardtanh(0, m), LeakyReLU, PReLU, SiLU, GELU, ELU, "
                         "Sigmoid, Tanh, Hardswish, Hardsigmoid (modules, in place or not)")

#: the layers without hyper-parameters, named as their torch module
SAME_NAME = (nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish)

#: torch's Hardsigmoid: relu6(x + 3)/6 = clip(x/6 + 1/2, 0, 1)
TORCH_HARDSIGMOID = dict(alpha=1 / 6, beta=0.5)


def hardtanh_layer(min_val, max_val, where):
    """Hardtanh(min_val, max_val) / clamp(min_val, max_val) as a ClippedReLU, or the one
    line that says why not: only min_val = 0 is a rectifier of the rule table."""
    if float(min_val) != 0.0:
        raise ValueError(f"{where}: Hardtanh/clamp with min_val={min_val} is not a "
                         f"rectifier of the rule table (min_val must be 0: ReLU6, "
                         f"Hardtanh(0, m), clamp(x, 0, m))")
    if max_val is None:
        return nn.ReLU()
    if not float(max_val) > 0:
        raise ValueError(f"{where}: max_val={max_val} must be > 0 for a clipped ReLU")
    return nn.ClippedReLU(float(max_val))


def activation_from_module(module, where, torch):
    """The minideconv layer for an activation module of ``torch.nn``, or None when
    ``module`` is none of them."""
    tnn = torch.nn
    if isinstance(module, tnn.Hardtanh):            # ReLU6 is a Hardtanh(0, 6)
        return hardtanh_layer(module.min_val, module.max_val, where)
    if isinstance(module, tnn.LeakyReLU):
        return nn.LeakyReLU(float(module.negative_slope))
    if isinstance(module, tnn.PReLU):
        return nn.PReLU(module.weight.detach().cpu().numpy().copy())
    if isinstance(module, tnn.GELU):
        return nn.GELU(module.approximate)
    if isinstance(module, tnn.ELU):
        return nn.ELU(float(module.alpha))
    if isinstance(module, tnn.Hardsigmoid):
        return nn.Hardsigmoid(**TORCH_HARDSIGMOID)
    for layer_type in SAME_NAME:
        if isinstance(module, getattr(tnn, layer_type.__name__)):
            return layer_type()
    return None


def module_in_place(module, torch) -> bool:
    """Does this module overwrite its input (``inplace=True``)?  Only activations (and
    ReLU) are read as in-place layers."""
    activation = (torch.nn.ReLU, torch.nn.Hardtanh, torch.nn.LeakyReLU, torch.nn.SiLU,
                  torch.nn.ELU, torch.nn.Hardswish, torch.nn.Hardsigmoid)
    return isinstance(module, activation) and bool(module.inplace)


def module_from_activation(layer, dtype, torch):
    """A fresh torch module for an activation layer of ``minideconv.nn.activations``, or
    None when ``layer`` is none of them."""
    tnn = torch.nn
    if isinstance(layer, nn.ClippedReLU):
        return tnn.ReLU6() if layer.cap == 6.0 else tnn.Hardtanh(0.0, layer.cap)
    if isinstance(layer, nn.LeakyReLU):
        return tnn.LeakyReLU(layer.negative_slope)
    if isinstance(layer, nn.PReLU):
        module = tnn.PReLU(len(layer.weight), dtype=dtype)
        copy_weight(module.weight, layer.weight)
        return module
    if isinstance(layer, nn.GELU):
        return tnn.GELU(approximate=layer.approximate)
    if isinstance(layer, nn.ELU):
        return tnn.ELU(layer.alpha)
    if isinstance(layer, nn.Hardsigmoid):
        if (layer.alpha, layer.beta) != tuple(TORCH_HARDSIGMOID.values()):
            raise ValueError(f"no torch module for Hardsigmoid(alpha={layer.alpha}, "
                             f"beta={layer.beta}): torch's has alpha=1/6, beta=1/2")
        return tnn.Hardsigmoid()
    if isinstance(layer, SAME_NAME):
        return getattr(tnn, type(layer).__name__)()
    return None
