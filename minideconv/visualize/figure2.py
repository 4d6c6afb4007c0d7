"""Zeiler & Fergus's Figure 2: the images where a feature fires most, and their projections.

For one feature map of one layer: its maximum in every image, the ``k`` strongest of
those (at most one per image), and for each the image patch under that unit's receptive
field beside the projection (``minideconv.visualize.projection``) of that single activation, cropped
the same way (``TopPatches``).

* ``top_k_patches``: one feature, the images in memory (``channel_maxima`` finds every
  feature's maxima once for many calls).
* ``top_k``: many features of a layer in one streamed pass, in two halves that can be
  used apart — ``rank_top_k`` keeps every feature's running top-k over batches of images
  (a ``TopKTable``), ``project_top_k`` projects the table's activations, many at once.
  ``batch_top_k`` ranks one batch and ``merge_top_k`` merges two tables (associative:
  ``figure2_dask`` ranks the batches apart and merges them in a tree).

``minideconv.visualize`` is the face that exports these functions.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from .. import checks
from ..nn import Network
from ..rules import get_rule
from .projection import check_channel, check_layer, project_traced
from .unit_window import project_unit_in_window, unit_window_plan, window_area

#: Zeiler & Fergus show each feature's nine strongest activations
TOP_K = 9

#: a unit whose receptive field covers at most this share of its image is traced and
#: projected in that window alone (``unit_window``); the others, through whole images,
#: many at a time and sharing their images' traces
WINDOW_SHARE = 0.5


# --------------------------------------------------------------------------- top-k patches

@dataclass
class TopPatches:
    """The ``k`` images where one feature fires most, strongest first.

    ``values[i]`` is the activation, at ``positions[i]`` = (h, w) of image
    ``indices[i]``; ``windows[i]`` = (row0, row1, col0, col1), half-open, is that unit's
    receptive field in the image (it may stick out of the image); ``patches[i]`` and
    ``projections[i]`` are the image and the projection cropped to it, zero where the
    window lies outside the image (the zero padding the convolutions see there);
    ``inside[i]`` (h, w) is True on the pixels that lie in the image."""

    values: np.ndarray
    indices: np.ndarray
    positions: np.ndarray
    windows: np.ndarray
    patches: np.ndarray
    projections: np.ndarray
    inside: np.ndarray


def window_patch(image, window):
    """The part of ``image`` (C, H, W) under ``window = (r0, r1, c0, c1)``,
    ``image[:, r0:r1, c0:c1]``, where the window may extend past the border (zeros there)."""
    r0, r1, c0, c1 = window
    channels, height, width = image.shape
    out = np.zeros((channels, r1 - r0, c1 - c0), image.dtype)
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = min(r1, height), min(c1, width)
    if bottom > top and right > left:
        out[:, top - r0:bottom - r0, left - c0:right - c0] = image[:, top:bottom, left:right]
    return out


def channel_maxima(net, images, layers, batch_size=256):
    """Every feature's maximum in every image, for several layers in one forward pass.

    Returns ``{layer: (positions, values)}`` with ``values[n, c]`` the maximum of feature
    map c of ``net.layers[layer]``'s output on image n and ``positions[n, c]`` its (h, w)
    (the first maximum in scan order; (0, 0) for (N, F) outputs).  The images go through
    the network once, ``batch_size`` at a time, up to the deepest of ``layers``."""
    layers = sorted({check_layer(net, layer) for layer in layers})
    if not layers:
        raise ValueError("layers must name at least one layer")
    checks.check_float_array(images, "images", ndim=4)
    found = {layer: ([], []) for layer in layers}
    for start in range(0, len(images), batch_size):
        outputs = net.trace(images[start:start + batch_size], upto=layers[-1]).outputs
        for layer in layers:
            positions, values = _maxima_of_every_channel(outputs[layer])
            found[layer][0].append(positions)
            found[layer][1].append(values)
    return {layer: (np.concatenate(p), np.concatenate(v)) for layer, (p, v) in found.items()}


def _maxima_of_every_channel(activation):
    """``strongest`` for all channels at once: positions (N, C, 2), values (N, C)."""
    if activation.ndim == 2:
        return np.zeros(activation.shape + (2,), np.int64), activation
    maps = activation.reshape(activation.shape[0], activation.shape[1], -1)
    flat = maps.argmax(axis=2)
    values = np.take_along_axis(maps, flat[..., None], axis=2)[..., 0]
    positions = np.stack(np.unravel_index(flat, activation.shape[2:]), axis=-1)
    return positions.astype(np.int64), values


def _maxima_of_channel(net, images, layer, channel, maxima):
    """One channel of ``channel_maxima``'s result for ``layer``, checked against the
    images and the layer."""
    positions, values = maxima
    shape = net.layer_shapes(images.shape[1:])[layer]
    if values.shape != (len(images), shape[0]) or positions.shape != values.shape + (2,):
        raise ValueError(f"maxima must be channel_maxima(net, images, ...)[{layer}] for "
                         f"these {len(images)} images: values ({len(images)}, {shape[0]}) "
                         f"and positions ({len(images)}, {shape[0]}, 2), got "
                         f"{values.shape} and {positions.shape}")
    channel = check_channel(shape, channel, net.describe(layer))
    return positions[:, channel], values[:, channel]


def max_activations(net, images, layer, channel, batch_size=256):
    """``(positions, values)`` of feature ``channel``'s maximum in each image."""
    layer = check_layer(net, layer)
    checks.check_float_array(images, "images", ndim=4)
    channel = check_channel(net.layer_shapes(images.shape[1:])[layer], channel,
                                net.describe(layer))
    positions, values = channel_maxima(net, images, [layer], batch_size)[layer]
    return positions[:, channel], values[:, channel]


