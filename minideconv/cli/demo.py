"""``minideconv demo``: Zeiler & Fergus's figures for the shipped network (or a chain).

``demo`` writes them — per conv block (``block_outputs``, ``describe_block``) the top-9
grid of its strongest features, then one image's strongest activation under the three
ReLU rules, an occlusion map, the first-layer filters and every method of the attribution
family on that image (``family_maps``); ``cmd_demo`` checks every flag
and the network first.
"""

from __future__ import annotations

import os

import numpy as np

from . import checks, outputs
from .. import rules
from .attribute import method_names
from .figure2 import TOP_K, strongest_channels
from .project import layer_name


def _load_net(model):
    """``model``: a network, the path of a network file, or None for the shipped one."""
    from ..data import load_model
    from ..nn import Network, load
    if isinstance(model, Network):
        return model
    return load_model() if model is None else load(model)


def dataset_image_shape():
    """(C, H, W) of the embedded dataset's images: what the shipped network takes."""
    from ..data import SIZE
    return (3, SIZE, SIZE)


def block_outputs(net):
    """The last layer of each conv block (conv → ReLU [→ pool]): the layer just before the
    next Conv2d or Flatten, or the last layer."""
    from ..nn import Conv2d, Flatten, Linear
    ends = []
    for i, layer in enumerate(net.layers):
        nxt = net.layers[i + 1] if i + 1 < len(net.layers) else None
        started = any(isinstance(x, Conv2d) for x in net.layers[:i + 1])
        if started and not isinstance(layer, (Flatten, Linear)) and \
                (nxt is None or isinstance(nxt, (Conv2d, Flatten))):
            ends.append(i)
    return ends


def describe_block(net, last):
    """'conv 3×3 16→32 → ReLU → max-pool 3×3/2': the layers of the block ending at ``last``."""
    from ..nn import Conv2d, MaxPool2d
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

    from .. import plots
    from ..attribution import describe
    from ..data import CLASSES, load_dataset
    from ..compile import warm_up
    from ..visualize import (occlusion_map, project, project_top_k, rank_top_k, score,
                             strongest_unit)

    os.makedirs(out, exist_ok=True)
    net = _load_net(model)
    warm_up(net, rules.NAMES)  # the first run compiles here, before any progress bar starts
    images, labels = load_dataset("test", n=n_images)
    written = []

    def save(fig, name, what):
        path = plots.save(fig, os.path.join(out, name))
        written.append(path)
        log(f"  {what}: {outputs.printable(path)}")

    # Figure 2 of Zeiler & Fergus, one figure per conv block: one pass over the images
    # finds every feature's top 9 in every block, then the shown features' 9 activations
    # each go down together
    blocks = block_outputs(net)
    tables = rank_top_k(net, images, blocks, k=TOP_K)
    for b, layer in enumerate(tqdm(blocks, desc="top-9 patches", unit="block",
                                   disable=not progress), 1):
        channels = strongest_channels(tables[layer].values, features)
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
    channel, *position = strongest_unit(activation)
    position = tuple(position)
    projections = {rule: project(net, image, layer, channel, position, rule=rule)
                   for rule in rules.NAMES}
    fig = plots.compare_rules(
        image, projections,
        f"One activation, three ReLU rules: layer {layer} ({layer_name(net, layer)}), "
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

    # the family that followed the deconvnet, every method on the same image and class
    maps = family_maps(net, image, target, log)
    fig = plots.family_figure(
        image, maps, f"The attribution family on test image {index}: each method's map of "
                     f"the logit of {CLASSES[target]!r} (class {target})",
        notes={name: describe(name) for name in maps})
    save(fig, "family.png", "the attribution family")
    return written


def family_maps(net, image, target, log=print):
    """Every method of ``attribution.METHODS`` on one image (C, H, W), for one
    class: name → map, in the order of ``METHODS``.  A method that refuses the network
    (LRP a layer it has no rule for, Grad-CAM a network without feature maps) is left
    out, with a ``note:`` saying why."""
    from ..attribution import compute
    maps = {}
    for name in method_names():
        try:
            maps[name] = compute(name, net, image, target)
        except (ValueError, TypeError) as err:
            log(f"note: {name} is left out of the family figure: {err}")
    return maps


def _check_demo_network(net, shapes, features):
    """demo draws per conv block, the first layer's filters and class probabilities."""
    from ..data import CLASSES
    from ..nn import Conv2d
    blocks = block_outputs(net)
    if not blocks or not isinstance(net.layers[0], Conv2d):
        raise checks.RunError("--model: demo needs a network whose first layer is a "
                                  "Conv2d")
    if shapes[-1] != (len(CLASSES),):
        raise checks.RunError(f"--model: demo needs {len(CLASSES)} outputs, one per class "
                              f"of the dataset; the network gives {shapes[-1]}")
    fewest, block = min((shapes[layer][0], b) for b, layer in enumerate(blocks, 1))
    if features > fewest:
        raise checks.UsageError(f"--features: must be in [1, {fewest}] (block {block} has "
                                f"{fewest} feature maps), got {features}")


def cmd_demo(args):
    """``minideconv demo``: check every flag and the network, then ``demo``."""
    net = checks.load_network(args.model)
    from ..nn import Graph
    if isinstance(net, Graph):   # its figures follow the conv blocks of a chain
        raise checks.UsageError("--model: demo shows the conv blocks of a Sequential "
                                "network; for a graph network (residual or concatenating) "
                                "use `minideconv figure2 --layer NAME` and `minideconv "
                                "project`")
    shapes = checks.check_network_input(net, dataset_image_shape())
    _check_demo_network(net, shapes, args.features)
    needed = (checks.dataset_bytes(args.images, dataset_image_shape())
              + checks.traced_bytes(shapes, dataset_image_shape(), args.images))
    checks.check_memory(needed, "--images", args.images)
    out = outputs.output_folder(args.out)
    print(f"writing the demo figures to {outputs.printable(out)}")
    demo(out, n_images=args.images, features=args.features, model=net,
         progress=not args.no_progress)


def add_parser(sub, **common):
    """The ``demo`` sub-command's flags; its parser runs ``cmd_demo``."""
    from ..data import SPLITS
    test_size = SPLITS["test"][1]
    description = checks.paragraph(
        "Top-9 patches and deconvnet projections per conv block, the three ReLU"
        " rules compared, an occlusion map, the first-layer filters and the"
        " attribution family's maps of one image, as PNG files in --out.")
    p = sub.add_parser("demo", help="write Zeiler & Fergus-style figures for the shipped "
                                    "network",
                       description=description, **common)
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
    return p
