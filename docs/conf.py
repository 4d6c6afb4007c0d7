"""Sphinx configuration: the lessons rendered as a sphinx-gallery.

Build from the repository root with

    pip install -e ".[docs]"
    sphinx-build docs docs/_build/html

sphinx-gallery runs every ``lessons/NN_*.py`` (in file-name order, headless), and renders
its text cells, code, printed output and figures as one page per lesson.

Each lesson opens with ``# %% [markdown]`` followed by its module docstring (the title
and introduction).  sphinx-gallery needs the docstring and skips the comment above it;
jupytext reads a percent-format markdown cell written as a triple-quoted string, so
``jupytext --to ipynb`` makes the header a markdown cell too, and the file still runs as
a plain script.
"""

import os
import re
import sys
from pathlib import Path

import sphinx_gallery

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))                 # import minideconv from this checkout

# The lessons save their own PNGs too; keep those inside the (git-ignored) build folder.
# sphinx-gallery runs each lesson from lessons/, so the folder is given relative to it:
# the "saved ..." line a lesson prints then shows no absolute path of the build machine.
os.environ.setdefault("MINIDECONV_LESSON_OUTPUT",
                      os.path.relpath(DOCS / "_build" / "lesson_output", ROOT / "lessons"))
os.environ.setdefault("MPLBACKEND", "Agg")

project = "minideconv"
author = "the minideconv authors"
copyright = "the minideconv authors, MIT License"

extensions = ["sphinx_gallery.gen_gallery"]


def _file_name_order():
    """Lessons in file-name order.  sphinx-gallery ≥ 0.16 takes the sort key by name
    (which keeps the configuration picklable, so Sphinx can cache it); older versions
    need the class."""
    version = tuple(int(v) for v in re.findall(r"\d+", sphinx_gallery.__version__)[:2])
    if version >= (0, 16):
        return "sphinx_gallery.sorting.FileNameSortKey"
    from sphinx_gallery.sorting import FileNameSortKey
    return FileNameSortKey


sphinx_gallery_conf = {
    "examples_dirs": "../lessons",
    "gallery_dirs": "auto_lessons",
    # execute every lesson (the default runs only files named plot_*)
    "filename_pattern": re.escape(os.sep) + r"\d\d_\w+\.py$",
    "ignore_pattern": r"__init__\.py|_output",
    "within_subsection_order": _file_name_order(),
    "image_scrapers": ("matplotlib",),
    "capture_repr": (),      # show what a lesson prints, not the value of its last line
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "min_reported_time": 1,
    "first_notebook_cell": ("%matplotlib inline"),
}

# lessons/solutions/ (the exercises' solutions) is not part of the gallery: it has no
# README.txt (nor README.rst, GALLERY_HEADER.*), so sphinx-gallery makes no sub-gallery of
# it (tests/test_lessons.py keeps it so; ignore_pattern could not: recent sphinx-gallery
# matches it against file names only, and the solutions have their lessons' names).  Its
# check for duplicate example names does scan the folder, and would warn about names that
# are never rendered twice.
suppress_warnings = ["sphinx_gallery.duplicate_filename"]
templates_path = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_static_path = ["_static"]
html_title = "minideconv: the course"
html_theme = "alabaster"
html_theme_options = {
    "description": "Zeiler & Fergus's deconvnet from first principles",
    "page_width": "1180px",
    "body_max_width": "none",
}
