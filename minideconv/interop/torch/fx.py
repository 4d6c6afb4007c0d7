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

Custom autograd Functions
-------------------------
fx runs a ``torch.autograd.Function``'s forward on its placeholders and records the
operations inside as if the model had called them, dropping the Function's backward —
the reason it exists.  ``trace_module`` refuses any call of ``Function.apply``, naming
the Function, instead of converting it into a silently different map.

Where the rest lives
--------------------
``layers``: one torch module ↔ one layer (``layer_from_module``, ``module_from_layer``)
and ``SUPPORTED``; ``fx_nodes``: one fx node → one layer (``describe_node``);
``reference``: torch's values and rule projections at every fx node (``torch_values``,
``rule_copy``, ``torch_projections``).

PyTorch is imported only when a function here runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet

from ... import nn
from .channels_last import SAME_VALUES, ChannelsLastRegions
from .fx_nodes import describe_node, is_shape_node, node_layer
from .layers import import_torch, module_from_layer


# --------------------------------------------------------------------------- fx → Graph

@dataclass
class FxConversion:
    """``graph``: the minideconv network; ``traced``: the ``torch.fx.GraphModule`` it was
    read from; ``fx_nodes[name]``: the fx node whose value layer ``name`` computes;
    ``channels_last``: the layers whose fx value is that (N, C, H, W) output permuted to
    (N, H, W, C) — the nodes of a channels-last region (``channels_last``)."""

    graph: nn.Graph
    traced: object
    fx_nodes: Dict[str, object]
    channels_last: FrozenSet[str] = frozenset()


class _CustomFunction(Exception):
    """Raised inside a trace when the model calls ``SomeFunction.apply``."""

    def __init__(self, function):
        super().__init__(function)
        self.name = f"{function.__module__}.{function.__qualname__}"


class _refusing_custom_functions:
    """While a trace runs, ``torch.autograd.Function.apply`` raises ``_CustomFunction``.
    fx would otherwise run the Function's forward on its placeholders and record the
    operations inside, as if the model had called them: the custom backward — the
    reason the Function exists — would be lost without a word."""

    def __init__(self, torch):
        self.function = torch.autograd.Function

    def __enter__(self):
        self.apply = self.function.__dict__["apply"]       # the classmethod itself

        def refuse(cls, *args, **kwargs):
            raise _CustomFunction(cls)
        self.function.apply = classmethod(refuse)

    def __exit__(self, *exc):
        self.function.apply = self.apply
        return False


def trace_module(module):
    """``torch.fx.symbolic_trace(module)`` (to_torch's ``Sum`` and ``ChannelConcat`` kept
    as modules), or a ValueError saying why it cannot be traced."""
    torch = import_torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    from .join_modules import ChannelConcat, Sum   # they import torch
    from .own_modules import LEAVES

    class Tracer(torch.fx.Tracer):
        """fx's tracer, which also keeps to_torch's own modules as single calls."""

        def is_leaf_module(self, m, qualified_name):
            return isinstance(m, (Sum, ChannelConcat) + LEAVES) or \
                super().is_leaf_module(m, qualified_name)

    try:
        tracer = Tracer()
        with _refusing_custom_functions(torch):
            graph = tracer.trace(module)
        return torch.fx.GraphModule(tracer.root, graph, type(module).__name__)
    except _CustomFunction as called:
        raise ValueError(f"{type(module).__name__} calls the torch.autograd.Function "
                         f"{called.name}, whose backward minideconv cannot know (fx "
                         f"would trace its forward and drop its backward, a silently "
                         f"wrong map): compute it with supported torch operations, or "
                         f"project this model with torch") from None
    except Exception as err:
        raise ValueError(f"torch.fx.symbolic_trace cannot trace {type(module).__name__} "
                         f"({type(err).__name__}: {err}). from_torch converts modules "
                         f"whose forward fx can trace: no control flow that depends on "
                         f"tensor values, no calls fx cannot follow") from err


