"""The cross-check's report: per layer, how far minideconv is from PyTorch.

``Error`` is one comparison (max |ours − reference|, and that relative to the
reference's scale); ``LayerCheck`` holds a layer's comparisons — the forward activation,
the projection under each ReLU rule, and the ``F.max_unpool2d`` variant; a
``CrosscheckReport`` holds them all, passes when the worst relative error is within
``TOLERANCE`` for the dtype, prints as a table and converts to a dict (``as_dict``) for
JSON.  ``minideconv.interop.torch.crosscheck`` fills it in.

Needs neither PyTorch nor Captum: a report is plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ...rules import NAMES as RULE_NAMES

#: the largest relative error that passes, per dtype of the images
TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}


@dataclass
class Error:
    """max |ours − reference| and that divided by max |reference|."""

    abs: float
    rel: float

    @classmethod
    def between(cls, ours, reference) -> "Error":
        diff = float(np.max(np.abs(ours - reference))) if ours.size else 0.0
        scale = float(np.max(np.abs(reference))) if reference.size else 0.0
        return cls(diff, diff / scale if scale > 0 else diff)


@dataclass
class LayerCheck:
    """The cross-check of one layer's output.

    ``unit`` is the (channel, h, w) (or (unit,) after Flatten) of image 0's strongest
    activation, the one projected back; ``projections[rule]`` compares minideconv's
    projection with PyTorch/Captum's; ``unpool_variant`` compares the deconvnet built on
    ``F.max_unpool2d`` with the true transpose (minideconv's deconvnet)."""

    index: int
    name: str
    unit: Tuple[int, ...]
    forward: Error
    projections: Dict[str, Error] = field(default_factory=dict)
    unpool_variant: Optional[Error] = None


@dataclass
class CrosscheckReport:
    """Every checked layer's ``LayerCheck``, in the images' dtype; ``passed`` when the
    worst relative error (``worst``) is within ``tolerance``."""

    dtype: str
    tolerance: float
    layers: List[LayerCheck]
    #: what the projections were compared with (shown in the report's first line)
    reference: str = "PyTorch/Captum"

    @property
    def worst(self) -> float:
        """The largest relative error among forward activations and projections."""
        errors = [c.forward.rel for c in self.layers]
        errors += [e.rel for c in self.layers for e in c.projections.values()]
        return max(errors, default=0.0)

    @property
    def passed(self) -> bool:
        return self.worst <= self.tolerance

    def as_dict(self) -> dict:
        return {
            "dtype": self.dtype, "tolerance": self.tolerance, "passed": self.passed,
            "worst_rel": self.worst,
            "layers": [{
                "index": c.index, "name": c.name, "unit": list(c.unit),
                "forward": vars(c.forward),
                "projections": {rule: vars(e) for rule, e in c.projections.items()},
                "unpool_variant": None if c.unpool_variant is None else vars(c.unpool_variant),
            } for c in self.layers],
        }

    def __str__(self) -> str:
        rules = [r for r in RULE_NAMES if any(r in c.projections for c in self.layers)]
        width = max([22] + [len(c.name) + 2 for c in self.layers])
        head = (f"{'layer':<{width}}{'unit':<14}{'forward':>10}"
                + "".join(f"{r:>11}" for r in rules) + f"{'unpool var.':>13}")
        lines = [f"cross-check against {self.reference}, {self.dtype}: max relative error "
                 f"per layer (tolerance {self.tolerance:g})", head, "-" * len(head)]
        for c in self.layers:
            row = f"{c.name:<{width}}{str(tuple(c.unit)):<14}{c.forward.rel:>10.1e}"
            row += "".join(f"{c.projections[r].rel:>11.1e}" if r in c.projections
                           else f"{'-':>11}" for r in rules)
            row += (f"{c.unpool_variant.rel:>13.1e}" if c.unpool_variant is not None
                    else f"{'-':>13}")
            lines.append(row)
        lines.append(f"{'PASSED' if self.passed else 'FAILED'}: worst relative error "
                     f"{self.worst:.2e}")
        lines.append("'unpool var.': a deconvnet using F.max_unpool2d (overwrites shared "
                     "switches) vs the true transpose; nonzero when pooling windows overlap. "
                     "Informational, not part of PASSED.")
        return "\n".join(lines)
