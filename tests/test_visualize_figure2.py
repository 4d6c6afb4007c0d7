"""visualize.top_k: Figure 2 for every feature of a layer in one forward pass, against a
brute-force top-k of every channel, over an array and over an iterable of uneven batches."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from minideconv import nn, visualize
from minideconv.visualize import (TopKTable, TopPatches, project, project_top_k,
                                  rank_top_k, top_k, top_k_patches, window_patch)

from support.networks import small_net

FIELDS = ("values", "indices", "positions", "windows", "patches", "projections", "inside")
LINEAR = 6      # make_net's (N, F) output after Flatten → Linear


def make_net(rng, dtype=np.float64):
    """``small_net`` with negative biases, so that many maxima are exactly 0 (ties)."""
    return small_net(rng, dtype, biases=(-0.4, -0.6, 0.0))


@pytest.fixture
def rng():
    return np.random.default_rng(17)


@pytest.fixture
def net(rng):
    return make_net(rng)


@pytest.fixture
def images(rng):
    x = rng.standard_normal((14, 3, 9, 9))
    x[9] = x[2]         # a duplicate: every feature ties between images 2 and 9
    x[12] = x[2]
    return x


def brute_force(net, images, layer, channel, k, rule="deconvnet"):
    """Every image's maximum of the feature map by a scan of the whole activation, the
    stable sort of the whole set, and each activation projected on its own."""
    activation = net.trace(images, upto=layer).outputs[layer]
    values, positions = [], []
    for n in range(len(images)):
        plane = activation[n, channel]
        position = np.unravel_index(np.argmax(plane), plane.shape) if plane.ndim else ()
        values.append(plane[position])
        positions.append(position if plane.ndim else (0, 0))
    values, positions = np.array(values), np.array(positions, np.int64)
    order = np.argsort(-values, kind="stable")[:k]
    field = net.receptive_field(layer)
    windows = [field.window(tuple(p)) if field is not None else (0, 9, 0, 9)
               for p in positions[order]]
    projections = [project(net, images[n], layer, channel,
                           tuple(positions[n]) if activation.ndim == 4 else None, rule=rule)
                   for n in order]
    return TopPatches(
        values=values[order], indices=order, positions=positions[order],
        windows=np.array(windows),
        patches=np.stack([window_patch(images[n], w) for n, w in zip(order, windows)]),
        projections=np.stack([window_patch(p, w) for p, w in zip(projections, windows)]),
        inside=np.stack([window_patch(np.ones((1, 9, 9), bool), w)[0] for w in windows]))


def assert_same(ours, reference, layer):
    for field in FIELDS:
        a, b = getattr(ours, field), getattr(reference, field)
        assert a.shape == b.shape, field
        if (layer == LINEAR and field == "values") or field == "projections":
            # a GEMM over a batch of another size, or a unit traced in its window alone
            # (unit_window), may round differently in the last bits
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=field)
        else:
            assert np.array_equal(a, b), field


def uneven(images, cuts=(0, 1, 6, 6, 7, 14)):
    """A generator of batches of sizes 1, 5, 0, 1, 7 (fresh arrays each)."""
    for start, stop in zip(cuts[:-1], cuts[1:]):
        yield images[start:stop].copy()


@pytest.mark.parametrize("layer", [1, 2, 4, 5, LINEAR])
def test_equals_brute_force_for_every_channel(net, images, layer):
    k = 4
    channels = net.layer_shapes()[layer][0]
    tops = top_k(net, images, layer, k=k, batch_size=5)
    streamed = top_k(net, uneven(images), layer, k=k, batch_size=3)
    assert len(tops) == len(streamed) == channels
    ties = 0
    for channel in range(channels):
        reference = brute_force(net, images, layer, channel, k)
        ties += int(np.sum(np.diff(reference.values) == 0))
        assert_same(tops[channel], reference, layer)
        assert_same(streamed[channel], reference, layer)
        assert_same(tops[channel], top_k_patches(net, images, layer, channel, k=k), layer)
    if layer != LINEAR:
        assert ties > 0     # the tie-breaking (earlier image first) was exercised


def test_rule_and_channel_order(net, images):
    chosen = [3, 0, 3]
    tops = top_k(net, images, 4, k=3, channels=chosen, rule="guided")
    for channel, top in zip(chosen, tops):
        assert_same(top, brute_force(net, images, 4, channel, 3, rule="guided"), 4)


def test_one_pass_and_batched_projections(net, images, monkeypatch):
    """One forward pass of the images (in batches of batch_size) up to the layer keeping
    no trace, then the (channel, rank) pairs sent down ``batch_size`` at a time, the
    distinct images of each batch traced once."""
    in_order = sorted(rank_top_k(net, images, [4], k=3)[4].indices.ravel().tolist())
    calls = []
    trace, backward, forward = net.trace, net.backward, net.forward_outputs
    monkeypatch.setattr(net, "forward_outputs", lambda x, layers: calls.append(
        ("forward", len(x), list(layers))) or forward(x, layers))
    monkeypatch.setattr(net, "trace", lambda x, upto=None: calls.append(
        ("trace", len(x), upto)) or trace(x, upto=upto))
    monkeypatch.setattr(net, "backward", lambda g, t, start=None, rule="backprop": calls.append(
        ("backward", len(g), start)) or backward(g, t, start=start, rule=rule))
    top_k(net, images, 4, k=3, batch_size=10)
    # the 15 pairs (5 channels × 3) in image order, 10 a batch; each batch traces each of
    # its images once
    distinct = [len(set(in_order[:10])), len(set(in_order[10:]))]
    assert distinct[0] < 10             # an image among the top 3 of several features
    assert calls == [("forward", 10, [4]), ("forward", 4, [4]),  # the pass: 14 images
                     ("trace", distinct[0], 4), ("backward", 10, 4),
                     ("trace", distinct[1], 4), ("backward", 5, 4)]


def test_several_layers_in_one_pass(net, images):
    tables = rank_top_k(net, images, [4, 1, LINEAR, 1], k=2, batch_size=4)
    assert sorted(tables) == [1, 4, LINEAR]
    for layer, table in tables.items():
        assert isinstance(table, TopKTable) and table.layer == layer and table.k == 2
        assert table.n_images == 14 and table.image_shape == (3, 9, 9)
        assert set(table.images) == set(table.indices.ravel().tolist())
        for channel in range(table.values.shape[0]):
            reference = brute_force(net, images, layer, channel, 2)
            assert np.array_equal(table.indices[channel], reference.indices)


def test_memory_is_one_batch_plus_the_candidates(net, rng):
    """No batch of the stream outlives its turn: only copies of the at most k images per
    feature that the table names are kept."""
    alive = []

    def stream():
        for _ in range(20):
            batch = rng.standard_normal((5, 3, 9, 9))
            alive.append(weakref.ref(batch))
            yield batch
    table = rank_top_k(net, stream(), [1], k=2)[1]
    gc.collect()
    assert sum(ref() is not None for ref in alive) == 0
    assert len(table.images) <= 2 * 4 and table.n_images == 100
    for index, image in table.images.items():
        assert image.shape == (3, 9, 9) and image.base is None   # a copy, not a view


def test_table_without_images(net, images):
    table = rank_top_k(net, images, [2], k=3, keep_images=False)[2]
    assert table.images is None
    with pytest.raises(ValueError, match="keeps no images"):
        project_top_k(net, table)
    tops = project_top_k(net, table, [1], load_images=lambda indices: images[indices])
    assert_same(tops[0], brute_force(net, images, 2, 1, 3), 2)


def test_layer_by_name(net, images):
    if not hasattr(net, "names"):
        pytest.skip("this nn.Sequential has no layer names yet")
    name = net.names[4]
    by_name = top_k(net, images, name, k=2, channels=[1])
    assert_same(by_name[0], top_k(net, images, 4, k=2, channels=[1])[0], 4)
    with pytest.raises((ValueError, TypeError)):
        top_k(net, images, "no such layer", k=2)


def test_float32(rng, images):
    net = make_net(rng, np.float32)
    x = images.astype(np.float32)
    tops = top_k(net, x, 2, k=3)
    for channel, top in enumerate(tops):
        assert top.projections.dtype == np.float32
        assert_same(top, top_k_patches(net, x, 2, channel, k=3), 2)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(k=0), ValueError, r"k must be >= 1, got 0"),
    (dict(k=15), ValueError, r"k must be in \[1, 14\] \(one activation per image\)"),
    (dict(k=2.0), TypeError, "k must be an int"),
    (dict(k=True), TypeError, "k must be an int"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(batch_size=None), TypeError, "batch_size must be an int"),
    (dict(channels=3), TypeError, "channels must be None or a sequence of ints"),
    (dict(channels=[]), ValueError, "channels must name at least one channel"),
    (dict(channels=[0, 5]), ValueError, r"channel must be in \[0, 5\) \(layer 4 \(ReLU\)"),
    (dict(channels=["a"]), TypeError, "channel must be an int"),
    (dict(layer=7), ValueError, r"layer must be an index in \[-7, 7\)"),
    (dict(layer=1.5), TypeError, r"layer must be an index in \[-7, 7\) .* or a name of "
                                 r"net.names"),
    (dict(rule="nope"), ValueError, "rule"),
])
def test_errors_before_any_work(net, images, monkeypatch, kwargs, error, message):
    monkeypatch.setattr(net, "trace", lambda *a, **k: pytest.fail("worked before checking"))
    args = dict(layer=4, k=3) | kwargs
    with pytest.raises(error, match=message):
        top_k(net, images, **args)


@pytest.mark.parametrize("source, error, message", [
    (lambda x: x.astype(np.int64), TypeError, "images must have dtype float32 or float64"),
    (lambda x: x[0], ValueError, r"images must be 4-D \(N, C, H, W\), got shape \(3, 9, 9\)"),
    (lambda x: x[:0], ValueError, "images is empty"),
    (lambda x: iter([]), ValueError, "images is empty: the iterable gave no batch"),
    (lambda x: [x[:3], x[3:].astype(np.float32)], ValueError,
     r"batch 1 is float32 \(3, 9, 9\) but batch 0 is float64"),
    (lambda x: [x[:3], x[3:, :, :8]], ValueError, r"batch 1 is float64 \(3, 8, 9\)"),
    (lambda x: [x[:3], list(x[3:])], TypeError, "batch 1 must be an array"),
    (lambda x: [x[0], x[1]], ValueError, "batch 0 must be 4-D"),
    (lambda x: [x[:2]], ValueError, r"k must be in \[1, 2\] .*there are 2 images"),
    (lambda x: "images/", TypeError, "images must be an array .* or an iterable"),
    (lambda x: 3, TypeError, "images must be an array"),
    (lambda x: [x[:, :2]], ValueError, "does not fit"),
])
def test_input_errors(net, images, source, error, message):
    with pytest.raises(error, match=message):
        top_k(net, source(images), 4, k=3)


def test_check_layer_keeps_its_messages(net):
    with pytest.raises(ValueError, match=r"layer must be an index in \[-7, 7\) \(the network "
                                         r"has 7 layers; .*\), got -8"):
        visualize.check_layer(net, -8)
    assert visualize.check_layer(net, -1) == 6
    with pytest.raises(TypeError, match="net must be a minideconv.nn.Sequential"):
        visualize.check_layer(object(), 0)


def make_graph(rng):
    """A residual block and a concatenation: conv → ReLU → (conv + itself) → ReLU,
    concatenated with a pooled copy of the first ReLU."""
    def w(*shape):
        return rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))
    return nn.Graph([
        ("conv1", nn.Conv2d(w(4, 3, 3, 3), np.full(4, -0.2), padding=1), ("input",)),
        ("relu1", nn.ReLU(), ("conv1",)),
        ("conv2", nn.Conv2d(w(4, 4, 3, 3), np.zeros(4), padding=1), ("relu1",)),
        ("add", nn.Add(), ("conv2", "relu1")),
        ("relu2", nn.ReLU(), ("add",)),
        ("pool", nn.MaxPool2d(3, stride=1, padding=1), ("relu1",)),
        ("cat", nn.Concat(), ("relu2", "pool")),
    ], input_shape=(3, 9, 9))


@pytest.mark.parametrize("layer", ["relu2", "cat", -1])
def test_graph_network(rng, images, layer):
    net = make_graph(rng)
    index = net.index(layer)
    tops = top_k(net, uneven(images), layer, k=3, batch_size=4)
    assert len(tops) == net.layer_shapes()[index][0]
    for channel, top in enumerate(tops):
        assert_same(top, brute_force(net, images, index, channel, 3), index)


# --------------------------------------------------------------------------- no trace, resume

@pytest.mark.parametrize("which", ["sequential", "graph"])
def test_forward_outputs_are_the_traced_outputs_and_keep_nothing_else(rng, images, which):
    """``forward_outputs`` gives the trace's outputs of the layers asked for, exactly,
    and once it has returned no other layer's output or record is alive."""
    net = make_net(rng) if which == "sequential" else make_graph(rng)
    layers = [1, len(net) - 1] if which == "sequential" else ["relu1", "cat", "add"]
    indices = sorted({net.index(layer) for layer in layers})
    trace = net.trace(images, upto=indices[-1])
    alive = []
    forward = type(net.layers[0]).forward
    original = {type(layer): type(layer).forward for layer in net.layers}

    def remembering(method):
        def forward(self, *x):
            y, record = method(self, *x)
            alive.append(weakref.ref(y))
            return y, record
        return forward
    try:
        for kind, method in original.items():
            kind.forward = remembering(method)
        outputs = net.forward_outputs(images, layers)
    finally:
        for kind, method in original.items():
            kind.forward = method
    assert forward is type(net.layers[0]).forward
    assert sorted(outputs) == indices
    for i in indices:
        np.testing.assert_array_equal(outputs[i], trace.outputs[i])
    gc.collect()
    still = [ref() for ref in alive if ref() is not None]
    assert len(still) == len(indices)
    assert all(any(s is outputs[i] for i in indices) for s in still)


