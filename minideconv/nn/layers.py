"""The one-input layers: each a map y = f(x) that remembers, in its forward pass, what its
way back needs (the table is in ``minideconv.nn``'s docstring).  The pooling layers are
in ``minideconv.nn.pooling``, the joins in ``minideconv.nn.combine``."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import checks, geometry
from ..ops import conv2d, conv2d_weight_grad, conv_transpose2d, relu, relu_backward


class Layer:
    """Base class: ``layer(x)`` is ``layer.forward(x)[0]``."""

    #: names of the weight arrays (attributes) this layer owns
    param_names: Tuple[str, ...] = ()
    #: how many inputs ``forward`` takes (``None``: two or more, as ``Add``/``Concat``)
    n_inputs: Optional[int] = 1
    #: True when every output unit depends on every input position (Flatten, Linear,
    #: AdaptiveAvgPool2d): units after it are treated as seeing the whole image
    mixes_positions = False
    #: True for a classifier's closing Softmax: by default "the last layer" of a network
    #: is the one before it, the logits (``Network.output_layer``)
    maps_logits_to_probabilities = False

    def __call__(self, x):
        return self.forward(x)[0]

    def forward(self, x):
        """``(y, record)``: the output and what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, grad, record, rule: str = "backprop"):
        """The signal at the input, given the signal ``grad`` at the output (a tuple, one
        signal per input, for layers of several inputs)."""
        raise NotImplementedError

    def param_grads(self, grad, record) -> dict:
        """∂⟨y, grad⟩/∂θ for each weight array θ (``{}`` for layers without weights)."""
        return {}

    def record_rows(self, record, rows):
        """The record this layer would have made of the batch ``x[rows]``, from the one it
        made of x (``Network.rows_of_trace``): the rows of its arrays, which hold one row
        per image; what does not depend on the batch (a spatial size, a count) as is."""
        if hasattr(record, "ndim"):         # a NumPy or CuPy array: (N, ...)
            return record[rows]
        if isinstance(record, tuple):       # e.g. MaxPool2d's (switches, input size)
            return tuple(self.record_rows(part, rows) for part in record)
        return record

    def output_shape(self, input_shape: Tuple[int, ...]) -> Tuple[int, ...]:
        """Output shape (without N) for an input of ``input_shape`` (without N)."""
        return tuple(input_shape)

    def geometry(self) -> Optional[tuple]:
        """``(kernel, stride, padding, dilation)`` for receptive-field arithmetic;
        ``None`` for element-wise layers."""
        return None

    def input_channels(self) -> Optional[int]:
        """The channels an input must have (a convolution's, a batch norm's); None when
        the layer takes any."""
        return None

    def config(self) -> dict:
        """The hyper-parameters, JSON-serialisable (weights not included)."""
        return {}

    def params(self) -> dict:
        return {name: getattr(self, name) for name in self.param_names
                if getattr(self, name) is not None}

    def astype(self, dtype) -> "Layer":
        """A copy whose weights have ``dtype``."""
        arrays = {k: v.astype(dtype) for k, v in self.params().items()}
        return type(self).from_config(self.config(), arrays)

    @classmethod
    def from_config(cls, config: dict, arrays: dict) -> "Layer":
        return cls(**arrays, **config)

    def __repr__(self):
        parts = [f"{k}={tuple(v.shape)}" for k, v in self.params().items()]
        parts += [f"{k}={v!r}" for k, v in self.config().items()]
        return f"{type(self).__name__}({', '.join(parts)})"


def _check_weight_and_bias(weight, bias, ndim, layout):
    checks.check_float_array(weight, "weight", ndim=ndim, layout=layout)
    checks.check_bias(bias, "bias", weight.shape[0], weight.dtype)


