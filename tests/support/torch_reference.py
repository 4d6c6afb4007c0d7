"""An independent PyTorch reference for projections at any node of any traceable model.

Shared by the torch (``test_interop_torch_graph.py``) and ONNX import tests.  It uses nothing
from minideconv: only torch.fx, autograd and (optionally) Captum.

For a model, an input x (N, C, H, W), a node and a unit u of that node's output, the
projection of image n is  a_n · (∂a/∂x under the rule),  a_n = the node's output at u for
image n — the seed is zero but for a_n at u, and it is passed back to the input:

* ``"backprop"``: plain autograd, on an fx copy of the model whose ReLUs run out of place
  (``torch.relu``: autograd cannot differentiate an in-place ReLU of a ReLU's output);
* ``"deconvnet"`` / ``"guided"``: autograd on an fx copy of the model in which every ReLU
  (``nn.ReLU`` module, ``torch.relu``, ``F.relu``, ``Tensor.relu``, in place or not) is a
  ``torch.autograd.Function`` whose backward is the rule's:
  deconvnet  r ↦ max(r, 0);   guided  r ↦ max(r, 0) · [x > 0].
* ``captum_project``: Captum's ``NeuronDeconvolution`` / ``NeuronGuidedBackprop``, which
  hook ``nn.ReLU`` modules — valid only when every ReLU is a module called once.

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

_RELU_FUNCTIONS = {torch.relu, torch.relu_, F.relu, F.relu_}
_RELU_METHODS = {"relu", "relu_"}


def _is_relu(node, modules):
    if node.op == "call_module":
        return isinstance(modules[node.target], torch.nn.ReLU)
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS
    return node.op == "call_method" and node.target in _RELU_METHODS


def _is_in_place_relu(node, modules):
    if node.op == "call_module":
        return modules[node.target].inplace
    if node.op == "call_function":
        return node.target in (torch.relu_, F.relu_) or node.kwargs.get("inplace", False) \
            or (node.target is F.relu and len(node.args) > 1 and node.args[1])
    return node.target == "relu_"


class _DeconvnetReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)                 # the deconvnet rule: relu of the signal


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)       # guided: both masks


def deconvnet_relu(x):
    return _DeconvnetReLU.apply(x)


def guided_relu(x):
    return _GuidedReLU.apply(x)


RULE_RELUS = {"backprop": torch.relu, "deconvnet": deconvnet_relu, "guided": guided_relu}


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
            if rule is not None and _is_relu(node, self.modules):
                with graph.inserting_after(new):
                    replacement = graph.call_function(RULE_RELUS[rule],
                                                      (env[aliases.get(node.args[0],
                                                                       node.args[0])],))
                graph.erase_node(new)
                new = replacement
                if _is_in_place_relu(node, self.modules):
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
        """True when every ReLU is an ``nn.ReLU`` module called once (Captum's hooks)."""
        relus = [n for n in self.traced.graph.nodes if _is_relu(n, self.modules)]
        targets = [n.target for n in relus if n.op == "call_module"]
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


__all__ = ["RULES", "TorchReference", "project", "strongest_unit", "deconvnet_relu",
           "guided_relu"]