def checkpoints(net, images, layers, k, batch_size):
    """The tables ``on_batch`` is given after each batch, and the final result."""
    seen = []
    final = rank_top_k(net, images, layers, k=k, batch_size=batch_size, keep_images=True,
                       on_batch=seen.append)
    return seen, final


def assert_same_tables(got, want):
    assert sorted(got) == sorted(want)
    for layer in want:
        for field in ("values", "indices", "positions"):
            np.testing.assert_array_equal(getattr(got[layer], field),
                                          getattr(want[layer], field))
        assert got[layer].n_images == want[layer].n_images
        assert sorted(got[layer].images) == sorted(want[layer].images)


@pytest.mark.parametrize("stop", [0, 1, 2, 3])
@pytest.mark.parametrize("keep_images", [True, False])
def test_a_pass_resumed_from_any_batch_gives_the_uninterrupted_tables(net, images, stop,
                                                                      keep_images):
    """The tables after batch ``stop`` (4 images a batch; after batch 0 fewer images than
    k), given back as ``resume`` with the rest of the images, are the tables of one pass —
    ties between the duplicated images 2, 9 and 12 included.  The rest goes in batches of
    the same size: a batch of another size may round a Linear layer's outputs otherwise
    (by 1 ulp, BLAS blocking), so ``figure2 --resume`` keeps the batch of its run."""
    layers, k = [2, 4, LINEAR], 5
    seen, whole = checkpoints(net, images, layers, k, 4)
    assert [t[2].n_images for t in seen] == [4, 8, 12, 14]
    assert seen[-1][2].n_images == 14 and seen[0][2].k == 4     # 4 images < k = 5
    rest = images[seen[stop][2].n_images:]
    resumed = rank_top_k(net, rest, layers, k=k, batch_size=4, keep_images=keep_images,
                         resume=seen[stop] if keep_images else {
                             layer: TopKTable(**{**t.__dict__, "images": None})
                             for layer, t in seen[stop].items()})
    if keep_images:
        assert_same_tables(resumed, whole)
    else:
        for layer in whole:
            np.testing.assert_array_equal(resumed[layer].indices, whole[layer].indices)
            np.testing.assert_array_equal(resumed[layer].values, whole[layer].values)


