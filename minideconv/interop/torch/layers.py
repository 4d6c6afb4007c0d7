"""One torch layer ↔ one minideconv layer, weights copied: the translation table under
``from_torch`` and ``to_torch``.

``layer_from_module`` reads a module of ``torch.nn`` (``Conv2d``, ``BatchNorm2d``, …) as
the minideconv layer that computes the same at inference; ``module_from_layer`` writes
a minideconv layer as a fresh torch module.  ``named_leaves`` lists the layers of a
(nested) ``nn.Sequential``, the route that needs no tracing.  The operations that are
not modules (``torch.relu``, ``+``, ``torch.cat``, ``x.view``) are read by
``fx_nodes``; ``SUPPORTED`` lists both, for error messages.

PyTorch is imported only when a function here runs (``import_torch``).
"""

from __future__ import annotations

from typing import List

import numpy as np

from ... import nn
from ...geometry import PADDING_MODES
from .activations import (SUPPORTED_ACTIVATIONS, activation_from_module,
                          module_from_activation)
from .tensors import as_pair, copy_weight, import_torch, to_numpy  # noqa: F401 (re-exported)

#: what ``from_torch`` converts — modules (here) and fx operations (``fx_nodes``)
SUPPORTED = ("Conv2d, Linear, ReLU (module, torch.relu, F.relu, Tensor.relu, in place or "
             "not), MaxPool2d and F.max_pool2d, AvgPool2d and F.avg_pool2d, "
             "AdaptiveAvgPool2d and F.adaptive_avg_pool2d, AdaptiveMaxPool2d and "
             "F.adaptive_max_pool2d, BatchNorm2d (running "
             "statistics), Dropout (module, F.dropout in eval), Identity, Flatten "
             "(module, torch.flatten(x, 1), x.flatten(1), x.view(x.size(0), -1), "
             "x.reshape(x.size(0), -1)), + (operator.add, torch.add, +=, Tensor.add), "
             "torch.cat(..., dim=1), Softmax (module, F.softmax, torch.softmax, "
             "Tensor.softmax, dim=1), LocalResponseNorm (module, F.local_response_norm), "
             "ChannelShuffle (module, F.channel_shuffle, and view → transpose → view), "
             "* of two tensors (a (N, C, 1, 1) gate broadcast), * and + by a per-channel "
             "constant (a model tensor or a number), GroupNorm (module, F.group_norm), "
             "InstanceNorm2d (no running statistics), permute(0, 2, 3, 1) … "
             "permute(0, 3, 1, 2) around LayerNorm, Linear and element-wise operations, "
             "ConvTranspose2d and F.conv_transpose2d, Upsample / UpsamplingNearest2d / "
             "UpsamplingBilinear2d and F.interpolate / F.upsample (modes nearest, "
             "nearest-exact, bilinear), ZeroPad2d, ConstantPad2d, ReflectionPad2d, "
             "ReplicationPad2d, CircularPad2d and F.pad (on H and W); "
             + SUPPORTED_ACTIVATIONS + " and their functions "
             "(F.relu6, F.hardtanh, F.leaky_relu, F.prelu, F.silu, F.gelu, F.elu, "
             "torch.sigmoid, torch.tanh, F.hardswish, F.hardsigmoid, torch.clamp(x, 0, m) "
             "and Tensor.clamp/clip, in place or not)")


def named_leaves(module) -> List:
    """(qualified name, module) of the leaves of nested ``nn.Sequential`` containers, in
    the order they run (``"0.1"`` when they nest); a module that is not a Sequential is
    its own leaf.  A module placed twice (one ``nn.ReLU()`` object used after every
    convolution) is listed at each place: torch's ``named_children`` would list it once."""
    torch = import_torch()
    if not isinstance(module, torch.nn.Sequential):
        return [("", module)]
    containers, leaves = {""}, []
    for name, child in module.named_modules(remove_duplicate=False):
        if name == "" or name.rpartition(".")[0] not in containers:
            continue            # the root, or inside a leaf that is not a Sequential
        if isinstance(child, torch.nn.Sequential):
            containers.add(name)
        else:
            leaves.append((name, child))
    return leaves


