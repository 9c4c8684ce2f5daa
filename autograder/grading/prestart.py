"""Kernels started before their notebook: each grading process keeps one ready for its next notebook.

Two thirds of a notebook's time went to starting its kernel and importing the libraries
(torch, numpy, chainrule, coursework), not to its own cells.  So when a notebook takes its
kernel, the grading process starts the kernel of its next notebook: in a sandbox of its own,
with fresh folders of its own, as far as importing the libraries (steps 1-6 of
:mod:`autograder.grading.kernel`).  That kernel holds nothing of any student and no secret:
the key, the tests and the release files reach it only when ``execute`` gives it its job.  It
serves that one notebook and is killed.  A kernel never gets a second job.

Each grading process (a local pool worker, a Dask worker) holds at most one spare kernel.  It
is killed when that process exits (``atexit``) or dies (the kernel dies with its parent:
bubblewrap's ``--die-with-parent`` and the kernel's own ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

from .sandbox import HOME, REPO_ROOT, Sandbox, bwrap_argv, library_roots, sandbox_user

KERNEL_COMMAND = [sys.executable, "-m", "autograder.grading.kernel"]


def read_roots() -> list[str]:
    """Folders the guard lets the student's kernel read: Python, its packages, the course libraries."""
    roots = set(library_roots()) | {"/usr", "/lib", "/lib64", "/etc/localtime", "/etc/mime.types",
                                     "/usr/share/zoneinfo", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
                                     "/sys/devices/system/cpu", "/sys/fs/cgroup", "/dev/urandom", "/dev/null",
                                     "/dev/shm"}
    roots.update(site.getsitepackages())
    return sorted(roots)


@dataclass(frozen=True)
class Recipe:
    """What a kernel is started with before its job is known: a spare serves only a job that wants the same."""
    sandbox: Sandbox
    limits: tuple                  # the items of ``Limits.as_dict()``
    command: tuple = ()            # the kernel's command (KERNEL_COMMAND)

    @classmethod
    def of(cls, sandbox: Sandbox, limits: dict) -> "Recipe":
        return cls(sandbox, tuple(sorted(limits.items())), tuple(KERNEL_COMMAND))


