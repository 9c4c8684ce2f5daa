"""Kernels started ahead of their notebook (``grading/prestart.py``): one kernel serves one submission,
the next submission sees nothing of the last, and no kernel (nor its folders) outlives the grader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict

import nbformat
import pytest

import toy_course
from ag_helpers import REPO, TEST_LIMITS, make_toy_workspace, process_alive, weak_flag
from autograder.grading import prestart
from autograder.grading.execute import Limits
from autograder.grading.pipeline import grade_one, load_specs
from autograder.grading.results import Job

LEAVE_TRACES = """
import builtins, os, sys
import numpy
left = 'left by student A'
left_by_a_global = left
sys.modules['left_by_a'] = type(sys)('left_by_a')
builtins.left_by_a = left
os.environ['LEFT_BY_A'] = left
with open(os.path.expanduser('~/left_by_a.txt'), 'w') as fh:
    fh.write(left)
try:
    numpy.left_by_a = left
except Exception:
    pass
"""
LOOK_FOR_TRACES = """
import builtins, os, sys
import numpy
print('TRACES OF A:', [where for where, found in [
    ('sys.modules', 'left_by_a' in sys.modules), ('builtins', hasattr(builtins, 'left_by_a')),
    ('globals', 'left_by_a_global' in globals()), ('environment', 'LEFT_BY_A' in os.environ),
    ('home', os.path.exists(os.path.expanduser('~/left_by_a.txt'))), ('numpy', hasattr(numpy, 'left_by_a'))]
    if found])
"""
EVERY_TRACE = ["sys.modules", "builtins", "globals", "environment", "home", "numpy"]


def _job(ws, release, sandbox, folder, student: str, double_answer: str) -> Job:
    os.makedirs(folder)
    answers = toy_course.answers(double_answer=double_answer)
    with open(os.path.join(folder, "toy.ipynb"), "w") as fh:
        fh.write(nbformat.writes(toy_course.fill(release, answers)))
    return Job(student, folder, load_specs(ws)["toy"], asdict(Limits(**TEST_LIMITS)), sandbox)


def _printed(result: dict, solution_id: str) -> str:
    nb = nbformat.reads(result["notebooks"]["toy.ipynb"]["notebook"], as_version=4)
    [cell] = [c for c in nb.cells if c.metadata.get("autograder", {}).get("solution_id") == solution_id]
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_the_next_submission_runs_in_the_spare_kernel_and_sees_nothing_of_the_last(tmp_path, grading_sandbox,
                                                                                     monkeypatch):
    ws, release = make_toy_workspace(str(tmp_path / "ws"))
    taken = []

    def take(recipe):
        taken.append(real_take(recipe))
        return taken[-1]

    real_take = prestart.take
    monkeypatch.setattr(prestart, "take", take)
    prestart.discard_spare()    # a spare of an earlier test in this process is not this test's

    double = "def double(v):\n    return 2 * v\n"
    a = grade_one(_job(ws, release, grading_sandbox, str(tmp_path / "a"), "a_leaves_traces",
                       double + LEAVE_TRACES + LOOK_FOR_TRACES)).as_json()
    assert a["score"] == 6, a["notebooks"]["toy.ipynb"]["flags"]
    assert f"TRACES OF A: {EVERY_TRACE}" in _printed(a, "double_answer")   # A's own kernel sees them all
    [a_kernel] = taken
    assert a_kernel.process.poll() is not None, "a kernel outlived its notebook"
    assert not os.path.exists(a_kernel.private) and not os.path.exists(a_kernel.handoff)
    [spare] = prestart._spare     # started while A's notebook ran
    assert spare is not a_kernel and spare.process.poll() is None and not spare.given_job

    b = grade_one(_job(ws, release, grading_sandbox, str(tmp_path / "b"), "b_looks", double + LOOK_FOR_TRACES)).as_json()
    assert b["score"] == 6, b["notebooks"]["toy.ipynb"]["flags"]
    assert taken[1] is spare, "B was not graded in the kernel started while A ran"
    assert "TRACES OF A: []" in _printed(b, "double_answer")
    assert b["notebooks"]["toy.ipynb"]["timings"]["preload"] > 0
    with pytest.raises(RuntimeError, match="one notebook only"):
        spare.give_job({}, {})
    prestart.discard_spare()


def test_a_spare_kernel_is_killed_and_its_folders_removed_when_discarded_or_left(tmp_path, grading_sandbox):
    recipe = prestart.Recipe.of(grading_sandbox, Limits(**TEST_LIMITS).as_dict())
    prestart.start_spare(recipe)
    [spare] = prestart._spare
    prestart.discard_spare()
    assert spare.process.poll() is not None and prestart._spare == []
    assert not os.path.exists(spare.private) and not os.path.exists(spare.handoff)
    # A kernel whose grader closes its stdin without "go" (the grader died) exits by itself.
    left = prestart.start(recipe)
    left.process.stdin.close()
    assert left.process.wait(60) == 0
    left.discard()


def _kernel_processes() -> dict[int, str]:
    """Each process of a grading kernel (bubblewrap's and Python's), with the kernel's recipe file."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    argv = fh.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "autograder.grading.kernel" in argv and "--recipe" in argv:
                found[int(entry)] = argv[argv.index("--recipe") + 1]
    return found


def test_after_a_run_with_two_workers_no_kernel_and_no_kernel_folder_is_left(tmp_path, os_sandbox):
    ws, release = make_toy_workspace(str(tmp_path / "ws"))
    for i in range(4):
        folder = ws.path("submitted", f"s{i}", "toy")
        os.makedirs(folder)
        nbformat.write(toy_course.fill(release, toy_course.CORRECT), os.path.join(folder, "toy.ipynb"))
    tmp = tmp_path / "grader-tmp"
    tmp.mkdir()
    before = set(_kernel_processes())
    env = dict(os.environ, PYTHONPATH=REPO, TMPDIR=str(tmp))
    grader = subprocess.Popen([sys.executable, "-m", "autograder", "autograde", "--workspace", ws.root,
                               "--workers", "2", *weak_flag(os_sandbox)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, str] = {}
    while grader.poll() is None:
        seen.update({pid: recipe for pid, recipe in _kernel_processes().items() if pid not in before})
        time.sleep(0.05)
    out, err = grader.communicate()
    assert grader.returncode == 0, err
    assert "graded 4 submission(s)" in out
    assert len(set(seen.values())) > 4, "no kernel was started ahead of its notebook"   # 4 notebooks, and spares
    assert not [pid for pid in seen if process_alive(pid)], "kernels outlived the grader"
    assert not [name for name in os.listdir(tmp) if name.startswith(("ag-kernel-", "ag-private-", "ag-sandbox-"))]
    results = [json.load(open(ws.path("autograded", f"s{i}", "toy", "grading.json"))) for i in range(4)]
    assert [r["score"] for r in results] == [6.0] * 4
