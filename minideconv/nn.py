"""Layers and a ``Sequential`` network, with a forward pass that remembers the way back.

Every layer is a map ``y = f(x)`` on NCHW arrays (``Linear`` on (N, features)).  Its
``forward(x)`` returns ``(y, record)``: ``record`` holds exactly what the way back needs —

========== ===================================== ======================================
layer      record                                backward(r) — the signal passed down
========== ===================================== ======================================
Conv2d     the input x                           Wᵀ r = conv_transpose2d(r, W)
ReLU       the input x                           D(x > 0) r, or the deconvnet / guided rule
MaxPool2d  the switches s and the input size     P(s)ᵀ r = max_unpool2d(r, s)
Flatten    the input shape                       r reshaped back
Linear     the input x                           r W  (the transpose of x ↦ x Wᵀ)
========== ===================================== ======================================

With ``rule="backprop"`` the chain of ``backward`` calls is the chain rule, so it
computes gradients (``minideconv.train`` uses it); with ``"deconvnet"`` or ``"guided"``
only the ReLU steps change (``minideconv.visualize``).  The layers with weights also
give their weight gradients, ``param_grads(r, record)``.

Networks are saved as ``.npz`` files holding only plain arrays (``allow_pickle=False``):
the architecture is a JSON string, the weights are ``layers.<i>.weight`` / ``.bias``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from . import _checks, geometry, shapes
from .ops import (conv2d, conv2d_weight_grad, conv_transpose2d, max_pool2d, max_unpool2d,
                  relu, relu_backward)

FORMAT = "minideconv.Sequential/1"


class Layer:
    """Base class: ``layer(x)`` is ``layer.forward(x)[0]``."""

    #: names of the weight arrays (attributes) this layer owns
    param_names: Tuple[str, ...] = ()

    def __call__(self, x):
        return self.forward(x)[0]

    def forward(self, x):
        """``(y, record)``: the output and what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, grad, record, rule: str = "backprop"):
        """The signal at the input, given the signal ``grad`` at the output."""
        raise NotImplementedError

    def param_grads(self, grad, record) -> dict:
        """∂⟨y, grad⟩/∂θ for each weight array θ (``{}`` for layers without weights)."""
        return {}

    def output_shape(self, input_shape: Tuple[int, ...]) -> Tuple[int, ...]:
        """Output shape (without N) for an input of ``input_shape`` (without N)."""
        return tuple(input_shape)

    def geometry(self) -> Optional[tuple]:
        """``(kernel, stride, padding, dilation)`` for receptive-field arithmetic;
        ``None`` for element-wise layers."""
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
    _checks.check_float_array(weight, "weight", ndim=ndim, layout=layout)
    _checks.check_bias(bias, "bias", weight.shape[0], weight.dtype)


class Conv2d(Layer):
    """y = conv2d(x, W) + b; weight (C_out, C_in/groups, kh, kw), bias (C_out,) or None.

    ``padding`` is an int, a pair, ``"valid"`` or ``"same"``; ``padding_mode`` is
    ``"zeros"`` or ``"circular"`` — as ``torch.nn.Conv2d``."""

    param_names = ("weight", "bias")

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 padding_mode="zeros"):
        _check_weight_and_bias(weight, bias, 4, "(C_out, C_in/groups, kh, kw)")
        self.weight, self.bias = weight, bias
        self.stride = _checks.to_pair(stride, "stride", 1)
        self.padding = padding if isinstance(padding, str) else \
            _checks.to_pair(padding, "padding", 0)
        self.dilation = _checks.to_pair(dilation, "dilation", 1)
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

    def _kw(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, **self._kw()), x

    def backward(self, grad, record, rule="backprop"):
        # Wᵀ r: the transposed convolution with the forward call's own arguments.  The
        # bias is a constant: it does not enter the way back.  output_size says which of
        # the input sizes that convolve to this output size the input had.
        return conv_transpose2d(grad, self.weight, output_size=record.shape[2:], **self._kw())

    def param_grads(self, grad, record):
        grads = {"weight": conv2d_weight_grad(record, grad, self.weight.shape, **self._kw())}
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
    """y = max(x, 0).  Its backward signal depends on ``rule`` (``ops.relu_backward``)."""

    def forward(self, x):
        return relu(x), x

    def backward(self, grad, record, rule="backprop"):
        return relu_backward(grad, record, rule=rule)


