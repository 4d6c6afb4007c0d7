"""The ONNX operations that become a minideconv layer (all but the averages over (H, W),
which are in ``mean_ops``).

Conv → Conv2d, Relu → ReLU, MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool →
MaxPool2d / AvgPool2d / AdaptiveAvgPool2d(1) / AdaptiveMaxPool2d(1), BatchNormalization →
BatchNorm2d, Gemm / MatMul → Linear, Add → Add (or the bias of the Conv / Linear before
it, when it adds a constant; other constants: ``product_ops``), Flatten / Reshape to
(N, −1) → Flatten (a Reshape to 5-D: the channel shuffle of ``structure_ops``), Concat →
Concat (of one input: Identity), Dropout / Identity → Dropout / Identity.  An option
minideconv's layer does not have (a pool padded more at the top / left, a pooling's
indices output, training mode) is refused with ``reader.fail``.

Each translation is ``f(reader, node, attrs)`` with ``reader`` the
``reader.GraphReader``; ``OPERATIONS`` maps op_type to it.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from ...geometry import normalise_padding
from . import layouts, structure_ops
from .values import BATCH, Activation


def identity(reader, node, attrs):
    """Identity: of a constant, that constant; of an activation, an ``nn.Identity``."""
    value = reader.value(node, 0)
    if isinstance(value, np.ndarray):
        return reader.set_value(node, value)
    reader.add_layer(node, nn.Identity(), [reader.activation(node)])


def relu(reader, node, attrs):
    """Relu → ReLU."""
    reader.add_layer(node, nn.ReLU(), [reader.activation(node)])


def dropout(reader, node, attrs):
    """Dropout (inference, its mask unread) → Dropout(ratio)."""
    x = reader.activation(node)
    ratio = reader.constant(node, 1, "ratio")
    training = reader.constant(node, 2, "training_mode")
    if training is not None and bool(training):
        reader.fail(node, "is in training mode; minideconv reads inference graphs")
    reader.only_first_output_used(node)
    p = float(ratio) if ratio is not None else float(attrs.get("ratio", 0.5))
    reader.add_layer(node, nn.Dropout(p), [x])


# ------------------------------------------------------------ padding and pooling options

def _pads(reader, node, attrs, in_hw, kernel, stride, dilation):
    """(top, bottom, left, right) from ``pads`` or ``auto_pad``."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            reader.fail(node, f"pads must have 4 entries for a 2-D input, got {pads}")
        return pads[0], pads[2], pads[1], pads[3]        # ONNX: (top, left, bottom, right)
    if auto == "VALID":
        return 0, 0, 0, 0
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        reader.fail(node, f"auto_pad {auto!r} is not one of NOTSET, VALID, SAME_UPPER, "
                          f"SAME_LOWER")
    pads = []
    for i, k, s, d in zip(in_hw, kernel, stride, dilation):
        out = -(-i // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - i, 0)
        small, large = total // 2, total - total // 2
        pads += [small, large] if auto == "SAME_UPPER" else [large, small]
    return tuple(pads)


def _whole_axis_windows(in_hw, kernel, pads, dilation):
    """(kernel, pads) with an axis whose one window holds the whole input (GoogLeNet's
    7×7 average of a 6×6 map with a pad at the bottom) read as a window of the input's
    length and no pads: the same values, as pads count in neither pool (an average with
    count_include_pad keeps its pads: they are in its divisor)."""
    kernel, pads = list(kernel), list(pads)
    for axis, (size, k, d) in enumerate(zip(in_hw, kernel, dilation)):
        before, after = pads[2 * axis], pads[2 * axis + 1]
        if d == 1 and k - before >= size and size + before + after - k < 1:
            kernel[axis], pads[2 * axis], pads[2 * axis + 1] = size, 0, 0
    return tuple(kernel), tuple(pads)


def _pool_options(reader, node, attrs, x):
    """(kernel, stride, padding, dilation, ceil_mode) of a MaxPool / AveragePool.

    Pads larger at the bottom / right (Caffe's ceil-mode pools as the zoo writes them,
    SAME_UPPER) are read as the smaller pads with ``ceil_mode``, when that gives the same
    output size: the windows then start at the same places and the extra pixels are left
    out of each window alike — ONNX counts no pad in a max, nor in an average without
    count_include_pad."""
    kernel = tuple(attrs["kernel_shape"])
    if len(kernel) != 2:
        reader.fail(node, f"kernel_shape must have 2 entries, got {list(kernel)}")
    stride = tuple(attrs.get("strides", (1, 1)))
    dilation = tuple(attrs.get("dilations", (1, 1)))
    pads = _pads(reader, node, attrs, x.shape[1:], kernel, stride, dilation)
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    if not attrs.get("count_include_pad", 0):
        kernel, pads = _whole_axis_windows(x.shape[1:], kernel, pads, dilation)
    top, bottom, left, right = pads
    if (top, left) == (bottom, right):
        return kernel, stride, (top, left), dilation, ceil_mode
    wanted = [(i + before + after - d * (k - 1) - 1) // s + 1 for i, before, after, k, s, d
              in zip(x.shape[1:], (top, left), (bottom, right), kernel, stride, dilation)]
    try:
        with_ceil = nn.MaxPool2d(kernel, stride, (top, left), dilation, True)
        same_windows = list(with_ceil.output_shape(x.shape)[1:]) == wanted
    except ValueError:                  # no such pooling at all: refused below
        same_windows = False
    if ceil_mode or bottom < top or right < left or attrs.get("count_include_pad", 0) or \
            not same_windows:
        reader.fail(node, f"pads (top, bottom, left, right) = {tuple(pads)} differ "
                          f"between the two sides; minideconv's pooling pads both "
                          f"sides alike, and reads larger pads at the bottom / right "
                          f"only where ceil_mode gives the same windows")
    return kernel, stride, (top, left), dilation, True


# ------------------------------------------------------------ convolution and pooling

def conv(reader, node, attrs):
    """Conv → Conv2d: pads equal on both sides, torch's ``"same"``, or else the four
    pads (top, bottom, left, right) — SAME_UPPER / SAME_LOWER of a strided conv."""
    x = reader.activation(node, 0, ndim=4)
    weight = reader.constant(node, 1, "weight")
    bias = reader.constant(node, 2, "bias")
    if weight is None or weight.ndim != 4:
        reader.fail(node, "needs a 4-D weight (C_out, C_in/group, kh, kw)")
    kernel = tuple(attrs.get("kernel_shape", weight.shape[2:]))
    if kernel != tuple(weight.shape[2:]):
        reader.fail(node, f"kernel_shape {list(kernel)} does not match the weight "
                          f"{weight.shape}")
    stride = tuple(attrs.get("strides", (1, 1)))
    dilation = tuple(attrs.get("dilations", (1, 1)))
    pads = tuple(_pads(reader, node, attrs, x.shape[1:], kernel, stride, dilation))
    if pads[0] == pads[1] and pads[2] == pads[3]:
        padding = (pads[0], pads[2])
    elif stride == (1, 1) and \
            pads == normalise_padding("same", kernel, dilation, stride):
        padding = "same"         # the extra pixel bottom/right, as torch's "same"
    else:
        padding = pads           # each side its own: TensorFlow's "same" with a stride
    layer = nn.Conv2d(weight, bias, stride=stride, padding=padding, dilation=dilation,
                      groups=int(attrs.get("group", 1)))
    reader.add_layer(node, layer, [x])


def max_pool(reader, node, attrs):
    """MaxPool (its Indices output unread) → MaxPool2d."""
    x = reader.activation(node, 0, ndim=4)
    reader.only_first_output_used(node)       # Indices (and storage_order) unused
    kernel, stride, padding, dilation, ceil_mode = _pool_options(reader, node, attrs, x)
    reader.add_layer(node, nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode), [x])


