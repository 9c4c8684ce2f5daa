"""Launcher of the sandboxed grading kernel: ``python -m autograder.grading.kernel --spec S -f CONN``.

Runs as the kernel process itself, in this order, before any student code exists (inside
bubblewrap, see :mod:`autograder.grading.sandbox`, or in the weak sandbox):

1. asks to be killed with its parent (the grader's worker), reads the job's spec (trusted
   test sources, HMAC key, limits) and deletes it;
2. opens the verdict file (append only), the only channel the grader trusts, and its log,
   then removes their names from the folder it shares with the grader;
3. sets resource limits: address space (memory bomb), CPU seconds (runaway loops
   that ignore interrupts), file size, open files, core dumps;
4. scrubs the environment, points HOME/TMPDIR/IPYTHONDIR at its own folder, copies the
   notebook's release files there, and sends fd 1 to /dev/null and fd 2 to its log
   (output must go through IPython, where it is capped);
5. installs :mod:`autograder.grading.guard` (imports torch/numpy/chainrule/coursework
   and snapshots them);
6. in the weak sandbox, when started as root, drops to an unprivileged user (``nobody``)
   that cannot read the grading workspace (mode 0700);
7. hands over to ipykernel.
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


def main(argv: list[str]) -> None:
    die_with_parent()
    spec_path = argv[argv.index("--spec") + 1]
    conn_path = argv[argv.index("-f") + 1]
    with open(spec_path) as fh:
        spec = json.load(fh)
    os.unlink(spec_path)
    sandbox = spec["sandbox"]
    report_fd = os.open(spec["report"], os.O_WRONLY | os.O_APPEND)
    log = os.open(spec["log"], os.O_WRONLY | os.O_APPEND)  # the grader reads its tail on a crash
    os.makedirs(sandbox, exist_ok=True)
    files = spec.get("files")
    if files and os.path.isdir(files):
        for name in sorted(os.listdir(files)):
            shutil.copyfile(os.path.join(files, name), os.path.join(sandbox, name))
    for path in spec.get("remove", ()):   # what the student must not find in the shared folder
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)

    limits = spec["limits"]
    _limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    _limit(resource.RLIMIT_FSIZE, int(limits["file_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_NOFILE, 512)
    _limit(resource.RLIMIT_CORE, 0)

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

    own_conn = conn_path
    if spec.get("copy_connection"):
        # Weak sandbox: the connection file lives in the grader's private folder, which the
        # kernel cannot read once it runs as nobody: copy it in.
        with open(conn_path) as fh:
            conn = fh.read()
        own_conn = os.path.join(sandbox, ".kernel-connection.json")
        with open(own_conn, "w") as fh:
            fh.write(conn)

    uid = spec.get("uid")
    gid = spec.get("gid")
    if os.geteuid() == 0 and uid is not None:
        for root, dirs, names in os.walk(sandbox):
            for name in dirs + names + ["."]:
                os.chown(os.path.join(root, name), uid, gid)
        _limit(resource.RLIMIT_NPROC, int(limits.get("nproc", 512)))

    from autograder.grading import guard
    from autograder.grading.protocol import IMPORT_TIME_PREFIX

    started = time.monotonic()
    try:
        import torch

        torch.set_num_threads(int(threads))
    except Exception:
        pass
    guard.install(spec, report_fd)
    os.write(2, f"{IMPORT_TIME_PREFIX}{time.monotonic() - started:.3f}\n".encode())

    if os.geteuid() == 0 and uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    os.chdir(sandbox)
    repo = spec.get("repo_root")
    sys.path[:] = [p for p in sys.path if p not in ("", ".", repo)]
    sys.path.insert(0, sandbox)
    for name in [m for m in sys.modules if m == "autograder" or m.startswith("autograder.")]:
        del sys.modules[name]

    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=["-f", own_conn, "--IPKernelApp.capture_fd_output=False",
                                      "--HistoryManager.enabled=False", "--Application.log_level=CRITICAL"])


if __name__ == "__main__":
    main(sys.argv[1:])
