"""The torch operations that mix channels at each position ↔ ``nn.Softmax``,
``nn.LocalResponseNorm``, ``nn.ChannelShuffle``: modules, functions, methods, and the
channel shuffle written out by hand.

* ``nn.Softmax(dim=1)``, ``F.softmax(x, dim=1)``, ``torch.softmax``, ``x.softmax(1)``
  (dim −1 too: the same axis of (N, F) features) → ``Softmax``;
* ``nn.LocalResponseNorm``, ``F.local_response_norm`` → ``LocalResponseNorm`` (torch's
  window: size // 2 channels before c);
* ``nn.ChannelShuffle(g)``, ``F.channel_shuffle(x, g)`` → ``ChannelShuffle(g)``, and the
  chain ShuffleNet's code writes::

      n, c, h, w = x.size()
      x = x.view(n, g, c // g, h, w)                  # or .reshape
      x = torch.transpose(x, 1, 2).contiguous()       # x.transpose(1, 2), x.permute(0, 2, 1, 3, 4)
      x = x.view(n, -1, h, w)                         # or (n, c, h, w)

  read at its last view, as one layer of the first view's input (the steps between are
  then read by nothing; a step read elsewhere is refused as fx_nodes refuses it).

PyTorch is imported only when a function here runs.
"""

from __future__ import annotations

import operator

from ... import nn


def import_torch():
    """torch: ``layers`` and ``fx_nodes``, the callers, have imported it with its
    install hint (``layers.import_torch``, which imports this module: no cycle here)."""
    import torch
    return torch


def dimension_index(value, tensor_node):
    """d when ``value`` is ``x.size(d)``, ``x.size()[d]`` or ``x.shape[d]`` of the fx node
    ``tensor_node``; None otherwise."""
    torch = import_torch()
    if not isinstance(value, torch.fx.Node):
        return None
    if value.op == "call_method" and value.target == "size" and value.args[0] is tensor_node:
        dims = list(value.args[1:]) + list(value.kwargs.values())
        return dims[0] if len(dims) == 1 and isinstance(dims[0], int) else None
    if value.op == "call_function" and value.target is operator.getitem and \
            isinstance(value.args[1], int) and isinstance(value.args[0], torch.fx.Node):
        whole = value.args[0]
        if whole.op == "call_method" and whole.target == "size" and \
                len(whole.args) == 1 and not whole.kwargs and whole.args[0] is tensor_node:
            return value.args[1]
        if whole.op == "call_function" and whole.target is getattr and \
                whole.args[1:] == ("shape",) and whole.args[0] is tensor_node:
            return value.args[1]
    return None


def _shape_arguments(node):
    """The target shape of a ``view`` / ``reshape`` call (as a tuple or spread out)."""
    args = node.args[1:]
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _is_view(node):
    return node.op == "call_method" and node.target in ("view", "reshape") and \
        not node.kwargs


def _swaps_groups(node):
    """Is ``node`` x.transpose(1, 2), torch.transpose(x, 1, 2) or x.permute(0,2,1,3,4)?"""
    torch = import_torch()
    if node.kwargs:
        return False
    if (node.op == "call_method" and node.target == "transpose") or \
            (node.op == "call_function" and node.target is torch.transpose):
        return sorted(node.args[1:]) == [1, 2]
    if node.op == "call_method" and node.target == "permute":
        perm = _shape_arguments(node)
        return list(perm) == [0, 2, 1, 3, 4]
    return False


