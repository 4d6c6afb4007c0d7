"""How fast, and in how much memory, can the explicit convolution matrix be built?

    python benchmarks/bench_matrices.py [--repeats 5] [--threads 2] [--dtype float32]

Workload: ZFNet layer 1 — one 3×224×224 image, 96 filters 7×7, stride 2, padding 1 —
whose matrix W is 1 161 600 × 150 528 with about 170 M nonzeros.

* build: ``conv2d_matrix`` (W) and ``conv_transpose2d_matrix`` (Wᵀ), median and best of
  ``--repeats`` runs, as millions of nonzeros per second (target ≥ 50 M/s).  Every run
  allocates a fresh CSR, so the page faults of touching ~1.4 GB are part of the time.
* memory: each builder runs once in a fresh subprocess; reported are the CSR's own size
  (data + indices + indptr), the peak of traced allocations during the build
  (``tracemalloc`` sees NumPy's buffers) and the growth of the peak resident set size
  (VmHWM).  Target: peak ≤ 1.5 × CSR size.
* apply: ``W @ x`` and ``Wᵀ @ y`` (scipy's CSR/CSC product, single-threaded) against
  ``minideconv.conv2d`` / ``conv_transpose2d`` and PyTorch, medians of alternating runs;
  "matrix/op" = time of the matrix product / time of the operator, and the largest
  relative difference between matrix product and operator.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

import minideconv as md
from minideconv import matrices

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ops import time_side_by_side  # noqa: E402  (the same alternating harness)

INPUT_SHAPE = (3, 224, 224)
WEIGHT_SHAPE = (96, 3, 7, 7)
STRIDE, PADDING = 2, 1
BUILDERS = {"W  = conv2d_matrix": matrices.conv2d_matrix,
            "Wᵀ = conv_transpose2d_matrix": matrices.conv_transpose2d_matrix}


def make_weight(dtype):
    return np.random.default_rng(0).standard_normal(WEIGHT_SHAPE).astype(dtype)


def csr_bytes(a) -> int:
    return a.data.nbytes + a.indices.nbytes + a.indptr.nbytes


# --------------------------------------------------------------------------- memory (child)

def peak_rss() -> int:
    """Peak resident set size of this process in bytes: VmHWM from /proc (Linux; it
    starts afresh at exec), else ru_maxrss (which on Linux a child inherits from its
    parent at fork, so it can hide the child's own growth)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def memory_probe(builder_name: str, dtype: str) -> dict:
    """Runs in a fresh process: build once, report sizes and peaks in bytes."""
    build = BUILDERS[builder_name]
    weight = make_weight(dtype)
    build(weight, (3, 16, 16), STRIDE, PADDING)               # warm-up on a tiny image
    rss_before = peak_rss()
    tracemalloc.start()
    a = build(weight, INPUT_SHAPE, STRIDE, PADDING)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = peak_rss()
    return dict(nnz=int(a.nnz), csr=csr_bytes(a), traced_peak=traced_peak,
                rss_growth=rss_after - rss_before, index_dtype=str(a.indices.dtype))


def measure_memory(builder_name: str, dtype: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--memory-probe", builder_name,
                          "--dtype", dtype], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- timing

def time_builds(build, weight, repeats: int):
    times, nnz = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a = build(weight, INPUT_SHAPE, STRIDE, PADDING)
        times.append(time.perf_counter() - t0)
        nnz = a.nnz
        del a                                  # free before the next build
    return nnz, statistics.median(times), min(times)


def rel_diff(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# --------------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("NUMBA_NUM_THREADS", 2)))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.dtype)))
        return None

    try:
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    import numba
    from minideconv.backends import load_cpu_backend
    load_cpu_backend()   # picks the threading layer before Numba starts its threads; see
    # docs/layout.md, "Threads"
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    weight = make_weight(args.dtype)
    print(f"ZFNet layer 1: input {INPUT_SHAPE}, weight {WEIGHT_SHAPE}, stride {STRIDE}, "
          f"padding {PADDING}; {args.dtype}; {args.threads} threads for conv2d/torch; "
          f"scipy's sparse products are single-threaded\n")

    print(f"{'builder':30s} {'nnz':>12s} {'median s':>9s} {'best s':>8s} {'M nnz/s':>8s} "
          f"{'CSR MB':>8s} {'traced peak MB':>15s} {'peak/CSR':>9s} {'RSS growth MB':>14s} "
          f"{'index':>6s}")
    results = {}
    for name, build in BUILDERS.items():
        build(weight, (3, 16, 16), STRIDE, PADDING)
        nnz, median_s, best_s = time_builds(build, weight, args.repeats)
        mem = measure_memory(name, args.dtype)
        results[name] = dict(mem, median_s=median_s, best_s=best_s)
        print(f"{name:30s} {nnz:12,d} {median_s:9.3f} {best_s:8.3f} {nnz / median_s / 1e6:8.1f} "
              f"{mem['csr'] / 1e6:8.1f} {mem['traced_peak'] / 1e6:15.1f} "
              f"{mem['traced_peak'] / mem['csr']:9.3f} {mem['rss_growth'] / 1e6:14.1f} "
              f"{mem['index_dtype']:>6s}", flush=True)
    rate_ok = all(r["nnz"] / r["median_s"] >= 50e6 for r in results.values())
    memory_ok = all(r["traced_peak"] <= 1.5 * r["csr"] for r in results.values())
    print(f"targets: build >= 50 M nnz/s (median) {'met' if rate_ok else 'MISSED'}; "
          f"traced peak <= 1.5 x CSR size {'met' if memory_ok else 'MISSED'}")

    print(f"\n{'product (one image)':42s} {'ms':>9s} {'matrix/op':>9s} {'max rel diff':>13s}")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1,) + INPUT_SHAPE).astype(args.dtype)
    w_matrix = matrices.conv2d_matrix(weight, INPUT_SHAPE, STRIDE, PADDING)
    y_ref = md.conv2d(x, weight, stride=STRIDE, padding=PADDING)
    g = rng.standard_normal(y_ref.shape).astype(args.dtype)
    x_flat, g_flat = x.ravel(), g.ravel()
    impls = {
        "W @ x           (scipy CSR)": lambda: w_matrix @ x_flat,
        "conv2d          (minideconv)": lambda: md.conv2d(x, weight, stride=STRIDE,
                                                          padding=PADDING),
        "Wᵀ @ y          (scipy, W.T is CSC)": lambda: w_matrix.T @ g_flat,
        "conv_transpose2d (minideconv)": lambda: md.conv_transpose2d(
            g, weight, stride=STRIDE, padding=PADDING, output_size=INPUT_SHAPE[1:]),
    }
    checks = {"W @ x           (scipy CSR)": (w_matrix @ x_flat, y_ref),
              "Wᵀ @ y          (scipy, W.T is CSC)": (
                  w_matrix.T @ g_flat,
                  md.conv_transpose2d(g, weight, stride=STRIDE, padding=PADDING,
                                      output_size=INPUT_SHAPE[1:]))}
    if torch is not None:
        tx, tw, tg = (torch.from_numpy(a) for a in (x, weight, g))
        out_pad = tuple(md.shapes.output_padding_for_length(i, k, STRIDE, PADDING)
                        for i, k in zip(INPUT_SHAPE[1:], WEIGHT_SHAPE[2:]))
        impls["conv2d          (torch)"] = lambda: F.conv2d(tx, tw, stride=STRIDE,
                                                            padding=PADDING)
        impls["conv_transpose2d (torch)"] = lambda: F.conv_transpose2d(
            tg, tw, stride=STRIDE, padding=PADDING, output_padding=out_pad)
    med = time_side_by_side(impls, max(args.repeats, 5))
    base = {"W": med["W @ x           (scipy CSR)"],
            "T": med["Wᵀ @ y          (scipy, W.T is CSC)"]}
    for label, ms in med.items():
        ref = base["T"] if ("transpose" in label or "Wᵀ" in label) else base["W"]
        diff = f"{rel_diff(*checks[label]):13.2e}" if label in checks else f"{'':13s}"
        print(f"{label:42s} {ms:9.2f} {ref / ms:8.1f}x {diff}")
    return results


if __name__ == "__main__":
    main()
