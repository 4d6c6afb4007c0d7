"""The ONNX operations that enlarge an image: ConvTranspose → ``nn.ConvTranspose2d``,
Resize (opset 11+) and Upsample (opset 7–9) → ``nn.Upsample``, Pad (constant, reflect,
edge, wrap; on H and W) → ``nn.Pad``; and Slice of constants, which PyTorch's
TorchScript exporter writes to cut the (N, C) of a Resize's ``sizes`` out of a ``Shape``
(with a ConstantOfShape, ``folding``'s, to build a Pad's ``pads``).

Resize is read where it is one of PyTorch's modes: ``nearest`` with
``coordinate_transformation_mode="asymmetric"`` and ``nearest_mode="floor"`` (torch's
``"nearest"``) or ``half_pixel`` with ``round_prefer_ceil`` (torch's ``"nearest-exact"``);
``linear`` with ``half_pixel`` / ``pytorch_half_pixel`` (``align_corners=False``) or
``align_corners``.  Its ``scales`` or ``sizes`` must be constants (possibly computed by
the shape operations) that keep N and C.  Any other mode, coordinate mode or option is
refused with ``reader.fail``, naming the node and the attribute.

Each translation is ``f(reader, node, attrs)`` with ``reader`` the
``reader.GraphReader``; ``OPERATIONS`` maps op_type to it.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from .values import BATCH


# ------------------------------------------------------------ transposed convolution

def conv_transpose(reader, node, attrs):
    """ConvTranspose → ConvTranspose2d.  ONNX pads (start s, end e) and ``output_padding``
    a give the length  stride·(L − 1) + a + d·(k − 1) + 1 − s − e;  minideconv's layer
    pads s on both sides and adds a + s − e at the end, which it can where
    0 ≤ a + s − e < max(stride, dilation).  ``output_shape`` (pads then computed, as
    ONNX says) and ``auto_pad`` are resolved to such pads first."""
    x = reader.activation(node, 0, ndim=4)
    weight = reader.constant(node, 1, "weight")
    bias = reader.constant(node, 2, "bias")
    if weight is None or weight.ndim != 4:
        reader.fail(node, "needs a 4-D weight (C_in, C_out/group, kh, kw)")
    kernel = tuple(weight.shape[2:])
    if tuple(attrs.get("kernel_shape", kernel)) != kernel:
        reader.fail(node, f"kernel_shape {attrs['kernel_shape']} does not match the weight "
                          f"{weight.shape}")
    stride = tuple(attrs.get("strides", (1, 1)))
    dilation = tuple(attrs.get("dilations", (1, 1)))
    extra = list(attrs.get("output_padding", (0, 0)))
    starts, ends = _transpose_pads(reader, node, attrs, x.shape, kernel, stride,
                                   dilation, extra)
    padding, output_padding = [], []
    for s, e, a, st, d in zip(starts, ends, extra, stride, dilation):
        if s < 0 or not 0 <= a + s - e < max(st, d):
            reader.fail(node, f"pads (start {s}, end {e}) with output_padding {a}: "
                              f"minideconv's ConvTranspose2d pads both sides alike and adds "
                              f"0 ≤ output_padding < max(stride, dilation) = {max(st, d)} "
                              f"at the end")
        padding.append(s)
        output_padding.append(a + s - e)
    layer = nn.ConvTranspose2d(weight, bias, stride=stride, padding=tuple(padding),
                               output_padding=tuple(output_padding),
                               groups=int(attrs.get("group", 1)), dilation=dilation)
    reader.add_layer(node, layer, [x])


def _transpose_pads(reader, node, attrs, in_chw, kernel, stride, dilation, extra):
    """(starts, ends) of a ConvTranspose: its ``pads`` (top, left, bottom, right), or as
    ONNX computes them from ``output_shape`` or ``auto_pad``."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"):
        reader.fail(node, f"auto_pad {auto!r} is not one of NOTSET, VALID, SAME_UPPER, "
                          f"SAME_LOWER")
    target = attrs.get("output_shape")
    if target is None and auto in ("NOTSET", "", "VALID"):
        pads = list(attrs.get("pads", (0, 0, 0, 0))) if auto in ("NOTSET", "") else [0] * 4
        if len(pads) != 4:
            reader.fail(node, f"pads must have 4 entries for a 2-D input, got {pads}")
        return pads[:2], pads[2:]
    lengths = in_chw[1:]
    target = [int(v) for v in target][-2:] if target is not None else \
        [n * s for n, s in zip(lengths, stride)]
    starts, ends = [], []
    for n, k, s, d, a, t in zip(lengths, kernel, stride, dilation, extra, target):
        total = s * (n - 1) + a + (k - 1) * d + 1 - t
        first, second = total - total // 2, total // 2
        starts.append(second if auto == "SAME_UPPER" else first)
        ends.append(first if auto == "SAME_UPPER" else second)
    return starts, ends


