"""Channels-last regions of a traced model: ``permute(0, 2, 3, 1)`` … ``permute(0, 3, 1, 2)``
read as NCHW layers, the permutes dropped.

ConvNeXt normalises and mixes the channels at every position in (N, H, W, C), where
``nn.LayerNorm(C)`` and ``nn.Linear`` act on the last axis::

    Conv2d → permute(0, 2, 3, 1) → LayerNorm(C) → Linear(C, 4C) → GELU → Linear(4C, C)
           → permute(0, 3, 1, 2)

minideconv's layers are NCHW.  Between the two permutes every operation must be
position-wise — the same map at every (h, w) — and then it has an NCHW twin:

* ``nn.LayerNorm(C)`` / ``F.layer_norm`` over the last axis → ``nn.ChannelLayerNorm``;
* ``nn.Linear`` on the last axis → a 1×1 ``nn.Conv2d`` with the same weights;
* an element-wise layer (``ELEMENT_WISE_LAYERS``: ReLU, Dropout, Identity, the
  activations without weights) → itself;
* a product or sum with a (C,) constant → ``nn.ChannelAffine``; of two channels-last
  tensors → ``nn.Mul`` / ``nn.Add``.

A permute(0, 2, 3, 1) and its closing permute(0, 3, 1, 2) are no layers: their value is
the value they read, in the other order.  Anything else that reads a channels-last value,
any other permute, and a region that reaches the output unclosed are refused in one line
naming the node and the permute that opened the region.

PyTorch is imported only when a function here runs.
"""

from __future__ import annotations

from ... import nn
from .fx_nodes import node_layer
from .fx_products import constant_value, product_layer
from .layers import import_torch, to_numpy

#: permute's dims: into channels-last, and back
TO_CHANNELS_LAST = (0, 2, 3, 1)
TO_CHANNELS_FIRST = (0, 3, 1, 2)

#: what a region may hold, for the refusals
POSITION_WISE = ("LayerNorm over the last axis, Linear, element-wise activations, and "
                 "products and sums with a (C,) constant or of two channels-last values")

#: ``read``'s answer for a permute: its value is the value it reads (no layer)
SAME_VALUES = "same values"


def permute_dims(node):
    """The dims of a ``torch.permute`` / ``Tensor.permute`` node (a tuple), else None."""
    torch = import_torch()
    if node.op == "call_function" and node.target is torch.permute:
        dims = node.kwargs.get("dims", node.args[1] if len(node.args) > 1 else None)
    elif node.op == "call_method" and node.target == "permute":   # x.permute(0, 2, 3, 1)
        dims = node.args[1:] if len(node.args) > 2 else \
            node.kwargs.get("dims", node.args[1] if len(node.args) > 1 else None)
    else:
        return None
    return tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)


#: the layers that map each value by itself, whatever its axis, by class name: the same
#: in (N, H, W, C) as in (N, C, H, W).  A layer that mixes channels (LRN, a softmax) or
#: has a weight per channel (PReLU) is not among them: torch's function on a channels-last
#: tensor would act on its axis 1, H.
ELEMENT_WISE_LAYERS = ("ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "ELU", "CELU", "SELU",
                       "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid",
                       "Softplus", "Mish", "Dropout", "Identity")


def is_element_wise(layer) -> bool:
    """A layer of ``ELEMENT_WISE_LAYERS``: one input, each value mapped by itself."""
    return type(layer).__name__ in ELEMENT_WISE_LAYERS and not layer.params()


