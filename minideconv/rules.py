"""The one table of the three ways back through a rectifier — and through every other
activation.

Backprop is the chain rule everywhere.  The deconvnet and guided backpropagation differ
from it only at the *rectifiers*, the piecewise-linear units of one shape

    f(x) = α·x for x ≤ 0,   x for 0 < x < m,   m for x ≥ m

(ReLU is α = 0, m = ∞; ReLU6 / Hardtanh(0, m) / Clip(0, m) are α = 0 and a cap m;
LeakyReLU(α) is m = ∞; PReLU has one α per channel).  Its forward derivative is

    f′(x) = α if x ≤ 0,   1 if 0 < x < m,   0 if x ≥ m

and the signal rectified "by the unit's own shape" is rect_α(g) = max(g, 0) + α·min(g, 0).
Passing a signal g back through a rectifier whose forward input was x
(Springenberg et al. 2014, Fig. 1, for ReLU):

========== ============================== ==================================
rule       r =                            used by
========== ============================== ==================================
backprop   f′(x) · g                      gradient / saliency (Simonyan 2013)
deconvnet  rect_α(g)                      deconvnet (Zeiler & Fergus 2014)
guided     f′(x) · rect_α(g)              guided backprop (Springenberg 2014)
========== ============================== ==================================

Row by row, for each rectifier (``RECTIFIER_FORMULAS``):

=========================== ============== ======================= ==================
rectifier                   deconvnet      guided                  backprop
=========================== ============== ======================= ==================
ReLU                        relu(g)        [x > 0]·relu(g)         [x > 0]·g
ReLU6, Hardtanh(0, m),      relu(g)        [0 < x < m]·relu(g)     [0 < x < m]·g
Clip(0, m)
LeakyReLU(α), PReLU(α_c)    rect_α(g)      f′(x)·rect_α(g)         f′(x)·g
=========================== ============== ======================= ==================

The deconvnet ignores the forward input: ReLU6's cap is a fact about forward values, and
capping the signal would make the map depend on the seed's scale.  Every rule stays
positively homogeneous in g (r(c·g) = c·r(g) for c ≥ 0).  The ties follow the table, not
each torch function: f′ is strict at 0 and at m (torch's ``hardtanh`` and ``relu6`` agree;
``torch.clamp``'s derivative keeps both ends, ``[0 ≤ x ≤ m]``), and f′(0) = α
(``leaky_relu``'s own convention; for ReLU, [0 > 0] = 0).

*Smooth* activations — SiLU, GELU (exact and tanh), ELU, Sigmoid, Tanh, Hardswish,
Hardsigmoid — are not rectifiers: they pass the plain gradient f′(x)·g under every rule,
as Captum does for every module but ``nn.ReLU``.

Each rule is two yes/no choices: rectify the signal by the unit's shape
(``rectifies_signal``: rect_α(g) instead of g), and multiply by the forward derivative
(``masks_by_input``: f′(x), the mask [x > 0] for a ReLU).  Every module that needs the
rules (ops, the backends, nn, matrices, visualize, the command line, interop) reads them
from ``RULES`` here.

Which peers do what.  Captum's ``Deconvolution`` and ``GuidedBackprop`` override the
backward of ``nn.ReLU`` *modules* only (a ``torch.nn.functional.relu`` call, an
``nn.ReLU6``, an ``nn.LeakyReLU`` keep autograd's gradient): on MobileNetV2, whose only
rectifiers are ReLU6 modules, Captum's deconvnet silently is the gradient.  zennit's ``DeconvNet``
and ``GuidedBackprop`` composites and pytorch-grad-cam's guided backpropagation also act
on ``nn.ReLU`` modules only.  The
cross-check (``minideconv.interop.torch``) therefore compares with Captum only where every
rectifier is an ``nn.ReLU`` module, and with an autograd copy carrying this table
elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import check_choice


@dataclass(frozen=True)
class ReluRule:
    """One way back through a rectifier whose forward input was x, for a signal g:

        r = (rect_α(g) if rectifies_signal else g) · (f′(x) if masks_by_input else 1)

    — for a ReLU (α = 0): (max(g, 0) if rectifies_signal else g) · ([x > 0] if
    masks_by_input else 1).  ``formula`` is the ReLU row, ``rectifier_formula`` the
    general one."""

    name: str
    rectifies_signal: bool  # keep rect_α(g): the signal the unit's own shape would pass
    masks_by_input: bool    # multiply by f′(x): only through units that were on
    formula: str
    used_by: str
    rectifier_formula: str = ""


#: name -> rule, in the order the lessons and figures show them.
RULES = {rule.name: rule for rule in (
    ReluRule("backprop", rectifies_signal=False, masks_by_input=True,
             formula="g · [x > 0]", used_by="gradient / saliency (Simonyan et al. 2013)",
             rectifier_formula="f′(x) · g"),
    ReluRule("deconvnet", rectifies_signal=True, masks_by_input=False,
             formula="max(g, 0)", used_by="deconvnet (Zeiler & Fergus 2014)",
             rectifier_formula="rect_α(g)"),
    ReluRule("guided", rectifies_signal=True, masks_by_input=True,
             formula="max(g, 0) · [x > 0]",
             used_by="guided backpropagation (Springenberg et al. 2014)",
             rectifier_formula="f′(x) · rect_α(g)"),
)}

#: The rule names, in table order.
NAMES = tuple(RULES)


#: rectifier → {rule name: formula}: the table above, row by row
RECTIFIER_FORMULAS = {
    "ReLU": {"deconvnet": "relu(g)", "guided": "[x > 0]·relu(g)", "backprop": "[x > 0]·g"},
    "ReLU6": {"deconvnet": "relu(g)", "guided": "[0 < x < m]·relu(g)",
              "backprop": "[0 < x < m]·g"},
    "LeakyReLU": {"deconvnet": "rect_α(g)", "guided": "f′(x)·rect_α(g)",
                  "backprop": "f′(x)·g"},
    "PReLU": {"deconvnet": "rect_α(g)", "guided": "f′(x)·rect_α(g)",
              "backprop": "f′(x)·g"},
}

#: the activations that are not rectifiers: the plain gradient under every rule
SMOOTH_ACTIVATIONS = ("SiLU", "GELU", "ELU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid")


def get_rule(rule) -> ReluRule:
    """The ``ReluRule`` for a rule name (or the rule itself); a ValueError naming the
    accepted names otherwise."""
    if isinstance(rule, ReluRule):
        return rule
    return RULES[check_choice(rule, "rule", NAMES)]
