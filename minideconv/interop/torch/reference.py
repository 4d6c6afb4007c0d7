"""What PyTorch computes, for the cross-check to compare minideconv with: every layer's
value, and the projection of a unit back to the input under each ReLU rule.

For an ``nn.Sequential`` (layer ``i`` ↔ leaf module ``i``): ``sequential_outputs``;
``sequential_projection`` by autograd (``"backprop"``) or Captum's
``NeuronDeconvolution`` / ``NeuronGuidedBackprop``; and ``unpool_variant_deconvnet``,
the deconvnet as often hand-written with ``F.max_unpool2d`` at the pools.

For any traced model (``torch.fx.GraphModule``): ``torch_values`` at every fx node, and
``torch_projections`` by autograd through ``rule_copy``, an fx copy whose every ReLU is
an autograd Function with the rule's backward — Captum hooks ReLU *modules*, and a
ResNet calls one ReLU module twice, or a ReLU is a function.

PyTorch (and Captum, for the Sequential rules) are imported only when a function runs.
"""

from __future__ import annotations

import warnings

import operator
from typing import Dict

import numpy as np

from ...rules import get_rule
from .fx_nodes import torch_callables
from .layers import import_torch, leaf_modules, to_numpy


def _captum_attr():
    """``captum.attr``, or an ImportError that says how to install it."""
    try:
        import captum.attr
    except ImportError:  # pragma: no cover
        raise ImportError("the deconvnet and guided cross-checks need Captum: "
                          "pip install 'minideconv[crosscheck]'") from None
    return captum.attr


# --------------------------------------------------------------------------- nn.Sequential

def sequential_outputs(model, x) -> list:
    """The output of every leaf module, in order (the input of each is the previous).
    Copies: an in-place ReLU would otherwise overwrite the previous layer's output."""
    outputs = []
    for module in leaf_modules(model):
        x = module(x)
        outputs.append(x.clone())
    return outputs


def sequential_projection(model, layer_module, x, unit, value, rule) -> np.ndarray:
    """The reference for minideconv's projection of activation ``a = value`` at ``unit``:
    a · (∂a/∂x under ``rule``).  The deconvnet and guided rules are positively
    homogeneous, not linear, so for a < 0 the neuron −a is attributed and scaled by |a|."""
    torch = import_torch()
    sign = 1.0 if value >= 0 else -1.0

    def neuron(output):
        return sign * output[(slice(None),) + tuple(unit)]

    rule = get_rule(rule)
    if not rule.rectifies_signal:   # backprop: autograd's own derivative g · [x > 0]
        xt = x.clone().requires_grad_(True)
        out = _outputs_upto(model, layer_module, xt)
        (grad,) = torch.autograd.grad(neuron(out).sum(), xt)
    else:
        attr = _captum_attr()
        # Captum's two rules that rectify the signal: with the forward mask, and without
        cls = attr.NeuronGuidedBackprop if rule.masks_by_input else attr.NeuronDeconvolution
        with warnings.catch_warnings():   # Captum narrates the hooks it sets, every call
            warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")
            grad = cls(model, layer_module).attribute(x, neuron_selector=neuron)
    return to_numpy(grad) * abs(value)


def _outputs_upto(model, layer_module, x):
    for module in leaf_modules(model):
        x = module(x)
        if module is layer_module:
            return x
    raise ValueError("layer module not found in the model")


