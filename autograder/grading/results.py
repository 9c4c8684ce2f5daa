"""What passes between the grading stages, typed.

    Job (parent -> worker)  ->  Prepared (preflight)  ->  Execution with Verdicts (execute)
        ->  NotebookResult / CellResult (scoring, in the worker)  ->  SubmissionResult (-> parent)
        ->  gradebook rows, autograded notebooks and grading.json (record, in the parent)

``SubmissionResult.as_json()`` is the record written to ``grading.json``, which the reports,
the feedback and ``autograde``'s callers read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .assignment import AssignmentSpec
from .protocol import Status
from .sandbox import Sandbox

REVIEW, INFO = "review", "info"   # a flag's severity: a human should look, or a note


@dataclass
class Job:
    student: str
    folder: str                 # <ws>/submitted/<student>/<assignment>
    spec: AssignmentSpec
    limits: dict                # execute.Limits as a dict
    sandbox: Sandbox | None = None   # None: the worker probes (on a cluster, or tests calling grade_one directly)
    submission_digest: str = ""      # what the result is graded from (pipeline.submission_digest)


@dataclass
class CellResult:
    max: float
    score: float = 0.0
    status: Status = Status.NOT_RUN
    error: str | None = None
    cause: str | None = None         # an answer cell stopped by a limit before this test (pipeline._stopped_answer_cells)


@dataclass
class NotebookResult:
    file_used: str | None
    cells: dict[str, CellResult]
    flags: list[tuple[str, str]] = field(default_factory=list)    # (REVIEW | INFO, message)
    events: list[str] = field(default_factory=list)               # what went wrong while running
    kernel_log: str = ""
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)                   # execute.Execution.timings
    notebook: str | None = None                                   # the autograded notebook (instructor's view)
    grader_stacks: str = ""                                       # a stuck worker's stacks

    @property
    def flagged(self) -> bool:
        return any(severity == REVIEW for severity, _ in self.flags)


@dataclass
class SubmissionResult:
    student: str
    assignment: str
    max_score: float
    sandbox: str
    notebooks: dict[str, NotebookResult] = field(default_factory=dict)
    seconds: float = 0.0
    submission_digest: str = ""

    @property
    def score(self) -> float:
        return sum(c.score for nb in self.notebooks.values() for c in nb.cells.values())

    @property
    def flagged(self) -> bool:
        return any(nb.flagged for nb in self.notebooks.values())

    def as_json(self) -> dict:
        data = asdict(self)
        data.update(score=self.score, flagged=self.flagged, flags=[])
        for nb in data["notebooks"].values():
            nb["flags"] = [list(f) for f in nb["flags"]]
            for cell in nb["cells"].values():
                cell["status"] = str(cell["status"])
        return data
