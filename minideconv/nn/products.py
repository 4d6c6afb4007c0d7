"""Products: the element-wise product of two activations (squeeze-and-excitation gates,
SiLU written as x · σ(x)) and the per-channel affine map by constants (ConvNeXt's layer
scale, a Mul or Add by a per-channel constant in ONNX).

* ``Mul``: y = a ⊙ b, with b (or a) of shape (N, C, 1, 1) broadcast over (H, W).  It is
  bilinear: around the recorded (a, b) its Jacobian has one block per input,

      ∂y/∂a = diag(b),        ∂y/∂b = diag(a) E   (E copies each gate value over its plane)

  so the way back is (g ⊙ b, Σ_(h,w) g ⊙ a) — the signal times the *other* input, summed
  over the positions a gate was broadcast to.  It records both inputs.
* ``ChannelAffine``: y = s_c · x + t_c with s, t constants (one value per channel, or one
  for all).  Its linear part is diag(s), symmetric: the way back is s · g; t is a
  constant and does not enter.

Neither touches a rectifier, so the three rules pass the same exact Jacobian.
"""

from __future__ import annotations


from .. import checks
from .layers import Layer


def _is_gate(shape, full):
    """Is ``shape`` (N, C, 1, 1) — one value per channel — of the (N, C, H, W) ``full``?"""
    return len(shape) == len(full) >= 3 and tuple(shape[:2]) == tuple(full[:2]) and \
        all(v == 1 for v in shape[2:])


def _sum_to(signal, shape):
    """``signal`` summed over the axes that were broadcast to reach it from ``shape``."""
    if signal.shape == tuple(shape):
        return signal
    return signal.sum(axis=tuple(range(2, signal.ndim)), keepdims=True)


def _product_shape(a, b):
    """The shape of a ⊙ b for shapes with N — equal ones, or a gate and the full one —
    else None."""
    a, b = tuple(a), tuple(b)
    if a == b or _is_gate(b, a):
        return a
    return b if _is_gate(a, b) else None


class Mul(Layer):
    """y = a ⊙ b: inputs of one shape, or one of them (N, C, 1, 1) — a gate, one value
    per image and channel — broadcast over the other's (H, W)."""

    n_inputs = 2

    def __call__(self, a, b):
        return self.forward(a, b)[0]

    def forward(self, a, b):
        checks.check_float_array(a, "a")
        checks.check_float_array(b, "b")
        checks.check_same_dtype(a, "a", b, "b")
        if _product_shape(a.shape, b.shape) is None:
            raise ValueError(f"Mul: a has shape {a.shape}, b {b.shape}; a product needs "
                             f"equal shapes or a gate (N, C, 1, 1) of an (N, C, H, W) "
                             f"input")
        return a * b, (a, b)

    def backward(self, grad, record, rule="backprop"):
        a, b = record
        # the signal times the other input, summed where that input was broadcast
        return _sum_to(grad * b, a.shape), _sum_to(grad * a, b.shape)

    def output_shape(self, a_shape, b_shape):
        shape = _product_shape((1,) + tuple(a_shape), (1,) + tuple(b_shape))  # N of 1
        if shape is None:
            raise ValueError(f"Mul needs inputs of one shape or a gate (C, 1, 1) of a "
                             f"(C, H, W) input, got {tuple(a_shape)} and {tuple(b_shape)}")
        return shape[1:]


def _check_per_channel(value, name):
    checks.check_float_array(value, name, ndim=1, layout="(C,) or (1,)")
    if len(value) < 1:
        raise ValueError(f"{name} must hold one value per channel, or one for all; got "
                         f"an empty array")


class ChannelAffine(Layer):
    """y[n, c] = s_c · x[n, c] + t_c on (N, C, …): ``scale`` (C,) or (1,) (one value for
    every channel), ``shift`` (C,), (1,) or None.  The way back is s · g."""

    param_names = ("scale", "shift")

    def __init__(self, scale, shift=None):
        _check_per_channel(scale, "scale")
        if shift is not None:
            _check_per_channel(shift, "shift")
            checks.check_same_dtype(scale, "scale", shift, "shift")
            if len(shift) != len(scale) and 1 not in (len(shift), len(scale)):
                raise ValueError(f"scale has {len(scale)} values and shift {len(shift)}; "
                                 f"they must agree (or one of them be a single value)")
        self.scale, self.shift = scale, shift

    @property
    def channels(self):
        """The channels it is made for (1: any)."""
        return max(len(self.scale), 1 if self.shift is None else len(self.shift))

    def input_channels(self):
        return self.channels if self.channels > 1 else None

    def _per_channel(self, value, ndim):
        return value.reshape((-1,) + (1,) * (ndim - 2))      # (C, 1, 1) for (N, C, H, W)

    def forward(self, x):
        checks.check_float_array(x, "x")
        if x.ndim < 2 or (self.channels > 1 and x.shape[1] != self.channels):
            raise ValueError(f"x must be (N, C, …) with C = {self.channels}, got shape "
                             f"{x.shape}")
        checks.check_same_dtype(x, "x", self.scale, "scale")
        y = x * self._per_channel(self.scale, x.ndim)
        if self.shift is not None:
            y += self._per_channel(self.shift, x.ndim)
        return y, x

    def backward(self, grad, record, rule="backprop"):
        return grad * self._per_channel(self.scale, grad.ndim)     # diag(s)ᵀ = diag(s)

    def param_grads(self, grad, record):
        axes = (0,) + tuple(range(2, grad.ndim))
        grads = {"scale": (grad * record).sum(axis=axes)}
        if self.shift is not None:
            grads["shift"] = grad.sum(axis=axes)
        for name, value in list(grads.items()):
            if len(getattr(self, name)) == 1:           # one value for every channel
                grads[name] = value.sum(keepdims=True)
        return grads

    def output_shape(self, input_shape):
        if len(input_shape) < 1 or (self.channels > 1 and input_shape[0] != self.channels):
            raise ValueError(f"expects an input of {self.channels} channels, got "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)