# ------------------------------------------------------------ upsampling

def _nchw_ratio(reader, node, values, what):
    """The (H, W) entries of a Resize's 4-entry ``scales`` / ``sizes``; N and C must stay."""
    values = list(np.ravel(values))
    if len(values) != 4:
        reader.fail(node, f"{what} must have 4 entries (N, C, H, W), got {values}")
    return values[:2], values[2:]


def _resize_arguments(reader, node, x):
    """``dict(size=…)`` or ``dict(scale_factor=…)`` from a Resize's inputs."""
    if len(node.input) < 3:
        reader.fail(node, "has no scales or sizes input (opset 10's Resize, whose "
                          "coordinates differ; export with opset 11 or later)")
    scales = reader.constant(node, 2, "scales")
    sizes = reader.constant(node, 3, "sizes")
    if sizes is not None and np.size(sizes):
        keep, hw = _nchw_ratio(reader, node, sizes, "sizes")
        if keep[1] is not BATCH and int(keep[1]) != x.shape[0]:
            reader.fail(node, f"sizes {list(np.ravel(sizes))} resize the channels")
        return dict(size=tuple(int(v) for v in hw))
    if scales is None or not np.size(scales):
        reader.fail(node, "has neither scales nor sizes")
    keep, hw = _nchw_ratio(reader, node, scales, "scales")
    if any(float(k) != 1.0 for k in keep):
        reader.fail(node, f"scales {list(np.ravel(scales))} resize N or C; minideconv "
                          f"upsamples H and W only")
    return dict(scale_factor=tuple(float(v) for v in hw))


def resize(reader, node, attrs):
    """Resize (opset 11+) → Upsample, in one of PyTorch's modes (see the module)."""
    x = reader.activation(node, 0, ndim=4)
    for name, accepted in (("antialias", 0), ("exclude_outside", 0),
                           ("keep_aspect_ratio_policy", "stretch")):
        if attrs.get(name, accepted) != accepted:
            reader.fail(node, f"{name}={attrs[name]!r} is not supported (only "
                              f"{accepted!r})")
    if attrs.get("axes") is not None:
        reader.fail(node, f"axes={attrs['axes']} is not supported: minideconv reads scales "
                          f"or sizes of all 4 axes (N, C, H, W)")
    mode = attrs.get("mode", "nearest")
    coordinates = attrs.get("coordinate_transformation_mode", "half_pixel")
    rounding = attrs.get("nearest_mode", "round_prefer_floor")
    arguments = _resize_arguments(reader, node, x)
    if mode == "nearest" and (coordinates, rounding) == ("asymmetric", "floor"):
        layer = nn.Upsample(mode="nearest", **arguments)
    elif mode == "nearest" and (coordinates, rounding) == ("half_pixel", "round_prefer_ceil"):
        layer = nn.Upsample(mode="nearest-exact", **arguments)
    elif mode == "nearest":
        reader.fail(node, f"coordinate_transformation_mode={coordinates!r} with "
                          f"nearest_mode={rounding!r}: minideconv reads nearest Resize as "
                          f"torch writes it (asymmetric + floor, or half_pixel + "
                          f"round_prefer_ceil for nearest-exact)")
    elif mode == "linear" and coordinates in ("half_pixel", "pytorch_half_pixel",
                                              "align_corners"):
        if coordinates == "align_corners" and "scale_factor" in arguments:
            lengths = [n * f for n, f in zip(x.shape[1:], arguments["scale_factor"])]
            if any(length != int(length) for length in lengths):
                # ONNX divides by the unrounded length − 1, torch by the output size − 1
                reader.fail(node, f"coordinate_transformation_mode='align_corners' with "
                                  f"scales {arguments['scale_factor']} of an input "
                                  f"{tuple(x.shape[1:])}: ONNX's corners then follow the "
                                  f"unrounded lengths {lengths}, which no torch mode does "
                                  f"(give sizes instead of scales)")
        layer = nn.Upsample(mode="bilinear", align_corners=coordinates == "align_corners",
                            **arguments)
        if coordinates == "pytorch_half_pixel" and 1 in layer.output_shape(x.shape)[1:]:
            reader.fail(node, "coordinate_transformation_mode='pytorch_half_pixel' with an "
                              "output length of 1 reads pixel 0, which no torch mode does")
    else:
        reader.fail(node, f"mode={mode!r} with coordinate_transformation_mode="
                          f"{coordinates!r} is not supported (minideconv reads nearest and "
                          f"linear with half_pixel, pytorch_half_pixel or align_corners)")
    reader.add_layer(node, layer, [x])


