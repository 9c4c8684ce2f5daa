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
   that cannot read the grading workspace (mode 0700);
8. hands over to ipykernel, which runs the notebook.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
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


def main(argv: list[str]) -> None:
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
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV") if k in os.environ}
    os.environ.clear()
    os.environ.update(keep)
    threads = str(limits.get("threads", 1))
    os.environ.update({
        "HOME": sandbox, "TMPDIR": sandbox, "IPYTHONDIR": os.path.join(sandbox, ".ipython"),
        "MPLCONFIGDIR": os.path.join(sandbox, ".mpl"), "JUPYTER_RUNTIME_DIR": sandbox,
        "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "agg",
    })
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.dup2(log, 2)
    os.close(log)

    # 5-6: the libraries, then the job.
    from autograder.grading.protocol import IMPORT_TIME_PREFIX, PRELOAD_TIME_PREFIX

    os.write(2, f"{PRELOAD_TIME_PREFIX}{preload(int(threads)):.3f}\n".encode())
    if not wait_for_job():
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


if __name__ == "__main__":
    main(sys.argv[1:])
