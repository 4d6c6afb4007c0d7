"""The fx nodes of products, of sums with constants and of group normalisation: how
squeeze-and-excitation, layer scale and ``F.group_norm`` are recognised.

* ``a * b`` (``operator.mul``, ``torch.mul``, ``Tensor.mul``, ``*=``) of two tensors
  computed in forward → ``nn.Mul`` (a (N, C, 1, 1) gate broadcast over the other's
  (H, W): squeeze-and-excitation's ``scale * input``);
* ``a * t`` with t a constant — a tensor of the model read by a ``get_attr`` node
  (ConvNeXt's ``self.layer_scale``, an ``nn.Parameter`` of shape (C, 1, 1)) or a number —
  → ``nn.ChannelAffine(scale=t)``; ``a + t`` → ``nn.ChannelAffine(1, shift=t)``.  The
  constant must hold one value per channel or one for all: (C, 1, 1), (1, C, 1, 1), (1,)
  or a number — or (C,) on a channels-last value (``channels_last``), where the channels
  are the last axis;
* ``F.group_norm(x, G, weight, bias, eps)`` with weight and bias read by ``get_attr``
  (or None) → ``nn.GroupNorm``.

``get_attr`` nodes themselves are not layers: one read here is consumed by the node that
uses it; any other use of a model tensor in forward is refused by ``fx_nodes``.

PyTorch is imported only when a function here runs.
"""

from __future__ import annotations

import operator

import numpy as np

from ... import nn
from .layers import import_torch, to_numpy


def model_tensor(node, modules):
    """The tensor a ``get_attr`` node reads (``"layer_scale"``, ``"ds.weight"``)."""
    holder = modules[""]
    for part in node.target.split("."):
        holder = getattr(holder, part)
    return holder


def _model_dtype(modules):
    """The dtype of the model's first parameter or buffer (float32 if it has none): the
    dtype a number in forward (``x * 0.5``) is computed in."""
    torch = import_torch()
    root = modules[""]
    for tensor in list(root.parameters()) + list(root.buffers()):
        if tensor.is_floating_point():
            return to_numpy(tensor).dtype
    return to_numpy(torch.zeros(0)).dtype         # torch's default dtype


def constant_value(value, modules):
    """A NumPy array for a constant operand (a ``get_attr`` tensor or a number), None for
    a tensor computed in forward."""
    torch = import_torch()
    if isinstance(value, torch.fx.Node):
        return to_numpy(model_tensor(value, modules)) if value.op == "get_attr" else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.array([value], dtype=_model_dtype(modules))
    return None


def per_channel(constant, where, channels_last=False):
    """``constant`` as a (C,) or (1,) array — one value per channel, or one for all —
    else a ValueError naming the node and the shape."""
    shape = constant.shape
    core = shape
    while len(core) > 1 and core[0] == 1:          # leading ones broadcast away
        core = core[1:]
    if constant.size == 1:
        return constant.reshape(1)
    if (channels_last and len(core) == 1) or \
            (not channels_last and len(core) == 3 and core[1:] == (1, 1)):
        return np.ascontiguousarray(constant.reshape(-1))
    expected = "(C,) or (1, 1, 1, C) (the last axis here is the channels)" \
        if channels_last else "(C, 1, 1) or (1, C, 1, 1)"
    raise ValueError(f"{where}: its constant operand has shape {tuple(shape)}, not one "
                     f"value per channel {expected} nor a single value")


class ProductCallables:
    """The torch callables of products and sums (built once torch is imported)."""

    def __init__(self):
        torch = import_torch()
        self.mul = {operator.mul, torch.mul}
        self.mul_in_place = {operator.imul}
        self.add = {operator.add, torch.add}
        self.add_in_place = {operator.iadd}
        self.group_norm = {torch.nn.functional.group_norm, torch.group_norm}


_CALLABLES = None


def _callables():
    global _CALLABLES
    if _CALLABLES is None:
        _CALLABLES = ProductCallables()
    return _CALLABLES


def _operation(node):
    """``("mul" or "add", in place)`` of a product or sum node, else ``(None, False)``."""
    c = _callables()
    if node.op == "call_function":
        for kind in ("mul", "add"):
            if node.target in getattr(c, kind):
                return kind, False
            if node.target in getattr(c, f"{kind}_in_place"):
                return kind, True
    if node.op == "call_method" and node.target in ("mul", "mul_", "add", "add_"):
        return node.target.rstrip("_"), node.target.endswith("_")
    return None, False


def _operands(node, where):
    if len(node.args) != 2 or node.kwargs:
        raise ValueError(f"{where}: expects two operands, got args {node.args} and "
                         f"{node.kwargs}")
    return node.args


def product_layer(node, modules, where, channels_last=False):
    """``(layer, inputs, in_place)`` for a product, a sum with a constant or a
    group_norm node; None for any other node (and for a sum of two tensors, which
    ``fx_nodes`` reads as ``nn.Add``)."""
    kind, in_place = _operation(node)
    if node.op == "call_function" and node.target in _callables().group_norm:
        return _group_norm(node, modules, where), (node.args[0],), False
    if kind is None or (kind == "add" and node.kwargs):
        return None                    # torch.add(x, y, alpha=…): fx_nodes says why not
    a, b = _operands(node, where)
    constants = [constant_value(v, modules) for v in (a, b)]
    if constants[0] is None and constants[1] is None:
        return (nn.Mul(), (a, b), in_place) if kind == "mul" else None
    if constants[0] is not None and constants[1] is not None:
        raise ValueError(f"{where}: both operands are constants; minideconv reads a "
                         f"{kind} that involves the network's input")
    tensor, constant = (b, constants[0]) if constants[0] is not None else (a, constants[1])
    if not isinstance(tensor, import_torch().fx.Node):
        raise ValueError(f"{where}: its operand {tensor!r} is neither a tensor nor a "
                         f"constant minideconv reads")
    if in_place and tensor is not a:
        raise ValueError(f"{where}: an in-place {kind} into a constant")
    values = per_channel(constant, where, channels_last)
    layer = nn.ChannelAffine(values) if kind == "mul" else \
        nn.ChannelAffine(np.ones(1, values.dtype), values)
    return layer, (tensor,), in_place


def _group_norm(node, modules, where):
    names = ["input", "num_groups", "weight", "bias", "eps"]
    bound = dict(zip(names, node.args), **node.kwargs)
    unknown = sorted(set(bound) - set(names))
    if unknown or "num_groups" not in bound:
        raise ValueError(f"{where}: expects group_norm(input, num_groups, weight, bias, "
                         f"eps), got args {node.args} and {node.kwargs}")
    affine = [None if bound.get(key) is None else constant_value(bound[key], modules)
              for key in ("weight", "bias")]
    for key, value in zip(("weight", "bias"), affine):
        if bound.get(key) is not None and value is None:
            raise ValueError(f"{where}: its {key} is computed in forward; minideconv reads "
                             f"it from a tensor of the model")
    return nn.GroupNorm(int(bound["num_groups"]), affine[0], affine[1],
                        float(bound.get("eps", 1e-5)))