def unpool_variant_deconvnet(model, x, layer_index, unit, value) -> np.ndarray:
    """The deconvnet as often hand-written in PyTorch: ``F.max_unpool2d`` at the max-pools
    (it *assigns* at the switches, so where windows overlap a shared switch keeps one of
    its values instead of their sum), relu at the ReLUs, and every other layer — Conv2d,
    Linear, BatchNorm2d, average pools, Flatten, Dropout — by its exact transpose
    (autograd's vector-Jacobian product of that layer; a bias does not enter)."""
    torch = import_torch()
    F = torch.nn.functional
    modules = leaf_modules(model)[:layer_index + 1]
    inputs, switches = [], []
    with torch.no_grad():
        h = x
        for module in modules:
            inputs.append(h.clone())          # an in-place ReLU would overwrite it
            if isinstance(module, torch.nn.MaxPool2d):
                h, idx = F.max_pool2d(h, module.kernel_size, module.stride, module.padding,
                                      module.dilation, module.ceil_mode, return_indices=True)
                switches.append(idx)
            else:
                h = module(h)
                switches.append(None)
    signal = torch.zeros_like(h)
    signal[(0,) + tuple(unit)] = value
    for module, inp, idx in reversed(list(zip(modules, inputs, switches))):
        if isinstance(module, torch.nn.MaxPool2d) and module.dilation in (1, (1, 1)):
            signal = F.max_unpool2d(signal, idx, module.kernel_size, module.stride,
                                    module.padding, output_size=inp.shape[2:])
        elif isinstance(module, torch.nn.MaxPool2d):
            signal = assign_at_switches(signal, idx, inp.shape)
        elif isinstance(module, torch.nn.ReLU):
            signal = F.relu(signal)
        else:
            signal = torch.autograd.functional.vjp(module, inp, signal)[1]
    return to_numpy(signal[:1])


def assign_at_switches(signal, idx, shape):
    """What ``F.max_unpool2d(signal, idx, …, output_size=shape[2:])`` computes, written out:
    each value of ``signal`` assigned at its switch in a zero plane of ``shape``'s
    (H, W) (where two share a switch, one of them is kept).  ``F.max_unpool2d`` refuses
    the pooled input's size of a dilated pool (it works sizes out without dilation)."""
    torch = import_torch()
    flat = torch.zeros(tuple(shape[:2]) + (shape[2] * shape[3],), dtype=signal.dtype)
    flat.scatter_(2, idx.flatten(2), signal.flatten(2))
    return flat.reshape(tuple(shape))


# --------------------------------------------------------------------------- fx graphs

def torch_values(traced, x) -> dict:
    """Every fx node's value for input ``x`` (a tensor), copied when it is computed — an
    in-place op further on cannot change it.  ``{fx node name: np.ndarray}``."""
    torch = import_torch()
    values = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if isinstance(result, torch.Tensor):
                values[node.name] = to_numpy(result)
            return result

    with torch.no_grad():
        Recorder(traced).run(x)
    return values


def _rule_relu_function(rule):
    """``relu`` whose backward is ``rule``'s (an autograd Function); for ``"backprop"``,
    torch's own ``relu`` (autograd's derivative)."""
    torch = import_torch()
    rule = get_rule(rule)
    if not rule.rectifies_signal:   # backprop: torch's relu, whose derivative is g · [x > 0]
        return torch.relu

    class RuleReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.relu(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            signal = grad.clamp(min=0)                   # max(g, 0): the rectified signal
            return signal * (x > 0) if rule.masks_by_input else signal   # guided: and mask

    def rule_relu(x):    # a plain function, which fx's generated code can call
        return RuleReLU.apply(x)

    rule_relu.__name__ = f"{rule.name}_relu"
    return rule_relu


def rule_copy(traced, rule, wanted):
    """A copy of the traced model that returns the values of the fx nodes ``wanted``
    (names), every op out of place (so that each value stays the one computed) and every
    ReLU a ``rule`` ReLU; later readers of an in-place op's input read its output."""
    torch = import_torch()
    t = torch_callables()
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


def torch_projections(traced, x, units: Dict[str, tuple], rule,
                      seed_value="activation") -> Dict[str, np.ndarray]:
    """For each fx node name → unit: every image's projection of its own activation at
    that unit, a · ∂a/∂x under ``rule`` (or ∂a/∂x with ``seed_value="one"``), by autograd
    on ``rule_copy`` (one forward pass, one backward pass per node)."""
    torch = import_torch()
    wanted = list(units)
    module = rule_copy(traced, rule, wanted)
    xt = x.detach().clone().requires_grad_(True)
    outputs = module(xt)
    result = {}
    for name, out in zip(wanted, outputs):
        index = (slice(None),) + tuple(units[name])
        seed = torch.zeros_like(out)
        seed[index] = out[index].detach() if seed_value == "activation" else 1
        (grad,) = torch.autograd.grad(out, xt, grad_outputs=seed, retain_graph=True,
                                      allow_unused=True)
        result[name] = np.zeros(x.shape, to_numpy(x).dtype) if grad is None \
            else to_numpy(grad)                  # None: the node does not depend on x
    return result
