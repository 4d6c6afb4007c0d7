"""Side-by-side timings of minideconv's operators against PyTorch (CPU) and NumPy.

    python benchmarks/bench_ops.py [--repeats 15] [--threads 2] [--dtype float32]
                                   [--warmup-calls 1] [--warmup-ms 150] [--timed-calls 4]
                                   [--only relu]   (relu6, leaky_relu, prelu: the rectifiers)

Every implementation of one workload runs in the same process on the same arrays, in
alternating rounds (minideconv, torch, numpy, minideconv, …), so that machine noise hits
them alike; the table shows medians and the throughput ratio torch_time / our_time
(≥ 1 means minideconv is at least as fast).  PyTorch is limited to the same thread count
as Numba and OpenBLAS.  Leave OPENBLAS_CORETYPE as the environment sets it.

In each round an implementation first runs untimed, ``warmup-calls`` times and for at
least ``warmup-ms`` milliseconds, then ``timed-calls`` times back to back; the round's time
is the mean of the timed calls: a throughput.  The untimed phase is what makes the
alternation fair on few cores.  Each library leaves its own threads behind: after PyTorch
returns, its OpenMP workers keep spinning (GNU OpenMP's default spin count), and after the
GEMMs of our convolutions and of the NumPy baseline, OpenBLAS's workers poll for about
0.1 s.  A parallel kernel timed right after the other library shares its cores with them
and measures that interference rather than its own speed.  Measured here (2-core VM): our
ReLU on 8x64x56² took 0.47-0.83 ms in the first 2 ms after a torch call and 0.14-0.24 ms
in steady state, about 10 ms later; torch's ReLU took 0.36 ms in the 2 ms after ours and
0.13 ms later.  ``--warmup-ms 0 --warmup-calls 0 --timed-calls 1`` times single calls
straight after the other library; ``--libraries minideconv`` and ``--libraries torch``,
run as two processes, time each library with no other thread pool in the process.

The NumPy column is the textbook baseline: im2col by strided slices per kernel tap, then
one ``matmul`` (and col2im by slice-adds for the transpose).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import minideconv as md

# --------------------------------------------------------------------------- NumPy baselines


def _tap_slices(i, j, geometry, h_out, w_out):
    sh, sw, dh, dw = geometry
    return (slice(i * dh, i * dh + sh * (h_out - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (w_out - 1) + 1, sw))


def np_conv2d(x, w, stride, padding):
    n, c, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (wd + 2 * padding - kw) // stride + 1
    cols = np.empty((n, c, kh, kw, h_out, w_out), x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap_slices(i, j, (stride, stride, 1, 1), h_out, w_out)
            cols[:, :, i, j] = x_pad[:, :, rows, columns]
    y = np.matmul(w.reshape(c_out, -1), cols.reshape(n, c * kh * kw, -1))
    return y.reshape(n, c_out, h_out, w_out)


def np_conv_transpose2d(y, w, stride, padding, out_hw):
    n, c_out, h_out, w_out = y.shape
    _, c, kh, kw = w.shape
    cols = np.matmul(w.reshape(c_out, -1).T, y.reshape(n, c_out, -1))
    cols = cols.reshape(n, c, kh, kw, h_out, w_out)
    x_pad = np.zeros((n, c, out_hw[0] + 2 * padding + stride, out_hw[1] + 2 * padding + stride),
                  y.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap_slices(i, j, (stride, stride, 1, 1), h_out, w_out)
            x_pad[:, :, rows, columns] += cols[:, :, i, j]
    return x_pad[:, :, padding:padding + out_hw[0], padding:padding + out_hw[1]]


def np_max_pool2d(x, k, s):
    n, c, h, w = x.shape
    h_out, w_out = (h - k) // s + 1, (w - k) // s + 1
    taps = np.stack([x[:, :, i:i + s * (h_out - 1) + 1:s, j:j + s * (w_out - 1) + 1:s]
                     for i in range(k) for j in range(k)])
    best = taps.argmax(axis=0)
    i, j = np.divmod(best, k)
    switches = (np.arange(h_out)[:, None] * s + i) * w + np.arange(w_out) * s + j
    return np.take_along_axis(taps, best[None], 0)[0], switches


def np_max_unpool2d(y, switches, out_hw):
    n, c = y.shape[:2]
    plane = out_hw[0] * out_hw[1]
    offsets = (np.arange(n * c) * plane).reshape(n, c, 1, 1)
    x = np.bincount((switches + offsets).ravel(), weights=y.ravel(), minlength=n * c * plane)
    return x.astype(y.dtype).reshape(n, c, *out_hw)


# --------------------------------------------------------------------------- harness


def time_side_by_side(impls, repeats, warmup_calls=1, timed_calls=4, warmup_ms=150.0,
                      statistic=statistics.median):
    """Run each callable once (compilation, caches), then ``repeats`` alternating rounds;
    per round and callable, untimed calls (at least ``warmup_calls`` of them, and until
    ``warmup_ms`` have passed), then the mean time of ``timed_calls`` calls back to back.
    Returns the median over rounds (or another ``statistic`` of them, such as ``min``:
    the fastest round), in ms."""
    for f in impls.values():
        f()
    times = {name: [] for name in impls}
    for _ in range(repeats):
        for name, f in impls.items():
            warmup_end = time.perf_counter() + warmup_ms / 1e3
            calls = 0
            while calls < warmup_calls or time.perf_counter() < warmup_end:
                f()
                calls += 1
            t0 = time.perf_counter()
            for _ in range(timed_calls):
                f()
            times[name].append((time.perf_counter() - t0) / timed_calls)
    return {name: statistic(t) * 1e3 for name, t in times.items()}


def workloads(dtype, rng):
    def arr(*shape):
        return rng.standard_normal(shape).astype(dtype)

    convs = {
        "A  8x64x56², 3x3 p1 → 64": (arr(8, 64, 56, 56), arr(64, 64, 3, 3), 1, 1),
        "B  ZFNet L1 1x3x224², 7x7/2 p1 → 96": (arr(1, 3, 224, 224), arr(96, 3, 7, 7), 2, 1),
        "C  8x96x27², 5x5/2 → 256": (arr(8, 96, 27, 27), arr(256, 96, 5, 5), 2, 0),
    }
    pool_x = arr(8, 96, 110, 110)
    relu_x, relu_g = arr(8, 64, 56, 56), arr(8, 64, 56, 56)
    return convs, pool_x, relu_x, relu_g


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("NUMBA_NUM_THREADS", 2)))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--warmup-calls", type=int, default=1,
                        help="untimed calls of an implementation before its timed calls")
    parser.add_argument("--warmup-ms", type=float, default=150.0,
                        help="keep making untimed calls for at least this long (0: off)")
    parser.add_argument("--timed-calls", type=int, default=4,
                        help="back-to-back calls timed together in each round")
    parser.add_argument("--libraries", default="minideconv,torch,numpy",
                        help="comma-separated subset of minideconv,torch,numpy to time")
    parser.add_argument("--only", default="", metavar="TEXT",
                        help="run only the workloads whose label contains TEXT, e.g. relu")
    args = parser.parse_args(argv)

    try:
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
        print("torch is not installed: the torch column is empty (pip install torch)")
    import numba
    from minideconv.backends import load_cpu_backend
    load_cpu_backend()  # picks the threading layer before Numba starts its threads (docs/layout.md, "Threads")
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    rng = np.random.default_rng(0)
    convs, pool_x, relu_x, relu_g = workloads(np.dtype(args.dtype), rng)
    rows = []

    def bench(label, ours, theirs=None, numpy_impl=None):
        if args.only not in label:
            return
        impls = {"minideconv": ours, "torch": theirs if torch is not None else None,
                 "numpy": numpy_impl}
        impls = {name: f for name, f in impls.items()
                 if f is not None and name in args.libraries.split(",")}
        med = time_side_by_side(impls, args.repeats, args.warmup_calls, args.timed_calls,
                                args.warmup_ms)
        rows.append((label, med))
        print(_format_row(label, med), flush=True)

    print(f"dtype {args.dtype}, {args.threads} threads, median of {args.repeats} alternating "
          f"rounds (each: untimed calls, at least {args.warmup_calls} and {args.warmup_ms:g} ms, "
          f"then the mean of {args.timed_calls} timed calls)"
          f"; Numba threading layer: {numba.threading_layer()}")
    print(_format_row("workload", None))
    for name, (x, w, s, p) in convs.items():
        labels = (f"conv2d            {name}", f"conv_transpose2d  {name}",
                  f"conv2d_weight_grad {name}")
        if not any(args.only in label for label in labels):
            continue  # no setup either: its GEMMs would leave OpenBLAS threads polling
        y = md.conv2d(x, w, stride=s, padding=p)
        t = {k: torch.from_numpy(v) for k, v in dict(x=x, w=w, y=y).items()} if torch else {}
        bench(labels[0],
              lambda: md.conv2d(x, w, stride=s, padding=p),
              lambda: F.conv2d(t["x"], t["w"], stride=s, padding=p),
              lambda: np_conv2d(x, w, s, p))
        bench(labels[1],
              lambda: md.conv_transpose2d(y, w, stride=s, padding=p, output_size=x.shape[2:]),
              lambda: F.conv_transpose2d(t["y"], t["w"], stride=s, padding=p,
                                         output_padding=_output_padding(x, w, s, p)),
              lambda: np_conv_transpose2d(y, w, s, p, x.shape[2:]))
        bench(labels[2],
              lambda: md.conv2d_weight_grad(x, y, w.shape, stride=s, padding=p),
              lambda: torch.ops.aten.convolution_backward(
                  t["y"], t["x"], t["w"], None, [s, s], [p, p], [1, 1], False, [0, 0], 1,
                  [False, True, False]))

    y, sw = md.max_pool2d(pool_x, 3, 2)
    tx, ty, ts = (torch.from_numpy(a) for a in (pool_x, y, sw)) if torch else (None,) * 3
    bench("max_pool2d + switches 8x96x110², 3x3/2",
          lambda: md.max_pool2d(pool_x, 3, 2),
          lambda: F.max_pool2d(tx, 3, 2, return_indices=True),
          lambda: np_max_pool2d(pool_x, 3, 2))
    bench("max_unpool2d (true transpose) of that",
          lambda: md.max_unpool2d(y, sw, 3, 2, output_size=pool_x.shape[2:]),
          lambda: torch.ops.aten.max_pool2d_with_indices_backward(
              ty, tx, [3, 3], [2, 2], [0, 0], [1, 1], False, ts),
          lambda: np_max_unpool2d(y, sw, pool_x.shape[2:]))
    y, sw = md.adaptive_max_pool2d(pool_x, 7)
    bench("adaptive_max_pool2d + switches 8x96x110² → 7²",
          lambda: md.adaptive_max_pool2d(pool_x, 7),
          lambda: F.adaptive_max_pool2d(tx, 7, return_indices=True))
    ty, ts = (torch.from_numpy(a) for a in (y, sw)) if torch else (None, None)
    bench("adaptive_max_unpool2d of that",
          lambda: md.adaptive_max_unpool2d(y, sw, pool_x.shape),
          lambda: torch.ops.aten.adaptive_max_pool2d_backward(ty, tx, ts))
    tr, tg = (torch.from_numpy(a) for a in (relu_x, relu_g)) if torch else (None, None)
    bench("relu 8x64x56²", lambda: md.relu(relu_x), lambda: F.relu(tr),
          lambda: np.maximum(relu_x, 0))
    for rule in md.rules.NAMES:
        torch_rule = {"backprop": lambda: torch.ops.aten.threshold_backward(tg, tr, 0),
                      "deconvnet": lambda: F.relu(tg),
                      "guided": lambda: F.relu(tg) * (tr > 0)}[rule]
        numpy_rule = {"backprop": lambda: np.where(relu_x > 0, relu_g, 0),
                      "deconvnet": lambda: np.maximum(relu_g, 0),
                      "guided": lambda: np.where(relu_x > 0, np.maximum(relu_g, 0), 0)}[rule]
        bench(f"relu_backward {rule:9s} 8x64x56²",
              lambda rule=rule: md.relu_backward(relu_g, relu_x, rule), torch_rule, numpy_rule)
    bench_rectifiers(bench, torch, relu_x, relu_g)
    resampling_benches(bench, torch, relu_x)
    normalisation_benches(bench, torch, relu_x, relu_g)
    return rows


def bench_rectifiers(bench, torch, x, g):
    """ReLU6, LeakyReLU(0.01) and PReLU (64 slopes) forward and each rule's way back,
    beside torch's kernels (``hardtanh_backward``, ``leaky_relu_backward``; PReLU's way
    back as a ``torch.where``, since torch's kernel also computes the weight gradient)."""
    slopes = np.linspace(0.01, 0.3, x.shape[1]).astype(x.dtype)
    tx, tg, tw = (torch.from_numpy(a) for a in (x, g, slopes)) if torch else (None,) * 3
    F, aten = (torch.nn.functional, torch.ops.aten) if torch else (None, None)
    bench("relu6 8x64x56²", lambda: md.rectifier(x, cap=6.0), lambda: F.relu6(tx),
          lambda: np.clip(x, 0, 6))
    bench("leaky_relu 8x64x56²", lambda: md.rectifier(x, 0.01),
          lambda: F.leaky_relu(tx, 0.01), lambda: np.where(x > 0, x, 0.01 * x))
    bench("prelu 8x64x56²", lambda: md.rectifier(x, slopes), lambda: F.prelu(tx, tw))
    column = tw[:, None, None] if torch else None
    theirs = {
        "relu6": {"backprop": lambda: aten.hardtanh_backward(tg, tx, 0.0, 6.0),
                  "deconvnet": lambda: F.relu(tg),
                  "guided": lambda: aten.hardtanh_backward(F.relu(tg), tx, 0.0, 6.0)},
        "leaky_relu": {
            "backprop": lambda: aten.leaky_relu_backward(tg, tx, 0.01, False),
            "deconvnet": lambda: F.leaky_relu(tg, 0.01),
            "guided": lambda: aten.leaky_relu_backward(F.leaky_relu(tg, 0.01), tx, 0.01,
                                                       False)},
        "prelu": {"backprop": lambda: torch.where(tx > 0, tg, tg * column),
                  "deconvnet": lambda: torch.where(tg > 0, tg, tg * column),
                  "guided": lambda: torch.where(tx > 0, 1, column) *
                  torch.where(tg > 0, tg, tg * column)}}
    ours = {"relu6": dict(cap=6.0), "leaky_relu": dict(negative_slope=0.01),
            "prelu": dict(negative_slope=slopes)}
    for unit, arguments in ours.items():
        for rule in md.rules.NAMES:
            bench(f"{unit}_backward {rule:9s} 8x64x56²",
                  lambda arguments=arguments, rule=rule:
                  md.rectifier_backward(g, x, rule, **arguments),
                  theirs[unit][rule] if torch else None)


