"""Figure 2 on a folder of photos, VGG-16 at 224×224: minideconv figure2 vs torch + Captum.

Wall time and peak memory of ``minideconv figure2`` with its default settings and of the
torch + Captum recipe a practitioner writes, side by side, after checking that both find
the same images.

    python benchmarks/bench_figure2.py [--images 200] [--layer features.15,features.29]
                                       [--repeats 1] [--threads 2] [--torch-batch 16]
                                       [--interrupt-after 40] [--seed 0] [--work DIR]
                                       [--minideconv-flags "..."]

Setup (in ``--work``, or a temporary folder): torchvision's VGG-16 layout
(``tests/support/torchvision_layouts.py``, float32, eval mode) with random weights seeded
by ``--seed`` and drawn as torchvision draws them (``vgg16(weights=None)``: Kaiming
normal, fan-out, for the convolutions, N(0, 0.01) for the linear layers, zero biases),
saved for torch (``vgg16.pt``) and, through ``interop.torch.from_torch`` with input shape
3×224×224, for minideconv (``vgg16.npz``).  (Under torch's default initialisation, which
``build`` keeps, each conv5_3 feature's maximum varies from photo to photo by under 1e-4
relative: float32 rounding, not the photo, would decide its ranking.)  And ``--images``
photos made offline from the photographs minideconv ships (``data.SAMPLE_IMAGES``) by
random crops, small rotations, flips and colour jitter, each an RGB PNG of exactly
224×224, so that neither pipeline resamples: the script checks that minideconv reads
every file as pixel / 255 — its default normalisation for an .npz model is none — which
is what the torch recipe computes.  The default layers are the ReLUs after conv3_3 and
conv5_3.

The two recipes, each in its own fresh subprocess:

- minideconv: ``python -m minideconv figure2 --model vgg16.npz --images DIR --layer L
  --out OUT --no-progress``, nothing else (``--minideconv-flags`` adds flags, for trial
  runs only): one streamed pass to rank, the 12 strongest features' 9 projections per
  layer, and it draws and writes the figures and the table;
- torch + Captum (this file run as ``torch-recipe``, which never imports minideconv, so
  its memory is torch's own): the same PNGs read with Pillow as float32 / 255, the model
  (built on the meta device, its weights memory-mapped from ``vgg16.pt``) run under
  ``torch.no_grad()`` in batches of ``--torch-batch`` with forward hooks on the layers
  keeping each image's maximum of every feature map and its position; each feature's
  top 9 (a stable sort of −value: ties go to the earlier image), the 12 features with the
  largest mean top-9 value, then one ``captum.attr.NeuronDeconvolution`` call per
  (feature, rank) unit on its one image.  It makes the maps but draws no figure.

Before any time is reported, the first timed round's tables must agree: per layer the
same 12 features in the same order, the same top-9 images and positions, and values
within ``TOLERANCE`` relative; else the first disagreement is printed and the script
exits with status 1.  Timing: one untimed warm-up of each on ``WARMUP_IMAGES`` photos and
one feature (minideconv's first run compiles its kernels into Numba's cache), then
``--repeats`` rounds alternating minideconv and torch.  Each child's wall time runs from
its start to its exit, its peak memory is the kernel's peak RSS of it and its children
(``os.wait4``'s ru_maxrss).  ``--threads`` for both (NUMBA_NUM_THREADS, OMP_NUM_THREADS,
``torch.set_num_threads``).

The resume check (``--interrupt-after`` seconds; 0 skips it): minideconv's command again
into a fresh folder, SIGINT after that many seconds, which must exit 130 leaving
``figure2_ranking.npz``; the same command with ``--resume`` must then write a table equal,
column by column, to the uninterrupted run's.  Skipped when ``minideconv figure2 --help``
does not mention ``--resume``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYOUTS_FILE = os.path.join(REPO, "tests", "support", "torchvision_layouts.py")
SIZE = 224
WARMUP_IMAGES = 12          # at least figure2's k = 9
TOLERANCE = 1e-3            # float32 forward passes in two libraries
TORCH_RECIPE = "torch-recipe"
OWN_FLAGS = ("--model", "--images", "--layer", "--out", "--k", "--features",
             "--no-progress", "--resume")     # the benchmark sets these itself


# --------------------------------------------------------------------------- both sides

def read_png(path):
    """A photo as the torch recipe reads it, (3, H, W) float32 in [0, 1]."""
    from PIL import Image
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1) / 255)


def photo_paths(folder):
    """The photos in the order both recipes read them (minideconv sorts by name)."""
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.endswith(".png")]


def load_layouts():
    """``tests/support/torchvision_layouts.py`` by its path: tests/ is no package here."""
    spec = importlib.util.spec_from_file_location("torchvision_layouts", LAYOUTS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- torch + Captum

def torch_recipe(argv):
    """The child process of the torch + Captum recipe; writes its tables to ``--out``."""
    parser = argparse.ArgumentParser(prog=f"bench_figure2.py {TORCH_RECIPE}")
    parser.add_argument("--state", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--layer", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--features", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    import warnings
    warnings.filterwarnings("ignore", module="captum")  # "Setting backward hooks on ReLU"
    import torch
    torch.set_num_threads(args.threads)

    model = load_torch_model(args.state)
    names = args.layer.split(",")
    paths = photo_paths(args.images)
    maxima = rank_by_hooks(model, names, paths, args.batch)
    tables = {}
    for name in names:
        channels, indices, values, positions = top_units(*maxima[name], args.k,
                                                         args.features)
        deconvolve(model, name, paths, channels, indices, positions)
        tables.update({f"{name}/channels": channels, f"{name}/indices": indices,
                       f"{name}/values": values, f"{name}/positions": positions})
    assert "minideconv" not in sys.modules, "the torch recipe must not load minideconv"
    np.savez(args.out, **tables)


def load_torch_model(state):
    """VGG-16 with the saved weights, memory-mapped: one copy of the weights in memory,
    as minideconv's .npz gives (a model built, then loaded, would hold two)."""
    import torch
    with torch.device("meta"):
        model = load_layouts().LAYOUTS["vgg16"][0]()
    model.load_state_dict(torch.load(state, mmap=True, weights_only=True), assign=True)
    return model.eval()


