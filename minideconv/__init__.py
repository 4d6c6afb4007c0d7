"""minideconv — Zeiler & Fergus's deconvnet from first principles.

Convolution, its transpose and its weight gradient; ReLU and the other rectifiers with their three backward rules;
max-pooling with switches and the true unpooling; average pooling and its transpose;
nearest and bilinear upsampling and their transposes — as readable Numba kernels, with every
linear operator also available as an explicit sparse matrix (``minideconv.matrices``).

Nothing is compiled at import: the kernels load on first use.

The package, bottom up (each layer imports only from those below it):

================  ========================================================================
``shapes``        output sizes and window positions: the arithmetic of every operator
``checks``        argument checks (``check_int`` & co.): each error names the parameter
``padding``       zero / reflect / replicate / circular padding and its adjoint
``rules``         the ONE table of backward rules at the rectifiers: backprop, deconvnet, guided
``dottest``       ⟨A x, y⟩ = ⟨x, Aᵀ y⟩, the test every transpose passes
``geometry``      a layer's validated geometry, resolved once
``backends``      the kernels: ``reference.py`` (read it first), the CPU's Numba loops
``ops``           the operators, each forward beside its transpose
``compile``       the first run: warm-up, the "compiling…" notice, the helper process
``nn``            layers and networks with a forward pass that remembers the way back
``matrices``      every linear operator as an explicit sparse matrix
``models``        the built-in architectures
``train``         training the shipped network with these operators
``data``          the drawn dataset, the shipped weights, the one image pipeline
``plots``         every figure, one convention for signed maps
``visualize``     one unit back to pixels: projections, Figure 2, occlusion, sanity checks,
                  feature inversion
``attribution``   the methods that followed: gradient, integrated gradients, SmoothGrad,
                  Grad-CAM, guided Grad-CAM, LRP — each a seed and a rule on the chain
``interop``       PyTorch and ONNX: conversions and cross-checks
``cli``           the ``minideconv`` command (``__main__``: ``python -m minideconv``)
================  ========================================================================
"""

from . import geometry, rules, shapes
from .dottest import DotTestError, dottest
from .ops import (adaptive_avg_pool2d, adaptive_avg_pool2d_transpose, avg_pool2d,
                  avg_pool2d_transpose, conv2d, conv2d_weight_grad, conv_transpose2d,
                  max_pool2d, max_unpool2d, rectifier, rectifier_backward, relu,
                  relu_backward)
from .ops import adaptive_max_pool2d, adaptive_max_unpool2d
from .ops import (upsample_bilinear2d, upsample_bilinear2d_transpose, upsample_nearest2d,
                  upsample_nearest2d_transpose)

__version__ = "0.1.0"

# Submodules that pull in heavier dependencies (Numba, scipy.sparse, matplotlib) load on
# first attribute access, so `import minideconv` stays fast (PEP 562).
_LAZY_SUBMODULES = ("matrices", "nn", "visualize", "attribution", "data", "plots", "interop",
                    "models",
                    "train", "compile")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'minideconv' has no attribute {name!r}")

__all__ = [
    "conv2d", "conv_transpose2d", "conv2d_weight_grad", "relu", "relu_backward",
    "rectifier", "rectifier_backward",
    "max_pool2d", "max_unpool2d", "avg_pool2d", "avg_pool2d_transpose",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_transpose",
    "adaptive_max_pool2d", "adaptive_max_unpool2d",
    "upsample_nearest2d", "upsample_nearest2d_transpose", "upsample_bilinear2d",
    "upsample_bilinear2d_transpose", "dottest", "DotTestError", "geometry", "rules", "shapes",
]
