"""The layers that make an image larger, as in U-Nets and decoders: the transposed
convolution, upsampling (nearest, bilinear) and padding.  All are linear (padding with a
constant up to that offset); their way back is their exact transpose — for a transposed
convolution, the convolution with the same weight.

The output pixels of the first two read input windows that the receptive-field
arithmetic of ``shapes`` (convolutions and poolings, which only shrink) does not
describe, so units after them are treated as seeing the whole image
(``mixes_positions``); padding is a shift by its top and left border."""

from __future__ import annotations

import numpy as np

from .. import checks, geometry, ops
from ..padding import MODES, check_pads, pad, pad_adjoint
from .layers import Layer


class ConvTranspose2d(Layer):
    """x ↦ conv_transpose2d(x, W) + b, as ``torch.nn.ConvTranspose2d``: weight
    (C_in, C_out/groups, kh, kw) — the weight of the convolution from C_out to C_in
    channels that this layer transposes — and bias (C_out,) or None.

    Its way back is that convolution itself, r ↦ conv2d(r, W) with the same stride,
    padding, dilation and groups: the transpose of a transposed convolution is a
    convolution.  ``output_padding`` (0 ≤ a < max(stride, dilation)) picks which of the
    sizes that convolve to the input's size the output has."""

    param_names = ("weight", "bias")
    mixes_positions = True

    def __init__(self, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                 dilation=1):
        checks.check_float_array(weight, "weight", ndim=4,
                                 layout="(C_in, C_out/groups, kh, kw)")
        self.groups = geometry.check_groups(groups)
        checks.check_bias(bias, "bias", weight.shape[1] * self.groups, weight.dtype)
        if weight.shape[0] % self.groups:
            raise ValueError(f"groups={groups} must divide the input channels "
                             f"(weight.shape[0] = {weight.shape[0]})")
        self.weight, self.bias = weight, bias
        self.stride = checks.to_pair(stride, "stride", 1)
        self.padding = checks.to_pair(padding, "padding", 0)
        self.output_padding = checks.to_pair(output_padding, "output_padding", 0)
        self.dilation = checks.to_pair(dilation, "dilation", 1)
        for a, s, d in zip(self.output_padding, self.stride, self.dilation):
            if a >= max(s, d):
                raise ValueError(f"output_padding must be smaller than max(stride, "
                                 f"dilation) = {max(s, d)}, got {self.output_padding}")

    def convolution_arguments(self):
        """The keyword arguments of the convolution this layer transposes (its way back
        and its weight gradient take them)."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    def input_channels(self) -> int:
        return int(self.weight.shape[0])

    def forward(self, x):
        return ops.conv_transpose2d(x, self.weight, self.bias,
                                    output_padding=self.output_padding,
                                    **self.convolution_arguments()), x

    def convolution_hw(self, output_hw):
        """(H, W) of the convolution of an output of ``output_hw``: the input's size, or
        larger where ``output_padding`` ≥ stride (allowed when the dilation is larger),
        the extra rows and columns being ones no input pixel reaches."""
        return geometry.conv2d_geometry((1, self.weight.shape[1] * self.groups) +
                                        tuple(output_hw), self.weight.shape,
                                        **self.convolution_arguments()).out_hw

    def backward(self, grad, record, rule="backprop"):
        # (Wᵀ)ᵀ r = W r, at the input's positions; the bias is a constant and does not
        # enter the way back
        height, width = record.shape[2:]
        out = ops.conv2d(grad, self.weight, **self.convolution_arguments())
        return out if out.shape[2:] == (height, width) else \
            checks.array_module(out).ascontiguousarray(out[:, :, :height, :width])

    def param_grads(self, grad, record):
        # ⟨Wᵀx, g⟩ = ⟨x, W g⟩ = ⟨conv2d(g, w), x⟩: the weight gradient of conv2d with the
        # roles of input and output gradient exchanged (x padded with zeros to the
        # convolution's size where output_padding ≥ stride)
        extra = [c - n for c, n in zip(self.convolution_hw(grad.shape[2:]), record.shape[2:])]
        if any(extra):
            record = checks.array_module(record).pad(
                record, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        grads = {"weight": ops.conv2d_weight_grad(grad, record, self.weight.shape,
                                                  **self.convolution_arguments())}
        if self.bias is not None:
            grads["bias"] = grad.sum(axis=(0, 2, 3))
        return grads

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.weight.shape[0]:
            raise ValueError(f"expects an input of {self.weight.shape[0]} channels "
                             f"(C, H, W), got {tuple(input_shape)}")
        geom = geometry.conv_transpose2d_geometry(
            (1,) + tuple(input_shape), self.weight, self.stride, self.padding,
            self.output_padding, self.dilation, self.groups, None, name_in="the input")
        return (geom.in_channels,) + tuple(geom.in_hw)

    def config(self):
        return dict(stride=list(self.stride), padding=list(self.padding),
                    output_padding=list(self.output_padding), groups=self.groups,
                    dilation=list(self.dilation))


class Upsample(Layer):
    """Upsampling, as ``torch.nn.Upsample``: ``mode`` "nearest", "nearest-exact" or
    "bilinear" (``align_corners`` False by default), to ``size`` or by ``scale_factor``
    (exactly one), PyTorch's source-index rule (``ops.upsample_nearest2d``,
    ``ops.upsample_bilinear2d``).  A linear map fixed by the sizes; its way back is its
    transpose, each signal value sent back to the pixels its output read, with the same
    weights.  ``nn.UpsamplingNearest2d`` is ``mode="nearest"``,
    ``nn.UpsamplingBilinear2d`` is ``mode="bilinear", align_corners=True``."""

    mixes_positions = True

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        (self.size, self.scale_factor, self.mode, self.align_corners,
         self.recompute_scale_factor) = geometry.check_interpolation(
            size, scale_factor, mode, align_corners, recompute_scale_factor)

    def call_arguments(self):
        """The keyword arguments of this layer's ``ops`` calls (the upsampling and its
        transpose take the same ones)."""
        arguments = dict(size=self.size, scale_factor=self.scale_factor,
                         recompute_scale_factor=self.recompute_scale_factor)
        if self.mode == "bilinear":
            arguments["align_corners"] = bool(self.align_corners)
        else:
            arguments["exact"] = self.mode == "nearest-exact"
        return arguments

    def forward(self, x):
        upsample = ops.upsample_bilinear2d if self.mode == "bilinear" else \
            ops.upsample_nearest2d
        return upsample(x, **self.call_arguments()), x.shape[2:]

    def backward(self, grad, record, rule="backprop"):
        transpose = ops.upsample_bilinear2d_transpose if self.mode == "bilinear" else \
            ops.upsample_nearest2d_transpose
        return transpose(grad, tuple(record), **self.call_arguments())

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"expects a (C, H, W) input, got {tuple(input_shape)}")
        geom = geometry.interpolation_geometry(
            (1,) + tuple(input_shape), self.size, self.scale_factor, self.mode,
            self.align_corners, self.recompute_scale_factor, name_in="input")
        return (input_shape[0],) + tuple(geom.out_hw)

    def config(self):
        return dict(size=None if self.size is None else list(self.size),
                    scale_factor=None if self.scale_factor is None else
                    list(self.scale_factor), mode=self.mode,
                    align_corners=self.align_corners,
                    recompute_scale_factor=self.recompute_scale_factor)


class Pad(Layer):
    """Padding of the borders, as ``torch.nn.functional.pad`` on (N, C, H, W):
    ``padding`` an int (all four sides) or ``(left, right, top, bottom)`` — F.pad's
    order, the last axis first — and ``mode`` "constant", "reflect", "replicate" or
    "circular" (``minideconv.padding``).

    Linear but for the constant ``value`` (torch's ``ConstantPad2d(p, value)``), which
    fills the border as a bias would: it shifts the output and does not enter the way
    back.  The way back is the transpose Pᵀ: the centre cropped and every border cell
    added back onto the pixel it copied (none for zero padding)."""

    def __init__(self, padding, mode="constant", value=0.0):
        sides = (padding,) * 4 if checks.is_int(padding) else padding
        if not isinstance(sides, (tuple, list)) or len(sides) != 4 or \
                not all(checks.is_int(v) and v >= 0 for v in sides):
            raise ValueError(f"padding must be an int ≥ 0 or (left, right, top, bottom) "
                             f"ints ≥ 0, got {padding!r}")
        self.padding = tuple(int(v) for v in sides)
        self.mode = checks.check_choice(mode, "mode", MODES)
        self.value = checks.check_real(value, "value")
        if self.value != 0 and mode != "constant":
            raise ValueError(f"value={value} goes with mode='constant', not {mode!r}")

    @property
    def pads(self):
        """(top, bottom, left, right), the order of ``minideconv.padding``."""
        left, right, top, bottom = self.padding
        return top, bottom, left, right

    def forward(self, x):
        checks.check_float_array(x, "x", ndim=4, layout="(N, C, H, W)")
        y = pad(x, self.pads, self.mode)
        if self.value:      # the constant border: an offset, like a bias
            inside = pad(np.ones(x.shape[2:], x.dtype), self.pads, "constant")
            y += checks.array_module(y).asarray(self.value * (1 - inside), dtype=y.dtype)
        return y, None

    def backward(self, grad, record, rule="backprop"):
        return pad_adjoint(grad, self.pads, self.mode)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"expects a (C, H, W) input, got {tuple(input_shape)}")
        check_pads(self.pads, input_shape[1:], self.mode)
        top, bottom, left, right = self.pads
        return (input_shape[0], input_shape[1] + top + bottom, input_shape[2] + left + right)

    def geometry(self):
        # a shift by (top, left): a 1×1 window of stride 1 whose padding is the border
        return (1, 1), (1, 1), (self.pads[0], self.pads[2]), (1, 1)

    def config(self):
        return dict(padding=list(self.padding), mode=self.mode, value=self.value)
