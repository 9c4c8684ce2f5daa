"""The five lessons: structure of the sources, nbgrader validation, the release, timings.

* every solution notebook passes ``nbgrader validate``;
* every released notebook fails every graded test (``nbgrader validate --invert``);
* ``course/`` and the solution notebooks are up to date with the jupytext scripts;
* every solution notebook runs top to bottom without errors and without anything on stderr;
  the time each takes is measured and reported (not asserted: machines differ).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("course_release", ROOT / "autograder" / "release.py")
release = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = release   # its dataclasses look their module up there
_spec.loader.exec_module(release)

LESSONS = release.lessons()
SOURCE = {lesson: ROOT / "solutions" / lesson / f"{lesson}.ipynb" for lesson in LESSONS}
RELEASED = {lesson: ROOT / "course" / lesson / f"{lesson}.ipynb" for lesson in LESSONS}
# The Simplified Chinese edition: released beside the English one; its solution notebook is built
# (from the English notebook and the lesson's translation) into a scratch folder for the tests.
RELEASED_ZH = {lesson: ROOT / "course" / lesson / f"{lesson}.zh-CN.ipynb" for lesson in LESSONS}
ENV = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           PYTHONWARNINGS="ignore")

ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.slow


def report(request, line: str) -> None:
    """Write a line to the terminal even when output is captured."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:  # pragma: no cover
        print(line)


def nbgrader_cells(path: Path):
    nb = nbformat.read(path, as_version=4)
    return nb, [c for c in nb.cells if "nbgrader" in c.metadata]


# ----------------------------------------------------------------------------- the sources


def test_five_lessons_in_order():
    assert LESSONS == ["01_chain_rule", "02_vector_seeds", "03_layer_reuse",
                       "04_per_sample_gradients", "05_per_loss_gradients"]


def test_grade_ids_unique_and_schema_current():
    seen = set()
    for lesson in LESSONS:
        _, cells = nbgrader_cells(SOURCE[lesson])
        for cell in cells:
            meta = cell.metadata["nbgrader"]
            assert meta["schema_version"] == 3, (lesson, meta)
            assert meta["grade_id"] not in seen, f"duplicate grade_id {meta['grade_id']}"
            assert meta["grade_id"].startswith(f"l{int(lesson[:2])}_"), meta["grade_id"]
            seen.add(meta["grade_id"])
            if meta["grade"]:
                assert meta["points"] > 0 and meta["locked"], meta


@pytest.mark.parametrize("lesson", LESSONS)
def test_each_lesson_has_three_kinds_of_graded_exercises(lesson):
    nb, cells = nbgrader_cells(SOURCE[lesson])
    tests = [c for c in cells if c.metadata["nbgrader"]["grade"]]
    solutions = [c for c in cells if c.metadata["nbgrader"]["solution"]]
    assert len(tests) >= 3 and len(solutions) >= 3
    for cell in tests:
        assert cell.cell_type == "code"
        assert "from coursework import checks" in cell.source  # the one place of checks
        assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source
        visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
        assert "checks.check_" in visible, "every test cell has visible tests"
    # every solution cell is followed (directly) by its test cell
    index = {id(c): i for i, c in enumerate(nb.cells)}
    for cell in solutions:
        after = nb.cells[index[id(cell)] + 1]
        assert after.metadata.get("nbgrader", {}).get("grade"), cell.metadata["nbgrader"]["grade_id"]
    text = "\n".join(c.source for c in nb.cells)
    for kind in ("derivation by hand", "(mechanism)", "(API)"):
        assert kind in text, f"{lesson}: no exercise of kind {kind}"
    assert "inspect.getsource" in text, "a look inside chainrule"
    assert "common mistake" in text.lower()


WIDGETS = {"01_chain_rule": "lesson1_graph", "02_vector_seeds": "lesson2_seeds", "03_layer_reuse": "lesson3_reuse",
           "04_per_sample_gradients": "lesson4_per_sample", "05_per_loss_gradients": "lesson5_loss_weights"}


