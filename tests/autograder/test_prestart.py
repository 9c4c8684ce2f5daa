"""Kernels made ready before their notebook (``grading/prestart.py``): forked by a kernel factory in
bubblewrap, started ahead as a spare in the weak sandbox.  One kernel serves one submission, the next
submission sees nothing of the last, and no kernel, factory or folder outlives the grader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import nbformat
import pytest

import toy_course
from ag_helpers import (REPO, TEST_LIMITS, cell_output, make_toy_workspace, needs_os_sandbox, process_alive, toy_job,
                        weak_flag)
from autograder.grading import prestart
from autograder.grading.execute import Limits
from autograder.grading.pipeline import grade_one
from autograder.grading.sandbox import Sandbox, bwrap_argv

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


def _grade_a_then_b(tmp_path, sandbox, monkeypatch, leave_traces: str = LEAVE_TRACES,
                    look_for_traces: str = LOOK_FOR_TRACES) -> tuple:
    """Grade student A, who leaves traces, then B, who looks for them: (A's result, B's, the kernels taken)."""
    ws, release = make_toy_workspace(str(tmp_path / "ws"))
    taken = []

    def take(recipe):
        taken.append(real_take(recipe))
        return taken[-1]

    real_take = prestart.take
    monkeypatch.setattr(prestart, "take", take)
    prestart.discard_spare()    # a spare or factory of an earlier test in this process is not this test's
    prestart.close_factories()
    double = "def double(v):\n    return 2 * v\n"
    a = grade_one(toy_job(ws, release, sandbox, str(tmp_path / "a"), "a_leaves_traces",
                       double + leave_traces + look_for_traces)).as_json()
    assert a["score"] == 6, a["notebooks"]["toy.ipynb"]["flags"]
    assert f"TRACES OF A: {EVERY_TRACE}" in cell_output(a, "double_answer")   # A's own kernel sees them all
    a_kernel = taken[0]
    assert a_kernel.process.poll() is not None, "a kernel outlived its notebook"
    assert not os.path.exists(a_kernel.private)
    assert not os.path.exists(a_kernel.handoff) or not os.listdir(a_kernel.handoff)   # a factory's: emptied
    b = grade_one(toy_job(ws, release, sandbox, str(tmp_path / "b"), "b_looks", double + look_for_traces)).as_json()
    assert b["score"] == 6, b["notebooks"]["toy.ipynb"]["flags"]
    assert "TRACES OF A: []" in cell_output(b, "double_answer")
    with pytest.raises(RuntimeError, match="one notebook only"):
        taken[1].give_job({}, {})
    return a, b, taken


# Written natively (no audit event: the guard cannot refuse them), where only bubblewrap's tmpfs
# folders can take them: the factory must empty /tmp and /dev/shm between two kernels.
NATIVE_TRACES = """
import torch
for folder in ('/tmp', '/dev/shm'):
    torch.from_file(folder + '/left_by_a', shared=True, size=16, dtype=torch.uint8).fill_(1)
"""
LOOK_FOR_NATIVE_TRACES = """
import torch
for folder in ('/tmp', '/dev/shm'):
    try:
        print('FOUND', folder, bytes(torch.from_file(folder + '/left_by_a', shared=False, size=16, dtype=torch.uint8).tolist()))
    except Exception as e:
        print('NOT FOUND', folder, type(e).__name__)
