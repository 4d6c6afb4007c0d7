"""visualize.figure2_dask: Figure 2's ranking on a Dask cluster of 2 worker processes gives
``rank_top_k``'s tables bit for bit — ties included, over batch sizes that do not divide
the stream, an array, an iterable and a folder read on the workers; and the merge of two
top-k tables, on hand-made tables, against a sort of the whole stream."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from minideconv import data
from minideconv.data.images import ImageFolder
from minideconv.visualize import batch_top_k, merge_top_k, rank_top_k
from minideconv.visualize.figure2_dask import (PartialRanking, TooFewImages,
                                               merge_partials, rank_folder_dask,
                                               rank_top_k_dask)

LAYERS = [2, -1]        # a convolution's ReLU (many exact 0 maxima) and the last layer


# --------------------------------------------------------------------------- the merge

def whole_stream_top_k(values, positions, k):
    """The reference: every image's maximum sorted over the whole stream by −value with a
    stable sort (ties: the earlier image first), ranks × C."""
    order = np.argsort(-values, axis=0, kind="stable")[:k]
    return (np.take_along_axis(values, order, axis=0), order,
            np.take_along_axis(positions, order[..., None], axis=0))


def hand_made(rng, n=40, channels=3, h=2, w=3):
    """Activations (n, C, h, w) of few distinct values: many ties within and between
    images."""
    return rng.integers(0, 4, (n, channels, h, w)).astype(np.float64)


def part_table(activation, numbers, k):
    return batch_top_k(activation[numbers], numbers, k)


def assert_tables_equal(got, want):
    for a, b, name in zip(got, want, ("values", "indices", "positions")):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("k", [1, 4, 9])
def test_merge_of_parts_is_the_top_k_of_the_whole_stream(k):
    rng = np.random.default_rng(3)
    activation = hand_made(rng)
    maps = activation.reshape(40, 3, -1)
    values = maps.max(axis=2)
    flat = maps.argmax(axis=2)
    positions = np.stack(np.unravel_index(flat, (2, 3)), axis=-1)
    want = whole_stream_top_k(values, positions, k)
    # contiguous parts in stream order, as rank_top_k folds them
    parts = [np.arange(s, min(s + 7, 40)) for s in range(0, 40, 7)]
    running = None
    for part in parts:
        running = merge_top_k(running, part_table(activation, part, k), k)
    assert_tables_equal(running, want)
    # parts that interleave, merged later part first, in a lopsided tree: the same
    shuffled = rng.permutation(40)
    pieces = [np.sort(shuffled[s:s + 9]) for s in range(0, 40, 9)]
    tables = [part_table(activation, p, k) for p in pieces][::-1]
    lopsided = merge_top_k(tables[0], merge_top_k(merge_top_k(tables[1], tables[2], k),
                                                  merge_top_k(tables[3], tables[4], k), k), k)
    assert_tables_equal(lopsided, want)


def test_merge_is_associative_and_commutative():
    rng = np.random.default_rng(5)
    activation = hand_made(rng, n=30)
    a, b, c = (part_table(activation, np.arange(s, s + 10), 6) for s in (0, 10, 20))
    left = merge_top_k(merge_top_k(a, b, 6), c, 6)
    for x, y, z in itertools.permutations([a, b, c]):
        assert_tables_equal(merge_top_k(x, merge_top_k(y, z, 6), 6), left)
        assert_tables_equal(merge_top_k(merge_top_k(x, y, 6), z, 6), left)
    assert_tables_equal(merge_top_k(None, a, 6), a)
    assert_tables_equal(merge_top_k(a, None, 6), a)


def test_ties_go_to_the_earlier_image_whichever_part_comes_first():
    """Two parts of equal values: the earlier images win, also when the later part is
    given first (a merge by value alone, stable in argument order, would fail here)."""
    ones = np.ones((4, 1, 1, 1))
    early, late = batch_top_k(ones, [0, 1, 2, 3], 3), batch_top_k(ones, [4, 5, 6, 7], 3)
    for merged in (merge_top_k(early, late, 3), merge_top_k(late, early, 3)):
        np.testing.assert_array_equal(merged[1][:, 0], [0, 1, 2])


def test_merge_partials_keeps_only_the_images_its_tables_name():
    x = np.arange(4.0).reshape(4, 1, 1, 1)
    images = {i: np.full((1, 2, 2), i) for i in range(4)}
    a = PartialRanking({0: batch_top_k(x[:2], [0, 1], 2)}, {0: images[0], 1: images[1]},
                       2, [])
    b = PartialRanking({0: batch_top_k(x[2:], [2, 3], 2)}, {2: images[2], 3: images[3]},
                       2, [(9, "broken.png", "not an image")])
    merged = merge_partials(b, a, 2)
    np.testing.assert_array_equal(merged.tables[0][1][:, 0], [3, 2])
    assert sorted(merged.images) == [2, 3] and merged.n_images == 4
    assert merged.skipped == [(9, "broken.png", "not an image")]


def test_batch_top_k_refuses_indices_of_another_length():
    with pytest.raises(ValueError, match="one stream index per image"):
        batch_top_k(np.zeros((3, 2, 2, 2)), [0, 1], 2)


# --------------------------------------------------------------------------- on a cluster

@pytest.fixture(scope="module")
def client():
    """2 worker processes of 1 thread on this machine, started once for the module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def net():
    return data.load_model()


