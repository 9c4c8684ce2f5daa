"""Benchmark (not a test): grade 20 submissions x 5 lessons, stock nbgrader vs the autograder.

    python benchmarks/bench_autograde.py [--students 20] [--modes nbgrader,1,2,weak2]

1. builds a grading workspace from solutions/ and writes N students' submissions (the
   well-behaved students of the sample class, cycled: correct, partly correct, blank,
   misconceptions, monkeypatching — nothing that crashes, so stock nbgrader can run them);
2. ``nbgrader`` mode: stock ``nbgrader autograde <lesson> --force`` on a copy of the
   workspace, one lesson after the other (serial: nbgrader has no parallel autograde);
3. ``1`` / ``2`` modes: ``autograde(..., workers=N)`` of this package (bubblewrap, guarded);
   ``weak2``: the same with 2 workers in the weak sandbox (no namespaces), to price bubblewrap;
4. prints seconds per notebook for each mode, the speed-up ratios, what the sandbox costs per
   notebook (weak2 against 2, and bubblewrap's own start measured alone), and where a
   notebook's time goes (the kernels' own timings).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from autograder import sample_class  # noqa: E402
from autograder.grading.pipeline import autograde  # noqa: E402
from autograder.grading.sandbox import Sandbox, bwrap_argv, choose  # noqa: E402
from autograder.grading.workspace import Workspace, build  # noqa: E402

WELL_BEHAVED = ["ada", "bruno", "blank", "carla", "dmitri", "elena", "mallory"]


def make_workspace(root: str, students: int) -> Workspace:
    ws = Workspace.open(root, create=True)
    build(ws, os.path.join(ROOT, "solutions"))
    template = tempfile.mkdtemp(prefix="bench-template-")
    tws = Workspace(template)
    for d in ("source", "release"):
        shutil.copytree(ws.path(d), tws.path(d))
    sample_class.write_sample_class(tws, students=WELL_BEHAVED)
    for i in range(students):
        who = WELL_BEHAVED[i % len(WELL_BEHAVED)]
        shutil.copytree(tws.path("submitted", who), ws.path("submitted", f"s{i:02d}_{who}"))
    shutil.rmtree(template)
    return ws


def stock_nbgrader(ws: Workspace) -> float:
    copy = tempfile.mkdtemp(prefix="bench-nbgrader-")
    shutil.rmtree(copy)
    shutil.copytree(ws.root, copy)
    cws = Workspace(copy)
    cws.write_config()
    db = "sqlite:///" + os.path.join(copy, "gradebook.db")
    t0 = time.monotonic()
    for lesson in ws.assignments():
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", lesson, "--force",
                               f"--CourseDirectory.root={copy}", f"--CourseDirectory.db_url={db}",
                               "--ExecutePreprocessor.timeout=120"],
                              cwd=copy, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
    dt = time.monotonic() - t0
    shutil.rmtree(copy, ignore_errors=True)
    return dt


def sandbox_start_cost(runs: int = 10) -> float:
    """Seconds bubblewrap adds to starting Python (median of ``runs`` starts, with and without)."""
    sandbox = choose()
    handoff = tempfile.mkdtemp(prefix="bench-handoff-")
    plain = [sys.executable, "-c", "pass"]
    costs = []
    for _ in range(runs):
        t = time.monotonic()
        subprocess.run(plain, check=True)
        bare = time.monotonic() - t
        t = time.monotonic()
        subprocess.run(bwrap_argv(sandbox.bwrap, handoff, 64) + plain, check=True)
        costs.append(time.monotonic() - t - bare)
    shutil.rmtree(handoff, ignore_errors=True)
    return sorted(costs)[len(costs) // 2]


def where_time_goes(results: list[dict]) -> dict:
    """Mean seconds per notebook in each phase (the kernels' timings, and the worker's own work)."""
    phases: dict[str, list[float]] = {}
    for r in results:
        notebooks = list(r["notebooks"].values())
        for nb in notebooks:
            for phase, seconds in nb.get("timings", {}).items():
                phases.setdefault(phase, []).append(seconds)
        run = sum(nb["seconds"] for nb in notebooks)
        phases.setdefault("preflight, scoring, recording", []).append((r["seconds"] - run) / max(1, len(notebooks)))
    return {phase: sum(v) / len(v) for phase, v in phases.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=20)
    ap.add_argument("--modes", default="nbgrader,1,2,weak2")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-ws-")
    t0 = time.monotonic()
    ws = make_workspace(root, args.students)
    n = len(ws.submissions())
    print(f"workspace with {n} notebooks ({args.students} students x {len(ws.assignments())} lessons) "
          f"built in {time.monotonic() - t0:.0f} s; {os.cpu_count()} CPU cores")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    times, phases = {}, {}
    for mode in args.modes.split(","):
        if mode == "nbgrader":
            times[mode] = stock_nbgrader(ws)
            label = "stock nbgrader autograde (serial)"
        else:
            weak = mode.startswith("weak")
            workers = int(mode[4:] if weak else mode)
            t = time.monotonic()
            results = autograde(ws, workers=workers, force=True, progress=lambda *a: None,
                                sandbox=Sandbox("weak") if weak else None)
            times[mode] = time.monotonic() - t
            phases[mode] = where_time_goes(results)
            label = f"autograder --workers {workers}" + (" (weak sandbox)" if weak else " (bubblewrap)")
        print(f"{label:<44} {times[mode]:7.1f} s   {times[mode] / n:6.2f} s per notebook", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if "2" in times:
        for base in ("nbgrader", "1"):
            if base in times:
                print(f"speed-up of --workers 2 over {base:<9}: {times[base] / times['2']:.2f}x")
    if "2" in times and "weak2" in times:
        print(f"bubblewrap per notebook, --workers 2 against the weak sandbox: "
              f"{(times['2'] - times['weak2']) * 2 / n:+.3f} s of a worker's time")
    print(f"bubblewrap's own start (median of 10, Python with and without it): {sandbox_start_cost():.3f} s")
    for mode, means in phases.items():
        print(f"where a notebook's time goes, mode {mode} (mean seconds): "
              + ", ".join(f"{phase} {seconds:.3f}" for phase, seconds in means.items()))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