class MaxPool2d(Layer):
    """Max-pooling that records its switches; the way back is the true unpooling P(s)ᵀ."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        self.kernel_size = _checks.to_pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else \
            _checks.to_pair(stride, "stride", 1)
        self.padding = _checks.to_pair(padding, "padding", 0)
        self.dilation = _checks.to_pair(dilation, "dilation", 1)
        if not isinstance(ceil_mode, bool):
            raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
        self.ceil_mode = ceil_mode

    def forward(self, x):
        y, switches = max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                 self.dilation, self.ceil_mode)
        return y, (switches, x.shape[2:])

    def backward(self, grad, record, rule="backprop"):
        switches, input_hw = record
        return max_unpool2d(grad, switches, self.kernel_size, self.stride, self.padding,
                            output_size=input_hw, dilation=self.dilation)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"expects a (C, H, W) input, got {tuple(input_shape)}")
        hw = shapes.max_pool2d_output_shape(input_shape[1:], self.kernel_size, self.stride,
                                            self.padding, self.dilation, self.ceil_mode)
        if min(hw) < 1:
            raise ValueError(f"the pooling window does not fit the input "
                             f"{tuple(input_shape)}")
        return (input_shape[0],) + hw

    def geometry(self):
        return self.kernel_size, self.stride, self.padding, self.dilation

    def config(self):
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), dilation=list(self.dilation),
                    ceil_mode=self.ceil_mode)


class Flatten(Layer):
    """(N, C, H, W) → (N, C·H·W), row-major (as ``torch.nn.Flatten``)."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, grad, record, rule="backprop"):
        return grad.reshape(record)

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


class Linear(Layer):
    """y = x Wᵀ + b on (N, in_features); weight (out_features, in_features) as PyTorch."""

    param_names = ("weight", "bias")

    def __init__(self, weight, bias=None):
        _check_weight_and_bias(weight, bias, 2, "(out_features, in_features)")
        self.weight, self.bias = weight, bias

    def forward(self, x):
        _checks.check_float_array(x, "x", ndim=2, layout="(N, in_features)")
        if x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"x must have {self.weight.shape[1]} features, got shape "
                             f"{x.shape}")
        _checks.check_same_dtype(x, "x", self.weight, "weight")
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


LAYER_TYPES = {cls.__name__: cls for cls in (Conv2d, ReLU, MaxPool2d, Flatten, Linear,
                                             Identity)}


@dataclass
class Trace:
    """What one forward pass of a ``Sequential`` remembers.

    ``outputs[i]`` is the output of ``layers[i]`` and ``records[i]`` what its
    ``backward`` needs; ``input`` is the network's input."""

    input: np.ndarray
    outputs: List[np.ndarray] = field(default_factory=list)
    records: list = field(default_factory=list)


