"""Helpers of the grading tests (a module of its own: several conftest.py files share one name)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import toy_course  # noqa: E402

TEST_LIMITS = dict(cell_timeout=4.0, notebook_timeout=40.0, memory_mb=3072, disk_mb=64)


def needs_os_sandbox(os_sandbox, why: str = "native attacks are only stopped by the OS sandbox, so they "
                                             "are not graded in the weak one") -> None:
    """Skip, saying why, where bubblewrap cannot run (the ``os_sandbox`` fixture of conftest.py)."""
    import pytest

    if os_sandbox[0] is None:
        pytest.skip(f"bubblewrap cannot run here ({os_sandbox[1]}): {why}")


def weak_flag(os_sandbox) -> list[str]:
    """autograde's --allow-weak-sandbox where bubblewrap cannot run (tests of what is not the sandbox)."""
    return [] if os_sandbox[0] is not None else ["--allow-weak-sandbox"]


def write_submissions(folder: str, samples: dict, only=None) -> str:
    """nbgrader's layout: folder/submitted/<student>/toy/<files>."""
    for student, (files, *_rest) in samples.items():
        if only and student not in only:
            continue
        d = os.path.join(folder, "submitted", student, "toy")
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
    return folder


def toy_job(ws, release, sandbox, folder, student: str, double_answer: str):
    """A grading job of the toy lesson whose first answer cell is ``double_answer``."""
    from dataclasses import asdict

    from autograder.grading.execute import Limits
    from autograder.grading.pipeline import load_specs
    from autograder.grading.results import Job

    os.makedirs(folder)
    answers = toy_course.answers(double_answer=double_answer)
    with open(os.path.join(folder, "toy.ipynb"), "w") as fh:
        fh.write(nbformat.writes(toy_course.fill(release, answers)))
    return Job(student, folder, load_specs(ws)["toy"], asdict(Limits(**TEST_LIMITS)), sandbox)


def cell_output(result: dict, solution_id: str) -> str:
    """What the graded toy notebook's answer cell ``solution_id`` printed."""
    nb = nbformat.reads(result["notebooks"]["toy.ipynb"]["notebook"], as_version=4)
    [cell] = [c for c in nb.cells if c.metadata.get("autograder", {}).get("solution_id") == solution_id]
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def make_toy_workspace(root: str, db_url: str | None = None):
    from autograder.grading.workspace import Workspace, build

    src = toy_course.write_source(tempfile.mkdtemp(prefix="toy-source-"))
    ws = Workspace.open(root, create=True)
    build(ws, src, db_url=db_url)
    ws.save_settings(limits=TEST_LIMITS)
    release = nbformat.read(ws.path("release", "toy", "toy.ipynb"), as_version=4)
    return ws, release



def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    proc.seconds = time.monotonic() - t0
    return proc
