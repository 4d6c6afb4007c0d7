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
#: a float32 check beyond tolerance still agrees to float32 precision when minideconv's
#: float32 results lie no farther from their float64 values than this many times
#: PyTorch's own (and the float64 check passes)
FLOAT32_DRIFT_FACTOR = 10.0


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
class Float32Judgement:
    """A float32 check beyond tolerance, judged against the float64 truth of both sides:
    ``float64_worst``, the worst relative error of the same check in float64 (minideconv
    against PyTorch); ``ours_drift`` and ``torch_drift``, the worst relative distance of
    each side's float32 results from its own float64 results, over the same quantities
    (one value and map per layer and rule)."""

    float64_worst: float
    float64_tolerance: float
    ours_drift: float
    torch_drift: float
    #: the worst, over the quantities, of ours' drift / max(torch's drift, tolerance)
    drift_ratio: float

    @classmethod
    def of(cls, float32_pairs, float64_pairs, float64_report) -> "Float32Judgement":
        """From the (ours, torch's) pairs of the float32 and float64 checks (same keys)."""
        tolerance = TOLERANCE[np.dtype(np.float32)]
        ours, torch, ratios = [], [], []
        for key, (ours32, torch32) in float32_pairs.items():
            ours64, torch64 = float64_pairs[key]
            ours.append(Error.between(ours32.astype(np.float64), ours64).rel)
            torch.append(Error.between(torch32.astype(np.float64), torch64).rel)
            ratios.append(ours[-1] / max(torch[-1], tolerance))
        return cls(float64_report.worst, float64_report.tolerance, max(ours, default=0.0),
                   max(torch, default=0.0), max(ratios, default=0.0))

    @property
    def agrees(self) -> bool:
        return self.float64_worst <= self.float64_tolerance and \
            self.drift_ratio <= FLOAT32_DRIFT_FACTOR


@dataclass
class CrosscheckReport:
    """Every checked layer's ``LayerCheck``, in the images' dtype; ``passed`` when the
    worst relative error (``worst``) is within ``tolerance``."""

    dtype: str
    tolerance: float
    layers: List[LayerCheck]
    #: what the projections were compared with (shown in the report's first line)
    reference: str = "PyTorch/Captum"
    #: what each projection started from at its unit, on both sides ("activation", "one")
    seed_value: str = "activation"
    #: for a float32 check beyond tolerance: the same check against the float64 truth
    float32_judged: Optional[Float32Judgement] = None

    def units(self) -> Dict[int, Tuple[int, ...]]:
        """{layer index: the unit projected back}."""
        return {c.index: tuple(c.unit) for c in self.layers}

    @property
    def worst(self) -> float:
        """The largest relative error among forward activations and projections."""
        errors = [c.forward.rel for c in self.layers]
        errors += [e.rel for c in self.layers for e in c.projections.values()]
        return max(errors, default=0.0)

    @property
    def within_tolerance(self) -> bool:
        return self.worst <= self.tolerance

    @property
    def passed(self) -> bool:
        """Within tolerance — or, in float32, right to float32 precision on both sides."""
        return self.within_tolerance or (self.float32_judged is not None
                                         and self.float32_judged.agrees)

    @property
    def verdict(self) -> str:
        """The report's last line: PASSED, AGREES TO FLOAT32 PRECISION or FAILED, and why."""
        worst = f"worst relative error {self.worst:.2e}"
        judged = self.float32_judged
        if self.within_tolerance:
            return f"PASSED: {worst}"
        if judged is None:
            return (f"FAILED: {worst}" + ("; rerun in float64 to see whether float32 "
                                          "rounding is the cause" if self.dtype == "float32"
                                          else ""))
        detail = (f"in float64 the same check gives {judged.float64_worst:.2e} (tolerance "
                  f"{judged.float64_tolerance:g}); between float32 and float64, "
                  f"minideconv's results move {judged.ours_drift:.2e} and PyTorch's "
                  f"{judged.torch_drift:.2e} (worst ratio {judged.drift_ratio:.2g}, at most "
                  f"{FLOAT32_DRIFT_FACTOR:g} agrees)")
        if judged.agrees:
            return (f"AGREES TO FLOAT32 PRECISION: {worst} beyond the float32 tolerance, "
                    f"but both sides are right to float32 precision: {detail}")
        return f"FAILED: {worst}; {detail}"

    def as_dict(self) -> dict:
        return {
            "dtype": self.dtype, "tolerance": self.tolerance, "passed": self.passed,
            "worst_rel": self.worst, "seed_value": self.seed_value, "verdict": self.verdict,
            "float32_judged": None if self.float32_judged is None else
            dict(vars(self.float32_judged), agrees=self.float32_judged.agrees),
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
        seeded = "the activation" if self.seed_value == "activation" else "1"
        lines = [f"cross-check against {self.reference}, {self.dtype}, projections seeded "
                 f"with {seeded}: max relative error per layer (tolerance "
                 f"{self.tolerance:g})", head, "-" * len(head)]
        for c in self.layers:
            row = f"{c.name:<{width}}{str(tuple(c.unit)):<14}{c.forward.rel:>10.1e}"
            row += "".join(f"{c.projections[r].rel:>11.1e}" if r in c.projections
                           else f"{'-':>11}" for r in rules)
            row += (f"{c.unpool_variant.rel:>13.1e}" if c.unpool_variant is not None
                    else f"{'-':>13}")
            lines.append(row)
        lines.append(self.verdict)
        lines.append("'unpool var.': a deconvnet using F.max_unpool2d (overwrites shared "
                     "switches) vs the true transpose; nonzero when pooling windows overlap. "
                     "Informational, not part of PASSED.")
        return "\n".join(lines)
