"""PyTorch ↔ minideconv, and a cross-check report against PyTorch autograd and Captum.

Someone with a PyTorch model — or a deconvnet written by hand — can compare it, layer by
layer, with an independent implementation whose every step is readable:

>>> net = from_torch(torch_model)                       # doctest: +SKIP
>>> print(crosscheck(torch_model, images))              # doctest: +SKIP

``from_torch`` reads a (nested) ``nn.Sequential`` of torch layers as an ``nn.Sequential``
and any other module that ``torch.fx.symbolic_trace`` can trace — torchvision's AlexNet,
VGG, ResNet — as an ``nn.Graph`` whose nodes are named after the modules
(``"layer1.0.conv1"``); ``minideconv.interop.torch_fx`` has the rules.

``crosscheck`` compares, per layer: the forward activations; the projection of that
layer's strongest activation back to the input under the three ReLU rules against
PyTorch autograd (``"backprop"``), Captum's ``NeuronDeconvolution`` (``"deconvnet"``) and
``NeuronGuidedBackprop`` (``"guided"``); and the deconvnet variant many hand-written
implementations use — ``F.max_unpool2d`` at the pools — against the true transpose.
For a graph the deconvnet and guided references are autograd through an fx copy of the
model whose ReLUs are autograd Functions with the rule's backward (Captum hooks ReLU
modules, and a ResNet calls one ReLU module twice), and the unpooling variant is left out.

Here: the conversions and the comparison.  The report's classes live in
``torch_report``, the torch side of each comparison (autograd, Captum, the unpooling
variant) in ``torch_autograd``, the layer-by-layer translation in ``torch_layers`` and the
tracing in ``torch_fx``.

PyTorch (and Captum, for the report) are imported here only, when a function runs.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .. import nn, visualize
from ..rules import NAMES as RULE_NAMES, get_rule
from . import torch_fx
from .torch_autograd import (sequential_outputs, sequential_projection, torch_projections,
                             torch_values, unpool_variant_deconvnet)
from .torch_layers import (import_torch, layer_from_module, leaf_modules, module_from_layer,
                           named_leaves, to_numpy)
from .torch_report import TOLERANCE, CrosscheckReport, Error, LayerCheck


# --------------------------------------------------------------------------- conversion

def _is_torch_layer(module) -> bool:
    """A module of torch.nn itself (a layer), not a user's module with its own forward."""
    return type(module).__module__.startswith("torch.nn.")


def from_torch(module, input_shape: Optional[Tuple[int, int, int]] = None) -> nn.Network:
    """A minideconv network equivalent to the torch ``module`` at inference (eval mode).

    * A (nested) ``nn.Sequential`` of torch layers becomes an ``nn.Sequential``: nested
      Sequentials are flattened and layer ``i`` of the result is leaf module ``i``
      (named by its qualified name, ``"0.1"``, when they nest).  A lone torch layer is a
      Sequential of one.
    * Any other module goes through ``torch.fx.symbolic_trace`` and becomes an
      ``nn.Graph``, one node per operation, named after the module that ran it
      (``"layer1.0.conv1"``; ``"layer1.0.relu_1"`` for a second call) or after the fx
      node (``"add"``, ``"cat"``, ``"flatten"``) — the rules are in
      ``minideconv.interop.torch_fx``, with the supported operations (``SUPPORTED``).

    An operation minideconv does not have raises a ValueError naming it and its fx node.
    The weights are copied, in the module's dtype (float32 or float64)."""
    torch = import_torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    leaves = named_leaves(module)
    if isinstance(module, torch.nn.Sequential) or _is_torch_layer(module):
        if all(_is_torch_layer(leaf) and not isinstance(leaf, torch.nn.Sequential)
               for _, leaf in leaves):
            layers = [layer_from_module(m, f"layer {i} ({type(m).__name__})")
                      for i, (_, m) in enumerate(leaves)]
            names = [name for name, _ in leaves]
            default = [str(i) for i in range(len(layers))]
            return nn.Sequential(*layers, input_shape=input_shape,
                                 names=None if names == default or not names[0] else names)
    return torch_fx.graph_from_fx(module, input_shape).graph