def top_k_patches(net: Network, images, layer: int | str, channel: int, k: int = TOP_K,
                  rule: str = "deconvnet", batch_size: int = 256,
                  maxima=None) -> TopPatches:
    """Zeiler & Fergus's Figure 2 for one feature: the ``k`` strongest activations of
    feature map ``channel`` at the output of ``net.layers[layer]`` over ``images``
    (N, C, H, W) — at most one per image — with the input patches under each unit's
    receptive field (``shapes.receptive_field``) and the projections (``rule``) of that
    single activation, cropped the same way.

    ``maxima``, if given, is ``channel_maxima(net, images, [layer, ...])[layer]``: the
    maxima of every feature, found once for many calls, so that this call passes only its
    ``k`` images through the network."""
    rule = get_rule(rule)  # resolved once here; the layers below pass it on
    layer = check_layer(net, layer)
    checks.check_float_array(images, "images", ndim=4)
    k = checks.check_int(k, "k", 1, len(images), why="one activation per image")
    if maxima is None:
        positions, values = max_activations(net, images, layer, channel, batch_size)
    else:
        positions, values = _maxima_of_channel(net, images, layer, channel, maxima)
    order = np.argsort(-values, kind="stable")[:k]
    chosen = images[order]
    trace = net.trace(chosen, upto=layer)
    projections = project_traced(net, trace, layer, channel, positions[order], rule)

    field = net.receptive_field(layer)
    height, width = images.shape[2:]
    if field is None:              # after Flatten every unit sees the whole image
        windows = np.tile([0, height, 0, width], (k, 1))
    else:
        windows = np.array([field.window(tuple(p)) for p in positions[order]])
    return TopPatches(values=values[order], indices=order, positions=positions[order],
                      windows=windows,
                      patches=np.stack([window_patch(im, w) for im, w in zip(chosen, windows)]),
                      projections=np.stack([window_patch(p, w) for p, w in
                                            zip(projections, windows)]),
                      inside=np.stack([window_patch(np.ones((1, height, width), bool), w)[0]
                                       for w in windows]))


# --------------------------------------------------------------------------- top-k, streamed

#: top_k's default batch: small batches keep each layer's output in the CPU caches, and
#: bound the memory of a trace of a large network
TOP_K_BATCH = 64


@dataclass
class TopKTable:
    """The running top-k of every feature of one layer, after one pass over the images.

    ``values[c, r]`` is the r-th strongest of the per-image maxima of feature c
    (strongest first; ties: the earlier image first), found in image ``indices[c, r]``
    (its place in the stream, from 0) at ``positions[c, r]`` = (h, w) — (0, 0) for an
    (N, F) output.  ``images`` maps each image index that occurs in ``indices`` to that
    image (C, H, W), or is None when the table was made with ``keep_images=False``.
    ``n_images`` images were seen, each of ``image_shape`` (C, H, W) and ``dtype``."""

    layer: int
    values: np.ndarray
    indices: np.ndarray
    positions: np.ndarray
    n_images: int
    image_shape: Tuple[int, ...]
    dtype: np.dtype
    images: Optional[Dict[int, np.ndarray]] = None

    @property
    def k(self) -> int:
        return self.values.shape[1]


