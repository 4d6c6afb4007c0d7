"""Sanity checks of a projection: what does the picture owe to the image, what to the weights?

A projection (``minideconv.visualize.project``) is made of two things: the *trace* of the
forward pass on this image (the pooling switches and the ReLU inputs, ``Network.trace``)
and the *learned weights* that the way back multiplies by (Wᵀ at every convolution).  Two
experiments take them apart.

``randomization_test`` — model randomization (Adebayo et al. 2018, "Sanity checks for
saliency maps").  Redraw the weights of the layers below the chosen unit and see how much
the map changes, measured against the trained map by a rank correlation and SSIM.

* ``mode="cascade"``: from the top layer down, cumulatively (step k has the k topmost
  layers with weights redrawn); ``mode="independent"``: one layer at a time, the others
  trained.
* ``where="backward"``: the forward pass stays the trained one (its switches, its ReLU
  masks, the activation's value), and only the weights *used on the way back* are redrawn.
  This is Nie et al. (2018)'s question: how much of the picture is the trained forward
  trace, how much the learned weights.
* ``where="network"``: the weights are redrawn in the network itself and the forward pass
  is re-run, so the switches, masks and the activation's value change too (Adebayo et
  al.'s experiment).

``switch_swap`` — the projection of one image's unit computed with *another* image's
switches and ReLU masks (the other image's forward trace).  How much of the picture comes
from the image's own trace.

How weights are redrawn (``randomize``).  Each redrawn layer keeps its type, hyper-
parameters, shapes and dtype; its weight array is replaced by i.i.d. normal values with
mean 0 and the standard deviation of the trained array (σ = ``weight.std()``), its bias
likewise with the trained bias's standard deviation, so that every layer keeps its own
scale.  The draws of layer i come from
``numpy.random.default_rng((RNG_TAG, seed, i))``: they depend on the seed and the layer
index only, so one seed gives the same numbers on every run, and a layer gets the same
random weights in the cascade and in the independent test.  The fixed tag keeps them off
the streams a network is initialised from: NumPy's ``default_rng((0, 0))`` *is*
``default_rng(0)`` (trailing zeros do not change the seed), which draws the first layer of
``models.build_model(seed=0)``: the initial pattern of the shipped network's first layer,
whose trained weights still correlate 0.19 with it (Pearson's r over its 1 200
weights).  (The biases never enter the way back, so they matter for ``where="network"``
only.)

How maps are compared (``similarity``).  Every number is computed *inside the unit's
receptive field* (``Network.receptive_field(layer).window(position)``, clipped to the
image; the whole image after a ``Flatten``), over all channels.  Outside it every
projection is exactly zero, and that shared region alone makes unrelated maps look alike
to the rank correlation of |map| and to SSIM (lesson 9 measures it).

* ``spearman``: the signed rank correlation with the trained map (Spearman's ρ, ties
  ranked by their mean rank: ``ranks``);
* ``spearman_abs``: the rank correlation of the magnitudes |map|;
* ``ssim``: scikit-image's ``structural_similarity`` of the two maps, each first divided
  by its own max |v| in the window so that both lie in [−1, 1], with ``data_range=2``.
  A projection's scale follows the activation and the random draw, so only its pattern
  is compared, and SSIM's constants C₁ = (0.01·2)², C₂ = (0.03·2)² are fixed fractions
  of the range.  The sliding window is uniform, ``SSIM_WINDOW`` pixels on a side, smaller
  for smaller receptive fields (NaN under 3 × 3 pixels, where SSIM is undefined).

A map that is constant in the window — zero, when the unit is off and nothing reaches
the pixels — has similarity 0 with every map on all three measures (not NaN).

Why a map looks like the image (``pasted_filters``, ``without_max_pools``).  Below the
first convolution (layer 0) every projection is p = W₀ᵀ r₀: a sum of first-layer filters
w_c, each pasted at a unit u = (c, i, j) with the weight r₀[u] that the way back brings
there.  ``pasted_filters`` returns r₀ beside z = W₀x + b, the first layer's output on
this image, and the share of |r₀| at units where r₀ has the sign of z: where a filter
is pasted with the sign with which it matched the image.  Under guided backprop r₀ ≥ 0
lands only where z > 0 (share 1); the deconvnet's r₀ ≥ 0 lands where the switches put
it; the gradient's has both signs.  ``without_max_pools`` gives the network the same
weights and no switches: each max-pool removed and its stride moved to the next
convolution (Springenberg et al. 2014's all-convolutional design).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

import numpy as np

from .. import checks
from ..nn import Conv2d, Linear, MaxPool2d, Network, Sequential
from ..rules import get_rule
from . import projection   # its seed(): the parameter `seed` here is the random one
from .projection import check_layer, unit_positions

__all__ = ["MODES", "WHERE", "RNG_TAG", "SSIM_WINDOW", "Similarity",
           "RandomizationResult", "randomize", "weight_layers", "receptive_window",
           "ranks", "similarity", "likeness", "randomization_test", "switch_swap", "PastedFilters",
           "pasted_filters", "without_max_pools"]

#: ``randomization_test``'s modes: top layer down, cumulative; or one layer at a time.
MODES = ("cascade", "independent")
#: Where the weights are redrawn: on the way back only, or in the whole network.
WHERE = ("backward", "network")
#: The first word of every random seed (``randomize``): "SANI" in ASCII.
RNG_TAG = 0x53414E49
#: Side of SSIM's (uniform) sliding window; smaller receptive fields use the largest odd
#: side that fits.
SSIM_WINDOW = 7

_WEIGHTED = (Conv2d, Linear)


# --------------------------------------------------------------------------- checks

def _check_image(net, image, name="image"):
    """One image (C, H, W) of the weights' dtype, from an array or a ``load_image`` source."""
    if not isinstance(image, np.ndarray):
        from ..data import load_image
        image = load_image(image)
    checks.check_float_array(image, name, ndim=3, layout="one image (C, H, W)")
    if net.input_shape is not None and tuple(image.shape) != net.input_shape:
        raise ValueError(f"{name} must have the network's input shape {net.input_shape}, "
                         f"got {image.shape}")
    dtype = next((a.dtype for layer in net.layers for a in layer.params().values()), None)
    if dtype is not None and image.dtype != dtype:
        raise TypeError(f"{name} must have the weights' dtype {dtype}, got {image.dtype} "
                        f"(use net.astype({image.dtype}) or {name}.astype({dtype}))")
    return image


