"""torch.fx ↔ minideconv: any traceable ``nn.Module`` as an ``nn.Graph``, and back.

``torch.fx.symbolic_trace(model)`` runs the model's ``forward`` on placeholders and
writes down every operation as a node: ``call_module`` (a submodule, e.g. ``layer1.0.conv1``),
``call_function`` (``torch.relu``, ``operator.add``, ``torch.cat``, …) or ``call_method``
(``x.view(…)``, ``x.relu()``).  ``graph_from_fx`` turns each node into one minideconv layer
and keeps the wiring, so the residual ``+`` of a ResNet becomes an ``nn.Add`` reading two
earlier nodes and ``torch.cat`` an ``nn.Concat``.

Names
-----
A layer is named after what it came from:

* a module: its qualified name (``"features.0"``, ``"layer1.0.conv1"``) — for its first
  call; a module called again gets ``"<name>_1"``, ``"<name>_2"``, … in forward order
  (torchvision's ``BasicBlock`` calls ``self.relu`` twice: ``"layer1.0.relu"`` and
  ``"layer1.0.relu_1"``), skipping any name that is already taken;
* anything else: the fx node name (``"add"``, ``"add_1"``, ``"cat"``, ``"flatten"``,
  ``"relu_1"``, ``"view"``).

The operations that only compute the batch size of a ``view`` (``x.size(0)``,
``x.shape[0]``) are consumed by the ``view``: they are not layers.

In-place operations
-------------------
``nn.ReLU(inplace=True)``, ``F.relu(x, inplace=True)``, ``x.relu_()``, ``x += y`` and
``x.add_(y)`` overwrite their input.  In the converted network they are ordinary layers,
and every later reader of the overwritten value reads the layer's output instead — what
the in-place model computes.  The value a layer saw is the one that was there when it ran.

Modes
-----
The network is the model at inference (eval mode): BatchNorm2d uses its running
statistics and dropout is the identity, whatever mode the model is in.  A functional
``F.dropout`` traced with ``training=True`` is random and is refused.

PyTorch is imported only when a function here runs.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Dict

import numpy as np

from .. import nn
from ..geometry import PADDING_MODES

#: what ``from_torch`` converts, for error messages
SUPPORTED = ("Conv2d, Linear, ReLU (module, torch.relu, F.relu, Tensor.relu, in place or "
             "not), MaxPool2d and F.max_pool2d, AvgPool2d and F.avg_pool2d, "
             "AdaptiveAvgPool2d and F.adaptive_avg_pool2d, BatchNorm2d (running "
             "statistics), Dropout (module, F.dropout in eval), Identity, Flatten "
             "(module, torch.flatten(x, 1), x.flatten(1), x.view(x.size(0), -1), "
             "x.reshape(x.size(0), -1)), + (operator.add, torch.add, +=, Tensor.add) and "
             "torch.cat(..., dim=1)")


def import_torch():
    """``torch`` (with ``torch.fx``), or an ImportError that says how to install it."""
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError:  # pragma: no cover - exercised only without torch
        raise ImportError("minideconv.interop.torch needs PyTorch: "
                          "pip install 'minideconv[crosscheck]'") from None
    return torch


def _numpy(tensor):
    return tensor.detach().cpu().numpy().copy()


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else value


# --------------------------------------------------------------------------- one module

def layer_from_module(module, where: str):
    """One torch module → one minideconv layer, or a ValueError that starts with
    ``where`` (e.g. ``"layer 1 (BatchNorm2d)"`` or ``"node 'bn' (call_module ...)"``)."""
    torch = import_torch()
    tnn = torch.nn
    if isinstance(module, tnn.Conv2d):
        if module.padding_mode not in PADDING_MODES:
            raise ValueError(f"{where}: padding_mode={module.padding_mode!r} is not "
                             f"supported (minideconv has {PADDING_MODES})")
        padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
        bias = None if module.bias is None else _numpy(module.bias)
        return nn.Conv2d(_numpy(module.weight), bias, stride=tuple(module.stride),
                         padding=padding, dilation=tuple(module.dilation),
                         groups=module.groups, padding_mode=module.padding_mode)
    if isinstance(module, tnn.ReLU):
        return nn.ReLU()
    if isinstance(module, tnn.MaxPool2d):
        if module.return_indices:
            raise ValueError(f"{where}: return_indices=True is not supported")
        return nn.MaxPool2d(_pair(module.kernel_size), _pair(module.stride),
                            _pair(module.padding), _pair(module.dilation),
                            bool(module.ceil_mode))
    if isinstance(module, tnn.AvgPool2d):
        return nn.AvgPool2d(_pair(module.kernel_size), _pair(module.stride),
                            _pair(module.padding), bool(module.ceil_mode),
                            bool(module.count_include_pad), module.divisor_override)
    if isinstance(module, tnn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool2d(_pair(module.output_size))
    if isinstance(module, tnn.BatchNorm2d):
        if module.running_mean is None or module.running_var is None:
            raise ValueError(f"{where}: track_running_stats=False normalises with each "
                             f"batch's own statistics; minideconv needs running statistics")
        affine = module.weight is not None
        return nn.BatchNorm2d(_numpy(module.weight) if affine else None,
                              _numpy(module.bias) if module.bias is not None else None,
                              _numpy(module.running_mean), _numpy(module.running_var),
                              eps=float(module.eps))
    if isinstance(module, tnn.Flatten):
        if (module.start_dim, module.end_dim) != (1, -1):
            raise ValueError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported, "
                             f"got start_dim={module.start_dim}, end_dim={module.end_dim}")
        return nn.Flatten()
    if isinstance(module, tnn.Linear):
        bias = None if module.bias is None else _numpy(module.bias)
        return nn.Linear(_numpy(module.weight), bias)
    if isinstance(module, tnn.modules.dropout._DropoutNd):
        return nn.Dropout(module.p)        # the identity at inference (eval mode)
    if isinstance(module, tnn.Identity):
        return nn.Identity()
    from ._torch_modules import ChannelConcat, Sum
    if isinstance(module, Sum):
        return nn.Add()
    if isinstance(module, ChannelConcat):
        return nn.Concat(1)
    raise ValueError(f"{where} is not supported; minideconv converts {SUPPORTED}")


def module_from_layer(layer, dtype):
    """One minideconv layer (with one input) → a fresh torch module, weights copied."""
    torch = import_torch()
    tnn = torch.nn

    def copy(param, value):
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))

    if isinstance(layer, nn.Conv2d):
        c_out, c_in_g, kh, kw = layer.weight.shape
        module = tnn.Conv2d(c_in_g * layer.groups, c_out, (kh, kw), stride=layer.stride,
                            padding=layer.padding, dilation=layer.dilation,
                            groups=layer.groups, bias=layer.bias is not None,
                            padding_mode=layer.padding_mode, dtype=dtype)
    elif isinstance(layer, nn.Linear):
        out_features, in_features = layer.weight.shape
        module = tnn.Linear(in_features, out_features, bias=layer.bias is not None,
                            dtype=dtype)
    elif isinstance(layer, nn.BatchNorm2d):
        module = tnn.BatchNorm2d(layer.channels, eps=layer.eps,
                                 affine=layer.weight is not None or layer.bias is not None,
                                 dtype=dtype)
        copy(module.running_mean, layer.running_mean)
        copy(module.running_var, layer.running_var)
        if module.affine:      # γ = 1, β = 0 stand in for a missing one
            copy(module.weight, layer.weight if layer.weight is not None
                 else np.ones(layer.channels))
            copy(module.bias, layer.bias if layer.bias is not None
                 else np.zeros(layer.channels))
        return module.eval()
    elif isinstance(layer, nn.ReLU):
        return tnn.ReLU(inplace=False)  # a fresh module per call site: Captum hooks it
    elif isinstance(layer, nn.MaxPool2d):
        return tnn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                             ceil_mode=layer.ceil_mode)
    elif isinstance(layer, nn.AvgPool2d):
        return tnn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding,
                             ceil_mode=layer.ceil_mode,
                             count_include_pad=layer.count_include_pad,
                             divisor_override=layer.divisor_override)
    elif isinstance(layer, nn.AdaptiveAvgPool2d):
        return tnn.AdaptiveAvgPool2d(layer.output_size)
    elif isinstance(layer, nn.Flatten):
        return tnn.Flatten()
    elif isinstance(layer, nn.Dropout):
        return tnn.Dropout(layer.p).eval()
    elif isinstance(layer, nn.Identity):
        return tnn.Identity()
    else:
        raise ValueError(f"no torch module for {type(layer).__name__}")
    copy(module.weight, layer.weight)
    if layer.bias is not None:
        copy(module.bias, layer.bias)
    return module


# --------------------------------------------------------------------------- fx → Graph

@dataclass
class FxConversion:
    """``graph``: the minideconv network; ``traced``: the ``torch.fx.GraphModule`` it was
    read from; ``fx_nodes[name]``: the fx node whose value layer ``name`` computes."""

    graph: nn.Graph
    traced: object
    fx_nodes: Dict[str, object]


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


def _function_name(target):
    from torch.fx.node import _get_qualified_name
    try:
        return _get_qualified_name(target).replace("_operator.", "operator.")
    except Exception:  # pragma: no cover - exotic callables
        return getattr(target, "__name__", repr(target))


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


class _Tables:
    """The torch callables each kind of node is recognised by (built once torch is in)."""

    def __init__(self):
        torch = import_torch()
        F = torch.nn.functional
        self.relu = {torch.relu, F.relu}
        self.relu_in_place = {torch.relu_, F.relu_}
        self.max_pool = {F.max_pool2d, torch.max_pool2d}
        self.avg_pool = {F.avg_pool2d, torch.avg_pool2d} if hasattr(torch, "avg_pool2d") \
            else {F.avg_pool2d}
        self.adaptive = {F.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool2d}
        self.dropout = {F.dropout, F.dropout2d, F.dropout1d, F.dropout3d, F.alpha_dropout,
                        F.feature_alpha_dropout}
        self.add = {operator.add, torch.add}
        self.add_in_place = {operator.iadd}
        self.cat = {torch.cat, torch.concat}
        if hasattr(torch, "concatenate"):
            self.cat.add(torch.concatenate)
        self.flatten = {torch.flatten}
        self.reshape = {torch.reshape}


_TABLES = None


def _tables():
    global _TABLES
    if _TABLES is None:
        _TABLES = _Tables()
    return _TABLES


def _is_batch_size(value, tensor_node):
    """Is ``value`` ``x.size(0)``, ``x.size()[0]`` or ``x.shape[0]`` of ``tensor_node``?"""
    torch = import_torch()
    if not isinstance(value, torch.fx.Node):
        return False
    if value.op == "call_method" and value.target == "size" and value.args[0] is tensor_node:
        dims = list(value.args[1:]) + list(value.kwargs.values())
        return dims == [0]
    if value.op == "call_function" and value.target is operator.getitem and \
            value.args[1] == 0 and isinstance(value.args[0], torch.fx.Node):
        whole = value.args[0]
        if whole.op == "call_method" and whole.target == "size" and \
                len(whole.args) == 1 and not whole.kwargs:
            return whole.args[0] is tensor_node
        if whole.op == "call_function" and whole.target is getattr and \
                whole.args[1:] == ("shape",):
            return whole.args[0] is tensor_node
    return False


def _is_shape_node(node):
    """``x.size(…)``, ``x.shape`` and items of them: not layers, consumed by a view."""
    if node.op == "call_method" and node.target == "size":
        return True
    if node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",):
        return True
    return node.op == "call_function" and node.target is operator.getitem and \
        hasattr(node.args[0], "op") and _is_shape_node(node.args[0])


def _node_layer(node, modules, where):
    """``(layer, inputs, in_place)`` for one fx node: the minideconv layer, the fx nodes
    whose values it reads, and whether it overwrites its first input."""
    torch = import_torch()
    t = _tables()
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
                             f"x.reshape(x.size(0), -1) is supported (a flatten)")
        return nn.Flatten(), (tensor,), False

    if op == "call_module":
        module = modules[target]
        layer = layer_from_module(module, where)
        in_place = isinstance(module, torch.nn.ReLU) and module.inplace
        return layer, tensor_args(node.args), in_place
    if op == "call_function":
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
            kw = {k: _pair(_constant(a[k], k, where))
                  for k in ("kernel_size", "padding", "dilation")}
            return nn.MaxPool2d(kw["kernel_size"], _pair(stride), kw["padding"],
                                kw["dilation"], bool(a["ceil_mode"])), \
                tensor_args([a["input"]]), False
        if target in t.avg_pool:
            a = _bind(node, where, ["input", "kernel_size", "stride", "padding",
                                    "ceil_mode", "count_include_pad", "divisor_override"],
                      dict(stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                           divisor_override=None))
            stride = a["stride"] if a["stride"] not in (None, (), []) else None
            return nn.AvgPool2d(_pair(_constant(a["kernel_size"], "kernel_size", where)),
                                _pair(stride), _pair(_constant(a["padding"], "padding",
                                                               where)),
                                bool(a["ceil_mode"]), bool(a["count_include_pad"]),
                                a["divisor_override"]), tensor_args([a["input"]]), False
        if target in t.adaptive:
            a = _bind(node, where, ["input", "output_size"])
            return nn.AdaptiveAvgPool2d(_pair(_constant(a["output_size"], "output_size",
                                                        where))), \
                tensor_args([a["input"]]), False
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
            if not isinstance(a["tensors"], (tuple, list)) or len(a["tensors"]) < 2:
                raise ValueError(f"{where}: needs a list of two or more tensors")
            return nn.Concat(1), tensor_args(a["tensors"]), False
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
                         f"modules (nn.Conv2d, nn.Linear, nn.BatchNorm2d), not from "
                         f"tensors used in forward; it converts {SUPPORTED}")
    raise ValueError(f"{where} is not supported; minideconv converts {SUPPORTED}")


def trace_module(module):
    """``torch.fx.symbolic_trace(module)`` (to_torch's ``Sum`` and ``ChannelConcat`` kept
    as modules), or a ValueError saying why it cannot be traced."""
    torch = import_torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    from ._torch_modules import ChannelConcat, Sum

    class Tracer(torch.fx.Tracer):
        """fx's tracer, which also keeps to_torch's join modules as single calls."""

        def is_leaf_module(self, m, qualified_name):
            return isinstance(m, (Sum, ChannelConcat)) or \
                super().is_leaf_module(m, qualified_name)

    try:
        tracer = Tracer()
        graph = tracer.trace(module)
        return torch.fx.GraphModule(tracer.root, graph, type(module).__name__)
    except Exception as err:
        raise ValueError(f"torch.fx.symbolic_trace cannot trace {type(module).__name__} "
                         f"({type(err).__name__}: {err}). from_torch converts modules "
                         f"whose forward fx can trace: no control flow that depends on "
                         f"tensor values, no calls fx cannot follow") from err


def graph_from_fx(module, input_shape=None) -> FxConversion:
    """The ``nn.Graph`` of ``module``'s fx trace (names: the module docstring)."""
    torch = import_torch()
    traced = trace_module(module)
    modules = dict(traced.named_modules())
    nodes = list(traced.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"minideconv networks have one input; {type(module).__name__}."
                         f"forward takes {len(placeholders)}: "
                         f"{[n.name for n in placeholders]}")
    (output,) = [n for n in nodes if n.op == "output"]
    result = output.args[0]
    if not isinstance(result, torch.fx.Node):
        raise ValueError(f"minideconv networks have one output; {type(module).__name__}."
                         f"forward returns {type(result).__name__}")

    # names: modules by qualified name (a suffix for later calls), the rest by fx name
    taken = {n.name for n in nodes if n.op not in ("call_module", "placeholder", "output")}
    taken.add(nn.Graph.INPUT)
    calls, names = {}, {}
    for node in nodes:
        if node.op == "call_module":
            k = calls.get(node.target, 0)
            name = node.target if k == 0 else f"{node.target}_{k}"
            while name in taken:
                k += 1
                name = f"{node.target}_{k}"
            calls[node.target] = k + 1
            taken.add(name)
            names[node] = name
        elif node.op not in ("placeholder", "output"):
            names[node] = node.name

    # every node in forward order; an error is kept, and raised if the output needs it
    reads = {placeholders[0]: nn.Graph.INPUT}   # fx node → the layer holding its value now
    converted, errors, fx_nodes = {}, {}, {}   # errors: name → (error, names it reads)
    for node in nodes:
        if node.op in ("placeholder", "output") or _is_shape_node(node):
            continue
        name = names[node]
        where = describe_node(node, modules)
        try:
            layer, inputs, in_place = _node_layer(node, modules, where)
            for value in inputs:
                if value not in reads:
                    raise ValueError(f"{where} reads {value.name!r}, which is not a tensor "
                                     f"minideconv computes ({describe_node(value, modules)})")
        except ValueError as err:
            errors[name] = (err, tuple(reads[v] for v in node.all_input_nodes if v in reads))
            reads[node] = name
            continue
        converted[name] = nn.Node(name, layer, tuple(reads[v] for v in inputs))
        fx_nodes[name] = node
        reads[node] = name
        if in_place:      # later readers of the overwritten value read this layer
            reads[inputs[0]] = name

    # keep what the output depends on (fx keeps unused computations)
    if result not in reads:
        raise ValueError(f"{type(module).__name__}.forward returns "
                         f"{describe_node(result, modules)}, not a tensor minideconv "
                         f"computes")
    needed, stack = set(), [reads[result]]
    while stack:
        name = stack.pop()
        if name in needed or name == nn.Graph.INPUT:
            continue
        needed.add(name)
        stack.extend(errors[name][1] if name in errors else converted[name].inputs)
    failed = [name for name in errors if name in needed]
    if failed:                 # the first in forward order: the cause, not a consequence
        raise errors[failed[0]][0]
    graph_nodes = [node for name, node in converted.items() if name in needed]
    fx_nodes = {name: fx_nodes[name] for name in converted if name in needed}
    if not graph_nodes:
        raise ValueError(f"{type(module).__name__} computes nothing minideconv can convert")
    try:
        graph = nn.Graph(graph_nodes, input_shape=input_shape)
    except ValueError as err:
        raise ValueError(f"the converted graph of {type(module).__name__} does not fit: "
                         f"{err}") from None
    return FxConversion(graph, traced, fx_nodes)