def container_calls(nodes, modules, result) -> Dict[str, tuple]:
    """For every call of a module that fx traces into rather than calling it as a leaf
    (a container, or a module of the model's own such as torchvision's ``LayerNorm2d``):
    its name — the qualified name for the first call, ``"<name>_<k>"`` for the k-th
    after it, as for leaf modules — mapped to (the fx node whose value the call returns,
    the call's last node).  The nodes of a call are those whose ``nn_module_stack`` holds
    it; the value it returns is the one node of them read outside it (or the model's
    result).  A call that returns no node of its own, or several, has no entry."""
    members = {}                     # call key ("layer1.0", "layer1.0@1") → its nodes
    leaves = {node.target for node in nodes if node.op == "call_module"}
    for node in nodes:
        for key, (path, _) in (node.meta.get("nn_module_stack") or {}).items():
            if path and path in modules and path not in leaves:
                members.setdefault(key, []).append(node)
    calls = {}
    for key, inside in members.items():
        inside_set = set(inside)
        returned = [n for n in inside if n is result or
                    any(user not in inside_set for user in n.users)]
        if len(returned) != 1 or is_shape_node(returned[0]):
            continue
        path, _, k = key.partition("@")
        calls[path if not k else f"{path}_{k}"] = (returned[0], inside[-1])
    return calls


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

    # a container's output is the value its call returns, read when its last node has run
    returns_at = {}             # index of a call's last node → [(alias, returned fx node)]
    for alias, (returned, last) in container_calls(nodes, modules, result).items():
        returns_at.setdefault(nodes.index(last), []).append((alias, returned))
    container_layers = {}       # alias → the layer holding the returned value then

    # every node in forward order; an error is kept, and raised if the output needs it
    reads = {placeholders[0]: nn.Graph.INPUT}   # fx node → the layer holding its value now
    converted, errors, fx_nodes = {}, {}, {}   # errors: name → (error, names it reads)
    regions = ChannelsLastRegions(modules, lambda n: describe_node(n, modules))
    for k, node in enumerate(nodes):
        for alias, returned in returns_at.get(k - 1, ()):
            if returned in reads:
                container_layers[alias] = reads[returned]
        if node.op in ("placeholder", "output") or is_shape_node(node):
            continue
        name = names[node]
        where = describe_node(node, modules)
        try:
            found = regions.read(node, where)          # permutes, and the nodes between
            if found is SAME_VALUES:                   # a permute: no layer of its own
                if node.args[0] not in reads:
                    raise ValueError(f"{where} permutes a value minideconv does not compute")
                reads[node] = reads[node.args[0]]
                continue
            layer, inputs, in_place = found or node_layer(node, modules, where)
            for value in inputs:
                if value not in reads:
                    raise ValueError(f"{where} reads {value.name!r}, which is not a tensor "
                                     f"minideconv computes ({describe_node(value, modules)})")
        except ValueError as err:
            # a model tensor a failed node reads is not the cause: the node is
            errors[name] = (err, tuple(reads[v] for v in node.all_input_nodes
                                       if v in reads and v.op != "get_attr"))
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
    if regions.unclosed(result):
        raise ValueError(f"{type(module).__name__}: {regions.unclosed(result)}")
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
    aliases = {alias: name for alias, name in container_layers.items()
               if name in fx_nodes and alias not in names.values()}
    try:
        graph = nn.Graph(graph_nodes, input_shape=input_shape, aliases=aliases)
    except ValueError as err:
        raise ValueError(f"the converted graph of {type(module).__name__} does not fit: "
                         f"{err}") from None
    return FxConversion(graph, traced, fx_nodes,
                        frozenset(name for name, node in fx_nodes.items()
                                  if node in regions.opened_by))


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
    (``join_modules``: ``x₁ + x₂ + …`` and ``torch.cat(xs, dim=1)``); Mul, ChannelAffine
    and ChannelLayerNorm get ``own_modules``'."""
    torch = import_torch()
    root = torch.nn.Module()
    graph = torch.fx.Graph()
    values = {nn.Graph.INPUT: graph.placeholder("x")}
    used = set()
    from .join_modules import ChannelConcat, Sum
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


__all__ = ["FxConversion", "graph_from_fx", "graph_module", "trace_module"]
