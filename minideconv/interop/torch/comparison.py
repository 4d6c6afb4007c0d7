"""The cross-check against PyTorch: ``crosscheck`` and ``compare`` return a report.

Someone with a PyTorch model — or a deconvnet written by hand — can compare it, layer by
layer, with an independent implementation whose every step is readable:

>>> print(crosscheck(torch_model, images))              # doctest: +SKIP

``crosscheck`` compares, per layer: the forward activations; the projection of that
layer's strongest activation back to the input under the three rules against PyTorch
autograd (``"backprop"``), Captum's ``NeuronDeconvolution`` (``"deconvnet"``) and
``NeuronGuidedBackprop`` (``"guided"``) — where every rectifier is an ``nn.ReLU``, the
only module Captum overrides; elsewhere against an fx copy with the rule table's
rectifiers; and the deconvnet variant many hand-written implementations use —
``F.max_unpool2d`` at the pools — against the true transpose.  For a graph the deconvnet
and guided references are autograd through an fx copy of the model whose ReLUs are
autograd Functions with the rule's backward (Captum hooks ReLU modules, and a ResNet
calls one ReLU module twice), and the unpooling variant is left out.

The report's classes live in ``report``, torch's side of each comparison (autograd,
Captum, the unpooling variant) in ``reference``.  PyTorch (and Captum, for the report)
are imported only when a function runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ... import checks, nn, visualize
from ...rules import NAMES as RULE_NAMES, get_rule
from ...visualize.projection import SEED_VALUES, seed, strongest_unit
from . import fx
from .reference import (sequential_outputs, sequential_projection, torch_projections,
                        torch_values, unpool_variant_deconvnet)
from .convert import from_torch, to_torch
from .layers import import_torch, leaf_modules, named_leaves, reused_leaves, to_numpy
from .report import TOLERANCE, CrosscheckReport, Error, Float32Judgement, LayerCheck


# --------------------------------------------------------------------------- the comparison

def crosscheck(module_or_net, x, layers: Optional[Sequence] = None,
               rules: Sequence[str] = RULE_NAMES, unpool_variant: bool = True,
               seed_value: str = "activation") -> CrosscheckReport:
    """Compare minideconv with PyTorch on ``x`` (N, C, H, W).

    ``module_or_net``: a torch module (converted with ``from_torch``) or a minideconv
    network (converted with ``to_torch``).  ``layers``: the layers whose outputs are
    checked (indices or names, as ``Network.index`` takes them; default: all).  The
    computation runs in ``x``'s dtype; the tolerance is 1e-10 relative for float64 and
    1e-4 for float32.  ``seed_value``: what each projection starts from at its unit, on
    both sides — the activation (``"activation"``, Zeiler & Fergus) or 1 (``"one"``,
    Captum's ``attribute(x, target=c)``); see ``minideconv.visualize.project``.

    For a ``Sequential`` whose rectifiers are all ReLUs the deconvnet and guided
    projections are compared with Captum (``captum_applies``: Captum overrides only
    ``nn.ReLU``, so with a ReLU6 or a LeakyReLU its answer would be the gradient); for
    other Sequentials and for a ``Graph`` (where a ReLU module may run twice, or a ReLU be a function, and
    Captum's module hooks do not apply) with autograd through an fx copy of the model
    whose every ReLU is an autograd Function with the rule's backward.  The
    ``F.max_unpool2d`` variant is reported for Sequentials only.

    float32 rounding can flip a ReLU mask (a pre-activation within rounding of 0), and one
    flip can move a deep layer's output or map by percents on either side.  A float32
    check beyond its tolerance is therefore judged again against the float64 truth of both
    sides (``CrosscheckReport.float32_judged``): it agrees to float32 precision when the
    same check in float64 passes and minideconv's float32 results lie no farther from
    their float64 values than ``FLOAT32_DRIFT_FACTOR`` times PyTorch's own.

    The torch module is not changed: the check runs on a copy, in eval mode and ``x``'s
    dtype (a module in training mode is checked at inference, with ``from_torch``'s
    warning).
    """
    torch = import_torch()
    if isinstance(module_or_net, nn.Network):
        return compare(module_or_net, to_torch(module_or_net), x, layers, rules,
                       unpool_variant, seed_value)
    if not isinstance(module_or_net, torch.nn.Module):
        raise TypeError("module_or_net must be a torch nn.Module or a minideconv "
                        f"network, got {type(module_or_net).__name__}")
    return compare(from_torch(module_or_net), module_or_net, x, layers, rules,
                   unpool_variant, seed_value)


def _check_inputs(x, rules, seed_value):
    x = np.asarray(x)
    dtype = np.dtype(x.dtype)
    if dtype not in TOLERANCE:
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    for rule in rules:
        get_rule(rule)   # a ValueError naming the accepted rules
    checks.check_choice(seed_value, "seed_value", SEED_VALUES)
    return x, dtype


def compare(net: nn.Network, model, x, layers: Optional[Sequence] = None,
            rules: Sequence[str] = RULE_NAMES, unpool_variant: bool = True,
            seed_value: str = "activation") -> CrosscheckReport:
    """Like ``crosscheck``, for a minideconv ``net`` and a torch ``model`` built
    independently — e.g. to check your own PyTorch port against minideconv's.  For a
    ``Sequential``, layer ``i`` of ``net`` ↔ leaf module ``i`` of ``model``; for a
    ``Graph``, node ``name`` ↔ the fx node ``from_torch`` would give that name.

    Both run in ``x``'s dtype at inference, on copies: ``model`` and ``net`` are left as
    they were (dtype, mode, parameters)."""
    torch = import_torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x, dtype = _check_inputs(x, rules, seed_value)
    if not isinstance(net, nn.Graph):
        reused = reused_leaves(model)
        if reused:
            raise ValueError(f"model reuses a module at {', '.join(reused[:3])}: a "
                             f"Sequential net cannot say which call a layer is; "
                             f"crosscheck(model, x) converts it through torch.fx, which "
                             f"names every call")
    paths = getattr(model, "minideconv_paths", {})     # to_torch's sanitised names
    kept = {} if dtype == np.float32 else None
    report = _compare_in(net, model, x, layers, rules, unpool_variant, seed_value, paths,
                         kept=kept)
    if dtype == np.float32 and not report.passed:     # judged against the float64 truth
        truth = {}
        exact = _compare_in(net, model, x.astype(np.float64), layers, rules, False,
                            seed_value, paths, units=report.units(), kept=truth)
        report.float32_judged = Float32Judgement.of(kept, truth, exact)
    return report


def _compare_in(net, model, x, layers, rules, unpool_variant, seed_value, paths,
                units=None, kept=None) -> CrosscheckReport:
    """The comparison in ``x``'s dtype, on copies of ``net`` and ``model`` in that dtype;
    ``units`` ({layer: unit}) fixes the units (else each layer's strongest of image 0);
    ``kept``, a dict, receives every compared pair: (layer, "forward" or rule) →
    (ours, torch's)."""
    torch = import_torch()
    dtype = np.dtype(x.dtype)
    model = copy.deepcopy(model).eval().to(torch.float64 if dtype == np.float64
                                            else torch.float32)   # (a copy loses paths)
    net = net.astype(dtype)
    compare_in = _compare_graph if isinstance(net, nn.Graph) else _compare_sequential
    report = compare_in(net, model, x, layers, rules, unpool_variant, seed_value, paths,
                        units or {}, kept if kept is not None else {})
    report.seed_value = seed_value
    return report


def _compare_sequential(net, model, x, layers, rules, unpool_variant, seed_value, paths,
                        units, kept) -> CrosscheckReport:
    torch = import_torch()
    n_layers = len(net.layers)
    if len(leaf_modules(model)) != n_layers:
        raise ValueError(f"model has {len(leaf_modules(model))} leaf modules but net "
                         f"has {n_layers} layers: they must correspond one to one")
    layers = range(n_layers) if layers is None else {net.index(layer) for layer in layers}
    xt = torch.from_numpy(np.ascontiguousarray(x))
    modules = leaf_modules(model)
    with torch.no_grad():
        torch_outputs = [to_numpy(o) for o in sequential_outputs(model, xt)]
    trace = net.trace(x)
    fx_reference = None if captum_applies(net) else SequentialFx.of(model)
    has_pool_below = False
    checks_ = []
    for i in range(n_layers):
        has_pool_below |= isinstance(net.layers[i], nn.MaxPool2d)
        if i not in layers:
            continue
        ours = trace.outputs[i]
        unit = units.get(i) or strongest_unit(ours)
        kept[i, "forward"] = (ours, torch_outputs[i])
        check = LayerCheck(i, net.describe(i), unit, Error.between(ours, torch_outputs[i]))
        values = ours[(slice(None),) + unit] if seed_value == "activation" else \
            np.ones(len(x))
        position = unit[1:] if len(unit) == 3 else None
        for rule in rules:
            projected = visualize.project(net, x, i, unit[0], position=position, rule=rule,
                                          seed_value=seed_value)
            if fx_reference is not None and get_rule(rule).rectifies_signal:
                node = fx_reference.node_names[i]
                reference = torch_projections(fx_reference.traced, xt, {node: unit}, rule,
                                              seed_value)[node]
            else:
                reference = np.concatenate([
                    sequential_projection(model, modules[i], xt[n:n + 1], unit,
                                          float(values[n]), rule)
                    for n in range(len(x))])
            kept[i, rule] = (projected, reference)
            check.projections[rule] = Error.between(projected, reference)
        if unpool_variant and has_pool_below:
            ours_deconv = visualize.project(net, x[:1], i, unit[0], position=position,
                                            rule="deconvnet", seed_value=seed_value)
            variant = unpool_variant_deconvnet(model, xt[:1], i, unit, float(values[0]))
            check.unpool_variant = Error.between(variant, ours_deconv)
        checks_.append(check)
    if fx_reference is None:
        return CrosscheckReport(str(x.dtype), TOLERANCE[np.dtype(x.dtype)], checks_)
    return CrosscheckReport(str(x.dtype), TOLERANCE[np.dtype(x.dtype)], checks_,
                            reference=RECTIFIER_REFERENCE)


#: the report's reference where Captum does not apply
RECTIFIER_REFERENCE = ("PyTorch (autograd; rule rectifiers as autograd Functions: Captum "
                       "hooks nn.ReLU modules only)")


def captum_applies(net) -> bool:
    """Are Captum's deconvnet and guided backprop this network's?  Only when every
    rectifier is a ReLU: Captum overrides ``nn.ReLU`` modules only, so at a ReLU6, a
    LeakyReLU or a PReLU its answer is the plain gradient."""
    return not any(isinstance(layer, nn.Rectifier) for layer in net.layers)


@dataclass
class SequentialFx:
    """A Sequential traced by fx, and the fx node name of each leaf (by index), for the
    rule references of ``reference.torch_projections``."""

    traced: object
    node_names: list

    @classmethod
    def of(cls, model):
        traced = fx.trace_module(model)
        by_target = {node.target: node.name for node in traced.graph.nodes
                     if node.op == "call_module"}
        return cls(traced, [by_target[name] for name, _ in named_leaves(model)])


def _compare_graph(net: nn.Graph, model, x, layers, rules, unpool_variant, seed_value,
                   paths, units, kept) -> CrosscheckReport:
    """``compare`` for a Graph: torch's values of every fx node (``torch_values``) and
    its projections (``torch_projections``: one forward pass per rule) beside
    minideconv's — one trace, and one ``net.backward`` per node and rule from the node's
    strongest unit of image 0, seeded at that unit in every image (what
    ``visualize.project`` does, without tracing again per node).  ``paths``: node name →
    module path where ``to_torch`` had to sanitise a name.  (No unpooling variant.)"""
    torch = import_torch()
    conversion = fx.graph_from_fx(model)
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
    # a channels-last region's torch values are (N, H, W, C): read them as (N, C, H, W)
    last = {name for name in net.names if counterpart[name] in conversion.channels_last}
    for name in last:
        values[fx_name[name]] = np.transpose(values[fx_name[name]], (0, 3, 1, 2))
    checks_ = []
    for i in chosen:
        ours, theirs = trace.outputs[i], values[fx_name[net.names[i]]]
        kept[i, "forward"] = (ours, theirs)
        checks_.append(LayerCheck(i, net.describe(i), units.get(i) or strongest_unit(ours),
                                  Error.between(ours, theirs)))
    for rule in rules:
        reference = torch_projections(
            conversion.traced, xt, {fx_name[net.names[c.index]]: c.unit[1:] + c.unit[:1]
                                    if net.names[c.index] in last else c.unit
                                    for c in checks_}, rule, seed_value)
        for check in checks_:
            i, unit = check.index, check.unit
            signal = seed(trace.outputs[i], unit[0], unit[1:], seed_value)
            projected = net.backward(signal, trace, start=i, rule=rule)
            theirs = reference[fx_name[net.names[i]]]
            kept[i, rule] = (projected, theirs)
            check.projections[rule] = Error.between(projected, theirs)
    return CrosscheckReport(str(x.dtype), TOLERANCE[np.dtype(x.dtype)], checks_,
                            reference="PyTorch (autograd; rule rectifiers as autograd Functions)")