@pytest.mark.parametrize("lesson", LESSONS)
def test_each_lesson_shows_its_widget(lesson):
    """The lesson's widget in an ordinary (ungraded) code cell, after a sentence saying what to try."""
    nb = nbformat.read(SOURCE[lesson], 4)
    assert not any("Widget:" in c.source for c in nb.cells if c.cell_type == "markdown"), "a placeholder is left"
    call = f"{WIDGETS[lesson]}()"
    cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and call in c.source]
    assert len(cells) == 1, f"{lesson}: one cell calls {call}"
    i = cells[0]
    assert "nbgrader" not in nb.cells[i].metadata
    assert nb.cells[i].source.rstrip().endswith(call), "the panel is the cell's value, so it is displayed"
    assert nb.cells[i - 1].cell_type == "markdown" and nb.cells[i - 1].source.startswith("**Try it.**")
    # before the exercises: a student's Run All stops at the first unanswered exercise
    first_exercise = min(j for j, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution"))
    assert i < first_exercise
    if lesson in ("01_chain_rule", "03_layer_reuse"):
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "side_by_side(" in text and "draw_graph(" in text and "names=" in text


# ----------------------------------------------------------------------------- release up to date


def test_release_is_up_to_date():
    proc = subprocess.run([sys.executable, "-m", "autograder.release", "--check"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("edition", ["en", "zh-CN"])
@pytest.mark.parametrize("lesson", LESSONS)
def test_release_hides_solutions_and_locks_tests(lesson, edition):
    nb, cells = nbgrader_cells(RELEASED[lesson] if edition == "en" else RELEASED_ZH[lesson])
    text = json.dumps(nb)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text
    for cell in cells:
        meta = cell.metadata["nbgrader"]
        if meta["grade"]:
            assert meta["locked"] and cell.metadata.get("editable") is False
            assert cell.metadata.get("deletable") is False
            assert "checksum" in meta
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    # nothing but the two editions is released (no jupytext script holding the solutions, no translation file)
    assert sorted(p.name for p in (ROOT / "course" / lesson).iterdir()) == [f"{lesson}.ipynb",
                                                                           f"{lesson}.zh-CN.ipynb"]


# ----------------------------------------------------------------------------- nbgrader validate


def _validate(path: Path, invert: bool) -> str:
    cmd = [sys.executable, "-m", "nbgrader", "validate", str(path)] + (["--invert"] if invert else [])
    proc = subprocess.run(cmd, cwd=path.parent, env=ENV, capture_output=True, text=True, timeout=600)
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def chinese_solutions(tmp_path_factory):
    """The Chinese edition's solution notebooks, as the release builds them, under their release names."""
    folder = tmp_path_factory.mktemp("zh-CN-solutions")
    paths = {}
    for lesson in LESSONS:
        text, _ = release.translated_notebook(lesson, "zh-CN")
        paths[lesson] = folder / lesson / f"{lesson}.zh-CN.ipynb"
        paths[lesson].parent.mkdir()
        paths[lesson].write_text(text)
    return paths


@pytest.fixture(scope="module")
def validations(chinese_solutions):
    """All twenty validations (two editions), run two at a time (they are independent kernels)."""
    jobs = {("solution", lesson): (SOURCE[lesson], False) for lesson in LESSONS}
    jobs.update({("release", lesson): (RELEASED[lesson], True) for lesson in LESSONS})
    jobs.update({("solution zh-CN", lesson): (chinese_solutions[lesson], False) for lesson in LESSONS})
    jobs.update({("release zh-CN", lesson): (RELEASED_ZH[lesson], True) for lesson in LESSONS})
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(_validate, *args) for key, args in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


@pytest.mark.parametrize("edition", ["", " zh-CN"])
@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_passes_nbgrader_validate(validations, lesson, edition):
    out = validations[("solution" + edition, lesson)]
    assert "Success! Your notebook passes all the tests." in out, out[-4000:]


@pytest.mark.parametrize("edition", ["", " zh-CN"])
@pytest.mark.parametrize("lesson", LESSONS)
def test_release_fails_every_test(validations, lesson, edition):
    out = validations[("release" + edition, lesson)]
    assert "Success! The notebook does not pass any tests." in out, out[-4000:]


@pytest.fixture(scope="module")
def blank_runs():
    """Every blank release, both editions, run top to bottom as a student's Run All would (errors kept)."""
    from nbclient import NotebookClient

    runs = {}
    for lesson in LESSONS:
        for edition, path in (("en", RELEASED[lesson]), ("zh-CN", RELEASED_ZH[lesson])):
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            runs[(lesson, edition)] = nb
    return runs


CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("edition", ["en", "zh-CN"])
@pytest.mark.parametrize("lesson", LESSONS)
def test_blank_release_fails_every_test_with_messages_in_its_language(blank_runs, lesson, edition):
    """Each graded test of a blank notebook fails, and says so in the notebook's language, as its
    message alone: no traceback through coursework.checks."""
    nb = blank_runs[(lesson, edition)]
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(tests) >= 3
    for cell in tests:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        gid = cell.metadata["nbgrader"]["grade_id"]
        assert errors, f"{gid} passed in the blank release"
        text = ANSI.sub("", "\n".join(errors[0].traceback))
        assert errors[0].ename == "CheckFailure", (gid, text)
        assert "Traceback" not in text and "checks/" not in text, text
        assert bool(CJK.search(text)) == (edition == "zh-CN"), (gid, text)


# ----------------------------------------------------------------------------- execution, timings


@pytest.fixture(scope="module")
def executed():
    """Each solution notebook run top to bottom, one after the other, with its wall time."""
    from nbclient import NotebookClient

    results = {}
    for lesson in LESSONS:
        nb = nbformat.read(SOURCE[lesson], as_version=4)
        client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(SOURCE[lesson].parent)}})
        start = time.perf_counter()
        client.execute()
        results[lesson] = (nb, time.perf_counter() - start)
    return results


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_runs_clean(executed, lesson):
    nb, _ = executed[lesson]
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i}: {out.ename}: {out.evalue[:300]}")
            if out.output_type == "stream" and out.name == "stderr":
                problems.append(f"cell {i} wrote to stderr: {out.text[:300]}")
    assert not problems, "\n".join(problems)


def test_report_timings(executed, request):
    total = sum(t for _, t in executed.values())
    lines = [f"{lesson}: {t:5.1f} s" for lesson, (_, t) in executed.items()]
    report(request, "\nsolution notebooks, top to bottom (kernel start included): "
           + "; ".join(lines) + f"; total {total:.1f} s (targets: < 20 s each, < 60 s in all)")
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "notebook_timings.txt").write_text("\n".join(lines + [f"total: {total:.1f} s"]) + "\n")