@pytest.fixture(scope="module")
def images():
    """23 images of the shipped network's size, with duplicates: every feature ties
    between images 1, 8 and 17, and between 4 and 20."""
    x = np.random.default_rng(11).random((23, 3, 32, 32)).astype(np.float32)
    x[8] = x[17] = x[1]
    x[20] = x[4]
    return x


def assert_same_tables(got, want, keep_images=True):
    assert sorted(got) == sorted(want)
    for layer in want:
        for field in ("values", "indices", "positions"):
            np.testing.assert_array_equal(getattr(got[layer], field),
                                          getattr(want[layer], field), err_msg=field)
        assert (got[layer].n_images, got[layer].image_shape, got[layer].dtype) == \
            (want[layer].n_images, want[layer].image_shape, want[layer].dtype)
        if keep_images:
            assert sorted(got[layer].images) == sorted(want[layer].images)
            for i, image in want[layer].images.items():
                np.testing.assert_array_equal(got[layer].images[i], image)
        else:
            assert got[layer].images is None


def test_the_tie_is_there(net, images):
    """The duplicates do tie in the top k, so that the tests below see ties broken."""
    table = rank_top_k(net, images, LAYERS, k=5, batch_size=5)[9]
    tied = [set(row) for row in table.indices.tolist()]
    assert any({1, 8, 17} <= row for row in tied)


@pytest.mark.parametrize("batch_size", [1, 5, 7, 23])
@pytest.mark.parametrize("keep_images", [True, False])
def test_an_array_ranks_as_rank_top_k(client, net, images, batch_size, keep_images):
    want = rank_top_k(net, images, LAYERS, k=5, batch_size=batch_size,
                      keep_images=keep_images)
    got = rank_top_k_dask(client, net, images, LAYERS, k=5, batch_size=batch_size,
                          keep_images=keep_images)
    assert_same_tables(got, want, keep_images)


def test_an_iterable_of_uneven_batches_over_several_windows(client, net, images,
                                                            monkeypatch):
    from minideconv.visualize import figure2_dask
    monkeypatch.setattr(figure2_dask, "WINDOW_PER_THREAD", 1)   # windows of 2 batches
    stream = [images[:6], images[6:7], images[7:16], images[16:]]
    want = rank_top_k(net, iter(stream), LAYERS, k=4, batch_size=4)
    got = rank_top_k_dask(client, net, iter(stream), LAYERS, k=4, batch_size=4)
    assert_same_tables(got, want)


def write_folder(folder, images, broken=()):
    """The images as 8-bit PNGs, named in stream order, and unreadable files at the
    file numbers ``broken``."""
    from PIL import Image
    folder.mkdir()
    names = []
    for i, image in enumerate(images):
        pixels = np.round(image.transpose(1, 2, 0) * 255).astype(np.uint8)
        names.append(f"{i:03d}.png")
        Image.fromarray(pixels).save(folder / names[-1])
    for number in broken:       # between the images, by name
        (folder / f"{number:03d}_broken.png").write_text("not an image\n")
    return folder


