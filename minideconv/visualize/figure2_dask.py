"""Figure 2's ranking pass on a Dask cluster: the batches ranked apart, their tables merged
in a tree.

``rank_top_k`` is a map and a reduce.  Each batch's top-k table (``batch_top_k``)
depends on that batch alone, and two tables merge into the table of their union
(``merge_top_k``), a selection under one total order — larger value first, then smaller
stream index — so the merge is associative and commutative.  Here each batch is a task
on a ``dask.distributed`` cluster and the tables are merged pairwise, level by level:

    batch 0   batch 1   batch 2   batch 3   batch 4        (tasks, on any worker)
         \\   /              \\   /             |
        merge              merge              |
              \\           /                  |
                 merge  ------------------ merge           (the table of the stream)

and the result is ``rank_top_k``'s tables bit for bit — values, indices, positions and
the images they name — when the workers compute each batch as this process would: the
same batches (a layer's output may round differently, by an ulp, in a batch of another
size, and so break a tie otherwise) and the same threads per process (a GEMM on one
thread may round differently from the same GEMM on two, ``backends.image_threads``;
the shipped network's layers do not).

    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, \\
            Client(cluster) as client:
        tables = rank_top_k_dask(client, net, images, ["3", "6"], k=9)

* ``rank_top_k_dask``: an array (N, C, H, W) or an iterable of batches, cut into
  ``batch_size`` images as ``rank_top_k`` cuts them; each batch travels with its task,
  and the client holds at most two windows of ``WINDOW_PER_THREAD`` batches per worker
  thread at a time.
* ``rank_folder_dask``: an ``ImageFolder``; each task reads its own ``batch_size``
  consecutive files, so no image travels, only file numbers.  These are
  ``ImageFolder.batches``' batches when every file is readable; an unreadable file
  leaves its task one image short.

The network (and the folder's list of files) is sent to every worker once
(``Client.scatter``), not with each task.  The workers need minideconv importable (the
same version as the client): a ``LocalCluster`` has it; a remote cluster must install it.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .. import checks
from ..data.images import ImageFolder, ImageReadError
from .figure2 import (TOP_K, TOP_K_BATCH, batch_top_k, batches_of, merge_top_k,
                      ranked_layers, resume_state, top_k_tables)

#: the client sends this many batches per worker thread before it waits for the earlier
#: ones: enough to keep every worker busy, few enough to bound the client's memory
WINDOW_PER_THREAD = 4


@dataclass
class PartialRanking:
    """The ranking of one part of the stream, what a task returns and a merge combines.

    ``tables[layer] = (values, indices, positions)``, ranks × C, strongest first
    (``batch_top_k``), the indices being the images' keys — stream indices, or file
    numbers for a folder (increasing with the stream index, so they break ties the same
    way); ``images`` maps each key the tables name to its image (None without
    ``keep_images``); ``n_images`` images were ranked; ``skipped`` lists the unreadable
    files as (file number, path, reason)."""

    tables: Dict[int, tuple]
    images: Optional[Dict[int, np.ndarray]]
    n_images: int
    skipped: List[Tuple[int, str, str]]


def merge_partials(a: PartialRanking, b: PartialRanking, k: int) -> PartialRanking:
    """Two parts' rankings as the ranking of their union: each layer's tables by
    ``merge_top_k`` (top_k(A ∪ B) = top_k(top_k(A) ∪ top_k(B)), associative and
    commutative), the images the merged tables still name, the counts added and the
    skipped files listed in file order."""
    tables = {layer: merge_top_k(a.tables.get(layer), b.tables.get(layer), k)
              for layer in sorted(a.tables.keys() | b.tables.keys())}
    images = None
    if a.images is not None and b.images is not None:
        named = set(np.concatenate([t[1].ravel() for t in tables.values()]).tolist()
                    if tables else [])
        images = {i: image for part in (a.images, b.images) for i, image in part.items()
                  if i in named}
    return PartialRanking(tables, images, a.n_images + b.n_images,
                          sorted(a.skipped + b.skipped))


def rank_batch(net, keys, batch, layers, k, keep_images, skipped=()):
    """A task: one batch's ``PartialRanking`` — its forward pass to the deepest of
    ``layers`` and each layer's ``batch_top_k``; the images of ``keys`` the tables name,
    copied, with ``keep_images``."""
    outputs = net.forward_outputs(batch, layers)
    tables = {layer: batch_top_k(outputs[layer], keys, k) for layer in layers}
    images = None
    if keep_images:
        named = set(np.concatenate([t[1].ravel() for t in tables.values()]).tolist())
        images = {int(key): batch[row].copy() for row, key in enumerate(keys)
                  if key in named}
    return PartialRanking(tables, images, len(batch), list(skipped))


def rank_files(net, folder, start, stop, layers, k, keep_images):
    """A task: the ``PartialRanking`` of the folder's files ``start`` to ``stop``
    (half-open), read here on the worker, keyed by file number; the unreadable ones
    listed as skipped."""
    keys, arrays, skipped = [], [], []
    for number in range(start, stop):
        try:
            arrays.append(folder.read(folder.paths[number]))
            keys.append(number)
        except ImageReadError as err:
            skipped.append((number, folder.paths[number], str(err)))
    if not arrays:
        return PartialRanking({}, {} if keep_images else None, 0, skipped)
    return rank_batch(net, np.array(keys, np.int64), np.stack(arrays), layers, k,
                      keep_images, skipped)


def tree_merge(client, futures, k):
    """One future of the merge of ``futures`` (of ``PartialRanking``s), merged pairwise
    level by level: ⌈log₂ n⌉ levels, each merge a task that runs as soon as its two
    inputs are done (the client does not wait)."""
    while len(futures) > 1:
        merged = [client.submit(merge_partials, a, b, k, pure=False)
                  for a, b in zip(futures[0::2], futures[1::2])]
        futures = merged + futures[2 * len(merged):]    # an odd one out goes up a level
    return futures[0]


def _worker_threads(client):
    """The cluster's worker threads (at least 1)."""
    return max(1, sum(client.nthreads().values()))


