"""Reading networks back from ``.npz`` files of plain arrays (``allow_pickle=False``).

The writer is ``Network.save`` (it needs no layer class); the loader here knows every
layer class, so it sits above them all and nothing in ``nn`` imports it.

The architecture is one JSON string, ``architecture``: the format, the input shape and,
per layer, its type, hyper-parameters, the names of its weight arrays — and for a
``Graph`` its node name and the names it reads; ``aliases`` (alias → layer name), when the
network has any.  The weights are ``layers.<i>.<name>`` (e.g. ``layers.0.weight``), i the
layer's index in forward order.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .activations import ACTIVATIONS
from .channel_maps import ChannelShuffle, LocalResponseNorm, Softmax
from .combine import Add, Concat
from .graph import Graph, Node
from .layers import BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear, ReLU
from .normalization import ChannelLayerNorm, GroupNorm
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from .products import ChannelAffine, Mul
from .resampling import ConvTranspose2d, Pad, Upsample
from .sequential import Sequential

SEQUENTIAL_FORMAT = Sequential.FILE_FORMAT
GRAPH_FORMAT = Graph.FILE_FORMAT
#: the one-input layer types, by the name a file gives them
LAYER_TYPES = {cls.__name__: cls for cls in (Conv2d, ReLU, MaxPool2d, Flatten, Linear,
                                             Identity, Dropout, BatchNorm2d, AvgPool2d,
                                             AdaptiveAvgPool2d, Softmax,
                                             LocalResponseNorm, ChannelShuffle,
                                             ChannelAffine, ChannelLayerNorm,
                                             GroupNorm, ConvTranspose2d, Upsample, Pad,
                                             AdaptiveMaxPool2d) + ACTIVATIONS}
#: every layer type a file may name
FILE_LAYER_TYPES = dict(LAYER_TYPES, Add=Add, Concat=Concat, Mul=Mul)


def load(path):
    """Read a network written by ``save``.  Every array is checked against its layer, and
    the layers against ``input_shape``; errors name the layer."""
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
        kind = architecture["format"]
        assert kind in (SEQUENTIAL_FORMAT, GRAPH_FORMAT)
        specs = list(architecture["layers"])
    except (ValueError, KeyError, AssertionError, TypeError):
        raise ValueError(f"{path!r}: unreadable architecture (expected format "
                         f"{SEQUENTIAL_FORMAT} or {GRAPH_FORMAT})") from None

    layers = []
    for i, spec in enumerate(specs):
        kind_i = spec.get("type")
        if kind_i not in FILE_LAYER_TYPES:
            raise ValueError(f"{path!r}: layer {i} has unknown type {kind_i!r}")
        params = {}
        for name in spec.get("params", []):
            key = f"layers.{i}.{name}"
            if key not in arrays:
                raise ValueError(f"{path!r}: layer {i} ({kind_i}) is missing array {key!r}")
            params[name] = arrays.pop(key)
        try:
            layers.append(FILE_LAYER_TYPES[kind_i].from_config(spec.get("config", {}),
                                                               params))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path!r}: layer {i} ({kind_i}): {err}") from None
    if arrays:
        raise ValueError(f"{path!r}: arrays that belong to no layer: {sorted(arrays)}")
    input_shape = architecture.get("input_shape")
    try:
        if kind == GRAPH_FORMAT:
            return Graph([Node(spec["name"], layer, tuple(spec["inputs"]))
                          for spec, layer in zip(specs, layers)], input_shape,
                         aliases=architecture.get("aliases"))
        return Sequential(*layers, input_shape=input_shape, names=architecture.get("names"),
                          aliases=architecture.get("aliases"))
    except KeyError as err:
        raise ValueError(f"{path!r}: a graph layer lacks its {err} entry") from None
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path!r}: {err}") from None


def save(net, path) -> None:
    """``net.save(path)``: write a ``Sequential`` or a ``Graph`` as an .npz."""
    net.save(path)