def rank_by_hooks(model, names, paths, batch):
    """``{name: (values, positions)}``, each (N, C): every image's maximum of every
    feature map of the layer ``name`` and its (h, w), from one pass in batches."""
    import torch
    modules = dict(model.named_modules())
    found = {name: ([], []) for name in names}
    shapes = {}

    def keep_maxima(name):
        def hook(module, inputs, output):
            shapes[name] = output.shape[2:]
            values, flat = output.flatten(2).max(dim=2)     # the first maximum, as argmax
            found[name][0].append(values.numpy().copy())
            found[name][1].append(flat.numpy().copy())
        return hook

    handles = [modules[name].register_forward_hook(keep_maxima(name)) for name in names]
    with torch.no_grad():
        for start in range(0, len(paths), batch):
            batch_paths = paths[start:start + batch]
            model(torch.from_numpy(np.stack([read_png(p) for p in batch_paths])))
    for handle in handles:
        handle.remove()
    result = {}
    for name, (values, flat) in found.items():
        h, w = np.unravel_index(np.concatenate(flat), tuple(shapes[name]))
        result[name] = (np.concatenate(values), np.stack([h, w], axis=-1))
    return result


def top_units(values, positions, k, features):
    """``(channels, indices, values, positions)``: the ``features`` channels with the
    largest mean top-k value, strongest first, and their top-k images (ties: the earlier
    image, as minideconv's stable sort), (F,), (F, k), (F, k), (F, k, 2)."""
    order = np.argsort(-values, axis=0, kind="stable")[:k].T               # (C, k)
    top = np.take_along_axis(values.T, order, axis=1)
    channels = np.argsort(-top.mean(axis=1), kind="stable")[:features]
    where = positions.transpose(1, 0, 2)[np.arange(values.shape[1])[:, None], order]
    return channels, order[channels], top[channels], where[channels]


def deconvolve(model, name, paths, channels, indices, positions):
    """One Captum deconvolution per (feature, rank) unit, each on its own image read
    again from its file; the maps a figure would show (not drawn)."""
    import torch
    from captum.attr import NeuronDeconvolution
    deconv = NeuronDeconvolution(model, dict(model.named_modules())[name])
    maps = []
    for c, row, where in zip(channels, indices, positions):
        for n, (h, w) in zip(row, where):
            image = torch.from_numpy(read_png(paths[n]))[None]
            maps.append(deconv.attribute(image, neuron_selector=(int(c), int(h), int(w))))
    return maps


