"""The ``minideconv`` command (also ``python -m minideconv``).

    minideconv demo --out figures/          Zeiler & Fergus's figures for the shipped network
    minideconv project --image grace_hopper --layer 5 --channel 3 --out p.png
    minideconv train --out my_model.npz     retrain the shipped network from scratch
    minideconv figure2 --images photos/ --layer 5 --out fig2/   Figure 2 on your own images
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

import numpy as np

from . import _cli_checks as checks
from . import rules

TOP_K = 9           # Zeiler & Fergus show each feature's nine strongest activations

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
Each error is one line on stderr that names the flag; a malformed option also
prints the usage above it."""


def _load_net(model):
    """``model``: a network, the path of a network file, or None for the shipped one."""
    from .data import load_model
    from .nn import Network, load
    if isinstance(model, Network):
        return model
    return load_model() if model is None else load(model)


def _image_shape():
    from .data import SIZE
    return (3, SIZE, SIZE)


def _layer_name(net, i):
    """'MaxPool2d of block 2': the layer's type and the conv block it belongs to — or, in a
    Graph (where blocks are not a chain), 'ReLU layer2.1.relu_1': its type and name."""
    from .nn import Conv2d, Graph
    if isinstance(net, Graph):
        return f"{type(net.layers[i]).__name__} {net.names[i]}"
    block = sum(isinstance(layer, Conv2d) for layer in net.layers[:i + 1])
    return f"{type(net.layers[i]).__name__} of block {block}"


def block_outputs(net):
    """The last layer of each conv block (conv → ReLU [→ pool]): the layer just before the
    next Conv2d or Flatten, or the last layer."""
    from .nn import Conv2d, Flatten, Linear
    ends = []
    for i, layer in enumerate(net.layers):
        nxt = net.layers[i + 1] if i + 1 < len(net.layers) else None
        started = any(isinstance(x, Conv2d) for x in net.layers[:i + 1])
        if started and not isinstance(layer, (Flatten, Linear)) and \
                (nxt is None or isinstance(nxt, (Conv2d, Flatten))):
            ends.append(i)
    return ends


def _strongest_channels(values, count):
    """The ``count`` feature maps with the largest mean top-k activation, from ``values``
    (C, k): each feature's k strongest activations (``visualize.TopKTable.values``)."""
    return [int(c) for c in np.argsort(-values.mean(axis=1), kind="stable")[:count]]


def describe_block(net, last):
    """'conv 3×3 16→32 → ReLU → max-pool 3×3/2': the layers of the block ending at ``last``."""
    from .nn import Conv2d, MaxPool2d
    first = max(i for i in range(last + 1) if isinstance(net.layers[i], Conv2d))
    names = []
    for layer in net.layers[first:last + 1]:
        if isinstance(layer, Conv2d):
            kh, kw = layer.weight.shape[2:]
            names.append(f"conv {kh}×{kw} {layer.in_channels}→{layer.out_channels}")
        elif isinstance(layer, MaxPool2d):
            names.append(f"max-pool {layer.kernel_size[0]}×{layer.kernel_size[1]}"
                         f"/{layer.stride[0]}")
        else:
            names.append(type(layer).__name__)
    return " → ".join(names)


def _clear_example(net, images, labels, wanted):
    """Index of a correctly classified image of class ``wanted`` with the most contrast
    for its pixel noise (std of the image / mean difference of neighbouring pixels)."""
    correct = (labels == wanted) & (net(images).argmax(axis=1) == wanted)
    candidates = np.flatnonzero(correct) if correct.any() else np.arange(len(images))
    chosen = images[candidates]
    noise = np.abs(np.diff(chosen, axis=3)).mean(axis=(1, 2, 3))
    return int(candidates[np.argmax(chosen.std(axis=(1, 2, 3)) / noise)])


def inactive_features(feats):
    """The channels of ``[(channel, TopPatches), …]`` whose top activations are all 0."""
    return [channel for channel, patches in feats if not np.any(patches.values > 0)]


