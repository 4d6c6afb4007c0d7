"""The sanity cascade for any attribution method: does its map change when the weights
it should depend on are replaced by random ones?

Adebayo et al. (2018), "Sanity checks for saliency maps": from the top layer with weights
down, cumulatively redraw the weights, and compare each method's map with the one of the
trained network.  A map that explains the network must change; a map that stays the same
shows the image (an edge detector), not what the network learned.

Everything of the experiment but the methods is ``minideconv.visualize.sanity``'s, so that
a projection's cascade (``sanity.randomization_test``) and a method's are the same
experiment:

* the layers, top down: ``sanity.weight_layers(net)`` (every ``Conv2d`` and ``Linear`` up
  to the logits);
* the draws: ``sanity.randomize`` — i.i.d. normal weights with each array's own trained
  standard deviation, from ``default_rng((RNG_TAG, seed, i))`` for layer i, so step k of
  the cascade (the k topmost layers redrawn) has the same random layers as every other
  step that redraws them, and one seed gives the same numbers on every run;
* ``where="network"``: the redrawn network *is* the network at step k — its forward pass
  is re-run, and the method sees only that network (a method cannot read the trained
  network's trace, since it is given none);
* the comparison: ``sanity.similarity`` of the map at step k with the trained one over
  the whole image — the signed rank correlation, the rank correlation of |map| and SSIM
  of the maps scaled to max |v| = 1 — on the signed maps as the method returns them,
  (C, H, W); a coarse map (h, w) (Grad-CAM's) is first upsampled to the image's size
  (``localisation.upsampled``, bilinear, as ``localisation.heatmap`` does before its
  |·|) and compared as one
  channel (1, H, W).  A map that is constant (all zero: the redrawn network gave the
  unit nothing) scores 0 on every measure, as in ``sanity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Tuple

import numpy as np

from .. import checks
from ..visualize.sanity import randomize, similarity, weight_layers
from .localisation import upsampled
from .targets import as_batch, check_network, check_targets, logits_of

__all__ = ["METRICS", "FamilyCascade", "comparable_map", "family_cascade"]

#: The three similarities of every step with the trained map (``sanity.Similarity``).
METRICS = ("spearman", "spearman_abs", "ssim")


@dataclass(frozen=True)
class FamilyCascade:
    """What ``family_cascade`` measured, one entry per step (step 0: ``"trained"``, then
    ``net.describe(i)`` of the lowest layer redrawn so far).

    ``randomized[k]`` lists the layers with redrawn weights at step k (empty at step 0).
    For every method name (``names``, in the order given): ``maps[name]`` (steps, …) the
    method's map at each step as it returned it (input space (C, H, W) or coarse
    (h, w)); ``spearman[name]``, ``spearman_abs[name]``, ``ssim[name]`` (steps,) its
    similarities with its own trained map (``sanity.similarity`` on ``comparable_map``;
    step 0: 1, or 0 for a constant trained map).  ``logits`` (steps,) is the target's
    logit at each step.  The arrays are read-only."""

    steps: Tuple[str, ...]
    randomized: Tuple[Tuple[int, ...], ...]
    names: Tuple[str, ...]
    maps: Dict[str, np.ndarray]
    spearman: Dict[str, np.ndarray]
    spearman_abs: Dict[str, np.ndarray]
    ssim: Dict[str, np.ndarray]
    logits: np.ndarray
    target: int
    seed: int

    def curves(self, name: str) -> Dict[str, np.ndarray]:
        """{metric: (steps,)} of one method: the three similarity curves."""
        if name not in self.names:
            raise ValueError(f"name must be one of the methods {self.names}, got {name!r}")
        return {metric: getattr(self, metric)[name] for metric in METRICS}


def comparable_map(m, image_hw) -> np.ndarray:
    """One map as ``sanity.similarity`` compares it, float64 (C, H, W): an input-space map
    (C, H, W) as it is; a coarse map (h, w) upsampled bilinearly (align_corners=False)
    to ``image_hw`` as (1, H, W) — the sign kept."""
    m = np.asarray(m, dtype=np.float64)
    height, width = (int(v) for v in image_hw)
    if m.ndim == 3:
        if m.shape[1:] != (height, width):
            raise ValueError(f"an input-space map (C, H, W) must have the image's size "
                             f"{height}x{width}, got shape {m.shape}")
        return m
    if m.ndim == 2:
        return upsampled(m[None], (height, width))
    raise ValueError(f"a map must be (C, H, W) in input space or (h, w) coarse, got shape "
                     f"{m.shape}")


def _read_only(a):
    a = np.asarray(a)
    a.setflags(write=False)
    return a


def family_cascade(net, image, target: int, methods: Mapping[str, Callable],
                   seed: int = 0) -> FamilyCascade:
    """The cascading randomization (Adebayo et al. 2018) of every method in ``methods``
    on one image.

    Parameters
    ----------
    net : the trained ``minideconv.nn`` network (not changed)
    image : one image (C, H, W), or a ``data.load_image`` source ("test:17")
    target : the class whose logit every map explains (at every step the same class)
    methods : ``{name: method(net, images, targets) -> maps}``, called with the network
        of each step, the image as a batch of one and ``[target]``
    seed : the random draws (``sanity.randomize``)

    Step k = 0 … L redraws the k topmost of the L layers of ``sanity.weight_layers(net)``
    in the network itself (its forward pass re-run: ``where="network"``); the module
    docstring says how the maps are compared.  Returns a ``FamilyCascade``.
    """
    check_network(net)
    images, single = as_batch(image, "image")
    if not single and len(images) != 1:
        raise ValueError(f"image must be one image (C, H, W), got a batch of "
                         f"{len(images)}; run the cascade once per image")
    image = images[:1]
    seed = checks.check_int(seed, "seed", 0)
    if not isinstance(methods, Mapping) or not methods or \
            not all(callable(m) for m in methods.values()):
        raise TypeError("methods must be a non-empty dict {name: method(net, images, "
                        "targets)}")
    below = weight_layers(net)
    if not below:
        raise ValueError("net has no layer with weights (Conv2d, Linear) to redraw")
    targets = check_targets(target, 1, logits_of(net, image).shape[1])
    randomized = [below[:k] for k in range(len(below) + 1)]
    steps = ("trained",) + tuple(net.describe(chosen[-1]) for chosen in randomized[1:])
    hw = image.shape[2:]
    maps = {name: [] for name in methods}
    logits = []
    for chosen in randomized:
        changed = randomize(net, chosen, seed) if chosen else net
        logits.append(float(logits_of(changed, image)[0, targets[0]]))
        for name, method in methods.items():
            out = np.asarray(method(changed, image.copy(), targets.copy()))
            if out.ndim not in (3, 4) or len(out) != 1:
                raise ValueError(f"method {name!r} must return one map per image, (1, C, "
                                 f"H, W) or (1, h, w), got shape {out.shape}")
            maps[name].append(out[0])
    scores = {metric: {} for metric in METRICS}
    for name, sequence in maps.items():
        trained = comparable_map(sequence[0], hw)
        itself = float(np.ptp(trained) > 0)       # 1, or 0 for a constant trained map
        rows = [(itself,) * 3] + [
            tuple(getattr(similarity(trained, comparable_map(m, hw)), metric)
                  for metric in METRICS) for m in sequence[1:]]
        for j, metric in enumerate(METRICS):
            scores[metric][name] = _read_only(np.array([row[j] for row in rows]))
    return FamilyCascade(
        steps=steps, randomized=tuple(tuple(c) for c in randomized), names=tuple(methods),
        maps={name: _read_only(np.stack(m)) for name, m in maps.items()},
        spearman=scores["spearman"], spearman_abs=scores["spearman_abs"],
        ssim=scores["ssim"], logits=_read_only(np.array(logits)),
        target=int(targets[0]), seed=seed)
