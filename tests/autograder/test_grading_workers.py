"""The grading pool: a stuck or dying worker costs one job a retry, never the class."""

from __future__ import annotations

import json
import os
import sys
import time

import nbformat
import pytest

import stuck_tasks
from autograder.grading import execute as execute_module
from autograder.grading import prestart
from autograder.grading.protocol import begin_cell
from autograder.grading.workers import run_jobs


def run(jobs, workers=2, deadline=4.0):
    results, failures = {}, {}
    start = time.monotonic()
    run_jobs(jobs, stuck_tasks.behave, workers, deadline=lambda job: deadline,
             on_result=lambda job, res: results.setdefault(job["name"], []).append(res),
             on_failure=lambda job, failure: failures.setdefault(job["name"], []).append(failure))
    return results, failures, time.monotonic() - start


def test_a_hung_job_is_stopped_with_its_stacks_and_the_rest_are_graded():
    jobs = [{"name": f"ok{i}", "kind": "ok"} for i in range(5)] + [{"name": "stuck", "kind": "hang"}]
    results, failures, seconds = run(jobs)
    assert sorted(results) == [f"ok{i}" for i in range(5)]
    assert all(len(r) == 1 for r in results.values())
    assert list(failures) == ["stuck"] and len(failures["stuck"]) == 1
    failure = failures["stuck"][0]
    assert failure.tries == ["grader worker stopped after 4 s (the job's deadline)"] * 2
    assert "hang_without_answering" in failure.stacks     # where it hung, for the instructor
    assert seconds < 30


def test_a_job_that_hung_once_is_graded_on_its_second_try(tmp_path):
    jobs = [{"name": "flaky", "kind": "hang_once", "marker": str(tmp_path / "tried")},
            {"name": "ok", "kind": "ok"}]
    results, failures, _ = run(jobs)
    assert failures == {} and sorted(results) == ["flaky", "ok"]


def test_a_dying_worker_is_replaced_and_the_job_recorded_as_failed():
    jobs = [{"name": "dies", "kind": "die"}] + [{"name": f"ok{i}", "kind": "ok"} for i in range(3)]
    results, failures, _ = run(jobs, workers=1)
    assert sorted(results) == ["ok0", "ok1", "ok2"]
    assert [f.tries for f in failures["dies"]] == [["grader worker died (exit code 3)"] * 2]
    assert len({r[0]["pid"] for r in results.values()}) == 1   # one replacement serves the rest


def test_a_kernel_that_never_answers_ends_the_notebook_in_time(monkeypatch, tmp_path, grading_sandbox):
    silent = tmp_path / "silent_kernel.py"
    silent.write_text("import time\nwhile True:\n    time.sleep(3600)\n")
    monkeypatch.setattr(prestart, "KERNEL_COMMAND", [sys.executable, str(silent)])
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(begin_cell()), nbformat.v4.new_code_cell("1 + 1")]
    start = time.monotonic()
    limits = execute_module.Limits(cell_timeout=2, notebook_timeout=30, startup_timeout=5)
    result = execute_module.execute(nb, {}, limits, sandbox=grading_sandbox)
    assert time.monotonic() - start < 25
    assert result.verdicts == {}
    assert any("execution error" in e and "RuntimeError" in e for e in result.events), result.events


def test_a_job_that_failed_twice_is_recorded_as_a_flagged_zero_with_its_stacks(tmp_path, grading_sandbox):
    from dataclasses import asdict

    from ag_helpers import TEST_LIMITS, make_toy_workspace
    from autograder.grading.execute import Limits
    from autograder.grading.pipeline import _crashed, job_deadline, load_specs, record
    from autograder.grading.reports import gradebook_scores
    from autograder.grading.results import Job

    ws, _ = make_toy_workspace(str(tmp_path / "ws"))
    job = Job("stuck_student", ws.path("submitted", "stuck_student", "toy"), load_specs(ws)["toy"],
              asdict(Limits(**TEST_LIMITS)), grading_sandbox)
    # one notebook at its limits: start-up 120 + run 40 + watchdog 60 + 60, plus 60 for the job
    assert job_deadline(job) == 340.0
    record(ws, _crashed(job, "grader worker stopped after 340 s (the job's deadline)", "File \"x.py\", line 1"))
    assert gradebook_scores(ws)[("stuck_student", "toy")] == (0.0, 6.0)
    with open(ws.path("autograded", "stuck_student", "toy", "grading.json")) as fh:
        saved = json.load(fh)
    notebook = saved["notebooks"]["toy.ipynb"]
    assert saved["flagged"] and notebook["flags"] == [["review", "grader worker stopped after 340 s (the job's deadline)"]]
    assert notebook["grader_stacks"] == "File \"x.py\", line 1"
    assert {c["status"] for c in notebook["cells"].values()} == {"grader crashed"}
