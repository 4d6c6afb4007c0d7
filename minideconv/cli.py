"""The ``minideconv`` command (also ``python -m minideconv``).

    minideconv demo --out figures/          Zeiler & Fergus's figures for the shipped network
    minideconv project --image grace_hopper --layer 5 --channel 3 --out p.png
    minideconv train --out my_model.npz     retrain the shipped network from scratch
    minideconv figure2 --images photos/ --layer 5 --out fig2/   Figure 2 on your own images

Here: the parser (``build_parser``), ``main`` with its exit statuses (``EXIT_STATUS``,
``explain``), and the two short commands, train and crosscheck.  The other commands have
a module each — ``cli_demo``, ``cli_project``, ``cli_figure2`` — whose names are
importable from here too; the flags' checks are ``cli_checks``.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import textwrap
import zipfile
import zlib

import numpy as np

from . import cli_checks, cli_outputs
from . import rules
# each command's work lives in a module of its own; their names stay importable from here
from .cli_demo import (block_outputs, cmd_demo, dataset_image_shape, demo,
                       describe_block, inactive_features)
from .cli_figure2 import (FIGURE2_FEATURES, MAX_K, SKIPPED_SHOWN, TOP_K, cmd_figure2,
                          figure2_file, strongest_channels, top_k_rows)
from .cli_project import cmd_project, layer_name, zero_projection_note

__all__ = [
    "main", "build_parser", "EXIT_STATUS", "explain", "MEMORY_HINTS", "MAX_EPOCHS",
    "demo", "cmd_demo", "block_outputs", "describe_block", "inactive_features",
    "cmd_project", "zero_projection_note", "layer_name",
    "cmd_figure2", "figure2_file", "top_k_rows", "strongest_channels", "TOP_K",
    "FIGURE2_FEATURES", "SKIPPED_SHOWN", "MAX_K",
    "cmd_train", "PREDICT_BATCH", "cmd_crosscheck",
]

EXIT_STATUS = """\
exit status:
  0    done (a "note:" line on stdout says when a projection is all zero)
  1    the run failed: a file could not be read or written (permission, full
       disk, a damaged or foreign file), not enough memory, torch or captum
       missing, crosscheck errors above tolerance, or an internal error
       (MINIDECONV_DEBUG=1 shows its traceback)
  2    the command line is wrong: a malformed or out-of-range value, or a path
       that does not exist or is the wrong kind of thing (a folder for a file)
  130  interrupted (Ctrl-C)