# --------------------------------------------------------------------------- Graph → fx

def _place_module(root, name, module, used):
    """Put ``module`` at the dotted path ``name`` under ``root`` (making the containers
    on the way); a name that cannot be a module path gets a sanitised one.  Returns the
    path used (the fx ``call_module`` target, which ``from_torch`` reads back)."""
    torch = import_torch()
    parts = name.split(".")

    def fits():
        if not all(p.isidentifier() or p.isdigit() for p in parts):
            return False
        holder = root
        for depth, part in enumerate(parts):
            prefix = ".".join(parts[:depth + 1])
            last = depth == len(parts) - 1
            if hasattr(holder, part) and part not in holder._modules:
                return False      # an attribute of nn.Module (forward, training, …)
            child = holder._modules.get(part)
            if last:
                return child is None
            if child is None:
                return True
            if prefix in used:    # a layer already sits there: no room for children
                return False
            holder = child
        return True

    if not fits():
        base = "".join(c if c.isalnum() else "_" for c in name)
        base = base if base and not base[0].isdigit() else f"m_{base}"
        parts = [base]
        k = 0
        while not fits():
            k += 1
            parts = [f"{base}_{k}"]
    holder = root
    for part in parts[:-1]:
        if part not in holder._modules:
            holder.add_module(part, torch.nn.Module())
        holder = holder._modules[part]
    holder.add_module(parts[-1], module)
    path = ".".join(parts)
    used.add(path)
    return path


