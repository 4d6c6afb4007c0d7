"""The 3×3 convolutions of VGG-16 and ResNet-18 at 224×224, one image (and bench_ops.py's
conv A, 8 images), beside PyTorch:
minideconv's chosen route, its im2col + GEMM route, and torch, in alternating rounds.

    python benchmarks/bench_convolutions.py [--repeats 7] [--threads 2] [--dtype float32]
                                            [--transpose] [--fastest] [--only 512]

The harness is ``bench_ops.time_side_by_side`` (untimed calls, then the mean of timed
calls, per round; medians over rounds); the table gives both routes' times, torch's,
and torch_time / our_time for each route.  ``--transpose`` times conv_transpose2d of the
same layers instead (torch: ``F.conv_transpose2d``).  ``--fastest`` gives each
implementation's fastest round instead of the median: on a loaded machine the rounds
that ran undisturbed (torch's OpenMP workers, which spin between calls, lose most when
another process holds their core).
"""

from __future__ import annotations

import argparse
import os
from statistics import median

import numpy as np

import minideconv as md
from bench_ops import time_side_by_side

#: (label, C_in, C_out, H = W, stride[, images]): each distinct 3×3 convolution of the two
#: networks (one image), and bench_ops.py's conv A.
LAYERS = [
    ("bench_ops A 8x", 64, 64, 56, 1, 8),
    ("VGG-16 conv1_1", 3, 64, 224, 1), ("VGG-16 conv1_2", 64, 64, 224, 1),
    ("VGG-16 conv2_1", 64, 128, 112, 1), ("VGG-16 conv2_2", 128, 128, 112, 1),
    ("VGG-16 conv3_1", 128, 256, 56, 1), ("VGG-16 conv3_2", 256, 256, 56, 1),
    ("VGG-16 conv4_1", 256, 512, 28, 1), ("VGG-16 conv4_2", 512, 512, 28, 1),
    ("VGG-16 conv5_x", 512, 512, 14, 1),
    ("ResNet-18 layer1", 64, 64, 56, 1), ("ResNet-18 layer2 s2", 64, 128, 56, 2),
    ("ResNet-18 layer2", 128, 128, 28, 1), ("ResNet-18 layer3 s2", 128, 256, 28, 2),
    ("ResNet-18 layer3", 256, 256, 14, 1), ("ResNet-18 layer4 s2", 256, 512, 14, 2),
    ("ResNet-18 layer4", 512, 512, 7, 1),
]


def im2col_route(function):
    """``function`` with ``backends.winograd`` switched off: the im2col + GEMM route."""
    from minideconv.backends import winograd

    def run():
        saved, winograd.MIN_CHANNELS = winograd.MIN_CHANNELS, 10**9
        try:
            return function()
        finally:
            winograd.MIN_CHANNELS = saved
    return run


def _route(x, w, stride, transpose):
    """Which route ``backends.cpu`` takes for the layer: "winograd", or im2col + GEMM
    ("im2col"; for a transpose GEMM + col2im or the im2col convolution)."""
    from minideconv import geometry
    from minideconv.backends import load_cpu_backend, winograd
    cpu = load_cpu_backend()
    geom = geometry.conv2d_geometry(x.shape, w.shape, stride, 1, 1, 1)
    if transpose:
        as_conv = geometry.transpose_as_convolution(geom)
        if as_conv is None or not cpu.convolution_route_is_smaller(geom, as_conv, x.itemsize,
                                                                   x.shape[0]):
            return "col2im"
        geom = as_conv
    return "winograd" if winograd.applies(geom, x.shape[0]) else "im2col"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("NUMBA_NUM_THREADS", 2)))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--transpose", action="store_true")
    parser.add_argument("--fastest", action="store_true",
                        help="each implementation's fastest round, not the median")
    parser.add_argument("--only", default="", metavar="TEXT")
    args = parser.parse_args(argv)

    import numba
    import torch
    import torch.nn.functional as F
    from minideconv.backends import load_cpu_backend
    torch.set_num_threads(args.threads)
    load_cpu_backend()
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(0)
    op = "conv_transpose2d" if args.transpose else "conv2d"
    print(f"{op}, dtype {args.dtype}, {args.threads} threads, "
          f"{'fastest' if args.fastest else 'median'} of {args.repeats} "
          f"alternating rounds; Numba threading layer: {numba.threading_layer()}")
    print(f"{'layer':34s} {'route':9s} {'ours ms':>8s} {'im2col ms':>9s} {'torch ms':>8s} "
          f"{'torch/ours':>10s} {'torch/im2col':>12s}")
    rows = []
    for label, c_in, c_out, size, stride, *images in LAYERS:
        name = f"{label} {c_in}→{c_out} {size}²/{stride}"
        if args.only not in name:
            continue
        x = rng.standard_normal((*(images or [1]), c_in, size, size)).astype(args.dtype)
        w = rng.standard_normal((c_out, c_in, 3, 3)).astype(args.dtype)
        y = md.conv2d(x, w, stride=stride, padding=1)
        tx, tw, ty = (torch.from_numpy(a) for a in (x, w, y))
        if args.transpose:
            pads = tuple(md.shapes.output_padding_for_length(size, 3, stride, 1) for _ in "hw")
            ours = lambda: md.conv_transpose2d(y, w, stride=stride, padding=1,  # noqa: E731
                                               output_size=(size, size))
            theirs = lambda: F.conv_transpose2d(ty, tw, stride=stride, padding=1,  # noqa: E731
                                                output_padding=pads)
        else:
            ours = lambda: md.conv2d(x, w, stride=stride, padding=1)  # noqa: E731
            theirs = lambda: F.conv2d(tx, tw, stride=stride, padding=1)  # noqa: E731
        med = time_side_by_side({"ours": ours, "im2col": im2col_route(ours), "torch": theirs},
                                args.repeats, statistic=min if args.fastest else median)
        route = _route(x, w, stride, args.transpose)
        rows.append((name, route, med))
        print(f"{name:34s} {route:9s} {med['ours']:8.2f} {med['im2col']:9.2f} "
              f"{med['torch']:8.2f} {med['torch'] / med['ours']:10.2f} "
              f"{med['torch'] / med['im2col']:12.2f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
