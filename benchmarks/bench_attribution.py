"""The attribution family, minideconv vs the Captum (or zennit) call each method matches.

    python benchmarks/bench_attribution.py [--repeats 9] [--batch 16] [--threads 1]
                                           [--dtype float32 float64] [--warmup-ms 150]
                                           [--only integrated]

On the shipped network and a batch of ``--batch`` drawn test images
(``minideconv.data.load_dataset("test", n)``), each image's predicted class as its
target, both libraries are timed side by side:

=====================  ==========================================================
ours                   theirs
=====================  ==========================================================
``gradient``           ``Saliency(model).attribute(x, target, abs=False)``
``input_x_gradient``   ``InputXGradient``
``integrated_grads``   ``IntegratedGradients``, 50 Gauss–Legendre steps, one batch
``smoothgrad``         ``NoiseTunnel(Saliency)``, ``nt_type="smoothgrad"``, 50 samples
``grad_cam``           ``LayerGradCam`` at the last spatial layer (layer 7, a ReLU)
``guided_grad_cam``    ``GuidedGradCam`` at that layer
``lrp``                zennit's ``Gradient`` attributor with ``EpsilonPlusFlat``
``lrp_alpha_beta``     … with ``EpsilonAlpha2Beta1Flat``
=====================  ==========================================================

(LRP only where ``minideconv.attribution.lrp`` exists; else the script says why it skips
it.)  The torch model is ``interop.torch.to_torch(net)``.  Both sides batch IG's path
points and SmoothGrad's samples into one pass (Captum's default ``internal_batch_size`` /
``nt_samples_batch_size`` of None), the same S·N images.  Before timing, the script
checks that the two give the same map (max |ours − theirs| / max |theirs|); SmoothGrad's
draws differ between the libraries, so it is checked on given noise against Captum's
``Saliency`` of the same noisy batch instead, averaged.

Timing protocol as ``bench_ops.py`` (alternating rounds; in each, untimed calls for at
least ``--warmup-ms``, then the mean of ``--timed-calls`` back-to-back calls; median over
rounds), the same thread count for torch, Numba and OpenBLAS (threadpoolctl).  The table
shows ours/theirs, the time ratio: ≤ 1 means minideconv is at least as fast.
"""

from __future__ import annotations

import argparse
import sys
import types
import warnings
from importlib.util import find_spec

import numpy as np

from bench_ops import time_side_by_side

from minideconv import attribution, data

SIGMA, SAMPLES, STEPS = 0.15, 50, 50        # as attribution.METHODS fixes them


def zennit_modules():
    """``(composites, Gradient)`` from zennit, or None when it is missing.  zennit's
    ``__init__`` imports ``zennit.torchvision``, which imports torchvision's ResNet
    blocks (for its canonizers); torchvision is not needed here, so a stand-in module
    with placeholder blocks takes its place for the import, and is removed after it."""
    if find_spec("zennit") is None:
        return None
    names = ("torchvision", "torchvision.models", "torchvision.models.resnet")
    stand_ins = {}
    if find_spec("torchvision") is None:
        for name in names:
            stand_ins[name] = types.ModuleType(name)
        resnet = stand_ins["torchvision.models.resnet"]
        resnet.BasicBlock = type("BasicBlock", (), {})
        resnet.Bottleneck = type("Bottleneck", (), {})
        stand_ins["torchvision"].models = stand_ins["torchvision.models"]
        stand_ins["torchvision.models"].resnet = resnet
    sys.modules.update(stand_ins)
    try:
        from zennit import composites
        from zennit.attribution import Gradient
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
    return composites, Gradient


def workloads(net, model, x, targets, torch):
    """name → (ours, theirs, check): two callables returning NumPy maps, and a pair of
    maps to compare (None: compare the two callables' own results)."""
    from captum.attr import (GuidedGradCam, InputXGradient, IntegratedGradients,
                             LayerGradCam, NoiseTunnel, Saliency)
    xt, tt = torch.from_numpy(x), torch.from_numpy(targets)
    layer = attribution.last_spatial_layer(net)
    module = model[layer]
    spread = float((x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))).mean())

    def captum(explainer, **kwargs):
        return lambda: explainer.attribute(xt, target=tt, **kwargs).detach().numpy()

    def smoothgrad_check():
        noise = np.random.default_rng(1).standard_normal((4,) + x.shape).astype(x.dtype)
        noise *= SIGMA * spread
        ours = attribution.smoothgrad(net, x, targets, noise=noise)
        saliency = Saliency(model)
        theirs = np.mean([saliency.attribute(torch.from_numpy(x + e), target=tt,
                                             abs=False).numpy() for e in noise], axis=0)
        return ours, theirs

    found = {
        "gradient": (lambda: attribution.gradient(net, x, targets),
                     captum(Saliency(model), abs=False), None),
        "input_x_gradient": (lambda: attribution.input_x_gradient(net, x, targets),
                             captum(InputXGradient(model)), None),
        "integrated_gradients": (
            lambda: attribution.integrated_gradients(net, x, targets, steps=STEPS),
            captum(IntegratedGradients(model), n_steps=STEPS, method="gausslegendre"),
            None),
        "smoothgrad": (
            lambda: attribution.smoothgrad(net, x, targets, samples=SAMPLES, sigma=SIGMA),
            captum(NoiseTunnel(Saliency(model)), nt_type="smoothgrad", nt_samples=SAMPLES,
                   stdevs=SIGMA * spread, abs=False),
            smoothgrad_check),
        "grad_cam": (lambda: attribution.grad_cam(net, x, layer, targets),
                     lambda: LayerGradCam(model, module).attribute(
                         xt, target=tt, relu_attributions=True).detach().numpy()[:, 0],
                     None),
        "guided_grad_cam": (lambda: attribution.guided_grad_cam(net, x, layer, targets),
                            captum(GuidedGradCam(model, module)), None),
    }
    found.update(lrp_workloads(net, model, x, targets, torch))
    return found


