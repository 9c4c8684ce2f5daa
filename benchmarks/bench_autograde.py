"""Benchmark (not a test): grade 20 submissions x 5 lessons, stock nbgrader vs the autograder.

    python benchmarks/bench_autograde.py [--students 20] [--modes nbgrader,1,2]

1. builds a grading workspace from solutions/ and writes N students' submissions (the
   well-behaved students of the sample class, cycled: correct, partly correct, blank,
   misconceptions, monkeypatching — nothing that crashes, so stock nbgrader can run them);
2. ``nbgrader`` mode: stock ``nbgrader autograde <lesson> --force`` on a copy of the
   workspace, one lesson after the other (serial: nbgrader has no parallel autograde);
3. ``1`` / ``2`` modes: ``autograde(..., workers=N)`` of this package (sandboxed, guarded);
4. prints seconds per notebook for each mode and the speed-up ratios.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=20)
    ap.add_argument("--modes", default="nbgrader,1,2")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-ws-")
    t0 = time.monotonic()
    ws = make_workspace(root, args.students)
    n = len(ws.submissions())
    print(f"workspace with {n} notebooks ({args.students} students x {len(ws.assignments())} lessons) "
          f"built in {time.monotonic() - t0:.0f} s; {os.cpu_count()} CPU cores")
    times = {}
    for mode in args.modes.split(","):
        if mode == "nbgrader":
            times[mode] = stock_nbgrader(ws)
        else:
            t = time.monotonic()
            autograde(ws, workers=int(mode), force=True, progress=lambda *a: None)
            times[mode] = time.monotonic() - t
        label = "stock nbgrader autograde (serial)" if mode == "nbgrader" else f"autograder --workers {mode}"
        print(f"{label:<38} {times[mode]:7.1f} s   {times[mode] / n:6.2f} s per notebook", flush=True)
    if "2" in times:
        for base in ("nbgrader", "1"):
            if base in times:
                print(f"speed-up of --workers 2 over {base:<9}: {times[base] / times['2']:.2f}x")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
