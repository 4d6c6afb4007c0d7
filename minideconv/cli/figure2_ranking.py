"""``figure2``'s ranking file: the state of its pass over the images, for ``--resume``.

After every batch of the ranking pass ``figure2`` writes ``figure2_ranking.npz`` into
``--out`` (a new file, then renamed over the old one, so an interruption at any moment
leaves the last complete state): every ranked layer's running top-k table so far, the
files read, the readable images in stream order, the skipped files, and the settings the
tables depend on.  ``figure2 --resume`` reads it back, refuses it when a setting
differs, and continues the pass from the first file not yet read; a pass that had ended
goes straight to the projections.  The result is that of one uninterrupted run: the
tables merge in stream order (``visualize.rank_top_k``'s ``resume``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Dict, List, NamedTuple, Tuple

import numpy as np

from ..visualize import TopKTable
from . import checks

RANKING_FILE = "figure2_ranking.npz"


class Ranking(NamedTuple):
    """A ranking pass so far: each layer's ``TopKTable`` after ``files_read`` files of
    the folder, the readable ones (``paths``, in stream order), the skipped ones (path,
    reason), and the images per batch (a resumed pass keeps it: a batch of another size
    may round some layer's outputs differently, by an ulp)."""

    tables: Dict[int, TopKTable]
    files_read: int
    paths: List[str]
    skipped: List[Tuple[str, str]]
    batch_size: int

#: the settings a ranking depends on, and the flag that sets each
SETTING_FLAGS = {"model_sha256": "--model", "images": "--images", "recursive": "--recursive",
                 "files_sha256": "--images", "layers": "--layer", "k": "--k",
                 "shape": "--size", "resize": "--resize", "normalize": "--normalize"}


def _file_digest(path):
    """SHA-256 of a file's bytes: the same network, whatever its name or date."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def ranking_settings(model, folder, recursive, layers, k, shape, normalize):
    """What a ranking depends on: the network's bytes, the folder and its image files,
    the ranked layers, k and the reading of each image."""
    names = "\n".join(os.path.relpath(p, folder.folder) for p in folder.paths)
    return {"model_sha256": _file_digest(model),
            "images": os.path.abspath(folder.folder),
            "recursive": bool(recursive),
            "files_sha256": hashlib.sha256(names.encode("utf-8", "surrogateescape"))
            .hexdigest(),
            "layers": [int(layer) for layer in layers], "k": int(k),
            "shape": [int(v) for v in shape],
            "resize": None if folder.resize is None else int(folder.resize),
            "normalize": normalize}


def save_ranking(out, settings, ranking: Ranking):
    """Write ``ranking`` into the folder ``out`` (after a batch), replacing the last."""
    arrays = {"settings": np.array(json.dumps(settings)),
              "files_read": np.array(ranking.files_read, np.int64),
              "batch_size": np.array(ranking.batch_size, np.int64),
              "paths": np.array(ranking.paths, dtype=str),
              "skipped_path": np.array([p for p, _ in ranking.skipped], dtype=str),
              "skipped_reason": np.array([r for _, r in ranking.skipped], dtype=str)}
    for layer, table in ranking.tables.items():
        arrays[f"values_{layer}"] = table.values
        arrays[f"indices_{layer}"] = table.indices
        arrays[f"positions_{layer}"] = table.positions
    descriptor, temporary = tempfile.mkstemp(prefix=".figure2_ranking.", suffix=".npz",
                                             dir=out)
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, os.path.join(out, RANKING_FILE))   # atomic on one disk
    except BaseException:
        os.unlink(temporary)
        raise


def load_ranking(out, settings, image_dtype) -> Ranking:
    """The ``Ranking`` in ``out``'s ranking file, checked against this run's
    ``settings``: a UsageError naming the flag that differs."""
    path = os.path.join(out, RANKING_FILE)
    if not os.path.isfile(path):
        raise checks.UsageError(f"--resume: {path} does not exist; run figure2 without "
                                f"--resume to start a pass")
    try:
        with np.load(path, allow_pickle=False) as saved:
            stored = json.loads(str(saved["settings"]))
            arrays = {name: saved[name] for name in saved.files}
    except (OSError, ValueError, KeyError) as err:
        raise checks.UsageError(f"--resume: {path} is not a ranking figure2 wrote "
                                f"({err}); run figure2 without --resume") from None
    for name, flag in SETTING_FLAGS.items():
        if stored.get(name) != settings[name]:
            what = ("the network's file is not the same" if name == "model_sha256" else
                    "the folder's image files are not the same" if name == "files_sha256"
                    else f"{name} was {stored.get(name)!r}, now {settings[name]!r}")
            raise checks.UsageError(f"--resume: {flag} differs from the run that wrote "
                                    f"{path} ({what}); give the same flags, or run "
                                    f"without --resume to start again")
    paths = [str(p) for p in arrays["paths"]]
    shape = tuple(settings["shape"])
    tables = {layer: TopKTable(layer=layer, values=arrays[f"values_{layer}"],
                               indices=arrays[f"indices_{layer}"],
                               positions=arrays[f"positions_{layer}"],
                               n_images=len(paths), image_shape=shape, dtype=image_dtype)
              for layer in settings["layers"]}
    skipped = list(zip(map(str, arrays["skipped_path"]), map(str, arrays["skipped_reason"])))
    return Ranking(tables, int(arrays["files_read"]), paths, skipped,
                   int(arrays["batch_size"]))


def too_few_images(n_read, n_files, k):
    """The error of a ranking pass that read fewer images than ``k``."""
    return checks.RunError(f"--images: {n_read} of the {n_files} files could be read as "
                           f"images; --k {k} needs at least {k}")
