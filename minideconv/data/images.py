"""A folder of one's own photographs as batches for a network, read one file at a time.

    folder = ImageFolder("photos/", size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    for paths, batch in folder.batches(64):      # batch: (len(paths), 3, 224, 224) float32
        ...
    folder.skipped                                # [(path, reason), ...] of files not read

Which files.  ``find_images`` lists the files of the folder (and of its subfolders, with
``recursive=True``) whose names end in .jpg, .jpeg or .png in any case, sorted by their
path relative to the folder; the other files are listed apart, as ignored.  A listed file
that Pillow cannot read (damaged, truncated, a text file named .png, no permission) is
skipped when its turn comes and recorded with the reason, never fatal.

From a file to an array (C, H, W), in this order:

1. Pillow opens it and turns it upright by its EXIF orientation tag (phone photographs).
2. Colours.  Palette and 1-bit images are expanded to RGB, 16-bit grey is scaled by
   1/65535, 8-bit values by 1/255, so every value lies in [0, 1].  Transparent pixels
   (RGBA, grey + alpha, a palette with a transparent colour) are laid over a plain
   ``background``: the normalisation's mean colour (0 once normalised: what the
   convolutions see outside the image), or mid-grey 0.5 without normalisation — a pixel of
   opacity a becomes a·colour + (1 − a)·background.  A grey image given to a 3-channel
   network is repeated in R, G and B; a colour image given to a 1-channel network becomes
   its luma 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as Pillow's "L").
3. Size.  The shorter side m is scaled to ``resize`` = S (default max(H, W), the largest
   centred crop; ImageNet networks are often fed S = 256 for H = W = 224) keeping the
   aspect ratio, and the centre H × W is cut out.  Both happen in one resampling: the
   source rectangle of (W·m/S) × (H·m/S) pixels centred in the image (its corners are
   not rounded to whole pixels) is resampled to W × H — with a box filter (each output
   pixel the area-weighted mean of the source pixels it covers) when it shrinks, bilinear
   when it enlarges, as ``minideconv.data.read_image``.  A JPEG whose shorter side
   exceeds 4·S is first decoded at 1/2, 1/4 or 1/8 scale by libjpeg (Pillow's ``draft``),
   the smallest that keeps at least 2·S on that side: much faster for large photographs,
   and the box filter still averages two or more decoded pixels per output pixel (a
   decode down to S itself would alias; without ``draft``, the result equals
   ``read_image``'s).
4. Values.  With ``mean`` and ``std`` (one per channel), x ↦ (x − mean) / std per channel;
   ``IMAGENET_MEAN``/``IMAGENET_STD`` are torchvision's, for networks trained on ImageNet.
   The shipped network takes the [0, 1] values as they are (``minideconv.data``).

Memory: one decoded file and one batch at a time; ``paths`` lists every file's path.
"""

from __future__ import annotations

import numbers
import os
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA = (0.299, 0.587, 0.114)            # ITU-R 601, Pillow's convert("L")
GREY = 0.5                              # the background without normalisation


class ImageReadError(Exception):
    """One file could not be read as an image; the message is the reason."""


def find_images(folder, recursive: bool = False) -> Tuple[List[str], List[str]]:
    """``(images, others)``: the paths of the files in ``folder`` (and below it, with
    ``recursive``) whose names end in .jpg/.jpeg/.png in any case, and of the other files,
    each list sorted by the path relative to ``folder``.  Symbolic links to files count
    as files; hidden files too."""
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
        if not (isinstance(size, (tuple, list)) and len(size) == 2 and
                all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
                    for v in size)):
            raise ValueError(f"size must be (H, W), two ints >= 1, got {size!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
        self.size = (int(size[0]), int(size[1]))
        smallest = max(self.size)
        if resize is None:
            resize = smallest
        if not isinstance(resize, numbers.Integral) or isinstance(resize, bool) or \
                resize < smallest:
            raise ValueError(f"resize must be an int >= max(H, W) = {smallest} (the crop "
                             f"must fit in the resized image), got {resize!r}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        self.resize = int(resize)
        self.channels = channels
        self.mean = _per_channel(mean, channels, "mean")
        self.std = _per_channel(std, channels, "std")
        if self.std is not None and np.any(self.std <= 0):
            raise ValueError(f"std must be > 0, got {self.std.tolist()}")
        self.dtype = np.dtype(dtype)
        self.background = np.full(channels, GREY) if self.mean is None else self.mean
        self.folder = os.fspath(folder)
        self.paths, self.ignored = find_images(self.folder, recursive)
        self.skipped: List[Tuple[str, str]] = []

    def __len__(self):
        return len(self.paths)

    # ------------------------------------------------------------------ one file

    def read(self, path) -> np.ndarray:
        """One file as a (C, H, W) array of ``dtype``; ``ImageReadError`` with the reason
        when Pillow cannot read it."""
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(path) as image:
                return self._convert(image)
        except MemoryError:
            raise
        except UnidentifiedImageError:
            raise ImageReadError("not an image file that Pillow can read") from None
        except Exception as err:        # damaged or truncated data, permissions, bombs
            raise ImageReadError(f"{type(err).__name__}: {err}") from None

    def _convert(self, image) -> np.ndarray:
        from PIL import Image, ImageOps
        height, width = self.size
        if image.format == "JPEG":      # decode at 1/2, 1/4, 1/8 scale, >= 2·S
            w, h = image.size
            scale = 2 * self.resize / min(w, h)
            if scale < 1:
                image.draft(image.mode, (int(np.ceil(w * scale)), int(np.ceil(h * scale))))
        image = ImageOps.exif_transpose(image)
        alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or \
            (image.mode in ("P", "L", "RGB") and "transparency" in image.info)
        if image.mode.startswith("I") or image.mode == "F":     # 16/32-bit grey
            image, top = image.convert("F"), (1.0 if image.mode == "F" else 65535.0)
        elif alpha:
            image, top = image.convert("RGBA").convert("RGBa"), 255.0   # premultiplied
        else:
            image, top = image.convert("RGB" if image.mode not in ("L",) else "L"), 255.0

        # shorter side m -> S, then the centre H x W: one resampling of a centred box
        w, h = image.size
        source = min(w, h) / self.resize          # source pixels per output pixel
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
            background = self.background if self.channels == 3 else \
                np.full(3, self.background[0])
            values = colour + (1 - opacity) * background
        values = np.clip(values, 0.0, 1.0)
        if self.channels == 3 and values.shape[-1] == 1:
            values = np.repeat(values, 3, axis=-1)
        elif self.channels == 1 and values.shape[-1] == 3:
            values = values @ np.array(LUMA)[:, None]
        if self.mean is not None:
            values = (values - self.mean) / self.std
        return np.ascontiguousarray(values.transpose(2, 0, 1), dtype=self.dtype)

    # ------------------------------------------------------------------ many files

    def load(self, paths) -> np.ndarray:
        """The files ``paths`` (read before, by ``batches``) as one array (n, C, H, W)."""
        return np.stack([self.read(path) for path in paths])

    def batches(self, batch_size: int = 64, on_file=None) -> Iterator[Tuple[List[str],
                                                                            np.ndarray]]:
        """``(paths, array)`` of up to ``batch_size`` readable images at a time, in the
        order of ``paths``; the files that cannot be read are left out and recorded in
        ``skipped`` as (path, reason).  ``on_file(path)``, if given, is called after each
        file, read or not (e.g. a progress bar's update)."""
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or \
                batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.skipped = []
        paths, arrays = [], []
        for path in self.paths:
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
