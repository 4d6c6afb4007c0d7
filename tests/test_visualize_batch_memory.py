"""visualize.batch_memory: the memory of Figure 2's two passes, against what the passes
really allocate (``tracemalloc`` sees every NumPy array), for a chain and a graph."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from minideconv import nn
from minideconv.visualize.batch_memory import (CHUNK_BUFFERS, BatchMemory, PassMemory,
                                               batch_memory)

from test_visualize_figure2 import make_graph

PYTHON_OBJECTS = 16 * 2**10     # lists, dicts and the trace object of one pass, at most


def chain(rng):
    """Big enough that the arrays, not Python's own objects, are what is allocated."""
    def w(*shape):
        return rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))
    return nn.Sequential(nn.Conv2d(w(32, 3, 3, 3), np.zeros(32), padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(w(32, 32, 3, 3), np.zeros(32), padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(w(10, 32 * 24 * 24), np.zeros(10)),
                         input_shape=(3, 96, 96))


def peak_of(call):
    """The most bytes ``call()`` had allocated at once."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def ranking_pass(net, pieces, layers):
    """What ``figure2`` does with a batch: the images as read, stacked, passed forward."""
    return net.forward_outputs(np.stack(list(pieces)), layers)


def projection_pass(net, images, layer):
    """What ``project_top_k`` does with a batch: the images traced, the trace's rows
    taken for the units, one unit seeded each, the seeds passed down."""
    trace = net.rows_of_trace(net.trace(images.copy(), upto=layer),
                              np.arange(len(images)))
    seed = np.zeros_like(trace.outputs[layer])
    seed.reshape(len(images), -1)[:, 0] = 1
    return net.backward(seed, trace, start=layer, rule="deconvnet")


@pytest.mark.parametrize("which", ["chain", "graph"])
@pytest.mark.parametrize("n", [1, 3, 48])
def test_the_estimate_holds_what_the_passes_allocate(which, n):
    rng = np.random.default_rng(3)
    net = chain(rng) if which == "chain" else make_graph(rng)
    layers = [1, 4] if which == "chain" else ["relu1", "cat"]
    shape = net.input_shape
    memory = batch_memory(net, shape, layers)
    deepest = max(net.index(layer) for layer in layers)
    images = rng.standard_normal((n,) + shape)
    ranking_pass(net, images, layers)           # compiled before anything is measured
    ranked = peak_of(lambda: ranking_pass(net, [im.copy() for im in images], layers))
    projected = peak_of(lambda: projection_pass(net, images, deepest))
    # never less than the passes take (but for Python's own small objects, which matter
    # only to the tiny graph); and the arrays of the n images alone, without the threads'
    # buffers, no more than they take
    assert ranked <= memory.ranking.bytes(n) + PYTHON_OBJECTS
    assert projected <= memory.projection.bytes(n) + PYTHON_OBJECTS
    assert n * memory.ranking.per_image <= 1.05 * ranked + 2 * images.nbytes
    assert n * memory.projection.per_image <= 1.05 * projected


def test_the_largest_batch_that_fits():
    big = PassMemory(per_image=100, buffers=CHUNK_BUFFERS, threads=2)    # one image each
    assert big.bytes(1) == 100 + 2 * CHUNK_BUFFERS     # one image's bands on both threads
    assert big.bytes(2) == big.bytes(3) - 100 == 200 + 2 * CHUNK_BUFFERS
    small = PassMemory(per_image=100, buffers=1000, threads=2)        # a chunk each
    assert small.bytes(1) == 2100 and small.bytes(2) == 2200 and small.bytes(5) == 6500
    assert small.bytes(10**6) == 10**8 + 2 * CHUNK_BUFFERS
    for memory in (big, small):
        for budget in (1100, 1500, 2200, 2201, 6499, 6500, 10**5, 10**8, 10**10):
            b = memory.largest_batch(budget, limit=10**9)
            assert memory.bytes(b) <= budget < memory.bytes(b + 1) or b == 0
        assert memory.largest_batch(memory.bytes(1) - 1, limit=50) == 0
        assert memory.largest_batch(10**12, limit=50) == 50


def test_a_budget_too_small_for_one_image():
    both = BatchMemory((3, 8, 8), PassMemory(10, 0, 1), PassMemory(500, 20, 2))
    assert both.batch_sizes(1040) == (104, 2)
    with pytest.raises(ValueError, match="needs about 540 bytes .* budget of 539"):
        both.batch_sizes(539)
    with pytest.raises(TypeError, match="budget must be an int"):
        both.batch_sizes(2.5e9)