class Sequential:
    """The layers applied one after another: ``net(x) = layers[-1](… layers[0](x))``.

    ``input_shape`` (C, H, W), when given, is checked against every layer at once, so a
    network that cannot run fails here with the name of the layer that does not fit.
    """

    def __init__(self, *layers, input_shape=None):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} must be a minideconv.nn layer, got "
                                f"{type(layer).__name__}")
        self.layers = list(layers)
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        if self.input_shape is not None:
            self.layer_shapes()

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        lines = [f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + f"\n  input_shape={self.input_shape})"

    def describe(self, i: int) -> str:
        return f"layer {i} ({type(self.layers[i]).__name__})"

    def trace(self, x, upto: Optional[int] = None) -> Trace:
        """Run layers ``0 … upto`` (all by default), keeping every output and record."""
        last = len(self.layers) - 1 if upto is None else upto
        trace = Trace(input=x)
        for layer in self.layers[:last + 1]:
            x, record = layer.forward(x)
            trace.outputs.append(x)
            trace.records.append(record)
        return trace

    def backward(self, grad, trace: Trace, start: Optional[int] = None,
                 rule: str = "backprop"):
        """Pass ``grad`` (a signal at the output of layer ``start``, default the last
        traced one) down to the input through each layer's ``backward``."""
        start = len(trace.outputs) - 1 if start is None else start
        for i in range(start, -1, -1):
            grad = self.layers[i].backward(grad, trace.records[i], rule=rule)
        return grad

    def layer_shapes(self, input_shape=None) -> List[Tuple[int, ...]]:
        """The output shape (without N) of every layer for ``input_shape`` (C, H, W)."""
        shape = self.input_shape if input_shape is None else tuple(input_shape)
        if shape is None:
            raise ValueError("input_shape is unknown: pass it")
        result = []
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.output_shape(shape)
            except ValueError as err:
                raise ValueError(f"{self.describe(i)} does not fit: {err}") from None
            result.append(shape)
        return result

    def receptive_field(self, layer: int) -> Optional[shapes.ReceptiveField]:
        """Receptive field of a unit at the output of ``layers[layer]``, or ``None`` when a
        ``Flatten`` comes first (then every unit sees the whole image)."""
        geometry = []
        for candidate in self.layers[:layer + 1]:
            if isinstance(candidate, (Flatten, Linear)):
                return None
            if candidate.geometry() is not None:
                geometry.append(candidate.geometry())
        return shapes.receptive_field(geometry)

    def astype(self, dtype) -> "Sequential":
        """A copy with every weight cast to ``dtype`` (e.g. float64 for exact checks)."""
        return Sequential(*(layer.astype(dtype) for layer in self.layers),
                          input_shape=self.input_shape)

    # ------------------------------------------------------------------ files

    def save(self, path) -> None:
        """Write an .npz of plain arrays: ``architecture`` (a JSON string) and
        ``layers.<i>.<name>`` for each weight array."""
        architecture = {
            "format": FORMAT,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [{"type": type(layer).__name__, "config": layer.config(),
                        "params": sorted(layer.params())} for layer in self.layers],
        }
        arrays = {f"layers.{i}.{name}": value for i, layer in enumerate(self.layers)
                  for name, value in layer.params().items()}
        np.savez(path, architecture=np.array(json.dumps(architecture)), **arrays)

    @staticmethod
    def load(path) -> "Sequential":
        """``Sequential.load(path)`` is ``minideconv.nn.load(path)``."""
        return load(path)


def load(path) -> Sequential:
    """Read a network written by ``Sequential.save``.  Every array is checked against its
    layer, and the chain of layers against ``input_shape``; errors name the layer."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no network file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as err:       # pickled objects, or not an .npz at all
        raise ValueError(f"{path!r} is not a minideconv network file (.npz of plain "
                         f"arrays): {err}") from None
    except (OSError, EOFError) as err:
        raise ValueError(f"{path!r} is not a minideconv network file (.npz): {err}") from None
    if "architecture" not in arrays:
        raise ValueError(f"{path!r} has no 'architecture' entry: not a minideconv network")
    try:
        architecture = json.loads(str(arrays.pop("architecture")))
        assert architecture["format"] == FORMAT
    except (ValueError, KeyError, AssertionError, TypeError):
        raise ValueError(f"{path!r}: unreadable architecture (expected format {FORMAT})") \
            from None

    layers = []
    for i, spec in enumerate(architecture["layers"]):
        kind = spec.get("type")
        if kind not in LAYER_TYPES:
            raise ValueError(f"{path!r}: layer {i} has unknown type {kind!r}")
        cls = LAYER_TYPES[kind]
        params = {}
        for name in spec.get("params", []):
            key = f"layers.{i}.{name}"
            if key not in arrays:
                raise ValueError(f"{path!r}: layer {i} ({kind}) is missing array {key!r}")
            params[name] = arrays.pop(key)
        try:
            layers.append(cls.from_config(spec["config"], params))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path!r}: layer {i} ({kind}): {err}") from None
    if arrays:
        raise ValueError(f"{path!r}: arrays that belong to no layer: {sorted(arrays)}")
    try:
        return Sequential(*layers, input_shape=architecture.get("input_shape"))
    except ValueError as err:
        raise ValueError(f"{path!r}: {err}") from None
