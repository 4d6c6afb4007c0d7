"""``Graph``: layers joined as a directed acyclic graph — residual sums, concatenations,
values read by several layers.

Each node is a layer and the names of the nodes whose outputs it reads::

    Graph([Node("conv1", Conv2d(w1), ("input",)),
           Node("relu1", ReLU(),     ("conv1",)),
           Node("conv2", Conv2d(w2), ("relu1",)),
           Node("add",   Add(),      ("conv2", "relu1")),   # relu1's output fans out
           Node("relu2", ReLU(),     ("add",))])

The forward pass runs the nodes in the order given (each reads only earlier ones).
The way back runs them in reverse.  Where a value fanned out to several layers, the
signals coming back from them *add*: y = f(x), z = g(x) read x twice, and the transpose
of x ↦ (f(x), g(x)) is (r_f, r_g) ↦ f′ᵀ r_f + g′ᵀ r_g — the multivariable chain rule for
"backprop", and for the deconvnet and guided rules the same sum of the signals before a
ReLU rule acts on them.  A node's signal is complete once every node that read it has
passed its signal back, which the reverse order guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from .layers import Layer
from .network import (NETWORK_INPUT, Network, Trace, check_aliases, check_names,
                      check_stop)


@dataclass(frozen=True)
class Node:
    """One layer of a graph: its ``name``, the ``layer`` and the ``inputs`` it reads (names
    of earlier nodes, or ``Graph.INPUT`` for the network's input)."""

    name: str
    layer: Layer
    inputs: Tuple[str, ...]


class Graph(Network):
    """A network of layers joined as a DAG; the last node is the network's output.

    ``nodes`` is a sequence of ``Node`` (or ``(name, layer, inputs)`` triples) in forward
    order.  Layers are addressed by index (the position in that order, −1 = the output)
    or by name, as in every ``Network``."""

    #: the name by which nodes read the network's input
    INPUT = "input"
    #: the format a file of a Graph names (``minideconv.nn.files``)
    FILE_FORMAT = "minideconv.Graph/1"

    def layer_spec(self, i) -> dict:
        """A layer's file entry, with its node name and the names it reads."""
        return dict(super().layer_spec(i), name=self.names[i],
                    inputs=list(self.nodes[i].inputs))

    def __init__(self, nodes, input_shape=None, aliases=None):
        nodes = [node if isinstance(node, Node) else Node(*node) for node in nodes]
        if not nodes:
            raise ValueError("a Graph needs at least one node")
        names = check_names([node.name for node in nodes], len(nodes))
        if self.INPUT in names:
            raise ValueError(f"{self.INPUT!r} names the network's input; no node may use it")
        position = {self.INPUT: NETWORK_INPUT}
        self._inputs = []
        for i, node in enumerate(list(nodes)):
            where = f"node {i} {node.name!r} ({type(node.layer).__name__})"
            if not isinstance(node.layer, Layer):
                raise TypeError(f"{where}: the layer must be a minideconv.nn layer, got "
                                f"{type(node.layer).__name__}")
            inputs = (node.inputs,) if isinstance(node.inputs, str) else tuple(node.inputs)
            unknown = [name for name in inputs if name not in position]
            if unknown:
                raise ValueError(f"{where} reads {unknown}, which is not an earlier node "
                                 f"(nodes must come in forward order) nor {self.INPUT!r}")
            wanted = node.layer.n_inputs
            if (wanted is None and len(inputs) < 2) or (wanted is not None and
                                                        len(inputs) != wanted):
                raise ValueError(f"{where} takes {wanted or 'two or more'} input(s), "
                                 f"got {len(inputs)}: {list(inputs)}")
            nodes[i] = Node(node.name, node.layer, inputs)
            self._inputs.append(tuple(position[name] for name in inputs))
            position[node.name] = i
        read = {j for inputs in self._inputs for j in inputs}
        unused = [nodes[i].name for i in range(len(nodes) - 1) if i not in read]
        if unused:
            raise ValueError(f"nodes {unused} feed nothing: every node but the last (the "
                             f"output) must be read by a later one")
        if NETWORK_INPUT not in read:
            raise ValueError("no node reads the network's input")
        self.nodes = nodes
        self.layers = [node.layer for node in nodes]
        self.names = names
        self.aliases = check_aliases(aliases, names)
        self._consumers = [tuple(k for k, inputs in enumerate(self._inputs) if i in inputs)
                           for i in range(len(nodes))]
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        if self.input_shape is not None:
            self.layer_shapes()

    def inputs_of(self, i):
        return self._inputs[i]

    def consumers_of(self, i) -> Tuple[int, ...]:
        """The indices of the nodes that read node i's output (i = −1, ``NETWORK_INPUT``:
        the nodes that read the network's input, as in ``inputs_of``)."""
        if i == NETWORK_INPUT:
            return tuple(k for k, inputs in enumerate(self._inputs) if NETWORK_INPUT in inputs)
        if not 0 <= i < len(self._consumers):
            raise ValueError(f"i must be a node index in [0, {len(self._consumers)}) or "
                             f"{NETWORK_INPUT} (the network's input), got {i}")
        return self._consumers[i]

    def __repr__(self):
        lines = [f"  ({i}) {node.name} = {node.layer!r} <- {', '.join(node.inputs)}"
                 for i, node in enumerate(self.nodes)]
        return "Graph(\n" + "\n".join(lines) + f"\n  input_shape={self.input_shape})"

    def __call__(self, x):
        """The output; each value is dropped as soon as the last node reading it has run."""
        self.check_input(x)
        values = {NETWORK_INPUT: x}
        last_reader = {}
        for k, inputs in enumerate(self._inputs):
            for j in inputs:
                last_reader[j] = k
        for i, layer in enumerate(self.layers):
            values[i], _ = layer.forward(*(values[j] for j in self._inputs[i]))
            for j in set(self._inputs[i]):     # a node may read one value twice (x + x)
                if last_reader[j] == i:
                    del values[j]
        return values[len(self.layers) - 1]

    def trace(self, x, upto=None) -> Trace:
        """Run nodes ``0 … upto`` (all by default; an index or a name) in forward order,
        keeping every output and record."""
        self.check_input(x)
        last = len(self.layers) - 1 if upto is None else self.index(upto)
        trace = Trace(input=x)
        for i in range(last + 1):
            arriving = [x if j == NETWORK_INPUT else trace.outputs[j]
                        for j in self._inputs[i]]
            y, record = self.layers[i].forward(*arriving)
            trace.outputs.append(y)
            trace.records.append(record)
        return trace

    def backward(self, grad, trace: Trace, start: Optional[int | str] = None,
                 rule: str = "backprop", stop: Optional[int | str] = None):
        """Pass ``grad`` (a signal at the output of node ``start``, default the last traced
        one) down to the input: nodes in reverse order, each passing its complete signal
        to its inputs, where signals from several readers add.  Given ``stop``, a node
        below ``start``, the signal at node ``stop``'s output instead: complete once
        every node after it has run, since all its readers come after it (zeros when
        ``start`` does not depend on it)."""
        start = len(trace.outputs) - 1 if start is None else self.index(start)
        last = check_stop(self, start, stop)
        signals = {start: grad}
        for i in range(start, last, -1):
            if i not in signals:            # node i does not lead to the start node
                continue
            layer = self.layers[i]
            passed = layer.backward(signals.pop(i), trace.records[i], rule=rule)
            if layer.n_inputs == 1:
                passed = (passed,)
            for j, signal in zip(self._inputs[i], passed):
                # a value read by several nodes: the signals coming back add
                signals[j] = signal if j not in signals else signals[j] + signal
        if last == NETWORK_INPUT:
            return signals[NETWORK_INPUT]
        return signals[last] if last in signals else 0 * trace.outputs[last]

    def with_layers(self, layers):
        layers = list(layers)
        if len(layers) != len(self.nodes):
            raise ValueError(f"with_layers needs {len(self.nodes)} layers, got {len(layers)}")
        return Graph([Node(node.name, layer, node.inputs)
                      for node, layer in zip(self.nodes, layers)], self.input_shape,
                     aliases=self.aliases)
