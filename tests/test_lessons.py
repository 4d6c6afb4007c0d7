"""Every lesson runs headless, start to finish, and saves its figures; every lesson ends
with exercises, and every exercise has a solution that runs and asserts its answers.

Each lesson asserts its own key claims (max |WᵀWx − x| > 0, lsqr error ≪ transpose error,
the all-pass round trip exact, pool-then-unpool ≠ identity, ...), so a lesson whose
argument stops being true fails here.  One subprocess per lesson, as a student runs it:
``python lessons/NN_name.py``, with the Agg backend and the figures written to a
temporary folder (``MINIDECONV_LESSON_OUTPUT``).

The last cell of every lesson is a markdown cell titled "Exercises" with two or three
numbered exercises.  Their solutions are ``lessons/solutions/NN_name.py``, with the
lesson's own file name: scripts that compute each answer and assert it against an
independent computation (a brute-force count, finite differences, a dense SVD, ...).
They run here the same way as the lessons, one subprocess each, and must exit 0.

BLAS and OpenMP run single-threaded in the lessons and solutions (unless the
environment says otherwise): the tests run beside other test files on 2 cores, and
oversubscribed OpenBLAS threads made the trained network's forward pass over 500 images
take 15 s instead of 0.4 s on such a machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("[0-9][0-9]_*.py"))
SOLUTIONS = sorted((REPO / "lessons" / "solutions").glob("[0-9][0-9]_*.py"))
COURSE = range(1, 15)          # lessons 01–14
PRINTED: dict = {}             # script path -> its stdout, kept for the synthesis test


def _run_as_a_student(script: Path, output: Path) -> subprocess.CompletedProcess:
    """``python script`` from the repository root, headless, single-threaded BLAS,
    figures (if any) written to ``output``; its stdout is kept in ``PRINTED``."""
    env = dict(os.environ, MPLBACKEND="Agg", MINIDECONV_LESSON_OUTPUT=str(output))
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env.setdefault(variable, "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, check=False,
                            capture_output=True, text=True, timeout=300)
    if result.returncode == 0:
        PRINTED[script] = result.stdout
    return result


def _assert_exit_0(script: Path, result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n"
        f"--- stdout (end) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-3000:]}")


def _cells(path: Path) -> list[list[str]]:
    """The jupytext percent-format cells of a script: each a list of lines, starting
    with its ``# %%`` marker (text before the first marker is left out)."""
    cells: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            cells.append([line])
        elif cells:
            cells[-1].append(line)
    return cells


def test_the_course_is_complete():
    numbers = [int(path.name[:2]) for path in LESSONS]
    assert numbers == list(COURSE), [path.name for path in LESSONS]
    lessons = {path.name for path in LESSONS}
    solutions = {path.name for path in SOLUTIONS}
    assert lessons <= solutions, f"lessons without a solution: {sorted(lessons - solutions)}"
    assert solutions <= lessons, f"solutions without a lesson: {sorted(solutions - lessons)}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_lesson_runs_and_saves_figures(lesson, tmp_path):
    result = _run_as_a_student(lesson, tmp_path)
    _assert_exit_0(lesson, result)
    figures = [p for p in tmp_path.glob("*.png") if not p.name.startswith("thumb_")]
    assert figures, f"{lesson.name} saved no figure in {tmp_path}"
    assert all(p.stat().st_size > 1000 for p in figures), \
        [(p.name, p.stat().st_size) for p in figures]


@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_lesson_ends_with_exercises_and_has_a_solution(lesson):
    cells = _cells(lesson)
    assert cells, f"{lesson.name} has no '# %%' cells"
    last = cells[-1]
    assert last[0].strip() == "# %% [markdown]", \
        f"{lesson.name}: the last cell is not a markdown cell: {last[0]!r}"
    text = [line for line in last[1:] if line.strip()]
    assert all(line.startswith("#") for line in text), \
        f"{lesson.name}: the last cell holds code: {[t for t in text if t[0] != '#']}"
    assert len(text) > 2 and text[0] == "# Exercises" and re.fullmatch(r"# -{9,}", text[1]), \
        f"{lesson.name}: the last cell is not titled 'Exercises': {text[:2]}"
    numbered = [line for line in text if re.match(r"# \d+\. ", line)]
    assert 2 <= len(numbered) <= 3, \
        f"{lesson.name}: {len(numbered)} numbered exercises, expected two or three"
    solution = REPO / "lessons" / "solutions" / lesson.name
    assert solution.is_file(), f"{lesson.name} has no solution script {solution}"


