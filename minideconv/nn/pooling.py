"""The pooling layers: max-pooling (fixed or adaptive windows), whose way back is the true
unpooling P(s)ᵀ at the recorded switches, and average pooling (fixed or adaptive), a fixed
linear map whose way back spreads each value evenly over its window."""

from __future__ import annotations

from .. import checks, geometry, ops
from ..ops import max_pool2d, max_unpool2d
from .layers import Layer


class MaxPool2d(Layer):
    """Max-pooling that records its switches; the way back is the true unpooling P(s)ᵀ."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        self.kernel_size = checks.to_pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else \
            checks.to_pair(stride, "stride", 1)
        self.padding = checks.to_pair(padding, "padding", 0)
        self.dilation = checks.to_pair(dilation, "dilation", 1)
        self.ceil_mode = checks.check_bool(ceil_mode, "ceil_mode")

    def forward(self, x):
        y, switches = max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                 self.dilation, self.ceil_mode)
        return y, (switches, x.shape[2:])

    def backward(self, grad, record, rule="backprop"):
        switches, input_hw = record
        return max_unpool2d(grad, switches, self.kernel_size, self.stride, self.padding,
                            output_size=input_hw, dilation=self.dilation)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"expects a (C, H, W) input, got {tuple(input_shape)}")
        # the checks of the forward pass, before it runs: padding at most half the
        # kernel, a window that fits, no window of padding alone
        geom = geometry.max_pool2d_geometry((1,) + tuple(input_shape), self.kernel_size,
                                            self.stride, self.padding, self.dilation,
                                            self.ceil_mode)
        return (input_shape[0],) + tuple(geom.out_hw)

    def geometry(self):
        return self.kernel_size, self.stride, self.padding, self.dilation

    def config(self):
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), dilation=list(self.dilation),
                    ceil_mode=self.ceil_mode)


class AvgPool2d(Layer):
    """Average pooling, y = A x with A fixed by the geometry alone (no switches): each
    output is the mean of its window, so Aᵀ spreads each signal value evenly back over the
    window it averaged (``ops.avg_pool2d_transpose``).  Options as ``torch.nn.AvgPool2d``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        self.kernel_size = checks.to_pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else \
            checks.to_pair(stride, "stride", 1)
        self.padding = checks.to_pair(padding, "padding", 0)
        self.ceil_mode = checks.check_bool(ceil_mode, "ceil_mode")
        self.count_include_pad = checks.check_bool(count_include_pad, "count_include_pad")
        self.divisor_override = geometry.check_divisor_override(divisor_override)

    def call_arguments(self):
        """The keyword arguments of this layer's ``ops`` calls (``avg_pool2d`` and its
        transpose take the same ones)."""
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x):
        return ops.avg_pool2d(x, **self.call_arguments()), x.shape[2:]

    def backward(self, grad, record, rule="backprop"):
        return ops.avg_pool2d_transpose(grad, record, **self.call_arguments())

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"expects a (C, H, W) input, got {tuple(input_shape)}")
        geom = geometry.avg_pool2d_geometry((1,) + tuple(input_shape), **self.call_arguments())
        return (input_shape[0],) + tuple(geom.out_hw)

    def geometry(self):
        return self.kernel_size, self.stride, self.padding, (1, 1)

    def config(self):
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)


class AdaptivePool(Layer):
    """What adaptive average and max pooling share: ``output_size`` (an int, or a pair
    whose None keeps that input size) and PyTorch's adaptive windows; along an axis of
    length L pooled to length O, output i reads inputs ⌊iL/O⌋ … ⌈(i+1)L/O⌉ − 1 (the
    windows overlap or repeat when O does not divide L, or when O > L).  The windows
    depend on the position, so units after it are treated as seeing the whole image."""

    mixes_positions = True

    def __init__(self, output_size):
        pair = (output_size, output_size) if not isinstance(output_size, (tuple, list)) \
            else tuple(output_size)
        if len(pair) != 2 or not all(v is None or (checks.is_int(v) and v >= 1)
                                     for v in pair):
            raise ValueError(f"output_size must be a positive int or a pair of positive "
                             f"ints or None, got {output_size!r}")
        self.output_size = tuple(None if v is None else int(v) for v in pair)

    def output_hw(self, input_hw):
        """(H_out, W_out) for an input of (H, W) = ``input_hw``: ``output_size``, with a
        None keeping that axis's input length."""
        return tuple(int(o if o is not None else i) for o, i in zip(self.output_size,
                                                                    input_hw))

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"expects a (C, H, W) input, got {tuple(input_shape)}")
        return (input_shape[0],) + self.output_hw(input_shape[1:])

    def config(self):
        return dict(output_size=list(self.output_size))


class AdaptiveAvgPool2d(AdaptivePool):
    """Average pooling to a given output size, as ``torch.nn.AdaptiveAvgPool2d``
    (``AdaptivePool``'s windows): each output the mean of its window.  A linear map fixed
    by the sizes; its transpose spreads each value back over its window
    (``ops.adaptive_avg_pool2d_transpose``)."""

    def forward(self, x):
        return ops.adaptive_avg_pool2d(x, self.output_hw(x.shape[2:])), x.shape[2:]

    def backward(self, grad, record, rule="backprop"):
        return ops.adaptive_avg_pool2d_transpose(grad, record)


class AdaptiveMaxPool2d(AdaptivePool):
    """Max-pooling to a given output size, as ``torch.nn.AdaptiveMaxPool2d`` (the windows
    of ``AdaptivePool``, those of adaptive average pooling), recording its switches; the
    way back is the true unpooling P(s)ᵀ at them (``ops.adaptive_max_unpool2d``)."""

    def forward(self, x):
        y, switches = ops.adaptive_max_pool2d(x, self.output_hw(x.shape[2:]))
        return y, (switches, x.shape[2:])

    def backward(self, grad, record, rule="backprop"):
        switches, input_hw = record
        return ops.adaptive_max_unpool2d(grad, switches, tuple(input_hw))
