"""PyTorch ↔ minideconv, and the cross-check against PyTorch autograd and Captum.

>>> net = from_torch(torch_model)                       # doctest: +SKIP
>>> print(crosscheck(torch_model, images))              # doctest: +SKIP

PyTorch (and Captum, for the report) are imported only when a function runs; importing
this package needs neither.

=================  ========================================================================
``convert``        ``from_torch`` (an ``nn.Sequential``, or any module torch.fx can trace,
                   into these layers) and ``to_torch``
``comparison``     ``crosscheck`` / ``compare``: forward values and projections under the
                   three rules beside PyTorch's; returns a report
``report``         the report's classes: ``Error``, ``LayerCheck``, ``CrosscheckReport``,
                   ``TOLERANCE`` (no torch needed)
``reference``      torch's side of the check: values at every node, projections by
                   autograd, Captum or rule rectifiers in an fx copy, the F.max_unpool2d
                   variant
``layers``         one torch layer ↔ one minideconv layer, weights copied; ``SUPPORTED``
``activations``    the activation modules (ReLU6, LeakyReLU, PReLU, SiLU, …) ↔ layers
``fx``             tracing, the naming rule, in-place ops, Graph → ``torch.fx.GraphModule``
``fx_nodes``       one fx node → one layer: each operation recognised, its arguments bound
``fx_functions``   the activation functions and methods (F.relu6, torch.clamp, x.sigmoid())
``fx_products``    a * b, x * t and x + t with model tensors or numbers, F.group_norm
``channels_last``  permute(0, 2, 3, 1) … permute(0, 3, 1, 2) around position-wise ops
``channel_nodes``  Softmax, LocalResponseNorm, ChannelShuffle (modules, functions, the
                   hand-written shuffle) ↔ their layers
``resampling``     ConvTranspose2d, Upsample and F.interpolate ↔ the layers that enlarge
``tensors``        what every translation shares: ``import_torch``, ``to_numpy``, ``as_pair``
``join_modules``   ``Sum`` and ``ChannelConcat``: ``to_torch``'s modules for Add and Concat
``own_modules``    ``Product``, ``ChannelAffine``, ``ChannelLayerNorm``: ``to_torch``'s
                   modules for Mul and the layers torch.nn has no module of
=================  ========================================================================
"""

from .comparison import compare, crosscheck
from .convert import from_torch, to_torch
from .layers import SUPPORTED
from .report import TOLERANCE, CrosscheckReport, Error, LayerCheck

__all__ = ["from_torch", "to_torch", "crosscheck", "compare", "CrosscheckReport", "Error",
           "LayerCheck", "TOLERANCE", "SUPPORTED"]
