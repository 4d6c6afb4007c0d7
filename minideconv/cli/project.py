"""``minideconv project``: one activation of a network projected back to its image.

``cmd_project`` checks every flag, computes the projection (``minideconv.visualize``) and
saves one figure; ``zero_projection_note`` says why a projection came out all zero, and
``layer_name`` names a layer in a figure's title.
"""

from __future__ import annotations

import numpy as np

from .. import rules
from . import attribute, checks, inputs, outputs


def layer_name(net, i):
    """'MaxPool2d of block 2': the layer's type and the conv block it belongs to — or, in a
    Graph (where blocks are not a chain), 'ReLU layer2.1.relu_1': its type and name."""
    from ..nn import Conv2d, Graph
    if isinstance(net, Graph):
        return f"{type(net.layers[i]).__name__} {net.names[i]}"
    block = sum(isinstance(layer, Conv2d) for layer in net.layers[:i + 1])
    return f"{type(net.layers[i]).__name__} of block {block}"


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


def cmd_project(args):
    """``minideconv project``: check every flag, project, save the figure (with
    ``--method``: ``attribute.cmd_attribute``, a class logit explained)."""
    attribute.check_flags(args)
    if args.method is not None:
        return attribute.cmd_attribute(args)
    rule = args.rule or "deconvnet"
    from .. import plots
    from ..visualize import check_channel, project, strongest

    from ..data.images import denormalize

    # every flag is checked, and the output made, before the projection is computed
    net, shape, shapes, normalize, mean, std = inputs.network_input(args)
    image = checks.load_image(args.image, shape, args.resize, mean, std, net.dtype())
    layers = checks.layer_indices(net, [args.layer])
    if len(layers) != 1:
        raise checks.UsageError(f"--layer: project takes one layer, got {args.layer!r}")
    layer = layers[0]
    checks.channel_index(net, shapes, layer, args.channel)
    checks.position_in(net, shapes, layer, args.position)
    out = outputs.output_file(args.out, "--out", outputs.figure_suffixes(), ".png",
                             ignore_case=True)

    projection = project(net, image, layer, args.channel, args.position, rule=rule)
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
    shown = f"; normalised ({normalize}) for the network" if mean is not None else ""
    fig = plots.projection_figure(
        denormalize(image, mean, std), projection,
        f"{rule} projection: layer {layer} ({layer_name(net, layer)}), "
        f"feature {channel}, {where}\n"
        f"activation {value:.3g}; image {args.image}{shown}", window=window)
    path = plots.save(fig, out)
    print(f"activation {value:.4g} at {where}; figure written to "
          f"{outputs.printable(path)}")
    if not np.any(projection):
        print(zero_projection_note(net, layer, channel, value, where,
                                   chosen=args.position is not None))


def add_parser(sub, **common):
    """The ``project`` sub-command's flags; its parser runs ``cmd_project``."""
    from ..data import SAMPLE_IMAGES, SPLITS
    test_size, train_size = SPLITS["test"][1], SPLITS["train"][1]
    description = checks.paragraph(
        "Project the strongest activation (or the one at --position) of feature"
        " --channel at the output of net.layers[--layer] back to the image, and"
        " save a figure; or, with --method, explain a class logit by a method of the"
        " attribution family (gradient, integrated gradients, SmoothGrad, Grad-CAM,"
        " LRP, ...).")
    p = sub.add_parser("project", help="project one activation back to pixel space",
                       description=description, **common)
    p.add_argument("--image", required=True,
                   help=f"an image file, a sample name ({', '.join(SAMPLE_IMAGES)}), or "
                        f"test:<i> (0 <= i < {test_size}) / train:<i> (0 <= i < "
                        f"{train_size}) for a dataset image (3x32x32: only for a network "
                        f"that takes 3x32x32); a file or a sample is read as figure2 reads "
                        f"one (minideconv.data.images) for the network's input: grey for "
                        f"1 channel, RGB for 3, upright by its EXIF tag, transparency over "
                        f"mid-grey, the shorter side scaled to --resize and the centre "
                        f"cropped")
    p.add_argument("--layer", metavar="L",
                   help="(the unit projection; required without --method) a layer name "
                        "(net.names, net.aliases) or an index into "
                        "net.layers, in [-n, n) for n layers (10 for the shipped network); "
                        "negative counts from the end")
    p.add_argument("--channel", type=checks.integer(0), metavar="C",
                   help="(required without --method) feature map of that layer, in [0, "
                        "its channels)")
    p.add_argument("--position", type=checks.position, default=None, metavar="H,W",
                   help="unit position in the feature map, each in [0, its size) "
                        "(default: its maximum)")
    p.add_argument("--rule", choices=rules.NAMES, default=None,
                   help="ReLU backward rule (default deconvnet)")
    p.add_argument("--out", required=True,
                   help="the figure file, created with its folder: '.png' is added when "
                        "the name has no suffix; .pdf, .svg, .jpg … choose another "
                        "format; an existing folder, and a name that is only a suffix "
                        "('.png'), are refused. The path written is printed")
    attribute.add_flags(p)
    inputs.add_flags(p, normalized="the image, a dataset image too (the figure shows it "
                                   "as read)", resized="an image file or a sample name")
    p.set_defaults(func=cmd_project)
    return p