def rank_top_k_dask(client, net, images, layers, k: int = TOP_K,
                    batch_size: int = TOP_K_BATCH, keep_images: bool = True):
    """``rank_top_k(net, images, layers, k, batch_size, keep_images)`` on the Dask
    ``client``'s workers: each batch of ``batch_size`` images (``rank_top_k``'s batches)
    a task, the tables merged in a tree (``tree_merge``).  The same tables, bit for bit.

    ``images``: an array (N, C, H, W) or an iterable of such batches.  Each batch is
    sent with its task; the network once, to every worker.
    Returns ``{layer: TopKTable}``."""
    layers = ranked_layers(net, layers)
    k = checks.check_int(k, "k", 1)
    batch_size = checks.check_int(batch_size, "batch_size", 1)
    if isinstance(images, np.ndarray) and images.ndim == 4:   # known now: before any task
        _check_enough(len(images), k)
    shared = client.scatter(net, broadcast=True, hash=False)
    window = WINDOW_PER_THREAD * _worker_threads(client)
    running, previous, leaves = None, None, []
    shape = dtype = None
    n_images = 0
    for first, batch in batches_of(images, batch_size):
        if shape is None:       # the first batch: does the network take these images?
            shape, dtype = batch.shape[1:], batch.dtype
            net.layer_shapes(shape)
        keys = first + np.arange(len(batch))
        leaves.append(client.submit(rank_batch, shared, keys, batch, layers, k,
                                    keep_images, pure=False))
        n_images = first + len(batch)
        if len(leaves) == window:
            reduced, leaves = tree_merge(client, leaves, k), []
            if previous is not None:    # at most two windows of batches in flight
                client.gather(previous)
            running = reduced if running is None else \
                client.submit(merge_partials, running, reduced, k, pure=False)
            previous = reduced
    if leaves:
        reduced = tree_merge(client, leaves, k)
        running = reduced if running is None else \
            client.submit(merge_partials, running, reduced, k, pure=False)
    result = running.result()
    _check_enough(n_images, k)
    return top_k_tables(result.tables, n_images, shape, dtype, result.images)


class TooFewImages(ValueError):
    """Fewer images were ranked than ``k``: ``n_images`` of them."""

    def __init__(self, n_images, k):
        super().__init__(f"k must be in [1, {n_images}] (one activation per image, and "
                         f"there are {n_images} images), got {k}")
        self.n_images = n_images