def test_the_solutions_stay_out_of_the_gallery():
    """sphinx-gallery (docs/conf.py) renders a subfolder of lessons/ as a sub-gallery
    when it holds a gallery header (README.txt, README.rst, GALLERY_HEADER.rst, ...);
    the solutions are meant to be run, not rendered, so lessons/solutions/ has none."""
    headers = [path.name for path in (REPO / "lessons" / "solutions").iterdir()
               if path.stem.lower() in ("readme", "gallery_header")]
    assert not headers, f"lessons/solutions/ would become a sub-gallery: {headers}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[path.stem for path in SOLUTIONS])
def test_solution_runs_and_its_assertions_hold(solution, tmp_path):
    result = _run_as_a_student(solution, tmp_path)
    _assert_exit_0(solution, result)
    assert result.stdout.strip(), f"{solution.name} printed nothing"


# --------------------------------------------------------------------------- the synthesis

# Every number the seed question's answer quotes (README "The question, answered" and the
# synthesis at the end of lesson 11), beside the line of the lesson that measures it:
# (script, pattern whose group is the printed number, quoted value, tolerance, quoted
# text).  The tolerance is one unit of the quoted last digit; numbers at rounding level
# are quoted as a bound ("below 10⁻¹⁵"), since their digits change with the BLAS kernels.
# The text, where given, must stand in both syntheses, so neither can drift from the other.
BELOW = "below"
SYNTHESIS = [
    ("02", r"max \|ct\(c\(i\)\) − i\| = ([\d.]+)", 0.77, 0.01, "0.77"),
    ("02", r"relative error ‖WᵀWx − x‖ / ‖x‖ = ([\d.]+)", 2.44, 0.01, "2.44"),
    ("02", r"best rescaling .* relative error of ([\d.]+)", 0.28, 0.01, "0.28"),
    ("02", r"null space has dimension 100 − 81 = (\d+)", 19, 0, "19-dimensional"),
    ("03", r"Haar bank, .*‖WᵀW − I‖_F = (\S+)", 1e-14, BELOW, "below 10⁻¹⁴"),
    ("03", r"all-pass: \|K.*‖WᵀW − I‖_F = (\S+)", 1e-14, BELOW, "below 10⁻¹⁴"),
    ("03", r"condition number σ_max/σ_min = (\d+)", 163, 0, "163"),
    ("04", r"relative difference (\S+)", 1e-15, BELOW, "below 10⁻¹⁵"),
    ("04", r"max \|x\.grad − ConvTranspose2d\(r\)\| += (\S+)", 0.0, 0, None),
    ("03", r"‖P_null x‖ / ‖x‖ = ([\d.]+) of the norm", 0.177, 0.001, "0.177 of its norm"),
    ("03", r"‖P_null x‖² / ‖x‖² = ([\d.]+)% of the energy", 3.1, 0.1, "3.1 % of its energy"),
    ("05", r"pool then unpool keeps (\d+) of 16 values", 4, 0, "4 of 16"),
    ("06", r"→ (\d+) values reach R₁ under every rule", 12, 0, None),
    ("06", r"backprop passes (\d+) ", 11, 0, None),
    ("06", r"backprop passes \d+ \((\d+) negative\)", 4, 0, None),
    ("06", r"the deconvnet (\d+), guided", 8, 0, None),
    ("06", r"the deconvnet \d+, guided (\d+)", 7, 0, None),
    ("solutions/07", r"deconvnet: max \|⟨projection, v⟩ − a·∂a/∂v\| .* = (\S+)", 0.54, 0.01,
     "54 %"),
    ("07", r"deconvnet / guided: .* median ([\d.]+)", 0.98, 0.01, "0.98"),
    ("07", r"deconvnet / backprop: .* median ([\d.]+)", 0.79, 0.01, None),
    ("08", r"worst relative error (\S+)", 1e-15, BELOW, "below 10⁻¹⁵"),
    ("09", r"^ +deconvnet +\+1\.00 +([+-][\d.]+)", 0.61, 0.01, "0.61"),
    ("09", r"^ +guided +\+1\.00 +([+-][\d.]+)", 0.73, 0.01, "0.73"),
    ("09", r"^ +backprop +\+1\.00 +([+-][\d.]+)", -0.08, 0.01, "−0.08"),
    ("09", r"^ +deconvnet +\+1\.00 +[+-][\d.]+ +[+-][\d.]+ +([+-][\d.]+)", 0.01, 0.01,
     "leaves 0.01"),
    ("09", r"^deconvnet: only this layer redrawn .*\[[\d.+-]+ +[\d.+-]+ +([\d.+-]+)\]", 0.11,
     0.01, "alone 0.11"),
    ("09", r"deconvnet: own map vs swapped, median over 16 pairs: signed ([+-][\d.]+)",
     0.09, 0.01, "switches 0.09"),
    ("09", r"partner's switches at layer\(s\) \(2,\), .* own map ([+-][\d.]+)", 0.36, 0.01,
     "0.36 (after layer 2)"),
    ("09", r"partner's switches at layer\(s\) \(5,\), .* own map ([+-][\d.]+)", 0.45, 0.01,
     "0.45 (after layer 5)"),
    ("09", r"partner's switches at layer\(s\) \(2, 5\), .* own map ([+-][\d.]+)", 0.09, 0.01,
     None),
    ("09", r"first partner: .*\n +deconvnet: .* vs the partner image ([+-][\d.]+)", 0.14, 0.01,
     "(+0.14)"),
    ("09", r"first partner: .*\n +deconvnet: .* vs the image ([+-][\d.]+)", -0.01, 0.01,
     "(−0.01)"),
    ("09", r"deconvnet: map vs image, median rank correlation: trained ([+-][\d.]+)", 0.29,
     0.01, "0.29 and 0.35"),
    ("09", r"guided   : map vs image, median rank correlation: trained ([+-][\d.]+)", 0.35,
     0.01, "0.29 and 0.35"),
    ("09", r"backprop : map vs image, median rank correlation: trained ([+-][\d.]+)", 0.07,
     0.01, "0.07 and 0.02"),
    ("09", r"deconvnet: map vs image, .* in the whole network ([+-][\d.]+)", 0.27, 0.01,
     "0.27 and 0.34"),
    ("09", r"guided   : map vs image, .* in the whole network ([+-][\d.]+)", 0.34, 0.01,
     "0.27 and 0.34"),
    ("09", r"backprop : map vs image, .* in the whole network ([+-][\d.]+)", 0.02, 0.01,
     "0.07 and 0.02"),
    ("10", r"trained network: median share of \|r₀\| pasted with the sign of z: deconvnet "
           r"([\d.]+)", 0.70, 0.01, "the deconvnet 0.70"),
    ("10", r"trained network: median share .* guided ([\d.]+)", 1.0, 0, "(share 1.00)"),
    ("10", r"trained network: median share .* backprop ([\d.]+)", 0.53, 0.01,
     "gradient 0.53"),
    ("10", r"deconvnet: likeness with the image [+-][\d.]+ trained, ([+-][\d.]+) with only",
     0.02, 0.01, "on the way back only: 0.02"),
    ("10", r"random network without +: median likeness with the image deconvnet "
           r"([+-][\d.]+)", 0.02, 0.01, "max-pools: 0.02"),
    ("10", r"top class vs runner-up, .* guided ([\d.]+)", 0.92, 0.01, "correlate at 0.92"),
    ("11", r"least squares \(LSQR\): +‖x̂ − x₀‖/‖x₀‖ = ([\d.]+)%", 0.86, 0.01, "0.86 %"),
    ("11", r"feature inversion \(L-BFGS-B\): ‖x̂ − x₀‖/‖x₀‖ = ([\d.]+)%", 0.75, 0.01,
     "0.75 %"),
    ("11", r"first-layer units on at x₀: (\d+) of", 2273, 0, "2 273 of 12 544"),
    ("11", r"first-layer units on at x₀: \d+ of (\d+)", 12544, 0, "2 273 of 12 544"),
    ("11", r"first-layer units on at x₀: .*, for (\d+) pixels", 3072, 0, "3 072 pixels"),
    ("11", r"null space has dimension ≥ (\d+)", 799, 0, "at least 799"),
    ("11", r"‖v‖/‖x₀‖ = ([\d.]+)%", 5.0, 0.05, "5.0 % of ‖x₀‖"),
    ("11", r"‖Φ\(x₀ \+ v\) − Φ\(x₀\)‖/‖Φ\(x₀\)‖: layer 1: (\S+),", 1e-15, BELOW,
     "below 10⁻¹⁵"),
    ("11", r"‖Φ\(x₀ \+ v\) − Φ\(x₀\)‖/‖Φ\(x₀\)‖: .* layer 9: (\S+)$", 1e-15, BELOW, None),
    ("solutions/11", r"the two pre-images lie (\d+)% of ‖x₀‖ apart", 54, 1, "54 %"),
    ("solutions/11", r"layer 5, seeds 0 and 1: feature errors ([\d.]+)%", 7, 1, "7 and 15 %"),
    ("solutions/11", r"layer 5, seeds 0 and 1: feature errors [\d.]+%, ([\d.]+)%", 15, 1,
     "7 and 15 %"),
]


