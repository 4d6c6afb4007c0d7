"""How many images a batch of Figure 2 can hold in a memory budget.

Figure 2 runs in two passes (``figure2``), and each holds a different amount per image:

* the ranking pass (``rank_top_k``) runs ``Network.forward_outputs``: at layer i it holds
  the values still to be read (for a chain, layer i's input), layer i's output, record
  and working buffers while it runs, and the outputs of the ranked layers already made::

      F(n) = n · max_i ( Σ_{j live at i} |y_j| + |y_i| + |r_i| + Σ_{ranked j < i} |y_j| )
             + T · max_i s_i

* the projection pass (``project_top_k``) traces the units' images to the layer,
  keeping every output y_i and record r_i, then passes the seeds down, two signals
  alive at a time (the one arriving at layer i and the one it passes on), and one
  layer's record copied for the units' rows (``Network.rows_of_trace``: a unit whose
  image another unit of the batch has shares its trace; at worst none does)::

      P(n) = n · ( 2 |x| + Σ_i |y_i| + Σ_i |r_i| + 2 |y_L| + max_i ( |y_i| + 2 |x_i| + |r_i| ) )
             + T · max_i b_i

  (the images twice: as read, and as the rows the units take; the seed layer's output
  twice: its rows, and the seed).

|a| is the bytes of one image's share of a; a record that is a view of a layer's input or
output (a ReLU's input, a convolution's input) costs nothing more.  s_i and b_i are the
working buffers of layer i's forward and backward (a convolution's columns), of which
each of the T threads of the CPU backend holds its own — even for one image, whose rows
the backend shares out in bands when there are fewer images than threads: those of one
image, or, where one image's are small, up to the chunk of several images' columns a
thread unfolds at once (``backends.cpu.CHUNK_BYTES``, and their padded images: twice that
is allowed).
Every size is read off a real pass of one image of zeros, the buffers with
``tracemalloc`` (which sees every NumPy allocation), so each kind of layer is counted as
it really allocates.

The batch is the largest n that fits the budget, in [1, ``MAX_BATCH``]: past that a batch
is no faster, only larger.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass

import numpy as np

from .. import checks
from ..backends.cpu import CHUNK_BYTES
from ..nn.network import NETWORK_INPUT

#: the most a thread's buffers hold for a chunk of small images: their columns, and the
#: padded images
CHUNK_BUFFERS = 2 * CHUNK_BYTES

#: the largest batch chosen from a budget: on the CPU a batch of a few hundred small
#: images, or of a few 224×224 ones, already keeps every core's GEMMs busy
MAX_BATCH = 256


@dataclass(frozen=True)
class PassMemory:
    """Bytes of one pass of ``n`` images: ``n · per_image`` and, on each of the
    ``threads`` threads (one image's rows go to all of them in bands), the ``buffers`` of
    one image — or of the ⌈n / threads⌉ images of its chunk, up to ``CHUNK_BUFFERS``, when
    one image's are smaller."""

    per_image: int
    buffers: int
    threads: int

    def bytes(self, n: int) -> int:
        share = -(-n // self.threads)              # images per thread, rounded up
        per_thread = max(self.buffers, min(share * self.buffers, CHUNK_BUFFERS))
        return n * self.per_image + self.threads * per_thread

    def largest_batch(self, budget: int, limit: int) -> int:
        """The most images, at most ``limit``, whose ``bytes`` fit in ``budget`` (0 when
        not even one does)."""
        if self.bytes(1) > budget:
            return 0
        low, high = 1, limit        # bytes(n) grows with n: the last n that fits
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if self.bytes(middle) <= budget else (low, middle - 1)
        return low


@dataclass(frozen=True)
class BatchMemory:
    """The memory of Figure 2's two passes (module docstring) for images of
    ``image_shape`` (C, H, W): ``ranking`` (``rank_top_k``) and ``projection``
    (``project_top_k``), each a ``PassMemory``."""

    image_shape: tuple
    ranking: PassMemory
    projection: PassMemory

    def batch_sizes(self, budget: int, limit: int = MAX_BATCH):
        """``(ranking batch, projection batch)``: the most images whose passes fit in
        ``budget`` bytes, each in [1, ``limit``]; a ValueError when one image does not."""
        budget = checks.check_int(budget, "budget", 1)
        limit = checks.check_int(limit, "limit", 1)
        sizes = (self.ranking.largest_batch(budget, limit),
                 self.projection.largest_batch(budget, limit))
        if 0 in sizes:
            needed = max(self.ranking.bytes(1), self.projection.bytes(1))
            raise ValueError(f"one image of {self.image_shape} needs about {needed} bytes "
                             f"in Figure 2's passes, more than the budget of {budget}: give "
                             f"a larger budget")
        return sizes


def _nbytes(record, owned):
    """Bytes of the arrays in ``record`` (an array, or a tuple / list of things) that are
    not views of the arrays in ``owned``."""
    if isinstance(record, np.ndarray):
        if any(np.may_share_memory(record, a) for a in owned):
            return 0
        return record.nbytes
    if isinstance(record, (tuple, list)):
        return sum(_nbytes(part, owned) for part in record)
    return 0


def _allocated_during(call):
    """``(result, bytes)``: what ``call()`` returns and the most bytes it had allocated at
    once beyond what it returns (0 when someone else's tracemalloc is running)."""
    if tracemalloc.is_tracing():        # not ours to reset
        return call(), 0
    tracemalloc.start()
    try:
        result = call()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, max(0, peak - now)


def _threads():
    """T: the threads of the CPU backend, each with its own working buffers."""
    import numba
    return max(1, numba.get_num_threads())


def batch_memory(net, image_shape, layers, rule: str = "deconvnet") -> BatchMemory:
    """The memory of Figure 2's ranking pass over ``layers`` and of the projection
    (``rule``) of units of the deepest of them, for images of ``image_shape``, from one
    image of zeros passed forward and back layer by layer (module docstring)."""
    layers = sorted({net.index(layer) for layer in layers})
    if not layers:
        raise ValueError("layers must name at least one layer")
    image = np.zeros((1,) + tuple(image_shape), net.dtype())
    net.layer_shapes(image_shape)           # a clear error for images it cannot take
    n = layers[-1] + 1
    readers = [tuple(net.inputs_of(i)) for i in range(n)]
    outputs, records, forward_buffers = [], [], []
    for i in range(n):
        arriving = [image if j == NETWORK_INPUT else outputs[j] for j in readers[i]]
        (y, record), extra = _allocated_during(lambda: net.layers[i].forward(*arriving))
        outputs.append(y)
        records.append(record)
        forward_buffers.append(max(0, extra - _nbytes(record, arriving + [y])))
    backward_buffers = []
    for i in range(n):
        grad = np.ones_like(outputs[i])
        _, extra = _allocated_during(lambda: net.layers[i].backward(grad, records[i],
                                                                    rule=rule))
        backward_buffers.append(extra)

    sizes = [y.nbytes for y in outputs]
    arriving_bytes = [sum(image.nbytes if j == NETWORK_INPUT else sizes[j]
                          for j in set(readers[i])) for i in range(n)]
    kept = [_nbytes(records[i], [image if j == NETWORK_INPUT else outputs[j]
                                 for j in readers[i]] + [outputs[i]]) for i in range(n)]
    last_reader = {j: i for i in range(n) for j in readers[i]}

    ranking, live = 0, {NETWORK_INPUT: image.nbytes}
    for i in range(n):
        made = sum(sizes[j] for j in layers if j < i and j not in live)
        ranking = max(ranking, sum(live.values()) + sizes[i] + kept[i] + made)
        for j in set(readers[i]):
            if last_reader[j] == i:
                del live[j]
        if i in last_reader:
            live[i] = sizes[i]
    ranking += image.nbytes         # the batch as read, before the stack the network sees

    # at layer i: the signals at its output and input, and its record's rows
    way_back = max(sizes[i] + 2 * arriving_bytes[i] + kept[i] for i in range(n))
    projection = 2 * image.nbytes + sum(sizes) + sum(kept) + 2 * sizes[-1] + way_back
    threads = _threads()
    return BatchMemory(tuple(image_shape),
                       PassMemory(int(ranking), int(max(forward_buffers)), threads),
                       PassMemory(int(projection), int(max(backward_buffers)), threads))