def reused_leaves(module) -> List[str]:
    """The names of the leaves of ``named_leaves(module)`` whose module object is placed
    more than once (each place after the first names it again)."""
    seen, reused = {}, []
    for name, leaf in named_leaves(module):
        if id(leaf) in seen:
            reused.append(f"{name!r} (= {seen[id(leaf)]!r})")
        else:
            seen[id(leaf)] = name
    return reused


def leaf_modules(module) -> List:
    """The leaf modules of nested ``nn.Sequential`` containers, in order."""
    return [leaf for _, leaf in named_leaves(module)]


# --------------------------------------------------------------------------- from torch

def layer_from_module(module, where: str):
    """One torch module → one minideconv layer, or a ValueError that starts with
    ``where`` (e.g. ``"layer 1 (BatchNorm2d)"`` or ``"node 'bn' (call_module ...)"``)."""
    torch = import_torch()
    tnn = torch.nn
    if isinstance(module, tnn.Conv2d):
        if module.padding_mode not in PADDING_MODES:
            raise ValueError(f"{where}: padding_mode={module.padding_mode!r} is not "
                             f"supported (minideconv has {PADDING_MODES})")
        padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
        bias = None if module.bias is None else to_numpy(module.bias)
        return nn.Conv2d(to_numpy(module.weight), bias, stride=tuple(module.stride),
                         padding=padding, dilation=tuple(module.dilation),
                         groups=module.groups, padding_mode=module.padding_mode)
    if isinstance(module, tnn.ReLU):
        return nn.ReLU()
    if isinstance(module, tnn.MaxPool2d):
        if module.return_indices:
            raise ValueError(f"{where}: return_indices=True is not supported")
        return nn.MaxPool2d(as_pair(module.kernel_size), as_pair(module.stride),
                            as_pair(module.padding), as_pair(module.dilation),
                            bool(module.ceil_mode))
    if isinstance(module, tnn.AvgPool2d):
        return nn.AvgPool2d(as_pair(module.kernel_size), as_pair(module.stride),
                            as_pair(module.padding), bool(module.ceil_mode),
                            bool(module.count_include_pad), module.divisor_override)
    if isinstance(module, tnn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool2d(as_pair(module.output_size))
    if isinstance(module, tnn.AdaptiveMaxPool2d):
        if module.return_indices:
            raise ValueError(f"{where}: return_indices=True is not supported")
        return nn.AdaptiveMaxPool2d(as_pair(module.output_size))
    if isinstance(module, tnn.BatchNorm2d):
        if module.running_mean is None or module.running_var is None:
            raise ValueError(f"{where}: track_running_stats=False normalises with each "
                             f"batch's own statistics; minideconv needs running statistics")
        affine = module.weight is not None
        return nn.BatchNorm2d(to_numpy(module.weight) if affine else None,
                              to_numpy(module.bias) if module.bias is not None else None,
                              to_numpy(module.running_mean), to_numpy(module.running_var),
                              eps=float(module.eps))
    if isinstance(module, tnn.Flatten):
        if (module.start_dim, module.end_dim) != (1, -1):
            raise ValueError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported, "
                             f"got start_dim={module.start_dim}, end_dim={module.end_dim}")
        return nn.Flatten()
    if isinstance(module, tnn.Linear):
        bias = None if module.bias is None else to_numpy(module.bias)
        return nn.Linear(to_numpy(module.weight), bias)
    if isinstance(module, tnn.modules.dropout._DropoutNd):
        return nn.Dropout(module.p)        # the identity at inference (eval mode)
    if isinstance(module, tnn.Identity):
        return nn.Identity()
    from .channel_nodes import layer_from_module as channel_layer
    layer = channel_layer(module, where)
    if layer is not None:                # Softmax, LocalResponseNorm, ChannelShuffle
        return layer
    activation = activation_from_module(module, where, torch)
    if activation is not None:
        return activation
    if isinstance(module, tnn.InstanceNorm2d):
        if module.track_running_stats:
            raise ValueError(f"{where}: track_running_stats=True normalises with running "
                             f"statistics at inference; minideconv reads InstanceNorm2d "
                             f"with each image's own (track_running_stats=False)")
        return nn.GroupNorm(module.num_features, to_numpy(module.weight) if module.affine
                            else None, to_numpy(module.bias) if module.affine else None,
                            eps=float(module.eps))
    if isinstance(module, tnn.GroupNorm):
        affine = module.weight is not None
        return nn.GroupNorm(module.num_groups, to_numpy(module.weight) if affine else None,
                            to_numpy(module.bias) if module.bias is not None else None,
                            eps=float(module.eps))
    from .own_modules import layer_for      # to_torch's own modules, read back
    if layer_for(module) is not None:
        return layer_for(module)
    from . import resampling    # the layers that enlarge: ConvTranspose2d, Upsample, Pad
    layer = resampling.layer_from_module(module, where)
    if layer is not None:
        return layer
    from .join_modules import ChannelConcat, Sum
    if isinstance(module, Sum):
        return nn.Add()
    if isinstance(module, ChannelConcat):
        return nn.Concat(1)
    raise ValueError(f"{where} is not supported; minideconv converts {SUPPORTED}")


