"""Autograde a class: one job per (student, assignment), run in parallel, recorded by one writer.

nbgrader's own ``autograde`` grades one submission after the other and writes the
gradebook from inside each run (its issue #174).  Here the slow part — running the
notebook — happens in worker processes, each in its own sandbox, and only the parent
process writes the gradebook, one submission at a time, in one transaction each.
That keeps SQLite and PostgreSQL consistent whatever the number of workers, and a
crashed worker costs one job (recorded as such, with a flag), never the class.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
import traceback
from dataclasses import asdict

import nbformat

from . import notes, scratch
from .assignment import AssignmentSpec, load_assignment
from .execute import WATCHDOG_SLACK, Execution, Limits, execute
from .preflight import Prepared, prepare
from .progress import Progress
from .results import INFO, REVIEW, CellResult, Job, NotebookResult, SubmissionResult
from .protocol import Status
from .sandbox import Sandbox, choose
from .workers import run_jobs
from .gradebook import RunLock
from .gradebook import check as check_gradebook
from .workspace import Workspace


def load_specs(ws: Workspace) -> dict[str, AssignmentSpec]:
    return {a: load_assignment(ws.path("source", a), ws.path("release", a), a) for a in ws.assignments()}


def _score(spec_nb, prep: Prepared, execution: Execution | None) -> tuple[dict[str, CellResult], list]:
    cells: dict[str, CellResult] = {}
    flags: list[tuple[str, str]] = []
    verdicts = execution.verdicts if execution else {}
    events = execution.events if execution else []
    for gid, tc in spec_nb.tests.items():
        v = verdicts.get(gid)
        cell = CellResult(max=tc.points, status=Status.NOT_RUN if prep.notebook is None else Status.NO_VERDICT)
        if v is not None:
            cell.status, cell.error = v.status, v.error
            if v.status is Status.PASS:
                cell.score = tc.points
            if v.status is Status.TIMEOUT:
                flags.append((INFO, notes.TEST_INTERRUPTED.format(test=gid)))
            if v.tampered_before:
                flags.append((REVIEW, f"{gid}: protected state changed before the test, restored: "
                                      + "; ".join(v.tampered_before[:6])))
            if v.tampered_during:
                flags.append((REVIEW, f"{gid}: protected state changed while the test ran (scored 0): "
                                      + "; ".join(v.tampered_during[:6])))
        cells[gid] = cell
    for cause, after in _stopped_answer_cells(execution):
        flags.append((INFO, cause))
        for gid in after:
            if gid in cells and cells[gid].status not in (Status.PASS, Status.TIMEOUT):
                cells[gid].cause = cells[gid].cause or cause
    if execution and execution.start_error:
        # The kernel never ran a cell: these zeros are the grader's failure, to re-run, not the student's.
        for cell in cells.values():
            cell.status = Status.GRADER_ERROR
        tries = len(execution.failed_starts)
        flags.append((REVIEW, f"grader error: the kernel could not start ({tries} attempt(s), last: "
                              f"{execution.start_error}); re-run autograde for this student"))
        return cells, flags
    missing = [g for g, c in cells.items() if c.status is Status.NO_VERDICT]
    if missing:
        why = "; ".join(events) or "the test cell did not reach the grader (cell rewritten or never executed)"
        flags.append((REVIEW, f"no verdict for {missing}: {why}"))
    for e in events:
        if "output flood" in e:
            flags.append((INFO, e))
        elif "forged" in e or "replayed" in e:
            flags.append((REVIEW, f"{e} (someone wrote to the grader's verdict channel)"))
    return cells, flags


STOPPED = {"CellTimeoutError": (notes.ANSWER_CELL_TIMED_OUT, notes.CELL_TIMED_OUT),
           "MemoryError": (notes.ANSWER_CELL_OUT_OF_MEMORY, notes.CELL_OUT_OF_MEMORY)}


def _stopped_answer_cells(execution) -> list[tuple[str, list[str]]]:
    """Each answer cell stopped by the time or memory limit, with the test cells after it: their
    failures (a NameError, most often) follow from the stop, and the student must be told so."""
    if not execution or execution.notebook is None:
        return []
    stopped: list[tuple[str, list[str]]] = []
    for cell in execution.notebook.cells:
        ag = cell.metadata.get("autograder", {})
        if ag.get("grade_id"):
            for _, tests_after in stopped:
                tests_after.append(ag["grade_id"])
            continue
        ename = next((o.get("ename") for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if ename in STOPPED:
            in_answer_cell, in_a_cell = STOPPED[ename]
            stopped.append((in_answer_cell.format(cell=repr(ag["solution_id"])) if ag.get("solution_id")
                            else in_a_cell, []))
    return stopped


def _autograded_notebook(spec_nb, prep, execution) -> nbformat.NotebookNode:
    """The instructor's view: trusted test sources (hidden tests included) with the outputs."""
    nb = execution.notebook if execution else prep.notebook
    out = nbformat.v4.new_notebook()
    out.metadata = nbformat.NotebookNode({"kernelspec": {"name": spec_nb.kernelspec.get("name", "python3"),
                                                         "display_name": "Python 3 (ipykernel)",
                                                         "language": "python"}})
    by_id = {c.grade_id: c for c in spec_nb.cells if c.grade_id}
    for cell in nb.cells[1:]:
        ag = cell.metadata.get("autograder", {})
        gid = ag.get("grade_id") or ag.get("solution_id")
        new = nbformat.NotebookNode(dict(cell))
        new.metadata = nbformat.NotebookNode({})
        if gid in by_id:
            tc = by_id[gid]
            new.metadata["nbgrader"] = {"grade": tc.kind in ("test", "task") or bool(tc.points and tc.kind == "solution"),
                                        "solution": tc.kind == "solution", "locked": tc.kind == "test",
                                        "grade_id": gid, "points": tc.points, "schema_version": 3}
            if tc.kind == "test":
                new.source = tc.source
            new.metadata["autograder"] = dict(ag)
        out.cells.append(new)
    return out