Each error is one line on stderr that names the flag and what it accepts."""


PREDICT_BATCH = 500     # train.accuracy's batch: the largest trace of a training run
MAX_EPOCHS = 1000       # so that a typo in --epochs cannot start a run that never ends


def cmd_train(args):
    from . import train
    from .data import SPLITS
    out = cli_outputs.output_file(args.out, "--out", {".npz"}, ".npz")
    test_images = SPLITS["test"][1]         # train_default reports the test accuracy
    shapes = train.build_model(args.seed).layer_shapes()
    needed = (cli_checks.dataset_bytes(args.n_train + test_images, dataset_image_shape())
              + cli_checks.traced_bytes(shapes, dataset_image_shape(), PREDICT_BATCH))
    cli_checks.check_memory(needed, "--n-train", args.n_train)
    train.train_default(out=out, epochs=args.epochs, seed=args.seed, n_train=args.n_train,
                        progress=not args.no_progress)


def cmd_crosscheck(args):
    if args.onnx is not None:               # an ONNX file against onnxruntime
        if os.path.exists(args.onnx) and not os.path.isdir(args.onnx):
            cli_checks.regular_file(args.onnx, "--onnx", "an .onnx file")   # not a pipe
        from .interop.onnx import run_crosscheck
        return run_crosscheck(args.onnx, n_images=args.images, dtype=args.dtype,
                              seed=args.seed)
    if args.model is not None:              # a saved network against its torch conversion
        return _crosscheck_saved(args)
    cli_checks.require("torch", "captum", why="crosscheck")
    from .interop.torch import builtin_model, crosscheck_builtin
    itemsize = np.dtype(args.dtype).itemsize
    # minideconv's trace, PyTorch's graph and the projections of three rules
    needed = max(4 * cli_checks.traced_bytes(net.layer_shapes(shape), shape, args.images,
                                         itemsize)
                 for net, shape in (builtin_model(name, args.seed) for name in args.models))
    cli_checks.check_memory(needed, "--images", args.images)
    return crosscheck_builtin(args.models, dtype=args.dtype, n_images=args.images,
                              seed=args.seed)


def _crosscheck_saved(args):
    """``crosscheck --model M.npz``: the network against ``to_torch`` of itself."""
    net = cli_checks.load_network(args.model)
    if net.input_shape is None:
        raise cli_checks.UsageError(f"--model: {args.model!r} does not say its input shape; "
                                f"save it with input_shape=(C, H, W)")
    cli_checks.require("torch", "captum", why="crosscheck")
    from .interop.torch import crosscheck
    shape = tuple(net.input_shape)
    needed = 4 * cli_checks.traced_bytes(net.layer_shapes(shape), shape, args.images,
                                     np.dtype(args.dtype).itemsize)
    cli_checks.check_memory(needed, "--images", args.images)
    x = np.random.default_rng(args.seed).standard_normal((args.images,) + shape)
    report = crosscheck(net, x.astype(args.dtype))
    print(f"== {cli_outputs.printable(args.model)} ({len(net.layers)} layers, input {shape}, "
          f"{args.images} images)")
    print(report)
    return 0 if report.passed else 1


def _wrap(text):
    return textwrap.fill(text, width=79)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a malformed command line gets one line on stderr (the flag and what
    it accepts), not the usage block first; ``--help`` still shows the usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser():
    from . import __version__
    from .data import SAMPLE_IMAGES, SPLITS
    from .train import DEFAULTS
    test_size, train_size = SPLITS["test"][1], SPLITS["train"][1]
    common = dict(epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser = OneLineParser(   # its sub-commands' parsers are OneLineParsers too
        prog="minideconv",
        description=_wrap("Zeiler & Fergus's deconvnet from first principles: visualise "
                          "what the units of a small trained CNN respond to."), **common)
    parser.add_argument("--version", action="version", version=f"minideconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="write Zeiler & Fergus-style figures for the shipped "
                                    "network",
                       description=_wrap("Top-9 patches and deconvnet projections per "
                                         "conv block, the three ReLU rules compared, an "
                                         "occlusion map and the first-layer filters, as "
                                         "PNG files in --out."), **common)
    p.add_argument("--out", required=True,
                   help="folder for the figures (created with its parents; existing "
                        "figures of the same name are replaced)")
    p.add_argument("--images", type=cli_checks.integer(TOP_K, test_size,
                                                  f"top-{TOP_K} needs {TOP_K}; the test "
                                                  f"split has {test_size}"),
                   default=1000, metavar="N",
                   help=f"test images searched for top activations, in [{TOP_K}, "
                        f"{test_size}] (default %(default)s)")
    p.add_argument("--features", type=cli_checks.integer(1), default=6, metavar="K",
                   help="features shown per block, from 1 to the fewest feature maps of a "
                        "block (16 for the shipped network; default %(default)s)")
    p.add_argument("--model", help="a network .npz (default: the shipped one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("project", help="project one activation back to pixel space",
                       description=_wrap("Project the strongest activation (or the one "
                                         "at --position) of feature --channel at the "
                                         "output of net.layers[--layer] back to the "
                                         "image, and save a figure."), **common)
    p.add_argument("--image", required=True,
                   help=f"an image file, a sample name ({', '.join(SAMPLE_IMAGES)}), or "
                        f"test:<i> (0 <= i < {test_size}) / train:<i> (0 <= i < "
                        f"{train_size}) for a dataset image")
    p.add_argument("--layer", required=True, metavar="L",
                   help="a layer name (net.names) or an index into net.layers, in [-n, n) "
                        "for n layers (10 for the shipped network); negative counts from "
                        "the end")
    p.add_argument("--channel", type=cli_checks.integer(0), required=True, metavar="C",
                   help="feature map of that layer, in [0, its channels)")
    p.add_argument("--position", type=cli_checks.position, default=None, metavar="H,W",
                   help="unit position in the feature map, each in [0, its size) "
                        "(default: its maximum)")
    p.add_argument("--rule", choices=rules.NAMES, default="deconvnet",
                   help="ReLU backward rule (default deconvnet)")
    p.add_argument("--out", required=True,
                   help="the figure file, created with its folder: '.png' is added when "
                        "the name has no suffix; .pdf, .svg, .jpg … choose another "
                        "format; an existing folder, and a name that is only a suffix "
                        "('.png'), are refused. The path written is printed")
    p.add_argument("--model", help="a network .npz (default: the shipped one)")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("train", help="train the shipped network from scratch",
                       description=_wrap("Softmax cross-entropy, SGD with momentum, on "
                                         "load_dataset('train'); prints the test "
                                         "accuracy."), **common)
    p.add_argument("--out", default="model.npz",
                   help="the weights file, created with its folder and checked before "
                        "training: '.npz' is added when the name has no suffix, a name "
                        "that is only a suffix ('.npz') is refused (default %(default)s)")
    p.add_argument("--epochs", type=cli_checks.integer(1, MAX_EPOCHS,
                                                   "a bound against typos: each epoch "
                                                   "passes over every training image"),
                   default=DEFAULTS["epochs"], metavar="E",
                   help=f"passes over the training images, in [1, {MAX_EPOCHS}]: each one "
                        f"takes as long as the first, so a typo cannot start a run that "
                        f"never ends (default %(default)s)")
    p.add_argument("--seed", type=cli_checks.integer(0), default=DEFAULTS["seed"],
                   help="initial weights and batch order, >= 0 (default %(default)s)")
    batch = DEFAULTS["batch_size"]
    p.add_argument("--n-train", type=cli_checks.integer(batch, train_size,
                                                    f"one batch of {batch} up to the "
                                                    f"train split's {train_size}"),
                   default=DEFAULTS["n_train"], metavar="N",
                   help=f"training images, in [{batch}, {train_size}] "
                        f"(default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("figure2", help="Zeiler & Fergus's Figure 2 on a folder of your "
                                       "own images",
                       description=_wrap("For each --layer, the --k images where each "
                                         "feature fires most, found in one streamed pass "
                                         "over the .jpg/.jpeg/.png files of --images, and "
                                         "their projections: one PNG per layer showing its "
                                         "--features strongest features, and an .npz of "
                                         "the top-k table of every feature (columns "
                                         "layer, layer_name, channel, rank, image_index, "
                                         "path, position, value; skipped_path, "
                                         "skipped_reason). Each image: the shorter side "
                                         "scaled to --resize, the centre cropped to the "
                                         "network's input size, values in [0, 1], then "
                                         "--normalize (minideconv.image_folder). Files "
                                         "that cannot be read are skipped and listed."),
                       **common)
    p.add_argument("--images", required=True, metavar="DIR",
                   help="folder of .jpg/.jpeg/.png images (any size; grey, RGB, RGBA or "
                        "palette), read in sorted order")
    p.add_argument("--layer", action="append", required=True, metavar="NAME_OR_INDEX",
                   help="a layer name (net.names) or index in [-n, n); repeat the flag or "
                        "separate by commas for several layers (one figure each)")
    p.add_argument("--out", required=True,
                   help="folder for the figures and the table (created with its parents)")
    p.add_argument("--model", help="a network: minideconv .npz or .onnx (needs onnx; "
                                   "default: the shipped network)")
    p.add_argument("--k", type=cli_checks.integer(1), default=TOP_K,
                   help=f"images per feature, in [1, {MAX_K}] and at most the images of "
                        f"--images: each figure shows k patches and k projections per "
                        f"feature (default %(default)s)")
    p.add_argument("--features", type=cli_checks.integer(1), default=FIGURE2_FEATURES,
                   metavar="N",
                   help="features shown per layer, those with the largest mean top-k "
                        "activation (all when the layer has fewer; default %(default)s)")
    p.add_argument("--batch-size", type=cli_checks.integer(1), default=64, metavar="B",
                   help="images per forward pass, >= 1: the memory used grows with B, "
                        "not with the number of images (default %(default)s)")
    p.add_argument("--normalize", choices=["imagenet", "none"], default=None,
                   help="(x - mean) / std with ImageNet's mean and std, or none (default: "
                        "imagenet for .onnx models, none for .npz and the shipped network)")
    p.add_argument("--size", type=cli_checks.integer(1), nargs="+", metavar="H [W]",
                   help="input size H W (W = H if left out), for a network that does not "
                        "fix its own; else it must match it")
    p.add_argument("--resize", type=cli_checks.integer(1), metavar="S",
                   help="length of the shorter side before the centre crop, >= the crop's "
                        "longer side (default: that side, the largest centred crop; "
                        "ImageNet models often use 256 for 224)")
    p.add_argument("--rule", choices=rules.NAMES, default="deconvnet",
                   help="ReLU backward rule (default deconvnet)")
    p.add_argument("--recursive", action="store_true", help="also read the subfolders")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_figure2)

    p = sub.add_parser("crosscheck", help="compare minideconv with PyTorch and Captum",
                       description=_wrap("Forward activations and the backprop / deconvnet "
                                         "/ guided projections of every layer, against "
                                         "PyTorch autograd and Captum, on built-in "
                                         "architectures with seeded random weights and on "
                                         "the shipped network. Exits 1 when an error "
                                         "exceeds the tolerance (float64: 1e-10 relative, "
                                         "float32: 1e-4), or when torch or captum is not "
                                         "installed. With --onnx FILE: that network's "
                                         "forward activations, node by node, against "
                                         "onnxruntime's (exits 1 beyond 1e-5 relative). "
                                         "With --model M.npz: a saved network (a Graph "
                                         "too) against its own PyTorch conversion."),
                       **common)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--models", nargs="+", choices=["zfnet", "vgg", "embedded"],
                       default=["zfnet", "vgg", "embedded"], help="which models (default all)")
    which.add_argument("--onnx", metavar="FILE",
                       help="an ONNX file instead, read by interop.onnx.from_onnx and run "
                            "on N seeded random images (needs pip install "
                            "'minideconv[onnx]')")
    which.add_argument("--model", metavar="M.npz",
                       help="a saved minideconv network instead (Sequential or Graph, e.g. "
                            "from_torch(...).save): every layer against its PyTorch "
                            "conversion (to_torch; Captum too for a Sequential), on N "
                            "seeded random images")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--images", type=cli_checks.integer(1, test_size,
                                                  f"the test split has {test_size} images"),
                   default=2, metavar="N",
                   help=f"images per model, in [1, {test_size}] (default %(default)s)")
    p.add_argument("--seed", type=cli_checks.integer(0), default=0,
                   help="weights and inputs seed, >= 0 (default %(default)s)")
    p.set_defaults(func=cmd_crosscheck)
    return parser


def _say_compiling():
    print("minideconv: compiling the CPU kernels (first run only; later runs load them "
          "from Numba's cache) ...", file=sys.stderr, flush=True)


def _debugging():
    return os.environ.get("MINIDECONV_DEBUG", "") not in ("", "0")


def main(argv=None):
    """Run one command; returns its exit status (argparse exits 2 itself on a malformed
    option).  Every error becomes one line on stderr: ``EXIT_STATUS``."""
    streams = [s for s in (sys.stdout, sys.stderr) if hasattr(s, "reconfigure")]
    handlers = [stream.errors for stream in streams]
    # a path the terminal's encoding cannot show is printed with backslash escapes
    # ('\xfc'), rather than failing the report of work that succeeded
    for stream in streams:
        stream.reconfigure(errors="backslashreplace")
    try:
        return _run(build_parser().parse_args(argv))
    finally:
        for stream, handler in zip(streams, handlers):
            stream.reconfigure(errors=handler)


def _run(args):
    from .backends.compile_notice import notify_on_compile
    try:
        with notify_on_compile(_say_compiling):
            return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"minideconv {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if _debugging() and not isinstance(err, cli_checks.UsageError):
            raise
        code, message = explain(err, args)
        message = " ".join(message.splitlines())       # one line, whatever the cause
        print(f"minideconv {args.command}: error: {message}", file=sys.stderr)
        return code


# --------------------------------------------------------------------------- errors

MEMORY_HINTS = {"demo": "give a smaller --images", "train": "give a smaller --n-train",
                "figure2": "give a smaller --batch-size",
                "crosscheck": "give a smaller --images", "project": "free some memory"}


def explain(err, args):
    """``(exit code, one line)`` for an exception that ended a command: 2 for a
    ``UsageError`` (the checks of the command line), 1 for everything else — a library
    ValueError raised during the work, too, is a failed run, not a wrong command line."""
    if isinstance(err, cli_checks.UsageError):
        return 2, str(err)
    if isinstance(err, cli_checks.RunError):
        return 1, str(err)
    if isinstance(err, MemoryError):
        return 1, f"out of memory; {MEMORY_HINTS.get(args.command, 'free some memory')}"
    if isinstance(err, OSError):
        return 1, _describe_os_error(err, args)
    if isinstance(err, (zipfile.BadZipFile, zlib.error, EOFError)):
        return 1, f"a damaged file: {err}"
    return 1, (f"internal error: {type(err).__name__}: {err}; run with MINIDECONV_DEBUG=1 "
               f"for the traceback")


def _describe_os_error(err, args):
    """'--out: '/x/p.png': No space left on device': the flag whose path failed."""
    reason = err.strerror or errno.errorcode.get(err.errno, "") or str(err)
    if err.filename is None:
        return reason
    flag = _flag_of(args, os.fspath(err.filename))
    return f"{flag + ': ' if flag else ''}{err.filename!r}: {reason}"


def _flag_of(args, filename):
    target = os.path.abspath(filename)
    for name in ("out", "model", "image", "images"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            given = os.path.abspath(value)
            if target == given or target.startswith(given + os.sep):
                return f"--{name}"
    return None


if __name__ == "__main__":
    sys.exit(main())
