"""Figure 2's ranking pass over a folder of PNGs: one process vs a Dask cluster of 1 and 2
local workers, side by side.

    python benchmarks/bench_figure2_dask.py [--images 400] [--pixels 32] [--workers 1,2]
                                            [--batch 50] [--layers 2,4,7,9]
                                            [--repeats 3] [--work DIR]

Setup (in ``--work``, or a temporary folder): the first ``--images`` test images of the
drawn dataset (``data.load_dataset("test")``), each written as an 8-bit RGB PNG of
``--pixels`` × ``--pixels`` (enlarged from 32 × 32 by Pillow's bilinear filter when
larger: a folder of bigger files, so that decoding and shrinking them back to the
shipped network's 32 × 32, which the workers do in parallel too, weighs as it does for
photographs).

The three recipes, on the shipped network and ``--layers``, each the ranking of the
whole folder with ``--batch`` files per batch (the same batches for all three, so that
the tables must be equal — checked, bit for bit, before any time is reported):

- one process: ``rank_top_k(net, (batch for _, batch in folder.batches(B)), layers)``
  in this process, with Numba's default thread count (one per core);
- Dask, N workers: ``rank_folder_dask(client, net, folder, layers, batch_size=B)`` on a
  ``LocalCluster`` of N worker processes of one thread each (Numba too:
  ``NUMBA_NUM_THREADS=1``, as ``figure2 --workers`` starts them), every task reading its
  own files.

The clusters are started first (the start-up time is printed apart) and each recipe runs
once untimed (the workers load the compiled kernels from Numba's cache), then
``--repeats`` rounds run the recipes one after the other, in this order; each time is
the wall time of one whole ranking call, on the client.  The table: the fastest round
of each and the range, the speed-up of each over one process and over one worker
(fastest round over fastest round), and the CPU seconds that round used (this process
and the workers, ``time.process_time``) per second of its wall time — about the cores it
had: on a machine other processes keep busy, two workers may get no more than one.  All the clusters stay up during the rounds: the idle
workers' heartbeats are part of the noise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np


def write_pngs(folder, count, pixels):
    """``count`` drawn test images as ``pixels``² RGB PNGs, named in stream order."""
    from PIL import Image

    from minideconv import data
    images, _ = data.load_dataset("test", count)
    os.makedirs(folder, exist_ok=True)
    for i, image in enumerate(images):
        picture = Image.fromarray(np.round(image.transpose(1, 2, 0) * 255).astype(np.uint8))
        if pixels != picture.width:
            picture = picture.resize((pixels, pixels), Image.Resampling.BILINEAR)
        picture.save(os.path.join(folder, f"{i:05d}.png"))


def same_tables(a, b):
    """Every layer's values, indices and positions equal, bit for bit."""
    return sorted(a) == sorted(b) and all(
        np.array_equal(getattr(a[layer], f), getattr(b[layer], f))
        for layer in a for f in ("values", "indices", "positions"))


def machine():
    """One line: CPU model, cores, load, date and the versions that matter."""
    import dask
    import distributed
    import numba
    from bench_figure2 import cpu_and_date      # this folder: the script's own
    return (f"{cpu_and_date()}; Python {sys.version.split()[0]}, numpy {np.__version__}, "
            f"numba {numba.__version__}, dask {dask.__version__}, distributed "
            f"{distributed.__version__}")


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--pixels", type=int, default=32, help="side of each PNG")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--batch", type=int, default=50, help="files per batch (task)")
    parser.add_argument("--layers", default="2,4,7,9")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", help="folder for the PNGs (default: a temporary one)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    if args.work:
        run(args, args.work)
    else:
        with tempfile.TemporaryDirectory() as work:
            run(args, work)


def run(args, work):
    from distributed import Client, LocalCluster

    from minideconv import data
    from minideconv.data.images import ImageFolder
    from minideconv.visualize import rank_folder_dask, rank_top_k
    folder_path = os.path.join(work, f"png{args.pixels}")
    if not os.path.isdir(folder_path):
        write_pngs(folder_path, args.images, args.pixels)
    net = data.load_model()
    folder = ImageFolder(folder_path, (32, 32))
    layers = [int(v) for v in args.layers.split(",")]
    counts = [int(v) for v in args.workers.split(",")]
    print(f"{len(folder)} PNGs of {args.pixels}x{args.pixels}, the shipped network, "
          f"layers {layers}, {args.batch} files per batch")

    clusters, recipes = [], {}
    recipes["one process"] = lambda: rank_top_k(
        net, (batch for _, batch in folder.batches(args.batch)), layers,
        batch_size=args.batch, keep_images=False)
    for n in counts:
        start = time.perf_counter()
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", env={"NUMBA_NUM_THREADS": "1"})
        client = Client(cluster)
        print(f"a LocalCluster of {n} worker(s) started in "
              f"{time.perf_counter() - start:.1f} s")
        clusters.append((client, cluster))
        recipes[f"Dask, {n} worker(s)"] = (lambda client=client: rank_folder_dask(
            client, net, folder, layers, batch_size=args.batch)[0])
    try:
        reference = None
        for name, recipe in recipes.items():        # untimed: and the tables must agree
            tables = recipe()
            reference = tables if reference is None else reference
            if not same_tables(tables, reference):
                sys.exit(f"{name}: the tables differ from one process's")
        clients = dict(zip(list(recipes)[1:], [client for client, _ in clusters]))
        times = {name: [] for name in recipes}
        cpu = {name: [] for name in recipes}
        for _ in range(args.repeats):
            for name, recipe in recipes.items():
                used = cpu_seconds(clients.get(name))
                start = time.perf_counter()
                recipe()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(cpu_seconds(clients.get(name)) - used)
    finally:
        for client, cluster in clusters:
            client.close()
            cluster.close()
    report(times, cpu)
    print(machine())


def cpu_seconds(client):
    """CPU seconds used so far by this process and, with a ``client``, its workers."""
    own = time.process_time()
    if client is None:
        return own
    return own + sum(client.run(time.process_time).values())


def report(times, cpu):
    """The table: fastest round, range, speed-ups over one process and one worker, and
    the CPU seconds (this process and the workers) per second of the fastest round."""
    best = {name: min(t) for name, t in times.items()}
    one_worker = best.get("Dask, 1 worker(s)")
    print("| recipe | fastest s | rounds s | vs one process | vs 1 worker | "
          "CPU s / wall s |")
    print("|---|---:|---|---:|---:|---:|")
    for name, t in times.items():
        versus_worker = f"{one_worker / best[name]:.2f}×" if one_worker else ""
        fastest = t.index(best[name])
        print(f"| {name} | {best[name]:.2f} | {', '.join(f'{v:.2f}' for v in t)} | "
              f"{best['one process'] / best[name]:.2f}× | "
              f"{versus_worker if name != 'one process' else ''} | "
              f"{cpu[name][fastest] / best[name]:.2f} |")


if __name__ == "__main__":
    main()