def batches_of(images, batch_size, empty_ok=False):
    """``(first, batch)`` pairs: a 4-d array cut into ``batch_size`` slices, or each batch
    of an iterable (cut too when larger), each checked against the first: float, 4-d, the
    same dtype and (C, H, W).  ``first`` is the stream index of ``batch[0]``.  No image at
    all is an error unless ``empty_ok`` (the rest of a resumed stream)."""
    if isinstance(images, np.ndarray):
        checks.check_float_array(images, "images", ndim=4)
        if len(images) == 0 and not empty_ok:
            raise ValueError("images is empty: give at least one image")
        source = iter([images])
    elif isinstance(images, (str, bytes)) or not hasattr(images, "__iter__"):
        raise TypeError(f"images must be an array (N, C, H, W) or an iterable of such "
                        f"batches, got {type(images).__name__}")
    else:
        source = iter(images)
    first, reference = 0, None
    for b, batch in enumerate(source):
        if not isinstance(batch, np.ndarray):
            raise TypeError(f"images: batch {b} must be an array (N, C, H, W), got "
                            f"{type(batch).__name__}")
        checks.check_float_array(batch, f"images: batch {b}", ndim=4)
        if len(batch) == 0:
            continue
        if reference is None:
            reference = batch
        elif batch.dtype != reference.dtype or batch.shape[1:] != reference.shape[1:]:
            raise ValueError(f"images: batch {b} is {batch.dtype} {batch.shape[1:]} but "
                             f"batch 0 is {reference.dtype} {reference.shape[1:]}: every "
                             f"batch must hold images of the same dtype and (C, H, W)")
        for start in range(0, len(batch), batch_size):
            piece = batch[start:start + batch_size]
            yield first, piece
            first += len(piece)
    if reference is None and not empty_ok:
        raise ValueError("images is empty: the iterable gave no batch")


def batch_top_k(activation, indices, k):
    """One batch's top-k table: ``(values, indices, positions)``, ranks × C, strongest
    first, of a layer's ``activation`` (N, C, ...) on images numbered ``indices`` (N,)
    in the stream (increasing).

    Each image's maximum of each feature map (``_maxima_of_every_channel``), then per
    column the first k by (−value, image index): ``merge_top_k``'s order."""
    positions, values = _maxima_of_every_channel(activation)
    indices = np.asarray(indices, np.int64)
    if indices.shape != (len(values),):
        raise ValueError(f"indices must hold one stream index per image of the batch, "
                         f"({len(values)},), got {indices.shape}")
    indices = np.broadcast_to(indices[:, None], values.shape)
    return _first_k(values, indices, positions, k)


def merge_top_k(a, b, k):
    """The top-k table of the union of two sets of images, from the two sets' top-k
    tables ``a`` and ``b`` (``(values, indices, positions)``, ranks × C, as
    ``batch_top_k`` makes them; None: an empty set).

    Ranks follow one total order on (value, image): the larger value first, and of equal
    values the image with the smaller stream index — ``rank_top_k``'s order, that of a
    stable sort of the stream by −value.  Under a total order the k first of a union
    A ∪ B are among the k first of A and the k first of B (an element of A beaten by k
    others of A is beaten by k others of A ∪ B), so

        top_k(A ∪ B) = top_k(top_k(A) ∪ top_k(B)),

    and since the result depends only on the set, the merge is associative and
    commutative: any tree of merges over any split of the stream gives the table of one
    pass, bit for bit (no arithmetic, only a selection)."""
    if a is None or b is None:
        return b if a is None else a
    return _first_k(*(np.concatenate([x, y]) for x, y in zip(a, b)), k)


def _first_k(values, indices, positions, k):
    """The rows of each column in the order (−value, index), the first ``k`` kept."""
    # lexsort: the last key is the primary one; NaN values sort last, as in argsort
    order = np.lexsort((indices, -values), axis=0)[:k]
    return (np.take_along_axis(values, order, axis=0),
            np.take_along_axis(indices, order, axis=0),
            np.take_along_axis(positions, order[..., None], axis=0))


def ranked_layers(net, layers):
    """``layers`` (one name or index, or several) as sorted distinct indices in [0, n)."""
    if isinstance(layers, (str, numbers.Integral)):
        layers = [layers]
    layers = sorted({check_layer(net, layer) for layer in layers})
    if not layers:
        raise ValueError("layers must name at least one layer")
    return layers


