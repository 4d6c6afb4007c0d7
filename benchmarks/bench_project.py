"""End-to-end: project one activation back to the pixels, minideconv vs PyTorch / Captum.

    python benchmarks/bench_project.py [--repeats 15] [--batch 16] [--threads 2]
                                       [--warmup-ms 150]

For each built-in model (``minideconv.interop.torch.builtin_model``: ZFNet-like,
VGG-like, the embedded trained net) and each rule, one unit (channel, h, w) of the
deepest ReLU's feature map — the one with the largest mean activation over the batch — is
projected to the input for every image of a batch:

- minideconv: ``visualize.project`` (forward trace + the way back, all in minideconv);
- torch: ``backprop`` is one autograd pass; ``deconvnet`` and ``guided`` are Captum's
  ``NeuronDeconvolution`` / ``NeuronGuidedBackprop``, which is what a practitioner would
  run.  Both sides return a · ∂a/∂x (Captum's map times the activation a), and the script
  checks that they agree before timing them.

Timing protocol as ``bench_ops.py`` (alternating rounds; in each, untimed calls for at least
``--warmup-ms``, then the mean of back-to-back calls; median over rounds), float32, the
same thread count for everyone.
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np

from bench_ops import time_side_by_side

from minideconv import nn, visualize


def deepest_relu(net):
    """Index of the last ReLU whose output is a (C, H, W) feature map."""
    shapes = net.layer_shapes(net.input_shape)
    return max(i for i, layer in enumerate(net.layers)
               if isinstance(layer, nn.ReLU) and len(shapes[i]) == 3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup-ms", type=float, default=150.0,
                        help="untimed calls for at least this long in each round (0: one)")
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("NUMBA_NUM_THREADS", 2)))
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="captum")  # "Setting backward hooks on ReLU"

    import torch
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop
    torch.set_num_threads(args.threads)
    import numba
    from minideconv.backends import load_cpu_backend
    load_cpu_backend()  # picks the threading layer before Numba starts its threads (docs/layout.md, "Threads")
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    from minideconv.interop.torch import to_torch
    from minideconv.models import builtin_model

    print(f"float32, batch {args.batch}, {args.threads} threads, median of {args.repeats} "
          f"rounds; torch {torch.__version__}")
    print(f"{'model / rule':28s} {'ours ms':>9s} {'torch ms':>9s} {'torch/ours':>10s} "
          f"{'max rel diff':>12s}")
    rng = np.random.default_rng(0)
    for name in ("zfnet", "vgg", "embedded"):
        net, shape = builtin_model(name)
        net = net.astype(np.float32)
        model = to_torch(net).eval()
        leaves = [m for m in model.modules() if not list(m.children())]
        layer = deepest_relu(net)
        x = rng.random((args.batch, *shape)).astype(np.float32)
        xt = torch.from_numpy(x)
        with torch.no_grad():
            activation = model[:layer + 1](xt).numpy()
        mean = activation.mean(axis=0)
        unit = tuple(int(i) for i in np.unravel_index(np.argmax(mean), mean.shape))
        scale = activation[(slice(None),) + unit].reshape(-1, 1, 1, 1)

        def ours(rule):
            return visualize.project(net, x, layer, unit[0], position=unit[1:], rule=rule)

        def theirs(rule):
            if rule == "backprop":
                x_grad = xt.clone().requires_grad_(True)
                model[:layer + 1](x_grad)[(slice(None),) + unit].sum().backward()
                return x_grad.grad.numpy() * scale
            cls = NeuronDeconvolution if rule == "deconvnet" else NeuronGuidedBackprop
            return cls(model, leaves[layer]).attribute(xt, neuron_selector=unit).numpy() * scale

        for rule in ("deconvnet", "guided", "backprop"):
            reference = theirs(rule)
            assert np.abs(reference).max() > 0, "the chosen unit is dead: nothing to compare"
            diff = np.abs(ours(rule) - reference).max() / np.abs(reference).max()
            if diff > 1e-3:
                raise SystemExit(f"{name}/{rule}: minideconv and torch disagree ({diff:.1e})")
            med = time_side_by_side({"minideconv": lambda: ours(rule),
                                     "torch": lambda: theirs(rule)}, args.repeats,
                                    warmup_ms=args.warmup_ms)
            print(f"{name + ' / ' + rule:28s} {med['minideconv']:9.2f} {med['torch']:9.2f} "
                  f"{med['torch'] / med['minideconv']:10.2f} {diff:12.1e}", flush=True)


if __name__ == "__main__":
    main()
