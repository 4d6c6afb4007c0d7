"""PyTorch ↔ minideconv, and the cross-check against PyTorch autograd and Captum.

>>> net = from_torch(torch_model)                       # doctest: +SKIP
>>> print(crosscheck(torch_model, images))              # doctest: +SKIP

PyTorch (and Captum, for the report) are imported only when a function runs; importing
this package needs neither.

================  ========================================================================
``convert``       ``from_torch`` (an ``nn.Sequential``, or any module torch.fx can trace,
                  into these layers) and ``to_torch``
``comparison``    ``crosscheck`` / ``compare``: forward values and projections under the
                  three rules beside PyTorch's; returns a report
``report``        the report's classes: ``Error``, ``LayerCheck``, ``CrosscheckReport``,
                  ``TOLERANCE`` (no torch needed)
``reference``     torch's side of the check: values at every node, projections by
                  autograd, Captum or rule ReLUs in an fx copy, the F.max_unpool2d variant
``layers``        one torch layer ↔ one minideconv layer, weights copied; ``SUPPORTED``
``fx``            tracing, the naming rule, in-place ops, Graph → ``torch.fx.GraphModule``
``fx_nodes``      one fx node → one layer: each operation recognised, its arguments bound
``resampling``    ConvTranspose2d, Upsample and F.interpolate ↔ the layers that enlarge
``tensors``       what every translation shares: ``import_torch``, ``to_numpy``, ``as_pair``
``join_modules``  ``Sum`` and ``ChannelConcat``: ``to_torch``'s modules for Add and Concat
================  ========================================================================
"""

from .comparison import compare, crosscheck
from .convert import from_torch, to_torch
from .layers import SUPPORTED
from .report import TOLERANCE, CrosscheckReport, Error, LayerCheck

__all__ = ["from_torch", "to_torch", "crosscheck", "compare", "CrosscheckReport", "Error",
           "LayerCheck", "TOLERANCE", "SUPPORTED"]
