"""An independent PyTorch reference for projections at any node of any traceable model.

Shared by the torch (``test_interop_torch_graph.py``) and ONNX import tests.  It uses nothing
from minideconv: only torch.fx, autograd and (optionally) Captum.

For a model, an input x (N, C, H, W), a node and a unit u of that node's output, the
projection of image n is  a_n · (∂a/∂x under the rule),  a_n = the node's output at u for
image n — the seed is zero but for a_n at u, and it is passed back to the input:

* ``"backprop"``: plain autograd, on an fx copy of the model whose rectifiers run out of
  place (autograd cannot differentiate an in-place ReLU of a ReLU's output);
* ``"deconvnet"`` / ``"guided"``: autograd on an fx copy of the model in which every
  rectifier of the rule table — ReLU, ReLU6 / Hardtanh(0, m) / clamp(x, 0, m), LeakyReLU(α),
  PReLU(α per channel); module, function or method, in place or not — is a
  ``torch.autograd.Function`` whose backward is the rule's, with rect_α(g) = max(g, 0) +
  α·min(g, 0):  deconvnet  g ↦ rect_α(g);   guided  g ↦ f′(x) · rect_α(g).
  Smooth activations (SiLU, GELU, Sigmoid, …) keep autograd's derivative under every rule.
* ``captum_project``: Captum's ``NeuronDeconvolution`` / ``NeuronGuidedBackprop``, which
  hook ``nn.ReLU`` modules — valid only when every rectifier is an ``nn.ReLU`` module
  called once.

Nodes are named as ``minideconv.interop.torch.from_torch`` names them: a module's
qualified name (``"features.0"``, ``"layer1.0.conv1"``) for its first call,
``"<name>_<k>"`` for its k-th further call (``"layer1.0.relu_1"``), and the fx node name
for everything else (``"add"``, ``"cat"``, ``"flatten"``, ``"relu_1"``); an fx node name
(``"layer1_0_conv1"``) is accepted too.  The activation of a node is its value when it is
computed: the model runs up to that node and stops, so later in-place ops cannot change it.

API (kept stable for the ONNX tests)::

    ref = TorchReference(model)          # model: an nn.Module in eval mode
    ref.names                            # every node's name, forward order
    ref.activation(x, name)              # np.ndarray, the node's output
    ref.project(x, name, unit, rule)     # np.ndarray of x's shape
    ref.captum_project(x, name, unit, rule)
    strongest_unit(activation)           # image 0's argmax, as crosscheck picks it
    RULES
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.fx

F = torch.nn.functional
RULES = ("backprop", "deconvnet", "guided")

def _argument(node, position, name, default):
    """A call's argument by position or keyword (fx keeps a call as it was written)."""
    if len(node.args) > position:
        return node.args[position]
    return node.kwargs.get(name, default)


def rectifier(node, modules):
    """``(alpha, cap, in_place)`` when ``node`` is a rectifier of the rule table — ReLU
    (alpha 0, no cap), ReLU6 / Hardtanh(0, m) / clamp(x, 0, m) (cap m), LeakyReLU(α) /
    PReLU(α per channel) (alpha α) — as a module, function or method; None otherwise."""
    if node.op == "call_module":
        module = modules[node.target]
        if isinstance(module, torch.nn.ReLU):
            return 0.0, None, module.inplace
        if isinstance(module, torch.nn.Hardtanh) and module.min_val == 0:  # ReLU6 too
            return 0.0, float(module.max_val), module.inplace
        if isinstance(module, torch.nn.LeakyReLU):
            return float(module.negative_slope), None, module.inplace
        if isinstance(module, torch.nn.PReLU):
            return module.weight.detach(), None, False
        return None
    target = node.target
    if node.op == "call_function":
        if target in (torch.relu, F.relu, torch.relu_, F.relu_):
            return 0.0, None, target in (torch.relu_, F.relu_) or \
                bool(_argument(node, 1, "inplace", False))
        if target is F.relu6:
            return 0.0, 6.0, bool(_argument(node, 1, "inplace", False))
        if target in (F.hardtanh, F.hardtanh_) and _argument(node, 1, "min_val", -1.0) == 0:
            return 0.0, float(_argument(node, 2, "max_val", 1.0)), \
                target is F.hardtanh_ or bool(_argument(node, 3, "inplace", False))
        if target in (F.leaky_relu, F.leaky_relu_):
            return float(_argument(node, 1, "negative_slope", 0.01)), None, \
                target is F.leaky_relu_ or bool(_argument(node, 2, "inplace", False))
        if target in (torch.clamp, torch.clip, torch.clamp_, torch.clip_) and \
                _argument(node, 1, "min", None) == 0:
            cap = _argument(node, 2, "max", None)
            return 0.0, None if cap is None else float(cap), target in (torch.clamp_,
                                                                       torch.clip_)
        return None
    if node.op == "call_method":
        if target in ("relu", "relu_"):
            return 0.0, None, target == "relu_"
        if target in ("clamp", "clip", "clamp_", "clip_") and \
                _argument(node, 1, "min", None) == 0:
            cap = _argument(node, 2, "max", None)
            return 0.0, None if cap is None else float(cap), target.endswith("_")
    return None