# --------------------------------------------------------------------------- setup

def make_models(work, seed, layers):
    """``vgg16.pt`` (torch's weights) and ``vgg16.npz`` (the same network for minideconv's
    ``--model``); every name of ``layers`` must be a layer of both."""
    import torch
    from minideconv.interop.torch import from_torch
    model, _ = load_layouts().build("vgg16", seed=seed)
    model = torchvision_weights(model.float().eval(), seed)
    net = from_torch(model, (3, SIZE, SIZE))
    if net.input_shape != (3, SIZE, SIZE):
        raise SystemExit(f"from_torch gave input shape {net.input_shape}, expected "
                         f"(3, {SIZE}, {SIZE})")
    modules = dict(model.named_modules())
    for name in layers:
        if name not in net.names or name not in modules:
            raise SystemExit(f"--layer: {name!r} is not a layer of the converted VGG-16; "
                             f"its names: {', '.join(net.names)}")
    torch.save(model.state_dict(), os.path.join(work, "vgg16.pt"))
    net.save(os.path.join(work, "vgg16.npz"))
    return [net.describe(net.names.index(name)) for name in layers]


def torchvision_weights(model, seed):
    """``model`` with random weights drawn as torchvision's ``VGG._initialize_weights``
    draws them: features that vary from photo to photo far beyond float32 rounding."""
    import torch
    from torch import nn
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
    return model


def make_photos(folder, count, seed):
    """``count`` RGB PNGs of SIZE × SIZE from the shipped photographs: a random square,
    turned by up to 10° (then its inner square, without the turned corners), flipped half
    the time, its brightness, contrast and saturation jittered, scaled to SIZE."""
    from PIL import Image, ImageEnhance
    from minideconv.data import SAMPLE_IMAGES, sample_path
    sources = [Image.open(sample_path(name)).convert("RGB")
               for name in sorted(SAMPLE_IMAGES)]
    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    for i in range(count):
        source = sources[i % len(sources)]
        side = int(rng.uniform(0.45, 1.0) * min(source.size))
        x, y = (int(rng.integers(0, v - side + 1)) for v in source.size)
        angle = rng.uniform(-10, 10)
        inner = side / (abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle))))
        margin = (side - inner) / 2
        image = source.crop((x, y, x + side, y + side))
        image = image.rotate(angle, Image.Resampling.BICUBIC)
        image = image.crop((margin, margin, side - margin, side - margin))
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            image = enhance(image).enhance(rng.uniform(0.7, 1.3))
        image.resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(
            os.path.join(folder, f"photo_{i:04d}.png"))


def check_pixels(folder, model):
    """minideconv reads every photo as the torch recipe does: pixel / 255, exactly, with
    the CLI's default normalisation for ``model``."""
    from minideconv.cli.inputs import default_normalize
    from minideconv.data.images import ImageFolder
    normalize = default_normalize(model)
    if normalize != "none":
        raise SystemExit(f"figure2's default normalisation for {model} is {normalize}; "
                         f"the torch recipe here reads pixel / 255")
    images = ImageFolder(folder, (SIZE, SIZE))
    for path in images.paths:
        if not np.array_equal(images.read(path), read_png(path)):
            raise SystemExit(f"minideconv does not read {path} as pixel / 255")
    return len(images.paths)


def warmup_folder(photos, folder):
    """The first WARMUP_IMAGES photos, copied, for the untimed warm-up runs."""
    os.makedirs(folder)
    for path in photo_paths(photos)[:WARMUP_IMAGES]:
        shutil.copy(path, folder)


# --------------------------------------------------------------------------- running