"""


def test_the_next_submission_is_forked_by_the_same_factory_and_finds_nothing_of_the_last(tmp_path, os_sandbox,
                                                                                        monkeypatch):
    needs_os_sandbox(os_sandbox, "kernel factories run in bubblewrap only")
    a, b, taken = _grade_a_then_b(tmp_path, os_sandbox[0], monkeypatch, LEAVE_TRACES + NATIVE_TRACES,
                                  LOOK_FOR_TRACES + LOOK_FOR_NATIVE_TRACES)
    assert "FOUND /tmp" in cell_output(a, "double_answer") and "FOUND /dev/shm" in cell_output(a, "double_answer")
    assert "NOT FOUND /tmp" in cell_output(b, "double_answer") and "NOT FOUND /dev/shm" in cell_output(b, "double_answer")
    assert taken[0].factory is taken[1].factory is not None, "B's kernel did not come from A's factory"
    assert isinstance(taken[1].process, prestart.ForkedKernel)
    # The libraries were imported once, by the factory: B's kernel had nothing left to import.
    assert b["notebooks"]["toy.ipynb"]["timings"]["preload"] < 0.1
    factory = taken[0].factory
    prestart.close_factories()
    assert factory.process.poll() is not None
    assert not os.path.exists(factory.root) and not os.path.exists(factory.private)


def test_the_next_submission_runs_in_the_spare_kernel_and_sees_nothing_of_the_last(tmp_path, monkeypatch):
    a, b, taken = _grade_a_then_b(tmp_path, Sandbox("weak"), monkeypatch)
    assert len(taken) == 2 and taken[1].factory is None, "the weak sandbox has no kernel factory"
    assert b["notebooks"]["toy.ipynb"]["timings"]["preload"] > 0    # imported while A's notebook ran
    assert not prestart._spare or prestart._spare[0] is not taken[1]
    prestart.discard_spare()


def test_a_spare_kernel_is_killed_and_its_folders_removed_when_discarded_or_left(tmp_path):
    recipe = prestart.Recipe.of(Sandbox("weak"), Limits(**TEST_LIMITS).as_dict())
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


def test_clearing_a_factory_sandbox_kills_every_process_and_empties_its_writable_folders(tmp_path, os_sandbox):
    """What the factory does between two kernels, run in a real bubblewrap sandbox: processes left
    running (a daemon in a session of its own included) are killed, files in home, /tmp and
    /dev/shm (a folder locked with mode 000 included) are removed, the bound handoff folder is kept."""
    needs_os_sandbox(os_sandbox, "kernel factories run in bubblewrap only")
    handoff = tmp_path / "factory"
    handoff.mkdir()
    (handoff / "kept").write_text("the grader's")
    script = (
        "import os, subprocess\n"
        "from autograder.grading.kernel import clear_sandbox, _other_processes\n"
        "subprocess.Popen(['sleep', '600'])\n"
        "subprocess.Popen(['sh', '-c', 'sleep 600 & sleep 600'], start_new_session=True)\n"
        "for folder in (os.environ['HOME'], '/tmp', '/dev/shm'):\n"
        "    os.makedirs(folder + '/deep/er')\n"
        "    open(folder + '/deep/er/file', 'w').close()\n"
        "    os.chmod(folder + '/deep', 0)\n"
        "    open(folder + '/top', 'w').close()\n"
        "import time; time.sleep(0.2)\n"
        "print('before', len(_other_processes()))\n"
        "clear_sandbox(os.environ['HOME'])\n"
        "print('after', len(_other_processes()))\n"
        "print('left', [os.listdir(f) for f in (os.environ['HOME'], '/tmp', '/dev/shm')])\n"
    )
    argv = bwrap_argv(os_sandbox[0].bwrap, str(handoff), 16) + [sys.executable, "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    counts = dict(line.split() for line in done.stdout.splitlines() if line.startswith(("before", "after")))
    assert int(counts["before"]) >= 3 and counts["after"] == "0", done.stdout
    # /tmp keeps only the paths down to folders bound into it (mount points): the handoff folder,
    # and the checkout and its venv when they live under /tmp (a clean clone's CI run)
    bound = {argv[i + 1] for i, word in enumerate(argv) if word in ("--bind", "--ro-bind")}
    [home, tmp, shm] = eval(done.stdout.split("left ", 1)[1])
    assert home == [] and shm == [] and sorted(tmp) == sorted({p.split("/")[2] for p in bound if p.startswith("/tmp/")})
    assert (handoff / "kept").read_text() == "the grader's"


def _kernel_processes() -> dict[int, str]:
    """Each process of a grading kernel or kernel factory (bubblewrap's and Python's, the forked
    kernels included), with the kernel's recipe file or the factory's command line."""
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
            elif "autograder.grading.kernel" in argv and "--factory" in argv:   # bubblewrap's: its bound folder
                found[int(entry)] = "factory " + (argv[argv.index("--bind") + 1] if "--bind" in argv else "")
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
    factories = {tag for tag in seen.values() if tag.startswith("factory /")}
    if os_sandbox[0] is not None:   # one factory per worker, each importing the libraries once
        assert 1 <= len(factories) <= 2, factories
    else:                           # 4 notebooks, and the spares started while they ran
        assert len(set(seen.values())) > 4, "no kernel was started ahead of its notebook"
    assert not [pid for pid in seen if process_alive(pid)], "kernels outlived the grader"
    assert not [name for name in os.listdir(tmp)
                if name.startswith(("ag-kernel-", "ag-private-", "ag-sandbox-"))]
    results = [json.load(open(ws.path("autograded", f"s{i}", "toy", "grading.json"))) for i in range(4)]
    assert [r["score"] for r in results] == [6.0] * 4
