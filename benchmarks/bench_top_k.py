"""Figure 2 for a whole layer: minideconv's ``top_k`` vs torch + Captum vs a per-feature loop.

    python benchmarks/bench_top_k.py [--images 2000] [--layer 5] [--k 9] [--repeats 3]
                                     [--threads 2] [--torch-threads T] [--loop-repeats 1]

For every feature of ``net.layers[--layer]`` of the shipped network (``data.load_model``),
over the first ``--images`` test images (``data.load_dataset("test")``, as the demo), find
the ``--k`` strongest images (each image's maximum of the feature map) and project each of
those activations to the pixels with the deconvnet rule:

- ``top_k``: ``visualize.top_k(net, images, layer, k)`` — one forward pass for all
  features, then the chosen images traced again and every (feature, rank) seed sent down
  together, in batches;
- torch + Captum: the recipe a practitioner runs — one torch forward pass to rank
  (``interop.torch.to_torch``), then one ``captum.attr.NeuronDeconvolution`` call per unit
  (features × k calls), each on its one image;
- the per-feature loop: ``visualize.top_k_patches`` once per feature, each with its own
  forward pass over all images.

The script first checks that all three pick the same images and that Captum's maps, times
the activation, equal minideconv's projections.  Rounds alternate between the recipes;
each time is the median over ``--repeats`` rounds (the per-feature loop: ``--loop-repeats``),
after one untimed call of each.  float32, ``--threads`` for everyone, unless
``--torch-threads`` gives torch its own: on a busy 2-core machine torch's intra-op threads
make Captum's many small calls several times slower than one thread does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--layer", type=int, default=5)
    parser.add_argument("--k", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-repeats", type=int, default=1,
                        help="rounds of the per-feature loop (0: leave it out)")
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("NUMBA_NUM_THREADS", 2)))
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch's intra-op threads (default: --threads)")
    args = parser.parse_args(argv)
    torch_threads = args.threads if args.torch_threads is None else args.torch_threads
    warnings.filterwarnings("ignore", module="captum")  # "Setting backward hooks on ReLU"

    import torch
    from captum.attr import NeuronDeconvolution
    torch.set_num_threads(torch_threads)
    import numba
    from minideconv.backends import load_cpu_backend
    load_cpu_backend()  # picks the threading layer before Numba starts its threads
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    from minideconv import visualize
    from minideconv.compile import warm_up
    from minideconv.data import load_dataset, load_model
    from minideconv.interop.torch import to_torch

    net = load_model()
    images, _ = load_dataset("test", n=args.images)
    layer, k = args.layer, args.k
    channels = net.layer_shapes(images.shape[1:])[layer][0]
    model = to_torch(net).eval()
    leaves = [m for m in model.modules() if not list(m.children())]
    warm_up(net)

    def ours():
        return visualize.top_k(net, images, layer, k=k)

    def per_feature_loop():
        return [visualize.top_k_patches(net, images, layer, c, k=k) for c in range(channels)]

    def torch_captum():
        x = torch.from_numpy(images)
        with torch.no_grad():
            activation = model[:layer + 1](x).numpy()
        maps = activation.reshape(len(x), channels, -1)
        flat = maps.argmax(axis=2)                                      # (N, C)
        peaks = np.take_along_axis(maps, flat[..., None], axis=2)[..., 0]
        deconv = NeuronDeconvolution(model, leaves[layer])
        found = []
        for c in range(channels):
            order = np.argsort(-peaks[:, c], kind="stable")[:k]
            for n in order:
                h, w = np.unravel_index(flat[n, c], activation.shape[2:])
                attribution = deconv.attribute(x[n:n + 1], neuron_selector=(c, int(h), int(w)))
                found.append((c, int(n), (int(h), int(w)),
                              attribution[0].numpy() * peaks[n, c]))
        return found

    def forward_ours():
        return visualize.channel_maxima(net, images, [layer])

    def forward_torch():
        with torch.no_grad():
            return model[:layer + 1](torch.from_numpy(images))

    # the three agree before any is timed
    tops = ours()
    reference = torch_captum()
    field = net.receptive_field(layer)
    worst = 0.0
    for (c, n, position, attribution), i in zip(reference, range(len(reference))):
        top = tops[c]
        rank = i % k
        assert top.indices[rank] == n and tuple(top.positions[rank]) == position, (c, rank)
        expected = visualize.window_patch(attribution, field.window(position))
        scale = max(np.abs(expected).max(), 1e-30)
        worst = max(worst, float(np.abs(top.projections[rank] - expected).max() / scale))
    if worst > 1e-3:
        raise SystemExit(f"minideconv and Captum disagree: max relative difference {worst:.1e}")
    if args.loop_repeats:
        for top, looped in zip(tops, per_feature_loop()):
            for name in ("values", "indices", "positions", "projections"):
                assert np.array_equal(getattr(top, name), getattr(looped, name)), name

    recipes = {"top_k": (ours, args.repeats), "torch + Captum": (torch_captum, args.repeats),
               "per-feature loop": (per_feature_loop, args.loop_repeats),
               "forward to the layer (minideconv)": (forward_ours, args.repeats),
               "forward to the layer (torch)": (forward_torch, args.repeats)}
    times = {name: [] for name, (_, rounds) in recipes.items() if rounds}
    for f, rounds in recipes.values():
        if rounds:
            f()                                         # untimed: caches, allocator
    for round_ in range(max(args.repeats, args.loop_repeats)):
        for name, (f, rounds) in recipes.items():
            if round_ < rounds:
                start = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - start)

    median = {name: statistics.median(t) for name, t in times.items()}
    fastest = {name: min(t) for name, t in times.items()}
    print(f"Figure 2 for all {channels} features of {net.describe(layer)}, top-{k} over "
          f"{len(images)} test images: {channels * k} projections; float32, {args.threads} "
          f"thread(s) for minideconv, {torch_threads} for torch {torch.__version__}; "
          f"Captum's maps agree to {worst:.1e} relative.  Seconds: median of the rounds "
          f"(fastest round), and each over top_k's")
    for name in times:
        ratio, best = median[name] / median["top_k"], fastest[name] / fastest["top_k"]
        print(f"  {name:34s} {median[name]:7.3f} ({fastest[name]:6.3f}) s   "
              f"{ratio:6.2f}x ({best:5.2f}x)   "
              f"rounds: {', '.join(f'{v:.3f}' for v in times[name])}")


if __name__ == "__main__":
    main()