def per_task_batches(folder, batch_size):
    """The batches rank_folder_dask's tasks read: the readable files of each run of
    ``batch_size`` files."""
    for start in range(0, len(folder), batch_size):
        readable = []
        for path in folder.paths[start:start + batch_size]:
            try:
                readable.append(folder.read(path))
            except Exception:
                continue
        if readable:
            yield np.stack(readable)


@pytest.mark.parametrize("batch_size", [4, 6])
def test_a_folder_read_on_the_workers_ranks_as_rank_top_k(client, net, images, tmp_path,
                                                          batch_size):
    folder = ImageFolder(write_folder(tmp_path / "photos", images, broken=(3, 10)),
                         (32, 32))
    want = rank_top_k(net, per_task_batches(folder, batch_size), LAYERS, k=5,
                      batch_size=batch_size)
    tables, paths, skipped = rank_folder_dask(client, net, folder, LAYERS, k=5,
                                              batch_size=batch_size, keep_images=True)
    assert_same_tables(tables, want)
    assert paths == [str(tmp_path / "photos" / f"{i:03d}.png") for i in range(23)]
    assert [p.rsplit("/", 1)[1] for p, _ in skipped] == ["003_broken.png",
                                                         "010_broken.png"]
    # with every file readable, the tasks' batches are ImageFolder.batches' own
    clean = ImageFolder(write_folder(tmp_path / "clean", images), (32, 32))
    want = rank_top_k(net, (b for _, b in clean.batches(batch_size)), LAYERS, k=5,
                      batch_size=batch_size, keep_images=False)
    assert_same_tables(rank_folder_dask(client, net, clean, LAYERS, k=5,
                                        batch_size=batch_size)[0], want, False)


def test_a_folder_continues_a_resumed_ranking(client, net, images, tmp_path):
    folder = ImageFolder(write_folder(tmp_path / "photos", images), (32, 32))
    seen = []
    whole = rank_top_k(net, (b for _, b in folder.batches(5)), LAYERS, k=4,
                       batch_size=5, on_batch=seen.append)
    read = seen[1][9].n_images          # the tables after two batches: 10 files
    counted = []
    tables, paths, _ = rank_folder_dask(client, net, folder, LAYERS, k=4, batch_size=5,
                                        keep_images=True, first=read, resume=seen[1],
                                        on_files=counted.append)
    assert_same_tables(tables, whole)
    assert len(paths) == 23 - read and sum(counted) == 23 - read


def test_refusals(client, net, images, tmp_path):
    with pytest.raises(TooFewImages, match=r"k must be in \[1, 23\]"):
        rank_top_k_dask(client, net, images, LAYERS, k=24)
    with pytest.raises(TypeError, match="folder must be an ImageFolder"):
        rank_folder_dask(client, net, str(tmp_path), LAYERS)
    with pytest.raises(ValueError, match="layers must name at least one layer"):
        rank_top_k_dask(client, net, images, [])
    folder = ImageFolder(write_folder(tmp_path / "few", images[:2], broken=(0,)), (32, 32))
    with pytest.raises(TooFewImages, match=r"k must be in \[1, 2\]"):
        rank_folder_dask(client, net, folder, LAYERS, k=3)


def test_a_relative_folder_is_read_where_the_client_sees_it(client, net, images, tmp_path,
                                                            monkeypatch):
    """The workers started in another folder: they get the files' absolute paths, and
    the paths returned are the folder's own."""
    write_folder(tmp_path / "photos", images[:6], broken=(2,))
    monkeypatch.chdir(tmp_path)
    folder = ImageFolder("photos", (32, 32))
    tables, paths, skipped = rank_folder_dask(client, net, folder, LAYERS, k=3,
                                              batch_size=4)
    assert paths == [f"photos/{i:03d}.png" for i in range(6)]
    assert skipped == [("photos/002_broken.png", "not an image file that Pillow can read")]
    want = rank_top_k(net, per_task_batches(folder, 4), LAYERS, k=3, batch_size=4,
                      keep_images=False)
    assert_same_tables(tables, want, False)
