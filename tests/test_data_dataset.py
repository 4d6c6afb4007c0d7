"""minideconv.data: the generated dataset, the shipped model, images from files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from minideconv import data, nn
from minideconv.train import accuracy


def test_dataset_shapes_and_values():
    images, labels = data.load_dataset("test", n=1000)      # two chunks of 500
    assert images.shape == (1000, 3, 32, 32) and images.dtype == np.float32
    assert labels.shape == (1000,) and labels.dtype == np.int64
    assert images.min() >= 0 and images.max() <= 1
    assert np.array_equal(np.bincount(labels), np.full(len(data.CLASSES), 100))
    # real variety: images of one class differ in colour and position
    discs = images[labels == 0]
    assert discs.mean(axis=(2, 3)).std(axis=0).min() > 0.1


def test_dataset_is_deterministic_and_prefix_stable():
    a_images, a_labels = data.load_dataset("test", n=700)
    b_images, b_labels = data.load_dataset("test", n=120)
    assert np.array_equal(a_images[:120], b_images)
    assert np.array_equal(a_labels[:120], b_labels)
    again = data.load_dataset("test", n=700)[0]
    assert np.array_equal(a_images, again)
    train = data.load_dataset("train", n=120)[0]
    assert not np.allclose(train, b_images)
    assert data.load_dataset("test", n=0)[0].shape == (0, 3, 32, 32)


def test_dataset_errors():
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\)"):
        data.load_dataset("validation")
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        data.load_dataset("test", n=-1)


def test_shipped_model_is_accurate():
    """≥ 95 % on load_dataset("test") (the first 400 images here; the full 2000 are
    measured by `minideconv train`)."""
    net = data.load_model()
    images, labels = data.load_dataset("test", n=400)
    assert accuracy(net, images, labels) >= 0.95


def test_shipped_model_file():
    path = data.model_path()
    assert os.path.getsize(path) < 1_000_000
    net = nn.load(path)
    assert net.input_shape == (3, 32, 32)
    assert net.layer_shapes()[-1] == (len(data.CLASSES),)
    assert all(a.dtype == np.float32 for layer in net.layers for a in layer.params().values())


def test_sample_image():
    image = data.sample_image("grace_hopper")
    assert image.shape == (3, 32, 32) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1 and image.std() > 0.05
    assert data.sample_image("grace_hopper", size=48).shape == (3, 48, 48)
    with pytest.raises(ValueError, match="unknown sample image 'mona_lisa'"):
        data.sample_image("mona_lisa")


def test_load_image_from_files(tmp_path):
    import matplotlib.image
    rng = np.random.default_rng(0)
    wide = rng.uniform(0, 1, (40, 80, 3))
    wide[:, 20:60] = [1.0, 0.0, 0.0]                  # the centre square is red
    path = tmp_path / "wide.png"
    matplotlib.image.imsave(path, wide)
    image = data.load_image(str(path))
    assert image.shape == (3, 32, 32)
    assert np.allclose(image[:, 2:-2, 2:-2].mean(axis=(1, 2)), [1, 0, 0], atol=0.02)
    grey = tmp_path / "grey.jpg"
    from PIL import Image
    Image.fromarray(np.full((50, 50), 128, np.uint8)).save(grey)
    assert np.allclose(data.load_image(grey), 128 / 255, atol=0.01)


def test_load_image_sources_and_errors(tmp_path):
    assert np.array_equal(data.load_image("test:5"), data.load_dataset("test", n=6)[0][5])
    assert data.load_image("grace_hopper").shape == (3, 32, 32)
    with pytest.raises(FileNotFoundError, match="image file not found"):
        data.load_image(str(tmp_path / "nope.png"))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="could not read .* as an image"):
        data.load_image(str(text))
    with pytest.raises(ValueError, match="expected test:<index>"):
        data.load_image("test:first")
    with pytest.raises(TypeError, match="image must be an array"):
        data.load_image(3)
    with pytest.raises(ValueError, match=r"image must be a \(3, H, W\) array"):
        data.load_image(np.zeros((32, 32)))