# --------------------------------------------------------------------------- weights

def weight_layers(net: Network, layer: Optional[int | str] = None) -> Tuple[int, ...]:
    """Indices of the layers with weights (``Conv2d``, ``Linear``) at or below ``layer``
    (default: up to ``net.output_layer()``, the logits before a closing Softmax), from the
    top down — the order of the cascade."""
    last = net.output_layer() if layer is None else check_layer(net, layer)
    return tuple(i for i in range(last, -1, -1) if isinstance(net.layers[i], _WEIGHTED))


def randomize(net: Network, layers: Iterable[int | str], seed: int = 0) -> Network:
    """A copy of ``net`` whose layers ``layers`` have redrawn weights (see the module
    docstring: i.i.d. normal, mean 0, each array's own trained standard deviation, from
    ``numpy.random.default_rng((RNG_TAG, seed, i))`` for layer i).  The other layers are
    the same objects as in ``net``; ``net`` itself is not changed."""
    seed = checks.check_int(seed, "seed", 0)
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minideconv.nn network (Sequential or Graph), got "
                        f"{type(net).__name__}")
    chosen = set()
    for i in layers:
        i = check_layer(net, i)
        if not isinstance(net.layers[i], _WEIGHTED):
            raise ValueError(f"layers must name layers with weights (Conv2d, Linear): "
                             f"{net.describe(i)} has none")
        chosen.add(i)
    new = list(net.layers)
    for i in sorted(chosen):
        new[i] = _redrawn(net.layers[i], seed, i)
    return net.with_layers(new)


