"""`minideconv figure2 --workers N` / `--scheduler ADDRESS`: the ranking pass on a Dask
cluster writes the tables of the single-process run, continues a ranking an interrupted
run left, and its flags' errors are one line each."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from minideconv.cli import figure2_dask  # noqa: E402

from test_cli_figure2 import write_images  # noqa: E402
from test_cli_figure2_batches import (BASE, assert_same_table, interrupt_after,  # noqa: E402
                                      run, table)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """13 readable images of several modes and sizes, and two broken ones after them
    (so that the cluster's tasks see the batches of the single-process run)."""
    folder = tmp_path_factory.mktemp("dask") / "photos"
    write_images(folder, np.random.default_rng(2), count=13)
    (folder / "zz_broken.png").write_text("not an image\n")
    (folder / "zz_empty.png").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def scheduler():
    """The address of a local cluster of 2 worker processes, started once."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def single(photos, tmp_path_factory):
    """The single-process run's table, batches of 3."""
    out = tmp_path_factory.mktemp("single")
    from support.cli import main_status
    assert main_status(BASE + ["--images", str(photos), "--out", str(out),
                               "--batch-size", "3", "--no-progress"]) == 0
    return table(out)


def test_on_a_running_cluster_the_tables_are_the_single_process_ones(photos, tmp_path,
                                                                     capsys, scheduler,
                                                                     single):
    out = tmp_path / "fig2"
    code, printed = run(capsys, photos, out, "--batch-size", "3", "--no-progress",
                        "--scheduler", scheduler)
    assert code == 0, printed.err
    assert f"ranking on the cluster at {scheduler}, 2 worker thread(s)" in printed.out
    assert_same_table(table(out), single)
    assert sorted(p.name for p in out.iterdir()) == [
        "figure2_layer2_top3.png", "figure2_layer9_top3.png", "figure2_ranking.npz",
        "figure2_top3.npz"]
    # a finished cluster pass resumes straight to its projections
    (out / "figure2_top3.npz").unlink()
    printed = resume_on(scheduler, capsys, photos, out, single)
    assert "resuming: 15 of 15 files were ranked" in printed.out


def resume_on(scheduler, capsys, photos, out, single):
    """``figure2 --resume`` of ``out`` on the cluster, whose table must be ``single``."""
    code, printed = run(capsys, photos, out, "--batch-size", "3", "--no-progress",
                        "--resume", "--scheduler", scheduler)
    assert code == 0, printed.err
    assert_same_table(table(out), single)
    return printed


def test_workers_start_and_close_a_local_cluster(photos, tmp_path, capsys, single):
    pytest.importorskip("distributed")
    code, printed = run(capsys, photos, tmp_path / "fig2", "--batch-size", "3",
                        "--no-progress", "--workers", "2")
    assert code == 0, printed.err
    assert "ranking on a local cluster of 2 worker process(es), 2 worker thread(s)" \
        in printed.out
    assert_same_table(table(tmp_path / "fig2"), single)


def test_a_broken_file_between_the_images(photos, tmp_path, capsys, scheduler, single):
    """It leaves its task a batch one image short: the same images, paths and skipped
    files, the values of a batch-size-dependent layer to rounding (exactly equal when no
    file is skipped before the last batch, above)."""
    import shutil
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    (folder / "photo4_broken.png").write_text("not an image\n")
    outs = {}
    for name, flags in (("single", []), ("cluster", ["--scheduler", scheduler])):
        code, printed = run(capsys, folder, tmp_path / name, "--batch-size", "3",
                            "--no-progress", *flags)
        assert code == 0, printed.err
        outs[name] = table(tmp_path / name)
    got, want = outs["cluster"], outs["single"]
    for name in ("skipped_path", "skipped_reason", "layer", "channel", "rank"):
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-6)
    assert len(got["skipped_path"]) == 3


def test_the_memory_budget_leaves_several_tasks_per_thread(photos, tmp_path, capsys,
                                                           scheduler):
    code, printed = run(capsys, photos, tmp_path / "fig2", "--no-progress",
                        "--scheduler", scheduler)
    assert code == 0, printed.err
    # 15 files, 2 threads, 4 tasks each: at most ⌈15 / 8⌉ = 2 files per task
    assert "at most 2 files per task, 4 tasks per thread" in printed.out
    assert "batches: 2 images per forward pass" in printed.out


@pytest.mark.parametrize("saves", [1, 3])
def test_a_cluster_continues_an_interrupted_single_process_pass(
        photos, tmp_path, monkeypatch, capsys, scheduler, single, saves):
    out = tmp_path / "fig2"
    interrupt_after(monkeypatch, saves)
    code, _ = run(capsys, photos, out, "--batch-size", "3", "--no-progress")
    assert code == 130
    monkeypatch.undo()
    printed = resume_on(scheduler, capsys, photos, out, single)
    assert f"resuming: {saves * 3} of 15 files were ranked" in printed.out


def test_too_few_readable_images_on_a_cluster(photos, tmp_path, capsys, scheduler):
    code, printed = run(capsys, photos, tmp_path / "fig2", "--no-progress", "--k", "14",
                        "--scheduler", scheduler)
    assert code == 1
    assert printed.err.strip() == ("minideconv figure2: error: --images: 13 of the 15 "
                                   "files could be read as images; --k 14 needs at "
                                   "least 14")


def test_both_flags_are_refused(photos, tmp_path, capsys):
    code, printed = run(capsys, photos, tmp_path / "fig2", "--workers", "2",
                        "--scheduler", "tcp://127.0.0.1:8786")
    assert code == 2
    assert printed.err.strip() == ("minideconv figure2: error: --workers and --scheduler: "
                                   "give one of them (a local cluster of N worker "
                                   "processes, or the address of a running one)")
    assert not (tmp_path / "fig2").exists()


@pytest.mark.parametrize("flags", [["--workers", "2"],
                                   ["--scheduler", "tcp://127.0.0.1:8786"]])
def test_without_dask_either_flag_says_how_to_install_it(photos, tmp_path, capsys,
                                                         monkeypatch, flags):
    monkeypatch.setitem(sys.modules, "distributed", None)   # import distributed fails
    code, printed = run(capsys, photos, tmp_path / "fig2", *flags)
    assert code == 1
    assert printed.err.strip() == (f"minideconv figure2: error: {flags[0]}: the ranking "
                                   f"on a Dask cluster needs dask.distributed, which is "
                                   f"not installed: pip install \"minideconv[dask]\"")
    # and figure2 without them runs as before
    code, printed = run(capsys, photos, tmp_path / "plain", "--no-progress")
    assert code == 0, printed.err


def test_workers_must_be_positive(photos, tmp_path, capsys):
    code, printed = run(capsys, photos, tmp_path / "fig2", "--workers", "0")
    assert code == 2 and "--workers" in printed.err


def test_an_unreachable_scheduler_is_one_line(photos, tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(figure2_dask, "CONNECT_TIMEOUT", 1)
    code, printed = run(capsys, photos, tmp_path / "fig2", "--no-progress",
                        "--scheduler", "tcp://127.0.0.1:9")
    assert code == 1, printed.err
    line = printed.err.strip()
    assert line.startswith("minideconv figure2: error: --scheduler: cannot reach a Dask "
                           "scheduler at 'tcp://127.0.0.1:9'") and "\n" not in line
