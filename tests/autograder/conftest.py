"""Fixtures of the grading tests: a toy course graded once per session, and a real PostgreSQL."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import nbformat
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import toy_course  # noqa: E402
from ag_helpers import TEST_LIMITS, make_toy_workspace, write_submissions  # noqa: E402

@pytest.fixture(scope="session")
def graded_toy(tmp_path_factory):
    """The whole hostile class of toy_course, collected and graded with --workers 2."""
    from autograder.grading.collect import collect_folder
    from autograder.grading.execute import Limits
    from autograder.grading.pipeline import autograde

    root = str(tmp_path_factory.mktemp("toy") / "workspace")
    ws, release = make_toy_workspace(root)
    samples = toy_course.submissions(release, ws.root)
    incoming = write_submissions(str(tmp_path_factory.mktemp("incoming")), samples)
    collect_folder(ws, incoming)
    results = autograde(ws, workers=2, limits=Limits(**TEST_LIMITS), progress=lambda *a: None)
    return ws, samples, {r["student"]: r for r in results}


# ---------------------------------------------------------------- PostgreSQL
def _pg_bin() -> str | None:
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return os.path.dirname(initdb)
    path = shutil.which("initdb")
    return os.path.dirname(path) if path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A throwaway PostgreSQL cluster on 127.0.0.1, started as an unprivileged user."""
    bindir = _pg_bin()
    if bindir is None:
        msg = ("PostgreSQL is not installed (see autograder/NEEDS.md: "
               "apt-get install -y postgresql)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    base = tempfile.mkdtemp(prefix="ag-pg-")
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    os.makedirs(sock)
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = "postgres" if _has_user("postgres") else "nobody"
        pw = pwd.getpwnam(user)
        os.chmod(base, 0o755)
        for p in (base, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", user, "--"]
    port = _free_port()
    run = lambda *cmd: subprocess.run(as_user + list(cmd), check=True, capture_output=True, text=True, cwd=base)  # noqa: E731
    run(os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "grader", "--no-sync")
    run(os.path.join(bindir, "pg_ctl"), "-D", data, "-w", "-t", "60", "-l", os.path.join(base, "log"),
        "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        run(os.path.join(bindir, "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "grades")
        yield f"postgresql://grader@127.0.0.1:{port}/grades"
    finally:
        subprocess.run(as_user + [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, cwd=base)
        shutil.rmtree(base, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


