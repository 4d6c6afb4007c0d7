"""The ``minideconv`` command (also ``python -m minideconv``).

    minideconv demo --out figures/          Zeiler & Fergus's figures for the shipped network
    minideconv project --image grace_hopper --layer 5 --channel 3 --out p.png
    minideconv train --out my_model.npz     retrain the shipped network from scratch
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

RULES = ("deconvnet", "backprop", "guided")


def _load_net(path):
    from .data import load_model
    from .nn import load
    return load_model() if path is None else load(path)


def _layer_name(net, i):
    """'MaxPool2d of block 2': the layer's type and the conv block it belongs to."""
    from .nn import Conv2d
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


def _strongest_channels(net, images, layer, count):
    """The ``count`` feature maps with the largest mean top-9 activation over ``images``."""
    activation = net.trace(images, upto=layer).outputs[layer]
    peaks = activation.reshape(activation.shape[0], activation.shape[1], -1).max(axis=2)
    top9 = -np.sort(-peaks, axis=0)[:9].mean(axis=0)
    return [int(c) for c in np.argsort(-top9, kind="stable")[:count]]


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


def demo(out, n_images=1000, features=6, model=None, progress=True, log=print):
    """Write the demo figures into ``out``; returns their paths."""
    from tqdm.auto import tqdm

    from . import plots
    from .data import CLASSES, load_dataset
    from .visualize import occlusion_map, project, score, strongest, top_k_patches

    os.makedirs(out, exist_ok=True)
    net = _load_net(model)
    images, labels = load_dataset("test", n=n_images)
    written = []

    def save(fig, name, what):
        path = plots.save(fig, os.path.join(out, name))
        written.append(path)
        log(f"  {what}: {path}")

    # Figure 2 of Zeiler & Fergus, one figure per conv block
    blocks = block_outputs(net)
    jobs = [(b, layer, channel) for b, layer in enumerate(blocks, 1)
            for channel in _strongest_channels(net, images, layer, features)]
    results = {}
    for b, layer, channel in tqdm(jobs, desc="top-9 patches", unit="feature",
                                  disable=not progress):
        results.setdefault((b, layer), []).append(
            (channel, top_k_patches(net, images, layer, channel, k=9)))
    for (b, layer), feats in results.items():
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
                   for rule in RULES}
    fig = plots.compare_rules(
        image, projections,
        f"One activation, three ReLU rules: layer {layer} ({_layer_name(net, layer)}), "
        f"feature {channel}, position {position}",
        window=net.receptive_field(layer).window(position))
    save(fig, "rules_compared.png", "deconvnet vs backprop vs guided")

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


def _parse_position(text):
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"position must be H,W (two ints), got {text!r}")
    return h, w


def cmd_project(args):
    from . import plots
    from .data import load_image
    from .visualize import _check_channel, check_layer, project, strongest

    net = _load_net(args.model)
    image = load_image(args.image)
    layer = check_layer(net, args.layer)
    projection = project(net, image, layer, args.channel, args.position, rule=args.rule)
    activation = net.trace(image[None], upto=layer).outputs[layer]
    channel = _check_channel(activation, args.channel, net.describe(layer))
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
        f"activation {value:.3g}; image {args.image}")
    if window is not None:
        plots._window_box(fig.axes[0], window)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    plots.save(fig, args.out)
    print(f"activation {value:.4g} at {where}; figure written to {args.out}")


def cmd_demo(args):
    print(f"writing the demo figures to {args.out}/")
    demo(args.out, n_images=args.images, features=args.features, model=args.model,
         progress=not args.no_progress)


def cmd_train(args):
    from .train import train_default
    _, acc, seconds = train_default(out=args.out, epochs=args.epochs, seed=args.seed,
                                    n_train=args.n_train, progress=not args.no_progress)


def cmd_crosscheck(args):
    try:
        from .interop.torch import crosscheck_builtin
        return crosscheck_builtin(args.models, dtype=args.dtype, n_images=args.images,
                                  seed=args.seed)
    except ImportError as err:
        print(f"minideconv crosscheck: {err}", file=sys.stderr)
        return 2


def build_parser():
    from .train import DEFAULTS
    parser = argparse.ArgumentParser(
        prog="minideconv",
        description="Zeiler & Fergus's deconvnet from first principles: visualise what the "
                    "units of a small trained CNN respond to.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="write Zeiler & Fergus-style figures for the shipped "
                                    "network",
                       description="Top-9 patches and deconvnet projections per conv block, "
                                   "the three ReLU rules compared, an occlusion map and the "
                                   "first-layer filters, as PNG files in --out.")
    p.add_argument("--out", required=True, help="folder for the figures (created)")
    p.add_argument("--images", type=int, default=1000,
                   help="test images searched for top activations (default 1000)")
    p.add_argument("--features", type=int, default=6,
                   help="features shown per block (default 6)")
    p.add_argument("--model", help="a network .npz (default: the shipped one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("project", help="project one activation back to pixel space",
                       description="Project the strongest activation (or the one at "
                                   "--position) of feature --channel at the output of "
                                   "net.layers[--layer] back to the image, and save a figure.")
    p.add_argument("--image", required=True,
                   help="an image file, a sample name (grace_hopper), or test:<i> / "
                        "train:<i> for a dataset image")
    p.add_argument("--layer", type=int, required=True, help="index into net.layers")
    p.add_argument("--channel", type=int, required=True, help="feature map of that layer")
    p.add_argument("--position", type=_parse_position, default=None, metavar="H,W",
                   help="unit position in the feature map (default: its maximum)")
    p.add_argument("--rule", choices=RULES, default="deconvnet",
                   help="ReLU backward rule (default deconvnet)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--model", help="a network .npz (default: the shipped one)")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("train", help="train the shipped network from scratch",
                       description="Softmax cross-entropy, SGD with momentum, on "
                                   "load_dataset('train'); prints the test accuracy.")
    p.add_argument("--out", default="model.npz", help="where to write the weights "
                                                      "(default model.npz)")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--n-train", type=int, default=DEFAULTS["n_train"],
                   help="training images (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("crosscheck", help="compare minideconv with PyTorch and Captum",
                       description="Forward activations and the backprop / deconvnet / "
                                   "guided projections of every layer, against PyTorch "
                                   "autograd and Captum, on built-in architectures with "
                                   "seeded random weights and on the shipped network. Exits "
                                   "1 when an error exceeds the tolerance (float64: 1e-10 "
                                   "relative, float32: 1e-4). Needs torch and captum.")
    p.add_argument("--models", nargs="+", choices=["zfnet", "vgg", "embedded"],
                   default=["zfnet", "vgg", "embedded"], help="which models (default all)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--images", type=int, default=2, help="images per model (default 2)")
    p.add_argument("--seed", type=int, default=0, help="weights and inputs seed")
    p.set_defaults(func=cmd_crosscheck)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"minideconv {args.command}: error: {err}", file=sys.stderr)
        return 2
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
