"""`minideconv figure2` on a memory budget: the batches it chooses and says, progress bars
that count images through the network and units through the projections, and a pass that,
interrupted, resumes from its ranking file to the tables of one uninterrupted run."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from minideconv.cli import figure2, figure2_ranking  # noqa: E402

from support.cli import main_status  # noqa: E402
from test_cli_figure2 import write_images  # noqa: E402

BASE = ["figure2", "--layer", "2,-1", "--k", "3", "--features", "4"]


@pytest.fixture
def photos(tmp_path):
    """13 readable images and two broken ones, between and after them."""
    folder = tmp_path / "photos"
    write_images(folder, np.random.default_rng(2), count=13)
    (folder / "photo4_broken.png").write_text("not an image\n")
    (folder / "zz_broken.png").write_bytes(b"")
    return folder


def run(capsys, photos, out, *flags):
    code = main_status(BASE + ["--images", str(photos), "--out", str(out), *flags])
    return code, capsys.readouterr()


def table(out):
    with np.load(out / "figure2_top3.npz") as saved:
        return {name: saved[name] for name in saved.files}


def assert_same_table(got, want):
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def interrupt_after(monkeypatch, saves):
    """Ctrl-C right after the ``saves``-th ranking file is written."""
    written = []
    save = figure2_ranking.save_ranking

    def save_then_interrupt(*args):
        save(*args)
        written.append(args[2].files_read)
        if len(written) == saves:
            raise KeyboardInterrupt
    monkeypatch.setattr(figure2_ranking, "save_ranking", save_then_interrupt)
    return written


@pytest.mark.parametrize("saves", [1, 2, 4])
def test_an_interrupted_pass_resumes_to_the_same_tables(photos, tmp_path, monkeypatch,
                                                        capsys, saves):
    code, whole = run(capsys, photos, tmp_path / "whole", "--batch-size", "3",
                      "--no-progress")
    assert code == 0, whole.err
    out = tmp_path / "interrupted"
    written = interrupt_after(monkeypatch, saves)
    code, printed = run(capsys, photos, out, "--batch-size", "3", "--no-progress")
    assert code == 130
    assert f"interrupted after {written[-1]} of 15 files" in printed.err
    assert "rerun with --resume" in printed.err and "Traceback" not in printed.err
    assert sorted(p.name for p in out.iterdir()) == ["figure2_ranking.npz"]
    monkeypatch.undo()
    # another --batch-size on resume changes the projections' batch, not the ranking's
    code, resumed = run(capsys, photos, out, "--batch-size", "5", "--no-progress",
                        "--resume")
    assert code == 0, resumed.err
    assert f"resuming: {written[-1]} of 15 files were ranked" in resumed.out
    assert "3 images per forward pass, 5 units per projection pass" in resumed.out
    assert_same_table(table(out), table(tmp_path / "whole"))
    skipped = [line for line in resumed.out.splitlines() if line.startswith("skipped ")]
    assert skipped == [line for line in whole.out.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in (tmp_path / "whole").iterdir())


def test_a_finished_pass_resumes_to_its_projections(photos, tmp_path, capsys):
    out = tmp_path / "fig2"
    assert run(capsys, photos, out, "--no-progress")[0] == 0
    first = table(out)
    (out / "figure2_top3.npz").unlink()
    code, printed = run(capsys, photos, out, "--no-progress", "--resume")
    assert code == 0, printed.err
    assert "resuming: 15 of 15 files were ranked" in printed.out
    assert_same_table(table(out), first)


@pytest.mark.parametrize("change, flag", [
    (["--k", "4"], "--k"), (["--layer", "3"], "--layer"), (["--recursive"], "--recursive"),
    (["--normalize", "imagenet"], "--normalize"), (["--resize", "40"], "--resize"),
])
def test_resume_refuses_a_ranking_of_other_flags(photos, tmp_path, capsys, change, flag):
    out = tmp_path / "fig2"
    assert run(capsys, photos, out, "--no-progress")[0] == 0
    code, printed = run(capsys, photos, out, "--no-progress", "--resume", *change)
    assert code == 2, printed.err
    assert printed.err.startswith(f"minideconv figure2: error: --resume: {flag} differs "
                                  f"from the run that wrote")
    assert len(printed.err.splitlines()) == 1


def test_resume_refuses_another_folder_or_network(photos, tmp_path, capsys):
    out = tmp_path / "fig2"
    assert run(capsys, photos, out, "--no-progress")[0] == 0
    (photos / "new.png").write_bytes((photos / "rgb0.png").read_bytes())
    code, printed = run(capsys, photos, out, "--no-progress", "--resume")
    assert code == 2 and "--resume: --images differs" in printed.err
    assert "the folder's image files are not the same" in printed.err
    (photos / "new.png").unlink()
    from minideconv import data, nn
    other = tmp_path / "other.npz"
    net = nn.load(data.model_path())
    net.with_layers([layer.astype(np.float32) for layer in net.layers]).save(other)
    code, printed = run(capsys, photos, out, "--no-progress", "--resume", "--model",
                        str(other))
    assert code == 2 and "--resume: --model differs" in printed.err
    code, printed = run(capsys, photos, tmp_path / "empty", "--no-progress", "--resume")
    assert code == 2 and "figure2_ranking.npz does not exist" in printed.err


def test_the_batches_come_from_the_memory_budget(photos, tmp_path, capsys):
    code, printed = run(capsys, photos, tmp_path / "a", "--no-progress")
    assert code == 0, printed.err
    # 15 files, 4 features × 3 of layer 2 and 4 × 3 of the last: all in one batch each
    assert "batches: 15 images per forward pass, 24 units per projection pass" in printed.out
    assert "(a memory budget of 1.0 GiB: the smaller of 1.0 GiB and half the" in printed.out
    code, printed = run(capsys, photos, tmp_path / "b", "--no-progress", "--memory", "20M")
    assert code == 0, printed.err
    found = re.search(r"batches: (\d+) images per forward pass, (\d+) units per projection "
                      r"pass, about ([\d.]+) MiB \(a memory budget of 20.0 MiB: --memory",
                      printed.out)
    assert found, printed.out
    assert float(found[3]) <= 20
    code, printed = run(capsys, photos, tmp_path / "c", "--no-progress", "--memory", "1K")
    assert code == 1
    assert re.fullmatch(r"minideconv figure2: error: --memory: one image of 32x32 needs "
                        r"about [\d.]+ MiB in figure2's passes, more than the 0.0 MiB budget "
                        r"\(--memory\); give --memory [\d.]+ MiB or more\n", printed.err)


@pytest.mark.parametrize("flags, text", [
    (["--memory", "lots"], "--memory: must be an amount of memory"),
    (["--memory", "0"], "--memory: must be an amount of memory of at least 1 byte"),
    (["--memory", "1G", "--batch-size", "4"], "--batch-size and --memory: give one"),
])
def test_memory_usage_errors(photos, tmp_path, capsys, flags, text):
    code, printed = run(capsys, photos, tmp_path / "x", "--no-progress", *flags)
    assert code == 2 and text in printed.err and len(printed.err.splitlines()) <= 2


def test_the_bars_count_images_through_the_network_and_units(photos, tmp_path, capsys,
                                                              monkeypatch):
    """The images bar moves when a batch has been through the network (by the files it
    used, the broken ones too), the projections bar by the units of each batch."""
    moves = []
    from tqdm import tqdm as real

    class Recording(real):
        def update(self, n=1):
            moves.append((self.desc, self.n + n, self.total))
            return super().update(n)
    monkeypatch.setattr("tqdm.auto.tqdm", Recording)
    code, printed = run(capsys, photos, tmp_path / "fig2", "--batch-size", "4")
    assert code == 0, printed.err
    images = [(n, total) for desc, n, total in moves if desc == "images"]
    units = [(n, total) for desc, n, total in moves if desc == "projections"]
    # batches of 4 readable images: files 1-4, 5-9 (photo4_broken.png among them), 10-13,
    # and the last image with zz_broken.png after it
    assert images == [(4, 15), (9, 15), (13, 15), (15, 15)]
    assert units == [(4, 24), (8, 24), (12, 24), (16, 24), (20, 24), (24, 24)]
