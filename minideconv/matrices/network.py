"""A whole network — a ``Sequential`` or a ``Graph`` — around one image, as sparse matrices.

Around a recorded forward pass (masks x > 0, switches s) every layer is linear in its
input(s) up to a constant (the biases, BatchNorm's shift), so each node i has one matrix
block F_{i,k} per input k, and its output is y_i = Σ_k F_{i,k} y_{j_k} (+ constant).
Composing them in forward order gives the map from the image to any node:

    M_input = I,      M_i = Σ_k F_{i,k} M_{j_k}                (``network_forward_map``)

A chain is the product ``forward_chain`` builds; a residual sum adds two products; a
concatenation stacks them.  Every way back is the same walk with each block transposed —
except at the rectifiers (ReLU, ClippedReLU, LeakyReLU, PReLU), where the rule decides
(``minideconv.rules``):

    T_input = I,      T_i = Σ_k T_{j_k} G_{i,k},   G_{i,k} = F_{i,k}ᵀ or the rule's
                                                      diagonal  (``network_backward_map``)

A rectifier's block is diag(f′(x)); the deconvnet's diagonal is [r > 0] + α·[r ≤ 0] and
the guided one f′(x) times that.  A smooth activation (SiLU, GELU, …) is not linear around
its input: its block is its Jacobian diag(f′(x)), the same under every rule, so the maps
are then the linearisation around the image.  The deconvnet and guided diagonals depend
on the signal arriving at each rectifier, which is computed first, from the top down,
with the same transposed blocks.  None of this calls a layer's ``backward``: it is an
independent implementation of the way back, built from the matrices of ``conv``,
``pool_relu``, ``average_pool`` and ``channel_maps`` (a smooth activation's f′ is its
layer's ``derivative``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np
import scipy.sparse as sp

from .. import nn, rules
from .average_pool import adaptive_avg_pool2d_matrix, avg_pool2d_matrix
from .channel_maps import (channel_shuffle_matrix, local_response_norm_matrix,
                           softmax_matrix)
from .conv import conv2d_matrix, conv_transpose2d_matrix
from .pool_relu import mask_diagonal, max_pool2d_matrix, relu_matrix
from .resampling import pad_matrix, upsample_bilinear2d_matrix, upsample_nearest2d_matrix
from . import products

__all__ = ["layer_blocks", "network_forward_map", "network_backward_map",
           "NetworkBackwardMap"]


def _identity(size, dtype):
    return sp.identity(size, dtype=dtype, format="csr")


def unit_slopes(layer, shape, dtype) -> np.ndarray:
    """α of every unit of a rectifier layer's output of ``shape`` (without N), channels
    outermost: PReLU's per-channel weight repeated over each plane, else one α."""
    size = int(np.prod(shape))
    slope = np.asarray(layer.negative_slope, dtype=dtype).reshape(-1)
    return np.repeat(slope, size // len(slope)) if len(slope) > 1 else \
        np.full(size, slope[0], dtype)


def layer_blocks(layer, record, input_shapes, dtype) -> List[sp.csr_array]:
    """The matrix blocks F_{i,k} of one layer around its recorded forward pass, one per
    input, for ONE image (``record`` of a batch of one); ``input_shapes`` without N."""
    shape = tuple(input_shapes[0])
    size = int(np.prod(shape))
    if isinstance(layer, nn.Conv2d):
        return [conv2d_matrix(layer.weight, shape, **layer.call_arguments())]
    if isinstance(layer, nn.ConvTranspose2d):   # Wᵀ of the convolution from its output,
        out_shape = layer.output_shape(shape)     # its columns at the input's positions
        wt = conv_transpose2d_matrix(layer.weight, out_shape, **layer.convolution_arguments())
        grid = np.arange(wt.shape[1]).reshape((shape[0],) + layer.convolution_hw(out_shape[1:]))
        return [sp.csr_array(wt[:, grid[:, :shape[1], :shape[2]].ravel()])]
    if isinstance(layer, nn.Upsample):
        build = upsample_bilinear2d_matrix if layer.mode == "bilinear" else \
            upsample_nearest2d_matrix
        return [build(shape, **layer.call_arguments()).astype(dtype)]
    if isinstance(layer, nn.Pad):                     # the constant border is an offset
        return [pad_matrix(shape, layer.pads, layer.mode).astype(dtype)]
    if isinstance(layer, nn.ReLU):
        return [relu_matrix(record[0])]
    if isinstance(layer, nn.Rectifier):           # diag(f′(x)): α, 1 or 0 by the piece
        x = record[0].ravel()
        cap = np.inf if layer.cap is None else layer.cap
        slopes = unit_slopes(layer, shape, dtype)
        return [sp.diags_array(np.where(x > 0, (x < cap).astype(dtype), slopes),
                               format="csr")]
    if isinstance(layer, nn.SmoothActivation):    # diag(f′(x)) of the recorded input
        return [sp.diags_array(layer.derivative(record[0]).ravel(), format="csr")]
    if isinstance(layer, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):   # P(s), at the switches
        return [max_pool2d_matrix(record[0][0], shape, dtype)]
    if isinstance(layer, nn.AvgPool2d):
        return [avg_pool2d_matrix(shape, **layer.call_arguments()).astype(dtype)]
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return [adaptive_avg_pool2d_matrix(shape, layer.output_hw(shape[1:])).astype(dtype)]
    if isinstance(layer, nn.BatchNorm2d):
        scale, _ = layer.scale_and_shift()     # diag(s), each channel's s over its plane
        return [sp.diags_array(np.repeat(scale, size // len(scale)), format="csr")]
    if isinstance(layer, (nn.Dropout, nn.Identity, nn.Flatten)):
        return [_identity(size, dtype)]
    if isinstance(layer, nn.Linear):
        return [sp.csr_array(layer.weight)]
    if isinstance(layer, nn.Softmax):                 # J = diag(p) − p pᵀ per position
        return [softmax_matrix(record[0])]
    if isinstance(layer, nn.LocalResponseNorm):
        return [local_response_norm_matrix(record[0], layer.size, layer.alpha,
                                           layer.beta, layer.k, layer.before)]
    if isinstance(layer, nn.ChannelShuffle):
        return [channel_shuffle_matrix(layer.groups, shape, dtype)]
    if isinstance(layer, nn.Add):                     # y = x₁ + x₂ + …
        return [_identity(size, dtype) for _ in input_shapes]
    if isinstance(layer, nn.Concat):                  # y = [x₁; x₂; …], channels outermost
        sizes = [int(np.prod(s)) for s in input_shapes]
        total, offset, blocks = sum(sizes), 0, []
        for part in sizes:
            rows = np.arange(offset, offset + part)
            blocks.append(sp.csr_array((np.ones(part, dtype), (rows, np.arange(part))),
                                       shape=(total, part)))
            offset += part
        return blocks
    blocks = products.product_blocks(layer, record, input_shapes, dtype)   # Mul, the norms
    if blocks is not None:
        return blocks
    raise TypeError(f"no matrix for a {type(layer).__name__} layer")


def _recorded_blocks(net, image, last):
    """The trace of ``image`` (one (C, H, W)) up to node ``last`` and every node's blocks."""
    if not isinstance(net, nn.Network):
        raise TypeError(f"net must be a minideconv.nn network, got {type(net).__name__}")
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be one image (C, H, W), got shape {image.shape}")
    trace = net.trace(image[None], upto=last)
    shapes = [image.shape] + [out.shape[1:] for out in trace.outputs]   # index j+1
    blocks = [layer_blocks(net.layers[i], trace.records[i],
                           [shapes[j + 1] for j in net.inputs_of(i)], image.dtype)
              for i in range(last + 1)]
    return trace, blocks


def network_forward_map(net, image, layer=None) -> sp.csr_array:
    """M: the linear part of the map from the image to the output of ``layer`` (default
    ``net.output_layer()``: the output, or the logits before a closing Softmax) around the
    forward pass of ``image`` (C, H, W) — ``M @ image.ravel()`` is that output minus the
    constants (biases, BatchNorm shifts); with no constants, the output itself."""
    last = net.output_layer() if layer is None else net.index(layer)
    _, blocks = _recorded_blocks(net, image, last)
    maps = {nn.NETWORK_INPUT: _identity(image.size, image.dtype)}
    for i in range(last + 1):
        maps[i] = sum(block @ maps[j] for block, j in zip(blocks[i], net.inputs_of(i)))
    return sp.csr_array(maps[last])


@dataclass(frozen=True)
class NetworkBackwardMap:
    """One rule's way back from ``layer`` as one matrix: ``matrix`` (image ← layer output)
    and ``projection`` = matrix @ top_signal, shaped as the image."""

    rule: str
    matrix: sp.csr_array
    projection: np.ndarray


def network_backward_map(net, image, layer, top_signal, rule="backprop") -> NetworkBackwardMap:
    """The way back from the output of ``layer`` to the image under ``rule``, as ONE
    matrix T (image size × layer size) for this ``top_signal`` (the ReLU rules depend on
    its signs) — for "backprop" T = Mᵀ, the transpose of ``network_forward_map``."""
    rule = rules.get_rule(rule)
    last = net.index(layer)
    trace, blocks = _recorded_blocks(net, image, last)
    top_signal = np.asarray(top_signal, dtype=np.asarray(image).dtype).reshape(-1)
    if top_signal.size != trace.outputs[last].size:
        raise ValueError(f"top_signal must have {trace.outputs[last].size} values (the "
                         f"output of {net.describe(last)}), got {top_signal.size}")

    # 1. the signal arriving at every node from the top, to fix the ReLU diagonals
    backward = {}                       # node → its backward block per input
    signals = {last: top_signal}
    for i in range(last, -1, -1):
        if i not in signals:
            continue
        r = signals.pop(i)
        if isinstance(net.layers[i], nn.ReLU):
            kept = np.ones(r.size, dtype=bool)
            if rule.masks_by_input:           # D(x > 0): the recorded forward mask
                kept &= blocks[i][0].diagonal() > 0
            if rule.rectifies_signal:         # D(r > 0): the arriving signal's sign
                kept &= r > 0
            backward[i] = [mask_diagonal(kept, r.dtype)]
        elif isinstance(net.layers[i], nn.Rectifier):
            factor = np.ones(r.size, dtype=r.dtype)
            if rule.masks_by_input:           # diag(f′(x)): the recorded forward block
                factor *= blocks[i][0].diagonal()
            if rule.rectifies_signal:         # rect_α: 1 where r > 0, α elsewhere
                factor *= np.where(r > 0, 1, unit_slopes(net.layers[i], r.shape, r.dtype))
            backward[i] = [sp.diags_array(factor, format="csr")]
        else:
            backward[i] = [block.T.tocsr() for block in blocks[i]]
        for j, g in zip(net.inputs_of(i), backward[i]):
            signals[j] = g @ r + signals.get(j, 0)

    # 2. T_i = Σ_k T_{j_k} G_{i,k}, from the input up
    size = int(np.prod(np.shape(image)))
    maps = {nn.NETWORK_INPUT: _identity(size, top_signal.dtype)}
    for i in range(last + 1):
        if i in backward:
            maps[i] = sum(maps[j] @ g for g, j in zip(backward[i], net.inputs_of(i)))
    matrix = sp.csr_array(maps[last])
    return NetworkBackwardMap(rule.name, matrix,
                              (matrix @ top_signal).reshape(np.shape(image)))