class Conv2d(Layer):
    """y = conv2d(x, W) + b; weight (C_out, C_in/groups, kh, kw), bias (C_out,) or None.

    ``padding`` is an int, a pair, ``"valid"`` or ``"same"``; ``padding_mode`` is
    ``"zeros"``, ``"circular"``, ``"reflect"`` or ``"replicate"`` — as ``torch.nn.Conv2d``.
    ``padding`` may also be four pads (top, bottom, left, right), as ONNX's Conv pads
    (torch has no such Conv2d)."""

    param_names = ("weight", "bias")

    def input_channels(self) -> int:
        return int(self.weight.shape[1]) * self.groups

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 padding_mode="zeros"):
        _check_weight_and_bias(weight, bias, 4, "(C_out, C_in/groups, kh, kw)")
        self.weight, self.bias = weight, bias
        self.stride = checks.to_pair(stride, "stride", 1)
        four = isinstance(padding, (tuple, list)) and len(padding) == 4
        self.padding = padding if isinstance(padding, str) else \
            geometry.normalise_padding(padding, weight.shape[2:], (1, 1), (1, 1)) if four \
            else checks.to_pair(padding, "padding", 0)
        self.dilation = checks.to_pair(dilation, "dilation", 1)
        self.groups = geometry.check_groups(groups)
        self.padding_mode = geometry.check_padding_mode(padding_mode)
        if weight.shape[0] % self.groups:
            raise ValueError(f"groups={groups} must divide the output channels "
                             f"(weight.shape[0] = {weight.shape[0]})")
        geometry.normalise_padding(self.padding, weight.shape[2:], self.dilation,
                                  self.stride)  # rejects unknown strings, "same" with stride

    def _geometry(self, channels, input_hw):
        """The validated geometry (explicit pads, output size) for an input (C, H, W)."""
        return geometry.conv2d_geometry((1, channels) + tuple(input_hw), self.weight.shape,
                                       self.stride, self.padding, self.dilation, self.groups,
                                       self.padding_mode, name_in="the input")

    def call_arguments(self):
        """The keyword arguments of this layer's ``ops`` calls: the forward convolution,
        its transpose and its weight gradient take the same ones."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, **self.call_arguments()), x

    def backward(self, grad, record, rule="backprop"):
        # Wᵀ r: the transposed convolution with the forward call's own arguments.  The
        # bias is a constant: it does not enter the way back.  output_size says which of
        # the input sizes that convolve to this output size the input had.
        return conv_transpose2d(grad, self.weight, output_size=record.shape[2:], **self.call_arguments())

    def param_grads(self, grad, record):
        grads = {"weight": conv2d_weight_grad(record, grad, self.weight.shape, **self.call_arguments())}
        if self.bias is not None:
            grads["bias"] = grad.sum(axis=(0, 2, 3))
        return grads

    @property
    def in_channels(self):
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self):
        return self.weight.shape[0]

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"expects an input of {self.in_channels} channels (C, H, W), "
                             f"got {tuple(input_shape)}")
        return (self.out_channels,) + self._geometry(input_shape[0], input_shape[1:]).out_hw

    def geometry(self):
        # "same" pads (k−1)·d/2 on top/left (the extra one goes bottom/right): that is
        # the padding that shifts the receptive field.
        pads = geometry.normalise_padding(self.padding, self.weight.shape[2:], self.dilation,
                                         self.stride)
        return self.weight.shape[2:], self.stride, (pads[0], pads[2]), self.dilation

    def config(self):
        padding = self.padding if isinstance(self.padding, str) else list(self.padding)
        return dict(stride=list(self.stride), padding=padding,
                    dilation=list(self.dilation), groups=self.groups,
                    padding_mode=self.padding_mode)


class ReLU(Layer):
    """y = max(x, 0).  Its backward signal depends on ``rule`` (``ops.relu_backward``).
    As a rectifier of ``minideconv.rules``: slope α = 0 below 0, no cap."""

    negative_slope = 0.0
    cap = None

    def forward(self, x):
        return relu(x), x

    def backward(self, grad, record, rule="backprop"):
        return relu_backward(grad, record, rule=rule)


class Flatten(Layer):
    """(N, C, H, W) → (N, C·H·W), row-major: ``torch.nn.Flatten()``, ``torch.flatten(x, 1)``
    and ``x.view(x.size(0), -1)`` are all this layer."""

    mixes_positions = True

    def forward(self, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, grad, record, rule="backprop"):
        return grad.reshape(record)

    def record_rows(self, record, rows):
        return (len(rows),) + tuple(record[1:])     # the input's shape, N included

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


class Linear(Layer):
    """y = x Wᵀ + b on (N, in_features); weight (out_features, in_features) as PyTorch."""

    param_names = ("weight", "bias")
    mixes_positions = True

    def __init__(self, weight, bias=None):
        _check_weight_and_bias(weight, bias, 2, "(out_features, in_features)")
        self.weight, self.bias = weight, bias

    def forward(self, x):
        checks.check_float_array(x, "x", ndim=2, layout="(N, in_features)")
        if x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"x must have {self.weight.shape[1]} features, got shape "
                             f"{x.shape}")
        checks.check_same_dtype(x, "x", self.weight, "weight")
        y = x @ self.weight.T
        if self.bias is not None:
            y += self.bias
        return y, x

    def backward(self, grad, record, rule="backprop"):
        return grad @ self.weight

    def param_grads(self, grad, record):
        grads = {"weight": grad.T @ record}
        if self.bias is not None:
            grads["bias"] = grad.sum(axis=0)
        return grads

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.weight.shape[1],):
            raise ValueError(f"expects ({self.weight.shape[1]},) features, got "
                             f"{tuple(input_shape)} (put a Flatten before it)")
        return (self.weight.shape[0],)


class Identity(Layer):
    """y = x.  Stands for layers that do nothing at inference (e.g. PyTorch's Dropout in
    eval mode), so that layer indices match the framework's."""

    def forward(self, x):
        return x, None

    def backward(self, grad, record, rule="backprop"):
        return grad


