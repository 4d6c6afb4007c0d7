"""The command line's checks, run before any work: each failure is one line that names the
flag and what it accepts.  ``minideconv.cli.program.explain`` turns them into exit codes:

* ``UsageError`` (exit 2): a value is wrong in itself — malformed, out of range, or a path
  that does not exist or is the wrong kind of thing.  Fixing the command line fixes it.
* ``RunError`` (exit 1): the command line is fine but the run cannot go on — a file's
  content, a permission, the memory of the machine, a missing optional package.

Where the output goes (``--out``) is checked in ``minideconv.cli.outputs``.
"""

from __future__ import annotations

import argparse
import os
import re
import textwrap
import zipfile
import zlib

ZIP_MAGIC = b"PK\x03\x04"      # an .npz is a zip archive


def paragraph(text):
    """A --help description, wrapped to 79 columns."""
    return textwrap.fill(text, width=79)


class UsageError(Exception):
    """A flag's value is wrong in itself (exit 2)."""


class RunError(Exception):
    """The run cannot go on although the command line is well formed (exit 1)."""


# --------------------------------------------------------------------------- parse time

def integer(low=None, high=None, why=""):
    """An argparse ``type=``: an int in [low, high] (None: no bound on that side)."""
    if low is None:
        accepted = "an integer"
    elif high is None:
        accepted = f"an integer >= {low}"
    else:
        accepted = f"an integer in [{low}, {high}]"
    if why:
        accepted += f" ({why})"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {accepted}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {accepted}, got {value}")
        return value

    parse.__name__ = "integer"      # argparse names the type in some of its messages
    return parse