def _per_channel(alpha, x):
    """α broadcast along dim 1 (a PReLU's one value per channel), or the number itself."""
    if isinstance(alpha, torch.Tensor) and alpha.numel() > 1:
        return alpha.to(x.dtype).reshape((1, -1) + (1,) * (x.ndim - 2))
    return float(alpha) if not isinstance(alpha, torch.Tensor) else float(alpha.item())


def _rectify(x, alpha, cap):
    """The rectifier's forward value, out of place."""
    a = _per_channel(alpha, x)
    y = torch.where(x > 0, x, a * x)
    return y if cap is None else y.clamp(max=cap)


def _derivative(x, alpha, cap):
    """f′(x): 1 on the rectifier's linear part, α below 0, 0 above the cap (the table's
    strict [0 < x < m], as torch's hardtanh)."""
    a = _per_channel(alpha, x)
    slope = torch.where(x > 0, torch.ones_like(x), a * torch.ones_like(x))
    return slope if cap is None else slope * (x < cap)


class _TableRectifier(torch.autograd.Function):
    """The deconvnet and guided rows of the rule table, written out independently:
    deconvnet  g ↦ max(g, 0) + α·min(g, 0);   guided  g ↦ f′(x) · (that)."""

    @staticmethod
    def forward(ctx, x, alpha, cap, guided):
        ctx.save_for_backward(x)
        ctx.alpha, ctx.cap, ctx.guided = alpha, cap, guided
        return _rectify(x, alpha, cap)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a = _per_channel(ctx.alpha, x)
        signal = grad.clamp(min=0) + a * grad.clamp(max=0)
        if ctx.guided:
            signal = signal * _derivative(x, ctx.alpha, ctx.cap)
        return signal, None, None, None


def rule_rectifier(rule, alpha=0.0, cap=None):
    """The rectifier (alpha, cap) as a function whose backward is ``rule``'s: torch's own
    autograd for backprop, the table's Function for the deconvnet and guided rules."""
    if rule == "backprop":
        def rectifier_function(x):
            return _rectify(x, alpha, cap)
    else:
        def rectifier_function(x):
            return _TableRectifier.apply(x, alpha, cap, rule == "guided")
    rectifier_function.__name__ = f"{rule}_rectifier"
    return rectifier_function


def is_relu(node, modules):
    """Is ``node`` a plain ReLU (alpha 0, no cap), module, function or method?"""
    spec = rectifier(node, modules)
    return spec is not None and spec[1] is None and not isinstance(spec[0], torch.Tensor) \
        and spec[0] == 0


def deconvnet_relu(x):
    return rule_rectifier("deconvnet")(x)


def guided_relu(x):
    return rule_rectifier("guided")(x)


RULE_RELUS = {rule: rule_rectifier(rule) for rule in RULES}


def strongest_unit(activation):
    """The unit (channel, h, w) — or (unit,) for (N, F) — of image 0's largest value."""
    activation = np.asarray(activation)
    return tuple(int(i) for i in np.unravel_index(np.argmax(activation[0]),
                                                 activation.shape[1:]))


