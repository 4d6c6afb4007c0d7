"""What ``Sequential`` and ``Graph`` share: layers addressed by index or name, the shapes and
receptive fields that follow from how the layers are joined, dtype casts and files.

A network is a list of layers in forward order, each reading the outputs of earlier
layers (``inputs_of(i)``; −1 stands for the network's input).  For ``Sequential``
layer i reads layer i − 1; a ``Graph`` says which.  Everything here walks that list.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .. import checks, shapes

#: the index that stands for the network's input in ``inputs_of``
NETWORK_INPUT = -1


@dataclass
class Trace:
    """What one forward pass remembers.

    ``outputs[i]`` is the output of ``layers[i]`` and ``records[i]`` what its
    ``backward`` needs; ``input`` is the network's input."""

    input: np.ndarray
    outputs: List[np.ndarray] = field(default_factory=list)
    records: list = field(default_factory=list)


class _RowsOf:
    """``[take(i, items[i]) for i in range(len(items))]``, each item taken only when it is
    read: a backward pass reads each layer's record once, so at most one layer's rows
    are copied at a time."""

    def __init__(self, items, take):
        self.items, self.take = items, take

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.take(i, self.items[i])


class Network:
    """The base of ``Sequential`` and ``Graph``: ``layers`` and ``names`` in forward order,
    and ``inputs_of(i)``, the indices of the layers whose outputs layer i reads."""

    #: the format its files name, set by each kind of network (``Network.save``)
    FILE_FORMAT: str = ""

    layers: list
    names: List[str]
    input_shape: Optional[Tuple[int, ...]]
    #: more names of layers, alias → a name of ``names``: a framework's containers,
    #: each naming the layer that computes its output (``from_torch``: ``"layer2"``)
    aliases: Dict[str, str] = {}

    def inputs_of(self, i: int) -> Tuple[int, ...]:
        raise NotImplementedError

    def __len__(self):
        return len(self.layers)

    def __call__(self, x):
        return self.trace(x).outputs[-1]

    # ------------------------------------------------------------ addressing layers

    def index(self, layer: int | str) -> int:
        """The index in [0, n) of ``layer``: an int in [-n, n) (negative counts from the
        end, so −1 is the network's output) or a name from ``names``.  The one check of a
        layer: a TypeError for anything else (a bool, a float), a ValueError for an index
        out of range or an unknown name, each saying what is accepted
        (``accepted_layers``)."""
        n = len(self.layers)
        if isinstance(layer, str):
            positions = self._positions
            if layer in positions:
                return positions[layer]
            if layer in self.aliases:
                return positions[self.aliases[layer]]
            near = difflib.get_close_matches(layer, [*self.names, *self.aliases], n=3)
            hint = f" (the nearest: {', '.join(map(repr, near))})" if near else ""
            raise ValueError(f"no layer named {layer!r}{hint}; layer must be "
                             f"{self.accepted_layers()}")
        if not checks.is_int(layer):
            raise TypeError(f"layer must be {self.accepted_layers()}, got {layer!r}")
        if not -n <= layer < n:
            raise ValueError(f"layer must be {self.accepted_layers()}, got {layer}")
        return int(layer) % n

    def output_layer(self) -> int:
        """The index of "the last layer", where a method takes its default: the output,
        or the layer before a closing ``Softmax`` — a classifier's logits.  (A softmax's
        Jacobian diag(p) − p pᵀ mixes every class into each probability, and flattens a
        confident one: p (1 − p) ≈ 0, so its units are not what the methods project.)
        An index −1 still names the very last layer, the Softmax included."""
        last = len(self.layers) - 1
        if last > 0 and self.layers[last].maps_logits_to_probabilities:
            return last - 1
        return last

    def accepted_layers(self) -> str:
        """What ``index`` accepts, in words: "an index in [-10, 10) (the network has 10
        layers; negative counts from the end) or a name of net.names ('0', '1', …)"."""
        n = len(self.layers)
        shown = ", ".join(repr(name) for name in self.names[:8])
        more = f", … {n} in all" if n > 8 else ""
        also = " or net.aliases" if self.aliases else ""
        return (f"an index in [-{n}, {n}) (the network has {n} layers; negative counts from "
                f"the end) or a name of net.names ({shown}{more}){also}")

    @property
    def _positions(self):
        return {name: i for i, name in enumerate(self.names)}

    def describe(self, i: int) -> str:
        """``"layer 3 'features.3' (ReLU)"``: the index, the name and the type."""
        return f"layer {i} {self.names[i]!r} ({type(self.layers[i]).__name__})"

    # ------------------------------------------------------------ what follows from the wiring

    def layer_shapes(self, input_shape=None) -> List[Tuple[int, ...]]:
        """The output shape (without N) of every layer for ``input_shape`` (C, H, W)."""
        shape = self.input_shape if input_shape is None else tuple(input_shape)
        if shape is None:
            raise ValueError("input_shape is unknown: pass it")
        result = []
        for i, layer in enumerate(self.layers):
            arriving = [shape if j == NETWORK_INPUT else result[j] for j in self.inputs_of(i)]
            try:
                result.append(tuple(layer.output_shape(*arriving)))
            except ValueError as err:
                raise ValueError(f"{self.describe(i)} does not fit: {err}") from None
        return result

    def receptive_field(self, layer) -> Optional[shapes.ReceptiveField]:
        """Receptive field of a unit at the output of ``layers[layer]``, or ``None`` when a
        layer that mixes all positions (Flatten, Linear, an adaptive pool) comes first:
        then every unit sees the whole image.  Where branches join, the field is the
        smallest window holding every branch's (``shapes.union_of_receptive_fields``)."""
        last = self.index(layer)
        fields = []
        for i in range(last + 1):
            arriving = [shapes.PIXEL if j == NETWORK_INPUT else fields[j]
                        for j in self.inputs_of(i)]
            layer_i = self.layers[i]
            if layer_i.mixes_positions or any(f is None for f in arriving):
                fields.append(None)
                continue
            joined = arriving[0] if len(arriving) == 1 else \
                shapes.union_of_receptive_fields(arriving)
            step = layer_i.geometry()
            fields.append(joined if step is None else shapes.receptive_field_step(joined,
                                                                                   *step))
        return fields[last]

    def dtype(self):
        """The dtype of the weights (float32 when the network has none)."""
        return next((a.dtype for layer in self.layers for a in layer.params().values()),
                    np.dtype(np.float32))

    def input_channels(self) -> Optional[int]:
        """The channels C of the images (N, C, H, W) the network takes: from
        ``input_shape``, else from the first layer reading the input that fixes them (a
        convolution or a batch norm); None when nothing says."""
        if self.input_shape is not None:
            return int(self.input_shape[0])
        for i, layer in enumerate(self.layers):
            if NETWORK_INPUT in self.inputs_of(i) and layer.input_channels() is not None:
                return layer.input_channels()
        return None

    def check_input(self, x) -> None:
        """Refuse, before any layer runs, images the network cannot take — saying what it
        takes and how to convert: another float dtype than the weights', or another
        channel count than the first layer's (channels-last (N, H, W, C) images, say)."""
        dtype = getattr(x, "dtype", None)
        if dtype is None or getattr(x, "ndim", 0) != 4:
            return          # the operators check anything else
        weights = self.dtype()
        if np.dtype(dtype).kind == "f" and np.dtype(dtype) != weights and \
                any(layer.params() for layer in self.layers):
            raise TypeError(f"the network's weights are {weights}, the images {dtype}: give "
                            f"{weights} images (x.astype(np.{weights})) or convert the "
                            f"network (net.astype(np.{np.dtype(dtype)}))")
        channels = self.input_channels()
        if channels is not None and x.shape[1] != channels:
            hint = ("; these look channels-last (N, H, W, C): x.transpose(0, 3, 1, 2)"
                    if x.shape[3] == channels else "")
            shape = str(tuple(self.input_shape)) if self.input_shape is not None else \
                f"({channels}, H, W)"
            raise ValueError(f"the network takes images (N, C, H, W) with (C, H, W) = "
                             f"{shape} ({self.describe(self._first_reader())} reads "
                             f"{channels} channels), got x of shape {tuple(x.shape)}{hint}")

    def _first_reader(self) -> int:
        return next(i for i in range(len(self.layers)) if NETWORK_INPUT in self.inputs_of(i))

    def forward_outputs(self, x, layers) -> Dict[int, np.ndarray]:
        """The outputs of ``layers`` (indices or names) for the images x, in one forward
        pass up to the deepest of them that keeps nothing else: no record (switches, ReLU
        inputs) is kept, and each layer's output is dropped once the last layer reading it
        has run.  ``trace(x).outputs[i]`` for every i of ``layers``, in the memory of a
        few layers' outputs rather than of all of them (Figure 2's ranking pass).

        Returns ``{i: output}`` with i in [0, n)."""
        wanted = sorted({self.index(layer) for layer in layers})
        if not wanted:
            raise ValueError("layers must name at least one layer")
        self.check_input(x)
        last = wanted[-1]
        last_reader = {}            # value -> the last layer (up to ``last``) that reads it
        for i in range(last + 1):
            for j in self.inputs_of(i):
                last_reader[j] = i
        live, kept = {NETWORK_INPUT: x}, {}
        for i in range(last + 1):
            # [0]: the record (a ReLU's input, the switches) is not kept, not even a step
            y = self.layers[i].forward(*[live[j] for j in self.inputs_of(i)])[0]
            for j in set(self.inputs_of(i)):
                if last_reader[j] == i:     # nothing later reads it: let it go
                    del live[j]
            if i in last_reader:
                live[i] = y
            if i in wanted:
                kept[i] = y
        return kept

    def rows_of_trace(self, trace: Trace, rows) -> Trace:
        """The trace of the images ``trace.input[rows]`` (rows may repeat), made from
        ``trace`` without running a layer: each output's and each record's rows
        (``Layer.record_rows``), taken when ``backward`` reads them.  Several seeds on one
        image then go down together, each in its own row, while the image was traced once
        (Figure 2's projections: one image is often among the top k of many features)."""
        rows = np.asarray(rows, dtype=np.intp)
        if rows.ndim != 1 or (len(rows) and not 0 <= rows.min() <= rows.max() <
                                len(trace.input)):
            raise ValueError(f"rows must be a 1-d array of indices in [0, "
                             f"{len(trace.input)}), got {rows!r}")
        return Trace(input=trace.input[rows],
                     outputs=_RowsOf(trace.outputs, lambda i, y: y[rows]),
                     records=_RowsOf(trace.records,
                                     lambda i, r: self.layers[i].record_rows(r, rows)))

    # ------------------------------------------------------------ copies and files

    def with_layers(self, layers) -> "Network":
        """The same network (wiring, names, input shape) with ``layers`` in place of its
        own — e.g. some weights redrawn (``minideconv.visualize.sanity``)."""
        raise NotImplementedError

    def astype(self, dtype) -> "Network":
        """A copy with every weight cast to ``dtype`` (e.g. float64 for exact checks)."""
        return self.with_layers([layer.astype(dtype) for layer in self.layers])

    def save(self, path) -> None:
        """Write ``path``: an .npz of plain arrays, read back by ``minideconv.nn.load``.

        The architecture is one JSON string, ``architecture``: the format, the input shape
        and, per layer, its type, hyper-parameters and the names of its weight arrays
        (``layer_spec``).  The weights are ``layers.<i>.<name>`` (e.g. ``layers.0.weight``),
        i the layer's index in forward order."""
        architecture = {
            "format": self.FILE_FORMAT,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [self.layer_spec(i) for i in range(len(self.layers))],
        }
        if self.aliases:
            architecture["aliases"] = dict(self.aliases)
        architecture.update(self.file_extras())
        arrays = {f"layers.{i}.{name}": value for i, layer in enumerate(self.layers)
                  for name, value in layer.params().items()}
        np.savez(path, architecture=np.array(json.dumps(architecture)), **arrays)

    def layer_spec(self, i) -> dict:
        """What a file says of layer ``i``: its type, hyper-parameters, weight names."""
        layer = self.layers[i]
        return {"type": type(layer).__name__, "config": layer.config(),
                "params": sorted(layer.params())}

    def file_extras(self) -> dict:
        """Entries of the architecture beyond the layers (a Sequential's given names)."""
        return {}


