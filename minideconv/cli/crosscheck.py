"""``minideconv crosscheck``: minideconv beside PyTorch + Captum, or beside onnxruntime.

Three sources, one exit status (0 when every error is within tolerance, 1 otherwise):

* the built-in architectures (``minideconv.models.builtin_model``) against PyTorch
  autograd and Captum (``crosscheck_builtin``);
* ``--onnx FILE``: every node of the file's network against onnxruntime
  (``crosscheck_onnx_file``);
* ``--model M.npz``: a saved network against ``to_torch`` of itself.  This checks the
  operators of a saved network, not a conversion: the torch side is built from the same
  file (for a torch model, run ``minideconv.interop.torch.crosscheck`` on the model).

The library's functions return reports; the exit statuses and the flags' errors live here.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from ..models import BUILTIN, builtin_model
from . import checks, outputs


def crosscheck_builtin(models: Sequence[str] = BUILTIN,
                       dtype: str = "float64", n_images: int = 2, seed: int = 0,
                       tolerance: Optional[float] = None, log=print) -> int:
    """Cross-check the built-in models; print each report; return the exit status
    (0 when every error is within tolerance, 1 otherwise).  ``minideconv crosscheck``."""
    from ..interop.torch import crosscheck
    failed = []
    for name in models:
        net, shape = builtin_model(name, seed)
        rng = np.random.default_rng(seed)
        if name == "embedded":
            from ..data import load_dataset
            x = load_dataset("test", n=n_images)[0].astype(dtype)
        else:
            x = rng.standard_normal((n_images,) + tuple(shape)).astype(dtype)
        report = crosscheck(net, x)
        if tolerance is not None:
            report.tolerance = tolerance
        log(f"\n== {name} ({len(net.layers)} layers, input {tuple(shape)}, "
            f"{n_images} images)")
        log(str(report))
        if not report.passed:
            failed.append(name)
    log(f"\n{'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 1 if failed else 0


def crosscheck_onnx_file(path, n_images=2, dtype="float64", seed=0, log=print) -> int:
    """``minideconv crosscheck --onnx PATH``: ``n_images`` seeded standard-normal images
    of the file's input shape; prints the report and returns the exit status (0 when
    every node is within ``TOLERANCE``, 1 otherwise).  Each problem with the file is a
    ``UsageError`` / ``RunError`` naming ``--onnx``."""
    from importlib.util import find_spec

    from ..interop.onnx import crosscheck_onnx, load_model
    from ..interop.onnx.convert import convert_with_tensors
    from ..interop.onnx.values import INSTALL
    if not os.path.exists(path):
        raise checks.UsageError(f"--onnx: no such file: {path!r}")
    if os.path.isdir(path):
        raise checks.UsageError(f"--onnx: {path!r} is a folder, not an .onnx file")
    missing = [name for name in ("onnx", "onnxruntime") if find_spec(name) is None]
    if missing:
        raise checks.RunError(f"--onnx: the ONNX cross-check needs {' and '.join(missing)}, not "
                       f"installed: {INSTALL}")
    try:
        model = load_model(path)
    except Exception as err:             # onnx's parse errors come in many types
        raise checks.RunError(f"--onnx: {path!r} is not a readable ONNX file: "
                       f"{type(err).__name__}: {err}") from None
    try:
        net, _ = convert_with_tensors(model)
    except (ValueError, TypeError) as err:
        raise checks.RunError(f"--onnx: {err}") from None
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_images,) + tuple(net.input_shape)).astype(np.float32)
    try:
        report = crosscheck_onnx(model, x, dtype=dtype, source=path)
    except MemoryError:
        raise
    except Exception as err:             # onnxruntime's errors, a shape mismatch
        raise checks.RunError(f"--onnx: {type(err).__name__}: {err}") from None
    log(str(report))
    return 0 if report.passed else 1


def cmd_crosscheck(args):
    if args.onnx is not None:               # an ONNX file against onnxruntime
        if os.path.exists(args.onnx) and not os.path.isdir(args.onnx):
            checks.regular_file(args.onnx, "--onnx", "an .onnx file")   # not a pipe
        return crosscheck_onnx_file(args.onnx, n_images=args.images, dtype=args.dtype,
                                    seed=args.seed)
    if args.model is not None:              # a saved network against its torch conversion
        return _crosscheck_saved(args)
    checks.require("torch", "captum", why="crosscheck")
    itemsize = np.dtype(args.dtype).itemsize
    # minideconv's trace, PyTorch's graph and the projections of three rules
    needed = max(4 * checks.traced_bytes(net.layer_shapes(shape), shape, args.images,
                                         itemsize)
                 for net, shape in (builtin_model(name, args.seed) for name in args.models))
    checks.check_memory(needed, "--images", args.images)
    return crosscheck_builtin(args.models, dtype=args.dtype, n_images=args.images,
                              seed=args.seed)


def _crosscheck_saved(args):
    """``crosscheck --model M.npz``: the network against ``to_torch`` of itself."""
    net = checks.load_network(args.model)
    if net.input_shape is None:
        raise checks.UsageError(f"--model: {args.model!r} does not say its input shape; "
                                f"save it with input_shape=(C, H, W)")
    checks.require("torch", "captum", why="crosscheck")
    from ..interop.torch import crosscheck
    shape = tuple(net.input_shape)
    needed = 4 * checks.traced_bytes(net.layer_shapes(shape), shape, args.images,
                                     np.dtype(args.dtype).itemsize)
    checks.check_memory(needed, "--images", args.images)
    x = np.random.default_rng(args.seed).standard_normal((args.images,) + shape)
    report = crosscheck(net, x.astype(args.dtype))
    print(f"== {outputs.printable(args.model)} ({len(net.layers)} layers, input {shape}, "
          f"{args.images} images)")
    print("   the saved network against its own PyTorch conversion (to_torch): this checks "
          "minideconv's operators on these layers, not the conversion from your torch "
          "model; for that, run minideconv.interop.torch.crosscheck(model, x) on the model")
    print(report)
    return 0 if report.passed else 1


def add_parser(sub, **common):
    """The ``crosscheck`` sub-command's flags; its parser runs ``cmd_crosscheck``."""
    from ..data import SPLITS
    test_size = SPLITS["test"][1]
    description = checks.paragraph(
        "Forward activations and the backprop / deconvnet / guided projections "
        "of every layer, against PyTorch autograd and Captum, on built-in "
        "architectures with seeded random weights and on the shipped network. "
        "Exits 1 when an error exceeds the tolerance (float64: 1e-10 relative, "
        "float32: 1e-4), or when torch or captum is not installed. With --onnx "
        "FILE: that network's forward activations, node by node, against "
        "onnxruntime's (exits 1 beyond 1e-5 relative). With --model M.npz: a "
        "saved network (a Graph too) against its own PyTorch conversion.")
    p = sub.add_parser("crosscheck", help="compare minideconv with PyTorch and Captum",
                       description=description,
                       **common)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--models", nargs="+", choices=BUILTIN,
                       default=list(BUILTIN), help="which models (default all)")
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
    p.add_argument("--images", type=checks.integer(1, test_size,
                                                  f"the test split has {test_size} images"),
                   default=2, metavar="N",
                   help=f"images per model, in [1, {test_size}] (default %(default)s)")
    p.add_argument("--seed", type=checks.integer(0), default=0,
                   help="weights and inputs seed, >= 0 (default %(default)s)")
    p.set_defaults(func=cmd_crosscheck)
    return p