def rank_top_k(net, images, layers, k: int = TOP_K, batch_size: int = TOP_K_BATCH,
               keep_images: bool = True, resume=None, on_batch=None) -> Dict[int, TopKTable]:
    """The first half of Figure 2: one forward pass over ``images``, up to the deepest of
    ``layers``, keeping for every feature of each layer its ``k`` strongest images (one
    activation per image, that image's maximum of the feature map).

    ``images`` is an array (N, C, H, W) or an iterable of such batches (a generator, a
    list; batches may differ in size).  Memory is one batch of ``batch_size`` at a time
    through ``Network.forward_outputs`` (no trace is kept), and the table: k values per
    feature and, with ``keep_images``, the images the table names (at most k per
    feature) — an iterable cannot be read twice.

    ``on_batch(tables)``, if given, is called after each batch with the tables of the
    stream so far (``{layer: TopKTable}``, fewer than k ranks while fewer than k images
    were seen).  Such tables, given back as ``resume``, continue the pass: ``images`` is
    then the rest of the stream, its first image numbered ``n_images`` of the tables, and
    the result is what one uninterrupted pass gives (ties stay in stream order).

    Returns ``{layer: TopKTable}`` (layers as indices in [0, n))."""
    layers = ranked_layers(net, layers)
    k = checks.check_int(k, "k", 1)
    batch_size = checks.check_int(batch_size, "batch_size", 1)
    tables, kept, n_seen, shape, dtype = resume_state(resume, layers, k, keep_images)
    offset = n_seen                 # the stream index of this call's first image
    for first, batch in batches_of(images, batch_size, empty_ok=resume is not None):
        first += offset
        if shape is None:   # the first batch: does the network take these images?
            shape, dtype = batch.shape[1:], batch.dtype
            net.layer_shapes(shape)
        elif batch.shape[1:] != shape or batch.dtype != dtype:
            raise ValueError(f"images are {batch.dtype} {batch.shape[1:]} but the resumed "
                             f"tables were made of {dtype} {shape}")
        outputs = net.forward_outputs(batch, layers)
        numbers = first + np.arange(len(batch))
        for layer in layers:
            tables[layer] = merge_top_k(tables[layer],
                                        batch_top_k(outputs[layer], numbers, k), k)
        del outputs                 # before the next batch's pass allocates its own
        end = first + len(batch)
        if keep_images:     # the images the tables name now, and no others
            wanted = set(np.unique(np.concatenate([t[1].ravel() for t in tables.values()]))
                         .tolist())
            kept = {i: image for i, image in kept.items() if i in wanted}
            for i in wanted:
                if first <= i < end and i not in kept:
                    kept[i] = batch[i - first].copy()
        n_seen = end
        if on_batch is not None:
            on_batch(top_k_tables(tables, n_seen, shape, dtype,
                                  kept if keep_images else None))
    if n_seen < k:
        raise ValueError(f"k must be in [1, {n_seen}] (one activation per image, and "
                         f"there are {n_seen} images), got {k}")
    return top_k_tables(tables, n_seen, shape, dtype, kept if keep_images else None)


def top_k_tables(running, n_seen, shape, dtype, kept):
    """The running tables ``{layer: (values, indices, positions)}`` (ranks × C) as
    ``TopKTable``s (C × ranks), with the images they name when ``kept`` is not None."""
    result = {}
    for layer, (values, indices, positions) in running.items():
        images = None if kept is None else {i: kept[i] for i in np.unique(indices).tolist()}
        result[layer] = TopKTable(layer=layer, values=values.T.copy(),
                                  indices=indices.T.copy(),
                                  positions=positions.transpose(1, 0, 2).copy(),
                                  n_images=n_seen, image_shape=tuple(shape), dtype=dtype,
                                  images=images)
    return result