def _redrawn(old, seed, index):
    """A copy of layer ``old`` (layer ``index`` of its network) with redrawn arrays."""
    rng = np.random.default_rng((RNG_TAG, seed, index))
    arrays = {}
    for name in old.param_names:       # weight first, then bias: a fixed order
        value = getattr(old, name)
        if value is not None:
            sigma = float(np.std(value, dtype=np.float64))
            arrays[name] = (sigma * rng.standard_normal(value.shape)).astype(value.dtype)
    return type(old).from_config(old.config(), arrays)


# --------------------------------------------------------------------------- similarity

@dataclass(frozen=True)
class Similarity:
    """Three similarities of a map with a reference map, inside a window."""

    spearman: float       # signed rank correlation
    spearman_abs: float   # rank correlation of |map|
    ssim: float           # structural similarity of the maps scaled to max |v| = 1


def receptive_window(net: Network, layer: int | str, position, image_hw) -> Tuple[int, ...]:
    """(r0, r1, c0, c1), half-open, of the receptive field of unit ``position`` of
    ``net.layers[layer]``'s output, clipped to an image of ``image_hw`` (the whole image
    after a ``Flatten``, or when ``position`` is None)."""
    height, width = (int(v) for v in image_hw)
    field = net.receptive_field(check_layer(net, layer))
    if field is None or position is None:
        return 0, height, 0, width
    r0, r1, c0, c1 = field.window(tuple(position))
    return max(r0, 0), min(r1, height), max(c0, 0), min(c1, width)


def ranks(values) -> np.ndarray:
    """The ranks 0 … n−1 of a 1-D array, ties sharing the mean of their ranks (the
    ranking of Spearman's correlation, as ``scipy.stats.rankdata`` − 1)."""
    values = np.asarray(values).ravel()
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]     # where each run of ties starts
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, len(values)])
    out = np.empty(len(values))
    out[order] = np.repeat(starts + (counts - 1) / 2, counts)
    return out


def _rank_correlation(a, b):
    """Spearman's ρ: the correlation of the ranks; 0 when either map is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:   # a constant map: no ranking to compare
        return 0.0
    x, y = ranks(a), ranks(b)
    x -= x.mean()
    y -= y.mean()
    return float(x @ y / np.sqrt((x @ x) * (y @ y)))


def _ssim(a, b):
    """SSIM of two (C, h, w) maps, each scaled to max |v| = 1 (data_range 2)."""
    from skimage.metrics import structural_similarity
    scale_a, scale_b = np.abs(a).max(), np.abs(b).max()
    if np.ptp(a) == 0 or np.ptp(b) == 0 or scale_a == 0 or scale_b == 0:
        return 0.0
    side = min(SSIM_WINDOW, *a.shape[1:])
    side -= 1 - side % 2                   # odd
    if side < 3:
        return float("nan")                # a window under 3 pixels: SSIM is undefined
    return float(structural_similarity(a / scale_a, b / scale_b, data_range=2.0,
                                       channel_axis=0, win_size=side))


def similarity(reference, other, window=None) -> Similarity:
    """``Similarity`` of ``other`` with ``reference``, two maps (C, H, W) of the same
    shape, inside ``window`` = (r0, r1, c0, c1) (clipped to the image; the whole map when
    None).  A constant map (all zero) scores 0 on every measure."""
    reference = np.asarray(reference, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if reference.ndim != 3:
        raise ValueError(f"reference must be a map (C, H, W), got shape {reference.shape}")
    if other.shape != reference.shape:
        raise ValueError(f"other must have the shape of reference {reference.shape}, "
                         f"got {other.shape}")
    height, width = reference.shape[1:]
    if window is None:
        window = (0, height, 0, width)
    if len(window) != 4:
        raise ValueError(f"window must be (r0, r1, c0, c1), got {window!r}")
    r0, r1, c0, c1 = (int(v) for v in window)
    r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, height), min(c1, width)
    if r1 <= r0 or c1 <= c0:
        raise ValueError(f"window must overlap the {height}x{width} map, got {window!r}")
    a = reference[:, r0:r1, c0:c1]
    b = other[:, r0:r1, c0:c1]
    return Similarity(spearman=_rank_correlation(a.ravel(), b.ravel()),
                      spearman_abs=_rank_correlation(np.abs(a).ravel(), np.abs(b).ravel()),
                      ssim=_ssim(a, b))


def likeness(image, projection, window=None) -> float:
    """How much a map looks like the image: the signed rank correlation (``similarity``'s
    ``spearman``), inside ``window``, between ``projection`` and ``image`` with each of
    its channels centred on its mean over the window (a map is compared with the
    image's pattern, not with its brightness).  Both (C, H, W)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {image.shape}")
    height, width = image.shape[1:]
    r0, r1, c0, c1 = (0, height, 0, width) if window is None else (int(v) for v in window)
    r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, height), min(c1, width)
    centre = image[:, r0:r1, c0:c1].mean(axis=(1, 2), keepdims=True) if r1 > r0 and \
        c1 > c0 else 0.0
    return similarity(image - centre, projection, window).spearman