def average_pool(reader, node, attrs):
    """AveragePool (no dilations) → AvgPool2d."""
    x = reader.activation(node, 0, ndim=4)
    kernel, stride, padding, dilation, ceil_mode = _pool_options(reader, node, attrs, x)
    if dilation != (1, 1):
        reader.fail(node, f"dilations {list(dilation)}: minideconv's AvgPool2d has none")
    reader.add_layer(node, nn.AvgPool2d(kernel, stride, padding, ceil_mode,
                                        bool(attrs.get("count_include_pad", 0))), [x])


def global_average_pool(reader, node, attrs):
    """GlobalAveragePool → AdaptiveAvgPool2d(1)."""
    reader.add_layer(node, nn.AdaptiveAvgPool2d(1), [reader.activation(node, 0, ndim=4)])


def global_max_pool(reader, node, attrs):
    """GlobalMaxPool → AdaptiveMaxPool2d(1)."""
    reader.add_layer(node, nn.AdaptiveMaxPool2d(1), [reader.activation(node, 0, ndim=4)])


def batch_normalization(reader, node, attrs):
    """BatchNormalization (inference) → BatchNorm2d."""
    x = reader.activation(node, 0, ndim=4)
    scale, bias, mean, var = (reader.constant(node, i, what) for i, what in
                              enumerate(("scale", "B", "mean", "var"), start=1))
    if attrs.get("training_mode", 0) or attrs.get("spatial", 1) != 1:
        reader.fail(node, "is in training mode (or not spatial); minideconv reads "
                          "inference graphs")
    reader.only_first_output_used(node)
    eps = float(attrs.get("epsilon", 1e-5))
    layer = nn.BatchNorm2d(scale, bias, mean, var, eps=eps)
    reader.add_layer(node, layer, [x])