def graph_module(net: nn.Graph, dtype):
    """``net`` as a ``torch.fx.GraphModule``: one fresh module per layer at the path of
    its name — a non-in-place ``nn.ReLU`` per ReLU, so that Captum's hooks apply to each,
    and for Add and Concat the modules ``Sum`` and ``ChannelConcat``
    (``interop._torch_modules``: ``x₁ + x₂ + …`` and ``torch.cat(xs, dim=1)``)."""
    torch = import_torch()
    root = torch.nn.Module()
    graph = torch.fx.Graph()
    values = {nn.Graph.INPUT: graph.placeholder("x")}
    used = set()
    from ._torch_modules import ChannelConcat, Sum
    for node in net.nodes:
        if isinstance(node.layer, nn.Add):
            module = Sum()
        elif isinstance(node.layer, nn.Concat):
            module = ChannelConcat()
        else:
            module = module_from_layer(node.layer, dtype)
        path = _place_module(root, node.name, module, used)
        values[node.name] = graph.call_module(path, tuple(values[name]
                                                          for name in node.inputs))
    graph.output(values[net.names[-1]])
    module = torch.fx.GraphModule(root, graph, class_name="MinideconvGraph").eval()
    #: node name → the module path it got (they differ only where a name was sanitised)
    module.minideconv_paths = {node.name: graph_node.target for node, graph_node in
                               zip(net.nodes, (values[n] for n in net.names))}
    return module


