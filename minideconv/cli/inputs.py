"""What a command feeds its network, for ``figure2`` and ``project`` alike: the flags
``--model``, ``--size``, ``--resize`` and ``--normalize``, defined once (``add_flags``) and
checked once (``network_input``), before any image is read.

    net, shape, shapes, normalize, mean, std = network_input(args)

``shape`` (C, H, W) is the network's input shape (or ``--size``'s, for a network that does
not fix its own); every image is read for it by ``minideconv.data.images``: grey for one
channel, RGB for three, the shorter side scaled to ``--resize`` and the centre cropped,
then ``--normalize`` (default: imagenet for an .onnx model, none for an .npz and the
shipped network).
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

from . import checks


class NetworkInput(NamedTuple):
    """The network of ``--model`` and how its images are read (``network_input``)."""
    net: object
    shape: Tuple[int, int, int]         # (C, H, W) of one image
    shapes: list                        # each layer's output shape for that image
    normalize: str                      # "imagenet" or "none"
    mean: Optional[tuple]               # per channel, or None
    std: Optional[tuple]


def default_normalize(model):
    """``--normalize``'s default: imagenet for an .onnx file, none for the rest."""
    return "imagenet" if (model or "").lower().endswith(".onnx") else "none"


def network_input(args) -> NetworkInput:
    """Check ``args.model``, ``args.size``, ``args.resize`` and ``args.normalize`` (one
    line naming the flag on the first wrong one) and load the network."""
    from ..data.images import IMAGENET_MEAN, IMAGENET_STD
    if args.size is not None and len(args.size) > 2:
        raise checks.UsageError(f"--size: give H or H W (two integers at most), got "
                                f"{' '.join(map(str, args.size))}")
    hw = None if args.size is None else (args.size[0], args.size[-1])
    net = checks.load_any_network(args.model, hw)
    shape = checks.network_input_shape(net, hw)
    shapes = checks.check_network_input(net, shape)
    if shape[0] not in (1, 3):
        raise checks.RunError(f"--model: the network takes {shape[0]}-channel inputs; "
                              f"images are read as grey (1) or RGB (3) only")
    normalize = args.normalize or default_normalize(args.model)
    if normalize == "imagenet" and shape[0] != 3:
        raise checks.UsageError(f"--normalize: imagenet needs a network of 3 input "
                                f"channels (RGB); this one takes {shape[0]}; give "
                                f"--normalize none")
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalize == "imagenet" else (None, None)
    if args.resize is not None and args.resize < max(shape[1:]):
        raise checks.UsageError(f"--resize: must be >= {max(shape[1:])}, the crop's "
                                f"longer side (the network takes {shape[1]}x{shape[2]}), "
                                f"got {args.resize}")
    if args.resize is not None:     # one square image, as bytes, floats and a copy
        checks.check_memory(3 * args.resize ** 2 * 9, "--resize", args.resize)
    if args.size is not None:       # a single image's trace already too big
        checks.check_memory(checks.traced_bytes(shapes, shape, 1, net.dtype().itemsize),
                            "--size", " ".join(map(str, args.size)))
    return NetworkInput(net, shape, shapes, normalize, mean, std)


def add_flags(p, normalized, resized):
    """``--model``, ``--normalize``, ``--size`` and ``--resize`` on the parser ``p``;
    ``normalized`` and ``resized`` name the images ``--normalize`` and ``--resize`` apply
    to, e.g. 'each image of --images'."""
    p.add_argument("--model", help="a network: minideconv .npz or .onnx (needs onnx; "
                                   "default: the shipped network)")
    p.add_argument("--normalize", choices=["imagenet", "none"], default=None,
                   help=f"(x - mean) / std with ImageNet's mean and std, or none, for "
                        f"{normalized} (default: imagenet for .onnx models, none for .npz and "
                        f"the shipped network)")
    p.add_argument("--size", type=checks.integer(1), nargs="+", metavar="H [W]",
                   help="input size H W (W = H if left out), for a network that does not "
                        "fix its own; else it must match it")
    p.add_argument("--resize", type=checks.integer(1), metavar="S",
                   help=f"length of the shorter side before the centre crop, for {resized}: "
                        f">= the crop's longer side (default: that side, the largest "
                        f"centred crop; ImageNet models often use 256 for 224)")