def resampling_benches(bench, torch, x):
    """Upsampling ×2 (nearest, bilinear), reflect / replicate padding and a reflect-padded
    convolution, each beside its transpose, on ``x`` (8x64x56²)."""
    F = torch.nn.functional if torch else None
    t = torch.from_numpy(x) if torch else None
    big = (2 * x.shape[2], 2 * x.shape[3])
    up = md.upsample_nearest2d(x, scale_factor=2)
    tu = torch.from_numpy(up) if torch else None
    bench("upsample_nearest2d ×2 8x64x56²", lambda: md.upsample_nearest2d(x, scale_factor=2),
          lambda: F.interpolate(t, scale_factor=2, mode="nearest"))
    bench("upsample_nearest2d_transpose of that",
          lambda: md.upsample_nearest2d_transpose(up, x.shape, scale_factor=2),
          lambda: torch.ops.aten.upsample_nearest2d_backward(tu, big, t.shape, 2.0, 2.0))
    bench("upsample_bilinear2d ×2 8x64x56²",
          lambda: md.upsample_bilinear2d(x, scale_factor=2),
          lambda: F.interpolate(t, scale_factor=2, mode="bilinear"))
    bench("upsample_bilinear2d_transpose of that",
          lambda: md.upsample_bilinear2d_transpose(up, x.shape, scale_factor=2),
          lambda: torch.ops.aten.upsample_bilinear2d_backward(tu, big, t.shape, False, 2.0,
                                                               2.0))
    pads = (1, 1, 1, 1)
    padded = md.padding.pad(x, pads, "reflect")
    tp = torch.from_numpy(padded) if torch else None
    for mode in ("reflect", "replicate"):
        backward = getattr(torch.ops.aten, f"{'reflection' if mode == 'reflect' else 'replication'}"
                                           f"_pad2d_backward") if torch else None
        bench(f"pad {mode:9s} 1 8x64x56²", lambda mode=mode: md.padding.pad(x, pads, mode),
              lambda mode=mode: F.pad(t, pads, mode=mode))
        bench(f"pad_adjoint {mode:9s} of that",
              lambda mode=mode: md.padding.pad_adjoint(padded, pads, mode),
              lambda backward=backward: backward(tp, t, list(pads)))
    w = np.random.default_rng(1).standard_normal((64, 64, 3, 3)).astype(x.dtype)
    tw = torch.from_numpy(w) if torch else None
    y = md.conv2d(x, w, padding=1, padding_mode="reflect")
    ty = torch.from_numpy(y) if torch else None
    bench("conv2d reflect A 8x64x56², 3x3 p1 → 64",
          lambda: md.conv2d(x, w, padding=1, padding_mode="reflect"),
          lambda: F.conv2d(F.pad(t, pads, mode="reflect"), tw))
    bench("conv_transpose2d reflect of that",
          lambda: md.conv_transpose2d(y, w, padding=1, padding_mode="reflect"),
          lambda: torch.ops.aten.reflection_pad2d_backward(
              F.conv_transpose2d(ty, tw), t, list(pads)))


