"""ONNX → minideconv: read a network exported from PyTorch, Keras, TF or JAX.

>>> net = from_onnx("model.onnx")                  # doctest: +SKIP

``from_onnx`` always returns an ``nn.Graph`` (a chain is a graph too), whose node names
are the ONNX node names (the first output's name where a node has none), made unique.
Each ONNX operation becomes the minideconv layer with the same map:

====================================  =====================================================
ONNX                                  minideconv
====================================  =====================================================
Conv                                  Conv2d (pads equal on both sides, ``"same"``, or
                                      the four pads (top, bottom, left, right); auto_pad
                                      NOTSET / VALID / SAME_UPPER / SAME_LOWER; group,
                                      dilations)
Relu                                  ReLU
Clip(0, m), Clip(0)                   ClippedReLU(m), ReLU (another min: refused)
LeakyRelu, PRelu, Elu                 LeakyReLU, PReLU (one slope per channel), ELU
Sigmoid, Tanh, HardSwish,             Sigmoid, Tanh, Hardswish, Hardsigmoid(alpha, beta),
HardSigmoid, Gelu                     GELU (``activations``)
MaxPool                               MaxPool2d (pads, dilations, ceil_mode; pads larger
                                      at the bottom / right as ceil_mode where the
                                      windows are the same)
AveragePool                           AvgPool2d (pads, ceil_mode, count_include_pad; the
                                      same rule without count_include_pad)
GlobalAveragePool                     AdaptiveAvgPool2d(1)
GlobalMaxPool                         AdaptiveMaxPool2d(1)
ReduceMean over (H, W)                AdaptiveAvgPool2d(1) (then Flatten if keepdims=0)
Transpose → GatherND → Transpose →    AdaptiveAvgPool2d(output size) — what PyTorch's
ReduceMean                            exporter writes for an adaptive pool whose windows
                                      all have one length (e.g. 1×1 → 7×7)
NHWC input → Transpose(0,3,1,2)       nothing: the Graph takes (N, C, H, W) images
Transpose(0,2,3,1) → Flatten /        Flatten, then Linear with the weight's columns
Reshape(N, −1) → Gemm / MatMul        reordered from (h, w, c) to (c, h, w)
BatchNormalization (inference)        BatchNorm2d
Gemm (transA=0, alpha, beta, transB)  Linear: W = α·B (transB=1) or α·Bᵀ, b = β·C
MatMul, then Add of a constant        one Linear (the Add is its bias)
Conv / Gemm, then Add of a constant   the bias of that Conv2d / Linear
Flatten (axis=1), Reshape to (N, −1)  Flatten
Add of two activations                Add
Concat (axis=1)                       Concat (of one input: Identity)
Dropout, Identity                     Dropout, Identity
Sum                                   Add (of constants: evaluated)
LRN                                   LocalResponseNorm, ONNX's window
Softmax over the channels             Softmax (opset < 13: axis 1 of (N, F) or (N, C, 1, 1))
Reshape → Transpose(0,2,1,3,4) →      ChannelShuffle(g) (``structure_ops``)
Reshape, (N, g, C/g, H, W) and back
ConstantOfShape; Mul, Sub, Div of     evaluated
constants
Mul of two activations                Mul (a (N, C, 1, 1) gate broadcast: SE, SiLU)
Mul / Add of a per-channel constant   ChannelAffine — or the scale / shift of the
                                      BatchNorm2d, ChannelAffine, GroupNorm or
                                      ChannelLayerNorm that computed the activation, when
                                      it reads it alone
GroupNormalization (opset 18, 21)     GroupNorm (scale, bias per group or per channel)
Reshape(N, G, −1) →                   GroupNorm — PyTorch's export of ``nn.GroupNorm``
InstanceNormalization → Reshape back  (the Mul and Add after it its γ and β)
InstanceNormalization of (N, C, H, W) GroupNorm with C groups
Transpose(0,2,3,1) → … →              the NCHW layers, the Transposes dropped:
Transpose(0,3,1,2)                    LayerNormalization (last axis) → ChannelLayerNorm,
                                      MatMul → 1×1 Conv2d, element-wise ops as they are
                                      (ConvNeXt; ``regions``)
Reshape(−1) → Gather by 0, 1, 2, …    nothing: an ``as_strided`` that puts every value
                                      back (the dynamo exporter, ConvNeXt's head)
ConvTranspose                         ConvTranspose2d (pads, output_padding, output_shape,
                                      auto_pad, group, dilations, strides)
Resize (opset 11+), nearest           Upsample nearest (asymmetric + floor) or
                                      nearest-exact (half_pixel + round_prefer_ceil)
Resize, linear                        Upsample bilinear (half_pixel, pytorch_half_pixel:
                                      align_corners=False; align_corners: True)
Upsample (opset 7–9), nearest         Upsample nearest (scale_factor)
Pad of H and W                        Pad (constant, reflect, edge → replicate, wrap →
                                      circular)
====================================  =====================================================

Reshape's target shape may be a constant or computed from the activation's own shape —
the ``Shape → Gather → Unsqueeze → Concat`` chain PyTorch writes for
``x.view(x.size(0), -1)``: constants, ``Constant`` nodes and those shape operations
(Shape, Gather, Unsqueeze, Squeeze, Concat, Cast, Slice, ConstantOfShape, Identity on
constants) are evaluated here while the graph is read.  A target (n, F) with F the number
of features is read as a flatten that keeps the batch, whatever batch size n the
exporter wrote in.

Files that tf2onnx writes for Keras / TensorFlow take channels-last images (N, H, W, C)
and begin with a Transpose to (N, C, H, W) (``input_layout(model)`` is then ``"NHWC"``):
``from_onnx`` drops that Transpose, so the Graph takes (N, C, H, W) images — its
``input_shape`` (C, H, W) is the transposed one — and ``crosscheck_onnx`` /
``onnxruntime_outputs`` transpose the (N, C, H, W) images they are given to (N, H, W, C)
for onnxruntime.  The Transpose back to channels-last before a dense layer is folded
into that layer's weight (see ``layouts``); a channels-last region closed by the
Transpose back is read as NCHW layers (``regions``); any other Transpose is refused.

Weights (initializers and ``Constant`` nodes, ``onnx.numpy_helper.to_array``) keep their
dtype.  Any other operation — or one of these with options minideconv's layer does not
have (a pool padded more at the top / left, a pooling's indices output, training
mode) — raises a ValueError naming the op_type and the node.  Nodes that the output does
not depend on
are left out.

``onnx`` is imported when a function runs:
``pip install 'minideconv[onnx]'``.

``reader`` walks the graph and keeps the book (``GraphReader``); ``layer_ops``,
``mean_ops``, ``resize_ops``, ``shape_ops`` and ``layouts`` (the NHWC Transposes)
translate the operations (one function each); ``values`` says what a tensor is while the graph is read.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

from ... import nn
from .reader import convert
from .values import import_onnx

__all__ = ["load_model", "convert_with_tensors", "from_onnx"]


def load_model(path_or_model):
    """An ``onnx.ModelProto`` from a path (its external data read from beside it) or a
    ModelProto (returned as is)."""
    onnx = import_onnx()
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model
    if not isinstance(path_or_model, (str, os.PathLike)):
        raise TypeError(f"path_or_model must be a path or an onnx.ModelProto, got "
                        f"{type(path_or_model).__name__}")
    return onnx.load(os.fspath(path_or_model))


def convert_with_tensors(path_or_model, input_shape=None):
    """``(graph, {node name: the ONNX tensor it computes, or None})``."""
    return convert(load_model(path_or_model), input_shape)


def from_onnx(path_or_model,
              input_shape: Optional[Tuple[int, int, int]] = None) -> nn.Graph:
    """The ONNX network at ``path_or_model`` (a file path or an ``onnx.ModelProto``) as an
    ``nn.Graph`` (see the module docstring for what each operation becomes).

    ``input_shape`` (C, H, W) is needed only when the file's input has no fixed size.
    The Graph takes images (N, C, H, W), also from a file whose input is NHWC
    (``input_layout``): its Transpose to NCHW is dropped, ``input_shape`` is the
    transposed (C, H, W)."""
    return convert_with_tensors(path_or_model, input_shape)[0]
