"""The activation functions and methods of a traced ``forward`` → minideconv layers.

``fx_nodes.node_layer`` asks ``activation_node_layer`` first; it answers None for a node
that is no activation call.  Read here, each with its in-place variant where torch has one:

====================================================  ===================================
torch call                                            minideconv layer
====================================================  ===================================
F.relu6                                               ClippedReLU(6)
F.hardtanh(x, 0, m), F.hardtanh_                      ClippedReLU(m) (min_val ≠ 0 refused)
torch.clamp / clip(x, 0, m), x.clamp(0, m), …_        ClippedReLU(m); min=0 alone: ReLU
F.leaky_relu(x, α), F.leaky_relu_                     LeakyReLU(α)
F.prelu(x, weight), torch.prelu                       PReLU (weight: a parameter)
F.silu, F.gelu(approximate=…), F.elu(alpha=…), F.elu_ SiLU, GELU, ELU
torch.sigmoid, F.sigmoid, x.sigmoid(), x.sigmoid_()   Sigmoid
torch.tanh, F.tanh, x.tanh(), x.tanh_()               Tanh
F.hardswish, F.hardsigmoid                            Hardswish, Hardsigmoid(1/6, 1/2)
====================================================  ===================================

PyTorch is imported only when a function here runs.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from ... import nn
from .activations import TORCH_HARDSIGMOID, hardtanh_layer


class ActivationCall(NamedTuple):
    """One kind of activation call: its parameters (defaults), and the layer they make."""

    names: tuple
    defaults: dict
    make: Callable        # (bound arguments, where) → layer


def _constant(value, name, where, torch):
    """A number written in ``forward``, not a tensor computed there."""
    if isinstance(value, torch.fx.Node):
        raise ValueError(f"{where}: {name} must be a constant, not computed in forward")
    return value


def _clamp_layer(args, where, torch):
    low = _constant(args["min"], "min", where, torch)
    high = _constant(args["max"], "max", where, torch)
    if low is None:
        raise ValueError(f"{where}: clamp without min=0 is not a rectifier of the rule "
                         f"table (clamp(x, 0, m) and clamp(x, min=0) are)")
    return hardtanh_layer(low, high, where)


def _parameter(node, modules, where, torch):
    """The value of a ``get_attr`` node (a parameter of the traced module), as NumPy."""
    if not isinstance(node, torch.fx.Node) or node.op != "get_attr":
        raise ValueError(f"{where}: the weight must be a parameter of the module")
    value = modules[""]
    for part in node.target.split("."):
        value = getattr(value, part)
    return value.detach().cpu().numpy().copy()


def activation_calls(torch, modules):
    """{callable or method name: (ActivationCall, in place?)} for every activation call."""
    F = torch.nn.functional

    def kinds(make, names=("input", "inplace"), defaults=None):
        return ActivationCall(tuple(names), dict(defaults or {"inplace": False}), make)

    def prelu(args, where):
        return nn.PReLU(_parameter(args["weight"], modules, where, torch))

    relu6 = kinds(lambda a, w: nn.ClippedReLU(6.0))
    hardtanh = kinds(lambda a, w: hardtanh_layer(_constant(a["min_val"], "min_val", w, torch),
                                                 _constant(a["max_val"], "max_val", w, torch),
                                                 w),
                     ("input", "min_val", "max_val", "inplace"),
                     dict(min_val=-1.0, max_val=1.0, inplace=False))
    leaky = kinds(lambda a, w: nn.LeakyReLU(float(_constant(a["negative_slope"],
                                                             "negative_slope", w, torch))),
                  ("input", "negative_slope", "inplace"),
                  dict(negative_slope=0.01, inplace=False))
    clamp = kinds(lambda a, w: _clamp_layer(a, w, torch), ("input", "min", "max"),
                  dict(min=None, max=None))
    elu = kinds(lambda a, w: nn.ELU(float(_constant(a["alpha"], "alpha", w, torch))),
                ("input", "alpha", "inplace"), dict(alpha=1.0, inplace=False))
    gelu = kinds(lambda a, w: nn.GELU(a["approximate"]), ("input", "approximate"),
                 dict(approximate="none"))
    sigmoid = kinds(lambda a, w: nn.Sigmoid(), ("input",))
    tanh = kinds(lambda a, w: nn.Tanh(), ("input",))
    calls = {
        F.relu6: (relu6, False), F.hardtanh: (hardtanh, False),
        F.hardtanh_: (hardtanh, True), F.leaky_relu: (leaky, False),
        F.leaky_relu_: (leaky, True), F.prelu: (kinds(prelu, ("input", "weight")), False),
        torch.clamp: (clamp, False), torch.clip: (clamp, False),
        torch.clamp_: (clamp, True), torch.clip_: (clamp, True),
        F.silu: (kinds(lambda a, w: nn.SiLU()), False), F.gelu: (gelu, False),
        F.elu: (elu, False), F.elu_: (elu, True),
        torch.sigmoid: (sigmoid, False), F.sigmoid: (sigmoid, False),
        torch.tanh: (tanh, False), F.tanh: (tanh, False),
        F.hardswish: (kinds(lambda a, w: nn.Hardswish()), False),
        F.hardsigmoid: (kinds(lambda a, w: nn.Hardsigmoid(**TORCH_HARDSIGMOID)), False),
        "clamp": (clamp, False), "clip": (clamp, False),
        "clamp_": (clamp, True), "clip_": (clamp, True),
        "sigmoid": (sigmoid, False), "sigmoid_": (sigmoid, True),
        "tanh": (tanh, False), "tanh_": (tanh, True),
    }
    calls[torch.prelu] = calls[F.prelu]
    return calls


def activation_node_layer(node, modules, where, bind, torch):
    """``(layer, inputs, in_place)`` for an fx node that calls an activation function or
    method, or None for any other node.  ``bind(node, where, names, defaults)`` binds the
    call's arguments by name (``fx_nodes``'s)."""
    if node.op not in ("call_function", "call_method"):
        return None
    key = node.target
    calls = activation_calls(torch, modules)
    if (node.op == "call_method") != isinstance(key, str) or key not in calls:
        return None
    call, in_place = calls[key]
    args = bind(node, where, list(call.names), call.defaults)
    if not isinstance(args["input"], torch.fx.Node):
        raise ValueError(f"{where}: its input {args['input']!r} is a constant, not a tensor")
    return call.make(args, where), (args["input"],), \
        in_place or bool(args.get("inplace", False))
