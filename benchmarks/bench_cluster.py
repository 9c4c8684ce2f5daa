"""Benchmark (not a test): the local worker pool against a Dask cluster on this machine.

    python benchmarks/bench_cluster.py [--students 10] [--rounds 1]

Grades the same class (N students x 5 lessons, the well-behaved sample students) with
``autograde --workers 2`` and through a real Dask scheduler with 2 worker processes on
127.0.0.1, alternating, and prints notebooks per minute for each and Dask's overhead.
What the cluster adds is shipping each job (the submission and the assignment's tests) to a
worker and its result back; the grading itself is the same code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from bench_autograde import make_workspace  # noqa: E402

from autograder.grading.pipeline import autograde  # noqa: E402


def start_cluster(workers: int) -> tuple[str, list[subprocess.Popen]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    log = open(os.devnull, "w")
    procs = [subprocess.Popen([sys.executable, "-m", "autograder", "scheduler", "--port", str(port)],
                              cwd=ROOT, stdout=log, stderr=log, start_new_session=True)]
    for _ in range(workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "autograder", "worker", address, "--",
                                       "--host", "127.0.0.1"], cwd=ROOT, stdout=log, stderr=log,
                                      start_new_session=True))
    return address, procs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-cluster-")
    ws = make_workspace(os.path.join(root, "ws"), args.students)
    n = len(ws.submissions())
    address, procs = start_cluster(2)
    times: dict[str, list[float]] = {"local pool, 2 workers": [], "Dask, 2 workers": []}
    try:
        autograde(ws, scheduler=address, force=True, progress=lambda *a: None,
                  student=ws.submissions()[0][0], assignment=ws.submissions()[0][1])  # workers warm, as in use
        for _ in range(args.rounds):
            for label, kwargs in (("local pool, 2 workers", {"workers": 2}), ("Dask, 2 workers", {"scheduler": address})):
                t0 = time.monotonic()
                autograde(ws, force=True, progress=lambda *a: None, **kwargs)
                times[label].append(time.monotonic() - t0)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    print(f"{n} notebooks ({args.students} students x 5 lessons), {os.cpu_count()} CPU cores, "
          f"best of {args.rounds} round(s), modes alternating")
    best = {label: min(ts) for label, ts in times.items()}
    for label, seconds in best.items():
        print(f"{label:<24} {seconds:7.1f} s   {60 * n / seconds:6.1f} notebooks per minute")
    overhead = best["Dask, 2 workers"] / best["local pool, 2 workers"] - 1
    print(f"Dask overhead over the local pool: {100 * overhead:+.1f}% (goal: at most +5%)")


if __name__ == "__main__":
    main()
