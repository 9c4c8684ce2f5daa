"""The instructor's grading tools: ``python -m autograder <command>``.

    build      rebuild course/ from solutions/ (autograder/release.py), and with --workspace
               set up a grading workspace (outside the repository) whose gradebook knows every
               graded cell: python -m autograder build --workspace ~/grading/fall [--db URL]
    collect    bring submissions in: --from DIR (nbgrader's submitted/<student>/<assignment>/, or its
               exchange, <course>/inbound/, where the latest submission counts)
               or --zip FILE --assignment A (an LMS download, files named per student)
    autograde  grade what is not graded yet (--force: all), one assignment (-a) or student (-s),
               --workers N in parallel, or --scheduler ADDRESS on a Dask cluster; the gradebook
               is written by one process only
    feedback   feedback HTML per student, without the hidden tests
    export     grades.csv (a row per student and assignment, 0 for nothing sent; --roster FILE
               adds the class list) and exercises.csv
    report     the class report: score per exercise, how often each diagnosis fired
    table      print the gradebook as a table
    demo       everything above on the bundled sample class, then print the gradebook
    scheduler, worker, certificates
               a Dask cluster to grade on several machines (autograder/README.md)

The gradebook is SQLite in the workspace unless --db (or AUTOGRADER_DB_URL) gives a
database URL, e.g. postgresql://user@127.0.0.1:5432/grades.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from autograder.grading.sandbox import SandboxUnavailable
from autograder.grading.workspace import REPO_ROOT, Workspace, WorkspaceError


def _ws(args, create=False) -> Workspace:
    if not args.workspace:
        raise WorkspaceError("--workspace DIR is required (a folder outside the repository)")
    return Workspace.open(args.workspace, create=create)


def cmd_build(args) -> int:
    from autograder.grading.workspace import build, source_assignments

    source = args.source or os.path.join(REPO_ROOT, "solutions")
    if not args.source and not args.no_release:
        release = os.path.join(REPO_ROOT, "autograder", "release.py")
        if os.path.exists(release):
            print("building course/ from solutions/ (autograder/release.py)")
            subprocess.run([sys.executable, "-m", "autograder.release"], cwd=REPO_ROOT, check=True)
    if args.workspace:
        source_assignments(source, args.assignment)  # bad names stop here, before any folder is made
        existed = os.path.isdir(os.path.expanduser(args.workspace))
        ws = _ws(args, create=True)
        try:
            built = build(ws, source, db_url=args.db, assignments=args.assignment or None)
        except BaseException:
            if not existed:  # no half-made workspace left behind
                shutil.rmtree(ws.root, ignore_errors=True)
            raise
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
        if not args.assignment or len(args.assignment) > 1:
            raise WorkspaceError("--zip needs exactly one --assignment (an LMS download holds one assignment)")
        got = collect_zip(ws, args.zip, args.assignment[0], **({"pattern": args.pattern} if args.pattern else {}))
    elif args.from_dir:
        got = collect_folder(ws, args.from_dir, args.assignment)
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
    autograde(ws, args.assignment, args.student, workers=args.workers, limits=limits, force=args.force,
              allow_weak_sandbox=args.allow_weak_sandbox, scheduler=args.scheduler, tls_dir=args.tls_dir)
    return 0


def cmd_feedback(args) -> int:
    from autograder.grading.feedback import generate

    ws = _ws(args)
    withheld: list = []
    files = generate(ws, args.assignment, args.student, withheld)
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
                    assignments=args.assignment or None, allow_weak_sandbox=args.allow_weak_sandbox,
                    scheduler=args.scheduler, tls_dir=args.tls_dir)


def cmd_certificates(args) -> int:
    from autograder.grading.cluster import make_certificates

    for path in make_certificates(args.folder, args.host):
        print(f"wrote {path}")
    print("copy the folder to the scheduler, every worker and the instructor's machine, and to no one else "
          "(cluster-key.pem lets its holder join the cluster and receive hidden tests)")
    return 0


def _run_dask(role: str, args) -> int:
    from autograder.grading.cluster import dask_command, is_loopback, security_for

    extra = args.dask_args
    if role == "scheduler":
        extra = ["--host", args.host, "--port", str(args.port)] + extra
        if not args.tls_dir and not is_loopback(args.host):
            security_for(args.host, None)  # says why: off this machine, TLS is required
    else:
        security_for(args.address, args.tls_dir)
    cmd, env = dask_command(role, getattr(args, "address", None), args.tls_dir, extra)
    print("running: " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, env=env, cwd=REPO_ROOT)


def cmd_scheduler(args) -> int:
    return _run_dask("scheduler", args)


def cmd_worker(args) -> int:
    return _run_dask("worker", args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, workspace_required=True):
        sp.add_argument("--workspace", "-w", help="grading workspace folder (outside the repository)")
        sp.add_argument("--assignment", "-a", action="append", help="only this assignment (repeatable)")
        sp.add_argument("--student", "-s", action="append", help="only this student (repeatable)")
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
    g = common(sub.add_parser("autograde", help="grade submissions (--workers N, or --scheduler ADDRESS)"))
    g.add_argument("--force", action="store_true", help="regrade submissions already graded from the same files")
    common(sub.add_parser("feedback", help="feedback HTML without hidden tests"))
    e = common(sub.add_parser("export", help="grades as CSV"))
    e.add_argument("--roster", help="the class list (one student id per line, or a CSV with a student_id "
                                    "column): its students get rows even if they sent nothing")
    common(sub.add_parser("report", help="class report"))
    common(sub.add_parser("table", help="print the gradebook"))
    d = common(sub.add_parser("demo", help="end-to-end demo on the bundled sample class"))
    d.set_defaults(workers=2)
    for sp in (g, d):
        sp.add_argument("--allow-weak-sandbox", action="store_true",
                        help="where bubblewrap cannot create namespaces, grade with resource limits and "
                             "the audit hook only (native code in a notebook is then not contained)")
        sp.add_argument("--scheduler", help="grade on a Dask cluster: tcp://127.0.0.1:PORT, or tls://HOST:PORT "
                                            "with --tls-dir (see autograder/README.md)")
        sp.add_argument("--tls-dir", help="folder made by `python -m autograder certificates`")
    cert = sub.add_parser("certificates", help="make the TLS certificates of a grading cluster")
    cert.add_argument("folder")
    cert.add_argument("--host", action="append", default=[],
                      help="the scheduler's host name or address (repeatable)")
    sched = sub.add_parser("scheduler", help="start a Dask scheduler for grading (dask scheduler, course settings; "
                                             "arguments after -- go to dask)")
    sched.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1 only)")
    sched.add_argument("--port", type=int, default=8786)
    work = sub.add_parser("worker", help="start a Dask grading worker in this course checkout (arguments after "
                                         "-- go to dask)")
    work.add_argument("address", help="the scheduler: tcp://127.0.0.1:8786 or tls://HOST:PORT")
    for sp in (sched, work):
        sp.add_argument("--tls-dir", help="folder made by `python -m autograder certificates`")
    argv = sys.argv[1:] if argv is None else list(argv)
    # Everything after `--` goes to dask, untouched (argparse would read dask's options as ours).
    split = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:split])
    args.dask_args = argv[split + 1:]
    if args.dask_args and args.command not in ("scheduler", "worker"):
        p.error("arguments after -- are passed to dask: only for the scheduler and worker commands")
    handler = globals()[f"cmd_{args.command}"]
    try:
        return handler(args)
    except (WorkspaceError, SandboxUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
