"""The grading pipeline on a toy course and a hostile class (issue #6)."""

from __future__ import annotations

import csv
import json
import os
import zipfile

import nbformat
import pytest

import toy_course
from ag_helpers import TEST_LIMITS, make_toy_workspace, needs_os_sandbox, run_cli, weak_flag, write_submissions

SAMPLES = [
    "correct", "blank", "partly", "edited_test", "deleted_test", "duplicated_test", "stripped_metadata",
    "changed_points", "patch_torch", "patch_numpy", "patch_checks", "patch_chainrule", "rebind_names",
    "redefined_builtins", "infinite_loop", "stubborn_loop", "memory_bomb", "memory_bomb_in_test", "sys_exit",
    "os_exit", "killed_kernel", "kill_others", "output_flood", "stderr_write", "corrupt_json", "wrong_name",
    "missing_file", "reads_others", "changes_files", "other_kernel", "ipython_hook", "frame_peek", "forged_verdict",
    *toy_course.NATIVE, *toy_course.LINKED,
]


def test_the_sample_list_covers_every_sample(graded_toy, os_sandbox):
    _, samples, results = graded_toy
    graded = [s for s in SAMPLES if os_sandbox[0] is not None or s not in toy_course.NATIVE]
    assert sorted(samples) == sorted(graded)
    assert sorted(results) == sorted(graded), "every submission has a result: none lost"


@pytest.mark.parametrize("student", SAMPLES)
def test_hostile_sample_scored_or_flagged(graded_toy, os_sandbox, student):
    if student in toy_course.NATIVE:
        needs_os_sandbox(os_sandbox)
    ws, samples, results = graded_toy
    _, score, flagged, note = samples[student]
    r = results[student]
    detail = json.dumps({n: {"flags": nb["flags"], "cells": nb["cells"], "events": nb["events"]}
                         for n, nb in r["notebooks"].items()}, indent=1)[:3000]
    assert r["score"] == score, f"{student} ({note}): {detail}"
    assert r["flagged"] is flagged, f"{student} ({note}): {detail}"
    assert r["max_score"] == 6


# Each hostile sample and a phrase of the flag it must raise for the instructor.
FLAGGED_WITH = {
    "edited_test": "edited (restored",
    "deleted_test": "test_grad: deleted (added back)",
    "duplicated_test": "test_double: duplicated",
    "stripped_metadata": "metadata stripped",
    "changed_points": "points changed to 100",
    "patch_torch": "torch.allclose replaced",
    "patch_numpy": "numpy.allclose replaced",
    "patch_checks": "coursework.checks.assert_matches replaced",
    "patch_chainrule": "chainrule.Tensor replaced",
    "redefined_builtins": "builtins.abs replaced",
    "stubborn_loop": "ignored interrupts",
    "os_exit": "kernel died",
    "killed_kernel": "kernel died",
    "corrupt_json": "corrupt notebook JSON",
    "wrong_name": "wrong file name",
    "missing_file": "missing notebook",
    "other_kernel": "kernel 'ir' replaced",
    "forged_verdict": "forged",
    "output_flood": "output flood cut off",
    "symlink_to_source": "toy.ipynb is a symbolic link",
    "symlink_to_other": "toy.ipynb is a symbolic link",
    "hardlink_to_source": "toy.ipynb is a hard link",
}
NATIVE_FLAGGED_WITH = {
    "native_read": "native file access",
    "native_write": "native file access",
    "ctypes_libc": "ctypes/cffi",
    "proc_discovery": "native file access, links or /proc",
    "network": "threads/signals/processes/sockets",
    "fork_bomb": "exits or kills processes",
    "signals": "exits or kills processes",
    "fill_disk": "opens files",
    "fd_exhaustion": "native file access",
    "own_extension": "touches sys.modules",
    "segfault": "kernel died",
}


def test_specific_outcomes(graded_toy):
    ws, _, results = graded_toy

    def flags(s):
        return [f[1] for nb in results[s]["notebooks"].values() for f in nb["flags"]]

    def cells(s):
        return results[s]["notebooks"]["toy.ipynb"]["cells"]

    for student, phrase in FLAGGED_WITH.items():
        assert any(phrase in f for f in flags(student)), f"{student}: no flag says {phrase!r}: {flags(student)}"
    assert cells("infinite_loop")["test_square"]["status"] == "timeout"
    assert "frame introspection is not allowed" in cells("frame_peek")["test_square"]["error"]
    assert "Diagnosis: a reused layer counted once" in cells("partly")["test_square"]["error"]
    # the flood was cut off in bytes: the graded notebook stays small
    flood = os.path.getsize(ws.path("autograded", "output_flood", "toy", "toy.ipynb"))
    assert flood < 2 * 1024 * 1024


