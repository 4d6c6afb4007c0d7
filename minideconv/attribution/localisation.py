"""Ground truth for attribution maps: does a map point at the object, put its mass on it,
and name the pixels the logit needs?

The drawn dataset knows every object's mask (``data.load_dataset(..., masks=True)``), so
each map can be measured against the pixels the object really covers.  Every measure
here reads one *heatmap* per image, R (N, H, W) ≥ 0 (``heatmap``), whatever the method:

* ``pointing_game`` (Zhang et al. 2018, "Top-down neural attention by excitation
  backprop"; TorchRay's ``PointingGame``): a hit when the heatmap's maximum lies on the
  object (or within ``tolerance`` pixels of it);
* ``relevance_mass`` (Arras et al. 2022, "CLEVR-XAI"): the share of the heatmap's mass
  that lies on the object, Σ_mask R / Σ R;
* ``deletion_curve``, ``deletion_auc`` (Petsiuk et al. 2018, "RISE"): the target logit as
  the pixels are removed from the most relevant down; a map that names the pixels the
  logit needs makes it fall fast (a small area).

Two maps that know nothing of the network are the floor every method must beat
(TorchRay's table has the first): ``centre_map`` (a Gaussian at the image's centre — the
drawn objects sit near the centre) and ``random_map``.  ``localisation_table`` measures
methods and both baselines on the same images and prints one row per method.

A *method* is any callable ``method(net, images, targets) -> maps``: images (N, C, H, W),
targets (N,) class indices, maps (N, C, H, W) in input space or (N, h, w) coarse maps
(Grad-CAM's).

Quantus 0.6.0's ``PointingGame`` and ``RelevanceMassAccuracy`` give the same numbers on
the same heatmaps and masks (the tests check it; the one difference, ties, is in
``pointing_game``).  It installs beside torch 2.13 as ``pip install --no-deps
quantus==0.6.0`` and ``pip install pandas opencv-python-headless scikit-learn`` (plain
``pip install quantus`` asks for the desktop opencv-python).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping

import numpy as np

from .. import checks
from ..ops import upsample_bilinear2d
from .targets import check_network, check_targets, logits_of

__all__ = ["REDUCTIONS", "BASELINES", "POINTING_TOLERANCE", "DELETION_STEPS", "RNG_TAG",
           "heatmap", "upsampled", "pointing_game", "relevance_mass", "deletion_order",
           "deletion_curve", "deletion_auc", "centre_map", "random_map", "LocalisationTable",
           "localisation_table"]

#: How ``heatmap`` pools the channels of an input-space map.
REDUCTIONS = ("abs", "positive")
#: What ``deletion_curve`` puts in place of a removed pixel.
BASELINES = ("mean", "zero")
#: The pointing game's default tolerance in pixels (see ``pointing_game``).
POINTING_TOLERANCE = 0
#: The number of deletion steps (each removes 1/steps of the pixels).
DELETION_STEPS = 16
#: The first word of ``random_map``'s seeds: "LOCA" in ASCII, off every other stream.
RNG_TAG = 0x4C4F4341


# --------------------------------------------------------------------------- heatmaps

def heatmap(maps, image_hw, reduce: str = "abs") -> np.ndarray:
    """One saliency per image, (N, H, W) float64, from any method's maps.

    * Input-space maps (N, C, H, W), ``reduce="abs"`` (the default): R = Σ_c |m_c|.  A
      map's sign and its colour channels mix two things a mask cannot judge — which way a
      pixel's colour pushes the logit, and which colour — so R keeps only how much each
      pixel matters.  ``reduce="positive"``: R = max(Σ_c m_c, 0), the pixels that speak
      *for* the class (Arras et al. 2022 pool the channels and count positive relevance).
    * Coarse maps (N, h, w) (Grad-CAM's): upsampled bilinearly to ``image_hw``
      (``ops.upsample_bilinear2d``, align_corners=False — Grad-CAM's own upsampling),
      then ``"abs"`` takes |·| and ``"positive"`` max(·, 0); Grad-CAM's maps are ≥ 0
      already, so both leave them as they are.

    Every measure of this module reads R ≥ 0, so the two choices are the whole story.
    """
    reduce = checks.check_choice(reduce, "reduce", REDUCTIONS)
    height, width = _check_hw(image_hw)
    maps = np.asarray(maps)
    checks.check_float_array(maps, "maps")
    maps = maps.astype(np.float64)
    if maps.ndim == 4:
        if maps.shape[2:] != (height, width):
            raise ValueError(f"maps (N, C, H, W) must have the image's size {height}x"
                             f"{width}, got shape {maps.shape} (a coarse map is (N, h, w))")
        pooled = np.abs(maps).sum(axis=1) if reduce == "abs" else maps.sum(axis=1)
    elif maps.ndim == 3:
        pooled = upsampled(maps, (height, width))
        if reduce == "abs":
            pooled = np.abs(pooled)
    else:
        raise ValueError(f"maps must be (N, C, H, W) input-space maps or (N, h, w) coarse "
                         f"maps, got shape {maps.shape}")
    return np.maximum(pooled, 0.0) if reduce == "positive" else pooled


def upsampled(coarse, image_hw) -> np.ndarray:
    """Coarse maps (N, h, w) at the image's size (N, H, W), float64: bilinear,
    align_corners=False (``ops.upsample_bilinear2d``, as Grad-CAM upsamples); a copy
    when they have that size already."""
    height, width = _check_hw(image_hw)
    coarse = np.asarray(coarse, dtype=np.float64)
    if coarse.shape[1:] == (height, width):
        return coarse.copy()
    return upsample_bilinear2d(coarse[:, None], size=(height, width))[:, 0]


def _check_hw(image_hw):
    if len(tuple(image_hw)) != 2 or not all(checks.is_int(v) and v > 0 for v in image_hw):
        raise ValueError(f"image_hw must be (H, W), two positive ints, got {image_hw!r}")
    return int(image_hw[0]), int(image_hw[1])


def _check_heat(heat, masks=None):
    """heat (N, H, W) finite and ≥ 0, as float64; masks (N, H, W) bool of its shape."""
    heat = np.asarray(heat)
    checks.check_float_array(heat, "heat", ndim=3, layout="one heatmap per image (N, H, W)")
    if not np.all(np.isfinite(heat)) or np.any(heat < 0):
        raise ValueError("heat must be finite and ≥ 0 (use heatmap(maps, image_hw) to turn "
                         "a method's maps into one)")
    if masks is None:
        return heat.astype(np.float64)
    masks = np.asarray(masks)
    if masks.dtype != bool:
        raise TypeError(f"masks must be a bool array (N, H, W), got dtype {masks.dtype}")
    if masks.shape != heat.shape:
        raise ValueError(f"masks must have heat's shape {heat.shape}, got {masks.shape}")
    return heat.astype(np.float64), masks


# --------------------------------------------------------------------------- the measures

def pointing_game(heat, masks, tolerance: float = POINTING_TOLERANCE) -> np.ndarray:
    """Per image, 1.0 for a hit and 0.0 for a miss (N,): the heatmap's maximum
    p* = argmax R (the first in scan order, row by row, when several pixels tie — the
    point ``torch.argmax`` gives TorchRay's benchmark) is a hit when some pixel q of the
    mask lies within ``tolerance`` pixels of it, |p* − q|₂ ≤ tolerance.

    ``tolerance=0`` (the default) is the plain game: p* itself must be on the mask.  The
    drawn masks are exact, not boxes, and the maps have the image's resolution, so no
    margin is needed; TorchRay's 15 px at 224 × 224 would be about 2 px here
    (``tolerance=2``), a disc of 13 pixels around p* that covers most of a bar's width.
    TorchRay accepts |p* − q| < τ (strict), so its τ = 0 accepts nothing; here
    ``tolerance`` t accepts the same integer offsets as TorchRay's τ with t < τ ≤ √(t²+1).

    A constant heatmap (all zero, say) points nowhere and counts as a miss: taking its
    first pixel would score the map by where the object happens to be.  (Quantus's
    ``PointingGame`` counts a hit when *any* of the tied maxima is on the mask, so there
    a constant map hits every object; both agree on maps without ties.)  An empty mask
    gives NaN (nothing to point at)."""
    heat, masks = _check_heat(heat, masks)
    if not (isinstance(tolerance, (int, float, np.integer, np.floating))
            and not isinstance(tolerance, bool) and tolerance >= 0):
        raise ValueError(f"tolerance must be a number of pixels ≥ 0, got {tolerance!r}")
    n, height, width = heat.shape
    flat = heat.reshape(n, -1)
    point = flat.argmax(axis=1)                       # the first maximum in scan order
    rows, cols = np.divmod(point, width)
    y, x = np.mgrid[0:height, 0:width]
    near = (y[None] - rows[:, None, None]) ** 2 + (x[None] - cols[:, None, None]) ** 2 \
        <= float(tolerance) ** 2
    hits = np.any(near & masks, axis=(1, 2)).astype(np.float64)
    hits[np.ptp(flat, axis=1) == 0] = 0.0             # a constant map points nowhere
    hits[~masks.reshape(n, -1).any(axis=1)] = np.nan
    return hits


def relevance_mass(heat, masks) -> np.ndarray:
    """Relevance mass accuracy (Arras et al. 2022), per image (N,):

        mass = Σ_{p ∈ mask} R_p / Σ_p R_p        (R ≥ 0, ``heatmap``)

    in [0, 1]: 1 when all of the map lies on the object; a uniform map scores the mask's
    share of the image, |mask| / HW — chance.  An all-zero map has no mass to place:
    NaN (``localisation_table`` counts such maps and leaves them out of its means);
    Quantus's ``RelevanceMassAccuracy`` gives the same numbers (0/0 = NaN there too)."""
    heat, masks = _check_heat(heat, masks)
    total = heat.sum(axis=(1, 2))
    inside = np.where(masks, heat, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)


def deletion_order(heat) -> np.ndarray:
    """The pixels (N, H·W) from the most relevant down: a stable sort of −R, so that
    pixels of equal relevance go in scan order (row by row) — a fixed, documented order
    for the ties of flat regions and all-zero maps."""
    heat = _check_heat(heat)
    return np.argsort(-heat.reshape(len(heat), -1), axis=1, kind="stable")


def _baseline(images, baseline):
    """What replaces a removed pixel: each image's mean colour ("mean"), black ("zero"),
    or a given array of the images' shape."""
    if isinstance(baseline, str):
        baseline = checks.check_choice(baseline, "baseline", BASELINES)
        if baseline == "zero":
            return np.zeros_like(images)
        return np.broadcast_to(images.mean(axis=(2, 3), keepdims=True), images.shape)
    baseline = np.asarray(baseline)
    if baseline.shape != images.shape or baseline.dtype != images.dtype:
        raise ValueError(f"baseline must be 'mean', 'zero' or an array of the images' shape "
                         f"{images.shape} and dtype {images.dtype}, got "
                         f"{baseline.shape} {baseline.dtype}")
    return baseline


def deletion_curve(net, images, targets, heat, steps: int = DELETION_STEPS,
                   baseline="mean", batch_size: int = 256):
    """The target logit as the most relevant pixels are removed (Petsiuk et al. 2018).

    Step k = 0 … ``steps`` removes the first n_k = round(k·P / steps) pixels of
    ``deletion_order(heat)`` (P = H·W pixels, all channels of each): they take the
    baseline's value, x⁽ᵏ⁾ = x ⊙ (1 − M_k) + b ⊙ M_k.  ``baseline="mean"`` (the default)
    is each image's own mean colour: a flat patch of a colour the image already has, not
    a black hole that a network trained on coloured backgrounds may read as an object
    ("zero"); an array of the images' shape (a blurred copy, say) also works.  Every
    method ends on the same image, x⁽ˢᵗᵉᵖˢ⁾ = b.

    Returns ``(fractions, logits)``: fractions (steps + 1,) = n_k / P, logits
    (N, steps + 1) = z_t(x⁽ᵏ⁾) for each image's target t.  The N·(steps + 1) images go
    through the network ``batch_size`` at a time; ``images`` is not written to."""
    check_network(net)
    images = np.asarray(images)
    checks.check_float_array(images, "images", ndim=4, layout="a batch (N, C, H, W)")
    steps = checks.check_int(steps, "steps", 1)
    batch_size = checks.check_int(batch_size, "batch_size", 1)
    n, channels, height, width = images.shape
    if np.shape(heat) != (n, height, width):
        raise ValueError(f"heat must be one heatmap per image {(n, height, width)}, got "
                         f"shape {np.shape(heat)}")
    order = deletion_order(heat)
    base = _baseline(images, baseline)
    pixels = height * width
    counts = np.rint(np.arange(steps + 1) * pixels / steps).astype(np.int64)
    rank = np.empty_like(order)              # rank[n, p]: when pixel p is removed
    np.put_along_axis(rank, order, np.arange(pixels)[None].repeat(n, 0), axis=1)
    rank = rank.reshape(n, 1, height, width)
    logits = np.empty((n, steps + 1))
    # all (image, step) pairs in one stream, cut into batches for the forward passes
    pairs = [(i, k) for i in range(n) for k in range(steps + 1)]
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        idx = np.array([i for i, _ in chunk])
        removed = rank[idx] < counts[[k for _, k in chunk]][:, None, None, None]
        batch = np.where(removed, base[idx], images[idx])
        out = logits_of(net, batch)
        if start == 0:
            targets = check_targets(targets, n, out.shape[1])
        logits[idx, [k for _, k in chunk]] = out[np.arange(len(chunk)), targets[idx]]
    return counts / pixels, logits


def deletion_auc(fractions, logits, normalise: bool = True) -> np.ndarray:
    """The area under each deletion curve (N,), by the trapezoid rule over the removed
    fraction f ∈ [0, 1]:

        AUC = Σ_k (f_{k+1} − f_k) · (y_k + y_{k+1}) / 2,   y_k = z⁽ᵏ⁾ / z⁽⁰⁾

    ``normalise=True`` (the default) divides each curve by the image's own logit z⁽⁰⁾, so
    that every curve starts at 1 and images with large and small logits weigh alike: 1
    for a logit that never falls, 0.5 for one that falls linearly to 0, near 0 for one
    that collapses at once.  Lower is better.  Where z⁽⁰⁾ ≤ 0 (the class was not
    favoured to begin with) the ratio has no meaning: NaN.  ``normalise=False`` gives the
    area of the raw logits."""
    fractions = np.asarray(fractions, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or fractions.shape != (logits.shape[1],):
        raise ValueError(f"fractions (steps + 1,) and logits (N, steps + 1) must match, got "
                         f"{fractions.shape} and {logits.shape}")
    y = logits
    if normalise:
        first = logits[:, :1]
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(first > 0, logits / np.where(first > 0, first, 1.0), np.nan)
    return (np.diff(fractions) * (y[:, 1:] + y[:, :-1]) / 2).sum(axis=1)


# --------------------------------------------------------------------------- baselines

def centre_map(n: int, hw) -> np.ndarray:
    """TorchRay's centre baseline: (n, H, W) copies of a Gaussian at the image's centre,
    R = exp(−|p − c|² / (2σ²)), c = ((H − 1)/2, (W − 1)/2), σ = min(H, W) / 4.  On an even
    side the four middle pixels tie, and the first in scan order is the map's point."""
    n = checks.check_int(n, "n", 0)
    height, width = _check_hw(hw)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    sigma = min(height, width) / 4
    r2 = (y - (height - 1) / 2) ** 2 + (x - (width - 1) / 2) ** 2
    return np.broadcast_to(np.exp(-r2 / (2 * sigma ** 2)), (n, height, width)).copy()


def random_map(n: int, hw, seed: int = 0) -> np.ndarray:
    """(n, H, W) i.i.d. uniform values in [0, 1) from
    ``numpy.random.default_rng((RNG_TAG, seed))``: the same maps for the same seed."""
    n = checks.check_int(n, "n", 0)
    height, width = _check_hw(hw)
    seed = checks.check_int(seed, "seed", 0)
    return np.random.default_rng((RNG_TAG, seed)).random((n, height, width))


# --------------------------------------------------------------------------- the table

@dataclass(frozen=True)
class LocalisationTable:
    """What ``localisation_table`` measured: per method (``names``, in order; the last two
    are "centre" and "random"), per image, ``pointing`` (1 hit / 0 miss), ``mass``
    (relevance mass, NaN for an all-zero map) and ``auc`` (normalised deletion AUC, NaN
    where the target's logit is ≤ 0); ``zero_maps`` counts the all-zero heatmaps.  The
    means ignore NaN.  ``str()`` prints one row per method."""

    names: tuple
    pointing: Dict[str, np.ndarray]
    mass: Dict[str, np.ndarray]
    auc: Dict[str, np.ndarray]
    zero_maps: Dict[str, int]
    count: int
    tolerance: float
    steps: int
    baseline: str
    reduce: str = "abs"
    mask_fraction: float = field(default=float("nan"))

    def mean(self, metric: str) -> Dict[str, float]:
        """{method: the mean of ``metric`` ("pointing", "mass" or "auc") over images}."""
        values = getattr(self, checks.check_choice(metric, "metric", ("pointing", "mass",
                                                                       "auc")))
        return {name: _nanmean(values[name]) for name in self.names}

    def __str__(self):
        pooled = "Σ_c |map_c|" if self.reduce == "abs" else "max(Σ_c map_c, 0)"
        undefined = sum(int(np.isnan(self.auc[name]).sum()) for name in self.names)
        head = (f"Localisation on {self.count} images (the objects' masks cover "
                f"{100 * self.mask_fraction:.1f} % of the pixels; heatmap R = {pooled})\n"
                f"pointing: argmax of R on the object (tolerance {self.tolerance:g} px); "
                f"mass: share of Σ R on the object;\n"
                f"deletion AUC: the logit over its first value while {self.steps} steps "
                f"replace the most relevant pixels\n(baseline: {self.baseline}); lower is "
                f"better" + (f"; {undefined} curves starting at a logit ≤ 0 left out"
                             if undefined else ""))
        width = max(12, *(len(name) for name in self.names))
        columns = ("pointing %", "mass %", "deletion AUC", "zero maps")
        rows = [f"{'method':<{width}}  " + "  ".join(f"{c:>12}" for c in columns)]
        pointing, mass, auc = self.mean("pointing"), self.mean("mass"), self.mean("auc")
        for name in self.names:
            rows.append(f"{name:<{width}}  {100 * pointing[name]:>12.1f}  "
                        f"{100 * mass[name]:>12.1f}  {auc[name]:>12.3f}  "
                        f"{self.zero_maps[name]:>12d}")
        return head + "\n" + "\n".join(rows)


def _nanmean(values):
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def localisation_table(net, images, labels, masks,
                       methods: Mapping[str, Callable], targets=None,
                       tolerance: float = POINTING_TOLERANCE, steps: int = DELETION_STEPS,
                       baseline: str = "mean", reduce: str = "abs", seed: int = 0,
                       batch_size: int = 256) -> LocalisationTable:
    """Every measure for every method on the same images, beside the centre and random
    baselines.

    ``methods`` maps a name to ``method(net, images, targets) -> maps`` (the module
    docstring); each is called on ``batch_size`` images at a time and its maps turned
    into heatmaps by ``heatmap(maps, (H, W), reduce)``.  ``targets`` defaults to
    ``labels``: each map explains the logit of the image's true class.  ``tolerance``
    goes to ``pointing_game``, ``steps`` and ``baseline`` to ``deletion_curve``, ``seed``
    to ``random_map``.  Returns a ``LocalisationTable``."""
    check_network(net)
    reduce = checks.check_choice(reduce, "reduce", REDUCTIONS)
    images = np.asarray(images)
    checks.check_float_array(images, "images", ndim=4, layout="a batch (N, C, H, W)")
    n, _, height, width = images.shape
    masks = np.asarray(masks)
    if masks.dtype != bool or masks.shape != (n, height, width):
        raise ValueError(f"masks must be bool (N, H, W) = {(n, height, width)}, got "
                         f"{masks.dtype} {masks.shape}")
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must be one class per image ({n},), got {labels.shape}")
    targets = labels if targets is None else targets
    if not isinstance(methods, Mapping) or not all(callable(m) for m in methods.values()):
        raise TypeError("methods must be a dict {name: method(net, images, targets)}")
    for name in ("centre", "random"):
        if name in methods:
            raise ValueError(f"methods: {name!r} is the name of a baseline row; rename it")
    batch_size = checks.check_int(batch_size, "batch_size", 1)
    heats: Dict[str, np.ndarray] = {}
    for name, method in methods.items():
        parts = []
        for start in range(0, n, batch_size):
            part = slice(start, start + batch_size)
            chosen = np.asarray(targets)[part] if not checks.is_int(targets) else targets
            parts.append(heatmap(method(net, images[part], chosen), (height, width),
                                 reduce))
        heats[name] = np.concatenate(parts) if parts else np.zeros((0, height, width))
    heats["centre"] = centre_map(n, (height, width))
    heats["random"] = random_map(n, (height, width), seed)
    pointing, mass, auc, zeros = {}, {}, {}, {}
    for name, heat in heats.items():
        pointing[name] = pointing_game(heat, masks, tolerance)
        mass[name] = relevance_mass(heat, masks)
        fractions, logits = deletion_curve(net, images, targets, heat, steps, baseline,
                                           batch_size)
        auc[name] = deletion_auc(fractions, logits)
        zeros[name] = int(np.sum(~heat.reshape(n, -1).any(axis=1)))
    return LocalisationTable(names=tuple(heats), pointing=pointing, mass=mass, auc=auc,
                             zero_maps=zeros, count=n, tolerance=float(tolerance),
                             steps=steps, baseline=str(baseline) if isinstance(
                                 baseline, str) else "given", reduce=reduce,
                             mask_fraction=float(masks.mean()) if n else float("nan"))