def check_stop(net, start: int, stop) -> int:
    """Where a way back from layer ``start`` ends: ``NETWORK_INPUT`` for ``stop=None`` (the
    network's input), else the index of layer ``stop``, which must come before ``start``."""
    if stop is None:
        return NETWORK_INPUT
    last = net.index(stop)
    if last >= start:
        raise ValueError(f"stop must be a layer below start ({net.describe(start)}), got "
                         f"{net.describe(last)}")
    return last


def check_aliases(aliases, names) -> Dict[str, str]:
    """``aliases`` (None, or a mapping alias → a name of ``names``) as a dict, else a clear
    error: every alias a non-empty string that is no layer's name, every target a name."""
    if aliases is None:
        return {}
    if not isinstance(aliases, dict):
        raise TypeError(f"aliases must be a dict (alias → layer name), got "
                        f"{type(aliases).__name__}")
    known = set(names)
    for alias, target in aliases.items():
        if not isinstance(alias, str) or not alias:
            raise TypeError(f"every alias must be a non-empty str, got {alias!r}")
        if alias in known:
            raise ValueError(f"alias {alias!r} is already a layer's name")
        if target not in known:
            raise ValueError(f"alias {alias!r} names {target!r}, which is no layer's name")
    return dict(aliases)


def check_names(names, count):
    """``names`` as a list of ``count`` unique non-empty strings, else a clear error."""
    names = list(names)
    if len(names) != count:
        raise ValueError(f"names must give one name per layer ({count}), got {len(names)}")
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"every name must be a non-empty str, got {name!r}")
    if len(set(names)) != len(names):
        doubles = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"names must be unique, these repeat: {doubles}")
    return names
