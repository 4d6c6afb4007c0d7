"""A layer's geometry, worked out once: the convolution's and the poolings'.

Each ``*_geometry`` function validates one call's stride, padding, dilation, groups and
sizes (each error names the parameter) and returns a small frozen dataclass with
everything normalised: pairs of ints, explicit padding, input and output sizes.
``minideconv.ops`` hands these to the backends, ``minideconv.matrices`` builds its
sparse matrices from them, and ``minideconv.nn`` asks them for output shapes.  Circular
padding and average pooling's padding, ``ceil_mode`` and ``count_include_pad`` are
resolved here, so no backend ever sees them.

- ``convolution``: ``ConvGeometry`` of conv2d and conv_transpose2d, bands of output rows,
  a transposed convolution rewritten as a convolution;
- ``max_pool``: ``PoolGeometry`` of max-pooling, and the pooling an unpooling transposes;
- ``average_pool``: ``AvgPoolGeometry``, the windows and divisors of average and adaptive
  average pooling;
- ``interpolation``: ``InterpolationGeometry``, the source pixels and weights of nearest
  and bilinear upsampling (PyTorch's index formulas).

The arithmetic of one axis (output lengths, reachable lengths, window positions) is in
``minideconv.shapes``; this package applies it to whole layers.
"""

from .average_pool import (AvgPoolGeometry, Window, adaptive_avg_pool2d_geometry,
                           adaptive_output_size, adaptive_windows, avg_pool2d_geometry,
                           avg_pool_transpose_geometry, avg_pool_windows,
                           check_divisor_override, switches_outside_windows)
from .convolution import (PADDING_MODES, ConvGeometry, check_groups, check_padding_mode,
                          conv2d_geometry, conv_transpose2d_geometry, normalise_padding,
                          output_rows_band, transpose_as_convolution)
from .interpolation import (MODES as INTERPOLATION_MODES, AxisTaps, InterpolationGeometry,
                            check_interpolation, interpolation_geometry,
                            interpolation_transpose_geometry)
from .max_pool import (PoolGeometry, max_pool2d_geometry, max_unpool2d_geometry,
                       unpool_default_length)

__all__ = [
    "PADDING_MODES", "check_groups", "check_padding_mode",
    "ConvGeometry", "normalise_padding", "conv2d_geometry", "conv_transpose2d_geometry",
    "output_rows_band", "transpose_as_convolution",
    "PoolGeometry", "max_pool2d_geometry", "max_unpool2d_geometry", "unpool_default_length",
    "Window", "AvgPoolGeometry", "avg_pool_windows", "avg_pool2d_geometry",
    "adaptive_windows", "adaptive_output_size", "adaptive_avg_pool2d_geometry",
    "avg_pool_transpose_geometry", "check_divisor_override", "switches_outside_windows",
    "INTERPOLATION_MODES", "AxisTaps", "InterpolationGeometry", "check_interpolation",
    "interpolation_geometry", "interpolation_transpose_geometry",
]
