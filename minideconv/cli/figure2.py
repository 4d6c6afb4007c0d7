"""``minideconv figure2``: Zeiler & Fergus's Figure 2 on a folder of your own images.

``cmd_figure2`` checks every flag, streams the folder's images through the network once
(``minideconv.visualize.rank_top_k``), projects the strongest features of each layer
(``project_top_k``) and writes one figure per layer (``figure2_file``) and an .npz of
every feature's top-k table (``top_k_rows``).  ``TOP_K`` and ``strongest_channels``, the
nine activations and the features shown, are the demo's too.
"""

from __future__ import annotations

import os

import numpy as np

from .. import rules
from ..visualize.figure2 import TOP_K
from . import checks, inputs, outputs

FIGURE2_FEATURES = 12      # figure2's default: features shown per layer
SKIPPED_SHOWN = 10         # figure2 lists this many skipped files, then counts the rest
MAX_K = 100                # --k's bound: each figure shows k patches per feature


def strongest_channels(values, count):
    """The ``count`` feature maps with the largest mean top-k activation, from ``values``
    (C, k): each feature's k strongest activations (``visualize.TopKTable.values``)."""
    return [int(c) for c in np.argsort(-values.mean(axis=1), kind="stable")[:count]]


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

    from ..data.images import denormalize
    patches, projections = denormalize(top.patches, mean, std), top.projections
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
    """``minideconv figure2``: check every flag, one pass over the folder, the figures."""
    from tqdm.auto import tqdm

    from .. import plots
    from ..data.images import SUFFIXES, ImageFolder
    from ..compile import warm_up
    from ..visualize import project_top_k, rank_top_k

    # every flag is checked, and the output folder made, before any image is read
    if args.k > MAX_K:
        raise checks.UsageError(f"--k: must be at most {MAX_K} (each figure shows k "
                                    f"patches and k projections per feature), got {args.k}")
    net, shape, shapes, normalize, mean, std = inputs.network_input(args)
    layers = checks.layer_indices(net, args.layer)
    checks.image_folder(args.images)
    folder = ImageFolder(args.images, shape[1:], channels=shape[0], resize=args.resize,
                         mean=mean, std=std, recursive=args.recursive, dtype=net.dtype())
    if len(folder) < args.k:
        where = "in it or below it" if args.recursive else "in it (--recursive: also below)"
        found = (f"{args.images!r} has {len(folder)} image files ({'/'.join(SUFFIXES)}) "
                 f"{where}")
        if args.k != TOP_K:         # the --k given is the likelier mistake: named first
            raise checks.UsageError(f"--k: must be at most the number of images, "
                                        f"got {args.k}; --images {found}")
        raise checks.UsageError(f"--images: {found}; --k {args.k} needs at least "
                                    f"{args.k}")
    checks.check_memory(checks.traced_bytes(shapes, shape, args.batch_size,
                                            net.dtype().itemsize),
                        "--batch-size", args.batch_size)
    out = outputs.output_folder(args.out)

    if net.input_shape is not None:
        warm_up(net, [args.rule])   # compiles (first run only) before the progress bar
    paths = []                          # stream index -> file, for the readable images

    def stream(bar):
        for batch_paths, batch in folder.batches(args.batch_size,
                                                 on_file=lambda _: bar.update()):
            paths.extend(batch_paths)
            yield batch

    print(f"reading {len(folder)} images from {outputs.printable(args.images)} "
          f"({shape[1]}x{shape[2]}, normalisation: {normalize}) for {len(layers)} layer(s)")
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
        print(f"skipped {outputs.printable(path)}: {reason}")
    if len(folder.skipped) > SKIPPED_SHOWN:
        print(f"skipped {len(folder.skipped) - SKIPPED_SHOWN} more (every skipped file and "
              f"its reason: skipped_path and skipped_reason in the .npz)")
    print(f"read {len(paths)} images; skipped {len(folder.skipped)} unreadable file(s); "
          f"ignored {len(folder.ignored)} file(s) without an image suffix "
          f"({'/'.join(SUFFIXES)})")

    written = []
    for layer in tqdm(layers, desc="projections", unit="layer", disable=args.no_progress):
        table = tables[layer]
        channels = strongest_channels(table.values, min(args.features,
                                                          table.values.shape[0]))
        tops = project_top_k(net, table, channels, rule=args.rule,
                             batch_size=args.batch_size,
                             load_images=lambda indices: folder.load([paths[i] for i in
                                                                      indices]))
        feats = [(c, _for_display(top, mean, std)) for c, top in zip(channels, tops)]
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
        print(f"  written: {outputs.printable(path)}")


def add_parser(sub, **common):
    """The ``figure2`` sub-command's flags; its parser runs ``cmd_figure2``."""
    from ..data.images import SUFFIXES
    suffixes = "/".join(SUFFIXES)
    description = checks.paragraph(
        "For each --layer, the --k images where each feature fires most, found "
        f"in one streamed pass over the image files ({suffixes}) of --images, and "
        "their projections: one PNG per layer showing its --features strongest "
        "features, and an .npz of the top-k table of every feature (columns "
        "layer, layer_name, channel, rank, image_index, path, position, value; "
        "skipped_path, skipped_reason). Each image: the shorter side scaled to "
        "--resize, the centre cropped to the network's input size, values in "
        "[0, 1], then --normalize: the pipeline of minideconv.data.images, the one "
        "project --image uses too. Files that cannot be read are skipped and listed.")
    p = sub.add_parser("figure2", help="Zeiler & Fergus's Figure 2 on a folder of your "
                                       "own images",
                       description=description,
                       **common)
    p.add_argument("--images", required=True, metavar="DIR",
                   help=f"folder of {suffixes} images (any size; grey, 16-bit grey, RGB, "
                        f"RGBA, palette or CMYK; turned upright by their EXIF orientation; "
                        f"transparent pixels over mid-grey, or over the mean colour with "
                        f"--normalize imagenet), read in sorted order")
    p.add_argument("--layer", action="append", required=True, metavar="NAME_OR_INDEX",
                   help="a layer name (net.names) or index in [-n, n); repeat the flag or "
                        "separate by commas for several layers (one figure each)")
    p.add_argument("--out", required=True,
                   help="folder for the figures and the table (created with its parents)")
    p.add_argument("--k", type=checks.integer(1), default=TOP_K,
                   help=f"images per feature, in [1, {MAX_K}] and at most the images of "
                        f"--images: each figure shows k patches and k projections per "
                        f"feature (default %(default)s)")
    p.add_argument("--features", type=checks.integer(1), default=FIGURE2_FEATURES,
                   metavar="N",
                   help="features shown per layer, those with the largest mean top-k "
                        "activation (all when the layer has fewer; default %(default)s)")
    p.add_argument("--batch-size", type=checks.integer(1), default=64, metavar="B",
                   help="images per forward pass, >= 1: the memory used grows with B, "
                        "not with the number of images (default %(default)s)")
    inputs.add_flags(p, normalized="each image of --images", resized="each image")
    p.add_argument("--rule", choices=rules.NAMES, default="deconvnet",
                   help="ReLU backward rule (default deconvnet)")
    p.add_argument("--recursive", action="store_true", help="also read the subfolders")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_figure2)
    return p