def demo(out, n_images=1000, features=6, model=None, progress=True, log=print):
    """Write the demo figures into ``out``; returns their paths.  ``model``: a network,
    a network file, or None for the shipped one."""
    from tqdm.auto import tqdm

    from . import plots
    from .data import CLASSES, load_dataset
    from .visualize import (occlusion_map, project, project_top_k, rank_top_k, score,
                            strongest, warm_up)

    os.makedirs(out, exist_ok=True)
    net = _load_net(model)
    warm_up(net, rules.NAMES)  # the first run compiles here, before any progress bar starts
    images, labels = load_dataset("test", n=n_images)
    written = []

    def save(fig, name, what):
        path = plots.save(fig, os.path.join(out, name))
        written.append(path)
        log(f"  {what}: {path}")

    # Figure 2 of Zeiler & Fergus, one figure per conv block: one pass over the images
    # finds every feature's top 9 in every block, then the shown features' 9 activations
    # each go down together
    blocks = block_outputs(net)
    tables = rank_top_k(net, images, blocks, k=TOP_K)
    for b, layer in enumerate(tqdm(blocks, desc="top-9 patches", unit="block",
                                   disable=not progress), 1):
        channels = _strongest_channels(tables[layer].values, features)
        feats = list(zip(channels, project_top_k(net, tables[layer], channels)))
        for channel in inactive_features(feats):
            log(f"note: feature {channel} of layer {layer} is never active on these "
                f"{len(images)} images (its top-{TOP_K} activations are all 0): its "
                f"projections are all zero")
        title = (f"Block {b} ({describe_block(net, layer)}): features at the output of "
                 f"layer {layer}")
        save(plots.feature_grid(feats, title), f"block{b}_top9.png", f"block {b} top-9 grid")

    # one test image for the rest: a clear, correctly classified cross
    index = _clear_example(net, images[:200], labels[:200], CLASSES.index("cross"))
    image, target = images[index], int(labels[index])

    # one activation, three rules: that image's strongest unit in the last conv block
    layer = blocks[-1]
    activation = net.trace(image[None], upto=layer).outputs[layer]
    channel = int(activation[0].reshape(activation.shape[1], -1).max(axis=1).argmax())
    position = tuple(int(v) for v in strongest(activation, channel)[0][0])
    projections = {rule: project(net, image, layer, channel, position, rule=rule)
                   for rule in rules.NAMES}
    fig = plots.compare_rules(
        image, projections,
        f"One activation, three ReLU rules: layer {layer} ({_layer_name(net, layer)}), "
        f"feature {channel}, position {position}",
        window=net.receptive_field(layer).window(position))
    save(fig, "rules_compared.png", "backprop vs deconvnet vs guided")

    # occlusion sensitivity, Zeiler & Fergus §4.2
    patch, stride = 8, 2
    scores = occlusion_map(net, image, target, patch=patch, stride=stride)
    baseline = float(score(net, image[None], target)[0])
    fig = plots.occlusion_figure(
        image, scores, stride,
        f"Occlusion (Zeiler & Fergus §4.2): p({CLASSES[target]}) as an {patch}×{patch} "
        f"grey square moves\n(test image {index}; without the square p = {baseline:.3f})",
        f"p({CLASSES[target]})")
    save(fig, "occlusion.png", "occlusion map")

    first = net.layers[0]
    c_out, c_in, kh, kw = first.weight.shape
    fig = plots.filters_figure(
        first.weight, f"The {c_out} first-layer filters (net.layers[0], {kh}×{kw}×{c_in}),\n"
                      "each symmetric about 0 (grey = 0)")
    save(fig, "layer1_filters.png", "first-layer filters")
    return written


def zero_projection_note(net, layer, channel, value, where, chosen):
    """Why a projection is all zero, in words (``chosen``: the position was given)."""
    name = f"feature {channel} of {net.describe(layer)}"
    if value <= 0 and chosen:
        return (f"note: {name} is not active at {where} (its activation is {value:.3g}): "
                f"the projection is all zero")
    if value <= 0:
        return (f"note: {name} is never active on this image (its maximum is {value:.3g}): "
                f"the projection is all zero")
    return (f"note: the projection of {name} is all zero: nothing of its activation "
            f"{value:.3g} reaches the image under this rule")


def _figure_suffixes():
    from matplotlib.backend_bases import FigureCanvasBase
    return {"." + name for name in FigureCanvasBase.get_supported_filetypes()}


