"""The activations beside ReLU: the other rectifiers, and the smooth activations.

The *rectifiers* are the piecewise-linear units f(x) = α·x (x ≤ 0), x (0 < x < m), m
(x ≥ m) of ``minideconv.rules``, where the deconvnet and guided rules differ from the
gradient (``ops.rectifier_backward``):

===============  ==========================  ===========================================
layer            forward                     torch
===============  ==========================  ===========================================
ClippedReLU(m)   min(max(x, 0), m)           nn.ReLU6 (m = 6), nn.Hardtanh(0, m),
                                             torch.clamp(x, 0, m)
LeakyReLU(α)     x (x > 0), α·x              nn.LeakyReLU(α)
PReLU(weight)    x (x > 0), α_c·x            nn.PReLU: one α per channel (or one for all)
===============  ==========================  ===========================================

The *smooth* activations pass the plain gradient f′(x)·r under every rule (as Captum does
at every module but ``nn.ReLU``): ``SiLU``, ``GELU`` (exact or ``approximate="tanh"``),
``ELU``, ``Sigmoid``, ``Tanh``, ``Hardswish``, ``Hardsigmoid``.  Each is one NumPy
expression on the array module of its input (``checks.array_module``), so CuPy arrays
stay on the GPU.  Derivatives at the kinks follow torch's: ELU's f′(0) = α,
Hardswish's f′(±3) from the middle piece, Hardsigmoid's 0 at ±3.
"""

from __future__ import annotations

import math

from .. import checks
from ..ops import rectifier, rectifier_backward
from .layers import Layer, ReLU


# --------------------------------------------------------------------------- rectifiers

class Rectifier(Layer):
    """A rectifier of ``minideconv.rules``: ``negative_slope`` α (a float, or PReLU's
    weight) and ``cap`` m (None: no cap).  Its backward signal depends on ``rule``."""

    negative_slope = 0.0
    cap = None

    def forward(self, x):
        return rectifier(x, self.negative_slope, self.cap), x

    def backward(self, grad, record, rule="backprop"):
        return rectifier_backward(grad, record, rule, self.negative_slope, self.cap)


class ClippedReLU(Rectifier):
    """y = min(max(x, 0), m): torch's ``ReLU6`` (``cap=6``), ``Hardtanh(0, m)`` and
    ``clamp(x, 0, m)``.  The deconvnet rule passes relu(g) — the cap is a fact about
    forward values; the guided rule masks by [0 < x < m]."""

    def __init__(self, cap=6.0):
        self.cap = checks.check_real(cap, "cap", above=0, why="the largest output, m")

    def config(self):
        return dict(cap=self.cap)


class LeakyReLU(Rectifier):
    """y = x (x > 0), α·x otherwise: torch's ``LeakyReLU(negative_slope)``."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = checks.check_real(negative_slope, "negative_slope")

    def config(self):
        return dict(negative_slope=self.negative_slope)


class PReLU(Rectifier):
    """y = x (x > 0), α_c·x otherwise, with ``weight`` (1,) (one α for all channels) or
    (C,) (one per channel of (N, C, …)): torch's ``PReLU(num_parameters)``."""

    param_names = ("weight",)

    def __init__(self, weight):
        checks.check_float_array(weight, "weight", ndim=1, layout="(1,) or (C,)")
        self.weight = weight

    @property
    def negative_slope(self):
        return self.weight

    def input_channels(self):
        return None if len(self.weight) == 1 else len(self.weight)

    def output_shape(self, input_shape):
        if len(self.weight) > 1 and (not input_shape or input_shape[0] != len(self.weight)):
            raise ValueError(f"expects an input of {len(self.weight)} channels (one slope "
                             f"each), got {tuple(input_shape)}")
        return tuple(input_shape)

    def param_grads(self, grad, record):
        # ∂⟨y, g⟩/∂α_c = Σ x·g over the inputs x ≤ 0 of channel c
        contribution = grad * record * (record <= 0)
        if len(self.weight) == 1:
            return {"weight": contribution.sum().reshape(1)}
        axes = (0,) + tuple(range(2, record.ndim))
        return {"weight": contribution.sum(axis=axes)}


#: the layers whose backward the rules change: ReLU and the rectifiers here
RECTIFIER_LAYERS = (ReLU, Rectifier)


# --------------------------------------------------------------------------- smooth

class SmoothActivation(Layer):
    """y = f(x) element-wise; backward f′(x)·r whatever the rule (not a rectifier)."""

    def function(self, x):
        raise NotImplementedError

    def derivative(self, x):
        """f′(x), element-wise, like x."""
        raise NotImplementedError

    def forward(self, x):
        checks.check_float_array(x, "x")
        return self.function(x), x

    def backward(self, grad, record, rule="backprop"):
        return grad * self.derivative(record)


def _sigmoid(x):
    """1 / (1 + e^−x), without overflow: e^−|x| is never above 1."""
    xp = checks.array_module(x)
    small = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + small), small / (1 + small))


def _erf(x):
    """The error function on x's array module (SciPy's, or CuPy's)."""
    if checks.is_cupy(x):
        from cupyx.scipy.special import erf
    else:
        from scipy.special import erf
    return erf(x)


