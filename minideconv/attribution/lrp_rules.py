"""The LRP rules: each maps the relevance R at a layer's output to the relevance at its
input, reusing the layer's own forward map and its transpose.

A weighted layer is an affine map z = W x + b (``AffineMap``: a Conv2d's convolution or a
Linear's product, with its transpose r ↦ Wᵀ r: ``conv_transpose2d`` or r W).  Every rule
divides R by a stabilised denominator and passes the quotient s down a transpose:

===================  =====================================================================
``epsilon_rule``     x ⊙ Wᵀ(R / stab(W x + b))               (LRP-ε; ε → 0 is LRP-0)
``zplus_rule``       x⁺ ⊙ W⁺ᵀ s + x⁻ ⊙ W⁻ᵀ s,  s = R / stab(W⁺x⁺ + b⁺ + W⁻x⁻)
``alpha_beta_rule``  α (x⁺ ⊙ W⁺ᵀ s⁺ + x⁻ ⊙ W⁻ᵀ s⁺) − β (x⁺ ⊙ W⁻ᵀ s⁻ + x⁻ ⊙ W⁺ᵀ s⁻)
``flat_rule``        1ᵀ(R / stab(1 · 1)): R spread evenly over the inputs each unit reads
``norm_rule``        x ⊙ Pᵀ(R / stab(P x)) for a fixed linear map P (an average pool)
``sum_rule``         x_i ⊙ R / stab(Σ_j x_j) for each input of a residual sum
===================  =====================================================================

with stab(z) = z + ε·sign(z), sign(0) = +1 (``stabilize``), and x⁺ = max(x, 0),
x⁻ = min(x, 0) (likewise W⁺, W⁻, b⁺, b⁻).  These are zennit's (0.5.1) ``Epsilon``,
``ZPlus``, ``AlphaBeta``, ``Flat`` and ``Norm``, written out: zennit's ZPlus and AlphaBeta
also take negative inputs: a negative input times a negative weight, x⁻ W⁻ ≥ 0, counts
as a positive contribution (x⁻ W⁺ ≤ 0 as a negative one); the bias enters only the
pairing with x⁺.
"""

from __future__ import annotations

import numpy as np

from ..nn import Linear
from ..ops import conv2d, conv_transpose2d

__all__ = ["stabilize", "AffineMap", "epsilon_rule", "zplus_rule", "alpha_beta_rule",
           "flat_rule", "norm_rule", "sum_rule"]


def stabilize(z, epsilon=1e-6):
    """stab(z) = z + ε·sign(z) with sign(0) = +1 (zennit's ``Stabilizer``): a denominator
    pushed away from 0 by ε, keeping its sign, so that R / stab(z) is finite."""
    return z + np.where(z < 0, -epsilon, epsilon).astype(z.dtype, copy=False)


def positive(a):
    """a⁺ = max(a, 0), elementwise (None stays None: a layer without a bias)."""
    return None if a is None else np.maximum(a, 0)


def negative(a):
    """a⁻ = min(a, 0), elementwise (None stays None)."""
    return None if a is None else np.minimum(a, 0)


class AffineMap:
    """z = W x + b of a ``Conv2d`` or a ``Linear`` on inputs of ``input_shape``, with any
    weights W, b in place of the layer's own, and its transpose r ↦ Wᵀ r: the layer's
    convolution and transposed convolution under its own ``call_arguments()``, or x Wᵀ + b
    and r W."""

    def __init__(self, layer, input_shape):
        self.layer, self.input_shape = layer, tuple(input_shape)
        self.weight, self.bias = layer.weight, layer.bias

    def apply(self, x, weight, bias=None):
        """W x + b (no bias for None)."""
        if isinstance(self.layer, Linear):
            return x @ weight.T if bias is None else x @ weight.T + bias
        return conv2d(x, weight, bias, **self.layer.call_arguments())

    def transpose(self, r, weight):
        """Wᵀ r, of the input's shape."""
        if isinstance(self.layer, Linear):
            return r @ weight
        return conv_transpose2d(r, weight, output_size=self.input_shape[2:],
                                **self.layer.call_arguments())