def cmd_project(args):
    from . import plots
    from .visualize import check_channel, project, strongest

    # every flag is checked, and the output made, before the projection is computed
    net = checks.load_network(args.model)
    image = checks.load_image(args.image)
    shapes = checks.check_network_input(net, image.shape)
    layers = checks.layer_indices(net, [args.layer])
    if len(layers) != 1:
        raise checks.UsageError(f"--layer: project takes one layer, got {args.layer!r}")
    layer = layers[0]
    checks.channel_index(net, shapes, layer, args.channel)
    checks.position_in(net, shapes, layer, args.position)
    out = checks.output_file(args.out, "--out", _figure_suffixes(), ".png",
                             ignore_case=True)

    projection = project(net, image, layer, args.channel, args.position, rule=args.rule)
    activation = net.trace(image[None], upto=layer).outputs[layer]
    channel = check_channel(activation.shape[1:], args.channel, net.describe(layer))
    if args.position is None:
        position, value = strongest(activation, channel)
        position, value = tuple(int(v) for v in position[0]), float(value[0])
    else:
        position = args.position
        value = float(activation[(0, channel) + position])
    field = net.receptive_field(layer)
    window = field.window(position) if field is not None else None
    where = f"position {position}" if activation.ndim == 4 else "output unit"
    fig = plots.projection_figure(
        image, projection,
        f"{args.rule} projection: layer {layer} ({_layer_name(net, layer)}), "
        f"feature {channel}, {where}\n"
        f"activation {value:.3g}; image {args.image}", window=window)
    path = plots.save(fig, out)
    print(f"activation {value:.4g} at {where}; figure written to {path}")
    if not np.any(projection):
        print(zero_projection_note(net, layer, channel, value, where,
                                   chosen=args.position is not None))


def _check_demo_network(net, shapes, features):
    """demo draws per conv block, the first layer's filters and class probabilities."""
    from .data import CLASSES
    from .nn import Conv2d
    blocks = block_outputs(net)
    if not blocks or not isinstance(net.layers[0], Conv2d):
        raise checks.RunError("--model: demo needs a network whose first layer is a Conv2d")
    if shapes[-1] != (len(CLASSES),):
        raise checks.RunError(f"--model: demo needs {len(CLASSES)} outputs, one per class "
                              f"of the dataset; the network gives {shapes[-1]}")
    fewest, block = min((shapes[layer][0], b) for b, layer in enumerate(blocks, 1))
    if features > fewest:
        raise checks.UsageError(f"--features: must be in [1, {fewest}] (block {block} has "
                                f"{fewest} feature maps), got {features}")


def cmd_demo(args):
    net = checks.load_network(args.model)
    from .nn import Graph
    if isinstance(net, Graph):   # its figures follow the conv blocks of a chain
        raise checks.UsageError("--model: demo shows the conv blocks of a Sequential "
                                "network; for a graph network (residual or concatenating) "
                                "use `minideconv figure2 --layer NAME` and `minideconv "
                                "project`")
    shapes = checks.check_network_input(net, _image_shape())
    _check_demo_network(net, shapes, args.features)
    needed = (checks.dataset_bytes(args.images, _image_shape())
              + checks.traced_bytes(shapes, _image_shape(), args.images))
    checks.check_memory(needed, "--images", args.images)
    out = checks.output_folder(args.out)
    print(f"writing the demo figures to {out}")
    demo(out, n_images=args.images, features=args.features, model=net,
         progress=not args.no_progress)


FIGURE2_FEATURES = 12      # figure2's default: features shown per layer
SKIPPED_SHOWN = 10         # figure2 lists this many skipped files, then counts the rest


def _file_part(name):
    """A layer name as part of a file name: letters, digits, '.', '-' and '_' kept."""
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in name).strip("._") or "x"


def figure2_file(net, layer, k):
    """``figure2_layer5_top9.png``; with the layer's name when it is not its index:
    ``figure2_layer3_features.3_top9.png``."""
    name = net.names[layer]
    tag = f"layer{layer}" if name == str(layer) else f"layer{layer}_{_file_part(name)}"
    return f"figure2_{tag}_top{k}.png"


