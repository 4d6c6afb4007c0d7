"""One torch.fx node → one minideconv layer: how each operation is recognised.

A traced ``forward`` is a list of fx nodes, each a ``call_module`` (a submodule, read by
``layers.layer_from_module``), a ``call_function`` (``torch.relu``, ``F.max_pool2d``,
``operator.add``, ``torch.cat``, …) or a ``call_method`` (``x.relu()``, ``x.view(…)``).
fx keeps a call as it was written — positional or keyword arguments, defaults left out —
so ``node_layer`` binds the arguments by name before it reads them, and refuses any it
does not understand with a ValueError that names the node (``describe_node``).

``x.view(x.size(0), -1)`` is a flatten: the nodes that compute the batch size
(``x.size(0)``, ``x.shape[0]``) are consumed by the view (``is_shape_node``), not layers.
An in-place operation (``F.relu(x, inplace=True)``, ``x += y``) is an ordinary layer with
the flag ``in_place``; ``fx.graph_from_fx`` rewires the later readers.  A
functional ``F.dropout`` traced with ``training=True`` is random and is refused.

PyTorch is imported only when a function here runs.
"""

from __future__ import annotations

import operator

from ... import nn
from . import channel_nodes
from .activations import module_in_place
from .fx_functions import activation_node_layer
from .fx_products import product_layer
from . import resampling
from .layers import SUPPORTED, as_pair, import_torch, layer_from_module


def describe_node(node, modules) -> str:
    """``"node 'sigmoid' (call_function torch.sigmoid)"``: the fx node and its operation."""
    if node.op == "call_module":
        what = f"call_module {type(modules[node.target]).__name__} {node.target!r}"
    elif node.op == "call_function":
        what = f"call_function {_function_name(node.target)}"
    elif node.op == "call_method":
        what = f"call_method Tensor.{node.target}"
    else:
        what = f"{node.op} {node.target!r}"
    return f"node {node.name!r} ({what})"


def _function_name(target) -> str:
    """``"torch.sigmoid"``, ``"operator.mul"``: the function's module and name, as fx
    prints a ``call_function`` target (torch.fx's own helper for it is private)."""
    module = getattr(target, "__module__", None)
    name = getattr(target, "__name__", None) or repr(target)
    owner = getattr(target, "__objclass__", None)       # a method: Tensor's, for instance
    if owner is not None:
        name = f"{owner.__name__}.{name}"
    if module in (None, "builtins"):
        return name
    return f"{'operator' if module == '_operator' else module}.{name}"


def _bind(node, where, names, defaults=None):
    """The call's arguments by parameter name (fx keeps a call as it was written)."""
    defaults = dict(defaults or {})
    if len(node.args) > len(names):
        raise ValueError(f"{where}: too many arguments {node.args}")
    bound = dict(zip(names, node.args))
    for key, value in node.kwargs.items():
        if key not in names:
            raise ValueError(f"{where}: argument {key}={value!r} is not supported")
        bound[key] = value
    for key in names:
        if key not in bound:
            if key not in defaults:
                raise ValueError(f"{where}: missing argument {key!r}")
            bound[key] = defaults[key]
    return bound


def _constant(value, name, where):
    torch = import_torch()
    flat = list(value) if isinstance(value, (tuple, list)) else [value]
    if any(isinstance(v, torch.fx.Node) for v in flat):
        raise ValueError(f"{where}: {name} must be a constant, not computed in forward")
    return value


class TorchCallables:
    """The torch callables each kind of node is recognised by: ``relu``, ``max_pool``,
    ``add``, ``cat``, … (sets; built once torch is imported, by ``torch_callables``)."""

    def __init__(self):
        torch = import_torch()
        F = torch.nn.functional
        self.relu = {torch.relu, F.relu}
        self.relu_in_place = {torch.relu_, F.relu_}
        self.max_pool = {F.max_pool2d, torch.max_pool2d}
        self.avg_pool = {F.avg_pool2d, torch.avg_pool2d} if hasattr(torch, "avg_pool2d") \
            else {F.avg_pool2d}
        self.adaptive = {F.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool2d}
        self.adaptive_max = {F.adaptive_max_pool2d}
        self.dropout = {F.dropout, F.dropout2d, F.dropout1d, F.dropout3d, F.alpha_dropout,
                        F.feature_alpha_dropout}
        self.add = {operator.add, torch.add}
        self.add_in_place = {operator.iadd}
        self.cat = {torch.cat, torch.concat}
        if hasattr(torch, "concatenate"):
            self.cat.add(torch.concatenate)
        self.flatten = {torch.flatten}
        self.reshape = {torch.reshape}


