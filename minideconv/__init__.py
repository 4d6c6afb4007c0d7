"""minideconv — Zeiler & Fergus's deconvnet from first principles.

Convolution, its transpose and its weight gradient; ReLU with its three backward rules;
max-pooling with switches and the true unpooling; average pooling and its transpose — as readable Numba kernels, with every
linear operator also available as an explicit sparse matrix (``minideconv.matrices``).

Nothing is compiled at import: the kernels load on first use.
"""

from . import geometry, rules, shapes
from .dottest import DotTestError, dottest
from .ops import (adaptive_avg_pool2d, adaptive_avg_pool2d_transpose, avg_pool2d,
                  avg_pool2d_transpose, conv2d, conv2d_weight_grad, conv_transpose2d,
                  max_pool2d, max_unpool2d, relu, relu_backward)

__version__ = "0.1.0"

# Submodules that pull in heavier dependencies (Numba, scipy.sparse, matplotlib) load on
# first attribute access, so `import minideconv` stays fast (PEP 562).
_LAZY_SUBMODULES = ("matrices", "nn", "visualize", "data", "plots", "interop", "sanity",
                    "invert")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'minideconv' has no attribute {name!r}")

__all__ = [
    "conv2d", "conv_transpose2d", "conv2d_weight_grad", "relu", "relu_backward",
    "max_pool2d", "max_unpool2d", "avg_pool2d", "avg_pool2d_transpose",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_transpose", "dottest", "DotTestError", "geometry", "rules", "shapes",
]
