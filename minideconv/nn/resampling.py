"""The layers that make an image larger, as in U-Nets and decoders: the transposed
convolution and upsampling (nearest, bilinear).  Both are linear; their way back is their
exact transpose — for a transposed convolution, the convolution with the same weight.

Their output pixels read input windows that the receptive-field arithmetic of
``shapes`` (convolutions and poolings, which only shrink) does not describe, so units
after them are treated as seeing the whole image (``mixes_positions``)."""

from __future__ import annotations

from .. import checks, geometry, ops
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

    def backward(self, grad, record, rule="backprop"):
        # (Wᵀ)ᵀ r = W r; the bias is a constant and does not enter the way back
        return ops.conv2d(grad, self.weight, **self.convolution_arguments())

    def param_grads(self, grad, record):
        # ⟨Wᵀx, g⟩ = ⟨x, W g⟩ = ⟨conv2d(g, w), x⟩: the weight gradient of conv2d with the
        # roles of input and output gradient exchanged
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
