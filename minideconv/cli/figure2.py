"""``minideconv figure2``: Zeiler & Fergus's Figure 2 on a folder of your own images.

``cmd_figure2`` checks every flag, chooses the batches from a memory budget
(``choose_batches``), streams the folder's images through the network once
(``rank_folder``: ``minideconv.visualize.rank_top_k``, the ranking written after every
batch so that ``--resume`` can continue it, ``figure2_ranking``; with ``--workers`` or
``--scheduler``, on a Dask cluster, ``figure2_dask``), projects the strongest features
of each layer (``project_top_k``) and writes one figure per layer
(``figure2_file``) and an .npz of every feature's top-k table (``top_k_rows``).
``TOP_K`` and ``strongest_channels``, the nine activations and the features shown, are
the demo's too.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .. import data, rules
from ..visualize.figure2 import TOP_K
from . import checks, figure2_dask, figure2_ranking, inputs, outputs

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


#: figure2's memory budget for a batch's arrays by default: at most this, and at most
#: half the memory available; on the CPU a larger batch makes neither pass faster
DEFAULT_MEMORY = 2**30


def choose_batches(args, net, shape, layers, n_files, n_units, resumed=None):
    """``(ranking batch, projection batch)``: ``--batch-size`` for both, or the largest
    batches whose arrays fit the memory budget (``--memory``, by default the smaller of
    ``DEFAULT_MEMORY`` and half the available memory) — at most the ``n_files`` images
    (all the files, or a cluster task's share) and the ``n_units`` units to project —
    printed with the reason.  A ``resumed``
    ranking keeps its own ranking batch."""
    from ..visualize.batch_memory import batch_memory
    memory = batch_memory(net, shape, layers, rule=args.rule)
    available = checks.available_memory()
    if args.batch_size is not None:
        ranking = args.batch_size if resumed is None else resumed.batch_size
        needed = max(memory.ranking.bytes(ranking),
                     memory.projection.bytes(args.batch_size))
        checks.check_memory(needed, "--batch-size", args.batch_size)
        budget, why, projection = None, "--batch-size", args.batch_size
    else:
        budget, why = memory_budget(args, available)
        try:
            ranking, projection = memory.batch_sizes(budget)
        except ValueError:
            needed = max(memory.ranking.bytes(1), memory.projection.bytes(1))
            raise checks.RunError(f"--memory: one image of {shape[1]}x{shape[2]} needs "
                                  f"about {checks.amount(needed)} in figure2's passes, more "
                                  f"than the {checks.amount(budget)} budget ({why}); give "
                                  f"--memory {checks.amount(needed)} or more") from None
        ranking, projection = min(ranking, n_files), min(projection, n_units)
        if resumed is not None:
            ranking = resumed.batch_size
            checks.check_memory(memory.ranking.bytes(ranking), "--resume's batch", ranking)
        needed = max(memory.ranking.bytes(ranking), memory.projection.bytes(projection))
        why = f"a memory budget of {checks.amount(budget)}: {why}"
    kept = "; the ranking batch of the run it resumes" if resumed is not None else ""
    print(f"batches: {ranking} images per forward pass, {projection} units per projection "
          f"pass, about {checks.amount(needed)} ({why}{kept}; --memory or --batch-size to "
          f"change it)")
    return ranking, projection


def memory_budget(args, available):
    """``(bytes, why)``: ``--memory``, or the smaller of ``DEFAULT_MEMORY`` and half the
    ``available`` memory."""
    if args.memory is not None:
        if available is not None and args.memory > available:
            raise checks.RunError(f"--memory {checks.amount(args.memory)} is more than the "
                                  f"{checks.amount(available)} available; give less")
        return args.memory, "--memory"
    if available is None:
        return DEFAULT_MEMORY, f"the default {checks.amount(DEFAULT_MEMORY)}"
    return (min(DEFAULT_MEMORY, available // 2),
            f"the smaller of {checks.amount(DEFAULT_MEMORY)} and half the "
            f"{checks.amount(available)} available")


def rank_folder(args, net, layers, folder, ranking_batch, settings, out, resumed=None):
    """The ranking pass over the folder, written to the ranking file after every batch
    and continued from ``resumed`` (``--resume``): ``(tables, paths, skipped)``."""
    from tqdm.auto import tqdm

    from ..visualize import rank_top_k
    if resumed is None:
        resumed = figure2_ranking.Ranking(None, 0, [], [], ranking_batch)
    else:
        print(f"resuming: {resumed.files_read} of {len(folder)} files were ranked "
              f"({figure2_ranking.RANKING_FILE})")
    files_read, paths, earlier = resumed.files_read, list(resumed.paths), resumed.skipped
    counted = {"files": files_read}

    def stream():
        def on_file(_):
            counted["files"] += 1
        for batch_paths, batch in folder.batches(ranking_batch, on_file=on_file,
                                                 first=files_read):
            paths.extend(batch_paths)
            yield batch

    def save(tables, files):
        figure2_ranking.save_ranking(out, settings, figure2_ranking.Ranking(
            tables, files, paths, earlier + folder.skipped, ranking_batch))

    def on_batch(so_far):   # after each batch's forward pass: the bar, then the file
        bar.update(counted["files"] - bar.n)
        save(so_far, counted["files"])

    with tqdm(total=len(folder), initial=files_read, desc="images", unit="image",
              disable=args.no_progress) as bar:
        if files_read == len(folder):
            return resumed.tables, paths, earlier
        try:
            tables = rank_top_k(net, stream(), layers, k=args.k, batch_size=ranking_batch,
                                keep_images=False, resume=resumed.tables,
                                on_batch=on_batch)
        except KeyboardInterrupt:
            print(f"interrupted after {counted['files']} of {len(folder)} files: the "
                  f"ranking so far is in "
                  f"{outputs.printable(os.path.join(out, figure2_ranking.RANKING_FILE))}; "
                  f"rerun with --resume to continue it", file=sys.stderr)
            raise
        except ValueError as err:
            if paths and len(paths) >= args.k:
                raise
            raise figure2_ranking.too_few_images(len(paths), len(folder), args.k) from err
        save(tables, len(folder))   # the files after the last readable one are read too
        if bar.n < len(folder):
            bar.update(len(folder) - bar.n)
    return tables, paths, earlier + folder.skipped


def cmd_figure2(args):
    """``minideconv figure2``: check every flag, one pass over the folder, the figures."""
    from tqdm.auto import tqdm

    from .. import plots
    from ..compile import warm_up
    from ..data.images import SUFFIXES, ImageFolder
    from ..visualize import project_top_k

    # every flag is checked, and the output folder made, before any image is read
    if args.k > MAX_K:
        raise checks.UsageError(f"--k: must be at most {MAX_K} (each figure shows k "
                                f"patches and k projections per feature), got {args.k}")
    if args.batch_size is not None and args.memory is not None:
        raise checks.UsageError("--batch-size and --memory: give one of them (the batch, "
                                "or the memory to choose it from)")
    figure2_dask.check_flags(args)
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
    out = outputs.output_folder(args.out)
    settings = figure2_ranking.ranking_settings(
        args.model or data.model_path(), folder, args.recursive, layers, args.k, shape,
        normalize)
    resumed = None          # a ranking that does not fit is refused before any work
    if args.resume:
        resumed = figure2_ranking.load_ranking(out, settings, net.dtype())

    if args.batch_size is not None:     # a quick bound, before anything compiles
        checks.check_memory(checks.traced_bytes(shapes, shape, args.batch_size,
                                                net.dtype().itemsize),
                            "--batch-size", args.batch_size)
    if net.input_shape is not None:
        warm_up(net, [args.rule])   # compiles (first run only) before the progress bar
    n_units = args.k * sum(min(args.features, shapes[layer][0]) for layer in layers)
    with figure2_dask.connect(args) as client:      # None: the ranking runs here
        most = figure2_dask.files_per_task(args, len(folder), client)
        ranking_batch, projection_batch = choose_batches(args, net, shape, layers, most,
                                                         n_units, resumed)
        print(f"reading {len(folder)} images from {outputs.printable(args.images)} "
              f"({shape[1]}x{shape[2]}, normalisation: {normalize}) for {len(layers)} "
              f"layer(s)")
        if client is None:
            tables, paths, skipped = rank_folder(args, net, layers, folder, ranking_batch,
                                                 settings, out, resumed)
        else:
            tables, paths, skipped = figure2_dask.rank_folder(
                args, net, layers, folder, ranking_batch, settings, out, client, resumed)
    for path, reason in skipped[:SKIPPED_SHOWN]:
        print(f"skipped {outputs.printable(path)}: {reason}")
    if len(skipped) > SKIPPED_SHOWN:
        print(f"skipped {len(skipped) - SKIPPED_SHOWN} more (every skipped file and "
              f"its reason: skipped_path and skipped_reason in the .npz)")
    print(f"read {len(paths)} images; skipped {len(skipped)} unreadable file(s); "
          f"ignored {len(folder.ignored)} file(s) without an image suffix "
          f"({'/'.join(SUFFIXES)})")

    shown = {layer: strongest_channels(tables[layer].values,
                                       min(args.features, tables[layer].values.shape[0]))
             for layer in layers}
    written = []
    with tqdm(total=sum(len(c) for c in shown.values()) * args.k, desc="projections",
              unit="unit", disable=args.no_progress) as bar:
        for layer in layers:
            channels = shown[layer]
            tops = project_top_k(net, tables[layer], channels, rule=args.rule,
                                 batch_size=projection_batch, on_batch=bar.update,
                                 load_images=lambda indices: folder.load(
                                     [paths[i] for i in indices]))
            feats = [(c, _for_display(top, mean, std)) for c, top in zip(channels, tops)]
            title = (f"{net.describe(layer)}: its {len(channels)} strongest features over "
                     f"{len(paths)} images of {args.images}")
            path = plots.save(plots.feature_grid(feats, title, rule=args.rule),
                              os.path.join(out, figure2_file(net, layer, args.k)))
            written.append(path)
    table_path = os.path.join(out, f"figure2_top{args.k}.npz")
    np.savez(table_path, **top_k_rows(net, tables, paths),
             skipped_path=np.array([p for p, _ in skipped], dtype=str),
             skipped_reason=np.array([r for _, r in skipped], dtype=str))
    written += [table_path, os.path.join(out, figure2_ranking.RANKING_FILE)]
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
                   help="a layer name (net.names, net.aliases: a torch module's qualified "
                        "name, containers included) or index in [-n, n); repeat the flag "
                        "or separate by commas for several layers (one figure each)")
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
    p.add_argument("--memory", type=checks.memory_size, default=None, metavar="SIZE",
                   help="memory for a batch's arrays, such as 512M or 2G: the batches are "
                        "the largest that fit (default: the smaller of 1 GiB and half the "
                        "memory available); the memory used grows with it, not with the "
                        "number of images")
    p.add_argument("--batch-size", type=checks.integer(1), default=None, metavar="B",
                   help="images per forward pass and per projection pass, >= 1, instead "
                        "of choosing them from --memory")
    p.add_argument("--resume", action="store_true",
                   help=f"continue the ranking pass that an interrupted run with the same "
                        f"flags left in --out ({figure2_ranking.RANKING_FILE}, written "
                        f"after every batch)")
    figure2_dask.add_flags(p)
    inputs.add_flags(p, normalized="each image of --images", resized="each image")
    p.add_argument("--rule", choices=rules.NAMES, default="deconvnet",
                   help="ReLU backward rule (default deconvnet)")
    p.add_argument("--recursive", action="store_true", help="also read the subfolders")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_figure2)
    return p