def test_a_finished_pass_resumed_with_no_images_left(net, images):
    seen, whole = checkpoints(net, images, [4], 3, 5)
    assert_same_tables(rank_top_k(net, iter([]), [4], k=3, resume=seen[-1]), whole)


@pytest.mark.parametrize("change, message", [
    (dict(k=4), "does not continue a pass with k=4"),
    (dict(layers=[4, 5]), "this pass ranks layers"),
])
def test_resume_refuses_tables_of_another_pass(net, images, change, message):
    seen, _ = checkpoints(net, images, [4], 3, 5)
    call = dict(layers=[4], k=3)
    call.update(change)
    with pytest.raises(ValueError, match=message):
        rank_top_k(net, images[10:], call["layers"], k=call["k"], resume=seen[1])
    with pytest.raises(TypeError, match="resume must be"):
        rank_top_k(net, images[10:], [4], k=3, resume=[seen[1][4]])


def test_projection_batches_are_reported(net, images):
    table = rank_top_k(net, images, [4], k=3)[4]
    counts = []
    project_top_k(net, table, [0, 2, 3], batch_size=4, on_batch=counts.append)
    assert counts == [4, 4, 1]


@pytest.mark.parametrize("which", ["sequential", "graph"])
@pytest.mark.parametrize("rule", ["deconvnet", "guided", "backprop"])
def test_rows_of_a_trace_are_the_trace_of_those_rows(rng, images, which, rule):
    """Every layer's record, its rows taken (``Layer.record_rows``), is the record of the
    batch of those rows: the way back through ``rows_of_trace`` equals the way back
    through a trace of the repeated images, for every kind of layer these nets have
    (Conv2d, ReLU, MaxPool2d, Flatten, Linear; Add, Concat)."""
    net = make_net(rng) if which == "sequential" else make_graph(rng)
    rows = np.array([3, 0, 3, 3, 1, 0])
    seed_layer = len(net) - 1
    direct = net.trace(images[rows], upto=seed_layer)
    taken = net.rows_of_trace(net.trace(images[:4], upto=seed_layer), rows)
    assert len(taken.outputs) == len(direct.outputs) == len(taken.records)
    seed = rng.standard_normal(direct.outputs[-1].shape)
    # equal to rounding: BLAS may round a Linear layer's rows of a batch of 4 and of 6
    # differently, by an ulp; a wrong row or a record not taken is off by O(1)
    np.testing.assert_allclose(taken.outputs[seed_layer], direct.outputs[seed_layer],
                               rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(net.backward(seed, taken, start=seed_layer, rule=rule),
                               net.backward(seed, direct, start=seed_layer, rule=rule),
                               rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match=r"rows must be a 1-d array of indices in \[0, 4\)"):
        net.rows_of_trace(net.trace(images[:4], upto=1), [4])
