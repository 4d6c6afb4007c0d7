"""PyTorch → minideconv and back: ``from_torch`` and ``to_torch``.

``from_torch`` reads a (nested) ``nn.Sequential`` of torch layers as an ``nn.Sequential``
and any other module that ``torch.fx.symbolic_trace`` can trace — torchvision's AlexNet,
VGG, ResNet — as an ``nn.Graph`` whose nodes are named after the modules
(``"layer1.0.conv1"``); ``fx`` has the rules, ``layers`` the one-to-one translation of
each torch layer.  ``to_torch`` builds the torch module of a minideconv network.

PyTorch is imported only when a function runs.
"""

from __future__ import annotations

import warnings
from typing import Optional, Tuple

import numpy as np

from ... import nn
from . import fx
from .layers import (import_torch, layer_from_module, module_from_layer, named_leaves,
                     reused_leaves)


def _has_train_behaviour(module) -> bool:
    """Whether ``module`` computes something else in training mode (BatchNorm, Dropout)."""
    torch = import_torch()
    nn_ = torch.nn
    return isinstance(module, (nn_.BatchNorm1d, nn_.BatchNorm2d, nn_.BatchNorm3d,
                               nn_.SyncBatchNorm, nn_.Dropout, nn_.Dropout1d, nn_.Dropout2d,
                               nn_.Dropout3d, nn_.AlphaDropout, nn_.FeatureAlphaDropout))


def _is_torch_layer(module) -> bool:
    """A module of torch.nn itself (a layer), not a user's module with its own forward."""
    return type(module).__module__.startswith("torch.nn.")


def from_torch(module, input_shape: Optional[Tuple[int, int, int]] = None) -> nn.Network:
    """A minideconv network equivalent to the torch ``module`` at inference (eval mode).

    * A (nested) ``nn.Sequential`` of torch layers becomes an ``nn.Sequential``: nested
      Sequentials are flattened and layer ``i`` of the result is leaf module ``i``
      (named by its qualified name, ``"0.1"``, when they nest; each nested Sequential's
      name is an alias of its last layer, ``Network.aliases``).  A lone torch layer is a
      Sequential of one.
    * Any other module goes through ``torch.fx.symbolic_trace`` and becomes an
      ``nn.Graph``, one node per operation, named after the module that ran it
      (``"layer1.0.conv1"``; ``"layer1.0.relu_1"`` for a second call) or after the fx
      node (``"add"``, ``"cat"``, ``"flatten"``) — the rules are in
      ``minideconv.interop.torch.fx``, with the supported operations (``SUPPORTED``).
      Every container module (``"layer2"``, ``"layer3.1"``, ``"features"``) is an alias
      of the layer that computes the value its call returns: the tensor a forward hook on
      it sees (``Network.aliases``).

    A Sequential that places one module object more than once (one ``nn.ReLU()`` after
    every convolution, or a shared convolution) takes the fx route, which sees each call:
    every place becomes a layer of its own.

    An operation minideconv does not have raises a ValueError naming it and its fx node.
    The weights are copied, in the module's dtype (float32 or float64); ``module`` itself
    is not changed.  A module in training mode is converted at inference — BatchNorm with
    its running statistics, Dropout as the identity — with one warning saying so."""
    torch = import_torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    training = [name or type(module).__name__ for name, m in module.named_modules()
                if m.training and _has_train_behaviour(m)]
    if training:
        warnings.warn(f"{type(module).__name__} is in training mode ({', '.join(training[:3])}"
                      f"{', …' if len(training) > 3 else ''}): from_torch converts its "
                      f"inference behaviour, as after model.eval() (BatchNorm with its "
                      f"running statistics, Dropout the identity)", UserWarning, stacklevel=2)
    leaves = named_leaves(module)
    if (isinstance(module, torch.nn.Sequential) or _is_torch_layer(module)) \
            and not reused_leaves(module):
        if all(_is_torch_layer(leaf) and not isinstance(leaf, torch.nn.Sequential)
               for _, leaf in leaves):
            layers = [layer_from_module(m, f"layer {i} ({type(m).__name__})")
                      for i, (_, m) in enumerate(leaves)]
            names = [name for name, _ in leaves]
            default = [str(i) for i in range(len(layers))]
            given = names != default and bool(names[0])
            return nn.Sequential(*layers, input_shape=input_shape,
                                 names=names if given else None,
                                 aliases=_sequential_containers(names) if given else None)
    return fx.graph_from_fx(module, input_shape).graph


def _sequential_containers(names):
    """The nested Sequentials of a flattened one, by qualified name, each naming its last
    leaf (whose output is the container's): ``"features"`` → ``"features.30"``."""
    containers = {}
    for name in names:             # in forward order: a later leaf wins
        parts = name.split(".")
        for depth in range(1, len(parts)):
            containers[".".join(parts[:depth])] = name
    return {alias: name for alias, name in containers.items() if alias not in names}


def to_torch(net: nn.Network):
    """The equivalent torch module in eval mode, weights copied, with one (non-in-place)
    ``nn.ReLU`` module per ReLU, so that Captum's hooks apply to each.

    A ``Sequential`` becomes an ``nn.Sequential``; a ``Graph`` a ``torch.fx.GraphModule``
    whose modules sit at the paths of the node names (``from_torch`` reads the same names
    back; a name that cannot be a module path — e.g. ``"a-b"`` — is sanitised), with
    the modules ``Sum`` and ``ChannelConcat`` (``join_modules``) for ``Add`` and
    ``Concat``."""
    torch = import_torch()
    if not isinstance(net, nn.Network):
        raise TypeError(f"net must be a minideconv network, got {type(net).__name__}")
    dtype = torch.float64 if net.dtype() == np.dtype(np.float64) else torch.float32
    if isinstance(net, nn.Graph):
        return fx.graph_module(net, dtype)
    return torch.nn.Sequential(*(module_from_layer(layer, dtype)
                                 for layer in net.layers)).eval()
