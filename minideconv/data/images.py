"""The one image pipeline: a photograph read as a (C, H, W) array for a network.

    x = read_file("photo.jpg", (32, 32))          # one file: what project --image reads
    folder = ImageFolder("photos/", size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    for paths, batch in folder.batches(64):      # batch: (len(paths), 3, 224, 224) float32
        ...
    folder.skipped                                # [(path, reason), ...] of files not read

Every way a file of one's own enters minideconv goes through ``read_file`` (one function,
``_convert``, does the work): ``minideconv.data.read_image`` / ``load_image`` /
``sample_image`` — so ``visualize.project`` given a path and ``visualize.sanity`` —,
``minideconv project --image`` (``read_file`` for its network's input shape) and
``ImageFolder`` — so ``minideconv figure2``.  One file therefore gives one array,
whichever command reads it.

Which files.  ``find_images`` lists the files of the folder (and of its subfolders, with
``recursive=True``) whose names end in one of ``SUFFIXES`` — .jpg .jpeg .png .bmp .gif
.tif .tiff .webp, the common formats Pillow opens — in any case, sorted by their path
relative to the folder; the other files are listed apart, as ignored.  A listed file that
Pillow cannot read (damaged, truncated, empty, a text file named .png, no permission, a
.webp where Pillow was built without libwebp) is skipped when its turn comes and recorded
with the reason, never fatal.  (A GIF or a multi-page TIFF is read by its first frame.)

From a file to an array (C, H, W), in this order:

1. Pillow opens it and turns it upright by its EXIF orientation tag (phone photographs
   store the pixels as the sensor saw them and say, in the tag, how to turn them).
2. Colours.  Every value is scaled to [0, 1] by the file's own bit depth: 8-bit values by
   1/255; 16-bit grey (mode 'I;16', and 'I' from a 16-bit PNG or PGM) by 1/65535; 32-bit
   grey ('I' from a TIFF) by its BitsPerSample (2³¹ − 1 when signed); float ('F') as it
   is.  Palette ('P') and 1-bit images are expanded to their colours, CMYK and YCbCr
   converted to RGB by Pillow.  Transparent pixels (RGBA, LA, PA, a palette or an RGB/L
   image with a transparent colour) are laid over one plain ``background``: a pixel of
   opacity a becomes a·colour + (1 − a)·background (resampled premultiplied, so a
   transparent pixel's hidden colour never bleeds into its neighbours).  A grey image
   given to a 3-channel network is repeated in R, G and B; a colour image given to a
   1-channel network becomes its luma 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as
   Pillow's "L").  The network's channel count decides, not the file.
3. Size.  The shorter side m is scaled to ``resize`` = S (default max(H, W), the largest
   centred crop; ImageNet networks are often fed S = 256 for H = W = 224) keeping the
   aspect ratio, and the centre H × W is cut out — a crop, never a squash.  Both happen in
   one resampling: the source rectangle of (W·m/S) × (H·m/S) pixels centred in the image
   (its corners are not rounded to whole pixels) is resampled to W × H — with a box filter
   (each output pixel the area-weighted mean of the source pixels it covers) when it
   shrinks, bilinear when it enlarges.  A JPEG whose shorter side is at least 8·S is
   first decoded at 1/2, 1/4 or 1/8 scale by libjpeg (Pillow's ``draft``), the smallest
   that keeps at least ``DRAFT``·S = 4·S on that side: several times faster for phone
   photographs, and close to the full decode — ``sample_image("grace_hopper")`` (512 ×
   600, decoded at 1/4) within 3/255 of it, where decoding at 1/8 to keep only 2·S
   (figure2's rule before) was off by up to 55/255.  The reduced decode works on 8 × 8
   blocks that do not line up with the crop; with four decoded pixels per output pixel
   rather than two, that misalignment is half as wide.
4. Values.  With ``mean`` and ``std`` (one per channel), x ↦ (x − mean) / std per channel;
   ``IMAGENET_MEAN``/``IMAGENET_STD`` are torchvision's, for networks trained on ImageNet.
   The shipped network takes the [0, 1] values as they are (``minideconv.data``).
   ``normalize`` applies this step to an array read before (a dataset image), and
   ``denormalize`` undoes it, to show an image as it was read.

The background of transparent pixels is the normalisation's mean colour, or mid-grey 0.5
without a normalisation — neither white nor black.  A transparent pixel has no colour, so
it should give the network as little as possible to respond to: the mean is 0 once
normalised, the value a convolution's zero padding puts outside the image, and mid-grey is
its analogue on [0, 1] pixels (the shipped network's training images have backgrounds of
every colour, uniform in [0, 1]³, whose mean is 0.5).  White or black would draw a
maximal-contrast outline around every cut-out object — an edge that is not in the
photograph, and the first thing an edge detector would fire on.

Memory: one decoded file and one batch at a time; ``paths`` lists every file's path.
"""