def child_env(threads):
    """The environment of both children: the threads, and this minideconv."""
    import minideconv
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    here = os.path.dirname(os.path.dirname(os.path.abspath(minideconv.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def run_child(command, env, log, interrupt_after=None):
    """``(exit status, wall s, peak RSS MiB, stdout)`` of one fresh process; SIGINT after
    ``interrupt_after`` seconds if given.  Polling ``wait4`` keeps the pid ours until
    it is reaped, so the signal cannot reach another process."""
    with open(log + ".out", "w") as out, open(log + ".err", "w") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL)
        interrupted = interrupt_after is None
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if not interrupted and time.perf_counter() - start >= interrupt_after:
                os.kill(child.pid, signal.SIGINT)
                interrupted = True
            time.sleep(0.01)
        wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    with open(log + ".out") as out:
        return child.returncode, wall, usage.ru_maxrss / 1024, out.read()


def checked(result, command, log):
    """``result`` of ``run_child``, which must have exited 0 (else its stderr, and exit)."""
    if result[0] != 0:
        with open(log + ".err") as err:
            tail = err.read()[-3000:]
        raise SystemExit(f"exit status {result[0]}: {shlex.join(command)}\n{tail}")
    return result


def minideconv_command(model, images, layers, out, flags):
    """The CLI as a user runs it: the required flags, then ``--minideconv-flags``."""
    return [sys.executable, "-m", "minideconv", "figure2", "--model", model,
            "--images", images, "--layer", ",".join(layers), "--out", out,
            "--no-progress"] + flags


def torch_command(state, images, layers, out, k, features, batch, threads):
    """This file as the torch + Captum child."""
    return [sys.executable, os.path.abspath(__file__), TORCH_RECIPE, "--state", state,
            "--images", images, "--layer", ",".join(layers), "--out", out,
            "--k", str(k), "--features", str(features), "--batch", str(batch),
            "--threads", str(threads)]


# --------------------------------------------------------------------------- checks

def minideconv_tables(path, layers):
    """``{name: (values, indices, positions)}``, (C, k), (C, k), (C, k, 2), from the
    table ``minideconv figure2`` writes."""
    with np.load(path) as table:
        columns = {key: table[key] for key in ("layer_name", "channel", "rank",
                                               "image_index", "position", "value")}
    tables = {}
    for name in layers:
        rows = columns["layer_name"] == name
        c, r = columns["channel"][rows], columns["rank"][rows]
        shape = (c.max() + 1, r.max() + 1)
        values, indices = np.empty(shape), np.empty(shape, np.int64)
        positions = np.empty(shape + (2,), np.int64)
        values[c, r] = columns["value"][rows]
        indices[c, r] = columns["image_index"][rows]
        positions[c, r] = columns["position"][rows]
        tables[name] = values, indices, positions
    return tables


def agreement(ours_path, theirs_path, layers, features):
    """The largest relative difference of the values shown, once the features, images
    and positions are the same in both tables; else exits at the first difference."""
    from minideconv.cli.figure2 import strongest_channels
    ours = minideconv_tables(ours_path, layers)
    worst = 0.0
    with np.load(theirs_path) as theirs:
        for name in layers:
            values, indices, positions = ours[name]
            channels = strongest_channels(values.astype(np.float32), features)
            if channels != theirs[f"{name}/channels"].tolist():
                raise SystemExit(f"{name}: features shown differ: minideconv {channels}, "
                                 f"torch {theirs[f'{name}/channels'].tolist()}")
            for f, c in enumerate(channels):
                for got, want, what in ((indices[c], theirs[f"{name}/indices"][f],
                                         "images"),
                                        (positions[c], theirs[f"{name}/positions"][f],
                                         "positions")):
                    if not np.array_equal(got, want):   # the values show a near-tie
                        raise SystemExit(f"{name}, feature {c}: top-k {what} differ: "
                                         f"minideconv {got.tolist()}, torch {want.tolist()}"
                                         f"; values: minideconv {values[c].tolist()}, "
                                         f"torch {theirs[f'{name}/values'][f].tolist()}")
                want = theirs[f"{name}/values"][f].astype(np.float64)
                relative = np.abs(values[c] - want) / np.maximum(np.abs(want), 1e-30)
                worst = max(worst, float(relative.max()))
                if relative.max() > TOLERANCE:
                    raise SystemExit(f"{name}, feature {c}: values differ by "
                                     f"{relative.max():.1e} relative: minideconv "
                                     f"{values[c].tolist()}, torch {want.tolist()}")
    return worst


def resume_check(command, env, work, reference, interrupt_after):
    """One line: the interrupted and resumed run's table against ``reference``; exits
    when they differ."""
    help_text = subprocess.run([sys.executable, "-m", "minideconv", "figure2", "--help"],
                               env=env, capture_output=True, text=True).stdout
    if "--resume" not in help_text:
        return "skipped: this minideconv has no --resume"
    out = command[command.index("--out") + 1]
    log = os.path.join(work, "runs", "resume")
    status, wall, _, _ = run_child(command, env, log + "-interrupted", interrupt_after)
    if status != 130:
        raise SystemExit(f"resume: SIGINT after {interrupt_after} s gave exit status "
                         f"{status}, expected 130 (a run that ended first needs a "
                         f"smaller --interrupt-after)")
    if not os.path.isfile(os.path.join(out, "figure2_ranking.npz")):
        raise SystemExit(f"resume: no figure2_ranking.npz in {out} after the interrupt")
    resumed = command + ["--resume"]
    _, again, _, _ = checked(run_child(resumed, env, log), resumed, log)
    again_table = os.path.join(out, os.path.basename(reference))
    with np.load(reference) as want, np.load(again_table) as got:
        if sorted(want.files) != sorted(got.files):
            raise SystemExit(f"resume: columns {sorted(got.files)}, expected "
                             f"{sorted(want.files)}")
        for key in want.files:
            if not np.array_equal(want[key], got[key]):
                raise SystemExit(f"resume: column {key!r} differs from the uninterrupted "
                                 f"run's")
    return (f"ok: interrupted after {wall:.1f} s (exit 130, figure2_ranking.npz written), "
            f"resumed in {again:.1f} s; its table equals the uninterrupted run's")


# --------------------------------------------------------------------------- report

def cpu_and_date():
    """CPU model, cores, load average now and the date, for a report's last line."""
    with open("/proc/cpuinfo") as info:
        model = next((line.split(":", 1)[1].strip() for line in info
                      if line.startswith("model name")), "unknown CPU")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{model}, {os.cpu_count()} cores, load average {load} (at the end), "
            f"{datetime.date.today().isoformat()}")


def machine():
    """One line: CPU model, cores, load, date and the versions that matter."""
    import captum
    import numba
    import torch
    return (f"{cpu_and_date()}; torch {torch.__version__}, captum "
            f"{captum.__version__}, numba {numba.__version__}, numpy {np.__version__}")


def report(times, labels):
    """The table: median wall time and peak RSS of each recipe, and minideconv / torch."""
    rows = {name: (statistics.median(w for w, _ in runs),
                   statistics.median(m for _, m in runs)) for name, runs in times.items()}
    print("| recipe | wall s | peak RSS MiB | rounds (s, MiB) |")
    print("|---|---:|---:|---|")
    for name, (wall, rss) in rows.items():
        rounds = "; ".join(f"{w:.1f}, {m:.0f}" for w, m in times[name])
        print(f"| {labels[name]} | {wall:.1f} | {rss:.0f} | {rounds} |")
    (ours_wall, ours_rss), (torch_wall, torch_rss) = rows["minideconv"], rows["torch"]
    print(f"| minideconv / torch | {ours_wall / torch_wall:.2f}× | "
          f"{ours_rss / torch_rss:.2f}× | |")


# --------------------------------------------------------------------------- main

def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--layer", default="features.15,features.29",
                        help="layer names, comma-separated (default: the ReLUs after "
                             "conv3_3 and conv5_3)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-batch", type=int, default=16)
    parser.add_argument("--interrupt-after", type=float, default=40,
                        help="seconds before the resume check's SIGINT (0: no check)")
    parser.add_argument("--seed", type=int, default=0, help="of the weights and photos")
    parser.add_argument("--work", help="folder for the models, photos and outputs "
                                       "(default: a temporary one, removed)")
    parser.add_argument("--minideconv-flags", default="",
                        help="extra flags for minideconv figure2, for trial runs only: "
                             "the benchmark measures its defaults")
    args = parser.parse_args(argv)
    from minideconv.visualize.figure2 import TOP_K
    for flag in ("images", "repeats", "threads", "torch_batch"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')}: must be >= 1")
    if args.images < TOP_K:
        parser.error(f"--images: must be >= {TOP_K}, figure2's k")
    if args.interrupt_after < 0:
        parser.error("--interrupt-after: must be >= 0")
    args.layers = [name.strip() for name in args.layer.split(",") if name.strip()]
    if not args.layers or len(set(args.layers)) != len(args.layers):
        parser.error("--layer: give one or more different layer names")
    args.flags = shlex.split(args.minideconv_flags)
    own = [flag for flag in args.flags if flag.split("=")[0] in OWN_FLAGS]
    if own:
        parser.error(f"--minideconv-flags: {', '.join(own)} is set by the benchmark")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [TORCH_RECIPE]:
        return torch_recipe(argv[1:])
    args = parse(argv)
    from minideconv.cli.figure2 import FIGURE2_FEATURES
    from minideconv.visualize.figure2 import TOP_K
    with tempfile.TemporaryDirectory() as temporary:
        work = os.path.abspath(args.work or temporary)
        for owned in ("photos", "warmup", "runs"):       # a rerun in --work starts clean
            shutil.rmtree(os.path.join(work, owned), ignore_errors=True)
        os.makedirs(os.path.join(work, "runs"))
        run(args, work, TOP_K, FIGURE2_FEATURES)


def run(args, work, k, features):
    """Setup, warm-ups, timed rounds, the checks and the table."""
    described = make_models(work, args.seed, args.layers)
    photos = os.path.join(work, "photos")
    make_photos(photos, args.images, args.seed)
    checked_files = check_pixels(photos, os.path.join(work, "vgg16.npz"))
    warmup_folder(photos, os.path.join(work, "warmup"))
    env = child_env(args.threads)
    model, state = os.path.join(work, "vgg16.npz"), os.path.join(work, "vgg16.pt")

    def ours(images, out, flags=args.flags):
        return minideconv_command(model, images, args.layers, out, flags)

    def theirs(images, out, count=features):
        return torch_command(state, images, args.layers, out, k, count, args.torch_batch,
                             args.threads)

    def logged(command, name, **interrupt):
        log = os.path.join(work, "runs", name)
        return checked(run_child(command, env, log, **interrupt), command, log)

    # untimed: Numba's cache filled, the files in the page cache
    warmup = os.path.join(work, "warmup")
    logged(ours(warmup, os.path.join(work, "runs", "warm-ours"),
                args.flags + ["--features", "1"]), "warm-ours")
    logged(theirs(warmup, os.path.join(work, "runs", "warm-torch.npz"), count=1),
           "warm-torch")
    times, stdout = {"minideconv": [], "torch": []}, None
    for round_ in range(args.repeats):
        out = os.path.join(work, "runs", f"ours-{round_}")
        _, wall, rss, text = logged(ours(photos, out), f"ours-{round_}")
        times["minideconv"].append((wall, rss))
        stdout = stdout or text
        table = os.path.join(work, "runs", f"torch-{round_}.npz")
        _, wall, rss, _ = logged(theirs(photos, table), f"torch-{round_}")
        times["torch"].append((wall, rss))

    ours_table = os.path.join(work, "runs", "ours-0", f"figure2_top{k}.npz")
    worst = agreement(ours_table, os.path.join(work, "runs", "torch-0.npz"), args.layers,
                      features)
    resumed = "skipped: --interrupt-after 0"
    if args.interrupt_after:
        resumed = resume_check(ours(photos, os.path.join(work, "runs", "resume")), env,
                               work, ours_table, args.interrupt_after)

    units = len(args.layers) * features * k
    print(f"Figure 2 on {args.images} photos ({SIZE}x{SIZE} PNGs; minideconv reads all "
          f"{checked_files} as pixel / 255), VGG-16 layout with random weights (seed "
          f"{args.seed}), float32, layers {'; '.join(described)}: top {k}, {features} "
          f"features each, {units} projections; {args.threads} thread(s) each")
    shown = ["python"] + ours("DIR", "OUT")[1:]
    shown[shown.index(model)] = "vgg16.npz"
    print(f"minideconv: {shlex.join(shown)}")
    print(f"torch + Captum: batches of {args.torch_batch}, one NeuronDeconvolution call "
          f"per unit")
    print(f"agreement: same features, top-{k} images and positions; values within "
          f"{worst:.1e} relative")
    print(f"resume: {resumed}")
    batch_lines = [line for line in stdout.splitlines() if "batch" in line.lower()]
    print("minideconv's batch lines: " + (" | ".join(batch_lines) or "none"))
    print(f"machine: {machine()}")
    report(times, {"minideconv": "minideconv figure2 (defaults"
                                 + (f" + {args.minideconv_flags}" if args.flags else "")
                                 + ")",
                   "torch": f"torch + Captum (batch {args.torch_batch})"})


if __name__ == "__main__":
    main()
