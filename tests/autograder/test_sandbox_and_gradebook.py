"""The run around the kernels (issue #16): the sandbox probe, a gradebook that cannot be trusted,
a grader killed mid-run (no kernel outlives it; the rerun loses no result)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import nbformat
import pytest

import toy_course
from ag_helpers import REPO, make_toy_workspace, needs_os_sandbox, process_alive, run_cli, weak_flag


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    ws, release = make_toy_workspace(str(tmp_path_factory.mktemp("gb") / "ws"))
    return ws, release


def _submit(ws, release, student, answers):
    folder = ws.path("submitted", student, "toy")
    os.makedirs(folder, exist_ok=True)
    nbformat.write(toy_course.fill(release, answers), os.path.join(folder, "toy.ipynb"))


def _fake_bwrap(tmp_path) -> str:
    """bubblewrap as it answers inside a container that may not create namespaces."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && { echo 'bubblewrap 0.8.0'; exit 0; }\n"
                    "echo 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    return str(fake)


def test_without_namespaces_autograde_stops_unless_the_weak_sandbox_is_allowed(toy, tmp_path, monkeypatch):
    ws, release = toy
    _submit(ws, release, "weakling", toy_course.CORRECT)
    monkeypatch.setenv("AUTOGRADER_BWRAP", _fake_bwrap(tmp_path))
    p = run_cli("autograde", "--workspace", ws.root, "--student", "weakling")
    assert p.returncode == 2
    [line] = p.stderr.strip().splitlines()
    assert "bubblewrap cannot create the kernel's namespaces here (bwrap: No permissions" in line
    assert "apt-get install bubblewrap" in line and "--allow-weak-sandbox" in line
    assert not os.path.exists(ws.path("autograded", "weakling"))
    p = run_cli("autograde", "--workspace", ws.root, "--student", "weakling", "--allow-weak-sandbox")
    assert p.returncode == 0, p.stderr
    assert "warning: grading in the weak sandbox" in p.stderr
    with open(ws.path("autograded", "weakling", "toy", "grading.json")) as fh:
        result = json.load(fh)
    assert result["score"] == 6 and result["sandbox"].startswith("weak: resource limits and the audit hook")
    p = run_cli("report", "--workspace", ws.root)
    assert "## Sandbox the kernels ran in" in p.stdout and "- weak: resource limits" in p.stdout


def test_the_sandbox_is_named_in_the_results(toy, os_sandbox):
    needs_os_sandbox(os_sandbox, "this test is about bubblewrap's own runs")
    ws, release = toy
    _submit(ws, release, "named", toy_course.CORRECT)
    p = run_cli("autograde", "--workspace", ws.root, "--student", "named")
    assert p.returncode == 0, p.stderr
    assert "sandbox: bubblewrap" in p.stdout
    with open(ws.path("autograded", "named", "toy", "grading.json")) as fh:
        result = json.load(fh)
    assert result["sandbox"].startswith("bubblewrap ") and "read-only file system" in result["sandbox"]
    timings = result["notebooks"]["toy.ipynb"]["timings"]
    assert set(timings) == {"prepare", "kernel_start", "imports", "cells", "shutdown", "preload"}
    # The libraries were imported once, by the worker's kernel factory: the forked kernel had none left.
    assert timings["preload"] < 0.1 and timings["imports"] >= 0 and timings["cells"] > 0


def test_a_damaged_gradebook_is_one_line_and_nothing_is_written(tmp_path, os_sandbox):
    ws, release = make_toy_workspace(str(tmp_path / "ws"))
    _submit(ws, release, "alice", toy_course.CORRECT)
    with open(ws.path("gradebook.db"), "r+b") as fh:   # what the attack in issue #16 left behind
        fh.write(b" " * 4096)
    for command in ("autograde", "table", "export"):
        p = run_cli(command, "--workspace", ws.root, *(weak_flag(os_sandbox) if command == "autograde" else []))
        assert p.returncode == 2, (command, p.stderr)
        *warning, line = p.stderr.strip().splitlines()    # (the weak sandbox's warning, where it is used)
        assert len(warning) == len(weak_flag(os_sandbox) if command == "autograde" else [])
        assert line.startswith("error: the gradebook ") and "is damaged (not an SQLite database)" in line, line
    assert not os.path.exists(ws.path("autograded")) and not os.path.exists(ws.path("reports", "grades.csv"))


def test_a_locked_gradebook_or_a_second_autograde_stops_the_run_before_it_writes(toy, os_sandbox):
    from autograder.grading.gradebook import RunLock

    ws, release = toy
    _submit(ws, release, "locked_out", toy_course.CORRECT)
    holder = sqlite3.connect(ws.path("gradebook.db"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        p = run_cli("autograde", "--workspace", ws.root, "--student", "locked_out", *weak_flag(os_sandbox))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert p.returncode == 2 and "is locked by another process" in p.stderr, p.stderr
    with RunLock(ws):
        p = run_cli("autograde", "--workspace", ws.root, "--student", "locked_out", *weak_flag(os_sandbox))
    assert p.returncode == 2 and f"another autograde (pid {os.getpid()}) is running" in p.stderr, p.stderr
    assert not os.path.exists(ws.path("autograded", "locked_out"))


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_grader_killed_mid_run_leaves_no_kernel_and_the_rerun_loses_no_result(tmp_path, os_sandbox):
    from autograder.grading.gradebook import check
    from autograder.grading.reports import gradebook_scores

    ws, release = make_toy_workspace(str(tmp_path / "ws"))
    _submit(ws, release, "a_first", toy_course.CORRECT)
    _submit(ws, release, "b_sleeper", toy_course.answers(double_answer="def double(v):\n    return 2 * v\n"
                                                                       "import time\ntime.sleep(8)"))
    env = dict(os.environ, PYTHONPATH=REPO)
    grader = subprocess.Popen([sys.executable, "-m", "autograder", "autograde", "--workspace", ws.root,
                               "--cell-timeout", "30", *weak_flag(os_sandbox)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    kernels: set[int] = set()
    while time.monotonic() < deadline and not kernels:
        # the sleeper's kernel runs once the first student's result is on record
        if os.path.exists(ws.path("autograded", "a_first", "toy", "grading.json")):
            kernels = {p for p in _descendants(grader.pid) if "autograder.grading.kernel" in _cmdline(p)}
        time.sleep(0.2)
    assert kernels, "no kernel of the second student started"
    family = _descendants(grader.pid)
    grader.send_signal(signal.SIGKILL)
    grader.communicate()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(process_alive(p) for p in family):
        time.sleep(0.2)
    assert not [(p, _cmdline(p)) for p in family if process_alive(p)], "processes outlived the grader"
    check(ws, for_writing=True)
    assert gradebook_scores(ws) == {("a_first", "toy"): (6.0, 6.0)}
    p = run_cli("autograde", "--workspace", ws.root, "--cell-timeout", "30", *weak_flag(os_sandbox))
    assert p.returncode == 0, p.stderr
    assert "1 submission(s) already graded from the same files: kept" in p.stdout
    assert "a_first" not in p.stdout.split("already graded")[1]
    assert gradebook_scores(ws) == {("a_first", "toy"): (6.0, 6.0), ("b_sleeper", "toy"): (6.0, 6.0)}
