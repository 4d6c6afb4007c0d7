"""The backend contract: the kernels every backend provides, and what it may assume.

A backend is a module with the functions of ``Backend`` below, with these parameter
names, plus a ``kernel_lock`` (a context manager).  Two backends exist:

* ``backends.cpu`` — Numba loops (``backends.loops``) scheduled on threads, for NumPy
  arrays;
* ``backends.reference`` — whole-array code on NumPy or CuPy: every CuPy array, and
  NumPy arrays when ``ops.CPU_BACKEND = "reference"``.

What the caller (``minideconv.ops``) has already done, so that no backend does it:

* every argument is validated (shapes, dtypes, one device, sizes); arrays are
  C-contiguous, float32 or float64 of one dtype, switches int64;
* the geometry is resolved once (``minideconv.geometry``): a ``ConvGeometry`` always has
  ``padding_mode == "zeros"`` — circular, reflect or replicate padding was turned into a
  pre-padded input
  (``ConvGeometry.as_zero_padded``) and is folded back by the caller;
* the ReLU rule is a ``rules.ReluRule`` (its two yes/no choices), never a name; a
  rectifier's slopes are one per channel of an input of at least two dimensions;
* an ``InterpolationGeometry`` holds every output's source pixels and weights, inside
  the image: PyTorch's index formulas and scale factors are resolved;
* an ``AvgPoolGeometry`` holds its windows already clipped to the image, with their
  divisors: padding, ``ceil_mode`` and ``count_include_pad`` are resolved;
* ``max_unpool2d`` is called only after ``first_switch_outside_window`` returned −1 (or,
  after an adaptive max-pool, ``ops`` checked the switches against their windows), so
  every switch lies inside its own window, inside the output;
* the bias is added by the caller; the caller holds ``kernel_lock`` around every call.

Adding an operator means: a function here, one in each backend, and the ``ops``
function that validates and calls it; ``tests/test_backends_contract.py`` checks that
every backend provides every function of ``Backend`` with these parameters.
"""

from __future__ import annotations

from typing import Protocol, Tuple

from ..geometry import AvgPoolGeometry, ConvGeometry, InterpolationGeometry, PoolGeometry
from ..rules import ReluRule


class Backend(Protocol):
    """The kernels of one backend.  Shapes are NCHW; "like x" means x's shape and dtype."""

    def conv2d(self, x, weight, geom: ConvGeometry):
        """y = W x: (N, C_in, *geom.in_hw) → (N, C_out, *geom.out_hw), no bias."""

    def conv_transpose2d(self, y, weight, geom: ConvGeometry):
        """x = Wᵀ y for the convolution ``geom``: (N, C_out, *geom.out_hw) →
        (N, C_in, *geom.in_hw)."""

    def conv2d_weight_grad(self, x, grad_out, geom: ConvGeometry):
        """∂⟨conv2d(x, w), grad_out⟩/∂w, of shape ``geom.weight_shape``."""

    def relu(self, x):
        """max(x, 0), like x; NaN stays NaN."""

    def relu_backward(self, grad, x, rule: ReluRule):
        """The rule's way back for the signal ``grad``, like grad (``minideconv.rules``)."""

    def rectifier(self, x, slopes, cap):
        """f(x) = α_c·x (x ≤ 0), x (0 < x < m), m (x ≥ m), like x (N, C, …): ``slopes``
        one α per channel (1-D, length C, x's dtype and device), ``cap`` a float m (inf:
        none); NaN stays NaN."""

    def rectifier_backward(self, grad, x, slopes, cap, rule: ReluRule):
        """The rule's way back through that rectifier, like grad (``minideconv.rules``)."""

    def max_pool2d(self, x, geom: PoolGeometry) -> Tuple[object, object]:
        """(y, switches), both (N, C, *geom.out_hw): the window maxima and their int64
        flat indices h·W + w into each input plane (first maximum wins, NaN wins)."""

    def first_switch_outside_window(self, switches, geom: PoolGeometry) -> int:
        """The first flat index into ``switches`` whose switch is not a position of its
        own window inside the (*geom.in_hw) input, or −1."""

    def max_unpool2d(self, y, switches, geom: PoolGeometry):
        """x = P(s)ᵀ y, (N, C, *geom.in_hw): every y value added at its switch (only
        ``geom.in_hw`` is read: an adaptive max-pool's ``AvgPoolGeometry`` serves too)."""

    def adaptive_max_pool2d(self, x, geom: AvgPoolGeometry) -> Tuple[object, object]:
        """(y, switches) of max-pooling over ``geom``'s adaptive windows (the windows of
        ``adaptive_avg_pool2d``), ties and NaN as ``max_pool2d``."""

    def avg_pool2d(self, x, geom: AvgPoolGeometry):
        """y = A x, (N, C, *geom.out_hw): each window's sum divided by its divisor
        (``geometry.AvgPoolGeometry``; ``avg_pool2d`` and ``adaptive_avg_pool2d`` alike)."""

    def avg_pool2d_transpose(self, r, geom: AvgPoolGeometry):
        """x = Aᵀ r, (N, C, *geom.in_hw): each r value over its divisor added to every
        pixel of its window."""

    def upsample2d(self, x, geom: InterpolationGeometry):
        """y = A_h x A_wᵀ, (N, C, *geom.out_hw): every output the weighted sum of the
        pixels it reads (``geometry.InterpolationGeometry``; nearest and bilinear alike)."""

    def upsample2d_transpose(self, r, geom: InterpolationGeometry):
        """x = A_hᵀ r A_w, (N, C, *geom.in_hw): every r value added, with its weights, to
        the pixels its output read."""


#: The kernel names, in the order above.
KERNELS = tuple(name for name in vars(Backend) if not name.startswith("_"))