class TorchReference:
    """The reference for one torch model (traced once with ``torch.fx.symbolic_trace``)."""

    def __init__(self, model):
        self.model = model.eval()
        self.traced = torch.fx.symbolic_trace(model)
        self.modules = dict(self.traced.named_modules())
        self._by_name = {}
        calls = {}
        fx_names = {}
        for node in self.traced.graph.nodes:
            if node.op in ("placeholder", "output", "get_attr") or \
                    (node.op == "call_method" and node.target == "size"):
                continue                # not layers (x.size(0) only shapes a view)
            fx_names[node.name] = node
            if node.op == "call_module":
                k = calls.get(node.target, 0)
                calls[node.target] = k + 1
                self._by_name[node.target if k == 0 else f"{node.target}_{k}"] = node
        for name, node in fx_names.items():   # functional ops: their fx node name
            if node.op != "call_module" and name not in self._by_name:
                self._by_name[name] = node
        order = {node: i for i, node in enumerate(self.traced.graph.nodes)}
        self.names = sorted(self._by_name, key=lambda n: order[self._by_name[n]])
        self._fx_names = fx_names

    def node(self, name):
        """The fx node called ``name`` (see the module docstring)."""
        if name in self._by_name:
            return self._by_name[name]
        if name in self._fx_names:
            return self._fx_names[name]
        raise KeyError(f"no node {name!r}; nodes: {self.names}")

    def is_module(self, name):
        return self.node(name).op == "call_module"

    # ------------------------------------------------------------ the truncated copies

    def _upto(self, name, rule=None):
        """A GraphModule computing the model up to node ``name`` (nodes after it are not
        copied) and returning its value; for a rule, every ReLU out of place (later
        readers of an in-place ReLU's input read its output) and for "deconvnet" and
        "guided" a rule ReLU."""
        target = self.node(name)
        graph = torch.fx.Graph()
        env = {}
        aliases = {}                    # in-place ReLU input → its (new) output
        for node in self.traced.graph.nodes:
            if node.op == "output":
                break
            new = graph.node_copy(node, lambda n: env[aliases.get(n, n)])
            spec = rectifier(node, self.modules) if rule is not None else None
            if spec is not None:
                alpha, cap, in_place = spec
                with graph.inserting_after(new):
                    replacement = graph.call_function(rule_rectifier(rule, alpha, cap),
                                                      (env[aliases.get(node.args[0],
                                                                       node.args[0])],))
                graph.erase_node(new)
                new = replacement
                if in_place:
                    aliases[node.args[0]] = node   # later readers see the ReLU's output
            env[node] = new
            if node is target:
                break
        graph.output(env[target])
        return torch.fx.GraphModule(self.traced, graph)

    def _input(self, x):
        x = torch.as_tensor(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
        return x.detach().clone()

    def activation(self, x, name):
        """The output of node ``name`` for input ``x`` (a copy, as NumPy)."""
        with torch.no_grad():
            return self._upto(name)(self._input(x)).detach().numpy().copy()

    def project(self, x, name, unit, rule):
        """Every image's projection of its activation at ``unit`` of node ``name``."""
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        xt = self._input(x).requires_grad_(True)
        module = self._upto(name, rule)
        out = module(xt)
        index = (slice(None),) + tuple(unit)
        seed = torch.zeros_like(out)
        seed[index] = out[index].detach()
        (grad,) = torch.autograd.grad(out, xt, grad_outputs=seed)
        return grad.detach().numpy().copy()

    # ------------------------------------------------------------ Captum

    def captum_applies(self):
        """True when every rectifier is an ``nn.ReLU`` module called once (Captum's hooks
        override nn.ReLU alone: at a ReLU6 or LeakyReLU they would pass the gradient)."""
        relus = [n for n in self.traced.graph.nodes if rectifier(n, self.modules)]
        targets = [n.target for n in relus if n.op == "call_module" and
                   type(self.modules[n.target]) is torch.nn.ReLU]
        return len(targets) == len(relus) and len(set(targets)) == len(targets)

    @contextlib.contextmanager
    def _relus_not_in_place(self):
        relus = [m for m in self.model.modules() if isinstance(m, torch.nn.ReLU)]
        saved = [m.inplace for m in relus]
        try:
            for m in relus:
                m.inplace = False
            yield
        finally:
            for m, flag in zip(relus, saved):
                m.inplace = flag

    def captum_project(self, x, name, unit, rule):
        """Captum's projection at a module node (``"deconvnet"`` or ``"guided"``), scaled
        as ``project``: the rules are positively homogeneous, so a negative activation
        a is attributed as the neuron −a and the result scaled by |a|."""
        import captum.attr

        if not self.captum_applies():
            raise ValueError("Captum's hooks need every ReLU to be an nn.ReLU module "
                             "called once")
        node = self.node(name)
        if node.op != "call_module":
            raise ValueError(f"Captum attributes module outputs; {name!r} is a {node.op}")
        cls = {"deconvnet": captum.attr.NeuronDeconvolution,
               "guided": captum.attr.NeuronGuidedBackprop}[rule]
        xt = self._input(x)
        values = torch.as_tensor(self.activation(xt, name)[(slice(None),) + tuple(unit)])
        signs = torch.where(values >= 0, 1.0, -1.0).to(values.dtype)

        def neuron(output):
            return output[(slice(None),) + tuple(unit)] * signs

        with self._relus_not_in_place():
            grad = cls(self.model, self.modules[node.target]).attribute(
                xt, neuron_selector=neuron)
        scale = values.abs().reshape((-1,) + (1,) * (xt.ndim - 1))
        return (grad.detach() * scale).numpy().copy()


def project(model, x, name, unit, rule):
    """``TorchReference(model).project(x, name, unit, rule)``."""
    return TorchReference(model).project(x, name, unit, rule)


__all__ = ["RULES", "RULE_RELUS", "TorchReference", "project", "strongest_unit",
           "deconvnet_relu", "guided_relu", "rectifier", "rule_rectifier", "is_relu"]