def _script(name: str) -> Path:
    folder, _, number = name.rpartition("/")
    (path,) = (REPO / "lessons" / folder).glob(f"{number}_*.py")
    return path


def synthesis_texts():
    """The two syntheses as running text: README's section, and lesson 11's cell.

    The README's section runs from its heading "The question, answered" (any level) to
    the next heading of the same or a higher level outside a code block, or to the end."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    heading = [i for i, line in enumerate(lines)
               if re.fullmatch(r"(#+) The question, answered\s*", line)]
    assert len(heading) == 1, "README.md needs one heading 'The question, answered'"
    start = heading[0]
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end, fenced = len(lines), False
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", lines[i]):
            end = i
            break
    section = "\n".join(lines[start:end])
    lesson = _script("11").read_text(encoding="utf-8")
    cell = lesson[lesson.index("# Synthesis: the seed question"):]
    cell = cell[:cell.index("# %%")]
    cell = "\n".join(line.lstrip("#") for line in cell.splitlines())
    return {"README.md": " ".join(section.split()), "lesson 11": " ".join(cell.split())}


def check_quote(printed: str, pattern: str, value, tolerance) -> str:
    """'' if the number ``pattern`` finds in ``printed`` is what the synthesis says, else
    what is wrong."""
    match = re.search(pattern, printed, flags=re.MULTILINE)
    if match is None:
        return f"the lesson no longer prints /{pattern}/"
    measured = float(match.group(1))
    if tolerance == BELOW:
        return "" if abs(measured) < value else f"printed {measured:g}, quoted below {value:g}"
    return "" if abs(measured - value) <= tolerance + 1e-12 else \
        f"printed {measured:g}, quoted {value:g} ± {tolerance:g}"


#: whether this interpreter has PyTorch: without it a lesson skips its torch snippets
#: (and says so), and the numbers they measure cannot be checked here
HAS_TORCH = find_spec("torch") is not None


@pytest.mark.parametrize("name, pattern, value, tolerance, text", SYNTHESIS,
                         ids=[f"{row[0]}: {row[4] or row[1][:30]}" for row in SYNTHESIS])
def test_the_synthesis_quotes_what_the_lessons_print(name, pattern, value, tolerance, text,
                                                     tmp_path):
    script = _script(name)
    if script not in PRINTED:        # run alone (-k): run the lesson here
        _assert_exit_0(script, _run_as_a_student(script, tmp_path))
    printed = PRINTED[script]
    problem = check_quote(printed, pattern, value, tolerance)
    if problem and not HAS_TORCH and re.search(pattern, printed, re.M) is None:
        pytest.skip(f"lesson {name} measures this with PyTorch, which is not installed")
    wrong = [f"{name}: {problem}"] if problem else []
    for where, synthesis in synthesis_texts().items():
        if text is not None and text not in synthesis:
            wrong.append(f"{where} does not quote {text!r} (from {name})")
    assert wrong == []


def test_the_quote_check_catches_a_drifted_number():
    printed = "max |ct(c(i)) − i| = 0.770\nworst relative error 3.98e-16\n"
    pattern = SYNTHESIS[0][1]
    assert check_quote(printed, pattern, 0.77, 0.01) == ""
    assert "quoted 0.74" in check_quote(printed, pattern, 0.74, 0.01)
    assert "no longer prints" in check_quote("", pattern, 0.77, 0.01)
    assert check_quote(printed, r"worst relative error (\S+)", 1e-15, BELOW) == ""
    assert "below" in check_quote(printed, r"worst relative error (\S+)", 1e-16, BELOW)
