"""Worker processes that grade one job at a time, each job under a deadline kept by the parent.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one job: a worker stuck anywhere
(a grader bug, a kernel that never answers and a cancellation that never ends) would
stall the whole class with it.  Here the parent knows which job each worker holds and
since when.  A job that overruns its deadline has its worker's stacks dumped (to say
where it hung), the worker killed and replaced, and the job run once more; a second
failure is recorded as a result of its own.  Every job ends with exactly one result.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import multiprocessing.connection
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

from . import scratch
from .kernel import die_with_parent

DUMP_SIGNAL = signal.SIGUSR1


def _serve(conn, task: Callable[[dict], dict], dump_path: str) -> None:
    """A worker's whole life: answer jobs until told to stop (``None``), or die with the parent."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is for the parent, which stops us
    with open(dump_path, "w") as dump:
        faulthandler.register(DUMP_SIGNAL, file=dump, all_threads=True)
        while True:
            job = conn.recv()
            if job is None:
                return
            conn.send(task(job))


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    dump_path: str
    job: int | None = None
    started: float = 0.0

    def stacks(self) -> str:
        """Where the worker is now (its threads' Python stacks), for the instructor's log."""
        try:
            os.kill(self.process.pid, DUMP_SIGNAL)
            time.sleep(0.5)
            with open(self.dump_path) as fh:
                return fh.read()[-4000:]
        except OSError:
            return ""

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.kill()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        try:
            os.unlink(self.dump_path)
        except OSError:
            pass


@dataclass
class Failure:
    """Why a job produced no result of its own: passed to ``on_failure`` after the last try."""
    reason: str
    stacks: str = ""
    tries: list = field(default_factory=list)


def run_jobs(jobs: list[dict], task: Callable[[dict], dict], workers: int,
             deadline: Callable[[dict], float], on_result: Callable[[dict, dict], None],
             on_failure: Callable[[dict, Failure], None], tries: int = 2, poll: float = 0.5) -> None:
    """Run ``task(job)`` for every job in ``workers`` spawned processes.

    ``task`` must be a module-level function (it is pickled by reference).  Each job ends
    in exactly one call: ``on_result(job, result)``, or ``on_failure(job, failure)``
    after ``tries`` attempts that crashed their worker or ran past ``deadline(job)`` seconds.
    """
    ctx = multiprocessing.get_context("spawn")
    pending = list(range(len(jobs)))
    failures: dict[int, list[str]] = {}
    last_stacks: dict[int, str] = {}
    pool: list[_Worker] = []

    def start_worker() -> _Worker:
        parent, child = ctx.Pipe()
        fd, dump_path = tempfile.mkstemp(prefix=scratch.prefix("worker"), suffix=".stacks")
        os.close(fd)
        proc = ctx.Process(target=_serve, args=(child, task, dump_path), daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent, dump_path)

    def failed(worker: _Worker, reason: str, stacks: str = "") -> None:
        index = worker.job
        worker.job = None
        failures.setdefault(index, []).append(reason)
        if stacks:
            last_stacks[index] = stacks
        if len(failures[index]) < tries:
            pending.insert(0, index)
        else:
            on_failure(jobs[index], Failure(reason, last_stacks.get(index, ""), failures[index]))

    try:
        while pending or any(w.job is not None for w in pool):
            wanted = min(workers, len(pending) + sum(w.job is not None for w in pool))
            while len(pool) < wanted:
                pool.append(start_worker())
            for worker in pool:
                if worker.job is None and pending:
                    worker.job = pending.pop(0)
                    worker.started = time.monotonic()
                    try:
                        worker.conn.send(jobs[worker.job])
                    except OSError:
                        pass  # the worker is dead: its sentinel says so below, and the job is retried
            busy = [w for w in pool if w.job is not None]
            ready = multiprocessing.connection.wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                                                    timeout=poll)
            for worker in busy:
                exiting = False
                if worker.conn in ready:
                    try:
                        result = worker.conn.recv()
                    except (EOFError, OSError):
                        exiting = True
                    else:
                        index, worker.job = worker.job, None
                        on_result(jobs[index], result)
                        continue
                if exiting or worker.process.sentinel in ready or not worker.process.is_alive():
                    worker.process.join(5)  # its pipe closes a moment before it can be reaped
                    code = worker.process.exitcode
                    failed(worker, f"grader worker died (exit code {code})")
                    worker.stop(kill=True)
                    pool.remove(worker)
                elif time.monotonic() - worker.started > deadline(jobs[worker.job]):
                    limit = deadline(jobs[worker.job])
                    stacks = worker.stacks()
                    failed(worker, f"grader worker stopped after {limit:.0f} s (the job's deadline)", stacks)
                    worker.stop(kill=True)
                    pool.remove(worker)
    finally:
        for worker in pool:
            worker.stop(kill=worker.job is not None)