def resume_state(resume, layers, k, keep_images):
    """The running state ``(tables, kept images, images seen, (C, H, W), dtype)`` to start
    a pass from: empty, or ``resume``'s tables, checked against this call."""
    if resume is None:
        return {layer: None for layer in layers}, {}, 0, None, None
    if not isinstance(resume, dict) or \
            not all(isinstance(t, TopKTable) for t in resume.values()):
        raise TypeError("resume must be the {layer: TopKTable} that on_batch was given")
    if sorted(resume) != layers:
        raise ValueError(f"resume holds the tables of layers {sorted(resume)}, this pass "
                         f"ranks layers {layers}")
    first = next(iter(resume.values()))
    kept = {}
    for layer, table in resume.items():
        if table.k > k or (table.k < k and table.k != table.n_images) or \
                table.n_images != first.n_images:
            raise ValueError(f"resume's table of layer {layer} does not continue a pass "
                             f"with k={k}: it holds {table.k} ranks of {table.n_images} "
                             f"images")
        if keep_images:
            if table.images is None:
                raise ValueError("resume's tables keep no images: resume with "
                                 "keep_images=False")
            kept.update(table.images)
    tables = {layer: (t.values.T.copy(), t.indices.T.copy(),
                      t.positions.transpose(1, 0, 2).copy()) for layer, t in resume.items()}
    return tables, kept, first.n_images, tuple(first.image_shape), np.dtype(first.dtype)


def _channel_list(channels):
    """``channels`` (not None) as a list: a sequence, not one int or a string."""
    if isinstance(channels, (numbers.Integral, str)) or not hasattr(channels, "__iter__"):
        raise TypeError(f"channels must be None or a sequence of ints, got {channels!r}")
    return list(channels)


def _check_channels(channels, count, name):
    """``channels`` (None: all) as a list of ints in [0, count)."""
    if channels is None:
        return list(range(count))
    channels = _channel_list(channels)
    if not channels:
        raise ValueError("channels must name at least one channel (None: all)")
    return [check_channel((count,), c, name) for c in channels]


def project_top_k(net, table: TopKTable, channels=None, rule: str = "deconvnet",
                  batch_size: int = TOP_K_BATCH, load_images=None, on_batch=None):
    """The second half of Figure 2: the projections (``rule``) of a ``TopKTable``'s
    activations, and the patches under their receptive fields.

    Each (channel, rank) pair is one sample of a batch: its image is traced to
    ``table.layer`` and the seed — zero but for that one activation — is passed down by
    ``net.backward``.  The way back is linear in the seed and each sample keeps its own
    switches and ReLU masks, so ``batch_size`` pairs go down together, whatever their
    channels.  The pairs go in image order, and the pairs of a batch that share an image
    share its trace (``Network.rows_of_trace``): one image is often among the top k of
    several features, and is traced once for them.  A unit whose receptive field covers
    at most ``WINDOW_SHARE`` of its image is traced and projected in that window alone
    (``minideconv.visualize.unit_window``: the same numbers, to rounding, for the
    window's share of the work).  ``load_images(indices)`` gives the images (len, C, H,
    W) for a table made without ``keep_images`` (e.g. read again from their files).
    ``on_batch(n)``, if given, is called after each batch with the number n of units it
    projected.

    Returns one ``TopPatches`` per channel of ``channels`` (None: all), in that order."""
    rule = get_rule(rule)
    if not isinstance(table, TopKTable):
        raise TypeError(f"table must be a TopKTable (rank_top_k), got "
                        f"{type(table).__name__}")
    layer = check_layer(net, table.layer)
    channels = _check_channels(channels, table.values.shape[0], net.describe(layer))
    batch_size = checks.check_int(batch_size, "batch_size", 1)
    if load_images is None:
        if table.images is None:
            raise ValueError("the table keeps no images (keep_images=False): give "
                             "load_images")
        load_images = lambda indices: np.stack([table.images[i] for i in indices])  # noqa
    k = table.k
    pairs = [(c, r) for c in channels for r in range(k)]
    # the pairs in image order, so that the pairs of one image share a batch and the
    # image is traced once for all of them (rows_of_trace)
    by_image = sorted(range(len(pairs)), key=lambda p: table.indices[pairs[p]])
    projections = [None] * len(pairs)
    plan = unit_window_plan(net, layer, table.image_shape)
    for start in range(0, len(pairs), batch_size):
        chunk = by_image[start:start + batch_size]
        distinct, rows = np.unique([table.indices[pairs[p]] for p in chunk],
                                   return_inverse=True)
        traced = load_images(distinct.tolist())
        together = []
        for p, row in zip(chunk, rows.ravel()):
            channel, position = pairs[p][0], table.positions[pairs[p]]
            if plan is not None and window_area(plan, position) <= WINDOW_SHARE:
                # a unit that sees a small part of its image is traced and projected
                # there alone (unit_window); the others go down together
                projections[p] = (traced[row], _projection_in_window(
                    plan, traced[row], channel, position, rule))
            else:
                together.append((p, row))
        if together:
            ps, rows = (np.array(column) for column in zip(*together))
            full = _project_together(net, table, layer, [pairs[p] for p in ps], traced,
                                     rows, rule)
            for p, row, projection in zip(ps, rows, full):
                projections[p] = (traced[row], projection)
        if on_batch is not None:
            on_batch(len(chunk))

    field = net.receptive_field(layer)
    height, width = table.image_shape[1:]
    everywhere = np.ones((1, height, width), bool)
    result = []
    for f, channel in enumerate(channels):
        positions = table.positions[channel]
        if field is None:              # after Flatten every unit sees the whole image
            windows = np.tile([0, height, 0, width], (k, 1))
        else:
            windows = np.array([field.window(tuple(p)) for p in positions])
        mine = projections[f * k:(f + 1) * k]
        result.append(TopPatches(
            values=table.values[channel].copy(), indices=table.indices[channel].copy(),
            positions=positions.copy(), windows=windows,
            patches=np.stack([window_patch(im, w) for (im, _), w in zip(mine, windows)]),
            projections=np.stack([window_patch(p, w) for (_, p), w in zip(mine, windows)]),
            inside=np.stack([window_patch(everywhere, w)[0] for w in windows])))
    return result