def _for_display(top, mean, std):
    """``TopPatches`` with the patches back in [0, 1] (the normalisation undone) and
    grey images repeated in R, G, B, for ``plots.feature_grid``."""
    from dataclasses import replace
    patches, projections = top.patches, top.projections
    if mean is not None:
        patches = patches * std[:, None, None] + mean[:, None, None]
    if patches.shape[1] == 1:
        patches = np.repeat(patches, 3, axis=1)
        projections = np.repeat(projections, 3, axis=1)
    return replace(top, patches=patches, projections=projections)


def top_k_rows(net, tables, paths):
    """The top-k table of every feature of every layer as flat columns (one row per
    layer, channel and rank), for ``np.savez``: plain arrays, no pickled objects."""
    rows = [(layer, c, r) for layer, table in tables.items()
            for c in range(table.values.shape[0]) for r in range(table.k)]
    column = {
        "layer": np.array([layer for layer, _, _ in rows], np.int64),
        "layer_name": np.array([net.names[layer] for layer, _, _ in rows], dtype=str),
        "channel": np.array([c for _, c, _ in rows], np.int64),
        "rank": np.array([r for _, _, r in rows], np.int64),
        "image_index": np.array([tables[layer].indices[c, r] for layer, c, r in rows],
                                np.int64),
        "position": np.array([tables[layer].positions[c, r] for layer, c, r in rows],
                             np.int64).reshape(-1, 2),
        "value": np.array([tables[layer].values[c, r] for layer, c, r in rows],
                          np.float64),
    }
    column["path"] = np.array([paths[i] for i in column["image_index"]], dtype=str)
    return column


def cmd_figure2(args):
    from tqdm.auto import tqdm

    from . import plots
    from .image_folder import IMAGENET_MEAN, IMAGENET_STD, ImageFolder
    from .visualize import project_top_k, rank_top_k, warm_up

    # every flag is checked, and the output folder made, before any image is read
    hw = None if args.size is None else (args.size[0], args.size[-1])
    if args.size is not None and len(args.size) > 2:
        raise checks.UsageError(f"--size: give H or H W (two integers at most), got "
                                f"{' '.join(map(str, args.size))}")
    net = checks.load_any_network(args.model, hw)
    shape = checks.network_input_shape(net, hw)
    shapes = checks.check_network_input(net, shape)
    layers = checks.layer_indices(net, args.layer)
    normalize = args.normalize or ("imagenet" if (args.model or "").lower()
                                   .endswith(".onnx") else "none")
    if normalize == "imagenet" and shape[0] != 3:
        raise checks.UsageError(f"--normalize: imagenet needs a network of 3 input "
                                f"channels (RGB); this one takes {shape[0]}; give "
                                f"--normalize none")
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalize == "imagenet" else (None, None)
    if args.resize is not None and args.resize < max(shape[1:]):
        raise checks.UsageError(f"--resize: must be >= {max(shape[1:])}, the crop's longer "
                                f"side (the network takes {shape[1]}x{shape[2]}), got "
                                f"{args.resize}")
    checks.image_folder(args.images)
    folder = ImageFolder(args.images, shape[1:], channels=shape[0], resize=args.resize,
                         mean=mean, std=std, recursive=args.recursive, dtype=net.dtype())
    if len(folder) < args.k:
        where = "in it or below it" if args.recursive else "in it (--recursive: also below)"
        raise checks.UsageError(f"--images: {args.images!r} has {len(folder)} "
                                f".jpg/.jpeg/.png files {where}; --k {args.k} needs at "
                                f"least {args.k}")
    checks.check_memory(checks.traced_bytes(shapes, shape, args.batch_size,
                                            net.dtype().itemsize),
                        "--batch-size", args.batch_size)
    out = checks.output_folder(args.out)

    if net.input_shape is not None:
        warm_up(net, [args.rule])   # compiles (first run only) before the progress bar
    paths = []                          # stream index -> file, for the readable images

    def stream(bar):
        for batch_paths, batch in folder.batches(args.batch_size,
                                                 on_file=lambda _: bar.update()):
            paths.extend(batch_paths)
            yield batch

    print(f"reading {len(folder)} images from {args.images} ({shape[1]}x{shape[2]}, "
          f"normalisation: {normalize}) for {len(layers)} layer(s)")
    with tqdm(total=len(folder), desc="images", unit="image",
              disable=args.no_progress) as bar:
        try:
            tables = rank_top_k(net, stream(bar), layers, k=args.k,
                                batch_size=args.batch_size, keep_images=False)
        except ValueError as err:
            if paths and len(paths) >= args.k:
                raise
            raise checks.RunError(f"--images: {len(paths)} of the {len(folder)} files "
                                  f"could be read as images; --k {args.k} needs at least "
                                  f"{args.k}") from err
    for path, reason in folder.skipped[:SKIPPED_SHOWN]:
        print(f"skipped {path}: {reason}")
    if len(folder.skipped) > SKIPPED_SHOWN:
        print(f"skipped {len(folder.skipped) - SKIPPED_SHOWN} more (every skipped file and "
              f"its reason: skipped_path and skipped_reason in the .npz)")
    print(f"read {len(paths)} images; skipped {len(folder.skipped)} unreadable file(s); "
          f"ignored {len(folder.ignored)} file(s) without a .jpg/.jpeg/.png suffix")

    written = []
    display = (None, None) if mean is None else (np.array(mean), np.array(std))
    for layer in tqdm(layers, desc="projections", unit="layer", disable=args.no_progress):
        table = tables[layer]
        channels = _strongest_channels(table.values, min(args.features,
                                                          table.values.shape[0]))
        tops = project_top_k(net, table, channels, rule=args.rule,
                             batch_size=args.batch_size,
                             load_images=lambda indices: folder.load([paths[i] for i in
                                                                      indices]))
        feats = [(c, _for_display(top, *display)) for c, top in zip(channels, tops)]
        title = (f"{net.describe(layer)}: its {len(channels)} strongest features over "
                 f"{len(paths)} images of {args.images}")
        path = plots.save(plots.feature_grid(feats, title, rule=args.rule),
                          os.path.join(out, figure2_file(net, layer, args.k)))
        written.append(path)
    table_path = os.path.join(out, f"figure2_top{args.k}.npz")
    np.savez(table_path, **top_k_rows(net, tables, paths),
             skipped_path=np.array([p for p, _ in folder.skipped], dtype=str),
             skipped_reason=np.array([r for _, r in folder.skipped], dtype=str))
    written.append(table_path)
    for path in written:
        print(f"  written: {path}")


