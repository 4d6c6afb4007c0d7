"""Layer-wise relevance propagation (LRP): the logit z_t redistributed, layer by layer, down
to the pixels, each layer under a rule of ``lrp_rules``.

The seed is relevance 1 at the target logit (e_t, as every method here: ``targets``).
From the logits down, each layer passes its relevance to its inputs:

==========================  =============================================================
Conv2d, Linear              the composite's rule (``Composite``): Flat for the weighted
                            layer first in forward order, then ZPlus or αβ at the
                            convolutions and ε at the linear layers
AvgPool2d,                  ``norm_rule``: x ⊙ Pᵀ(R / stab(P x))
AdaptiveAvgPool2d
Add                         ``sum_rule``: R split in proportion to the branches
MaxPool2d,                  the gradient: R to the switches (unpooled), R reshaped, R
AdaptiveMaxPool2d,          split into each input's channels, R as is
Flatten, Concat, Dropout,
Identity
ReLU                        R as is (zennit's ``Pass``: relevance, not a gradient)
BatchNorm2d                 merged into its Conv2d first (``canonize.merge_batch_norms``)
==========================  =============================================================

Any other layer is refused.  The result equals zennit 0.5.1's composites of the same name
(``EpsilonPlusFlat``, ``EpsilonAlpha2Beta1Flat``, …) with ``SequentialMergeBatchNorm``
and a zennit ``Sum`` module at every residual add (which its ResNet canonizer places at
torchvision's BasicBlock): without that ``Sum`` a plain ``out + identity`` is invisible
to zennit's hooks, and the gradient copies R to both branches, doubling it; the split
keeps Σ R conserved through the join.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..nn import (NETWORK_INPUT, AdaptiveAvgPool2d, AdaptiveMaxPool2d, Add, AvgPool2d,
                  Concat, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU)
from . import lrp_rules
from .canonize import merge_batch_norms
from .targets import as_batch, check_network, logit_seed, traced_logits

__all__ = ["Composite", "COMPOSITES", "RULES", "lrp"]

#: the rules a ``Composite`` may name for a weighted layer
RULES = ("epsilon", "zplus", "alpha2_beta1", "flat")

#: layers whose relevance goes down as their gradient (their own ``backward``)
GRADIENT_LAYERS = (MaxPool2d, AdaptiveMaxPool2d, Flatten, Concat, Dropout, Identity)


@dataclass(frozen=True)
class Composite:
    """Which rule each weighted layer gets: ``first`` for the Conv2d or Linear first in
    forward order (None: the rule of its type), ``conv`` for every other Conv2d,
    ``linear`` for every other Linear — each a name of ``RULES``.  ``epsilon`` is the
    ε rule's ε, ``stabilizer`` every other rule's (zennit's two parameters, both 1e-6
    by default).  ``Composite("epsilon", "epsilon", "epsilon")`` with ``epsilon`` and
    ``stabilizer`` → 0 (a tiny value, 1e-100: at 0 itself a unit with z = 0 divides 0 by
    0) is LRP-0."""

    first: Optional[str]
    conv: str
    linear: str
    epsilon: float = 1e-6
    stabilizer: float = 1e-6

    def __post_init__(self):
        for field in ("first", "conv", "linear"):
            value = getattr(self, field)
            if not (value in RULES or (field == "first" and value is None)):
                raise ValueError(f"Composite.{field} must be one of {list(RULES)}, got "
                                 f"{value!r}")


#: the named composites, each zennit's composite of that name (``zennit.composites``)
COMPOSITES = {
    "epsilon_plus_flat": Composite("flat", "zplus", "epsilon"),
    "epsilon_alpha2_beta1_flat": Composite("flat", "alpha2_beta1", "epsilon"),
    "epsilon_plus": Composite(None, "zplus", "epsilon"),
    "epsilon_alpha2_beta1": Composite(None, "alpha2_beta1", "epsilon"),
}


def check_composite(composite) -> Composite:
    """``composite`` as a ``Composite``: one, or a name of ``COMPOSITES``."""
    if isinstance(composite, Composite):
        return composite
    if isinstance(composite, str) and composite in COMPOSITES:
        return COMPOSITES[composite]
    raise ValueError(f"composite must be one of {sorted(COMPOSITES)} or an "
                     f"lrp.Composite, got {composite!r}")


def weighted_rule(composite: Composite, layer, first: bool):
    """The function of ``lrp_rules`` for a Conv2d or Linear, and its keyword arguments."""
    name = composite.first if first and composite.first is not None else \
        composite.conv if isinstance(layer, Conv2d) else composite.linear
    if name == "epsilon":
        return lrp_rules.epsilon_rule, dict(epsilon=composite.epsilon)
    if name == "zplus":
        return lrp_rules.zplus_rule, dict(stabilizer=composite.stabilizer)
    if name == "alpha2_beta1":
        return lrp_rules.alpha_beta_rule, dict(alpha=2.0, beta=1.0,
                                               stabilizer=composite.stabilizer)
    return lrp_rules.flat_rule, dict(stabilizer=composite.stabilizer)


def check_layers(net, last: int) -> None:
    """Refuse, before any pass, a layer up to the logits that no rule here covers."""
    known = (Conv2d, Linear, ReLU, AvgPool2d, AdaptiveAvgPool2d, Add) + GRADIENT_LAYERS
    for i in range(last + 1):
        if not isinstance(net.layers[i], known):
            raise ValueError(f"LRP has no rule here for {net.describe(i)}: it covers "
                             f"{', '.join(t.__name__ for t in known)} and BatchNorm2d "
                             f"after a Conv2d")


def layer_relevance(layer, inputs, output, record, R, composite: Composite, first: bool):
    """The relevance at a layer's inputs (a tuple, one per input) from R at its output;
    ``first`` says whether it is the weighted layer first in forward order."""
    stabilizer = composite.stabilizer
    if isinstance(layer, (Conv2d, Linear)):
        function, kwargs = weighted_rule(composite, layer, first)
        (x,) = inputs
        return (function(x, R, lrp_rules.AffineMap(layer, x.shape), **kwargs),)
    if isinstance(layer, (AvgPool2d, AdaptiveAvgPool2d)):
        return (lrp_rules.norm_rule(inputs[0], output, R,
                                    lambda r: layer.backward(r, record), stabilizer),)
    if isinstance(layer, Add):
        return lrp_rules.sum_rule(inputs, output, R, stabilizer)
    if isinstance(layer, ReLU):
        return (R,)                         # zennit's Pass: relevance is not reweighed
    passed = layer.backward(R, record)      # the gradient: switches, reshapes, splits
    return passed if layer.n_inputs != 1 else (passed,)


def relevance_walk(net, trace, start: int, seed, composite: Composite):
    """Relevance from ``seed`` at the output of layer ``start`` down to the input: layers
    in reverse order, as ``Graph.backward`` (where a value fanned out, the relevance from
    its readers adds)."""
    first = next((i for i, layer in enumerate(net.layers)
                  if isinstance(layer, (Conv2d, Linear))), None)
    relevance = {start: seed}
    for i in range(start, NETWORK_INPUT, -1):
        if i not in relevance:              # layer i does not lead to the logits
            continue
        sources = net.inputs_of(i)
        inputs = tuple(trace.input if j == NETWORK_INPUT else trace.outputs[j]
                       for j in sources)
        passed = layer_relevance(net.layers[i], inputs, trace.outputs[i], trace.records[i],
                                 relevance.pop(i), composite, i == first)
        for j, r in zip(sources, passed):
            relevance[j] = r if j not in relevance else relevance[j] + r
    return relevance[NETWORK_INPUT]


def lrp(net, x, target, composite="epsilon_plus_flat"):
    """The LRP relevance of the logit z_t at every input value, of x's shape.

    ``net`` a minideconv network (Sequential or Graph), ``x`` an image (C, H, W) or a batch
    (N, C, H, W) (never modified), ``target`` a class (an int) or one per image.
    ``composite`` a name of ``COMPOSITES`` — ``"epsilon_plus_flat"`` (Flat first, ZPlus at
    the convolutions, ε at the linear layers), ``"epsilon_alpha2_beta1_flat"`` (αβ with
    α = 2, β = 1 instead of ZPlus), and the two without Flat — or a ``Composite``.
    Batch norms are merged into their convolutions first (``merge_batch_norms``).

    The seed is relevance 1 at z_t, as zennit's with a one-hot ``attr_output``.
    Captum's ``LRP`` seeds z_t itself, so its maps are z_t times these (and it uses the
    ε-rule everywhere by default).  With ε → 0 everywhere (LRP-0) the map is
    x ⊙ ∂z_t/∂x / z_t on a ReLU network; with ε-rules alone and no biases Σ R = 1 up to
    the stabilisers (conservation)."""
    check_network(net)
    composite = check_composite(composite)
    images, single = as_batch(x)
    merged = merge_batch_norms(net)
    check_layers(merged, merged.output_layer())
    trace, logits_index, targets = traced_logits(merged, images, target)
    seed = logit_seed(trace.outputs[logits_index], targets)
    relevance = relevance_walk(merged, trace, logits_index, seed, composite)
    return relevance[0] if single else relevance