def upsample(reader, node, attrs):
    """Upsample (opset 7–9): ``nearest`` → Upsample(scale_factor) (x / scale, floor: torch's
    nearest).  Its ``linear`` mode reads x / scale without half-pixel offsets, which no
    torch mode does, and is refused."""
    x = reader.activation(node, 0, ndim=4)
    mode = attrs.get("mode", "nearest")
    if mode != "nearest":
        reader.fail(node, f"mode={mode!r}: Upsample's linear mode uses asymmetric "
                          f"coordinates (x / scale), which no torch bilinear mode has; export "
                          f"with opset 11 or later (a Resize)")
    scales = attrs.get("scales") if len(node.input) < 2 else \
        reader.constant(node, 1, "scales")
    keep, hw = _nchw_ratio(reader, node, scales, "scales")
    if any(float(k) != 1.0 for k in keep):
        reader.fail(node, f"scales {list(np.ravel(scales))} resize N or C; minideconv "
                          f"upsamples H and W only")
    reader.add_layer(node, nn.Upsample(scale_factor=tuple(float(v) for v in hw)), [x])


def slice_constant(reader, node, attrs):
    """Slice of a constant (a shape, say): evaluated (``starts``, ``ends``, ``axes``,
    ``steps`` as inputs, opset 10+, or as attributes before)."""
    data = reader.constant(node, 0, "data")
    if data is None:
        reader.fail(node, "slices a value that is not a constant")

    def part(i, name, default=None):
        value = reader.constant(node, i, name) if len(node.input) > i else attrs.get(name)
        return default if value is None else [int(v) for v in np.ravel(value)]
    starts, ends = part(1, "starts"), part(2, "ends")
    axes = part(3, "axes", list(range(len(starts))))
    steps = part(4, "steps", [1] * len(starts))
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[axis] = slice(start, end, step)
    reader.set_value(node, data[tuple(index)])


#: ONNX's padding modes → ``nn.Pad``'s
PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
             "wrap": "circular"}


def pad(reader, node, attrs):
    """Pad of H and W → Pad: ``pads`` (an input from opset 11, an attribute before) in
    ONNX's order (N, C, H, W begins, then ends), ``mode`` constant / reflect / edge / wrap,
    a constant value (input 2, or ``value``)."""
    x = reader.activation(node, 0, ndim=4)
    mode = attrs.get("mode", "constant")
    if mode not in PAD_MODES:
        reader.fail(node, f"mode={mode!r} is not one of {tuple(PAD_MODES)}")
    if len(node.input) > 3 and node.input[3]:
        reader.fail(node, "axes is not supported: give the pads of all 4 axes")
    pads = reader.constant(node, 1, "pads") if len(node.input) > 1 else attrs.get("pads")
    pads = [int(v) for v in np.ravel(pads if pads is not None else [])]
    if len(pads) != 8:
        reader.fail(node, f"pads must have 8 entries (N, C, H, W begins and ends), got "
                          f"{pads}")
    if any(pads[i] for i in (0, 1, 4, 5)):
        reader.fail(node, f"pads {pads} pad the batch or the channels; minideconv pads H "
                          f"and W only")
    value = reader.constant(node, 2, "constant_value") if len(node.input) > 2 else \
        attrs.get("value", 0.0)
    value = 0.0 if value is None or not np.size(value) else float(np.ravel(value)[0])
    try:
        layer = nn.Pad((pads[3], pads[7], pads[2], pads[6]), PAD_MODES[mode],
                       value if mode == "constant" else 0.0)
    except ValueError as err:
        reader.fail(node, str(err))
    reader.add_layer(node, layer, [x])


OPERATIONS = {"ConvTranspose": conv_transpose, "Resize": resize, "Upsample": upsample,
              "Pad": pad, "Slice": slice_constant}