# --------------------------------------------------------------------------- projections

def _unit(net, trace, layer, channel, position):
    """The checked channel and position of the unit of a one-image ``trace``: ``position``,
    or the image's maximum when None (``projection.unit_positions``); None after a
    ``Flatten``."""
    activation = trace.outputs[layer]
    channel, positions = unit_positions(activation, channel, position, net.describe(layer))
    return channel, None if activation.ndim == 2 else tuple(int(v) for v in positions[0])


def switch_swap(net: Network, image, other, layer: int | str, channel: int,
                rule: str = "deconvnet", position: Optional[Tuple[int, int]] = None):
    """The projection of ``image``'s unit computed with ``other``'s forward trace.

    The seed is ``image``'s activation at ``(channel, position)`` of ``net.layers[layer]``
    (``position=None``: its maximum on ``image``), as in ``visualize.project``; it is passed
    down by ``net.backward`` through the records of ``net.trace(other)`` — ``other``'s
    pooling switches and ReLU inputs (the deconvnet rule reads only the switches, backprop
    and guided backprop the masks too).  With ``other`` = ``image`` this is exactly
    ``visualize.project(net, image, layer, channel, position, rule)``.

    Every step of the way back is linear or positively homogeneous in the signal, so the
    result is the projection of the same unit on ``other`` times a_image / a_other when
    a_other > 0: the image enters the picture only through its trace and that one value.

    Returns a (C, H, W) array.
    """
    rule = get_rule(rule)
    layer = check_layer(net, layer)
    image = _check_image(net, image, "image")
    other = _check_image(net, other, "other")
    if other.shape != image.shape:
        raise ValueError(f"other must have image's shape {image.shape}, got {other.shape}")
    own = net.trace(image[None], upto=layer)
    channel, position = _unit(net, own, layer, channel, position)
    theirs = own if other is image else net.trace(other[None], upto=layer)
    signal = projection.seed(own.outputs[layer], channel, position)
    return net.backward(signal, theirs, start=layer, rule=rule)[0]


@dataclass(frozen=True)
class RandomizationResult:
    """What ``randomization_test`` measured, one entry per step (step 0: ``"trained"``).

    ``randomized[k]`` lists the layers whose weights are redrawn at step k (empty at step
    0); ``maps[k]`` (C, H, W) is the projection at step k; ``activations[k]`` the value of
    the unit that seeded it (the trained value throughout for ``where="backward"``);
    ``spearman``, ``spearman_abs`` and ``ssim`` compare ``maps[k]`` with ``maps[0]``
    inside ``window`` (the unit's receptive field clipped to the image; at step 0 the
    trained map with itself: 1, or 0 when it is constant there).  The arrays are
    read-only."""

    steps: Tuple[str, ...]
    randomized: Tuple[Tuple[int, ...], ...]
    maps: np.ndarray
    activations: np.ndarray
    spearman: np.ndarray
    spearman_abs: np.ndarray
    ssim: np.ndarray
    layer: int
    channel: int
    position: Optional[Tuple[int, int]]
    window: Tuple[int, int, int, int]
    rule: str
    mode: str
    where: str
    seed: int