# --------------------------------------------------------------------------- torch values

def torch_values(traced, x) -> dict:
    """Every fx node's value for input ``x`` (a tensor), copied when it is computed — an
    in-place op further on cannot change it.  ``{fx node name: np.ndarray}``."""
    torch = import_torch()
    values = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if isinstance(result, torch.Tensor):
                values[node.name] = _numpy(result)
            return result

    with torch.no_grad():
        Recorder(traced).run(x)
    return values


def _rule_relu_function(rule):
    """``relu`` whose backward is ``rule``'s (an autograd Function); for ``"backprop"``,
    torch's own ``relu`` (autograd's derivative)."""
    torch = import_torch()
    if rule == "backprop":
        return torch.relu

    class RuleReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.relu(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            signal = grad.clamp(min=0)                   # deconvnet: relu of the signal
            return signal if rule == "deconvnet" else signal * (x > 0)   # guided: and mask

    def rule_relu(x):    # a plain function, which fx's generated code can call
        return RuleReLU.apply(x)

    rule_relu.__name__ = f"{rule}_relu"
    return rule_relu


def rule_copy(traced, rule, wanted):
    """A copy of the traced model that returns the values of the fx nodes ``wanted``
    (names), every op out of place (so that each value stays the one computed) and every
    ReLU a ``rule`` ReLU; later readers of an in-place op's input read its output."""
    torch = import_torch()
    t = _tables()
    modules = dict(traced.named_modules())
    relu = _rule_relu_function(rule)
    graph = torch.fx.Graph()
    env, aliases = {}, {}

    def arg(n):
        return env[aliases.get(n, n)]

    for node in traced.graph.nodes:
        if node.op == "output":
            break
        in_place = False
        if node.op == "call_module" and isinstance(modules[node.target], torch.nn.ReLU):
            new, in_place = graph.call_function(relu, (arg(node.args[0]),)), \
                modules[node.target].inplace
        elif (node.op == "call_function" and (node.target in t.relu or
                                             node.target in t.relu_in_place)) or \
                (node.op == "call_method" and node.target in ("relu", "relu_")):
            inplace_flag = node.kwargs.get("inplace", node.args[1] if len(node.args) > 1
                                           else False)
            in_place = node.target in t.relu_in_place or node.target == "relu_" or \
                bool(inplace_flag)
            new = graph.call_function(relu, (arg(node.args[0]),))
        elif (node.op == "call_function" and node.target in t.add_in_place) or \
                (node.op == "call_method" and node.target == "add_"):
            in_place = True
            new = graph.call_function(operator.add, (arg(node.args[0]),
                                                     arg(node.args[1])))
        else:
            new = graph.node_copy(node, arg)
        env[node] = new
        if in_place:
            aliases[node.args[0]] = node
    by_name = {node.name: node for node in traced.graph.nodes}
    graph.output(tuple(env[by_name[name]] for name in wanted))
    return torch.fx.GraphModule(traced, graph)


def torch_projections(traced, x, units: Dict[str, tuple], rule) -> Dict[str, np.ndarray]:
    """For each fx node name → unit: every image's projection of its own activation at
    that unit, a · ∂a/∂x under ``rule``, by autograd on ``rule_copy`` (one forward pass,
    one backward pass per node)."""
    torch = import_torch()
    wanted = list(units)
    module = rule_copy(traced, rule, wanted)
    xt = x.detach().clone().requires_grad_(True)
    outputs = module(xt)
    result = {}
    for name, out in zip(wanted, outputs):
        index = (slice(None),) + tuple(units[name])
        seed = torch.zeros_like(out)
        seed[index] = out[index].detach()
        (grad,) = torch.autograd.grad(out, xt, grad_outputs=seed, retain_graph=True,
                                      allow_unused=True)
        result[name] = np.zeros(x.shape, _numpy(x).dtype) if grad is None else _numpy(grad)
    return result


__all__ = ["SUPPORTED", "FxConversion", "graph_from_fx", "graph_module", "trace_module",
           "layer_from_module", "module_from_layer", "describe_node", "torch_values",
           "rule_copy", "torch_projections"]