class Sigmoid(SmoothActivation):
    """y = σ(x) = 1 / (1 + e^−x); f′ = σ(1 − σ)."""

    def function(self, x):
        return _sigmoid(x)

    def derivative(self, x):
        s = _sigmoid(x)
        return s * (1 - s)


class Tanh(SmoothActivation):
    """y = tanh(x); f′ = 1 − tanh²(x)."""

    def function(self, x):
        return checks.array_module(x).tanh(x)

    def derivative(self, x):
        return 1 - checks.array_module(x).tanh(x) ** 2


class SiLU(SmoothActivation):
    """y = x·σ(x) (swish); f′ = σ(x)·(1 + x·(1 − σ(x)))."""

    def function(self, x):
        return x * _sigmoid(x)

    def derivative(self, x):
        s = _sigmoid(x)
        return s * (1 + x * (1 - s))


#: √(2/π) and the cubic coefficient of GELU's tanh approximation (torch's constants)
GELU_TANH_SCALE, GELU_TANH_CUBIC = math.sqrt(2 / math.pi), 0.044715
GELU_APPROXIMATIONS = ("none", "tanh")


class GELU(SmoothActivation):
    """y = x·Φ(x), Φ the standard normal CDF (``approximate="none"``), or
    0.5·x·(1 + tanh(√(2/π)(x + 0.044715 x³))) (``"tanh"``) — torch's ``GELU``."""

    def __init__(self, approximate="none"):
        self.approximate = checks.check_choice(approximate, "approximate",
                                               GELU_APPROXIMATIONS)

    def _tanh_inner(self, x):
        return GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * x ** 3)

    def function(self, x):
        xp = checks.array_module(x)
        if self.approximate == "tanh":
            return 0.5 * x * (1 + xp.tanh(self._tanh_inner(x)))
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))

    def derivative(self, x):
        xp = checks.array_module(x)
        if self.approximate == "tanh":
            t = xp.tanh(self._tanh_inner(x))
            return 0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * GELU_TANH_SCALE * \
                (1 + 3 * GELU_TANH_CUBIC * x ** 2)
        cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
        return cdf + x * xp.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi)

    def config(self):
        return dict(approximate=self.approximate)


class ELU(SmoothActivation):
    """y = x (x > 0), α·(e^x − 1) otherwise; f′ = 1 (x > 0), α·e^x (torch's f′(0) = α)."""

    def __init__(self, alpha=1.0):
        self.alpha = checks.check_real(alpha, "alpha")

    def function(self, x):
        xp = checks.array_module(x)
        return xp.where(x > 0, x, self.alpha * xp.expm1(xp.minimum(x, 0)))

    def derivative(self, x):
        xp = checks.array_module(x)
        return xp.where(x > 0, xp.ones((), x.dtype), self.alpha * xp.exp(xp.minimum(x, 0)))

    def config(self):
        return dict(alpha=self.alpha)


class Hardsigmoid(SmoothActivation):
    """y = max(0, min(1, α·x + β)); torch's is α = 1/6, β = 1/2 (ONNX's HardSigmoid
    takes any).  f′ = α inside (0 < αx + β < 1), 0 outside and at the ends (torch's)."""

    def __init__(self, alpha=1 / 6, beta=0.5):
        self.alpha = checks.check_real(alpha, "alpha", above=0)
        self.beta = checks.check_real(beta, "beta")

    def function(self, x):
        xp = checks.array_module(x)
        return xp.clip(self.alpha * x + self.beta, 0, 1).astype(x.dtype, copy=False)

    def derivative(self, x):
        xp = checks.array_module(x)
        inner = self.alpha * x + self.beta
        return xp.where((inner > 0) & (inner < 1), x.dtype.type(self.alpha),
                        xp.zeros((), x.dtype))

    def config(self):
        return dict(alpha=self.alpha, beta=self.beta)


class Hardswish(SmoothActivation):
    """y = x·min(max(x + 3, 0), 6)/6; f′ = 0 (x < −3), x/3 + 1/2 (−3 ≤ x ≤ 3), 1 (x > 3)
    — torch's ends."""

    def function(self, x):
        xp = checks.array_module(x)
        return x * xp.clip(x + 3, 0, 6) / 6

    def derivative(self, x):
        xp = checks.array_module(x)
        return xp.where(x < -3, xp.zeros((), x.dtype),
                        xp.where(x <= 3, x / 3 + 0.5, xp.ones((), x.dtype)))


#: every activation layer of this module, for the tables of ``nn``
ACTIVATIONS = (ClippedReLU, LeakyReLU, PReLU, SiLU, GELU, ELU, Sigmoid, Tanh, Hardswish,
               Hardsigmoid)

__all__ = ["Rectifier", "ClippedReLU", "LeakyReLU", "PReLU", "RECTIFIER_LAYERS",
           "SmoothActivation", "SiLU", "GELU", "ELU", "Sigmoid", "Tanh", "Hardswish",
           "Hardsigmoid", "ACTIVATIONS"]
