"""The instructor's grading tools: ``python -m autograder <command>``.

    build      rebuild course/ from solutions/ (autograder/release.py), and with --workspace
               set up a grading workspace (outside the repository) whose gradebook knows every
               graded cell: python -m autograder build --workspace ~/grading/fall [--db URL]
    collect    bring submissions in: --from DIR (nbgrader's submitted/<student>/<assignment>/, or its
               exchange, <course>/inbound/, where the latest submission counts)
               or --zip FILE --assignment A (an LMS download, files named per student)
    autograde  grade all, one assignment (--assignment) or one student (--student),
               --workers N in parallel; the gradebook is written by one process only
    feedback   feedback HTML per student, without the hidden tests
    export     grades.csv (a row per student and assignment, 0 for nothing sent; --roster FILE
               adds the class list) and exercises.csv
    report     the class report: score per exercise, how often each diagnosis fired
    table      print the gradebook as a table
    demo       everything above on the bundled sample class, then print the gradebook

The gradebook is SQLite in the workspace unless --db (or AUTOGRADER_DB_URL) gives a
database URL, e.g. postgresql://user@127.0.0.1:5432/grades.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from autograder.grading.sandbox import SandboxUnavailable
from autograder.grading.workspace import REPO_ROOT, Workspace, WorkspaceError


def _ws(args, create=False) -> Workspace:
    if not args.workspace:
        raise WorkspaceError("--workspace DIR is required (a folder outside the repository)")
    return Workspace.open(args.workspace, create=create)


def cmd_build(args) -> int:
    from autograder.grading.workspace import build

    source = args.source or os.path.join(REPO_ROOT, "solutions")
    if not args.source and not args.no_release:
        release = os.path.join(REPO_ROOT, "autograder", "release.py")
        if os.path.exists(release):
            print("building course/ from solutions/ (autograder/release.py)")
            subprocess.run([sys.executable, "-m", "autograder.release"], cwd=REPO_ROOT, check=True)
    if args.workspace:
        ws = _ws(args, create=True)
        built = build(ws, source, db_url=args.db, assignments=args.assignment or None)
        if args.cell_timeout or args.memory_mb:
            limits = ws.settings.get("limits", {})
            if args.cell_timeout:
                limits["cell_timeout"] = args.cell_timeout
            if args.memory_mb:
                limits["memory_mb"] = args.memory_mb
            ws.save_settings(limits=limits)
        print(f"workspace {ws.root}: assignments {', '.join(built)}; gradebook {ws.db_url}")
    return 0


def cmd_collect(args) -> int:
    from autograder.grading.collect import collect_folder, collect_zip

    ws = _ws(args)
    if args.zip:
        if not args.assignment:
            raise WorkspaceError("--zip needs --assignment")
        got = collect_zip(ws, args.zip, args.assignment[0], **({"pattern": args.pattern} if args.pattern else {}))
    elif args.from_dir:
        got = collect_folder(ws, args.from_dir, args.assignment[0] if args.assignment else None)
    else:
        raise WorkspaceError("give --from DIR or --zip FILE")
    for s, a, _ in got:
        print(f"  {s} / {a}")
    print(f"collected {len(got)} submission(s)")
    return 0


def cmd_autograde(args) -> int:
    from autograder.grading.execute import Limits
    from autograder.grading.pipeline import autograde
    from autograder.grading.sandbox import choose

    ws = _ws(args)
    ws.submissions(args.assignment[0] if args.assignment else None, args.student)   # unknown names first
    sandbox = choose(allow_weak=args.allow_weak_sandbox)
    if not sandbox.isolated:
        # Said every run: native code in a student's kernel is not contained (SECURITY.md).
        print(f"warning: grading in the weak sandbox ({sandbox.describe()}): native code in a notebook "
              "(torch.from_file, for one) can read and write what this user can; see autograder/SECURITY.md.",
              file=sys.stderr)
    limits = Limits(**ws.settings.get("limits", {}))
    if args.cell_timeout:
        limits.cell_timeout = args.cell_timeout
    if args.memory_mb:
        limits.memory_mb = args.memory_mb
    autograde(ws, args.assignment[0] if args.assignment else None, args.student, workers=args.workers,
              limits=limits, allow_weak_sandbox=args.allow_weak_sandbox, resume=args.resume)
    return 0


def cmd_feedback(args) -> int:
    from autograder.grading.feedback import generate

    ws = _ws(args)
    withheld: list = []
    files = generate(ws, args.assignment[0] if args.assignment else None, args.student, withheld)
    print(f"wrote {len(files)} feedback file(s) under {ws.path('feedback')}")
    for w in withheld:
        print(f"  WITHHELD {w[0]}/{w[1]}/{w[2]}: {w[3]}")
    return 0


def cmd_export(args) -> int:
    from autograder.grading.reports import export_csv

    ws = _ws(args)
    for p in export_csv(ws, args.out, roster=args.roster):
        print(f"wrote {p}")
    return 0


def cmd_report(args) -> int:
    from autograder.grading.reports import class_report

    ws = _ws(args)
    _, text = class_report(ws, args.out)
    print(text)
    return 0


def cmd_table(args) -> int:
    from autograder.grading.reports import gradebook_table

    print(gradebook_table(_ws(args)))
    return 0


def cmd_demo(args) -> int:
    from autograder.sample_class import run_demo

    return run_demo(workspace=args.workspace, workers=args.workers, db_url=args.db,
                    assignments=args.assignment or None, allow_weak_sandbox=args.allow_weak_sandbox)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, workspace_required=True):
        sp.add_argument("--workspace", "-w", help="grading workspace folder (outside the repository)")
        sp.add_argument("--assignment", "-a", action="append", help="only this assignment (repeatable for build)")
        sp.add_argument("--student", "-s", help="only this student")
        sp.add_argument("--db", help="gradebook database URL (default: SQLite in the workspace)")
        sp.add_argument("--workers", "-j", type=int, default=1, help="notebooks graded in parallel")
        sp.add_argument("--cell-timeout", type=float, help="seconds per cell before the kernel is interrupted")
        sp.add_argument("--memory-mb", type=int, help="memory limit of each student's kernel")
        sp.add_argument("--out", help="output folder (default: <workspace>/reports)")
        return sp

    b = common(sub.add_parser("build", help="rebuild course/; set up a grading workspace"))
    b.add_argument("--source", help="instructor source folder (default: solutions/)")
    b.add_argument("--no-release", action="store_true", help="do not rebuild course/")
    c = common(sub.add_parser("collect", help="bring submissions into the workspace"))
    c.add_argument("--from", dest="from_dir", help="nbgrader's submitted/<student>/<assignment>/ folder, or its exchange "
                                                      "(<exchange>/<course>/inbound/<student>+<assignment>+<time>/)")
    c.add_argument("--zip", help="LMS zip with files named per student")
    c.add_argument("--pattern", help="regex with a (?P<student>...) group matched on each member's top "
                                     "folder or file stem (default: the text before the first '_')")
    ag = common(sub.add_parser("autograde", help="grade submissions (--workers N)"))
    ag.add_argument("--resume", action="store_true",
                    help="grade only the submissions without a result yet (after an interrupted run)")
    common(sub.add_parser("feedback", help="feedback HTML without hidden tests"))
    e = common(sub.add_parser("export", help="grades as CSV"))
    e.add_argument("--roster", help="the class list (one student id per line, or a CSV with a student_id "
                                    "column): its students get rows even if they sent nothing")
    common(sub.add_parser("report", help="class report"))
    common(sub.add_parser("table", help="print the gradebook"))
    d = common(sub.add_parser("demo", help="end-to-end demo on the bundled sample class"))
    d.set_defaults(workers=2)
    for grading in (ag, d):
        grading.add_argument("--allow-weak-sandbox", action="store_true",
                             help="where bubblewrap cannot create namespaces, grade with resource limits and "
                                  "the audit hook only (native code in a notebook is then not contained)")
    args = p.parse_args(argv)
    handler = globals()[f"cmd_{args.command}"]
    try:
        return handler(args)
    except (WorkspaceError, SandboxUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