def grade_one(job: Job) -> SubmissionResult:
    """Worker: preflight, run, score one student's assignment.  Never raises."""
    t0 = time.monotonic()
    spec = job.spec
    sandbox = job.sandbox or choose()
    result = SubmissionResult(job.student, spec.name, spec.max_score(), sandbox.describe(),
                              submission_digest=job.submission_digest)
    taken: set = set()
    for spec_nb in spec.notebooks:
        try:
            prep = prepare(job.folder, spec_nb, taken)
            if prep.file_used:
                taken.add(prep.file_used)
            execution = None
            if prep.notebook is not None:
                extra = ["torch._dynamo"] if any("torch.func" in c.source or "vmap" in c.source
                                                 for c in spec_nb.cells) else []
                execution = execute(prep.notebook, {g: c.source for g, c in spec_nb.tests.items()},
                                    Limits(**job.limits), files=spec.files, preludes=spec_nb.preludes(),
                                    extra_imports=extra, sandbox=sandbox)
            cells, flags = _score(spec_nb, prep, execution)
            nbres = NotebookResult(prep.file_used, cells, [tuple(f) for f in prep.flags] + flags)
            if execution:
                nbres.events, nbres.kernel_log = execution.events, execution.kernel_log
                nbres.seconds, nbres.timings = round(execution.seconds, 2), execution.timings
            if prep.notebook is not None:
                nbres.notebook = nbformat.writes(_autograded_notebook(spec_nb, prep, execution))
        except Exception as exc:  # noqa: BLE001 - recorded as a result, never lost
            nbres = NotebookResult(None, {g: CellResult(c.points, status=Status.GRADER_ERROR)
                                          for g, c in spec_nb.tests.items()},
                                   [(REVIEW, f"grader error: {type(exc).__name__}: {exc}"),
                                    (REVIEW, traceback.format_exc()[-1500:])])
        result.notebooks[spec_nb.name] = nbres
    result.seconds = round(time.monotonic() - t0, 2)
    return result


