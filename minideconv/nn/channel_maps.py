"""The layers that mix values across the channels at each position: the softmax of a
classifier, the local response normalisation of AlexNet / ZFNet / GoogLeNet, and
ShuffleNet's channel shuffle.

Each acts on axis 1 — the features of (N, C) or the channels of (N, C, H, W) — position
by position, and none is a rectifier, so the three rules pass the same signal back:

* ``Softmax``:  p = exp(x) / Σ_c exp(x_c); its Jacobian J = diag(p) − p pᵀ is symmetric,
  so the way back is  Jᵀ g = p ⊙ (g − ⟨p, g⟩)  (the record is p);
* ``LocalResponseNorm``:  b_c = a_c · D_c^(−β),  D_c = k + (α/n) Σ_{c′ ∈ W(c)} a_{c′}²
  over a window W(c) of n channels around c; its Jacobian has the diagonal D_c^(−β) and
  the rank-structured part −(2αβ/n) a_c D_c^(−β−1) a_j for j ∈ W(c) (the record is a);
* ``ChannelShuffle``:  y[:, i·g + j] = x[:, j·(C/g) + i] — a permutation P of the
  channels, whose transpose is the inverse permutation.
"""

from __future__ import annotations

import numpy as np

from .. import checks
from .layers import Layer


def _check_channels_input(x, what):
    checks.check_float_array(x, "x", layout=f"(N, C) or (N, C, H, W) for {what}")
    if x.ndim not in (2, 4):
        raise ValueError(f"{what}: x must be (N, C) or (N, C, H, W), got shape {x.shape}")


class Softmax(Layer):
    """p = softmax(x) over axis 1 (``torch.nn.Softmax(dim=1)``): at each position,
    p_c = exp(x_c − m) / Σ_{c′} exp(x_{c′} − m), m = max_c x_c (for a finite exp).

    The Jacobian ∂p_c/∂x_{c′} = p_c (δ_{cc′} − p_{c′}) — J = diag(p) − p pᵀ — is
    symmetric, so the way back is J g = p ⊙ (g − Σ_c p_c g_c), under every rule (a
    softmax is smooth).  A classifier's output is its logits before this layer: that is
    what ``Network.output_layer`` names."""

    maps_logits_to_probabilities = True

    def __init__(self, dim=1):
        if not (checks.is_int(dim) and dim in (1, -1)):
            raise ValueError(f"Softmax normalises over the channel axis only (dim=1, or "
                             f"-1 for (N, F) features), got dim={dim!r}")
        self.dim = int(dim)

    def forward(self, x):
        _check_channels_input(x, "Softmax")
        if self.dim == -1 and x.ndim != 2:
            raise ValueError(f"Softmax(dim=-1) normalises (N, F) features, got x of "
                             f"shape {x.shape}")
        xp = checks.array_module(x)             # NumPy or CuPy, as x
        shifted = xp.exp(x - x.max(axis=1, keepdims=True))
        p = shifted / shifted.sum(axis=1, keepdims=True)
        return p, p

    def backward(self, grad, record, rule="backprop"):
        p = record
        return p * (grad - (p * grad).sum(axis=1, keepdims=True))

    def output_shape(self, input_shape):
        if self.dim == -1 and len(input_shape) != 1:
            raise ValueError(f"Softmax(dim=-1) of a {tuple(input_shape)} input would "
                             f"normalise along its last axis; minideconv normalises over "
                             f"the channels (dim=1)")
        return tuple(input_shape)

    def config(self):
        return dict(dim=self.dim)


def window_sum(v, before, after):
    """s_c = Σ_{c′ = c − before}^{c + after} v_{c′} along axis 1, channels outside
    [0, C) counted as 0 (through a cumulative sum, one pass whatever the window)."""
    xp = checks.array_module(v)
    channels = v.shape[1]
    pad = [(0, 0)] * v.ndim
    pad[1] = (before + 1, after)
    total = xp.cumsum(xp.pad(v, pad), axis=1)
    # padded index c + before + 1 + after holds Σ up to c + after; c holds Σ below c − before
    return total[:, before + after + 1:before + after + 1 + channels] - total[:, :channels]


class LocalResponseNorm(Layer):
    """Local response normalisation across channels (Krizhevsky et al. 2012), as
    ``torch.nn.LocalResponseNorm(size, alpha, beta, k)`` and ONNX's LRN:

        b_c = a_c / D_c^β,   D_c = k + (α / n) Σ_{c′ = c − before}^{c + after} a_{c′}²

    with n = ``size``, ``before`` + ``after`` = n − 1 and channels outside [0, C) as 0.
    ``before`` defaults to n // 2, torch's window; ONNX's is (n − 1) // 2 — the two
    differ when n is even.  The exact Jacobian, with s_c = (2αβ/n) a_c g_c D_c^(−β−1),
    gives the way back

        (Jᵀ g)_j = g_j D_j^(−β) − a_j Σ_{c : j ∈ W(c)} s_c,

    the sum over the window turned round (``after`` channels before j, ``before`` after);
    the record is the input a, under every rule."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0, before=None):
        self.size = checks.check_int(size, "size", 1)
        self.alpha = checks.check_real(alpha, "alpha", 0)
        self.beta = checks.check_real(beta, "beta")
        self.k = checks.check_real(k, "k", above=0, why="D_c must be positive")
        self.before = self.size // 2 if before is None else \
            checks.check_int(before, "before", 0, self.size - 1)
        self.after = self.size - 1 - self.before

    def _denominator(self, a):
        return self.k + (self.alpha / self.size) * window_sum(a * a, self.before,
                                                               self.after)

    def forward(self, x):
        _check_channels_input(x, "LocalResponseNorm")
        return x * self._denominator(x) ** -self.beta, x

    def backward(self, grad, record, rule="backprop"):
        a = record
        d = self._denominator(a)
        spread = (2 * self.alpha * self.beta / self.size) * a * grad * d ** (-self.beta - 1)
        return grad * d ** -self.beta - a * window_sum(spread, self.after, self.before)

    def config(self):
        return dict(size=self.size, alpha=self.alpha, beta=self.beta, k=self.k,
                    before=self.before)


class ChannelShuffle(Layer):
    """ShuffleNet's channel shuffle (``torch.nn.ChannelShuffle(groups)``): the channels
    seen as a (g, C/g) table are read column by column,

        y[:, i·g + j] = x[:, j·(C/g) + i],   i < C/g, j < g

    — ``x.view(N, g, C/g, H, W).transpose(1, 2).reshape(N, C, H, W)``.  It is a
    permutation P, so its transpose is its inverse: the way back puts each channel of
    the signal back where it came from (Pᵀ r), under every rule."""

    def __init__(self, groups):
        self.groups = checks.check_int(groups, "groups", 1)

    def order(self, channels):
        """The input channel of each output channel: ``y[:, o] = x[:, order[o]]``."""
        if channels % self.groups:
            raise ValueError(f"ChannelShuffle: groups={self.groups} must divide the "
                             f"channels, got {channels}")
        return np.arange(channels).reshape(self.groups, -1).T.ravel()

    def forward(self, x):
        _check_channels_input(x, "ChannelShuffle")
        return checks.array_module(x).ascontiguousarray(x[:, self.order(x.shape[1])]), None

    def backward(self, grad, record, rule="backprop"):
        back = checks.array_module(grad).empty_like(grad)
        back[:, self.order(grad.shape[1])] = grad       # Pᵀ: the inverse permutation
        return back

    def output_shape(self, input_shape):
        self.order(input_shape[0])
        return tuple(input_shape)

    def config(self):
        return dict(groups=self.groups)
