"""``Sequential``: layers applied one after another, the simple case of a network."""

from __future__ import annotations

from typing import Optional

from .layers import Layer
from .network import (NETWORK_INPUT, Network, Trace, check_aliases, check_names,
                      check_stop)


class Sequential(Network):
    """The layers applied one after another: ``net(x) = layers[-1](… layers[0](x))``.

    ``input_shape`` (C, H, W), when given, is checked against every layer at once, so a
    network that cannot run fails here with the name of the layer that does not fit.
    ``names`` (default ``"0"``, ``"1"``, …) let layers be addressed by name;
    ``has_given_names`` says whether they were given (and so are saved and described);
    ``aliases`` (alias → name) are more names of layers (``Network.aliases``).
    """

    def __init__(self, *layers, input_shape=None, names=None, aliases=None):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} must be a minideconv.nn layer, got "
                                f"{type(layer).__name__}")
            if layer.n_inputs != 1:
                raise TypeError(f"layer {i} ({type(layer).__name__}) joins several inputs: "
                                f"put it in an nn.Graph")
        self.layers = list(layers)
        self.has_given_names = names is not None   # else the names are the indices
        self.names = [str(i) for i in range(len(layers))] if names is None else \
            check_names(names, len(layers))
        self.aliases = check_aliases(aliases, self.names)
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        if self.input_shape is not None:
            self.layer_shapes()

    def inputs_of(self, i):
        return (i - 1,) if i > 0 else (NETWORK_INPUT,)

    def __call__(self, x):
        self.check_input(x)
        for layer in self.layers:
            x = layer(x)
        return x

    def __repr__(self):
        lines = [f"  ({name}) {layer!r}" for name, layer in zip(self.names, self.layers)]
        return "Sequential(\n" + "\n".join(lines) + f"\n  input_shape={self.input_shape})"

    #: the format a file of a Sequential names (``minideconv.nn.files``)
    FILE_FORMAT = "minideconv.Sequential/1"

    def file_extras(self) -> dict:
        return {"names": list(self.names)} if self.has_given_names else {}

    def describe(self, i: int) -> str:
        if self.has_given_names:
            return super().describe(i)
        return f"layer {i} ({type(self.layers[i]).__name__})"

    def trace(self, x, upto=None) -> Trace:
        """Run layers ``0 … upto`` (all by default; an index or a name), keeping every
        output and record."""
        self.check_input(x)
        last = len(self.layers) - 1 if upto is None else self.index(upto)
        trace = Trace(input=x)
        for layer in self.layers[:last + 1]:
            x, record = layer.forward(x)
            trace.outputs.append(x)
            trace.records.append(record)
        return trace

    def backward(self, grad, trace: Trace, start: Optional[int | str] = None,
                 rule: str = "backprop", stop: Optional[int | str] = None):
        """Pass ``grad`` (a signal at the output of layer ``start``, default the last
        traced one) down through each layer's ``backward``: to the input, or — given
        ``stop``, a layer below ``start`` — to the output of layer ``stop`` (the signal
        there, e.g. ∂ logit/∂A for Grad-CAM's layer A)."""
        start = len(trace.outputs) - 1 if start is None else self.index(start)
        last = check_stop(self, start, stop)
        for i in range(start, last, -1):
            grad = self.layers[i].backward(grad, trace.records[i], rule=rule)
        return grad

    def with_layers(self, layers):
        return Sequential(*layers, input_shape=self.input_shape,
                          names=self.names if self.has_given_names else None,
                          aliases=self.aliases)