_CALLABLES = None


def torch_callables() -> TorchCallables:
    """The one ``TorchCallables`` (built on the first call: torch is imported then)."""
    global _CALLABLES
    if _CALLABLES is None:
        _CALLABLES = TorchCallables()
    return _CALLABLES


def _is_batch_size(value, tensor_node):
    """Is ``value`` ``x.size(0)``, ``x.size()[0]`` or ``x.shape[0]`` of ``tensor_node``?"""
    return channel_nodes.dimension_index(value, tensor_node) == 0


def is_shape_node(node) -> bool:
    """``x.size(…)``, ``x.shape`` and items of them: not layers, consumed by a view."""
    if node.op == "call_method" and node.target == "size":
        return True
    if node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",):
        return True
    return node.op == "call_function" and node.target is operator.getitem and \
        hasattr(node.args[0], "op") and is_shape_node(node.args[0])


def node_layer(node, modules, where):
    """``(layer, inputs, in_place)`` for one fx node: the minideconv layer, the fx nodes
    whose values it reads, and whether it overwrites its first input."""
    torch = import_torch()
    t = torch_callables()
    op, target = node.op, node.target

    def tensor_args(values, what="input"):
        for value in values:
            if not isinstance(value, torch.fx.Node):
                raise ValueError(f"{where}: its {what} {value!r} is a constant, not a "
                                 f"tensor; minideconv joins tensors only")
        return tuple(values)

    def flatten_dims(start_dim, end_dim):
        if (start_dim, end_dim) != (1, -1):
            raise ValueError(f"{where}: only flatten(x, start_dim=1, end_dim=-1) is "
                             f"supported, got start_dim={start_dim}, end_dim={end_dim}")
        return nn.Flatten()

    def view_layer(tensor, shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) \
            else tuple(shape)
        if len(shape) != 2 or shape[1] != -1 or not _is_batch_size(shape[0], tensor):
            raise ValueError(f"{where}: only x.view(x.size(0), -1) / "
                             f"x.reshape(x.size(0), -1) is supported (a flatten), and "
                             f"the view back to (n, c, h, w) of a channel shuffle")
        return nn.Flatten(), (tensor,), False

    channel_map = channel_nodes.node_layer(node, where, _bind) if op != "call_module" \
        else None
    if channel_map is not None:          # softmax, local response norm, channel shuffle
        return channel_map
    found = product_layer(node, modules, where)      # a * b, x * constant, group_norm
    if found is not None:
        return found
    if op == "call_module":
        module = modules[target]
        layer = layer_from_module(module, where)
        if isinstance(module, torch.nn.ConvTranspose2d) and (len(node.args) > 1 or
                                                             node.kwargs):
            raise ValueError(f"{where}: output_size given in forward is not supported; "
                             f"give the module its output_padding")
        return layer, tensor_args(node.args), module_in_place(module, torch)
    activation = activation_node_layer(node, modules, where, _bind, torch)
    if activation is not None:
        return activation
    if op == "call_function":
        enlarging = resampling.node_layer(node, modules, where)  # F.interpolate, F.pad, …
        if enlarging is not None:
            return enlarging
        if target in t.relu or target in t.relu_in_place:
            args = _bind(node, where, ["input", "inplace"], {"inplace": False})
            return nn.ReLU(), tensor_args([args["input"]]), \
                bool(args["inplace"]) or target in t.relu_in_place
        if target in t.max_pool:
            a = _bind(node, where, ["input", "kernel_size", "stride", "padding", "dilation",
                                    "ceil_mode", "return_indices"],
                      dict(stride=None, padding=0, dilation=1, ceil_mode=False,
                           return_indices=False))
            if a["return_indices"]:
                raise ValueError(f"{where}: return_indices=True is not supported")
            stride = a["stride"] if a["stride"] not in (None, (), []) else None
            kw = {k: as_pair(_constant(a[k], k, where))
                  for k in ("kernel_size", "padding", "dilation")}
            return nn.MaxPool2d(kw["kernel_size"], as_pair(stride), kw["padding"],
                                kw["dilation"], bool(a["ceil_mode"])), \
                tensor_args([a["input"]]), False
        if target in t.avg_pool:
            a = _bind(node, where, ["input", "kernel_size", "stride", "padding",
                                    "ceil_mode", "count_include_pad", "divisor_override"],
                      dict(stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                           divisor_override=None))
            stride = a["stride"] if a["stride"] not in (None, (), []) else None
            kw = {k: as_pair(_constant(a[k], k, where)) for k in ("kernel_size", "padding")}
            return nn.AvgPool2d(kw["kernel_size"], as_pair(stride), kw["padding"],
                                bool(a["ceil_mode"]), bool(a["count_include_pad"]),
                                a["divisor_override"]), tensor_args([a["input"]]), False
        if target in t.adaptive:
            a = _bind(node, where, ["input", "output_size"])
            size = as_pair(_constant(a["output_size"], "output_size", where))
            return nn.AdaptiveAvgPool2d(size), tensor_args([a["input"]]), False
        if target in t.adaptive_max:
            a = _bind(node, where, ["input", "output_size", "return_indices"],
                      {"return_indices": False})
            if a["return_indices"]:
                raise ValueError(f"{where}: return_indices=True is not supported")
            size = as_pair(_constant(a["output_size"], "output_size", where))
            return nn.AdaptiveMaxPool2d(size), tensor_args([a["input"]]), False
        if target in t.dropout:
            a = _bind(node, where, ["input", "p", "training", "inplace"],
                      dict(p=0.5, training=True, inplace=False))
            if a["training"] is not False:
                raise ValueError(f"{where}: dropout with training=True is random; trace "
                                 f"the model in eval mode (model.eval()) with "
                                 f"training=self.training, or drop it")
            return nn.Dropout(a["p"]), tensor_args([a["input"]]), False
        if target in t.add or target in t.add_in_place:
            a = _bind(node, where, ["input", "other", "alpha"], {"alpha": 1})
            if a["alpha"] != 1:
                raise ValueError(f"{where}: torch.add with alpha={a['alpha']!r} is not a "
                                 f"plain sum")
            return nn.Add(), tensor_args([a["input"], a["other"]], "operand"), \
                target in t.add_in_place
        if target in t.cat:
            names = ["tensors", "axis" if target is not torch.cat and
                     "axis" in node.kwargs else "dim"]
            a = _bind(node, where, names, {names[1]: 0})
            if a[names[1]] != 1:
                raise ValueError(f"{where}: minideconv concatenates along the channels "
                                 f"only (dim=1), got dim={a[names[1]]!r}")
            if not isinstance(a["tensors"], (tuple, list)) or not a["tensors"]:
                raise ValueError(f"{where}: needs a list of tensors")
            # torch.cat([x], 1) (DenseNet's first layer of a block) is x itself
            layer = nn.Concat(1) if len(a["tensors"]) > 1 else nn.Identity()
            return layer, tensor_args(a["tensors"]), False
        if target in t.flatten:
            a = _bind(node, where, ["input", "start_dim", "end_dim"],
                      dict(start_dim=0, end_dim=-1))
            return flatten_dims(a["start_dim"], a["end_dim"]), tensor_args([a["input"]]), \
                False
        if target in t.reshape:
            a = _bind(node, where, ["input", "shape"])
            return view_layer(a["input"], (a["shape"],))
    if op == "call_method":
        if target in ("relu", "relu_"):
            if len(node.args) != 1 or node.kwargs:
                raise ValueError(f"{where}: unexpected arguments")
            return nn.ReLU(), tensor_args(node.args), target == "relu_"
        if target in ("add", "add_"):
            a = _bind(node, where, ["input", "other", "alpha"], {"alpha": 1})
            if a["alpha"] != 1:
                raise ValueError(f"{where}: add with alpha={a['alpha']!r} is not a plain sum")
            return nn.Add(), tensor_args([a["input"], a["other"]], "operand"), \
                target == "add_"
        if target == "flatten":
            a = _bind(node, where, ["input", "start_dim", "end_dim"],
                      dict(start_dim=0, end_dim=-1))
            return flatten_dims(a["start_dim"], a["end_dim"]), tensor_args([a["input"]]), \
                False
        if target in ("view", "reshape"):
            if node.kwargs:
                raise ValueError(f"{where}: unexpected arguments {node.kwargs}")
            return view_layer(node.args[0], node.args[1:])
    if op == "get_attr":
        raise ValueError(f"{where} is not supported: minideconv reads weights from "
                         f"modules (nn.Conv2d, nn.Linear, nn.BatchNorm2d), and a tensor "
                         f"of the model used in forward only as a per-channel factor or "
                         f"term (x * t, x + t) or as F.layer_norm's / F.group_norm's "
                         f"weight and bias; it converts {SUPPORTED}")
    raise ValueError(f"{where} is not supported; minideconv converts {SUPPORTED}")

