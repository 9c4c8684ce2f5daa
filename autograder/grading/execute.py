"""Execute one prepared notebook in a sandboxed, guarded kernel and read back signed verdicts."""

from __future__ import annotations

import asyncio
import atexit
import copy
import hashlib
import hmac
import json
import os
import pwd
import secrets
import shutil
import sys
import threading
import tempfile
import time
from dataclasses import dataclass, field

import nbformat
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BEGIN_SOURCE = '__import__("sys").audit("autograder.begin")'
TEST_STUB = '__import__("sys").audit("autograder.test", {grade_id!r})'
KERNEL_COMMAND = [sys.executable, "-m", "autograder.grading.kernel"]
WATCHDOG_SLACK = 60.0   # seconds past the notebook limit before the kernel is killed from outside
# Kernels started at the same moment by two workers can race for a ZMQ port, and the loser dies
# at start-up ("Address already in use"); a fresh kernel picks fresh ports.
START_ATTEMPTS = 3


@dataclass
class Limits:
    cell_timeout: float = 30.0          # seconds per cell, then the kernel is interrupted
    notebook_timeout: float = 300.0     # seconds for the whole notebook, then the kernel is killed
    startup_timeout: float = 120.0      # seconds for the kernel to answer its first message
    memory_mb: int = 3072               # address space of the kernel (torch needs ~1.5 GiB of it)
    cpu_seconds: int = 600
    file_mb: int = 64
    output_cell_bytes: int = 64 * 1024  # outputs kept per cell
    output_total_bytes: int = 1024 * 1024
    threads: int = 1

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Execution:
    notebook: nbformat.NotebookNode
    verdicts: dict = field(default_factory=dict)    # grade_id -> verdict record
    events: list = field(default_factory=list)      # what went wrong while running
    seconds: float = 0.0
    kernel_log: str = ""
    start_error: str | None = None                  # set when the kernel never ran a cell: the grader's failure
    failed_starts: list = field(default_factory=list)   # one reason per kernel that failed to start


class CappedClient(NotebookClient):
    """nbclient that keeps at most N bytes of output per cell and per notebook.

    A flood of output (one huge line counts as much as many small ones) is cut off at
    the grader, so it can neither fill the gradebook nor the feedback.
    """

    def __init__(self, *args, cell_cap: int, total_cap: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._cell_cap, self._total_cap = cell_cap, total_cap
        self._used: dict[int, int] = {}
        self._total = 0
        self.truncated: dict[int, int] = {}
        self._executed = 0
        self._last_timeout = -10
        self.stuck = False

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        self._executed += 1
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    async def _async_handle_timeout(self, timeout, cell=None):
        # Two cells in a row timing out: the kernel ignores interrupts; stop it rather
        # than wait out every remaining cell.
        if self._last_timeout == self._executed - 1:
            self.stuck = True
            raise DeadKernelError("kernel ignored the interrupt after a timeout")
        self._last_timeout = self._executed
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] in ("stream", "display_data", "execute_result", "error", "update_display_data"):
            size = len(json.dumps(msg.get("content", {}), default=str))
            used = self._used.get(cell_index, 0)
            if used + size > self._cell_cap or self._total + size > self._total_cap:
                dropped = self.truncated.get(cell_index, 0)
                if dropped == 0:
                    outs.append(nbformat.v4.new_output(
                        "stream", name="stdout",
                        text=f"\n[autograder: output of this cell cut off after {used} bytes]\n"))
                self.truncated[cell_index] = dropped + size
                return None
            self._used[cell_index] = used + size
            self._total += size
        return super().output(outs, msg, display_id, cell_index)


_USER_CACHE: list = []


def sandbox_user() -> tuple[int, int] | None:
    """The unprivileged user the kernel runs as when the grader runs as root.

    None when the grader is not root, or when that user could not even read Python
    itself (e.g. a pyenv Python under /root): then the audit hook alone keeps the
    kernel out of the workspace.
    """
    if _USER_CACHE:
        return _USER_CACHE[0]
    user = None
    if os.geteuid() == 0 and os.environ.get("AUTOGRADER_NO_UID_DROP") != "1":
        try:
            pw = pwd.getpwnam("nobody")
            candidate = (pw.pw_uid, pw.pw_gid)
        except KeyError:
            candidate = None
        if candidate is not None:
            import sysconfig

            needed = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], REPO_ROOT]
            pid = os.fork()
            if pid == 0:  # child: can the unprivileged user read what a kernel needs?
                try:
                    os.setgroups([])
                    os.setgid(candidate[1])
                    os.setuid(candidate[0])
                    ok = all(os.access(p, os.R_OK | os.X_OK) and os.listdir(p) is not None for p in needed)
                except Exception:
                    ok = False
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) == 0:
                user = candidate
    _USER_CACHE.append(user)
    return user


