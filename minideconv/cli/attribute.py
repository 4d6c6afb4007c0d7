"""``minideconv project --method NAME``: one class logit explained by a method of the
attribution family (``minideconv.attribution.METHODS``), as a figure.

The unit projection (``--layer``, ``--channel``, ``--position``, ``--rule``) follows one
activation down; ``--method`` explains a class logit z_t instead (``--target`` t, default
the class the network predicts), so the two sets of flags exclude one another
(``check_flags``).  ``method_name`` reads a method's name or one of its short forms
(``ALIASES``), ``attribution_map`` computes the map — ``attribution.compute`` itself, or
the method's own function where a flag (``--steps``, ``--samples``, ``--sigma``,
``--seed``, ``--grad-cam-layer``) changes what ``METHODS`` fixes — and
``cmd_attribute`` checks every flag, computes and saves the figure.
"""

from __future__ import annotations

import argparse
from . import checks, inputs, outputs

__all__ = ["ALIASES", "METHOD_FLAGS", "UNIT_FLAGS", "method_name", "method_names",
           "check_flags", "attribution_map", "cmd_attribute", "add_flags"]

#: short forms of the method names
ALIASES = {"saliency": "gradient", "ixg": "input_x_gradient", "ig": "integrated_gradients",
           "sg": "smoothgrad", "gradcam": "grad_cam", "guided_gradcam": "guided_grad_cam",
           "gbp": "guided_backprop", "guided": "guided_backprop", "lrp_ab": "lrp_alpha_beta"}

#: each method's own flag → (its attribute in args, the methods it applies to)
METHOD_FLAGS = {"--steps": ("steps", ("integrated_gradients",)),
                "--samples": ("samples", ("smoothgrad",)),
                "--sigma": ("sigma", ("smoothgrad",)),
                "--seed": ("seed", ("smoothgrad",)),
                "--grad-cam-layer": ("grad_cam_layer", ("grad_cam", "guided_grad_cam"))}

#: the unit projection's flags, which --method leaves out
UNIT_FLAGS = {"--layer": "layer", "--channel": "channel", "--position": "position",
              "--rule": "rule"}


def _names():
    from ..attribution import METHODS
    return tuple(METHODS)


def method_name(text):
    """An argparse ``type=``: a key of ``attribution.METHODS`` or a short form of
    ``ALIASES``, in any case, '-' for '_' too ('grad-cam') → the key."""
    key = text.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in _names():
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(_names())} or a short "
                                         f"form ({', '.join(ALIASES)}), got {text!r}")
    return key


def method_names():
    """The names of ``attribution.METHODS``, in its order."""
    return _names()


def _given(args, names):
    return [flag for flag, attribute in names.items() if getattr(args, attribute) is not None]


def check_flags(args):
    """The unit projection's flags and the method's exclude one another; each method's own
    flag applies to its method only; the unit projection needs --layer and --channel."""
    method_flags = _given(args, {flag: a for flag, (a, _) in METHOD_FLAGS.items()})
    if args.method is None:
        extra = method_flags + (["--target"] if args.target is not None else [])
        if extra:
            raise checks.UsageError(f"{extra[0]}: applies with --method (a class logit "
                                    f"explained); leave it out to project a unit")
        missing = [flag for flag in ("--layer", "--channel")
                   if getattr(args, UNIT_FLAGS[flag]) is None]
        if missing:
            raise checks.UsageError(f"the following arguments are required: "
                                    f"{', '.join(missing)} (or give --method NAME to "
                                    f"explain a class logit)")
        return
    unit = _given(args, UNIT_FLAGS)
    if unit:
        raise checks.UsageError(f"--method explains a class logit (--target), not a unit: "
                                f"leave out {', '.join(unit)} (the unit projection's flags)")
    for flag in method_flags:
        attribute, methods = METHOD_FLAGS[flag]
        if args.method not in methods:
            raise checks.UsageError(f"{flag}: applies to --method {' or '.join(methods)} "
                                    f"only, got --method {args.method}; leave it out")


def _check_method(net, shapes, shape, args):
    """The network must give class logits; returns the number of classes and the options
    ``attribution_map`` passes on."""
    logits = shapes[net.output_layer()]
    if len(logits) != 1:
        raise checks.RunError(f"--model: --method explains a class logit, but the "
                              f"network's output ({net.describe(net.output_layer())}) is "
                              f"{logits}, not one logit per class")
    options = {a: getattr(args, a) for _, (a, _) in METHOD_FLAGS.items()
               if getattr(args, a) is not None}
    for flag in ("--steps", "--samples"):      # one traced image per path point / sample
        count = options.get(flag[2:])
        if count is not None:
            checks.check_memory(checks.traced_bytes(shapes, shape, count,
                                                    net.dtype().itemsize), flag, count)
    if args.method in METHOD_FLAGS["--grad-cam-layer"][1]:
        options["layer"] = _grad_cam_layer(net, shape, options.pop("grad_cam_layer", None))
    return logits[0], options


def _grad_cam_layer(net, shape, given):
    """Grad-CAM's layer: ``--grad-cam-layer``'s, checked, or the last spatial one."""
    from ..attribution import last_spatial_layer
    from ..attribution.grad_cam import spatial_layer
    if given is None:
        try:
            return last_spatial_layer(net, shape)
        except ValueError as err:
            raise checks.RunError(f"--model: {err}") from None
    index = checks.layer_index(net, given, "--grad-cam-layer")
    try:
        return spatial_layer(net, index, shape)
    except ValueError as err:
        raise checks.UsageError(f"--grad-cam-layer: {err}") from None