def _read_only(a):
    a = np.asarray(a)
    a.setflags(write=False)
    return a


def randomization_test(net: Network, image, layer: int | str, channel: int,
                       rule: str = "deconvnet", position: Optional[Tuple[int, int]] = None,
                       mode: str = "cascade", where: str = "backward",
                       seed: int = 0) -> RandomizationResult:
    """Model randomization of one unit's projection (Adebayo et al. 2018).

    Parameters
    ----------
    net : a ``minideconv.nn`` network, ``Sequential`` or ``Graph`` (the trained network;
        it is not changed)
    image : one image (C, H, W) of the weights' dtype, or a ``data.load_image`` source
    layer, channel, position, rule : the unit and the ReLU rule, as ``visualize.project``;
        ``position=None`` takes the unit where the *trained* network peaks on ``image``,
        and every step projects that same unit (so every map has the same window)
    mode : ``"cascade"`` (top layer down, cumulative) or ``"independent"`` (one layer at a
        time); the steps run over the layers with weights at or below ``layer``
    where : ``"backward"`` (the trained forward pass, random weights on the way back) or
        ``"network"`` (random weights in the network, forward pass re-run)
    seed : the random draws (``randomize``)

    Returns a ``RandomizationResult``; step 0 is ``visualize.project``'s map exactly.
    The module docstring says how weights are redrawn and how maps are compared.
    """
    rule = get_rule(rule)
    layer = check_layer(net, layer)
    mode = checks.check_choice(mode, "mode", MODES)
    where = checks.check_choice(where, "where", WHERE)
    seed = checks.check_int(seed, "seed", 0)
    image = _check_image(net, image)
    below = weight_layers(net, layer)
    if not below:
        raise ValueError(f"layer must have a layer with weights at or below it: "
                         f"{net.describe(layer)} has none, so nothing can be redrawn")
    trained = net.trace(image[None], upto=layer)
    channel, position = _unit(net, trained, layer, channel, position)

    if mode == "cascade":
        randomized = [below[:k] for k in range(len(below) + 1)]
    else:
        randomized = [()] + [(i,) for i in below]
    steps = ["trained"] + [net.describe(chosen[-1]) for chosen in randomized[1:]]

    redrawn = {i: _redrawn(net.layers[i], seed, i) for i in below}  # = randomize's draws
    maps, activations = [], []
    for chosen in randomized:
        changed = net.with_layers([redrawn[i] if i in chosen else layer
                                   for i, layer in enumerate(net.layers)]) if chosen else net
        trace = trained if (where == "backward" or not chosen) else \
            changed.trace(image[None], upto=layer)
        seed_signal = projection.seed(trace.outputs[layer], channel, position)
        activations.append(seed_signal.sum())
        maps.append(changed.backward(seed_signal, trace, start=layer, rule=rule)[0])

    window = receptive_window(net, layer, position, image.shape[1:])
    r0, r1, c0, c1 = window
    itself = float(np.ptp(maps[0][:, r0:r1, c0:c1]) > 0)   # 1, or 0 for a constant map
    scores = [Similarity(itself, itself, itself)] + [similarity(maps[0], m, window)
                                                     for m in maps[1:]]
    return RandomizationResult(
        steps=tuple(steps), randomized=tuple(tuple(c) for c in randomized),
        maps=_read_only(np.stack(maps)), activations=_read_only(np.array(activations)),
        spearman=_read_only(np.array([s.spearman for s in scores])),
        spearman_abs=_read_only(np.array([s.spearman_abs for s in scores])),
        ssim=_read_only(np.array([s.ssim for s in scores])),
        layer=layer, channel=channel, position=position, window=window, rule=rule.name,
        mode=mode, where=where, seed=seed)


# --------------------------------------------------------------------------- the mechanism

