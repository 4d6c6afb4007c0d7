"""The one table of the three ways back through a ReLU.

A ReLU's forward pass is y = max(x, 0) = D(x > 0) x.  Passing a signal g backward,
the three methods differ only here (Springenberg et al. 2014, Fig. 1):

========== ============================== ==================================
rule       r =                            used by
========== ============================== ==================================
backprop   g · [x > 0]                    gradient / saliency (Simonyan 2013)
deconvnet  max(g, 0)                      deconvnet (Zeiler & Fergus 2014)
guided     max(g, 0) · [x > 0]            guided backprop (Springenberg 2014)
========== ============================== ==================================

Each rule is two yes/no choices: keep only the positive part of the signal
(``rectifies_signal``), and keep only where the unit was on in the forward pass
(``masks_by_input``).  Every module that needs the rules (ops, the backends, nn,
matrices, visualize, the command line, interop) reads them from ``RULES`` here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import check_choice


@dataclass(frozen=True)
class ReluRule:
    """One way back through a ReLU whose forward input was x, for a signal g:

        r = (max(g, 0) if rectifies_signal else g) · ([x > 0] if masks_by_input else 1)
    """

    name: str
    rectifies_signal: bool  # keep max(g, 0): only signal that would raise the unit
    masks_by_input: bool    # keep g where x > 0: only through units that were on
    formula: str
    used_by: str


#: name -> rule, in the order the lessons and figures show them.
RULES = {rule.name: rule for rule in (
    ReluRule("backprop", rectifies_signal=False, masks_by_input=True,
             formula="g · [x > 0]", used_by="gradient / saliency (Simonyan et al. 2013)"),
    ReluRule("deconvnet", rectifies_signal=True, masks_by_input=False,
             formula="max(g, 0)", used_by="deconvnet (Zeiler & Fergus 2014)"),
    ReluRule("guided", rectifies_signal=True, masks_by_input=True,
             formula="max(g, 0) · [x > 0]",
             used_by="guided backpropagation (Springenberg et al. 2014)"),
)}

#: The rule names, in table order.
NAMES = tuple(RULES)


def get_rule(rule) -> ReluRule:
    """The ``ReluRule`` for a rule name (or the rule itself); a ValueError naming the
    accepted names otherwise."""
    if isinstance(rule, ReluRule):
        return rule
    return RULES[check_choice(rule, "rule", NAMES)]
