"""What PyTorch computes, for the cross-check to compare minideconv with: every layer's
value, and the projection of a unit back to the input under each ReLU rule.

For an ``nn.Sequential`` (layer ``i`` ↔ leaf module ``i``): ``sequential_outputs``;
``sequential_projection`` by autograd (``"backprop"``) or Captum's
``NeuronDeconvolution`` / ``NeuronGuidedBackprop``; and ``unpool_variant_deconvnet``,
the deconvnet as often hand-written with ``F.max_unpool2d`` at the pools.

For any traced model (``torch.fx.GraphModule``): ``torch_values`` at every fx node, and
``torch_projections`` by autograd through ``rule_copy``, an fx copy whose every rectifier
(ReLU, ReLU6, Hardtanh(0, m), clamp(0, m), LeakyReLU, PReLU; module, function or method)
is an autograd Function with the rule's backward — Captum hooks ``nn.ReLU`` *modules*
only, a ResNet calls one ReLU module twice, and a ReLU may be a function.

PyTorch (and Captum, for the Sequential rules) are imported only when a function runs.
"""

from __future__ import annotations

import warnings

import operator
from typing import Dict

import numpy as np

from ...nn import RECTIFIER_LAYERS
from ...rules import get_rule
from .fx_nodes import node_layer, torch_callables
from .layers import import_torch, layer_from_module, leaf_modules, to_numpy


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
    its values instead of their sum), relu at the ReLUs, rect_α at the other rectifiers
    (the deconvnet's rule, ``rule_rectifier_function``), and every other layer — Conv2d,
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
        else:     # the layer's transpose; at a rectifier, the deconvnet's rect_α
            layer = layer_from_module(module, "a leaf")
            step = rule_rectifier_function("deconvnet")(layer) \
                if isinstance(layer, RECTIFIER_LAYERS) else module
            signal = torch.autograd.functional.vjp(step, inp, signal)[1]
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


def rule_rectifier_function(rule):
    """``make(layer)``: for a rectifier layer of minideconv (ReLU, ClippedReLU, LeakyReLU,
    PReLU), a plain function of x — which fx's generated code can call — computing the
    rectifier, with the table's backward for ``rule`` (an autograd Function written in
    torch, beside ``minideconv.rules``):

        backprop f′(x)·g,   deconvnet rect_α(g),   guided f′(x)·rect_α(g),

    rect_α(g) = g (g > 0), α·g otherwise; f′(x) = α (x ≤ 0), 1 (0 < x < m), 0 (x ≥ m)."""
    torch = import_torch()
    rule = get_rule(rule)

    def per_channel(slope, x):
        slope = slope.to(x.dtype)
        return slope.reshape((1, -1) + (1,) * (x.ndim - 2)) if slope.numel() > 1 \
            else slope.reshape(())

    class RuleRectifier(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, slope, cap):
            slope = per_channel(slope, x)
            ctx.save_for_backward(x, slope)
            ctx.cap = cap
            return torch.where(x >= cap, x.new_tensor(cap), torch.where(x > 0, x, x * slope))

        @staticmethod
        def backward(ctx, grad):
            x, slope = ctx.saved_tensors
            signal = torch.where(grad > 0, grad, grad * slope) if rule.rectifies_signal \
                else grad                                   # rect_α(g): the unit's shape
            if rule.masks_by_input:                         # f′(x): α, 1 or 0 by the piece
                signal = torch.where(x > 0, torch.where(x < ctx.cap, signal, 0 * signal),
                                     signal * slope)
            return signal, None, None

    def make(layer):
        slope = torch.as_tensor(layer.negative_slope, dtype=torch.float64).reshape(-1)
        cap = float("inf") if layer.cap is None else float(layer.cap)

        def rule_rectifier(x):
            return RuleRectifier.apply(x, slope, cap)

        rule_rectifier.__name__ = f"{rule.name}_{type(layer).__name__.lower()}"
        return rule_rectifier

    return make


def rectifier_node(node, modules):
    """``(layer, input node, in_place)`` when the fx node is a rectifier call — a module,
    function or method that ``from_torch`` reads as ReLU, ClippedReLU, LeakyReLU or
    PReLU — else None."""
    if node.op not in ("call_module", "call_function", "call_method"):
        return None
    try:
        layer, inputs, in_place = node_layer(node, modules, node.name)
    except ValueError:          # not something minideconv reads: copied as it is
        return None
    return (layer, inputs[0], in_place) if isinstance(layer, RECTIFIER_LAYERS) else None


def rule_copy(traced, rule, wanted):
    """A copy of the traced model that returns the values of the fx nodes ``wanted``
    (names), every op out of place (so that each value stays the one computed) and every
    rectifier (module, function or method) an autograd Function with the ``rule``'s
    backward (``rule_rectifier_function``); smooth activations keep torch's autograd.
    Later readers of an in-place op's input read its output."""
    torch = import_torch()
    t = torch_callables()
    modules = dict(traced.named_modules())
    rectifier_function = rule_rectifier_function(rule)
    graph = torch.fx.Graph()
    env, aliases = {}, {}

    def arg(n):
        return env[aliases.get(n, n)]

    for node in traced.graph.nodes:
        if node.op == "output":
            break
        in_place = False
        rectifier = rectifier_node(node, modules)
        if rectifier is not None:
            layer, source, in_place = rectifier
            new = graph.call_function(rectifier_function(layer), (arg(source),))
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
