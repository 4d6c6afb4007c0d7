"""``figure2 --workers N`` or ``--scheduler ADDRESS``: the ranking pass on a Dask cluster.

The ranking pass is ``minideconv.visualize.rank_folder_dask``: each task reads and ranks
its own files on a worker, the tables merge in a tree, and the result is the tables of
the single-process pass with the same batches.  The projections stay in this process.

* ``--workers N``: a ``LocalCluster`` of N worker processes, one thread each (Numba and
  BLAS one thread too, so N workers use N cores), started here and closed at the end.
  ``--scheduler tcp://host:8786``: a running cluster; its workers need minideconv and
  must read ``--images`` at the same path.  Not both.
* The ranking batch (files per task): ``--batch-size``, or the largest that fits the
  memory budget (``--memory``, per worker process: each holds one batch), at most
  ⌈files / (``TASKS_PER_THREAD`` × worker threads)⌉ so that every thread gets several.
* ``--resume``: the ranking file is written once, when the pass ends (the tree's
  partial tables are no prefix of the stream, so there is nothing to write before).
  A ranking an interrupted single-process run left is continued — its remaining files
  on the cluster, merged with it — and a finished one goes straight to the projections;
  an interrupted cluster pass leaves nothing new to resume, and says so.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys

from . import checks, figure2_ranking, outputs

#: tasks per worker thread, at least, when the ranking batch comes from --memory: a
#: thread that ends early takes the next task rather than waiting for the others
TASKS_PER_THREAD = 4
#: seconds to reach --scheduler before giving up
CONNECT_TIMEOUT = 30


def cluster_flag(args):
    """``--workers``, ``--scheduler`` or None: the flag that asks for a cluster."""
    if args.workers is not None:
        return "--workers"
    return "--scheduler" if args.scheduler is not None else None


def check_flags(args):
    """One of ``--workers`` and ``--scheduler`` at most, and dask.distributed installed
    when one is given: checked before any image is read."""
    if args.workers is not None and args.scheduler is not None:
        raise checks.UsageError("--workers and --scheduler: give one of them (a local "
                                "cluster of N worker processes, or the address of a "
                                "running one)")
    flag = cluster_flag(args)
    if flag is None:
        return
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise checks.RunError(f"{flag}: the ranking on a Dask cluster needs "
                              f"dask.distributed, which is not installed: "
                              f"pip install \"minideconv[dask]\"") from None


@contextlib.contextmanager
def connect(args):
    """A ``distributed.Client`` of the cluster the flags ask for, closed (with a
    ``LocalCluster`` started here) on the way out; None without either flag."""
    if cluster_flag(args) is None:
        yield None
        return
    from distributed import Client, LocalCluster
    cluster = None
    if args.workers is not None:
        # one core per worker: Numba's pool too (Dask sets OMP/BLAS threads to 1 itself);
        # the scheduler's HTTP server on a free port, never one another cluster holds
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                               processes=True, dashboard_address=":0",
                               env={"NUMBA_NUM_THREADS": "1"})
        client = Client(cluster)
    else:
        try:
            client = Client(args.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as err:
            raise checks.RunError(f"--scheduler: cannot reach a Dask scheduler at "
                                  f"{args.scheduler!r} ({err}); give its address, such "
                                  f"as tcp://host:8786") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def files_per_task(args, n_files, client):
    """The most files per task: all of them without a cluster, else
    ⌈n_files / (TASKS_PER_THREAD × worker threads)⌉ (printed)."""
    if client is None:
        return n_files
    threads = max(1, sum(client.nthreads().values()))
    most = max(1, math.ceil(n_files / (TASKS_PER_THREAD * threads)))
    where = (f"a local cluster of {args.workers} worker process(es)"
             if args.workers is not None else f"the cluster at {args.scheduler}")
    print(f"ranking on {where}, {threads} worker thread(s)" +
          ("" if args.batch_size is not None else
           f": at most {most} files per task, {TASKS_PER_THREAD} tasks per thread"))
    return most


def rank_folder(args, net, layers, folder, ranking_batch, settings, out, client,
                resumed=None):
    """``figure2``'s ranking pass on the cluster of ``client``, continued from
    ``resumed`` (``--resume``) and written to the ranking file when it ends:
    ``(tables, paths, skipped)``."""
    from tqdm.auto import tqdm

    from ..visualize.figure2_dask import TooFewImages, rank_folder_dask
    if resumed is None:
        resumed = figure2_ranking.Ranking(None, 0, [], [], ranking_batch)
    else:
        print(f"resuming: {resumed.files_read} of {len(folder)} files were ranked "
              f"({figure2_ranking.RANKING_FILE})")
    if resumed.files_read == len(folder):
        return resumed.tables, list(resumed.paths), resumed.skipped
    with tqdm(total=len(folder), initial=resumed.files_read, desc="images", unit="image",
              disable=args.no_progress) as bar:
        try:
            tables, paths, skipped = rank_folder_dask(
                client, net, folder, layers, k=args.k, batch_size=ranking_batch,
                keep_images=False, first=resumed.files_read, resume=resumed.tables,
                on_files=bar.update)
        except KeyboardInterrupt:
            print(f"interrupted: a ranking on a cluster is written when its pass ends, "
                  f"so {outputs.printable(os.path.join(out, figure2_ranking.RANKING_FILE))}"
                  f" holds no part of this one; rerun to rank the files again",
                  file=sys.stderr)
            raise
        except TooFewImages as err:
            raise figure2_ranking.too_few_images(err.n_images, len(folder),
                                                 args.k) from err
    paths, skipped = list(resumed.paths) + paths, resumed.skipped + skipped
    figure2_ranking.save_ranking(out, settings, figure2_ranking.Ranking(
        tables, len(folder), paths, skipped, ranking_batch))
    return tables, paths, skipped


def add_flags(p):
    """``--workers`` and ``--scheduler``, on ``figure2``'s parser."""
    p.add_argument("--workers", type=checks.integer(1), default=None, metavar="N",
                   help="rank the images on a local Dask cluster of N worker processes "
                        "(one thread each); needs minideconv[dask]")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="rank the images on the running Dask cluster at ADDRESS, such as "
                        "tcp://host:8786 (its workers need minideconv and must read "
                        "--images at the same path); needs minideconv[dask]")