def _output_padding(x, w, s, p):
    return tuple(md.shapes.output_padding_for_length(i, k, s, p) for i, k in
                 zip(x.shape[2:], w.shape[2:]))


def _format_row(label, med):
    if med is None:
        return f"{label:58s} {'ours ms':>9s} {'torch ms':>9s} {'numpy ms':>9s} {'torch/ours':>10s}"
    ours, torch_ms, numpy_ms = med.get("minideconv"), med.get("torch"), med.get("numpy")
    fmt = lambda v: f"{v:9.2f}" if v is not None else f"{'-':>9s}"  # noqa: E731
    ratio = (f"{torch_ms / ours:10.2f}" if None not in (torch_ms, ours) else f"{'-':>10s}")
    return f"{label:58s} {fmt(ours)} {fmt(torch_ms)} {fmt(numpy_ms)} {ratio}"

def normalisation_benches(bench, torch, x, g):
    """The layers written as NumPy expressions — Softmax over the channels,
    LocalResponseNorm(5), ChannelLayerNorm, GroupNorm(8) and a squeeze-and-excitation
    product — each timed as a forward pass and its way back (one vjp), beside torch's
    function and ``torch.autograd.grad`` of it, on ``x`` and ``g`` (8x64x56²)."""
    channels = x.shape[1]
    weight = np.linspace(0.5, 1.5, channels).astype(x.dtype)
    bias = np.linspace(-0.1, 0.1, channels).astype(x.dtype)
    gate = np.random.default_rng(2).random((x.shape[0], channels, 1, 1)).astype(x.dtype)
    layers = {
        "softmax over C": (md.nn.Softmax(1), lambda t: torch.softmax(t, 1)),
        "local_response_norm 5": (md.nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0),
                                  lambda t: torch.nn.functional.local_response_norm(
                                      t, 5, 1e-4, 0.75, 2.0)),
        "channel layer_norm": (md.nn.ChannelLayerNorm(weight, bias, 1e-6),
                               lambda t: torch.nn.functional.layer_norm(
                                   t.permute(0, 2, 3, 1), (channels,), tw, tb,
                                   1e-6).permute(0, 3, 1, 2)),
        "group_norm 8": (md.nn.GroupNorm(8, weight, bias, 1e-5),
                         lambda t: torch.nn.functional.group_norm(t, 8, tw, tb, 1e-5)),
    }
    tw, tb = (torch.from_numpy(weight), torch.from_numpy(bias)) if torch else (None, None)
    tx, tg = (torch.from_numpy(x), torch.from_numpy(g)) if torch else (None, None)
    for label, (layer, function) in layers.items():
        bench(f"{label} 8x64x56²", lambda layer=layer: layer.forward(x),
              (lambda function=function: function(tx)) if torch else None)

        def ours_vjp(layer=layer):
            y, record = layer.forward(x)
            return layer.backward(g, record)

        def torch_vjp(function=function):
            t = tx.clone().requires_grad_(True)
            return torch.autograd.grad(function(t), t, tg)
        bench(f"{label} forward + way back", ours_vjp, torch_vjp if torch else None)
    mul, tgate = md.nn.Mul(), torch.from_numpy(gate) if torch else None

    def ours_mul_vjp():
        y, record = mul.forward(x, gate)
        return mul.backward(g, record)

    def torch_mul_vjp():
        a, b = tx.clone().requires_grad_(True), tgate.clone().requires_grad_(True)
        return torch.autograd.grad(a * b, (a, b), tg)
    bench("mul by a (N, C, 1, 1) gate forward + way back", ours_mul_vjp,
          torch_mul_vjp if torch else None)


if __name__ == "__main__":
    main()