def real(low=0.0):
    """An argparse ``type=``: a finite number >= low."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (low <= value < float("inf")):       # nan and inf fail too
            raise argparse.ArgumentTypeError(f"must be a finite number >= {low:g}, got "
                                             f"{text!r}")
        return value

    parse.__name__ = "real"
    return parse


#: ``memory_size``: a number, then K, M, G or T (powers of 1024; "MiB" and "MB" alike)
MEMORY_AMOUNT = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def memory_size(text):
    """An argparse ``type=``: an amount of memory, ``"512M"``, ``"1.5G"``, ``"2GiB"`` or
    bytes (``"4096"``), → the bytes, an int >= 1."""
    found = MEMORY_AMOUNT.fullmatch(text)
    value = 0 if found is None else \
        float(found[1]) * 1024 ** " KMGT".index(found[2].upper() or " ")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an amount of memory of at least 1 byte, "
                                         f"such as 512M, 1.5G or 2GiB (powers of 1024) or "
                                         f"bytes, got {text!r}")
    return int(value)


def position(text):
    """An argparse ``type=``: ``"H,W"`` → (h, w), two integers >= 0."""
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        h = w = -1
    if h < 0 or w < 0:
        raise argparse.ArgumentTypeError(f"must be H,W (two integers >= 0, e.g. 3,4), "
                                         f"got {text!r}")
    return h, w


# --------------------------------------------------------------------------- inputs

def load_network(path):
    """The network of ``--model`` (the shipped one when None), its file checked first."""
    from ..data import load_model
    from ..nn import load
    if path is None:
        return load_model()
    _existing_model_file(path, "a network file (.npz)")
    _check_zip_header(path)
    try:
        return load(path)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise RunError(f"--model: {path!r} is damaged (not a complete .npz): "
                       f"{err}") from None
    except (ValueError, KeyError) as err:
        if "allow_pickle" in str(err):      # numpy's advice is not ours to give
            raise RunError(f"--model: {path!r} is not a minideconv network file (.npz): it "
                           f"holds Python objects, not plain arrays") from None
        raise RunError(f"--model: {err}") from None


def _existing_model_file(path, kind):
    """``--model`` must name a file that exists and is a regular file (not a folder)."""
    if not os.path.exists(path):
        raise UsageError(f"--model: no such file: {path!r}")
    if os.path.isdir(path):
        raise UsageError(f"--model: {path!r} is a folder, not {kind}")
    regular_file(path, "--model", kind)


def _check_zip_header(path):
    """An .npz is a zip file: anything else is not a network file, whatever its name."""
    try:
        with open(path, "rb") as file:
            head = file.read(len(ZIP_MAGIC))
    except OSError as err:
        raise RunError(f"--model: cannot read {path!r}: {err.strerror}") from None
    if head != ZIP_MAGIC:
        raise RunError(f"--model: {path!r} is not a minideconv network file (.npz)")


def load_any_network(path, input_hw=None):
    """``--model``: the shipped network (None), a minideconv .npz, or an ONNX file
    (``interop.onnx.from_onnx``, imported only then; ``input_hw`` (H, W) from ``--size``
    for a file whose input has no fixed size)."""
    if path is None or not path.lower().endswith(".onnx"):
        return load_network(path)
    _existing_model_file(path, "an .onnx file")
    try:
        from ..interop.onnx import from_onnx
        from ..interop.onnx import load_model as load_onnx
        model = load_onnx(path)
    except ImportError:
        raise RunError("--model: reading an .onnx file needs the onnx package, which is "
                       "not installed: pip install onnx") from None
    except Exception as err:          # onnx's own parse errors have many types
        raise RunError(f"--model: {path!r} is not a readable ONNX file: "
                       f"{type(err).__name__}: {err}") from None
    try:
        return from_onnx(model)
    except (ValueError, TypeError, NotImplementedError) as err:
        if input_hw is None:
            raise RunError(f"--model: {err}") from None
        first = str(err)
    try:                              # no fixed input size: the one --size gives
        return from_onnx(model, input_shape=(3,) + tuple(input_hw))
    except (ValueError, TypeError, NotImplementedError) as err:
        raise RunError(f"--model: {first}; with --size {input_hw[0]} {input_hw[1]}: "
                       f"{err}") from None


def regular_file(path, flag, wanted):
    """An existing path must be a regular file: a device, pipe or socket would be read
    forever, or not at all."""
    if not os.path.isfile(path):
        raise UsageError(f"{flag}: {path!r} is not a regular file (a device, a pipe or a "
                         f"socket); give {wanted}")


def network_input_shape(net, hw):
    """(C, H, W) the images are made for: the network's input shape, or ``--size``'s
    ``hw`` (H, W) with the channels of its first layer."""
    if net.input_shape is not None:
        if hw is not None and tuple(net.input_shape[1:]) != hw:
            raise UsageError(f"--size: the network takes {tuple(net.input_shape)} inputs; "
                             f"give --size {net.input_shape[1]} {net.input_shape[2]} or "
                             f"leave it out")
        return tuple(net.input_shape)
    if hw is None:
        raise UsageError("--size: the network does not say its input size; give --size "
                         "H W (e.g. --size 224 224)")
    channels = getattr(net.layers[0], "in_channels", None)
    if channels is None:
        raise RunError(f"--model: the network's first layer ({net.describe(0)}) does not "
                       f"say how many input channels it takes")
    return (int(channels),) + hw


def image_folder(path, flag="--images"):
    """A folder that exists (its images are listed later)."""
    from ..data.images import SUFFIXES
    if not os.path.exists(path):
        raise UsageError(f"{flag}: no such folder: {path!r}")
    if not os.path.isdir(path):
        raise UsageError(f"{flag}: {path!r} is a file; give a folder of "
                         f"{'/'.join(SUFFIXES)} images")
    if not os.access(path, os.R_OK | os.X_OK):
        raise RunError(f"{flag}: cannot read the folder {path!r}: permission denied")
    return path


def check_network_input(net, image_shape):
    """The network must take the images the CLI gives it."""
    if net.input_shape is not None and tuple(net.input_shape) != tuple(image_shape):
        raise RunError(f"--model: the network takes inputs of shape {net.input_shape}, "
                       f"but the images are {tuple(image_shape)}")
    try:
        return net.layer_shapes(image_shape)
    except ValueError as err:
        raise RunError(f"--model: the network cannot take {tuple(image_shape)} images: "
                       f"{err}") from None


def _sources():
    from ..data import SAMPLE_IMAGES, SPLITS
    names = ", ".join(SAMPLE_IMAGES)
    indices = " / ".join(f"{split}:<i>" for split in SPLITS)
    return f"an image file, a sample name ({names}) or {indices}"


def load_image(text, shape=(3, 32, 32), resize=None, mean=None, std=None, dtype="float32"):
    """The image of ``--image``, a (C, H, W) array for a network that takes ``shape``: an
    image file or a sample name, read by ``data.images.read_file`` (``resize``, ``mean``,
    ``std``), or ``<split>:<i>`` within the split — a 3 × 32 × 32 drawn image, so only
    for such a network (normalised with ``mean`` and ``std`` too)."""
    from ..data import SAMPLE_IMAGES, SIZE, SPLITS, sample_path
    from ..data import load_image as load
    from ..data.images import ImageReadError, normalize, read_file
    split, sep, _ = text.partition(":")
    if split in SPLITS and sep:
        try:
            image = load(text)
        except ValueError as err:           # an index out of the split, or not a number
            raise UsageError(f"--image: {str(err).removeprefix('image ')}") from None
        if tuple(shape) != image.shape:
            raise UsageError(f"--image: {text!r} is a {'x'.join(map(str, image.shape))} "
                             f"dataset image, but the network takes {tuple(shape)} inputs; "
                             f"give an image file or a sample name "
                             f"({', '.join(SAMPLE_IMAGES)})")
        if resize not in (None, SIZE):
            raise UsageError(f"--resize: {text!r} is a dataset image, already "
                             f"{SIZE}x{SIZE}; --resize applies to image files and sample "
                             f"names; leave it out")
        return normalize(image, mean, std, dtype)
    path = sample_path(text) if text in SAMPLE_IMAGES else text
    if os.path.isdir(path):
        raise UsageError(f"--image: {text!r} is a folder; give {_sources()}")
    if not os.path.exists(path):
        raise UsageError(f"--image: {text!r} is not {_sources()}")
    regular_file(path, "--image", _sources())
    try:
        return read_file(path, tuple(shape[1:]), shape[0], resize, mean, std, dtype)
    except ImageReadError as err:           # a file Pillow cannot read
        raise RunError(f"--image: could not read {path!r} as an image: {err}") from None


# --------------------------------------------------------------------------- layers

def layer_indices(net, values):
    """``--layer`` (repeated, or comma-separated): each a name from ``net.names`` or an
    index in [-n, n) (negative counts from the end); returns the indices, in order, once
    each."""
    found = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                raise UsageError(f"--layer: an empty name in {value!r}; must be "
                                 f"{net.accepted_layers()}")
            index = layer_index(net, part)
            if index not in found:
                found.append(index)
    return found


def layer_index(net, text, flag="--layer"):
    """``--layer``'s ``text`` (or that of another ``flag`` naming a layer), a name of
    ``net.names`` or ``net.aliases`` or an integer, as ``net.index`` takes it (its
    ValueError, "layer must be …", becomes "--layer: must be …"); a name wins over an
    index ("0" names a nested Sequential, not layer 0)."""
    layer = text
    if text not in net.names and text not in net.aliases:
        try:
            layer = int(text)
        except ValueError:
            pass                            # not a number: net.index says no such name
    try:
        return net.index(layer)
    except ValueError as err:
        raise UsageError(f"{flag}: {str(err).removeprefix('layer ')}") from None


def channel_index(net, shapes, layer, channel):
    """``--channel`` in [0, channels of that layer's output), as
    ``visualize.check_channel`` checks it."""
    from ..visualize.projection import check_channel
    try:
        return check_channel(shapes[layer], channel, net.describe(layer))
    except ValueError as err:
        raise UsageError(f"--channel: {str(err).removeprefix('channel ')}") from None


def position_in(net, shapes, layer, position):
    """``--position`` inside that layer's feature map (None: its maximum)."""
    if position is None:
        return None
    if len(shapes[layer]) != 3:
        raise UsageError(f"--position: {net.describe(layer)} has no spatial positions "
                         f"(its output is a vector); leave --position out")
    height, width = shapes[layer][1:]
    if not (position[0] < height and position[1] < width):
        raise UsageError(f"--position: must lie in the {height}x{width} feature map of "
                         f"{net.describe(layer)} (H in [0, {height}), W in [0, {width})), "
                         f"got {position[0]},{position[1]}")
    return position


# --------------------------------------------------------------------------- memory

def available_memory():
    """Bytes a new allocation can get: MemAvailable on Linux, else the free physical
    pages; None when the system does not say."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def traced_bytes(shapes, image_shape, n, itemsize=4):
    """Memory of a forward trace of n images: the input and every layer's output, twice
    over for the pooling switches, ReLU masks and working buffers."""
    floats = _size(image_shape) + sum(_size(s) for s in shapes)
    return 2 * n * floats * itemsize


def dataset_bytes(n, image_shape, itemsize=4):
    """Memory of n generated images and their labels."""
    return n * (_size(image_shape) * itemsize + 8)


def check_memory(needed, flag, value):
    """Refuse, before any work, a run that cannot fit in the memory left."""
    available = available_memory()
    if available is not None and needed > available:
        raise RunError(f"{flag} {value} needs about {amount(needed)} of memory but "
                       f"{amount(available)} is available; give a smaller {flag}")


def _size(shape):
    count = 1
    for v in shape:
        count *= int(v)
    return count


def amount(nbytes):
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.1f} GiB"
    return f"{nbytes / 2**20:.1f} MiB"


# --------------------------------------------------------------------------- packages

def require(*packages, why):
    """Optional packages (``crosscheck``'s torch and captum) must be importable."""
    from importlib.util import find_spec
    missing = []
    for name in packages:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise RunError(f"{why} needs {' and '.join(missing)}, which "
                       f"{'is' if len(missing) == 1 else 'are'} not installed: "
                       f'pip install "torch==2.13.0" captum')
