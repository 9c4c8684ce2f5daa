"""The instructor's commands on bad input and after stock nbgrader: one line, a non-zero exit,
nothing half-made, and never a silent "nothing to do"."""

from __future__ import annotations

import io
import os

import nbformat
import pytest

from ag_helpers import TEST_LIMITS, make_toy_workspace, write_submissions
import toy_course
from autograder.__main__ import main
from autograder.grading import reports
from autograder.grading.collect import collect_folder
from autograder.grading.execute import Execution, Limits
from autograder.grading.pipeline import _stopped_answer_cells, autograde
from autograder.grading.progress import Progress
from autograder.grading.workspace import WorkspaceError, nbgrader


def test_build_with_an_unknown_assignment_makes_no_workspace(tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["build", "--no-release", "--workspace", str(ws), "-a", "99_nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown assignment(s) '99_nope'; known in ") and "01_chain_rule" in err
    assert "Traceback" not in err and not ws.exists()


def test_build_from_a_missing_source_folder_is_one_line(tmp_path, capsys):
    assert main(["build", "--workspace", str(tmp_path / "ws"), "--source", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no such source folder: {tmp_path / 'nowhere'}"
    assert not (tmp_path / "ws").exists()


def test_collect_from_a_missing_folder_is_one_line(tmp_path, capsys):
    ws = tmp_path / "ws"
    os.makedirs(ws / "source" / "chain")
    (ws / "autograder.json").write_text("{}")
    assert main(["collect", "--workspace", str(ws), "--from", str(tmp_path / "gone")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no such folder: {tmp_path / 'gone'}"


def test_stopped_answer_cells_are_named_and_blamed_for_the_tests_after_them():
    cell = nbformat.v4.new_code_cell

    def with_error(c, ename):
        c.outputs = [nbformat.v4.new_output("error", ename=ename, evalue="", traceback=[])]
        return c

    nb = nbformat.v4.new_notebook()
    nb.cells = [cell(metadata={"autograder": {"grade_id": "test_before"}}),
                with_error(cell(metadata={"autograder": {"solution_id": "slow_answer"}}), "CellTimeoutError"),
                cell(metadata={"autograder": {"grade_id": "test_a"}}),
                with_error(cell(metadata={"autograder": {"solution_id": "big_answer"}}), "MemoryError"),
                with_error(cell(metadata={"autograder": {"grade_id": "test_b"}}), "NameError")]
    stopped = _stopped_answer_cells(Execution(notebook=nb))
    assert [(msg.split(" ")[2], after) for msg, after in stopped] == [
        ("'slow_answer'", ["test_a", "test_b"]), ("'big_answer'", ["test_b"])]
    assert "did not finish within the cell time limit" in stopped[0][0]
    assert "ran out of memory" in stopped[1][0]
    label = reports.classify({"status": "fail", "error": "NameError: name 'f' is not defined",
                              "cause": stopped[1][0]}, {})
    assert label == "answer cell stopped: out of memory"


def test_plain_progress_lines_count_and_estimate():
    lines = []
    shown = Progress(3, lines.append, stream=io.StringIO())
    for student in ("ann", "ben", "cy"):
        shown.done(f" {student}")
    assert [line.split(" ")[0] for line in lines] == ["[1/3]", "[2/3]", "[3/3]"]
    assert "ETA 0m00s" in lines[0] and "ETA" not in lines[-1]


@pytest.fixture(scope="module")
def toy_ws(tmp_path_factory):
    ws, release = make_toy_workspace(str(tmp_path_factory.mktemp("cli") / "ws"))
    samples = {s: v for s, v in toy_course.submissions(release, ws.root).items() if s in ("correct", "partly")}
    collect_folder(ws, write_submissions(str(tmp_path_factory.mktemp("in")), samples), report=lambda _: None)
    return ws


def test_several_students_are_all_graded_and_a_misspelt_one_is_an_error(toy_ws, capsys):
    assert main(["autograde", "--workspace", toy_ws.root, "-s", "correct", "-s", "parlty"]) == 2
    assert "no submissions from student 'parlty'" in capsys.readouterr().err
    graded = autograde(toy_ws, student=["correct", "partly"], limits=Limits(**TEST_LIMITS),
                       progress=lambda _: None)
    assert sorted(r["student"] for r in graded) == ["correct", "partly"]


def test_feedback_and_report_after_stock_nbgrader_say_why_not(tmp_path_factory, capsys):
    ws, release = make_toy_workspace(str(tmp_path_factory.mktemp("stock") / "ws"))
    samples = {s: v for s, v in toy_course.submissions(release, ws.root).items() if s == "correct"}
    collect_folder(ws, write_submissions(str(tmp_path_factory.mktemp("in")), samples), report=lambda _: None)
    nbgrader(ws, "autograde", "toy", "--force")
    assert reports.gradebook_scores(ws)  # stock nbgrader did grade: the scores are in the gradebook
    for command in ("feedback", "report"):
        assert main([command, "--workspace", ws.root]) == 2, command
        err = capsys.readouterr().err
        assert "stock `nbgrader autograde`" in err and "run `python -m autograder autograde`" in err, err
    assert not os.path.isdir(ws.path("feedback"))
    with pytest.raises(WorkspaceError):
        reports.class_report(ws)
