"""Execute one prepared notebook in a sandboxed, guarded kernel and read back signed verdicts."""

from __future__ import annotations

import asyncio
import atexit
import copy
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field

import nbformat
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from . import prestart
from .protocol import IMPORT_TIME_PREFIX, PRELOAD_TIME_PREFIX, Verdict, verify
from .sandbox import Sandbox, choose

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
    disk_mb: int = 256                  # the kernel's home, and its /tmp, each (bubblewrap)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Execution:
    notebook: nbformat.NotebookNode
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    events: list = field(default_factory=list)      # what went wrong while running
    seconds: float = 0.0
    kernel_log: str = ""
    start_error: str | None = None                  # set when the kernel never ran a cell: the grader's failure
    failed_starts: list = field(default_factory=list)   # one reason per kernel that failed to start
    timings: dict = field(default_factory=dict)         # seconds: see ``_timings``


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
        self.first_cell: float | None = None    # when the kernel answered and the first cell went out
        self.cells_done: float | None = None
        self._last_timeout = -10
        self.stuck = False

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        self._executed += 1
        if self.first_cell is None:
            self.first_cell = time.monotonic()
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


class StartedKernelProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, whose launch gives the job to a kernel already started
    (``prestart``) instead of starting a process: the rest of jupyter_client (connection file,
    ports, interrupt, kill, clean-up) is as for any local kernel."""

    def __init__(self, kernel: prestart.StartedKernel, **kwargs):
        super().__init__(**kwargs)
        self.kernel = kernel

    async def launch_kernel(self, cmd: list[str], **kwargs):
        self.kernel.go()    # the connection file is written by now; the kernel reads it after "go"
        self.process = self.kernel.process
        # A spare has a session of its own; a forked kernel's pid is in its sandbox's pid
        # namespace, where no signal from here may go (its factory sends them).
        forked = isinstance(self.process, prestart.ForkedKernel)
        self.pid = self.pgid = None if forked else self.process.pid
        self.cwd = kwargs.get("cwd")
        return self.connection_info


def execute(nb: nbformat.NotebookNode, tests: dict[str, str], limits: Limits,
            files: dict[str, bytes] | None = None, preludes: dict[str, str] | None = None,
            kernel_display: str = "Python 3 (autograder sandbox)", extra_imports: list | None = None,
            sandbox: Sandbox | None = None) -> Execution:
    """Run ``nb`` (already prepared: begin cell first, test stubs in place) in a fresh sandbox.

    ``sandbox`` is the one the grader chose at start (``sandbox.choose``); by default
    bubblewrap, and an error where it cannot run.  A kernel that fails before the first
    cell is sent (no student code has run) is the grader's failure: the notebook is run
    again on a fresh kernel, up to ``START_ATTEMPTS`` times.  If none starts, the result
    has ``start_error`` set, never a student's zero.
    """
    sandbox = sandbox or choose()
    failed: list[str] = []
    spent = 0.0
    while True:
        result = _execute_once(copy.deepcopy(nb), tests, limits, files, preludes, kernel_display, extra_imports,
                               sandbox)
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
                  kernel_display: str, extra_imports: list | None, sandbox: Sandbox) -> Execution:
    start = time.monotonic()
    recipe = prestart.Recipe.of(sandbox, limits.as_dict())
    kernel = prestart.take(recipe)   # started while the last notebook ran; starts the next one's
    key = secrets.token_bytes(32)
    kernel.give_job({"key": key.hex(), "tests": tests, "extra_imports": list(extra_imports or []),
                     "preludes": preludes or {}}, files)

    km = AsyncKernelManager()
    # Interrupts travel as a control message, which the kernel turns into its own SIGINT:
    # a signal from outside would reach bubblewrap, not the kernel in its pid namespace.
    km._kernel_spec = KernelSpec(argv=kernel.argv, display_name=kernel_display, language="python",
                                 interrupt_mode="message")
    if sandbox.isolated:
        km.transport, km.ip = "ipc", os.path.join(kernel.handoff, "zmq")   # no TCP across the net namespace
    km.connection_file = kernel.connection_file
    km.provisioner = StartedKernelProvisioner(kernel=kernel, kernel_spec=km.kernel_spec, parent=km)
    client = CappedClient(
        nb, km=km, timeout=limits.cell_timeout, allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeoutError",
                          "evalue": f"cell did not finish in {limits.cell_timeout:g} s (interrupted)",
                          "traceback": [f"CellTimeoutError: cell did not finish in {limits.cell_timeout:g} s"]},
        startup_timeout=limits.startup_timeout, record_timing=False, shutdown_kernel="immediate",
        resources={"metadata": {"path": kernel.handoff if sandbox.isolated else kernel.home}},
        cell_cap=limits.output_cell_bytes, total_cap=limits.output_total_bytes,
    )
    result = Execution(notebook=nb)
    prepared = time.monotonic()

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
                                     else "kernel died (sys.exit/os._exit/killed/crashed/out of memory)")
            else:
                result.events.append(f"execution error: {type(exc).__name__}: {exc}"[:500])
        finally:
            client.cells_done = time.monotonic()
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
        result.verdicts, problems = verify(kernel.verdicts, key)
        result.events.extend(problems)
        with open(kernel.log, "rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")    # holds the kernel's timing line
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 2000))
            tail = fh.read().decode("utf-8", "replace")
        if any("died" in e or "execution error" in e for e in result.events):
            result.kernel_log = tail
        ended = time.monotonic()
        result.timings = _timings(start, prepared, client, ended, head)
    finally:
        watchdog.cancel()
        # nbclient leaves this behind when the kernel never started; the kernel is gone either way.
        atexit.unregister(client._cleanup_kernel)
        # Nor would the sockets of a kernel that never started be closed: left to the garbage
        # collector, their context's ``term`` blocks the next attempt forever.
        kc = getattr(client, "kc", None)
        try:
            if kc is not None:
                kc.stop_channels()   # its heartbeat thread, before its context goes
            for context in {km.context, getattr(kc, "context", None)} - {None}:
                context.destroy(linger=0)
        except Exception:  # noqa: BLE001 - already closed, or its loop is gone
            pass
        kernel.discard()
    result.seconds = time.monotonic() - start
    return result


def _timings(start: float, prepared: float, client: "CappedClient", ended: float, log: str) -> dict:
    """Where the notebook's time went, in seconds: ``prepare`` (taking a kernel, writing its job),
    ``kernel_start`` (from ``go`` to the first cell, less the guard's install: the rest of the
    libraries' import if the kernel was not done with it, ipykernel's start), ``imports`` (the
    guard's install, with the job's extra imports), ``cells``, ``shutdown``; and ``preload``,
    the seconds the kernel imported the libraries, mostly before its job, while the last
    notebook ran (its own log says both)."""
    first = client.first_cell or client.cells_done or ended
    done = client.cells_done or ended
    logged = {IMPORT_TIME_PREFIX: 0.0, PRELOAD_TIME_PREFIX: 0.0}
    for line in log.splitlines():
        for prefix in logged:
            if line.startswith(prefix):
                try:
                    logged[prefix] = float(line[len(prefix):])
                except ValueError:
                    pass
    imports = logged[IMPORT_TIME_PREFIX]
    return {"prepare": round(prepared - start, 3), "kernel_start": round(max(0.0, first - prepared - imports), 3),
            "imports": round(imports, 3), "cells": round(done - first, 3), "shutdown": round(ended - done, 3),
            "preload": round(logged[PRELOAD_TIME_PREFIX], 3)}


def _kill_kernel(km, result) -> None:
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None and process.poll() is None:
        result.events.append("kernel killed: the notebook did not stop after its time limit")
        try:
            process.kill()
        except OSError:
            pass