PREDICT_BATCH = 500     # train.accuracy's batch: the largest trace of a training run


def cmd_train(args):
    from . import train
    from .data import SPLITS
    out = checks.output_file(args.out, "--out", {".npz"}, ".npz")
    test_images = SPLITS["test"][1]         # train_default reports the test accuracy
    shapes = train.build_model(args.seed).layer_shapes()
    needed = (checks.dataset_bytes(args.n_train + test_images, _image_shape())
              + checks.traced_bytes(shapes, _image_shape(), PREDICT_BATCH))
    checks.check_memory(needed, "--n-train", args.n_train)
    train.train_default(out=out, epochs=args.epochs, seed=args.seed, n_train=args.n_train,
                        progress=not args.no_progress)


def cmd_crosscheck(args):
    if args.onnx is not None:               # an ONNX file against onnxruntime
        from .interop.onnx import run_crosscheck
        return run_crosscheck(args.onnx, n_images=args.images, dtype=args.dtype,
                              seed=args.seed)
    if args.model is not None:              # a saved network against its torch conversion
        return _crosscheck_saved(args)
    checks.require("torch", "captum", why="crosscheck")
    from .interop.torch import builtin_model, crosscheck_builtin
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
    from .interop.torch import crosscheck
    shape = tuple(net.input_shape)
    needed = 4 * checks.traced_bytes(net.layer_shapes(shape), shape, args.images,
                                     np.dtype(args.dtype).itemsize)
    checks.check_memory(needed, "--images", args.images)
    x = np.random.default_rng(args.seed).standard_normal((args.images,) + shape)
    report = crosscheck(net, x.astype(args.dtype))
    print(f"== {args.model} ({len(net.layers)} layers, input {shape}, {args.images} images)")
    print(report)
    return 0 if report.passed else 1