def _outputs_text(nb) -> str:
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            out.append(str(o.get("text", "")) + str(o.get("evalue", "")) + json.dumps(o.get("data", {})))
    return "\n".join(out)


def test_submission_cannot_read_gradebook_or_other_students(graded_toy):
    ws, _, _ = graded_toy
    nb = nbformat.read(ws.path("autograded", "reads_others", "toy", "toy.ipynb"), as_version=4)
    text = _outputs_text(nb)
    assert "stolen 0" in text
    assert text.count("blocked PermissionError") == 6   # 5 opens + the listing
    assert "SQLite format" not in text and toy_course.HIDDEN_MARKER not in text
    changer = _outputs_text(nbformat.read(ws.path("autograded", "changes_files", "toy", "toy.ipynb"), as_version=4))
    assert changer.count("blocked PermissionError") == 8 and "done" not in changer
    assert "its own folder is writable" in changer
    assert os.path.exists(ws.path("gradebook.db")) and not os.path.exists(ws.path("planted"))
    killer = _outputs_text(nbformat.read(ws.path("autograded", "kill_others", "toy", "toy.ipynb"), as_version=4))
    assert "refused: autograder sandbox: os.kill is not allowed" in killer


def test_the_operating_system_stops_what_the_audit_hook_cannot_see(graded_toy, os_sandbox, loopback_listener):
    """Native reads and writes, /proc, the network, processes, disk and descriptors (issue #16)."""
    needs_os_sandbox(os_sandbox)
    from autograder.grading.gradebook import check

    ws, samples, results = graded_toy

    def flags(s):
        return [f[1] for nb in results[s]["notebooks"].values() for f in nb["flags"]]

    def output(s):
        return _outputs_text(nbformat.read(ws.path("autograded", s, "toy", "toy.ipynb"), as_version=4))

    for student, phrase in NATIVE_FLAGGED_WITH.items():
        assert any(phrase in f for f in flags(student)), f"{student}: no flag says {phrase!r}: {flags(student)}"
    assert output("native_read").count("refused") == 12
    assert output("native_write").count("refused") == 4
    assert "refused ctypes PermissionError" in output("ctypes_libc")
    seen = output("proc_discovery")
    # its own pid namespace only: bubblewrap's init, the kernel and its threads; nothing of the grader
    assert "processes and files seen: [" in seen and "'pid 1'" in seen and seen.count("'pid ") < 64
    assert ws.root not in seen and "ag-private" not in seen and "/submitted" not in seen
    assert output("network").count("refused") == 4
    with pytest.raises(BlockingIOError):
        loopback_listener.accept()        # nothing reached the grader's loopback
    assert output("fork_bomb").count("refused PermissionError") == 3
    assert output("signals").count("refused") == 6
    fill = output("fill_disk")
    assert "stopped after" in fill and "OSError" in fill
    assert "descriptors exhausted after" in output("fd_exhaustion")
    assert output("own_extension").count("refused") == 2
    assert any("kernel died" in f for f in flags("segfault"))
    # the attacked files are intact: the gradebook opens, the other student's notebook is as sent
    check(ws, for_writing=True)
    with open(ws.path("submitted", "correct", "toy", "toy.ipynb"), "rb") as fh:
        assert fh.read() == samples["correct"][0]["toy.ipynb"]


def test_no_output_shows_a_hidden_test_a_solution_or_a_breach(graded_toy):
    ws, _, results = graded_toy
    for student, r in results.items():
        path = ws.path("autograded", student, "toy", "toy.ipynb")
        if not os.path.exists(path):
            continue
        text = _outputs_text(nbformat.read(path, as_version=4))
        for secret in (toy_course.HIDDEN_MARKER, toy_course.SOLUTION_MARKER, toy_course.BREACH, "SQLite format 3"):
            assert secret not in text, f"{student}: {secret!r} in an output"
    for student in toy_course.LINKED:
        assert not os.path.exists(ws.path("autograded", student, "toy", "toy.ipynb"))


def test_a_failed_test_shows_the_checks_message_not_the_guard(graded_toy):
    ws, _, _ = graded_toy
    nb = nbformat.read(ws.path("autograded", "partly", "toy", "toy.ipynb"), as_version=4)
    [error] = [o for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_square"
               for o in c.outputs if o.output_type == "error"]
    shown = "\n".join(error.traceback)
    assert error.ename == "CheckFailure" and "Diagnosis: a reused layer counted once" in error.evalue
    assert "expected" in shown and "Diagnosis" in shown
    for grader_text in ("audit(", "guard.py", "autograder-test", "Could not get source", "run_test"):
        assert grader_text not in shown, grader_text