def lrp_workloads(net, model, x, targets, torch):
    """LRP's two composites against zennit's, where both are installed."""
    if find_spec("minideconv.attribution.lrp") is None:
        print("lrp: skipped, minideconv.attribution.lrp is not in this installation")
        return {}
    zennit = zennit_modules()
    if zennit is None:
        print("lrp: skipped, zennit is not installed (pip install zennit --no-deps)")
        return {}
    from minideconv.attribution.lrp import lrp
    composites, Gradient = zennit
    xt = torch.from_numpy(x)
    seeds = torch.eye(10, dtype=xt.dtype)[torch.from_numpy(targets)]

    def theirs(composite):
        def run():
            with Gradient(model, getattr(composites, composite)()) as attributor:
                return attributor(xt.clone().requires_grad_(True), seeds)[1].numpy()
        return run

    pairs = {"lrp": ("epsilon_plus_flat", "EpsilonPlusFlat"),
             "lrp_alpha_beta": ("epsilon_alpha2_beta1_flat", "EpsilonAlpha2Beta1Flat")}
    return {name: (lambda ours=ours: lrp(net, x, targets, composite=ours), theirs(z), None)
            for name, (ours, z) in pairs.items()}


def tolerance(dtype, name):
    """The largest max |ours − theirs| / max |theirs| accepted.  In float32 a point of
    IG's path (or a noisy copy) can fall on the other side of a ReLU's kink or of a
    max-pool tie in one library than in the other — with the shipped network and 16 test
    images, one image: each library's float32 IG map then differs from the float64 one
    by 1.6e-3 (Captum) to 2.9e-3 (ours) — so those two sums get 1e-2."""
    if dtype == "float64":
        return 1e-6
    return 1e-2 if name in ("integrated_gradients", "smoothgrad") else 1e-3


def relative_difference(ours, theirs):
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", nargs="+", default=["float32"],
                        choices=["float32", "float64"])
    parser.add_argument("--warmup-ms", type=float, default=150.0,
                        help="untimed calls for at least this long in each round (0: one)")
    parser.add_argument("--timed-calls", type=int, default=2,
                        help="back-to-back calls timed together in each round")
    parser.add_argument("--only", default="", metavar="TEXT",
                        help="only the methods whose name contains TEXT")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="captum")  # "Setting backward hooks on ReLU"
    warnings.filterwarnings("ignore", message=".*backward hook.*")

    import captum
    import numba
    import torch
    from threadpoolctl import threadpool_limits
    from minideconv.backends import load_cpu_backend
    from minideconv.interop.torch import to_torch
    torch.set_num_threads(args.threads)
    load_cpu_backend()  # picks the threading layer before Numba starts its threads
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(args.threads, user_api="blas")

    images, _ = data.load_dataset("test", args.batch)
    print(f"shipped network, {args.batch} test images, {args.threads} thread(s), median of "
          f"{args.repeats} rounds ({args.timed_calls} timed calls each); torch "
          f"{torch.__version__}, captum {captum.__version__}, numba {numba.__version__}, "
          f"numpy {np.__version__}")
    print(f"{'dtype / method':32s} {'ours ms':>9s} {'theirs ms':>10s} {'ours/theirs':>11s} "
          f"{'max rel diff':>12s}")
    rows = []
    for dtype in args.dtype:
        net = data.load_model().astype(np.dtype(dtype))
        x = images.astype(dtype)
        targets = attribution.targets.logits_of(net, x).argmax(axis=1)
        model = to_torch(net).eval()
        for name, (ours, theirs, check) in workloads(net, model, x, targets, torch).items():
            if args.only not in name:
                continue
            mine, reference = check() if check is not None else (ours(), theirs())
            diff = relative_difference(mine, reference)
            if diff > tolerance(dtype, name):
                raise SystemExit(f"{dtype}/{name}: minideconv and the reference disagree "
                                 f"({diff:.1e})")
            med = time_side_by_side({"ours": ours, "theirs": theirs}, args.repeats,
                                    timed_calls=args.timed_calls, warmup_ms=args.warmup_ms)
            ratio = med["ours"] / med["theirs"]
            rows.append((dtype, name, med["ours"], med["theirs"], ratio, diff))
            print(f"{dtype + ' / ' + name:32s} {med['ours']:9.2f} {med['theirs']:10.2f} "
                  f"{ratio:11.2f} {diff:12.1e}", flush=True)
    return rows


if __name__ == "__main__":
    main()