from __future__ import annotations

import numbers
import os
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .. import checks

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA = (0.299, 0.587, 0.114)            # ITU-R 601, Pillow's convert("L")
GREY = 0.5                              # the background without normalisation
DRAFT = 4                               # a JPEG's reduced decode keeps >= DRAFT·S pixels
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageReadError(Exception):
    """One file could not be read as an image; the message is the reason."""


def find_images(folder, recursive: bool = False) -> Tuple[List[str], List[str]]:
    """``(images, others)``: the paths of the files in ``folder`` (and below it, with
    ``recursive``) whose names end in one of ``SUFFIXES`` in any case, and of the other
    files, each list sorted by the path relative to ``folder``.  Symbolic links to files
    count as files; hidden files too."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"not a folder: {folder!r}")
    found = []
    if recursive:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            found.extend(os.path.join(root, name) for name in files)
    else:
        found = [entry.path for entry in os.scandir(folder) if entry.is_file()]
    found = [path for path in found if os.path.isfile(path)]   # not dangling links
    found.sort(key=lambda path: os.path.relpath(path, folder))
    images = [path for path in found if path.lower().endswith(SUFFIXES)]
    others = [path for path in found if not path.lower().endswith(SUFFIXES)]
    return images, others


# --------------------------------------------------------------------------- settings

class Reading(NamedTuple):
    """How files are read for one network: checked once by ``reading``."""
    size: Tuple[int, int]               # (H, W)
    channels: int                       # 1 or 3
    resize: int                         # S, the shorter side before the crop
    mean: Optional[np.ndarray]          # (channels,) or None
    std: Optional[np.ndarray]
    dtype: np.dtype
    background: np.ndarray              # (channels,): under transparent pixels


def _per_channel(values, channels, name):
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) not in (1, channels):
        raise ValueError(f"{name} must hold 1 or {channels} values (one per channel), got "
                         f"{len(values)}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got {values.tolist()}")
    return np.broadcast_to(values, (channels,)).copy()


def reading(size, channels: int = 3, resize: Optional[int] = None,
            mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
            dtype=np.float32) -> Reading:
    """The checked settings of ``read_file`` and ``ImageFolder`` (their parameters)."""
    if not (isinstance(size, (tuple, list)) and len(size) == 2 and
            all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
                for v in size)):
        raise ValueError(f"size must be (H, W), two ints >= 1, got {size!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    size = (int(size[0]), int(size[1]))
    smallest = max(size)
    if resize is None:
        resize = smallest
    if not isinstance(resize, numbers.Integral) or isinstance(resize, bool) or \
            resize < smallest:
        raise ValueError(f"resize must be an int >= max(H, W) = {smallest} (the crop "
                         f"must fit in the resized image), got {resize!r}")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    mean = _per_channel(mean, channels, "mean")
    std = _per_channel(std, channels, "std")
    if std is not None and np.any(std <= 0):
        raise ValueError(f"std must be > 0, got {std.tolist()}")
    background = np.full(channels, GREY) if mean is None else mean
    return Reading(size, channels, int(resize), mean, std, np.dtype(dtype), background)


# --------------------------------------------------------------------------- one file

def read_file(path, size, channels: int = 3, resize: Optional[int] = None,
              mean: Optional[Sequence[float]] = None,
              std: Optional[Sequence[float]] = None, dtype=np.float32) -> np.ndarray:
    """One image file as a (C, H, W) array of ``dtype`` (module docstring, steps 1–4);
    ``ImageReadError`` with the reason (one line) when it cannot be read.  The parameters
    are ``ImageFolder``'s."""
    return _read(path, reading(size, channels, resize, mean, std, dtype))


