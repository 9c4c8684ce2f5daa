"""Kernels made ready before their notebook, so that a notebook's time goes to its own cells.

Two thirds of a notebook's time went to starting its kernel and importing the libraries
(torch, numpy, chainrule, coursework), not to its own cells.  So:

* **bubblewrap** (the sandbox of every real run): each grading process keeps a *kernel
  factory* (:func:`autograder.grading.kernel.factory_main`), one sandbox that imports the
  libraries once and forks a kernel per notebook, one at a time.  A forked kernel starts with
  the libraries imported, in about the time of a ``fork``.  Before the next fork, the factory
  kills every process the last kernel left and empties the only writable folders (home,
  ``/tmp``, ``/dev/shm``; the rest of the sandbox is read-only).  The factory itself never runs
  student code and holds no secret: a kernel's key, tests and release files reach its handoff
  folder (the factory's, bound into its sandbox) just before its fork, and the grader empties
  that folder between kernels.
* **weak sandbox**: each kernel is its own process, started while the last notebook runs (a
  *spare*): as far as importing the libraries (steps 1-6 of :mod:`autograder.grading.kernel`),
  then it waits for its job.

Either way a kernel serves exactly one notebook and is killed.  A factory or spare is killed
when its grading process exits (``atexit``) or dies (bubblewrap's ``--die-with-parent`` and the
kernel's own ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from . import scratch
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
    """A kernel for one job: a spare process waiting for it (weak sandbox), or folders whose
    kernel a factory forks once the job is written (bubblewrap)."""
    recipe: Recipe
    private: str                   # grader-only: the verdict file and the log (weak sandbox: the connection file)
    handoff: str                   # shared with the kernel: its recipe, then its job, release files, ZMQ sockets
    home: str                      # the kernel's own folder (in bubblewrap, a tmpfs of its own)
    argv: list
    connection_file: str
    process: "subprocess.Popen | ForkedKernel | None"
    given_job: bool = False
    factory: "KernelFactory | None" = None

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
        """Let the kernel read its job and start ipykernel (a factory's: fork it now)."""
        if self.factory is not None:
            self.process = self.factory.fork(os.path.join(self.handoff, "recipe.json"), self.connection_file)
            return
        try:
            self.process.stdin.write(b"go\n")
            self.process.stdin.close()
        except BrokenPipeError:
            pass   # it died: jupyter_client finds it dead and says so, and ``execute`` starts another

    def discard(self) -> None:
        """Kill the kernel if it still runs, and remove its folders."""
        if self.process is not None:
            if self.process.stdin is not None:
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
        shutil.rmtree(self.private, ignore_errors=True)
        if self.factory is not None:
            release(self)   # empties the handoff folder, which is the factory's
            return
        for folder in (self.handoff,) + (() if self.recipe.sandbox.isolated else (self.home,)):
            shutil.rmtree(folder, ignore_errors=True)


def _write_private_json(path: str, content: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(content, fh)


def start(recipe: Recipe, factory: "KernelFactory | None" = None) -> StartedKernel:
    """A kernel in fresh folders: with a ``factory``, the folders only (it forks the kernel at
    ``go``); else a process in a fresh sandbox, which imports the libraries, then waits for ``go``."""
    private = tempfile.mkdtemp(prefix=scratch.prefix("private"))
    handoff = factory.root if factory else tempfile.mkdtemp(prefix=scratch.prefix("kernel"))
    # The verdict file and the log stay in ``private``; the kernel opens them through hard links in
    # ``handoff`` and removes those names, with its recipe and its job, before any student code.
    for name in ("verdicts.jsonl", "kernel.log"):
        path = os.path.join(private, name)
        open(path, "wb").close()
        os.chmod(path, 0o600)
        os.link(path, os.path.join(handoff, name))
    sandbox, limits = recipe.sandbox, dict(recipe.limits)
    if sandbox.isolated:
        # A factory's kernel is forked inside the factory's sandbox: no command line of its own.
        home, user = HOME, None
        sandbox_argv = [] if factory else bwrap_argv(sandbox.bwrap, handoff, limits["disk_mb"])
    else:
        home, user, sandbox_argv = tempfile.mkdtemp(prefix=scratch.prefix("sandbox")), sandbox_user(), []
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
    if factory is not None:
        return StartedKernel(recipe, private, handoff, home, factory.argv, connection_file, None, factory=factory)
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
    """A kernel for one notebook.  bubblewrap: forked by this process's factory.  Weak sandbox:
    this process's spare if it was started for the same recipe and still runs, else one started
    now; and the spare for the next notebook, started now, so that it imports while this
    notebook runs."""
    if recipe.sandbox.isolated:
        return start(recipe, factory_for(recipe))
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


# ---------------------------------------------------------------- kernel factories (bubblewrap)
class ForkedKernel:
    """A kernel forked by a factory, seen through ``subprocess.Popen``'s methods (what
    jupyter_client and ``StartedKernel`` call): its pid is in the sandbox's pid namespace, so
    every signal goes through the factory."""
    stdin = stdout = stderr = None

    def __init__(self, factory: "KernelFactory", pid: int):
        self.factory, self.pid, self.returncode = factory, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.factory.exit_status(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            self.factory.wait_for_news(0.1)
        return self.returncode

    def kill(self) -> None:
        self.factory.send(f"kill {self.pid}")

    terminate = kill

    def send_signal(self, signum: int) -> None:
        if signum in (signal.SIGKILL, signal.SIGTERM):
            self.kill()   # an interrupt travels as a message (interrupt_mode "message")


class KernelFactory:
    """The grader's side of :func:`autograder.grading.kernel.factory_main`: one bubblewrap
    sandbox that imports the libraries once and forks one kernel per notebook."""

    def __init__(self, sandbox: Sandbox, disk_mb: int, threads: int, command: tuple):
        self.key = (sandbox, disk_mb, threads, command)
        # Bound into the sandbox: the handoff folder of each kernel in turn.  Not a folder per kernel
        # inside it: the ZMQ socket paths in it must stay within the 107 bytes of a Unix socket's.
        self.root = tempfile.mkdtemp(prefix=scratch.prefix("kernel"))
        self.private = tempfile.mkdtemp(prefix=scratch.prefix("private"))  # its log
        self.argv = bwrap_argv(sandbox.bwrap, self.root, disk_mb) + [*command, "--factory", str(threads), HOME]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": REPO_ROOT}
        with open(os.path.join(self.private, "factory.log"), "wb") as log:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                            env=env, cwd=self.root, start_new_session=True)
        self._news = threading.Condition()
        self._forked: list[int] = []
        self._exited: dict[int, int] = {}
        self.ready = False
        self.ended = False      # its replies ended: it exited, or is about to
        self.busy = False
        threading.Thread(target=self._read_replies, daemon=True).start()

    def _read_replies(self) -> None:
        for line in self.process.stdout:
            words = line.decode(errors="replace").split()
            with self._news:
                if words[:1] == ["ready"]:
                    self.ready = True
                elif words[:1] == ["forked"]:
                    self._forked.append(int(words[1]))
                elif words[:1] == ["exited"]:
                    self._exited[int(words[1])] = int(words[2])
                self._news.notify_all()
        with self._news:
            self.ended = True
            self._news.notify_all()

    def alive(self) -> bool:
        return not self.ended and self.process.poll() is None

    def send(self, line: str) -> None:
        try:
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass   # the factory is gone: its kernel too (it dies with the factory)

    def wait_for_news(self, timeout: float) -> None:
        with self._news:
            self._news.wait(timeout)

    def exit_status(self, pid: int) -> int | None:
        """The kernel's exit status once the factory has cleared up after it; -9 if the factory died."""
        with self._news:
            if pid in self._exited:
                return self._exited[pid]
        return None if self.alive() else -signal.SIGKILL

    def empty_root(self) -> None:
        """Empty the handoff folder of what the last kernel and the grader left there."""
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

    def fork(self, recipe_path: str, connection_file: str) -> "ForkedKernel":
        """Fork the kernel whose recipe and job are written; it runs from here on."""
        self.send(f"fork {recipe_path} {connection_file}")
        with self._news:
            self._news.wait_for(lambda: self._forked or self.ended, timeout=FORK_TIMEOUT)
            pid = self._forked.pop(0) if self._forked else -1
        return ForkedKernel(self, pid)

    def close(self) -> None:
        """End the factory (it kills its kernel and exits when its commands end), and remove its folders."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for folder in (self.root, self.private):
            shutil.rmtree(folder, ignore_errors=True)


FORK_TIMEOUT = 300.0   # seconds for a new factory to import the libraries and fork its first kernel
_factories: list[KernelFactory] = []


def factory_for(recipe: Recipe) -> KernelFactory:
    """An idle factory of this process for the recipe's sandbox, tmpfs size, threads and kernel
    command (started if there is none), marked busy until that
    kernel's job is over (``release``, which empties its handoff folder)."""
    limits = dict(recipe.limits)
    key = (recipe.sandbox, limits["disk_mb"], limits.get("threads", 1), recipe.command)
    with _lock:
        for factory in list(_factories):
            if not factory.alive():
                _factories.remove(factory)
                factory.close()
        idle = [f for f in _factories if f.key == key and not f.busy]
        factory = idle[0] if idle else None
        if factory is None:
            factory = KernelFactory(*key)
            _factories.append(factory)
        factory.busy = True
    return factory


def release(kernel: StartedKernel) -> None:
    """The kernel's job is over and it is discarded: its factory may fork the next one.  A kernel
    still running then (it ignored its kill) takes its factory along: the next kernel must not
    share a sandbox with it."""
    factory = kernel.factory
    if factory is None:
        return
    if kernel.process is not None and kernel.process.poll() is None:
        with _lock:
            if factory in _factories:
                _factories.remove(factory)
        factory.close()
    else:
        factory.empty_root()
    factory.busy = False


def close_factories() -> None:
    with _lock:
        factories = list(_factories)
        _factories.clear()
    for factory in factories:
        factory.close()


atexit.register(discard_spare)
atexit.register(close_factories)