def shuffle_chain(node):
    """``(groups, x)`` when the view ``node`` closes the channel shuffle chain of the
    module docstring, read from the tensor ``x``; None otherwise."""
    torch = import_torch()
    if not _is_view(node):
        return None
    swapped = node.args[0]
    if isinstance(swapped, torch.fx.Node) and swapped.op == "call_method" and \
            swapped.target == "contiguous" and len(swapped.args) == 1:
        swapped = swapped.args[0]
    if not isinstance(swapped, torch.fx.Node) or not _swaps_groups(swapped):
        return None
    grouped = swapped.args[0]
    if not isinstance(grouped, torch.fx.Node) or not _is_view(grouped):
        return None
    x = grouped.args[0]
    split = _shape_arguments(grouped)
    if len(split) != 5 or not isinstance(split[1], int) or split[1] < 1:
        return None
    groups, per_group = split[1], split[2]
    divides = isinstance(per_group, int) or (
        isinstance(per_group, torch.fx.Node) and per_group.op == "call_function" and
        per_group.target is operator.floordiv and dimension_index(per_group.args[0], x) == 1
        and per_group.args[1] == groups)
    joined = _shape_arguments(node)
    if not divides or [dimension_index(v, x) for v in split[3:]] != [2, 3] or \
            dimension_index(split[0], x) != 0 or len(joined) != 4 or \
            dimension_index(joined[0], x) != 0 or \
            [dimension_index(v, x) for v in joined[2:]] != [2, 3] or \
            not (joined[1] == -1 or dimension_index(joined[1], x) == 1):
        return None
    return groups, x


def _softmax_dim(dim, where):
    if dim not in (None, 1, -1):
        raise ValueError(f"{where}: softmax over dim={dim!r}; minideconv's Softmax "
                         f"normalises over the channels (dim=1, or -1 of (N, F))")
    return 1 if dim is None else dim        # torch's implicit dim of a 2-D / 4-D input


def node_layer(node, where, bind):
    """``(layer, inputs, in_place)`` for a softmax / local response norm / channel
    shuffle fx node (``bind`` is ``fx_nodes``' argument binder); None for any other."""
    torch = import_torch()
    F = torch.nn.functional
    op, target = node.op, node.target
    if (op == "call_function" and target in (F.softmax, torch.softmax)) or \
            (op == "call_method" and target == "softmax"):
        a = bind(node, where, ["input", "dim", "_stacklevel", "dtype"],
                 dict(dim=None, _stacklevel=3, dtype=None))
        if a["dtype"] is not None:
            raise ValueError(f"{where}: softmax with dtype={a['dtype']!r} is not read")
        return nn.Softmax(_softmax_dim(a["dim"], where)), (a["input"],), False
    if op == "call_function" and target is F.local_response_norm:
        a = bind(node, where, ["input", "size", "alpha", "beta", "k"],
                 dict(alpha=1e-4, beta=0.75, k=1.0))
        return nn.LocalResponseNorm(a["size"], a["alpha"], a["beta"], a["k"]), \
            (a["input"],), False
    if op == "call_function" and target in (F.channel_shuffle, torch.channel_shuffle):
        a = bind(node, where, ["input", "groups"])
        return nn.ChannelShuffle(a["groups"]), (a["input"],), False
    chain = shuffle_chain(node)
    if chain is not None:
        return nn.ChannelShuffle(chain[0]), (chain[1],), False
    return None


def layer_from_module(module, where):
    """The layer of a torch ``Softmax`` / ``LocalResponseNorm`` / ``ChannelShuffle``
    module; None for any other module."""
    tnn = import_torch().nn
    if isinstance(module, tnn.Softmax):
        return nn.Softmax(_softmax_dim(module.dim, where))
    if isinstance(module, tnn.LocalResponseNorm):
        return nn.LocalResponseNorm(module.size, module.alpha, module.beta, module.k)
    if isinstance(module, tnn.ChannelShuffle):
        return nn.ChannelShuffle(module.groups)
    return None


def module_from_layer(layer):
    """The torch module of a ``Softmax`` / ``LocalResponseNorm`` / ``ChannelShuffle``;
    None for any other layer."""
    tnn = import_torch().nn
    if isinstance(layer, nn.Softmax):
        return tnn.Softmax(dim=layer.dim)
    if isinstance(layer, nn.LocalResponseNorm):
        if layer.before != layer.size // 2:
            raise ValueError(f"no torch module for {layer!r}: its window has "
                             f"{layer.before} channels before c, torch's size // 2 = "
                             f"{layer.size // 2} (ONNX's window for an even size)")
        return tnn.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    if isinstance(layer, nn.ChannelShuffle):
        return tnn.ChannelShuffle(layer.groups)
    return None
