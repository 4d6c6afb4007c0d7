"""minideconv.data's object masks: the pixels each drawn object covers (d ≤ 0), given
beside images that are exactly the images drawn without them."""

from __future__ import annotations

import numpy as np
import pytest

from minideconv import data
from minideconv.data import drawn_dataset

# Checksums of load_dataset("test"/"train", 600) measured before masks existed: any change
# in the order of the random draws would change every image, so these sums move by far
# more than the float rounding a different CPU could bring.
CHECKSUMS = {"test": (936513.2485124602, 632554.0894547986),
             "train": (925614.1393484145, 623005.8943568113)}
FIRST_LABELS = {"test": [5, 1, 0, 9, 9, 8, 9, 7, 8, 1, 0, 7],
                "train": [1, 4, 9, 4, 5, 1, 8, 5, 0, 1, 2, 7]}


@pytest.mark.parametrize("split", ["test", "train"])
def test_masks_leave_every_image_as_it_was(split):
    images, labels, masks = data.load_dataset(split, 600, masks=True)
    plain_images, plain_labels = data.load_dataset(split, 600)
    assert np.array_equal(images, plain_images) and np.array_equal(labels, plain_labels)
    x = images.astype(np.float64)
    total, squares = CHECKSUMS[split]
    assert x.sum() == pytest.approx(total, rel=1e-9)
    assert (x * x).sum() == pytest.approx(squares, rel=1e-9)
    assert labels[:12].tolist() == FIRST_LABELS[split]
    assert masks.shape == (600, 32, 32) and masks.dtype == bool
    # make_chunk with and without masks: the same images, the same labels
    a = drawn_dataset.make_chunk(1, 0, n=50)
    b = drawn_dataset.make_chunk(1, 0, n=50, masks=True)
    assert len(a) == 2 and len(b) == 3
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_mask_fraction_per_class():
    """The share of the image each class's mask covers is what its drawing implies."""
    images, labels, masks = data.load_dataset("test", 1000, masks=True)
    fractions = masks.mean(axis=(1, 2))
    by_class = {name: fractions[labels == k] for k, name in enumerate(data.CLASSES)}
    for name in ("disc", "ring", "square", "triangle", "bar", "cross", "corner"):
        f = by_class[name]       # one object on the background: a few to 30 % of pixels
        assert 0.04 < f.min() and f.max() < 0.35, name
    for name in ("stripes", "checkerboard"):       # the "on" half of a periodic pattern
        assert np.all(np.abs(by_class[name] - 0.5) < 0.07), name
    # dots: discs of radius 0.28 period on a square lattice, π·0.28² ≈ 0.246 of the area
    assert np.all(np.abs(by_class["dots"] - np.pi * 0.28 ** 2) < 0.05)
    # the discs are bigger than the bars (area π r² vs 2·1.3 r · 2 w)
    assert by_class["disc"].mean() > 2 * by_class["bar"].mean()


def _top_pixels_on_mask(images, masks):
    """Per image: take the |mask| pixels that differ most from the background colour (the
    median colour off the mask); the fraction of them that lie on the mask."""
    out = []
    for x, m in zip(images.astype(np.float64), masks):
        background = np.median(x[:, ~m], axis=1)
        distance = np.linalg.norm(x - background[:, None, None], axis=0).ravel()
        top = np.argsort(-distance, kind="stable")[:m.sum()]
        out.append(m.ravel()[top].mean())
    return np.array(out)


def test_mask_is_where_the_image_differs_from_the_background():
    images, labels, masks = data.load_dataset("test", 500, masks=True)
    precision = _top_pixels_on_mask(images, masks)
    for k, name in enumerate(data.CLASSES):
        assert np.median(precision[labels == k]) > 0.9, name
    # a mask moved by 3 pixels is not where the object is: the check can fail
    moved = _top_pixels_on_mask(images, np.roll(masks, (3, 3), axis=(1, 2)))
    assert np.median(moved) < 0.6


def test_dataset_mask_of_one_image():
    images, _, masks = data.load_dataset("test", 520, masks=True)
    for i in (0, 17, 517):
        mask = data.dataset_mask(f"test:{i}")
        assert mask.shape == (32, 32) and mask.dtype == bool
        assert np.array_equal(mask, masks[i])
        assert np.array_equal(data.load_image(f"test:{i}"), images[i])
    assert np.array_equal(data.dataset_mask("train:3"),
                          data.load_dataset("train", 4, masks=True)[2][3])


def test_mask_errors():
    with pytest.raises(ValueError, match="only the dataset's images have masks"):
        data.dataset_mask("grace_hopper")
    with pytest.raises(ValueError, match="the test split has 2000 images"):
        data.dataset_mask("test:2000")
    with pytest.raises(TypeError, match="dataset image name"):
        data.dataset_mask(17)
    with pytest.raises(TypeError, match="masks must be True or False"):
        data.load_dataset("test", 3, masks=1)