class Dropout(Layer):
    """Dropout at inference (PyTorch's eval mode): y = x.  ``p`` is kept only so that the
    network converts back to the framework unchanged."""

    def __init__(self, p=0.5):
        self.p = checks.check_real(p, "p", 0, 1, why="a probability")

    def forward(self, x):
        return x, None

    def backward(self, grad, record, rule="backprop"):
        return grad

    def config(self):
        return dict(p=self.p)


class BatchNorm2d(Layer):
    """Batch normalisation at inference (PyTorch's eval mode), a per-channel affine map:

        y[n, c] = s_c · x[n, c] + t_c,   s_c = γ_c / √(σ²_c + ε),   t_c = β_c − s_c μ_c

    with the running mean μ and variance σ² frozen.  Its linear part is the diagonal
    matrix diag(s) — symmetric — so its transpose is the same scale: r ↦ s · r.  The shift
    t is a constant and, like a bias, does not enter the way back.  ``weight`` (γ) and
    ``bias`` (β) may be ``None`` (PyTorch's ``affine=False``: γ = 1, β = 0)."""

    param_names = ("weight", "bias", "running_mean", "running_var")

    def input_channels(self) -> int:
        return len(self.running_mean)

    def __init__(self, weight=None, bias=None, running_mean=None, running_var=None,
                 eps=1e-5):
        if running_mean is None or running_var is None:
            raise ValueError("BatchNorm2d needs running_mean and running_var (eval mode)")
        checks.check_float_array(running_mean, "running_mean", ndim=1, layout="(C,)")
        channels, dtype = len(running_mean), running_mean.dtype
        for name, value in (("running_var", running_var), ("weight", weight),
                            ("bias", bias)):
            if value is not None:
                checks.check_bias(value, name, channels, dtype)
        if np.any(running_var < 0):
            raise ValueError("running_var must be ≥ 0")
        eps = checks.check_real(eps, "eps", above=0)
        self.weight, self.bias = weight, bias
        self.running_mean, self.running_var, self.eps = running_mean, running_var, eps

    @property
    def channels(self):
        return len(self.running_mean)

    def scale_and_shift(self):
        """(s, t) of y = s·x + t, one value per channel."""
        scale = 1.0 / np.sqrt(self.running_var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -scale * self.running_mean
        if self.bias is not None:
            shift = shift + self.bias
        return scale.astype(self.running_mean.dtype), shift.astype(self.running_mean.dtype)

    def _check_input(self, x):
        checks.check_float_array(x, "x", ndim=4, layout="(N, C, H, W)")
        if x.shape[1] != self.channels:
            raise ValueError(f"x must have {self.channels} channels, got shape {x.shape}")
        checks.check_same_dtype(x, "x", self.running_mean, "running_mean")

    def forward(self, x):
        self._check_input(x)
        scale, shift = self.scale_and_shift()
        return x * scale[:, None, None] + shift[:, None, None], x

    def backward(self, grad, record, rule="backprop"):
        scale, _ = self.scale_and_shift()
        return grad * scale[:, None, None]     # diag(s)ᵀ = diag(s)

    def param_grads(self, grad, record):
        normalised = (record - self.running_mean[:, None, None]) / \
            np.sqrt(self.running_var[:, None, None] + self.eps)
        return affine_grads(grad, normalised, self.weight, self.bias)

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.channels:
            raise ValueError(f"expects an input of {self.channels} channels (C, H, W), "
                             f"got {tuple(input_shape)}")
        return tuple(input_shape)

    def config(self):
        return dict(eps=self.eps)


def affine_grads(grad, normalised, weight, bias) -> dict:
    """The weight gradients of y = γ_c x̂ + β_c on (N, C, H, W): ∂/∂γ = Σ g x̂ and
    ∂/∂β = Σ g over (N, H, W), for the ones that exist (not None)."""
    grads = {}
    if weight is not None:
        grads["weight"] = (grad * normalised).sum(axis=(0, 2, 3))
    if bias is not None:
        grads["bias"] = grad.sum(axis=(0, 2, 3))
    return grads
