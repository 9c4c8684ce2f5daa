"""The grading kernel's seccomp filter (``grading/no_new_processes.py``): once installed, no process
starts, whether Python asks (where the guard refuses first) or native code does (which no audit
hook sees); threads still start, so ipykernel and PyTorch work as before."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ag_helpers import REPO, cell_output, make_toy_workspace, needs_os_sandbox, toy_job
from autograder.grading import prestart
from autograder.grading.pipeline import grade_one
from autograder.grading.sandbox import Sandbox

SUPPORTED = platform.machine() in ("x86_64", "aarch64")

TRY_EVERY_WAY = """
import ctypes, errno, os, subprocess, sys, threading
sys.path.insert(0, sys.argv[1])
from autograder.grading.no_new_processes import forbid_new_processes
print("installed:", repr(forbid_new_processes()))
def refused(start):
    try:
        start()
    except OSError as error:
        return errno.errorcode[error.errno]
    return "started"
print("os.fork:", refused(os.fork))
print("subprocess:", refused(lambda: subprocess.run(["true"])))
libc = ctypes.CDLL(None, use_errno=True)
pid = libc.fork()      # the C library's fork: no audit event, no Python in between
if pid == 0:
    os._exit(0)
print("native fork:", "started" if pid > 0 else errno.errorcode[ctypes.get_errno()])
from_thread = []
thread = threading.Thread(target=lambda: from_thread.append(refused(os.fork)))
thread.start(); thread.join()
print("os.fork from a new thread:", from_thread)
import torch
torch.set_num_threads(2)
a = torch.arange(250000, dtype=torch.float64).reshape(500, 500) / 250000
print("torch on 2 threads:", torch.allclose(a @ a, torch.from_numpy(a.numpy() @ a.numpy())))
print("seccomp:", open("/proc/self/status").read().split("Seccomp:")[1].split()[0])
"""


@pytest.mark.skipif(not SUPPORTED, reason=f"the filter knows x86_64 and aarch64, not {platform.machine()}")
def test_no_process_starts_under_the_filter_but_threads_do():
    run = subprocess.run([sys.executable, "-c", TRY_EVERY_WAY, REPO], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "installed: ''",
        "os.fork: EPERM",
        "subprocess: EPERM",
        "native fork: EPERM",
        "os.fork from a new thread: ['EPERM']",
        "torch on 2 threads: True",
        "seccomp: 2",                          # mode 2: a filter
    ]


def test_each_filter_program_is_well_formed_and_lets_threads_start():
    from autograder.grading.no_new_processes import _ABIS, CLONE_THREAD, _program

    for abi in _ABIS.values():
        program = _program(abi)
        assert len(program) < 32
        # Each conditional jump lands inside the program, and the program ends in a return.
        for index, (code, if_true, if_false, _) in enumerate(program):
            if code in (0x15, 0x35, 0x45):
                assert index + 1 + max(if_true, if_false) < len(program)
        assert program[-1][0] == 0x06 and program[-1][3] == 0x7FFF0000       # otherwise: allowed
        assert (0x45, 1, 0, CLONE_THREAD) in program                         # a thread is allowed


# subprocess keeps its own reference to the C function that starts a process, called after
# Popen's audit event: the guard replaces it too, and the kernel's filter stands behind.
START_A_PROCESS_PAST_POPEN = """
import os, subprocess, time
read_end, write_end = os.pipe()
try:
    subprocess._fork_exec([b'/bin/true'], [b'/bin/true'], True, (write_end,), None, None, -1, -1, -1, -1,
                          -1, -1, read_end, write_end, False, False, -1, None, None, -1, -1, None, False)
    print('STARTED')
except OSError as error:
    print('REFUSED', error)
time.sleep(1.5)   # meanwhile the test finds this kernel and reads its seccomp mode
"""


def _kernels_seccomp_modes() -> set[str]:
    """The seccomp mode of every grading kernel or kernel factory running now (0: none, 2: a filter)."""
    modes = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"autograder.grading.kernel" not in fh.read():
                    continue
            with open(f"/proc/{pid}/status") as fh:
                modes.add(fh.read().split("Seccomp:")[1].split()[0])
        except (OSError, IndexError):
            pass
    return modes


@pytest.mark.skipif(not SUPPORTED, reason=f"the filter knows x86_64 and aarch64, not {platform.machine()}")
@pytest.mark.parametrize("kind", ["bubblewrap", "weak"])
def test_a_student_cell_runs_under_the_filter(tmp_path, os_sandbox, kind):
    if kind == "bubblewrap":
        needs_os_sandbox(os_sandbox, "this case is the kernel forked by a factory in bubblewrap")
    sandbox = os_sandbox[0] if kind == "bubblewrap" else Sandbox("weak")
    ws, release = make_toy_workspace(str(tmp_path / "ws"))
    prestart.discard_spare()    # a spare or factory of an earlier test in this process is not this test's
    prestart.close_factories()
    job = toy_job(ws, release, sandbox, str(tmp_path / "s"), "s_starts_a_process",
                  "def double(v):\n    return 2 * v\n" + START_A_PROCESS_PAST_POPEN)
    with ThreadPoolExecutor(1) as pool:
        grading = pool.submit(grade_one, job)
        modes = set()
        while not grading.done():
            modes |= _kernels_seccomp_modes()
            time.sleep(0.05)
        result = grading.result().as_json()
    prestart.discard_spare()
    prestart.close_factories()
    assert result["score"] == 6, result["notebooks"]["toy.ipynb"]["flags"]
    assert "REFUSED autograder sandbox: starting a process is not allowed" in cell_output(result, "double_answer")
    assert "2" in modes, f"no grading kernel ran under a seccomp filter (modes seen: {modes})"