def _read(path, how: Reading) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        if os.stat(path).st_size == 0:
            raise ImageReadError("the file is empty (0 bytes)")
        with Image.open(path) as image:
            return _convert(image, how)
    except (MemoryError, ImageReadError):
        raise
    except UnidentifiedImageError:
        raise ImageReadError("not an image file that Pillow can read") from None
    except Exception as err:        # damaged or truncated data, permissions, bombs
        reason = " ".join(f"{type(err).__name__}: {err}".split())       # one line
        raise ImageReadError(reason) from None


def _full_scale(image) -> float:
    """The value of a full-intensity pixel in the file's mode: its real bit depth."""
    mode = image.mode
    if mode == "F":
        return 1.0
    if mode.startswith("I;16"):
        return 65535.0
    if mode.startswith("I"):        # 32-bit ints: a TIFF says its depth; PNG/PGM: 16
        tags = getattr(image, "tag_v2", None)
        bits = tags.get(258) if tags is not None else None            # BitsPerSample
        if bits:
            bits = int(bits[0] if isinstance(bits, tuple) else bits)
            signed = tags.get(339) in (2, (2,))                      # SampleFormat
            return float(2 ** (bits - 1) - 1 if signed else 2 ** bits - 1)
        return 65535.0
    return 255.0


def _convert(image, how: Reading) -> np.ndarray:
    """An opened Pillow image through steps 1–4 (module docstring)."""
    from PIL import Image, ImageOps
    height, width = how.size
    if 0 in image.size:
        raise ImageReadError(f"the image has no pixels ({image.size[0]} x "
                             f"{image.size[1]})")
    if image.format == "JPEG":      # decode at 1/2, 1/4, 1/8 scale, >= DRAFT·S
        w, h = image.size
        keep, side = DRAFT * how.resize, min(w, h)
        if keep < side:             # each side scaled by keep/side, rounded up (ints)
            image.draft(image.mode, (-(-w * keep // side), -(-h * keep // side)))
    top = _full_scale(image)        # before exif_transpose, which drops a TIFF's tags
    image = ImageOps.exif_transpose(image)
    alpha = image.mode in ALPHA_MODES or \
        (image.mode in ("P", "L", "1", "RGB") and "transparency" in image.info)
    if image.mode.startswith("I") or image.mode == "F":     # 16/32-bit grey, float
        image = image.convert("F")
    elif alpha:
        image, top = image.convert("RGBA").convert("RGBa"), 255.0   # premultiplied
    else:
        image, top = image.convert("L" if image.mode in ("1", "L") else "RGB"), 255.0

    # shorter side m -> S, then the centre H x W: one resampling of a centred box
    w, h = image.size
    source = min(w, h) / how.resize           # source pixels per output pixel
    box_w, box_h = width * source, height * source
    box = ((w - box_w) / 2, (h - box_h) / 2, (w + box_w) / 2, (h + box_h) / 2)
    resample = Image.Resampling.BOX if source >= 1 else Image.Resampling.BILINEAR
    image = image.resize((width, height), resample, box=box)

    values = np.asarray(image, dtype=np.float64) / top
    if values.ndim == 2:
        values = values[..., None]
    if alpha:                                 # premultiplied: a·colour + (1 − a)·bg
        opacity = values[..., 3:]
        colour = values[..., :3]
        background = how.background if how.channels == 3 else \
            np.full(3, how.background[0])
        values = colour + (1 - opacity) * background
    values = np.clip(values, 0.0, 1.0)
    if how.channels == 3 and values.shape[-1] == 1:
        values = np.repeat(values, 3, axis=-1)
    elif how.channels == 1 and values.shape[-1] == 3:
        values = values @ np.array(LUMA)[:, None]
    if how.mean is not None:
        values = (values - how.mean) / how.std
    return np.ascontiguousarray(values.transpose(2, 0, 1), dtype=how.dtype)


# --------------------------------------------------------------------------- values

def _channel_column(values, channels):
    """One value per channel (or one for all) as a (channels, 1, 1) float64 column."""
    column = np.asarray(values, dtype=np.float64).reshape(-1, 1, 1)
    return np.broadcast_to(column, (channels, 1, 1))


def normalize(image, mean=None, std=None, dtype=None) -> np.ndarray:
    """Step 4 on an array already read, (C, H, W) or (N, C, H, W) in [0, 1]: (x − mean) /
    std per channel, in float64 as ``read_file`` computes it, then ``dtype`` (default: the
    image's).  Without ``mean`` and ``std``, the image as it is (in ``dtype``)."""
    image = np.asarray(image)
    dtype = image.dtype if dtype is None else np.dtype(dtype)
    if mean is None and std is None:
        return image.astype(dtype, copy=False)
    channels = image.shape[-3]
    values = (image.astype(np.float64) - _channel_column(mean, channels)) / \
        _channel_column(std, channels)
    return values.astype(dtype)


def denormalize(image, mean=None, std=None) -> np.ndarray:
    """``normalize``'s inverse, x·std + mean: a normalised array back in [0, 1], as read —
    for display.  Without ``mean`` and ``std``, the image itself."""
    if mean is None and std is None:
        return image
    channels = np.shape(image)[-3]
    return np.asarray(image, dtype=np.float64) * _channel_column(std, channels) + \
        _channel_column(mean, channels)


# --------------------------------------------------------------------------- a folder

class ImageFolder:
    """The images of a folder, read as (C, H, W) arrays for a network (module docstring).

    Parameters
    ----------
    folder : the folder to read
    size : (H, W) of the arrays — the network's input size
    channels : 3 (RGB) or 1 (grey), the network's input channels
    resize : S, the length the shorter side is scaled to before the centre crop; None for
        max(H, W).  Must be >= max(H, W).
    mean, std : the normalisation, one value per channel (or one for all), or None
    recursive : also read the subfolders
    dtype : of the arrays (the network's, float32 for the shipped one)
    """

    def __init__(self, folder, size, channels: int = 3, resize: Optional[int] = None,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, recursive: bool = False,
                 dtype=np.float32):
        self.reading = reading(size, channels, resize, mean, std, dtype)
        self.size, self.channels, self.resize = (self.reading.size, self.reading.channels,
                                                 self.reading.resize)
        self.mean, self.std = self.reading.mean, self.reading.std
        self.dtype, self.background = self.reading.dtype, self.reading.background
        self.folder = os.fspath(folder)
        self.paths, self.ignored = find_images(self.folder, recursive)
        self.skipped: List[Tuple[str, str]] = []

    def __len__(self):
        return len(self.paths)

    def read(self, path) -> np.ndarray:
        """One file as a (C, H, W) array of ``dtype`` (``read_file`` with this folder's
        settings); ``ImageReadError`` with the reason when Pillow cannot read it."""
        return _read(path, self.reading)

    def load(self, paths) -> np.ndarray:
        """The files ``paths`` (read before, by ``batches``) as one array (n, C, H, W)."""
        return np.stack([self.read(path) for path in paths])

    def batches(self, batch_size: int = 64, on_file=None,
                first: int = 0) -> Iterator[Tuple[List[str], np.ndarray]]:
        """``(paths, array)`` of up to ``batch_size`` readable images at a time, in the
        order of ``paths`` from ``paths[first]`` on (0: all; more: the rest of a pass that
        stopped there); the files that cannot be read are left out and recorded in
        ``skipped`` as (path, reason).  ``on_file(path)``, if given, is called after each
        file, read or not (e.g. a progress bar's update)."""
        batch_size = checks.check_int(batch_size, "batch_size", 1)
        first = checks.check_int(first, "first", 0)
        self.skipped = []
        paths, arrays = [], []
        for path in self.paths[first:]:
            try:
                arrays.append(self.read(path))
                paths.append(path)
            except ImageReadError as err:
                self.skipped.append((path, str(err)))
            if on_file is not None:
                on_file(path)
            if len(arrays) == batch_size:
                yield paths, np.stack(arrays)
                paths, arrays = [], []
        if arrays:
            yield paths, np.stack(arrays)