def _check_target(target, classes):
    from ..attribution.targets import check_targets
    try:
        check_targets(target, 1, classes)
    except ValueError as err:
        raise checks.UsageError(f"--target: {str(err).removeprefix('target ')}") from None
    return target


def attribution_map(net, image, name, target, options=None):
    """The map of method ``name`` for class ``target`` of one image (C, H, W):
    ``attribution.compute`` when no option is given (as ``METHODS`` fixes them), else
    the method's own function with ``options`` (``steps``; ``samples``, ``sigma``,
    ``seed``; ``layer``), its own defaults for the rest — the same as ``METHODS``'s."""
    from .. import attribution
    options = dict(options or {})
    if name in ("grad_cam", "guided_grad_cam"):
        layer = options.pop("layer", None)
        if layer is None:
            layer = attribution.last_spatial_layer(net, image.shape)
        return getattr(attribution, name)(net, image, layer, target)
    if not options:
        return attribution.compute(name, net, image, target)
    return getattr(attribution, name)(net, image, target, **options)


def _settings(net, options, layer_given):
    """'; 20 steps' — what the flags changed, for the printed line."""
    words = {"steps": "{} steps", "samples": "{} samples", "sigma": "σ = {:g}",
             "seed": "seed {}"}
    parts = [text.format(options[key]) for key, text in words.items() if key in options]
    if layer_given:
        parts.append(f"pooled at {net.describe(options['layer'])} instead "
                     f"(--grad-cam-layer)")
    elif "layer" in options:
        parts.append(net.describe(options["layer"]))
    return "".join(f"; {part}" for part in parts)


def cmd_attribute(args):
    """``minideconv project --method``, its flags' exclusions checked (``check_flags``):
    check every value, compute the map, save the figure, and say in one line what was
    computed."""
    from .. import attribution, plots
    from ..attribution.targets import logits_of
    from ..data import CLASSES
    from ..data.images import denormalize

    net, shape, shapes, normalize, mean, std = inputs.network_input(args)
    image = checks.load_image(args.image, shape, args.resize, mean, std, net.dtype())
    classes, options = _check_method(net, shapes, shape, args)
    target = args.target if args.target is None else _check_target(args.target, classes)
    out = outputs.output_file(args.out, "--out", outputs.figure_suffixes(), ".png",
                              ignore_case=True)

    predicted = int(logits_of(net, image[None])[0].argmax())
    target = predicted if target is None else target
    amap = attribution_map(net, image, args.method, target, options)
    named = f" ({CLASSES[target]!r})" if args.model is None else ""
    which = "the predicted class" if target == predicted else \
        f"predicted {predicted}" + (f" ({CLASSES[predicted]!r})" if named else "")
    settings = _settings(net, options, args.grad_cam_layer is not None)
    method = f"{attribution.describe(args.method)}{settings}"
    aimed = f"target class {target}{named}, {which}"
    shown = f"; normalised ({normalize}) for the network" if mean is not None else ""
    fig = plots.attribution_figure(denormalize(image, mean, std), amap,
                                   f"{method}\n{aimed}; image {args.image}{shown}",
                                   args.method)
    path = plots.save(fig, out)
    print(f"{method}: {aimed}; figure written to {outputs.printable(path)}")


def add_flags(p):
    """``--method``, ``--target`` and each method's own flags on ``project``'s parser."""
    names = ", ".join(_names())
    short = ", ".join(f"{a}={k}" for a, k in ALIASES.items())
    p.add_argument("--method", type=method_name, default=None, metavar="NAME",
                   help=f"explain a class logit instead of projecting a unit: one of "
                        f"{names} (minideconv.attribution.METHODS; lrp and lrp_alpha_beta "
                        f"need minideconv.attribution.lrp), or a short form: {short}. "
                        f"Excludes --layer, --channel, --position and --rule")
    p.add_argument("--target", type=checks.integer(0), default=None, metavar="T",
                   help="with --method: the class whose logit is explained, in [0, "
                        "classes) (default: the class the network predicts)")
    p.add_argument("--steps", type=checks.integer(1), default=None, metavar="S",
                   help="integrated_gradients: Gauss-Legendre steps on the path from a zero "
                        "image, >= 1 (default 50)")
    p.add_argument("--samples", type=checks.integer(1), default=None, metavar="S",
                   help="smoothgrad: noisy copies averaged, >= 1 (default 50)")
    p.add_argument("--sigma", type=checks.real(0.0), default=None, metavar="F",
                   help="smoothgrad: the noise's standard deviation as a fraction of the "
                        "image's range (max - min), >= 0 (default 0.15)")
    p.add_argument("--seed", type=checks.integer(0), default=None,
                   help="smoothgrad: the noise's seed, >= 0 (default 0)")
    p.add_argument("--grad-cam-layer", default=None, metavar="L",
                   help="grad_cam, guided_grad_cam: the layer pooled, a name or an index, "
                        "before the logits and with feature maps (default: the last such "
                        "layer larger than 1x1; layer 7 of the shipped network)")