def epsilon_rule(x, R, affine: AffineMap, epsilon=1e-6):
    """LRP-ε:  R_in = x ⊙ Wᵀ(R / stab_ε(W x + b)).

    Each input gets the share x_i w_ji / z_j of each output's R_j; without the ε and the
    bias the shares of a unit add up to 1 (conservation, Σ R_in = Σ R).  ε → 0 gives
    LRP-0, which is x ⊙ ∂z_t/∂x on a ReLU network (R / z is then the gradient)."""
    z = affine.apply(x, affine.weight, affine.bias)
    return x * affine.transpose(R / stabilize(z, epsilon), affine.weight)


def zplus_rule(x, R, affine: AffineMap, stabilizer=1e-6):
    """LRP-z⁺ (α = 1, β = 0), as zennit's ``ZPlus``, negative inputs included:

        z⁺ = W⁺x⁺ + b⁺ + W⁻x⁻,   s = R / stab(z⁺),   R_in = x⁺ ⊙ W⁺ᵀ s + x⁻ ⊙ W⁻ᵀ s.

    Only the positive contributions (w x > 0) share R; the positive part of the bias takes
    its share too (it is in the denominator, with no input to pass it to)."""
    W, xp, xn = affine.weight, positive(x), negative(x)
    Wp, Wn = positive(W), negative(W)
    z = affine.apply(xp, Wp, positive(affine.bias)) + affine.apply(xn, Wn)
    s = R / stabilize(z, stabilizer)
    return xp * affine.transpose(s, Wp) + xn * affine.transpose(s, Wn)


def alpha_beta_rule(x, R, affine: AffineMap, alpha=2.0, beta=1.0, stabilizer=1e-6):
    """LRP-αβ (α − β = 1), as zennit's ``AlphaBeta``: the positive and the negative
    contributions each share R, weighed α and −β:

        z⁺ = W⁺x⁺ + b⁺ + W⁻x⁻,   z⁻ = W⁻x⁺ + b⁻ + W⁺x⁻,
        R_in = α (x⁺ ⊙ W⁺ᵀ s⁺ + x⁻ ⊙ W⁻ᵀ s⁺) − β (x⁺ ⊙ W⁻ᵀ s⁻ + x⁻ ⊙ W⁺ᵀ s⁻),

    with s± = R / stab(z±)."""
    W, b, xp, xn = affine.weight, affine.bias, positive(x), negative(x)
    Wp, Wn = positive(W), negative(W)
    s_pos = R / stabilize(affine.apply(xp, Wp, positive(b)) + affine.apply(xn, Wn),
                          stabilizer)
    s_neg = R / stabilize(affine.apply(xp, Wn, negative(b)) + affine.apply(xn, Wp),
                          stabilizer)
    kept = xp * affine.transpose(s_pos, Wp) + xn * affine.transpose(s_pos, Wn)
    against = xp * affine.transpose(s_neg, Wn) + xn * affine.transpose(s_neg, Wp)
    return alpha * kept - beta * against


def flat_rule(x, R, affine: AffineMap, stabilizer=1e-6):
    """LRP-flat, as zennit's ``Flat`` (its inputs and weights ones, its bias zero):

        R_in = 1ᵀ(R / stab(1 · 1)),

    each output's R split evenly over the inputs it reads — 1 · 1 counts them (a
    zero-padded border cell is not read, so it gets nothing) — whatever their values."""
    ones_w = np.ones_like(affine.weight)
    count = affine.apply(np.ones_like(x), ones_w)
    return affine.transpose(R / stabilize(count, stabilizer), ones_w)


def norm_rule(x, z, R, transpose, stabilizer=1e-6):
    """zennit's ``Norm`` for a fixed linear map P (an average pool), z = P x its output:

        R_in = x ⊙ Pᵀ(R / stab(P x)),

    each output's R shared by the inputs in proportion to what they put into it.
    ``transpose`` is r ↦ Pᵀ r (the layer's own backward)."""
    return x * transpose(R / stabilize(z, stabilizer))


def sum_rule(xs, z, R, stabilizer=1e-6):
    """zennit's ``Norm`` at a sum z = Σ_j x_j (its ``Sum`` layer at a residual join):

        R_i = x_i ⊙ R / stab(z),

    R split between the branches in proportion to their values, so that Σ_i R_i = R
    up to the stabiliser.  (The gradient would copy R to every branch and double it.)"""
    s = R / stabilize(z, stabilizer)
    return tuple(x * s for x in xs)
