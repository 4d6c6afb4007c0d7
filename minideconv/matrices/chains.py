"""A network around one input as a product of matrices, forward and backward.

Record a forward pass (the ReLU masks x > 0, the pooling switches s) and every layer is
a matrix F_k (``conv2d_matrix``, ``relu_matrix``, ``max_pool2d_matrix``); the network's
output for that input is

    F x = F_n ··· F_2 F_1 x                        (``forward_chain``)

and every way back from a top signal t is a product in the reverse order,

    B t = G_1 G_2 ··· G_n t,   G_k = F_kᵀ          (``backward_chain``)

— except at the ReLUs, where the three visualisation methods put three different
diagonal matrices (``relu_rule_factors``; the rules themselves are ``minideconv.rules``).
``rule_backward_map`` builds backprop, the deconvnet or guided backprop as ONE matrix B
and its projection B t.  With G_k = F_kᵀ everywhere, B = Fᵀ: the gradient.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from .. import checks, rules
from .csr import as_csr
from .pool_relu import mask_diagonal

__all__ = ["forward_chain", "backward_chain", "relu_rule_factors", "rule_backward_map",
           "BackwardMap"]


def _check_chain(factors) -> list:
    """The factors as CSR arrays, each taking the previous one's output."""
    factors = [as_csr(f, f"factors[{k}]") for k, f in enumerate(factors)]
    if not factors:
        raise ValueError("factors must hold at least one matrix")
    for k in range(1, len(factors)):
        if factors[k].shape[1] != factors[k - 1].shape[0]:
            raise ValueError(
                f"factors[{k}] has shape {factors[k].shape} but factors[{k - 1}] produces "
                f"{factors[k - 1].shape[0]} values: the factors must chain in forward order")
    return factors


def forward_chain(factors: Sequence) -> sp.csr_array:
    """The whole forward map of a recorded pass, F = F_n ··· F_2 F_1.

    ``factors`` lists the layer matrices in forward (application) order, e.g.
    ``[W1, D1, P1, W2, D2]`` for conv → relu → pool → conv → relu, each built for the
    recorded input (switches s, masks x > 0).  Then F x equals the network's output
    for that input (the ReLU masks and switches make the network linear around it).
    """
    factors = _check_chain(factors)
    return functools.reduce(lambda total, f: f @ total, factors[1:], factors[0]).tocsr()


def backward_chain(factors: Sequence, replacements: Optional[Dict[int, object]] = None
                   ) -> sp.csr_array:
    """The backward map B = G_1 G_2 ··· G_n, with G_k = F_kᵀ unless ``replacements[k]``
    gives another matrix for step k.

    Without replacements B = Fᵀ, the gradient (backprop) map.  The deconvnet and guided
    backprop replace only the ReLU factors (``relu_rule_factors``), so the three maps are
    products of the same matrices except at the ReLUs.
    """
    factors = _check_chain(factors)
    replacements = dict(replacements or {})
    backward = []
    for k, f in enumerate(factors):
        g = as_csr(replacements.pop(k), f"replacements[{k}]") if k in replacements \
            else f.T
        if g.shape != f.T.shape:
            raise ValueError(f"replacements[{k}] must have the shape of factors[{k}].T "
                             f"{f.T.shape}, got {g.shape}")
        backward.append(g)
    if replacements:
        raise ValueError(f"replacements has positions {sorted(replacements)} outside "
                         f"0..{len(factors) - 1}")
    return functools.reduce(lambda total, g: total @ g, backward[1:], backward[0]).tocsr()


def relu_rule_factors(factors: Sequence, relu_positions: Iterable[int], top_signal,
                      rule: str = "backprop") -> Dict[int, sp.csr_array]:
    """The backward matrix each ReLU rule uses at each ReLU factor D_k = diag(x_k > 0).

    ``rule`` is a name of ``minideconv.rules.NAMES`` (or a ``rules.ReluRule``); the rule
    table there says what each does to the signal r arriving at the ReLU from above
    (going backward from ``top_signal``).  As matrices, its two choices are two diagonal
    0/1 factors: ``masks_by_input`` keeps D(x > 0), ``rectifies_signal`` keeps D(r > 0):

    =========  ==============================
    rule       backward factor at a ReLU
    =========  ==============================
    backprop   D(x > 0)
    deconvnet  D(r > 0)
    guided     D(x > 0) D(r > 0)
    =========  ==============================

    These are the ReLU's factors; a network with other rectifiers (leaky, clipped,
    PReLU) goes through ``matrices.network.network_backward_map``, which knows each
    layer's slope and cap.

    Returns {position: factor}, ready for ``backward_chain(factors, replacements=...)``.
    The deconvnet and guided factors depend on ``top_signal``: those maps are linear only
    piecewise, between sign changes of r.
    """
    factors = _check_chain(factors)
    rule = rules.get_rule(rule)
    relu_positions = set(relu_positions)
    for k in relu_positions:
        checks.check_index(k, "relu_positions", len(factors), why="indices into factors")
        if factors[k].shape[0] != factors[k].shape[1]:
            raise ValueError(f"factors[{k}] is listed in relu_positions but is not square "
                             f"(shape {factors[k].shape}); a ReLU factor is diag(x > 0)")
    signal = np.asarray(top_signal).reshape(-1)
    if signal.size != factors[-1].shape[0]:
        raise ValueError(f"top_signal must have {factors[-1].shape[0]} values (the output "
                         f"of factors[-1]), got {signal.size}")

    replacements = {}
    for k in reversed(range(len(factors))):
        if k in relu_positions:
            kept = np.ones(signal.size, dtype=bool)
            if rule.masks_by_input:       # D(x > 0): the recorded forward mask
                kept &= factors[k].diagonal() > 0
            if rule.rectifies_signal:     # D(r > 0): the arriving signal's sign
                kept &= signal > 0
            factor = mask_diagonal(kept, factors[k].dtype)
            replacements[k] = factor
            signal = factor @ signal
        else:
            signal = factors[k].T @ signal
    return replacements


@dataclass(frozen=True)
class BackwardMap:
    """One rule's backward pass as explicit matrices.

    ``matrix`` = G_1 ··· G_n (input space ← output space); ``factors`` = (G_1, …, G_n);
    ``projection`` = matrix @ top_signal, the rule's image-space projection.
    """

    rule: str
    matrix: sp.csr_array
    factors: Tuple[sp.csr_array, ...]
    projection: np.ndarray


def rule_backward_map(factors: Sequence, relu_positions: Iterable[int], top_signal,
                      rule: str = "backprop") -> BackwardMap:
    """Backprop, deconvnet or guided backprop as ONE matrix for this top signal.

    Same factors Fᵀ at every convolution and pooling step; only the ReLU factors differ
    (``relu_rule_factors``).  For "backprop" the matrix is the transpose of
    ``forward_chain(factors)``.
    """
    factors = _check_chain(factors)
    replacements = relu_rule_factors(factors, relu_positions, top_signal, rule)
    backward = tuple(replacements.get(k, f.T.tocsr()) for k, f in enumerate(factors))
    matrix = backward_chain(factors, replacements)
    projection = matrix @ np.asarray(top_signal).reshape(-1)
    return BackwardMap(rule, matrix, backward, projection)

