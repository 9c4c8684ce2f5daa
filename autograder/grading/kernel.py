"""The sandboxed grading kernel: ``python -m autograder.grading.kernel --recipe R -f CONN``.

A kernel is started before its notebook is known (``prestart``): the grader keeps one
started, with the libraries imported, while the current notebook runs.  Every kernel serves
exactly one notebook, and no student code runs before step 8.  It runs, in this order (inside
bubblewrap, see :mod:`autograder.grading.sandbox`, or in the weak sandbox):

Started, before any job (nothing secret, nothing of any student's):

1. asks to be killed with its parent (the grader's worker), reads its recipe (the sandbox's
   home, the limits; no key, no tests) and deletes it;
2. opens the verdict file (append only), the only channel the grader trusts, and its log;
3. sets resource limits: address space (memory bomb), CPU seconds (runaway loops that
   ignore interrupts), open files, core dumps;
4. scrubs the environment, points HOME/TMPDIR/IPYTHONDIR at its own, still empty folder,
   and sends fd 1 to /dev/null and fd 2 to its log (output must go through IPython, where
   it is capped);
5. imports what every graded notebook needs (torch, numpy, chainrule, coursework, the
   guard's protected modules, ipykernel): :func:`preload`;
6. waits for its job: one line ``go`` on stdin (end of file: the grader discarded it, exit).

Given its job (``execute`` wrote ``spec.json`` to the handoff folder, then said ``go``):

7. reads the job's spec (trusted test sources, HMAC key) and deletes it; copies the
   notebook's release files into its folder and removes, from the folder it shares with
   the grader, every name the student must not find; limits the size of files it writes;
   installs :mod:`autograder.grading.guard` (the snapshot is taken at the begin cell);
   in the weak sandbox, when started as root, drops to an unprivileged user (``nobody``)
   that cannot read the grading workspace (mode 0700); installs a seccomp filter under which
   no new process starts, native code included (:mod:`autograder.grading.no_new_processes`);
8. hands over to ipykernel, which runs the notebook.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import sys
import time


def _limit(which: int, value: int) -> None:
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))
    except (ValueError, OSError):
        pass


def die_with_parent() -> None:
    """SIGKILL when the process that started this one dies (the grader's workers and kernels use it):
    a grader killed mid-run leaves no worker or kernel behind."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _read_and_remove(path: str) -> dict:
    with open(path) as fh:
        content = json.load(fh)
    os.unlink(path)
    return content


def preload(threads: int) -> float:
    """Import what every graded notebook needs, before its job is known; returns the seconds taken.

    The guard is not installed yet: installed, it does nothing before the begin cell either,
    so these imports see the same interpreter as they would after it."""
    started = time.monotonic()
    try:
        import torch

        torch.set_num_threads(threads)
    except Exception:
        pass
    from autograder.grading import guard

    guard.preload()
    import ipykernel.kernelapp  # noqa: F401 - imported here, used at step 8

    return time.monotonic() - started


def wait_for_job() -> bool:
    """True once the grader says ``go``; False when it closed the pipe (this kernel is discarded)."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 64)
        if not chunk:
            return False
        line += chunk
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)   # the student's input() reads nothing of the grader's
    os.close(devnull)
    return line.strip() == b"go"


def main(argv: list[str], forked: bool = False) -> None:
    """Steps 1-8.  ``forked``: a kernel forked by the factory, whose job was written before the fork."""
    # 1-2: the recipe, the verdict file and the log.
    die_with_parent()
    recipe = _read_and_remove(argv[argv.index("--recipe") + 1])
    conn_path = argv[argv.index("-f") + 1]
    sandbox = recipe["sandbox"]
    report_fd = os.open(recipe["report"], os.O_WRONLY | os.O_APPEND)
    log = os.open(recipe["log"], os.O_WRONLY | os.O_APPEND)  # the grader reads its tail on a crash
    os.makedirs(sandbox, exist_ok=True)

    # 3: limits (the file size one at step 7: the release files are copied first).
    limits = recipe["limits"]
    _limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    _limit(resource.RLIMIT_NOFILE, 512)
    _limit(resource.RLIMIT_CORE, 0)

    # 4: environment and file descriptors.
    threads = str(limits.get("threads", 1))
    _scrub_environment(sandbox, int(threads))
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.dup2(log, 2)
    os.close(log)

    # 5-6: the libraries, then the job.
    from autograder.grading.protocol import IMPORT_TIME_PREFIX, PRELOAD_TIME_PREFIX

    os.write(2, f"{PRELOAD_TIME_PREFIX}{preload(int(threads)):.3f}\n".encode())   # forked: already done
    if not forked and not wait_for_job():
        os._exit(0)

    # 7: the job.
    spec = _read_and_remove(recipe["job"])
    files = spec.get("files")
    if files and os.path.isdir(files):
        for name in sorted(os.listdir(files)):
            shutil.copyfile(os.path.join(files, name), os.path.join(sandbox, name))
    for path in recipe.get("remove", ()):   # what the student must not find in the shared folder
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)
    _limit(resource.RLIMIT_FSIZE, int(limits["file_mb"]) * 1024 * 1024)

    own_conn = conn_path
    if recipe.get("copy_connection"):
        # Weak sandbox: the connection file lives in the grader's private folder, which the
        # kernel cannot read once it runs as nobody: copy it in.
        with open(conn_path) as fh:
            conn = fh.read()
        own_conn = os.path.join(sandbox, ".kernel-connection.json")
        with open(own_conn, "w") as fh:
            fh.write(conn)

    uid = recipe.get("uid")
    gid = recipe.get("gid")
    if os.geteuid() == 0 and uid is not None:
        for root, dirs, names in os.walk(sandbox):
            for name in dirs + names + ["."]:
                os.chown(os.path.join(root, name), uid, gid)
        _limit(resource.RLIMIT_NPROC, int(limits.get("nproc", 512)))

    from autograder.grading import guard

    started = time.monotonic()
    guard.install({**spec, "sandbox": sandbox, "read_roots": recipe["read_roots"]}, report_fd)
    os.write(2, f"{IMPORT_TIME_PREFIX}{time.monotonic() - started:.3f}\n".encode())

    if os.geteuid() == 0 and uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    from autograder.grading.no_new_processes import forbid_new_processes

    why_not = forbid_new_processes()   # from here on no process starts, native code included
    if why_not:
        os.write(2, f"{why_not}\n".encode())
    os.chdir(sandbox)
    repo = recipe.get("repo_root")
    sys.path[:] = [p for p in sys.path if p not in ("", ".", repo)]
    sys.path.insert(0, sandbox)
    for name in [m for m in sys.modules if m == "autograder" or m.startswith("autograder.")]:
        del sys.modules[name]

    # 8: the notebook.
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=["-f", own_conn, "--IPKernelApp.capture_fd_output=False",
                                      "--HistoryManager.enabled=False", "--Application.log_level=CRITICAL"])


# ---------------------------------------------------------------- the kernel factory
def factory_main(threads: int, home: str) -> None:
    """One per grading process, in its own bubblewrap sandbox: import the libraries once, then
    fork one kernel per notebook, one at a time, and clear the sandbox after each.

    Speaks lines on stdin/stdout with the grader (:class:`autograder.grading.prestart.KernelFactory`):
    ``fork RECIPE CONN`` -> ``forked PID``, then ``exited PID STATUS`` once the kernel, every
    process it left and every file it wrote are gone; ``kill PID``; end of file: exit.
    No student code ever runs in the factory itself: only in its children, after the fork.
    """
    import select
    import signal

    die_with_parent()
    _not_dumpable()   # a kernel cannot ptrace the factory nor read its memory, though it shares its uid
    _scrub_environment(home, threads)
    started = time.monotonic()
    preload(threads)
    import torch._dynamo  # noqa: F401 - torch.func imports it at its first call: 2 s, once here

    replies = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    replies.write(f"ready {time.monotonic() - started:.3f}\n")
    child, unread, lines = None, b"", []
    while True:
        if not lines and select.select([0], [], [], 0.05)[0]:
            chunk = os.read(0, 4096)
            if not chunk:   # the grader is gone or done
                break
            *complete, unread = (unread + chunk).split(b"\n")
            lines += [line.decode().split() for line in complete]
        words = lines.pop(0) if lines else []
        if words[:1] == ["fork"]:
            if child is not None:   # the grader moved on without waiting: end the last one first
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                clear_sandbox(home)
            child = os.fork()
            if child == 0:
                _serve_forked(words[1], words[2], devnull, replies.fileno())
            replies.write(f"forked {child}\n")
        elif words[:1] == ["kill"] and child is not None and words[1] == str(child):
            os.kill(child, signal.SIGKILL)
        if child is not None:
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid:
                clear_sandbox(home)   # raises if it cannot: the factory dies, and the grader starts another
                replies.write(f"exited {child} {os.waitstatus_to_exitcode(status)}\n")
                child = None
    clear_sandbox(home)
    os._exit(0)


def _serve_forked(recipe: str, conn: str, devnull: int, replies: int) -> None:
    """The forked kernel: none of the factory's pipes (its commands, its replies), then steps 1-8."""
    os.dup2(devnull, 0)
    os.close(replies)
    code = 1
    try:
        main(["--recipe", recipe, "-f", conn], forked=True)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0
    finally:
        os._exit(code)


def clear_sandbox(home: str) -> None:
    """Leave the sandbox as the factory found it: kill every process but the factory (and
    bubblewrap's init, which reaps them), and empty the writable folders (the only ones: the
    rest of the sandbox is read-only), so that nothing of one student reaches the next."""
    import signal

    try:
        os.kill(-1, signal.SIGKILL)   # all but this process and the pid namespace's init
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _other_processes():
        time.sleep(0.005)
    for folder in (home, "/tmp", "/dev/shm"):
        _empty(folder)


def _other_processes() -> list[int]:
    """The live processes of this pid namespace other than init (1) and this one."""
    others = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in (1, os.getpid()):
            try:
                with open(f"/proc/{name}/stat") as fh:
                    if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                        others.append(int(name))
            except OSError:
                pass
    return others


def _empty(folder: str) -> None:
    """Remove everything in ``folder``, even what its writer made read-only (it had this uid),
    except mount points (the factory's handoff folder may be bound inside ``/tmp``).  Raises
    OSError (or RecursionError) if something is left: the factory must not fork again then."""
    if not os.path.isdir(folder):
        return
    device = os.lstat(folder).st_dev

    def remove(path: str) -> bool:
        status = os.lstat(path)
        if status.st_dev != device:
            return False
        if stat.S_ISDIR(status.st_mode):
            os.chmod(path, 0o700)
            kept = [name for name in os.listdir(path) if not remove(os.path.join(path, name))]
            if kept:
                return False
            os.rmdir(path)
        else:
            os.unlink(path)
        return True

    os.chmod(folder, 0o755)
    for name in os.listdir(folder):
        remove(os.path.join(folder, name))


def _not_dumpable() -> None:
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0)   # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass


def _scrub_environment(home: str, threads: int) -> None:
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV") if k in os.environ}
    os.environ.clear()
    os.environ.update(keep)
    os.environ.update({
        "HOME": home, "TMPDIR": home, "IPYTHONDIR": os.path.join(home, ".ipython"),
        "MPLCONFIGDIR": os.path.join(home, ".mpl"), "JUPYTER_RUNTIME_DIR": home,
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "agg",
    })


if __name__ == "__main__":
    if sys.argv[1:2] == ["--factory"]:
        factory_main(int(sys.argv[2]), sys.argv[3])
    else:
        main(sys.argv[1:])
