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
import json
import os
import shutil
import time
import traceback
from dataclasses import asdict

import nbformat

from .assignment import AssignmentSpec, load_assignment
from .execute import WATCHDOG_SLACK, Execution, Limits, execute
from .preflight import Prepared, prepare
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
                flags.append((INFO, f"{gid}: the test was interrupted after the cell time limit"))
            if v.tampered_before:
                flags.append((REVIEW, f"{gid}: protected state changed before the test, restored: "
                                      + "; ".join(v.tampered_before[:6])))
            if v.tampered_during:
                flags.append((REVIEW, f"{gid}: protected state changed while the test ran (scored 0): "
                                      + "; ".join(v.tampered_during[:6])))
        cells[gid] = cell
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
    result = SubmissionResult(job.student, spec.name, spec.max_score(), sandbox.describe())
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
        job.student, spec.name, spec.max_score(), (job.sandbox or choose()).describe(),
        {nb.name: NotebookResult(None, {g: CellResult(c.points, status=Status.GRADER_CRASHED)
                                        for g, c in nb.tests.items()},
                                 [(REVIEW, why)], events=[why], grader_stacks=stacks) for nb in spec.notebooks})


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
    # which is what --resume takes as done.
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


def graded(ws: Workspace, student: str, assignment: str) -> bool:
    """Whether a complete result of this submission is on record: grading.json is swapped in only
    after the gradebook's transaction committed."""
    return os.path.isfile(ws.path("autograded", student, assignment, "grading.json"))


def autograde(ws: Workspace, assignment: str | None = None, student: str | None = None, workers: int = 1,
              limits: Limits | None = None, progress=print, allow_weak_sandbox: bool = False,
              resume: bool = False, sandbox: Sandbox | None = None) -> list[dict]:
    """Grade the chosen submissions (with ``resume``, only those without a result yet).

    Before anything is written: the sandbox is probed (without bubblewrap this raises
    ``SandboxUnavailable`` unless ``allow_weak_sandbox``), the workspace is locked against a
    second autograde, and a damaged or locked gradebook raises ``GradebookError``.  A ``sandbox``
    given explicitly is used as it is (the benchmark prices bubblewrap against the weak one).
    """
    limits = limits or Limits(**ws.settings.get("limits", {}))
    chosen = ws.submissions(assignment, student)    # an unknown name is an error before anything else
    sandbox = sandbox or choose(allow_weak_sandbox)
    with RunLock(ws):
        check_gradebook(ws, for_writing=True)
        return _autograde(ws, chosen, bool(assignment or student), workers, limits, progress, sandbox, resume)


def _autograde(ws: Workspace, chosen: list[tuple[str, str]], narrowed: bool, workers: int, limits: Limits,
               progress, sandbox: Sandbox, resume: bool) -> list[dict]:
    """The run itself; returns each result as recorded in grading.json."""
    specs = load_specs(ws)
    todo = [(s, a) for s, a in chosen if not (resume and graded(ws, s, a))]
    if resume:
        progress(f"resuming: {len(chosen) - len(todo)} submission(s) already graded, {len(todo)} to go")
    jobs = [Job(s, ws.path("submitted", s, a), specs[a], asdict(limits), sandbox) for s, a in todo]
    if not jobs:
        hint = "for that choice" if narrowed else "yet: run python -m autograder collect"
        progress("nothing left to grade" if resume and chosen else f"nothing to grade: no submission collected {hint}")
        return []
    from nbgrader.api import Gradebook

    results: list[dict] = []
    t0 = time.monotonic()
    with Gradebook(ws.db_url) as gb:
        def done(res: SubmissionResult):
            record(ws, res, gb)
            results.append(res.as_json())
            nb_flags = sum(1 for nb in res.notebooks.values() for f in nb.flags if f[0] == REVIEW)
            progress(f"  {res.student:>14} {res.assignment:<28} {res.score:5.1f}/{res.max_score:<5.1f}"
                     f" {res.seconds:6.1f}s" + (f"  FLAGGED ({nb_flags})" if res.flagged else ""))

        def failed(job, failure):
            why = failure.reason if len(failure.tries) < 2 else \
                f"{failure.reason}; earlier try: {failure.tries[0]}"
            done(_crashed(job, why, failure.stacks))

        run_jobs(jobs, grade_one, max(1, workers), deadline=job_deadline, on_result=lambda job, res: done(res),
                 on_failure=failed)
    progress(f"graded {len(results)} submission(s) in {time.monotonic() - t0:.1f} s with {workers} worker(s); "
             f"sandbox: {sandbox.describe()}")
    return results