# --------------------------------------------------------------------------- to torch

def module_from_layer(layer, dtype):
    """One minideconv layer (with one input) → a fresh torch module, weights copied."""
    torch = import_torch()
    tnn = torch.nn

    activation = module_from_activation(layer, dtype, torch)
    if activation is not None:
        return activation
    if isinstance(layer, nn.Conv2d):
        if not isinstance(layer.padding, str) and len(layer.padding) == 4:
            raise ValueError(f"no torch Conv2d pads {layer.padding} (top, bottom, left, "
                             f"right): torch's pads both sides of an axis alike")
        c_out, c_in_g, kh, kw = layer.weight.shape
        module = tnn.Conv2d(c_in_g * layer.groups, c_out, (kh, kw), stride=layer.stride,
                            padding=layer.padding, dilation=layer.dilation,
                            groups=layer.groups, bias=layer.bias is not None,
                            padding_mode=layer.padding_mode, dtype=dtype)
    elif isinstance(layer, nn.Linear):
        out_features, in_features = layer.weight.shape
        module = tnn.Linear(in_features, out_features, bias=layer.bias is not None,
                            dtype=dtype)
    elif isinstance(layer, nn.BatchNorm2d):
        module = tnn.BatchNorm2d(layer.channels, eps=layer.eps,
                                 affine=layer.weight is not None or layer.bias is not None,
                                 dtype=dtype)
        copy_weight(module.running_mean, layer.running_mean)
        copy_weight(module.running_var, layer.running_var)
        if module.affine:      # γ = 1, β = 0 stand in for a missing one
            copy_weight(module.weight, layer.weight if layer.weight is not None
                 else np.ones(layer.channels))
            copy_weight(module.bias, layer.bias if layer.bias is not None
                 else np.zeros(layer.channels))
        return module.eval()
    elif isinstance(layer, nn.ReLU):
        return tnn.ReLU(inplace=False)  # a fresh module per call site: Captum hooks it
    elif isinstance(layer, nn.MaxPool2d):
        return tnn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                             ceil_mode=layer.ceil_mode)
    elif isinstance(layer, nn.AvgPool2d):
        return tnn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding,
                             ceil_mode=layer.ceil_mode,
                             count_include_pad=layer.count_include_pad,
                             divisor_override=layer.divisor_override)
    elif isinstance(layer, nn.AdaptiveAvgPool2d):
        return tnn.AdaptiveAvgPool2d(layer.output_size)
    elif isinstance(layer, nn.AdaptiveMaxPool2d):
        return tnn.AdaptiveMaxPool2d(layer.output_size)
    elif isinstance(layer, nn.Flatten):
        return tnn.Flatten()
    elif isinstance(layer, nn.Dropout):
        return tnn.Dropout(layer.p).eval()
    elif isinstance(layer, nn.Identity):
        return tnn.Identity()
    else:
        from . import resampling
        from .channel_nodes import module_from_layer as channel_module
        from .own_modules import module_for    # Mul, ChannelAffine, the norms
        module = channel_module(layer)
        if module is None:
            module = module_for(layer, dtype)
        if module is None:
            module = resampling.module_from_layer(layer, dtype)
        if module is None:
            raise ValueError(f"no torch module for {type(layer).__name__}")
        return module.eval()
    copy_weight(module.weight, layer.weight)
    if layer.bias is not None:
        copy_weight(module.bias, layer.bias)
    return module

