"""A kernel that fails to start is the grader's failure: retried, else a flagged grader error, never a 0.

Seen in ``make demo`` with two workers: both kernels raced for a ZMQ port, the loser died
before kernel_info ("Address already in use") and a correct lesson scored 0/7.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager

import toy_course
from ag_helpers import TEST_LIMITS, make_toy_workspace
from autograder.grading import execute as execute_module
from autograder.grading import prestart
from autograder.grading.pipeline import grade_one, load_specs
from autograder.grading.reports import classify
from autograder.grading.results import Job


@pytest.fixture(scope="module")
def toy(tmp_path_factory, grading_sandbox):
    ws, release = make_toy_workspace(str(tmp_path_factory.mktemp("retry") / "ws"))
    return ws, release, grading_sandbox


def _job(toy, tmp_path, answers):
    ws, release, sandbox = toy
    folder = tmp_path / "submitted"
    folder.mkdir()
    (folder / "toy.ipynb").write_text(nbformat.writes(toy_course.fill(release, answers)))
    return Job("s1", str(folder), load_specs(ws)["toy"], asdict(execute_module.Limits(**TEST_LIMITS)), sandbox)


def test_a_kernel_that_fails_to_start_once_is_replaced_and_the_notebook_graded(toy, tmp_path, monkeypatch):
    starts = []

    class RacingKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kwargs):
            starts.append(1)
            if len(starts) == 1:
                raise RuntimeError("zmq.error.ZMQError: Address already in use")
            return await super().start_kernel(**kwargs)

    monkeypatch.setattr(execute_module, "AsyncKernelManager", RacingKernelManager)
    result = grade_one(_job(toy, tmp_path, toy_course.CORRECT)).as_json()
    nb = result["notebooks"]["toy.ipynb"]
    assert len(starts) == 2
    assert result["score"] == 6 and not result["flagged"], nb
    assert {c["status"] for c in nb["cells"].values()} == {"pass"}
    assert "failed to start 1 time(s)" in nb["events"][0] and "Address already in use" in nb["events"][0]


def test_a_kernel_that_never_starts_is_a_grader_error_not_the_students_zero(toy, tmp_path, monkeypatch):
    dying = tmp_path / "dying_kernel.py"
    dying.write_text("import sys\nsys.exit('zmq.error.ZMQError: Address already in use')\n")
    monkeypatch.setattr(prestart, "KERNEL_COMMAND", [sys.executable, str(dying)])
    result = grade_one(_job(toy, tmp_path, toy_course.CORRECT)).as_json()
    nb = result["notebooks"]["toy.ipynb"]
    assert result["flagged"]
    assert {c["status"] for c in nb["cells"].values()} == {"grader error"}
    assert {classify(c, {}) for c in nb["cells"].values()} == {"grader error"}
    [flag] = [f for f in nb["flags"] if f[0] == "review"]
    assert flag[1].startswith(f"grader error: the kernel could not start ({execute_module.START_ATTEMPTS} attempt(s)")
    assert "Kernel died before replying to kernel_info" in flag[1]
    assert flag[1].endswith("re-run autograde for this student")


def test_a_kernel_killed_by_student_code_is_not_retried(toy, tmp_path):
    answers = toy_course.answers(grad_answer="import os\nos._exit(1)")
    result = grade_one(_job(toy, tmp_path, answers)).as_json()
    nb = result["notebooks"]["toy.ipynb"]
    assert result["score"] == 2 and result["flagged"], nb
    assert any("kernel died" in e for e in nb["events"]) and not any("could not start" in e for e in nb["events"])
    assert "grader error" not in {c["status"] for c in nb["cells"].values()}