def test_gradebook_matches_results_and_regrading_one_student(graded_toy, grading_sandbox):
    from nbgrader.api import Gradebook

    from autograder.grading.pipeline import autograde
    from autograder.grading.execute import Limits
    from autograder.grading.reports import gradebook_scores

    ws, samples, results = graded_toy
    scores = gradebook_scores(ws)
    assert len(scores) == len(results)
    for student, r in results.items():
        assert scores[(student, "toy")] == (r["score"], 6.0), student
    with Gradebook(ws.db_url) as gb:
        flagged = {s.student.id for s in gb.assignment_submissions("toy")
                   if any(nb.flagged for nb in s.notebooks)}
    assert flagged == {s for s, r in results.items() if r["flagged"]}
    again = autograde(ws, student="correct", workers=2, limits=Limits(**TEST_LIMITS), progress=lambda *a: None,
                      sandbox=grading_sandbox, force=True)
    assert autograde(ws, student="correct", limits=Limits(**TEST_LIMITS), progress=lambda *a: None,
                     sandbox=grading_sandbox) == []
    assert [(r["student"], r["score"]) for r in again] == [("correct", 6.0)]
    assert gradebook_scores(ws) == scores


def test_feedback_has_no_hidden_tests(graded_toy):
    from autograder.grading.feedback import generate

    ws, _, results = graded_toy
    withheld: list = []
    files = generate(ws, withheld=withheld)
    with_notebook = [s for s, r in results.items() if r["notebooks"]["toy.ipynb"]["file_used"]]
    assert len(files) == len(results) and withheld == []
    for path in files:
        body = open(path).read()
        assert toy_course.HIDDEN_MARKER not in body and toy_course.SOLUTION_MARKER not in body
        assert "BEGIN HIDDEN TESTS" not in body
    partly = open(ws.path("feedback", "partly", "toy", "toy.html")).read()
    # math is drawn offline (SVG), and the page loads no script from anywhere
    assert partly.count('class="math"') == 2 and "$f(x)" not in partly and "<code>$HOME</code>" in partly
    assert "<script src=" not in partly and "mathjax.js" not in partly.lower() and "import mermaid" not in partly
    # a failed test shows the check's message, not the guard's machinery
    assert "audit(" not in partly and "guard.py" not in partly and "Could not get source" not in partly
    assert "Score: 4 / 6" in partly
    assert "a reused layer counted once" in partly          # the diagnosis reaches the student
    assert "square([1, 2])" in partly                        # the visible test is shown
    # the instructor's autograded copy does keep the hidden tests
    full = open(ws.path("autograded", "partly", "toy", "toy.ipynb")).read()
    assert toy_course.HIDDEN_MARKER in full
    # missing_file and the links have no notebook graded
    assert len(with_notebook) == len(results) - 1 - len(toy_course.LINKED)


def test_export_csv_and_class_report(graded_toy):
    from autograder.grading.reports import class_report, export_csv

    ws, _, results = graded_toy
    grades, exercises = export_csv(ws)
    rows = list(csv.DictReader(open(grades)))
    assert len(rows) == len(results)
    by = {r["student_id"]: r for r in rows}
    assert by["correct"]["score"] == "6" and by["correct"]["flagged"] == "0"
    assert by["patch_torch"]["score"] == "3" and by["patch_torch"]["flagged"] == "1"
    ex = list(csv.DictReader(open(exercises)))
    assert len(ex) == 3 * len(results)
    data, text = class_report(ws)
    sq = next(e for e in data["exercises"] if e["exercise"] == "test_square")
    passed = sum(1 for r in results.values() if r["notebooks"]["toy.ipynb"]["cells"]["test_square"]["status"] == "pass")
    assert sq["full_marks"] == passed == 21 + sum(s in results for s in toy_course.NATIVE)
    assert sq["n"] == len(results)
    # square returning x is the "counted once" misconception: partly, edited_test, patch_checks,
    # rebind_names and forged_verdict all gave it
    assert data["diagnoses"] == {"reused_layer_counted_once": 5}
    assert sq["labels"]["reused_layer_counted_once"] == 5
    assert sq["labels"]["not answered"] == 1
    assert "| reused_layer_counted_once | 5 |" in text


def test_workspace_must_be_outside_the_repository():
    from autograder.grading.workspace import REPO_ROOT, Workspace, WorkspaceError

    with pytest.raises(WorkspaceError):
        Workspace.open(os.path.join(REPO_ROOT, "grading"), create=True)
    assert not os.path.exists(os.path.join(REPO_ROOT, "grading"))