# ------------------------------------------------------------ fully connected and biases

def gemm(reader, node, attrs):
    """Gemm (transA=0) → Linear: W = α·B (transB=1) or α·Bᵀ, b = β·C (W's columns
    reordered after a channels-last flatten, ``layouts``)."""
    x, chw = layouts.dense_input(reader, node)
    b = reader.constant(node, 1, "B")
    c = reader.constant(node, 2, "C")
    if attrs.get("transA", 0):
        reader.fail(node, "transA=1 would transpose the batch of images")
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    weight = b if attrs.get("transB", 0) else b.T          # (out_features, in_features)
    weight = np.ascontiguousarray(weight if alpha == 1.0 else alpha * weight)
    weight = layouts.check_columns(reader, node, weight, chw)
    bias = None
    if c is not None:
        if c.size != 1 and c.shape not in ((weight.shape[0],), (1, weight.shape[0])):
            reader.fail(node, f"C of shape {c.shape} is not a bias of "
                              f"{weight.shape[0]} outputs")
        bias = np.broadcast_to(c.reshape(-1), (weight.shape[0],))   # a scalar: all
        bias = (bias if beta == 1.0 else beta * bias).astype(weight.dtype)
    reader.add_layer(node, nn.Linear(weight, bias), [x])


def mat_mul(reader, node, attrs):
    """MatMul by a constant 2-D B → Linear (without a bias; an Add after it adds one)."""
    x, chw = layouts.dense_input(reader, node)
    b = reader.constant(node, 1, "B")
    if b is None or b.ndim != 2:
        reader.fail(node, "needs a 2-D constant B (in_features, out_features)")
    weight = layouts.check_columns(reader, node, np.ascontiguousarray(b.T), chw)
    reader.add_layer(node, nn.Linear(weight), [x])


def add(reader, node, attrs):
    """Add: of constants, their sum; of two activations, ``nn.Add``; of an activation and
    a constant, the bias of the Conv2d / Linear that computed the activation."""
    a, b = reader.value(node, 0), reader.value(node, 1)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return reader.set_value(node, a + b)
    if isinstance(a, Activation) and isinstance(b, Activation):
        return reader.add_layer(node, nn.Add(), [a, b])
    x, constant = (a, b) if isinstance(a, Activation) else (b, a)
    if not isinstance(x, Activation) or not isinstance(constant, np.ndarray):
        reader.fail(node, "adds values that are neither activations nor constants")
    _fold_bias(reader, node, x, constant)