class ChannelsLastRegions:
    """Which fx values are channels-last, and the NCHW layer of each node that reads one.

    ``opened_by[node]`` is the permute(0, 2, 3, 1) whose region ``node``'s value is in."""

    def __init__(self, modules, describe):
        self.modules, self.describe = modules, describe
        self.opened_by = {}

    def read(self, node, where):
        """``SAME_VALUES`` for a permute that opens or closes a region, ``(layer, inputs,
        in_place)`` for a node of a region, None for a node outside any region."""
        dims = permute_dims(node)
        inside = [v for v in node.all_input_nodes if v in self.opened_by]
        if dims is not None:
            return self._permute(node, dims, where, inside)
        if not inside:
            if self._is_layer_norm(node):
                raise ValueError(f"{where}: a LayerNorm of an NCHW value normalises over "
                                 f"W; minideconv reads LayerNorm over the channels, inside "
                                 f"permute(0, 2, 3, 1) … permute(0, 3, 1, 2)")
            return None
        opened = self.opened_by[inside[0]]
        found = self._position_wise(node, where, opened)
        mixed = [v for v in found[1] if v not in self.opened_by]
        if mixed:
            raise ValueError(f"{where} joins the channels-last value of "
                             f"{self.describe(opened)}'s region with "
                             f"{mixed[0].name!r}, which is channels-first")
        self.opened_by[node] = opened
        return found

    def _permute(self, node, dims, where, inside):
        if inside and dims == TO_CHANNELS_FIRST:
            return SAME_VALUES                 # closes the region: NCHW again
        if not inside and dims == TO_CHANNELS_LAST:
            self.opened_by[node] = node
            return SAME_VALUES
        state = "inside a channels-last region" if inside else "of an NCHW value"
        raise ValueError(f"{where}: permute{dims} {state}; minideconv reads a permute "
                         f"only as permute(0, 2, 3, 1) … permute(0, 3, 1, 2) around "
                         f"position-wise operations ({POSITION_WISE})")

    def _is_layer_norm(self, node):
        torch = import_torch()
        return (node.op == "call_module" and
                isinstance(self.modules[node.target], torch.nn.LayerNorm)) or \
            (node.op == "call_function" and node.target is torch.nn.functional.layer_norm)

    def _position_wise(self, node, where, opened):
        torch = import_torch()
        refusal = (f"{where} reads the channels-last value of the region opened by "
                   f"{self.describe(opened)}; between permute(0, 2, 3, 1) and "
                   f"permute(0, 3, 1, 2) minideconv reads only {POSITION_WISE}")
        if node.op == "call_module":
            module = self.modules[node.target]
            if isinstance(module, torch.nn.LayerNorm):
                return self._layer_norm(module.normalized_shape, module.weight,
                                        module.bias, module.eps, where), node.args[:1], False
            if isinstance(module, torch.nn.Linear):
                weight = to_numpy(module.weight)[:, :, None, None]
                bias = None if module.bias is None else to_numpy(module.bias)
                return nn.Conv2d(weight, bias), node.args[:1], False
        if node.op == "call_function" and node.target is torch.nn.functional.layer_norm:
            return self._functional_layer_norm(node, where), node.args[:1], False
        found = product_layer(node, self.modules, where, channels_last=True)
        if found is not None:
            return found
        try:
            layer, inputs, in_place = node_layer(node, self.modules, where)
        except ValueError:
            raise ValueError(refusal) from None
        if isinstance(layer, nn.Add) or is_element_wise(layer):
            return layer, inputs, in_place
        raise ValueError(refusal)

    def _functional_layer_norm(self, node, where):
        names = ["input", "normalized_shape", "weight", "bias", "eps"]
        bound = dict(zip(names, node.args), **node.kwargs)
        if set(bound) - set(names) or "normalized_shape" not in bound:
            raise ValueError(f"{where}: expects layer_norm(input, normalized_shape, weight, "
                             f"bias, eps), got args {node.args} and {node.kwargs}")
        affine = []
        for key in ("weight", "bias"):
            value = bound.get(key)
            array = None if value is None else constant_value(value, self.modules)
            if value is not None and array is None:
                raise ValueError(f"{where}: its {key} is computed in forward; minideconv "
                                 f"reads it from a tensor of the model")
            affine.append(array)
        return self._layer_norm(bound["normalized_shape"], *affine,
                                bound.get("eps", 1e-5), where)

    def _layer_norm(self, normalized_shape, weight, bias, eps, where):
        shape = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) \
            else (normalized_shape,)
        if len(shape) != 1:
            raise ValueError(f"{where}: normalises over the last {len(shape)} axes "
                             f"{shape}; minideconv reads a LayerNorm over the channels "
                             f"(the last axis) only")
        weight, bias = (value if value is None or not hasattr(value, "detach")
                        else to_numpy(value) for value in (weight, bias))
        return nn.ChannelLayerNorm(weight, bias, eps=float(eps))

    def unclosed(self, result):
        """Why the model's output cannot be ``result``: a channels-last value (None when it
        is not)."""
        if result not in self.opened_by:
            return None
        return (f"the model returns a channels-last value: the permute(0, 2, 3, 1) "
                f"{self.describe(self.opened_by[result])} is not closed by a "
                f"permute(0, 3, 1, 2)")
