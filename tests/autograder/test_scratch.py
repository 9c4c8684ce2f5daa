"""Scratch folders of grading processes (``grading/scratch.py``): a run removes those whose maker died
(a worker killed mid-run cannot remove its own), and nothing of a live process or anyone else's."""

from __future__ import annotations

import os
import subprocess
import sys

from autograder.grading import scratch


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_scratch_of_a_dead_grading_process_is_removed_and_nothing_else(tmp_path):
    dead = _dead_pid()
    mine = os.getpid()
    names = {
        f"ag-kernel-{dead}-abc": "folder", f"ag-private-{dead}-abc": "folder", f"ag-worker-{dead}-x.stacks": "file",
        f"ag-kernel-{mine}-abc": "folder", f"ag-worker-{mine}-x.stacks": "file",
        "ag-kernel-abcdefgh": "folder",                   # an older name without a process id
        f"notes-{dead}-abc": "folder", f"ag-homework-{dead}-abc": "folder",   # not the grader's
    }
    for name, kind in names.items():
        if kind == "folder":
            os.makedirs(tmp_path / name / "zmq")
            (tmp_path / name / "kernel.log").write_text("left")
        else:
            (tmp_path / name).write_text("left")
    removed = scratch.remove_orphans(str(tmp_path))
    assert sorted(os.path.basename(p) for p in removed) == sorted(
        [f"ag-kernel-{dead}-abc", f"ag-private-{dead}-abc", f"ag-worker-{dead}-x.stacks"])
    assert sorted(os.listdir(tmp_path)) == sorted(set(names) - {os.path.basename(p) for p in removed})


def test_a_scratch_name_says_which_process_made_it():
    assert scratch.prefix("kernel") == f"ag-kernel-{os.getpid()}-"