def _fold_bias(reader, node, x, constant):
    """activation + constant: the bias of the Conv2d / Linear that computed x."""
    layer = reader.layers.get(x.node)
    producer_tensor = reader.tensor_of.get(x.node)
    if not isinstance(layer, (nn.Conv2d, nn.Linear)) or \
            reader.readers.get(producer_tensor, 0) != 1:
        reader.fail(node, "adds a constant to a value that is not the output of a "
                          "Conv / Gemm / MatMul read by this Add alone (minideconv "
                          "reads such a constant as that layer's bias only)")
    channels = layer.weight.shape[0]
    core = constant.shape
    while core and core[0] == 1:                    # leading ones broadcast away
        core = core[1:]
    per_channel = [(channels,)] if isinstance(layer, nn.Linear) else \
        [(channels, 1, 1), (1, 1)]                  # (C,) would add along W
    if core and core not in per_channel and set(core) != {1}:
        reader.fail(node, f"adds a constant of shape {constant.shape}, which is not a "
                          f"bias (one value per output channel) of {x.node!r}")
    extra = np.broadcast_to(constant.reshape(-1), (channels,))
    extra = extra.astype(layer.weight.dtype)
    bias = extra if layer.bias is None else layer.bias + extra
    new = type(layer).from_config(layer.config(),
                                  {"weight": layer.weight, "bias": bias})
    reader.replace_layer(x, new, node.output[0])    # the biased value is the Add's


# ------------------------------------------------------------ shapes and joins

def flatten(reader, node, attrs):
    """Flatten (axis=1, or the same axis counted from the end: −3 for (N, C, H, W)) →
    Flatten."""
    x, channels_last = layouts.flat_input(reader, node)
    axis = attrs.get("axis", 1)
    rank = len(x.shape) + 1                   # x.shape leaves out N
    if (axis + rank if axis < 0 else axis) != 1:
        reader.fail(node, f"axis={axis}: minideconv flattens to (N, features) only "
                          f"(axis=1, or {1 - rank} for this rank-{rank} input)")
    layouts.add_flatten(reader, node, nn.Flatten(), x, channels_last)


def reshape(reader, node, attrs):
    """Reshape: of a constant, evaluated; of an activation to (N, −1) — a target (n, F)
    with F the number of features, whatever batch size n it names — Flatten."""
    data = reader.value(node, 0)
    shape = reader.constant(node, 1, "shape")
    if isinstance(data, np.ndarray):
        return reader.set_value(node, data.reshape([int(v) for v in shape]))
    if structure_ops.reshape_step(reader, node, data, shape):    # a channel shuffle's
        return
    x, channels_last = layouts.flat_input(reader, node)
    features = int(np.prod(x.shape))
    target = list(np.ravel(shape))
    if len(target) == 2:
        first, second = target
        keeps_batch = first is BATCH or (first is not BATCH and (
            first > 0 or (first == 0 and not attrs.get("allowzero", 0))
            or (first == -1 and second is not BATCH and second == features)))
        if keeps_batch and second is not BATCH and second in (-1, features):
            return layouts.add_flatten(reader, node, nn.Flatten(), x, channels_last)
    shown = x.shape if channels_last is None else x.shape[1:] + x.shape[:1]  # (H, W, C)
    reader.fail(node, f"reshapes (N, {', '.join(map(str, shown))}) to {target}; "
                      f"minideconv reads a reshape to (N, {features}) = (N, -1) only")


def concat(reader, node, attrs):
    """Concat: of constants, evaluated; of activations along the channels, Concat."""
    values = [reader.value(node, i) for i in range(len(node.input))]
    if all(isinstance(v, np.ndarray) for v in values):
        return reader.set_value(node, np.concatenate([np.atleast_1d(v) for v in values],
                                                     axis=attrs.get("axis", 0)))
    xs = [reader.activation(node, i) for i in range(len(node.input))]
    axis = attrs.get("axis")
    if axis not in (1, 1 - len(xs[0].shape) - 1):
        reader.fail(node, f"axis={axis}: minideconv concatenates along the channels "
                          f"(axis=1) only")
    # a concatenation of one tensor (DenseNet's torch.cat([x], 1)) is that tensor
    reader.add_layer(node, nn.Concat(1) if len(xs) > 1 else nn.Identity(), xs)


OPERATIONS = {"Identity": identity, "Relu": relu, "Dropout": dropout, "Conv": conv,
              "MaxPool": max_pool, "AveragePool": average_pool,
              "GlobalAveragePool": global_average_pool, "GlobalMaxPool": global_max_pool,
              "BatchNormalization": batch_normalization, "Gemm": gemm, "MatMul": mat_mul,
              "Add": add, "Flatten": flatten, "Reshape": reshape, "Concat": concat}
