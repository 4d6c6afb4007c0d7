"""The embedded default: a dataset drawn in code, a network trained on it, and images.

* ``load_dataset(split)`` — ten classes of coloured shapes and textures (``CLASSES``),
  generated deterministically (``drawn_dataset``): nothing is downloaded.  With
  ``masks=True`` also every object's mask, the pixels the object covers (``drawn_dataset``
  says what that is for the textures); ``dataset_mask("test:17")`` is one image's.
* ``load_model()`` — the small ZF-like network of ``minideconv.models.build_model``, trained
  on ``load_dataset("train")`` by ``minideconv train`` and shipped as ``model.npz``.
* ``sample_image(name)`` — natural photographs that ship with matplotlib (their files:
  ``sample_path(name)``).
* ``load_image(source)`` — any of these by name, ``"test:17"`` for a dataset image, or the
  path of your own image file, as a (3, 32, 32) float32 array in [0, 1].

``images`` is the one image pipeline — a file read, turned upright by its EXIF tag, its
transparency laid over mid-grey, its shorter side scaled and its centre cropped to a
network's input (``images.read_file``) — which ``read_image`` (so ``sample_image`` and
``load_image``), ``minideconv project --image`` and ``images.ImageFolder`` (so
``minideconv figure2``) all call: one file gives one array, whichever command reads it.
"""

from __future__ import annotations

import os
from importlib import resources

import numpy as np

from .drawn_dataset import CHUNK, CLASSES, SIZE, make_chunk, make_images

SPLITS = {"train": (0, 20000), "test": (1, 2000)}   # seed, default size
MODEL_FILE = "model.npz"
SAMPLE_IMAGES = {"grace_hopper": "grace_hopper.jpg"}


def load_dataset(split: str = "train", n: int | None = None, masks: bool = False):
    """``(images, labels)``: images (n, 3, 32, 32) float32 in [0, 1], labels (n,) int64
    indexing ``CLASSES``.  ``split`` is ``"train"`` (20 000 images) or ``"test"`` (2 000,
    drawn with another seed); ``n`` takes the first n of a split (any n works — the stream
    goes on — and ``load_dataset(s, n)`` is always a prefix of ``load_dataset(s, m)``).

    ``masks=True`` returns ``(images, labels, masks)``, masks (n, 32, 32) bool: True on
    the pixels the object covers — where the distance it is drawn from is d ≤ 0, so its
    opacity α ≥ 0.5 (``drawn_dataset``; for stripes, checkerboard and dots, the pattern's
    foreground).  The images are the same either way."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    if not isinstance(masks, bool):
        raise TypeError(f"masks must be True or False, got {masks!r}")
    seed, size = SPLITS[split]
    if n is None:
        n = size
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    return make_images(seed, int(n), masks=masks)


def model_path() -> str:
    return str(resources.files(__name__) / MODEL_FILE)


def load_model():
    """The shipped trained network (a ``minideconv.nn.Sequential``, float32)."""
    from ..nn import load
    return load(model_path())


def sample_path(name: str = "grace_hopper") -> str:
    """The file of a photograph shipped with matplotlib.  Names: ``SAMPLE_IMAGES``."""
    import matplotlib
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"unknown sample image {name!r}; choose one of "
                         f"{sorted(SAMPLE_IMAGES)} or give an image file path")
    return os.path.join(matplotlib.get_data_path(), "sample_data", SAMPLE_IMAGES[name])


def sample_image(name: str = "grace_hopper", size: int = SIZE):
    """A photograph shipped with matplotlib, centre-cropped and resized to
    (3, size, size) float32 in [0, 1].  Names: ``SAMPLE_IMAGES``."""
    return read_image(sample_path(name), size)


def read_image(path, size: int = SIZE):
    """An image file (PNG, JPEG, … anything Pillow reads) as (3, size, size) float32 in
    [0, 1]: ``images.read_file`` for a 3-channel size × size network, without
    normalisation — the array ``minideconv figure2`` reads from the same file."""
    from .images import ImageReadError, read_file
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path!r}")
    try:
        return read_file(path, (size, size))
    except ImageReadError as err:
        raise ValueError(f"could not read {path!r} as an image: {err}") from None


def load_image(source, size: int = SIZE):
    """An image from ``source``: a (3, H, W) array (returned as is, checked), a sample
    name (``"grace_hopper"``), ``"train:<i>"`` / ``"test:<i>"`` for image i of a dataset
    split (0 <= i < the split's size, ``SPLITS``), or a file path."""
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[0] != 3:
            raise ValueError(f"image must be a (3, H, W) array, got shape {source.shape}")
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"image must be an array, a sample name or a file path, got "
                        f"{type(source).__name__}")
    text = os.fspath(source)
    if text in SAMPLE_IMAGES:
        return sample_image(text, size)
    split, colon, index = text.partition(":")
    if split in SPLITS and colon:
        return _dataset_image(split, index)
    return read_image(text, size)


def dataset_mask(source: str):
    """The object's mask (32, 32) bool of ``load_image(source)`` for a dataset image,
    ``"train:<i>"`` or ``"test:<i>"``: ``load_dataset(split, masks=True)``'s mask i."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a dataset image name such as 'test:17', got "
                        f"{type(source).__name__}")
    split, colon, index = source.partition(":")
    if split not in SPLITS or not colon:
        raise ValueError(f"only the dataset's images have masks: source must be "
                         f"'train:<i>' or 'test:<i>', got {source!r}")
    return _dataset_image(split, index, masks=True)[1]


def _dataset_image(split, index, masks=False):
    """Image ``index`` of a split, which must hold it: only its chunk is generated (and,
    with ``masks``, ``(image, mask)``)."""
    seed, size = SPLITS[split]
    text = f"{split}:{index}"
    if not (index.isascii() and index.isdigit()):
        raise ValueError(f"image {text!r}: expected {split}:<index>, e.g. {split}:17")
    i = int(index)
    if i >= size:
        raise ValueError(f"image {text!r}: the {split} split has {size} images, so "
                         f"the index must be in [0, {size})")
    chunk = make_chunk(seed, i // CHUNK, masks=masks)   # the chunk load_dataset holds it in
    if masks:
        return chunk[0][i % CHUNK], chunk[2][i % CHUNK]
    return chunk[0][i % CHUNK]


__all__ = ["CLASSES", "load_dataset", "dataset_mask", "load_model", "sample_path", "sample_image",
           "read_image", "load_image", "model_path"]