def _wrap(text):
    return textwrap.fill(text, width=79)


def build_parser():
    from . import __version__
    from .data import SAMPLE_IMAGES, SPLITS
    from .train import DEFAULTS
    test_size, train_size = SPLITS["test"][1], SPLITS["train"][1]
    common = dict(epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser = argparse.ArgumentParser(
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
    p.add_argument("--images", type=checks.integer(TOP_K, test_size,
                                                  f"top-{TOP_K} needs {TOP_K}; the test "
                                                  f"split has {test_size}"),
                   default=1000, metavar="N",
                   help=f"test images searched for top activations, in [{TOP_K}, "
                        f"{test_size}] (default %(default)s)")
    p.add_argument("--features", type=checks.integer(1), default=6, metavar="K",
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
    p.add_argument("--channel", type=checks.integer(0), required=True, metavar="C",
                   help="feature map of that layer, in [0, its channels)")
    p.add_argument("--position", type=checks.position, default=None, metavar="H,W",
                   help="unit position in the feature map, each in [0, its size) "
                        "(default: its maximum)")
    p.add_argument("--rule", choices=rules.NAMES, default="deconvnet",
                   help="ReLU backward rule (default deconvnet)")
    p.add_argument("--out", required=True,
                   help="the figure file, created with its folder: '.png' is added when "
                        "the name has no suffix; .pdf, .svg, .jpg … choose another "
                        "format; an existing folder is refused. The path written is "
                        "printed")
    p.add_argument("--model", help="a network .npz (default: the shipped one)")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("train", help="train the shipped network from scratch",
                       description=_wrap("Softmax cross-entropy, SGD with momentum, on "
                                         "load_dataset('train'); prints the test "
                                         "accuracy."), **common)
    p.add_argument("--out", default="model.npz",
                   help="the weights file, created with its folder and checked before "
                        "training: '.npz' is added when the name has no suffix "
                        "(default %(default)s)")
    p.add_argument("--epochs", type=checks.integer(1), default=DEFAULTS["epochs"],
                   metavar="E", help="passes over the training images, >= 1 "
                                     "(default %(default)s)")
    p.add_argument("--seed", type=checks.integer(0), default=DEFAULTS["seed"],
                   help="initial weights and batch order, >= 0 (default %(default)s)")
    batch = DEFAULTS["batch_size"]
    p.add_argument("--n-train", type=checks.integer(batch, train_size,
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
    p.add_argument("--k", type=checks.integer(1), default=TOP_K,
                   help=f"images per feature, >= 1 (default %(default)s)")
    p.add_argument("--features", type=checks.integer(1), default=FIGURE2_FEATURES,
                   metavar="N",
                   help="features shown per layer, those with the largest mean top-k "
                        "activation (all when the layer has fewer; default %(default)s)")
    p.add_argument("--batch-size", type=checks.integer(1), default=64, metavar="B",
                   help="images per forward pass, >= 1: the memory used grows with B, "
                        "not with the number of images (default %(default)s)")
    p.add_argument("--normalize", choices=["imagenet", "none"], default=None,
                   help="(x - mean) / std with ImageNet's mean and std, or none (default: "
                        "imagenet for .onnx models, none for .npz and the shipped network)")
    p.add_argument("--size", type=checks.integer(1), nargs="+", metavar="H [W]",
                   help="input size H W (W = H if left out), for a network that does not "
                        "fix its own; else it must match it")
    p.add_argument("--resize", type=checks.integer(1), metavar="S",
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
    p.add_argument("--images", type=checks.integer(1, test_size,
                                                  f"the test split has {test_size} images"),
                   default=2, metavar="N",
                   help=f"images per model, in [1, {test_size}] (default %(default)s)")
    p.add_argument("--seed", type=checks.integer(0), default=0,
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
    from .backends.compile_notice import notify_on_compile
    args = build_parser().parse_args(argv)
    try:
        with notify_on_compile(_say_compiling):
            return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"minideconv {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if _debugging() and not isinstance(err, checks.UsageError):
            raise
        code, message = checks.explain(err, args)
        message = " ".join(message.splitlines())       # one line, whatever the cause
        print(f"minideconv {args.command}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
