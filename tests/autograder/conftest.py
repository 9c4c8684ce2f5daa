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
def os_sandbox():
    """The grading sandbox of this machine: bubblewrap, or None with the reason it cannot run.

    Without it (a container that may not create namespaces) the hostile class is graded in the
    weak sandbox, less the attacks only the operating system stops (those tests skip, saying
    so); on CI (CI=true) that is a failure, since CI must test the real sandbox.
    """
    from autograder.grading.sandbox import probe

    sandbox, why = probe()
    if sandbox is None and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the grading sandbox cannot run on CI: {why} (install bubblewrap: make system-packages)")
    return sandbox, why


@pytest.fixture(scope="session")
def grading_sandbox(os_sandbox):
    """The sandbox for tests of the grading machinery itself: bubblewrap, or the weak one where it cannot run."""
    from autograder.grading.sandbox import Sandbox

    return os_sandbox[0] or Sandbox("weak")


@pytest.fixture(scope="session")
def loopback_listener():
    """A TCP port on the grader's loopback; after grading, no kernel may have connected to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.setblocking(False)
        yield server


@pytest.fixture(scope="session")
def graded_toy(tmp_path_factory, os_sandbox, loopback_listener):
    """The whole hostile class of toy_course, collected and graded with --workers 2."""
    from autograder.grading.collect import collect_folder
    from autograder.grading.execute import Limits
    from autograder.grading.pipeline import autograde

    root = str(tmp_path_factory.mktemp("toy") / "workspace")
    ws, release = make_toy_workspace(root)
    samples = toy_course.submissions(release, ws.root, loopback_listener.getsockname()[1])
    if os_sandbox[0] is None:
        for student in toy_course.NATIVE:
            del samples[student]
    incoming = write_submissions(str(tmp_path_factory.mktemp("incoming")), samples)
    collect_folder(ws, incoming)
    toy_course.plant_links(ws.root)
    for student, (_, _, what) in toy_course.LINKED.items():
        samples[student] = ({}, 0, True, f"the notebook is a link to {what}")
    results = autograde(ws, workers=2, limits=Limits(**TEST_LIMITS), progress=lambda *a: None,
                        allow_weak_sandbox=os_sandbox[0] is None)
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