def read_roots() -> list[str]:
    """Folders the student's kernel may read: Python, its packages, the course libraries."""
    import coursework  # noqa: F401  - the course helpers live next to chainrule

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr", "/lib", "/lib64", "/etc/localtime",
             "/etc/mime.types", "/usr/share/zoneinfo",
             "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu", "/sys/fs/cgroup",
             "/dev/urandom", "/dev/null", "/dev/shm"}
    for mod in ("coursework", "chainrule"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except Exception:
                continue
        roots.add(os.path.dirname(os.path.dirname(os.path.abspath(m.__file__))) if mod == "coursework"
                  else os.path.dirname(os.path.abspath(m.__file__)))
    import site

    roots.update(site.getsitepackages())
    return sorted(roots)


def verify_reports(path: str, key: bytes) -> tuple[dict, list[str]]:
    verdicts: dict = {}
    problems: list[str] = []
    last = 0
    with open(path, "rb") as fh:
        data = fh.read(8 * 1024 * 1024)
    for raw in data.splitlines():
        try:
            outer = json.loads(raw)
            body, mac = outer["body"], outer["mac"]
            good = hmac.compare_digest(hmac.new(key, body.encode(), hashlib.sha256).hexdigest(), mac)
        except Exception:
            good = False
        if not good:
            problems.append("forged or damaged verdict line ignored")
            continue
        rec = json.loads(body)
        if rec.get("seq", 0) <= last:
            problems.append("replayed verdict line ignored")
            continue
        last = rec["seq"]
        gid = rec.get("grade_id")
        if rec.get("status") in ("repeat", "refused"):
            continue
        verdicts.setdefault(gid, rec)
    return verdicts, problems


def execute(nb: nbformat.NotebookNode, tests: dict[str, str], limits: Limits,
            files: dict[str, bytes] | None = None, preludes: dict[str, str] | None = None,
            kernel_display: str = "Python 3 (autograder sandbox)", extra_imports: list | None = None) -> Execution:
    """Run ``nb`` (already prepared: begin cell first, test stubs in place) in a fresh sandbox.

    A kernel that fails before the first cell is sent (no student code has run) is the
    grader's failure: the notebook is run again on a fresh kernel, up to ``START_ATTEMPTS``
    times.  If none starts, the result has ``start_error`` set, never a student's zero.
    """
    failed: list[str] = []
    spent = 0.0
    while True:
        result = _execute_once(copy.deepcopy(nb), tests, limits, files, preludes, kernel_display, extra_imports)
        spent += result.seconds
        if result.start_error is None:
            break
        failed.append(result.start_error)
        # Stop once failed starts have taken a start-up timeout, the margin job_deadline allows:
        # a kernel silent that long is no port race, and waiting on it again only delays the class.
        if len(failed) >= START_ATTEMPTS or spent >= limits.startup_timeout:
            break
    result.failed_starts = failed
    if failed and result.start_error is None:
        result.events.insert(0, f"the kernel failed to start {len(failed)} time(s) ({'; '.join(failed)}); "
                                "graded on a fresh kernel")
    result.seconds = spent
    return result


def _execute_once(nb: nbformat.NotebookNode, tests: dict[str, str], limits: Limits,
                  files: dict[str, bytes] | None, preludes: dict[str, str] | None,
                  kernel_display: str, extra_imports: list | None) -> Execution:
    start = time.monotonic()
    private = tempfile.mkdtemp(prefix="ag-private-")       # grader-only: spec, verdicts
    sandbox = tempfile.mkdtemp(prefix="ag-sandbox-")       # the kernel's whole world
    os.chmod(private, 0o700)
    os.chmod(sandbox, 0o700)
    key = secrets.token_bytes(32)
    report_path = os.path.join(private, "verdicts.jsonl")
    log_path = os.path.join(private, "kernel.log")
    for p in (report_path, log_path):
        open(p, "wb").close()
        os.chmod(p, 0o600)
    for name, content in (files or {}).items():
        with open(os.path.join(sandbox, os.path.basename(name)), "wb") as fh:
            fh.write(content)
    user = sandbox_user()
    spec = {
        "key": key.hex(), "tests": tests, "extra_imports": list(extra_imports or []), "preludes": preludes or {}, "sandbox": sandbox,
        "report": report_path, "log": log_path, "limits": limits.as_dict(), "read_roots": read_roots(),
        "uid": user[0] if user else None, "gid": user[1] if user else None, "repo_root": REPO_ROOT,
    }
    spec_path = os.path.join(private, "spec.json")
    with open(spec_path, "w") as fh:
        json.dump(spec, fh)
    os.chmod(spec_path, 0o600)

    km = AsyncKernelManager()
    km._kernel_spec = KernelSpec(
        argv=[*KERNEL_COMMAND, "--spec", spec_path, "-f", "{connection_file}"],
        display_name=kernel_display, language="python",
        env={"PYTHONPATH": REPO_ROOT},
    )
    km.connection_file = os.path.join(private, "connection.json")
    client = CappedClient(
        nb, km=km, timeout=limits.cell_timeout, allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeoutError",
                          "evalue": f"cell did not finish in {limits.cell_timeout:g} s (interrupted)",
                          "traceback": [f"CellTimeoutError: cell did not finish in {limits.cell_timeout:g} s"]},
        startup_timeout=limits.startup_timeout, record_timing=False, shutdown_kernel="immediate",
        resources={"metadata": {"path": sandbox}},
        cell_cap=limits.output_cell_bytes, total_cap=limits.output_total_bytes,
    )
    result = Execution(notebook=nb)

    async def run():
        try:
            await asyncio.wait_for(client.async_execute(), timeout=limits.notebook_timeout)
        except Exception as exc:  # noqa: BLE001 - recorded, never lost
            if not client._executed:
                # No cell was sent, so nothing of the student's ran: the kernel failed to start.
                result.start_error = (f"no answer within the notebook's {limits.notebook_timeout:g} s limit"
                                      if isinstance(exc, asyncio.TimeoutError)
                                      else f"{type(exc).__name__}: {exc}"[:500])
                result.events.append(f"execution error: the kernel could not start: {result.start_error}")
            elif isinstance(exc, asyncio.TimeoutError):
                result.events.append(f"notebook stopped after {limits.notebook_timeout:g} s (time limit)")
            elif isinstance(exc, DeadKernelError):
                result.events.append("kernel stopped: it ignored interrupts after a cell timeout" if client.stuck
                                     else "kernel died (sys.exit/os._exit/killed/out of memory)")
            else:
                result.events.append(f"execution error: {type(exc).__name__}: {exc}"[:500])
        finally:
            try:
                if km.has_kernel:
                    await km.shutdown_kernel(now=True)
            except Exception:
                pass

    # A last resort outside the event loop: if cancelling a notebook that overran its time limit
    # itself hangs (a coroutine waiting on a silent kernel), kill the kernel, so every await on
    # it fails and the submission is recorded (as a 0) instead of stalling the class.
    watchdog = threading.Timer(limits.notebook_timeout + WATCHDOG_SLACK, _kill_kernel, args=(km, result))
    watchdog.daemon = True
    watchdog.start()
    try:
        asyncio.run(run())
        for idx, dropped in client.truncated.items():
            result.events.append(f"output flood cut off in cell {idx} ({dropped} bytes dropped)")
        result.verdicts, problems = verify_reports(report_path, key)
        result.events.extend(problems)
        if any("died" in e or "execution error" in e for e in result.events):
            with open(log_path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(log_path) - 2000))
                result.kernel_log = fh.read().decode("utf-8", "replace")
    finally:
        watchdog.cancel()
        # nbclient leaves this behind when the kernel never started; the kernel is gone either way.
        atexit.unregister(client._cleanup_kernel)
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(sandbox, ignore_errors=True)
    result.seconds = time.monotonic() - start
    return result


def _kill_kernel(km, result) -> None:
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None and process.poll() is None:
        result.events.append("kernel killed: the notebook did not stop after its time limit")
        try:
            process.kill()
        except OSError:
            pass