def test_cli_build_lms_zip_and_single_student(tmp_path, os_sandbox):
    """The documented commands, end to end, on an LMS zip (SQLite, --workers 1)."""
    src = toy_course.write_source(str(tmp_path / "src"))
    ws = str(tmp_path / "ws")
    p = run_cli("build", "--workspace", ws, "--source", src)
    assert p.returncode == 0, p.stderr
    release = nbformat.read(os.path.join(ws, "release", "toy", "toy.ipynb"), as_version=4)
    good = nbformat.writes(toy_course.fill(release, toy_course.CORRECT)).encode()
    half = nbformat.writes(toy_course.fill(release, toy_course.answers(
        double_answer="def double(v):\n    return v"))).encode()
    z = tmp_path / "lms.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("alice_toy.ipynb", good)
        zf.writestr("bob_12345_toy (2).ipynb", half)
        zf.writestr("Carol Smith_777_assignsubmission_file_/toy.ipynb", good)
        zf.writestr("../../evil.ipynb", good)
    p = run_cli("collect", "--workspace", ws, "--zip", str(z), "--assignment", "toy")
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(os.path.join(ws, "submitted"))) == [".skipped-toy.txt", "Carol-Smith", "alice", "bob"]
    assert os.listdir(os.path.join(ws, "submitted", "bob", "toy")) == ["toy.ipynb"]
    assert not os.path.exists(tmp_path / "evil.ipynb")
    p = run_cli("autograde", "--workspace", ws, "--student", "bob", "--cell-timeout", "10", *weak_flag(os_sandbox))
    assert p.returncode == 0, p.stderr
    p = run_cli("table", "--workspace", ws)
    assert p.returncode == 0, p.stderr
    assert "bob" in p.stdout and "5 / 6" in p.stdout and "alice" not in p.stdout
    p = run_cli("autograde", "--workspace", ws, "--workers", "2", *weak_flag(os_sandbox))
    assert p.returncode == 0, p.stderr
    for cmd in ("feedback", "export", "report", "table"):
        p = run_cli(cmd, "--workspace", ws)
        assert p.returncode == 0, (cmd, p.stderr)
    rows = {r["student_id"]: r["score"] for r in csv.DictReader(open(os.path.join(ws, "reports", "grades.csv")))}
    assert rows == {"alice": "6", "bob": "5", "Carol-Smith": "6"}
    assert os.path.exists(os.path.join(ws, "feedback", "bob", "toy", "toy.html"))
    p = run_cli("build", "--workspace", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                     "..", "inside"), "--source", src)
    assert p.returncode == 2 and "outside the repository" in p.stderr


def test_postgresql_gradebook(postgres_url, tmp_path, grading_sandbox):
    """The same pipeline with the gradebook in a real PostgreSQL server on loopback."""
    from nbgrader.api import Gradebook

    from autograder.grading.collect import collect_folder
    from autograder.grading.execute import Limits
    from autograder.grading.pipeline import autograde
    from autograder.grading.reports import export_csv

    ws, release = make_toy_workspace(str(tmp_path / "ws"), db_url=postgres_url)
    assert ws.db_url.startswith("postgresql+psycopg2://")
    assert not os.path.exists(ws.path("gradebook.db"))
    samples = toy_course.submissions(release, ws.root)
    chosen = ["correct", "partly", "patch_torch", "deleted_test"]
    collect_folder(ws, write_submissions(str(tmp_path / "in"), samples, only=chosen))
    results = autograde(ws, workers=2, limits=Limits(**TEST_LIMITS), progress=lambda *a: None,
                        sandbox=grading_sandbox)
    assert {r["student"]: r["score"] for r in results} == {"correct": 6, "partly": 4, "patch_torch": 3,
                                                          "deleted_test": 6}
    with Gradebook(ws.db_url) as gb:
        got = {s.student.id: (s.score, s.max_score) for s in gb.assignment_submissions("toy")}
        assert gb.find_grade("test_grad", "toy", "toy", "patch_torch").auto_score == 0.0
        assert gb.find_grade("test_square", "toy", "toy", "patch_torch").auto_score == 2.0
    assert got == {"correct": (6, 6), "partly": (4, 6), "patch_torch": (3, 6), "deleted_test": (6, 6)}
    grades, _ = export_csv(ws)
    assert {r["student_id"]: r["score"] for r in csv.DictReader(open(grades))} == {
        "correct": "6", "partly": "4", "patch_torch": "3", "deleted_test": "6"}