def to_torch(net: nn.Network):
    """The equivalent torch module in eval mode, weights copied, with one (non-in-place)
    ``nn.ReLU`` module per ReLU, so that Captum's hooks apply to each.

    A ``Sequential`` becomes an ``nn.Sequential``; a ``Graph`` a ``torch.fx.GraphModule``
    whose modules sit at the paths of the node names (``from_torch`` reads the same names
    back; a name that cannot be a module path — e.g. ``"a-b"`` — is sanitised), with
    the modules ``Sum`` and ``ChannelConcat`` (``torch_join_modules``) for ``Add`` and
    ``Concat``."""
    torch = import_torch()
    if not isinstance(net, nn.Network):
        raise TypeError(f"net must be a minideconv network, got {type(net).__name__}")
    dtype = torch.float64 if net.dtype() == np.dtype(np.float64) else torch.float32
    if isinstance(net, nn.Graph):
        return torch_fx.graph_module(net, dtype)
    return torch.nn.Sequential(*(module_from_layer(layer, dtype)
                                 for layer in net.layers)).eval()


# --------------------------------------------------------------------------- the comparison

def _strongest_unit(activation) -> Tuple[int, ...]:
    """(channel, h, w) — or (unit,) for (N, F) activations — of image 0's maximum."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(activation[0]),
                                                 activation.shape[1:]))


def crosscheck(module_or_net, x, layers: Optional[Sequence] = None,
               rules: Sequence[str] = RULE_NAMES, unpool_variant: bool = True
               ) -> CrosscheckReport:
    """Compare minideconv with PyTorch on ``x`` (N, C, H, W).

    ``module_or_net``: a torch module (converted with ``from_torch``) or a minideconv
    network (converted with ``to_torch``).  ``layers``: the layers whose outputs are
    checked (indices, or names for a graph; default: all).  The computation runs in
    ``x``'s dtype; the tolerance is 1e-10 relative for float64 and 1e-4 for float32.

    For a ``Sequential`` the deconvnet and guided projections are compared with Captum;
    for a ``Graph`` (where a ReLU module may run twice, or a ReLU be a function, and
    Captum's module hooks do not apply) with autograd through an fx copy of the model
    whose every ReLU is an autograd Function with the rule's backward.  The
    ``F.max_unpool2d`` variant is reported for Sequentials only.
    """
    torch = import_torch()
    if isinstance(module_or_net, nn.Network):
        return compare(module_or_net, to_torch(module_or_net), x, layers, rules,
                       unpool_variant)
    if not isinstance(module_or_net, torch.nn.Module):
        raise TypeError("module_or_net must be a torch nn.Module or a minideconv "
                        f"network, got {type(module_or_net).__name__}")
    return compare(from_torch(module_or_net), module_or_net, x, layers, rules,
                   unpool_variant)


def _check_inputs(x, rules):
    x = np.asarray(x)
    dtype = np.dtype(x.dtype)
    if dtype not in TOLERANCE:
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    for rule in rules:
        get_rule(rule)   # a ValueError naming the accepted rules
    return x, dtype


def compare(net: nn.Network, model, x, layers: Optional[Sequence] = None,
            rules: Sequence[str] = RULE_NAMES, unpool_variant: bool = True) -> CrosscheckReport:
    """Like ``crosscheck``, for a minideconv ``net`` and a torch ``model`` built
    independently — e.g. to check your own PyTorch port against minideconv's.  For a
    ``Sequential``, layer ``i`` of ``net`` ↔ leaf module ``i`` of ``model``; for a
    ``Graph``, node ``name`` ↔ the fx node ``from_torch`` would give that name."""
    if isinstance(net, nn.Graph):
        return _compare_graph(net, model, x, layers, rules)
    torch = import_torch()
    model = model.eval()
    x, dtype = _check_inputs(x, rules)
    net = net.astype(dtype)
    model = model.to(torch.float64 if dtype == np.float64 else torch.float32)
    n_layers = len(net.layers)
    if len(leaf_modules(model)) != n_layers:
        raise ValueError(f"model has {len(leaf_modules(model))} leaf modules but net "
                         f"has {n_layers} layers: they must correspond one to one")
    layers = range(n_layers) if layers is None else list(layers)
    for i in layers:
        if not 0 <= i < n_layers:
            raise ValueError(f"layers must be indices in [0, {n_layers}), got {i}")

    xt = torch.from_numpy(np.ascontiguousarray(x))
    modules = leaf_modules(model)
    with torch.no_grad():
        torch_outputs = [to_numpy(o) for o in sequential_outputs(model, xt)]
    trace = net.trace(x)
    has_pool_below = False
    checks = []
    for i in range(n_layers):
        has_pool_below |= isinstance(net.layers[i], nn.MaxPool2d)
        if i not in layers:
            continue
        ours = trace.outputs[i]
        unit = _strongest_unit(ours)
        check = LayerCheck(i, net.describe(i), unit, Error.between(ours, torch_outputs[i]))
        values = ours[(slice(None),) + unit]
        position = unit[1:] if len(unit) == 3 else None
        for rule in rules:
            projected = visualize.project(net, x, i, unit[0], position=position, rule=rule)
            reference = np.concatenate([
                sequential_projection(model, modules[i], xt[n:n + 1], unit,
                                      float(values[n]), rule)
                for n in range(len(x))])
            check.projections[rule] = Error.between(projected, reference)
        if unpool_variant and has_pool_below:
            ours_deconv = visualize.project(net, x[:1], i, unit[0], position=position,
                                            rule="deconvnet")
            variant = unpool_variant_deconvnet(model, xt[:1], i, unit, float(values[0]))
            check.unpool_variant = Error.between(variant, ours_deconv)
        checks.append(check)
    return CrosscheckReport(str(dtype), TOLERANCE[dtype], checks)


def _compare_graph(net: nn.Graph, model, x, layers, rules) -> CrosscheckReport:
    """``compare`` for a Graph: torch's values of every fx node (``torch_values``) and
    its projections (``torch_projections``: one forward pass per rule) beside
    minideconv's — one trace, and one ``net.backward`` per node and rule from the node's
    strongest unit of image 0, seeded with each image's activation there (what
    ``visualize.project`` does, without tracing again per node)."""
    torch = import_torch()
    x, dtype = _check_inputs(x, rules)
    net = net.astype(dtype)
    model = model.eval().to(torch.float64 if dtype == np.float64 else torch.float32)
    conversion = torch_fx.graph_from_fx(model)
    paths = getattr(model, "minideconv_paths", {})     # to_torch's sanitised names
    counterpart = {name: paths.get(name, name) for name in net.names}
    missing = [name for name in net.names if counterpart[name] not in conversion.fx_nodes]
    if missing:
        raise ValueError(f"net's nodes {missing[:8]} have no counterpart in the model "
                         f"(its converted nodes: {list(conversion.fx_nodes)[:8]}…): the "
                         f"names must match")
    chosen = range(len(net.layers)) if layers is None else \
        sorted({net.index(layer) for layer in layers})
    xt = torch.from_numpy(np.ascontiguousarray(x))
    values = torch_values(conversion.traced, xt)
    trace = net.trace(x)
    fx_name = {name: conversion.fx_nodes[counterpart[name]].name for name in net.names}
    checks, units = [], {}
    for i in chosen:
        name = net.names[i]
        ours = trace.outputs[i]
        unit = _strongest_unit(ours)
        units[i] = unit
        checks.append(LayerCheck(i, net.describe(i), unit,
                                 Error.between(ours, values[fx_name[name]])))
    for rule in rules:
        reference = torch_projections(
            conversion.traced, xt, {fx_name[net.names[i]]: units[i] for i in chosen}, rule)
        for check in checks:
            i, unit = check.index, check.unit
            activation = trace.outputs[i]
            index = (slice(None),) + tuple(unit)
            seed = np.zeros_like(activation)
            seed[index] = activation[index]
            projected = net.backward(seed, trace, start=i, rule=rule)
            check.projections[rule] = Error.between(projected,
                                                    reference[fx_name[net.names[i]]])
    return CrosscheckReport(str(dtype), TOLERANCE[dtype], checks,
                            reference="PyTorch (autograd; rule ReLUs as autograd Functions)")


# --------------------------------------------------------------------------- built-in models

def builtin_model(name: str, seed: int = 0) -> Tuple[nn.Sequential, Tuple[int, int, int]]:
    """Seeded random-weight feature stacks (no downloads) and the embedded trained model.

    ``"zfnet"``: ZFNet's layer pattern (7×7/2 conv, 3×3/2 overlapping pools, 5×5/2 conv,
    three 3×3 convs, a linear head) at reduced width, 3×64×64 input; ``"vgg"``: three VGG
    blocks (two 3×3 convs and a 2×2/2 pool each) at reduced width, 3×32×32 input;
    ``"embedded"``: ``minideconv.data.load_model()``.  Returns (net, input_shape)."""
    if name == "embedded":
        from ..data import load_model
        net = load_model()
        return net, net.input_shape
    rng = np.random.default_rng(seed)

    def conv(c_in, c_out, k, **kw):  # He initialisation keeps activations O(1)
        w = rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))
        return nn.Conv2d(w, 0.1 * rng.standard_normal(c_out), **kw)

    if name == "zfnet":
        layers = [conv(3, 12, 7, stride=2, padding=1), nn.ReLU(),
                  nn.MaxPool2d(3, 2, padding=1),
                  conv(12, 24, 5, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
                  conv(24, 32, 3, padding=1), nn.ReLU(),
                  conv(32, 32, 3, padding=1), nn.ReLU(),
                  conv(32, 24, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
                  nn.Flatten()]
        shape = (3, 64, 64)
        features = int(np.prod(nn.Sequential(*layers).layer_shapes(shape)[-1]))
        layers.append(nn.Linear(rng.standard_normal((10, features)) / np.sqrt(features)))
        return nn.Sequential(*layers, input_shape=shape), shape
    if name == "vgg":
        layers, c_in = [], 3
        for width in (8, 16, 32):
            layers += [conv(c_in, width, 3, padding=1), nn.ReLU(),
                       conv(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2)]
            c_in = width
        return nn.Sequential(*layers, input_shape=(3, 32, 32)), (3, 32, 32)
    raise ValueError(f"name must be 'zfnet', 'vgg' or 'embedded', got {name!r}")


def crosscheck_builtin(models: Sequence[str] = ("zfnet", "vgg", "embedded"),
                       dtype: str = "float64", n_images: int = 2, seed: int = 0,
                       tolerance: Optional[float] = None, log=print) -> int:
    """Cross-check the built-in models; print each report; return the exit status
    (0 when every error is within tolerance, 1 otherwise).  ``minideconv crosscheck``."""
    failed = []
    for name in models:
        net, shape = builtin_model(name, seed)
        rng = np.random.default_rng(seed)
        if name == "embedded":
            from ..data import load_dataset
            x = load_dataset("test", n=n_images)[0].astype(dtype)
        else:
            x = rng.standard_normal((n_images,) + tuple(shape)).astype(dtype)
        report = crosscheck(net, x)
        if tolerance is not None:
            report.tolerance = tolerance
        log(f"\n== {name} ({len(net.layers)} layers, input {tuple(shape)}, "
            f"{n_images} images)")
        log(str(report))
        if not report.passed:
            failed.append(name)
    log(f"\n{'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 1 if failed else 0