def _check_enough(n_images, k):
    if n_images < k:
        raise TooFewImages(n_images, k)


def rank_folder_dask(client, net, folder: ImageFolder, layers, k: int = TOP_K,
                     batch_size: int = TOP_K_BATCH, keep_images: bool = False,
                     first: int = 0, resume=None, on_files=None):
    """``rank_top_k`` over the image files of ``folder`` on the Dask ``client``'s workers:
    each task reads and ranks ``batch_size`` consecutive files (``rank_files``), the
    tables merged in a tree (``tree_merge``).

    From file ``first`` on (0: all); ``resume``, the tables of the readable files before
    it (``rank_top_k``'s ``on_batch`` tables, e.g. a ranking file's), continues them.
    The image indices of the result number the readable files in folder order, and ties
    go to the earlier file — ``rank_top_k``'s tables of the same batches.
    ``on_files(n)``, if given, is called on the client as each task ends, with the n
    files it read (readable or not).

    Returns ``(tables, paths, skipped)``: ``{layer: TopKTable}``, the readable files'
    paths (after ``first``) in stream order, and (path, reason) for each unreadable one."""
    if not isinstance(folder, ImageFolder):
        raise TypeError(f"folder must be an ImageFolder, got {type(folder).__name__}")
    from distributed import as_completed
    layers = ranked_layers(net, layers)
    k = checks.check_int(k, "k", 1)
    batch_size = checks.check_int(batch_size, "batch_size", 1)
    first = checks.check_int(first, "first", 0, len(folder))
    before, kept, n_before, shape, dtype = resume_state(resume, layers, k, keep_images)
    reading = (folder.channels,) + tuple(folder.size)
    if shape is not None and (shape != reading or dtype != folder.dtype):
        raise ValueError(f"the folder reads {folder.dtype} {reading} images but the "
                         f"resumed tables were made of {dtype} {shape}")
    net.layer_shapes(reading)
    # the workers get the files as absolute paths: a remote worker's folder is not ours
    shipped = copy.copy(folder)
    shipped.paths = [os.path.abspath(path) for path in folder.paths]
    shared_net, shared_folder = client.scatter([net, shipped], broadcast=True, hash=False)
    starts = range(first, len(folder), batch_size)
    leaves = [client.submit(rank_files, shared_net, shared_folder, start,
                            min(start + batch_size, len(folder)), layers, k, keep_images,
                            pure=False) for start in starts]
    if not leaves:
        raise ValueError(f"folder has no files after file {first}: nothing to rank")
    merged = tree_merge(client, leaves, k)
    if on_files is not None:
        files = {leaf.key: min(batch_size, len(folder) - start)
                 for leaf, start in zip(leaves, starts)}
        for leaf in as_completed(leaves):
            on_files(files[leaf.key])
    del leaves      # the tree holds what it still needs
    result = merged.result()
    n_images = n_before + result.n_images
    _check_enough(n_images, k)
    stream = _stream_numbers(result.skipped, first, n_before)
    tables = {layer: (values, stream(keys), positions)
              for layer, (values, keys, positions) in result.tables.items()}
    # the resumed tables hold the earlier images: merged with the rest, as one pass
    tables = {layer: merge_top_k(before[layer], tables.get(layer), k) for layer in layers}
    if keep_images:
        kept.update({int(stream(np.array([key]))[0]): image
                     for key, image in result.images.items()})
    unreadable = {number for number, _, _ in result.skipped}
    paths = [folder.paths[i] for i in range(first, len(folder)) if i not in unreadable]
    return (top_k_tables(tables, n_images, reading, np.dtype(folder.dtype),
                         kept if keep_images else None),
            paths, [(folder.paths[number], reason) for number, _, reason in result.skipped])


def _stream_numbers(skipped, first, n_before):
    """The map from file numbers (from ``first``) to stream indices: the readable files
    numbered in order after the ``n_before`` images of a resumed ranking."""
    unreadable = np.array(sorted(number for number, _, _ in skipped), np.int64)

    def stream(keys):
        return n_before + (keys - first) - np.searchsorted(unreadable, keys)
    return stream


__all__ = ["rank_top_k_dask", "rank_folder_dask", "merge_partials", "PartialRanking",
           "TooFewImages",
           "tree_merge", "rank_batch", "rank_files"]
