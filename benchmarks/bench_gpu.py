"""GPU timings: minideconv on CuPy arrays vs PyTorch CUDA vs minideconv on the CPU.

    python benchmarks/bench_gpu.py [--repeats 21]          # on a machine with a GPU
    python benchmarks/bench_gpu.py --cpu-arrays --small    # check the harness without one

The same workloads as ``bench_ops.py``.  GPU work is asynchronous, so every timed call is
followed by a device synchronisation.  ``--cpu-arrays`` runs the reference backend's code on
NumPy arrays (``ops.CPU_BACKEND = "reference"``) in place of CuPy, to test this script where
no GPU is available; its numbers say nothing about GPU speed.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import minideconv as md
from minideconv import ops

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ops import time_side_by_side  # noqa: E402


def workloads(small):
    scale = 4 if small else 1
    return {
        "conv A 8x64x56², 3x3 p1": ((8 // scale, 64 // scale, 56, 56), (64 // scale, 64 // scale, 3, 3), 1, 1),
        "conv B 1x3x224², 7x7/2 p1": ((1, 3, 224 // scale, 224 // scale), (96 // scale, 3, 7, 7), 2, 1),
        "conv C 8x96x27², 5x5/2": ((8 // scale, 96 // scale, 27, 27), (256 // scale, 96 // scale, 5, 5), 2, 0),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--cpu-arrays", action="store_true",
                        help="run the reference (GPU) backend's code on NumPy arrays (no GPU needed)")
    parser.add_argument("--small", action="store_true", help="smaller workloads")
    args = parser.parse_args(argv)

    if args.cpu_arrays:
        xp, sync = np, (lambda: None)
        ops.CPU_BACKEND = "reference"
        device = "NumPy arrays through the reference backend's code (harness check only)"
    else:
        import cupy as xp
        sync = xp.cuda.Device().synchronize
        device = xp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    try:
        import torch
        torch_cuda = torch.cuda.is_available() and not args.cpu_arrays
    except ImportError:
        torch_cuda = False
    print(f"device: {device}; torch CUDA: {'yes' if torch_cuda else 'no'}; "
          f"median of {args.repeats} alternating runs, float32")

    def timed(f):
        def run():
            f()
            sync()
        return run

    rng = np.random.default_rng(0)
    header = f"{'workload':44s} {'gpu ms':>9s} {'torch ms':>9s} {'cpu ms':>9s}"
    print(header)
    for name, (x_shape, w_shape, s, p) in workloads(args.small).items():
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        gx, gw = xp.asarray(x), xp.asarray(w)
        gy = md.conv2d(gx, gw, stride=s, padding=p)
        y = md.conv2d(x, w, stride=s, padding=p) if not args.cpu_arrays else np.asarray(gy)
        cases = {
            "conv2d": (lambda: md.conv2d(gx, gw, stride=s, padding=p),
                       lambda: md.conv2d(x, w, stride=s, padding=p), "conv2d"),
            "conv_transpose2d": (
                lambda: md.conv_transpose2d(gy, gw, stride=s, padding=p, output_size=x_shape[2:]),
                lambda: md.conv_transpose2d(y, w, stride=s, padding=p, output_size=x_shape[2:]),
                "conv_transpose2d"),
        }
        for op, (on_gpu, on_cpu, torch_name) in cases.items():
            impls = {"gpu": timed(on_gpu)}
            if torch_cuda:
                tx, tw, ty = (torch.from_numpy(a).cuda() for a in (x, w, np.asarray(y)))
                f = getattr(torch.nn.functional, torch_name)
                arg = tx if op == "conv2d" else ty
                extra = {} if op == "conv2d" else {"output_padding": tuple(
                    md.shapes.output_padding_for_length(i, k, s, p)
                    for i, k in zip(x_shape[2:], w_shape[2:]))}
                impls["torch"] = timed(lambda f=f, arg=arg, extra=extra:
                                       f(arg, tw, stride=s, padding=p, **extra))
            if not args.cpu_arrays:
                impls["cpu"] = on_cpu
            med = time_side_by_side(impls, args.repeats)
            cells = [f"{med[k]:9.3f}" if k in med else f"{'-':>9s}" for k in ("gpu", "torch", "cpu")]
            print(f"{op + ' ' + name:44s} " + " ".join(cells), flush=True)

    px = xp.asarray(rng.standard_normal((8, 96, 110, 110)).astype(np.float32))
    pooled, switches = md.max_pool2d(px, 3, 2)
    for label, f in (("max_pool2d 8x96x110², 3x3/2", lambda: md.max_pool2d(px, 3, 2)),
                     ("max_unpool2d of that", lambda: md.max_unpool2d(
                         pooled, switches, 3, 2, output_size=px.shape[2:]))):
        med = time_side_by_side({"gpu": timed(f)}, args.repeats)
        print(f"{label:44s} {med['gpu']:9.3f}", flush=True)


if __name__ == "__main__":
    main()