def job_deadline(job: Job) -> float:
    """Seconds after which a job's worker is presumed stuck: every notebook at its limits, and slack."""
    limits = Limits(**job.limits)
    per_notebook = limits.startup_timeout + limits.notebook_timeout + WATCHDOG_SLACK + 60.0
    return 60.0 + per_notebook * len(job.spec.notebooks)


def _crashed(job: Job, why: str, stacks: str = "") -> SubmissionResult:
    spec = job.spec
    return SubmissionResult(
        job.student, spec.name, spec.max_score(), job.sandbox.describe() if job.sandbox else "not started",
        {nb.name: NotebookResult(None, {g: CellResult(c.points, status=Status.GRADER_CRASHED)
                                        for g, c in nb.tests.items()},
                                 [(REVIEW, why)], events=[why], grader_stacks=stacks) for nb in spec.notebooks},
        submission_digest=job.submission_digest)


# ---------------------------------------------------------------- the single writer
def record(ws: Workspace, result: SubmissionResult, gb=None) -> None:
    """Write one result: gradebook (one transaction), autograded notebook, grading.json."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    # nbgrader's add_submission builds its rows before adding them to the session, which
    # SQLAlchemy reports as a warning on every re-grade; the rows are written all the same.
    warnings.filterwarnings("ignore", message=".*not in session.*")
    student, assignment = result.student, result.assignment
    own = gb is None
    gb = gb or Gradebook(ws.db_url)
    try:
        gb.update_or_create_student(student)
        try:
            gb.remove_submission(assignment, student)
        except MissingEntry:
            pass
        gb.add_submission(assignment, student, timestamp=dt.datetime.now(dt.timezone.utc).isoformat())
        for nbname, nbres in result.notebooks.items():
            stem = nbname[:-6] if nbname.endswith(".ipynb") else nbname
            snb = gb.find_submission_notebook(stem, assignment, student)
            snb.flagged = nbres.flagged
            for gid, cell in nbres.cells.items():
                grade = gb.find_grade(gid, stem, assignment, student)
                grade.auto_score = float(cell.score)
                grade.needs_manual_grade = False
        gb.db.commit()
    except Exception:
        gb.db.rollback()
        raise
    finally:
        if own:
            gb.close()
    # The folder is written aside and swapped in: grading.json exists only beside a complete result,
    # which is what a rerun takes as done (already_graded).
    folder = ws.path("autograded", student, assignment)
    fresh = folder + ".writing"
    shutil.rmtree(fresh, ignore_errors=True)
    os.makedirs(fresh)
    slim = result.as_json()
    for nbname, nbres in slim["notebooks"].items():
        text = nbres.pop("notebook", None)
        if text:
            with open(os.path.join(fresh, nbname), "w") as fh:
                fh.write(text)
    with open(os.path.join(fresh, "grading.json"), "w") as fh:
        json.dump(slim, fh, indent=1, sort_keys=True)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.rename(fresh, folder)


def submission_digest(folder: str) -> str:
    """What a result was graded from: a re-collected submission has another digest, and is regraded."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not os.path.islink(path):
            digest.update(name.encode() + b"\0")
            with open(path, "rb") as fh:
                digest.update(hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()


def already_graded(ws: Workspace, student: str, assignment: str, digest: str) -> bool:
    """A result recorded from this very submission, and not a grader failure to re-run."""
    path = ws.path("autograded", student, assignment, "grading.json")
    try:
        with open(path) as fh:
            done = json.load(fh)
    except (OSError, ValueError):
        return False
    failed = any(c.get("status") in ("grader error", "grader crashed")
                 for nb in done.get("notebooks", {}).values() for c in nb.get("cells", {}).values())
    return done.get("submission_digest") == digest and not failed


def autograde(ws: Workspace, assignment: str | list[str] | None = None, student: str | list[str] | None = None,
              workers: int = 1, limits: Limits | None = None, progress=print, allow_weak_sandbox: bool = False,
              force: bool = False, sandbox: Sandbox | None = None, scheduler: str | None = None,
              tls_dir: str | None = None) -> list[dict]:
    """Grade the chosen submissions not graded yet from the same files (``force``: all of them), on
    ``workers`` local processes or, with ``scheduler``, on a Dask cluster; this process alone writes
    the gradebook.

    Before anything is written: the sandbox is probed (without bubblewrap this raises
    ``SandboxUnavailable`` unless ``allow_weak_sandbox``; on a cluster, each worker is probed), the
    workspace is locked against a second autograde, and a damaged or locked gradebook raises
    ``GradebookError``.  A ``sandbox`` given explicitly is used as it is (the benchmark prices
    bubblewrap against the weak one).
    """
    limits = limits or Limits(**ws.settings.get("limits", {}))
    chosen = ws.submissions(assignment, student)    # an unknown name is an error before anything else
    if scheduler is None:
        sandbox = sandbox or choose(allow_weak_sandbox)   # on a cluster, each worker probes its own
    with RunLock(ws):
        check_gradebook(ws, for_writing=True)
        scratch.remove_orphans()    # what graders killed on this machine left behind
        return _autograde(ws, chosen, bool(assignment or student), workers, limits, progress, sandbox, force,
                          scheduler, tls_dir, allow_weak_sandbox)


def _autograde(ws: Workspace, chosen: list[tuple[str, str]], narrowed: bool, workers: int, limits: Limits,
               progress, sandbox: Sandbox | None, force: bool, scheduler: str | None, tls_dir: str | None,
               allow_weak_sandbox: bool) -> list[dict]:
    """The run itself; returns each result as recorded in grading.json."""
    specs = load_specs(ws)
    jobs, kept = [], 0
    for s, a in chosen:
        folder = ws.path("submitted", s, a)
        digest = submission_digest(folder)
        if not force and already_graded(ws, s, a, digest):
            kept += 1
            continue
        jobs.append(Job(s, folder, specs[a], asdict(limits), sandbox, digest))
    if kept:
        progress(f"{kept} submission(s) already graded from the same files: kept (--force regrades them)")
    if not jobs:
        if not kept:
            hint = "for that choice" if narrowed else "yet: run python -m autograder collect"
            progress(f"nothing to grade: no submission collected {hint}")
        return []
    from nbgrader.api import Gradebook

    results: list[dict] = []
    t0 = time.monotonic()
    shown = Progress(len(jobs), progress)
    with Gradebook(ws.db_url) as gb:
        def done(res: SubmissionResult):
            record(ws, res, gb)
            results.append(res.as_json())
            nb_flags = sum(1 for nb in res.notebooks.values() for f in nb.flags if f[0] == REVIEW)
            shown.done(f" {res.student:>14} {res.assignment:<28} {res.score:5.1f}/{res.max_score:<5.1f}"
                       f" {res.seconds:6.1f}s" + (f"  FLAGGED ({nb_flags})" if res.flagged else ""))

        def failed(job, failure):
            why = failure.reason if len(failure.tries) < 2 else \
                f"{failure.reason}; earlier try: {failure.tries[0]}"
            done(_crashed(job, why, failure.stacks))

        try:
            if scheduler:
                from .cluster import run_jobs_on_cluster

                run_jobs_on_cluster(jobs, grade_one, scheduler, on_result=lambda job, res: done(res),
                                    on_failure=failed, tls_dir=tls_dir, allow_weak_sandbox=allow_weak_sandbox)
            else:
                run_jobs(jobs, grade_one, max(1, workers), deadline=job_deadline,
                         on_result=lambda job, res: done(res), on_failure=failed)
        finally:
            shown.close()
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"with {workers} worker(s)"
    used = "; ".join(sorted({r["sandbox"] for r in results})) or "none"
    progress(f"graded {len(results)} submission(s) in {time.monotonic() - t0:.1f} s {where}; sandbox: {used}")
    return results
