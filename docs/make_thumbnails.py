"""Regenerate the README's lesson thumbnails, ``docs/_static/thumbs/NN.png``.

Runs every lesson headless with its figures going to a temporary folder; each lesson
marks one figure as its thumbnail (``plots.save_lesson_figure(..., thumbnail="NN")``), which
``MINIDECONV_LESSON_THUMBNAILS=1`` makes it save there as ``thumb_NN.png``, 320 px
wide.  Usage, from the repository root:

    python docs/make_thumbnails.py            # all lessons
    python docs/make_thumbnails.py 03 07      # some
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THUMBS = ROOT / "docs" / "_static" / "thumbs"


def main(wanted) -> int:
    THUMBS.mkdir(parents=True, exist_ok=True)
    lessons = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
    status = 0
    for lesson in lessons:
        number = lesson.name[:2]
        if wanted and number not in wanted:
            continue
        with tempfile.TemporaryDirectory() as out:
            env = dict(os.environ, MPLBACKEND="Agg", MINIDECONV_LESSON_OUTPUT=out,
                       MINIDECONV_LESSON_THUMBNAILS="1")
            for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
                env.setdefault(variable, "1")      # see tests/test_lessons.py
            result = subprocess.run([sys.executable, str(lesson)], cwd=ROOT, env=env,
                                    capture_output=True, text=True)
            thumb = Path(out) / f"thumb_{number}.png"
            if result.returncode != 0 or not thumb.is_file():
                print(f"{lesson.name}: FAILED (exit {result.returncode})\n"
                      f"{result.stderr[-2000:]}")
                status = 1
                continue
            shutil.copyfile(thumb, THUMBS / f"{number}.png")
            print(f"{lesson.name} → {(THUMBS / f'{number}.png').relative_to(ROOT)}")
    return status


if __name__ == "__main__":
    sys.exit(main(set(sys.argv[1:])))