@dataclass(frozen=True)
class PastedFilters:
    """What a projection is made of below the first convolution (``pasted_filters``).

    ``signal`` (C₀, H₀, W₀) is r₀, what the way back brings to the first layer's output;
    the projection is W₀ᵀ r₀ (``net.layers[0].backward``).  ``output`` is z = W₀x + b
    on the image; ``agreement`` = Σ |r₀| [sign r₀ = sign z] / Σ |r₀| (NaN when r₀ = 0)."""

    signal: np.ndarray
    output: np.ndarray
    agreement: float


def _first_convolution(net):
    if not isinstance(net, Sequential):
        raise TypeError(f"net must be a minideconv.nn.Sequential (its layers one after "
                        f"the other), got {type(net).__name__}")
    if not net.layers or not isinstance(net.layers[0], Conv2d):
        raise ValueError("net must start with a Conv2d (layer 0), got "
                         + (net.describe(0) if net.layers else "no layers"))


def pasted_filters(net: Network, image, layer: int | str, channel: int,
                   rule: str = "deconvnet",
                   position: Optional[Tuple[int, int]] = None) -> PastedFilters:
    """r₀ and z of one unit's projection, as ``visualize.project`` seeds it (the module
    docstring): ``net`` a ``Sequential`` whose layer 0 is a ``Conv2d``, ``layer`` ≥ 1."""
    rule = get_rule(rule)
    _first_convolution(net)
    layer = check_layer(net, layer)
    if layer < 1:
        raise ValueError(f"layer must be above the first convolution (≥ 1), got {layer}")
    image = _check_image(net, image)
    trace = net.trace(image[None], upto=layer)
    channel, position = _unit(net, trace, layer, channel, position)
    signal = projection.seed(trace.outputs[layer], channel, position)
    for i in range(layer, 0, -1):
        signal = net.layers[i].backward(signal, trace.records[i], rule=rule.name)
    r, z = signal[0], trace.outputs[0][0]
    weight = np.abs(r).astype(np.float64)
    total = weight.sum()
    agreement = float(weight[np.sign(r) == np.sign(z)].sum() / total) if total > 0 \
        else float("nan")
    return PastedFilters(signal=_read_only(r), output=_read_only(z), agreement=agreement)


def without_max_pools(net: Network) -> Sequential:
    """``net`` (a ``Sequential``) with every ``MaxPool2d`` removed and its stride given to
    the next layer, which must be a stride-1 ``Conv2d``; every other layer is the same
    object.  Raises ``ValueError`` when a pool is not followed by such a convolution or
    when the new network's shapes after each convolution differ from the old ones."""
    if not isinstance(net, Sequential):
        raise TypeError(f"net must be a minideconv.nn.Sequential, got {type(net).__name__}")
    layers, shapes = list(net.layers), None
    if net.input_shape is not None:
        shapes = net.layer_shapes(net.input_shape)
    new, kept = [], []
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, MaxPool2d):
            after = layers[i + 1] if i + 1 < len(layers) else None
            if not isinstance(after, Conv2d) or tuple(after.stride) != (1, 1):
                raise ValueError(f"net: {net.describe(i)} must be followed by a stride-1 "
                                 f"Conv2d to take its stride, got "
                                 f"{'nothing' if after is None else net.describe(i + 1)}")
            config = dict(after.config(), stride=list(layer.stride))
            arrays = {name: getattr(after, name) for name in after.param_names
                      if getattr(after, name) is not None}
            new.append(type(after).from_config(config, arrays))
            kept.append(i + 1)
            i += 2
            continue
        new.append(layer)
        kept.append(i)
        i += 1
    out = Sequential(*new, input_shape=net.input_shape)
    if shapes is not None:
        for k, old in zip(out.layer_shapes(net.input_shape), kept):
            if tuple(k) != tuple(shapes[old]):
                raise ValueError(f"net: without its pools the output of "
                                 f"{net.describe(old)} would be {tuple(k)}, not "
                                 f"{tuple(shapes[old])}")
    return out
