"""The torch layers that enlarge an image ↔ ``nn.ConvTranspose2d``, ``nn.Upsample`` and
``nn.Pad``: modules both ways (``layer_from_module``, ``module_from_layer``) and the
functions fx records (``node_layer``: ``F.interpolate``, ``F.upsample``,
``F.upsample_nearest``, ``F.upsample_bilinear``, ``F.pad``, ``F.conv_transpose2d`` with
the module's own weight).  Each returns None for what is not one of these, so that
``layers`` and ``fx_nodes`` ask here with one line.

Upsampling modes other than nearest, nearest-exact and bilinear (bicubic, area, …),
``antialias=True``, a size computed in ``forward``, and padding of other axes than H and
W are refused with a ValueError that names the module or node.  PyTorch is imported only
when a function here runs.
"""

from __future__ import annotations

import inspect

from ... import nn
from ...geometry import INTERPOLATION_MODES
from .tensors import as_pair, copy_weight, import_torch, to_numpy


def _upsample(size, scale_factor, mode, align_corners, recompute_scale_factor, where):
    """An ``nn.Upsample`` from torch's arguments, or a ValueError starting with ``where``."""
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"{where}: mode={mode!r} is not supported (minideconv upsamples "
                         f"with {INTERPOLATION_MODES})")
    try:
        return nn.Upsample(as_pair(size), as_pair(scale_factor), mode,
                           align_corners if mode == "bilinear" else None,
                           recompute_scale_factor)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def _pad(padding, mode, value, where):
    """An ``nn.Pad`` from F.pad's arguments (``padding`` (left, right[, top, bottom]))."""
    sides = list(padding) if isinstance(padding, (tuple, list)) else padding
    if isinstance(sides, list) and len(sides) == 2:
        sides += [0, 0]                        # F.pad's pairs start at the last axis
    if isinstance(sides, list) and len(sides) > 4 and any(sides[4:]):
        raise ValueError(f"{where}: pad={tuple(padding)} pads the channels or the batch; "
                         f"minideconv pads H and W only")
    try:
        return nn.Pad(tuple(sides[:4]) if isinstance(sides, list) else sides,
                      mode, 0.0 if value is None else value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def _pad_modules(tnn):
    """torch's 2-D padding modules → the mode of ``nn.Pad`` (CircularPad2d where the
    version has it)."""
    modes = {tnn.ConstantPad2d: "constant", tnn.ReflectionPad2d: "reflect",
             tnn.ReplicationPad2d: "replicate"}
    if hasattr(tnn, "CircularPad2d"):
        modes[tnn.CircularPad2d] = "circular"
    return modes


def layer_from_module(module, where):
    """``nn.ConvTranspose2d``, ``nn.Upsample`` (and its subclasses
    ``UpsamplingNearest2d``, ``UpsamplingBilinear2d``) or a 2-D padding module
    (``ZeroPad2d``, ``ConstantPad2d``, ``ReflectionPad2d``, ``ReplicationPad2d``,
    ``CircularPad2d``) → the minideconv layer; None for any other module."""
    tnn = import_torch().nn
    for kind, mode in _pad_modules(tnn).items():
        if isinstance(module, kind):
            return _pad(module.padding, mode, getattr(module, "value", 0.0), where)
    if isinstance(module, tnn.ConvTranspose2d):
        if module.padding_mode != "zeros":
            raise ValueError(f"{where}: padding_mode={module.padding_mode!r} is not "
                             f"supported (a transposed convolution pads with zeros)")
        bias = None if module.bias is None else to_numpy(module.bias)
        return nn.ConvTranspose2d(to_numpy(module.weight), bias, stride=tuple(module.stride),
                                  padding=tuple(module.padding),
                                  output_padding=tuple(module.output_padding),
                                  groups=module.groups, dilation=tuple(module.dilation))
    if isinstance(module, tnn.Upsample):
        return _upsample(module.size, module.scale_factor, module.mode,
                         module.align_corners,
                         getattr(module, "recompute_scale_factor", None), where)
    return None


def module_from_layer(layer, dtype):
    """A fresh torch module for an ``nn.ConvTranspose2d``, ``nn.Upsample`` or ``nn.Pad``
    layer (weights copied); None for any other layer."""
    torch = import_torch()
    if isinstance(layer, nn.Pad):
        kind = next(k for k, m in _pad_modules(torch.nn).items() if m == layer.mode)
        return kind(layer.padding, layer.value) if layer.mode == "constant" else \
            kind(layer.padding)
    if isinstance(layer, nn.Upsample):
        return torch.nn.Upsample(layer.size, layer.scale_factor, layer.mode,
                                 layer.align_corners, layer.recompute_scale_factor)
    if not isinstance(layer, nn.ConvTranspose2d):
        return None
    c_in, c_out_per_group, kh, kw = layer.weight.shape
    module = torch.nn.ConvTranspose2d(c_in, c_out_per_group * layer.groups, (kh, kw),
                                      stride=layer.stride, padding=layer.padding,
                                      output_padding=layer.output_padding,
                                      groups=layer.groups, bias=layer.bias is not None,
                                      dilation=layer.dilation, dtype=dtype)
    copy_weight(module.weight, layer.weight)
    if layer.bias is not None:
        copy_weight(module.bias, layer.bias)
    return module


def _arguments(function, node, where):
    """The call's arguments by parameter name, defaults filled in (fx keeps a call as
    it was written)."""
    try:
        bound = inspect.signature(function).bind(*node.args, **node.kwargs)
    except TypeError as err:
        raise ValueError(f"{where}: {err}") from None
    bound.apply_defaults()
    return bound.arguments


#: the parameters of ``F.conv_transpose2d`` (a builtin: no signature to read) and defaults
CONV_TRANSPOSE_PARAMETERS = ("input", "weight", "bias", "stride", "padding", "output_padding",
                             "groups", "dilation")
CONV_TRANSPOSE_DEFAULTS = dict(bias=None, stride=1, padding=0, output_padding=0, groups=1,
                               dilation=1)


def _parameter(value, modules, where, what):
    """The array of a ``get_attr`` node (a parameter of the traced module), or None."""
    torch = import_torch()
    if value is None:
        return None
    if not isinstance(value, torch.fx.Node) or value.op != "get_attr":
        raise ValueError(f"{where}: its {what} must be a parameter of the module "
                         f"(self.<name>), not computed in forward")
    owner, _, name = value.target.rpartition(".")
    return to_numpy(getattr(modules[owner], name))


def _conv_transpose(node, modules, where):
    """``F.conv_transpose2d(x, self.weight, self.bias, …)`` → ``nn.ConvTranspose2d``."""
    a = dict(CONV_TRANSPOSE_DEFAULTS, **dict(zip(CONV_TRANSPOSE_PARAMETERS, node.args)))
    for key, value in node.kwargs.items():
        if key not in CONV_TRANSPOSE_PARAMETERS:
            raise ValueError(f"{where}: argument {key}={value!r} is not supported")
        a[key] = value
    try:
        layer = nn.ConvTranspose2d(_parameter(a["weight"], modules, where, "weight"),
                                   _parameter(a["bias"], modules, where, "bias"),
                                   as_pair(a["stride"]), as_pair(a["padding"]),
                                   as_pair(a["output_padding"]), a["groups"],
                                   as_pair(a["dilation"]))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None
    return layer, (a["input"],), False


def node_layer(node, modules, where):
    """``(layer, inputs, in_place)`` for an fx ``call_function`` node of ``F.interpolate``,
    ``F.upsample``, ``F.upsample_nearest``, ``F.upsample_bilinear``, ``F.pad`` or
    ``F.conv_transpose2d`` (its weight and bias parameters of the module, found in
    ``modules``, the traced module's by qualified name); None for any other node."""
    torch = import_torch()
    F = torch.nn.functional
    functions = (F.interpolate, F.upsample, F.upsample_nearest, F.upsample_bilinear)
    if node.op == "call_function" and node.target in (F.conv_transpose2d,
                                                       torch.conv_transpose2d):
        return _conv_transpose(node, modules, where)
    if node.op != "call_function" or node.target not in functions + (F.pad,):
        return None
    a = _arguments(node.target, node, where)
    if not isinstance(a["input"], torch.fx.Node):
        raise ValueError(f"{where}: its input {a['input']!r} is a constant, not a tensor")
    if node.target is F.pad:
        return _pad(a["pad"], a["mode"], a["value"], where), (a["input"],), False
    for name in ("size", "scale_factor"):
        values = a[name] if isinstance(a[name], (tuple, list)) else [a[name]]
        if any(isinstance(v, torch.fx.Node) for v in values):
            raise ValueError(f"{where}: {name} must be a constant, not computed in forward "
                             f"(give the size as numbers, or use nn.Upsample)")
    if a.get("antialias"):
        raise ValueError(f"{where}: antialias=True is not supported (it low-pass filters "
                         f"first when shrinking)")
    mode = {F.upsample_nearest: "nearest", F.upsample_bilinear: "bilinear"}.get(
        node.target, a.get("mode"))
    align_corners = True if node.target is F.upsample_bilinear else a.get("align_corners")
    layer = _upsample(a["size"], a["scale_factor"], mode, align_corners,
                      a.get("recompute_scale_factor"), where)
    return layer, (a["input"],), False