@dataclass
class StartedKernel:
    """A kernel process, started and importing (or imported), waiting for its one job."""
    recipe: Recipe
    private: str                   # grader-only: the verdict file and the log (weak sandbox: the connection file)
    handoff: str                   # shared with the kernel: its recipe, then its job, release files, ZMQ sockets
    home: str                      # the kernel's own folder (in bubblewrap, a tmpfs of its own)
    argv: list
    connection_file: str
    process: subprocess.Popen
    given_job: bool = False

    @property
    def verdicts(self) -> str:
        return os.path.join(self.private, "verdicts.jsonl")

    @property
    def log(self) -> str:
        return os.path.join(self.private, "kernel.log")

    def give_job(self, job: dict, files: dict[str, bytes] | None) -> None:
        """Write the job's spec (key, tests) and release files where the kernel reads them after ``go``."""
        if self.given_job:
            raise RuntimeError("a kernel serves one notebook only")
        self.given_job = True
        release = os.path.join(self.handoff, "files")
        os.mkdir(release)
        for name, content in (files or {}).items():
            with open(os.path.join(release, os.path.basename(name)), "wb") as fh:
                fh.write(content)
        _write_private_json(os.path.join(self.handoff, "spec.json"), {**job, "files": release})

    def go(self) -> None:
        """Let the kernel read its job and start ipykernel."""
        try:
            self.process.stdin.write(b"go\n")
            self.process.stdin.close()
        except BrokenPipeError:
            pass   # it died: jupyter_client finds it dead and says so, and ``execute`` starts another

    def discard(self) -> None:
        """Kill the kernel if it still runs, and remove its folders."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for folder in (self.private, self.handoff) + (() if self.recipe.sandbox.isolated else (self.home,)):
            shutil.rmtree(folder, ignore_errors=True)


def _write_private_json(path: str, content: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(content, fh)


def start(recipe: Recipe) -> StartedKernel:
    """Start a kernel in fresh folders and a fresh sandbox; it imports the libraries, then waits for ``go``."""
    private = tempfile.mkdtemp(prefix="ag-private-")
    handoff = tempfile.mkdtemp(prefix="ag-kernel-")
    # The verdict file and the log stay in ``private``; the kernel opens them through hard links in
    # ``handoff`` and removes those names, with its recipe and its job, before any student code.
    for name in ("verdicts.jsonl", "kernel.log"):
        path = os.path.join(private, name)
        open(path, "wb").close()
        os.chmod(path, 0o600)
        os.link(path, os.path.join(handoff, name))
    sandbox, limits = recipe.sandbox, dict(recipe.limits)
    if sandbox.isolated:
        home, user, sandbox_argv = HOME, None, bwrap_argv(sandbox.bwrap, handoff, limits["disk_mb"])
    else:
        home, user, sandbox_argv = tempfile.mkdtemp(prefix="ag-sandbox-"), sandbox_user(), []
    connection_file = os.path.join(handoff if sandbox.isolated else private, "connection.json")
    recipe_path = os.path.join(handoff, "recipe.json")
    _write_private_json(recipe_path, {
        "sandbox": home, "limits": limits, "read_roots": read_roots(), "repo_root": REPO_ROOT,
        "report": os.path.join(handoff, "verdicts.jsonl"), "log": os.path.join(handoff, "kernel.log"),
        "job": os.path.join(handoff, "spec.json"),
        "remove": [os.path.join(handoff, name) for name in ("verdicts.jsonl", "kernel.log", "files")],
        "uid": user[0] if user else None, "gid": user[1] if user else None,
        "copy_connection": not sandbox.isolated,
    })
    argv = [*sandbox_argv, *recipe.command, "--recipe", recipe_path, "-f", connection_file]
    # The kernel's environment is this, not the grader's (which may hold a database password).
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": REPO_ROOT}
    # A session of its own, as jupyter_client starts kernels; stdin carries the one word "go".
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env, cwd=handoff if sandbox.isolated else home,
                               start_new_session=True)
    return StartedKernel(recipe, private, handoff, home, argv, connection_file, process)


# ---------------------------------------------------------------- this process's spare kernel
_lock = threading.Lock()
_spare: list[StartedKernel] = []      # at most one


def take(recipe: Recipe) -> StartedKernel:
    """A kernel for one notebook: this process's spare if it was started for the same recipe and
    still runs, else one started now; and the spare for the next notebook, started now, so that
    it imports while this notebook runs."""
    with _lock:
        kernel = _spare.pop() if _spare else None
    if kernel is not None and (kernel.recipe != recipe or kernel.process.poll() is not None):
        kernel.discard()
        kernel = None
    kernel = kernel or start(recipe)
    try:
        start_spare(recipe)
    except OSError:
        pass   # this notebook has its kernel; the next one starts its own
    return kernel


def start_spare(recipe: Recipe) -> None:
    """Start the kernel of this process's next notebook (replacing a spare of another recipe)."""
    with _lock:
        old = _spare.pop() if _spare else None
        if old is not None and old.recipe == recipe and old.process.poll() is None:
            _spare.append(old)
            return
    if old is not None:
        old.discard()
    kernel = start(recipe)
    with _lock:
        _spare.append(kernel)
        extra = _spare[:-1]
        del _spare[:-1]
    for other in extra:   # two threads of one Dask worker started one each
        other.discard()


def discard_spare() -> None:
    """Kill this process's spare kernel, if any (at exit; a grading process that dies takes it along)."""
    with _lock:
        kernels = list(_spare)
        _spare.clear()
    for kernel in kernels:
        kernel.discard()


atexit.register(discard_spare)