def _projection_in_window(plan, image, channel, position, rule):
    """The projection of one unit of ``image`` in its window (``project_unit_in_window``),
    in an array of the image's shape, zero outside the window."""
    _, (r0, r1, c0, c1), inside = project_unit_in_window(plan, image, channel,
                                                         tuple(position), rule)
    projection = np.zeros_like(image)
    projection[:, r0:r1, c0:c1] = inside
    return projection


def _project_together(net, table, layer, pairs, traced, rows, rule):
    """The projections of the (channel, rank) ``pairs`` of ``table`` (at ``net``'s layer
    ``layer``), pair i in image ``traced[rows[i]]``, in one pass down ``net.backward``:
    the images are traced once and their pairs share the trace
    (``Network.rows_of_trace``)."""
    # only the images these pairs need, each once
    needed, rows = np.unique(rows, return_inverse=True)
    trace = net.rows_of_trace(net.trace(traced[needed], upto=layer), rows.ravel())
    activation = trace.outputs[layer]
    seed = np.zeros_like(activation)
    n = np.arange(len(pairs))
    cs, rs = (np.array(column) for column in zip(*pairs))
    if activation.ndim == 2:
        seed[n, cs] = activation[n, cs]
    else:
        h, w = table.positions[cs, rs, 0], table.positions[cs, rs, 1]
        seed[n, cs, h, w] = activation[n, cs, h, w]
    return net.backward(seed, trace, start=layer, rule=rule)


def top_k(net, images, layer, k: int = TOP_K, channels=None, rule: str = "deconvnet",
          batch_size: int = TOP_K_BATCH):
    """Zeiler & Fergus's Figure 2 for many features of one layer, in one forward pass:
    ``top_k_patches`` for every channel of ``channels`` (None: all of ``layer``'s).

    ``images`` is an array (N, C, H, W) or an iterable of such batches (e.g. a generator,
    batches of any sizes); ``layer`` an index or a name (``net.names``).  The images go
    through the network once (``rank_top_k``: each feature's running top-k, one batch in
    memory at a time, plus the at most k candidate images per feature); then the chosen
    images are traced again and the seeds of all (channel, rank) pairs go down together,
    ``batch_size`` at a time (``project_top_k``).

    Returns one ``TopPatches`` per channel, in the order of ``channels``; each is what
    ``top_k_patches(net, images, layer, channel, k, rule)`` gives."""
    rule = get_rule(rule)       # every argument is checked before the pass, where it can be
    layer = check_layer(net, layer)
    k = checks.check_int(k, "k", 1)
    batch_size = checks.check_int(batch_size, "batch_size", 1)
    shape = net.input_shape
    if isinstance(images, np.ndarray):
        checks.check_float_array(images, "images", ndim=4)
        if len(images) == 0:
            raise ValueError("images is empty: give at least one image")
        shape = images.shape[1:]
        k = checks.check_int(k, "k", 1, len(images), why="one activation per image")
    if channels is not None:
        channels = _channel_list(channels)
        if shape is not None:   # else project_top_k checks them, after the pass
            count = net.layer_shapes(shape)[layer][0]
            channels = _check_channels(channels, count, net.describe(layer))
    table = rank_top_k(net, images, [layer], k=k, batch_size=batch_size)[layer]
    return project_top_k(net, table, channels, rule=rule, batch_size=batch_size)

