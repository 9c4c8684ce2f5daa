"""The kernel protocol: everything the grader and the guard inside a student's kernel agree on.

The grader writes two kinds of cells into the notebook it runs (``preflight``); the guard
(``guard``, installed by ``kernel`` before any student code) answers them through audit
events, and reports one signed verdict line per test on a file descriptor opened before
the student existed; the grader (``execute``) believes only lines whose MAC verifies.

    cell                                 audit event            the guard
    begin_cell()      (first cell)       BEGIN_EVENT            snapshots protected state, enforces
    stub_cell(gid)    (per test cell)    TEST_EVENT, gid        restores state, runs the trusted
                                                                source, writes a verdict line

    verdict line:  {"body": "<JSON record>", "mac": "<HMAC-SHA256(key, body), hex>"}\\n
    record:        {"grade_id", "status", "seq", "error", "tampered_before", "tampered_during"}

``seq`` increases by one per line: a line replayed from earlier in the file is ignored.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass, field

BEGIN_EVENT = "autograder.begin"
TEST_EVENT = "autograder.test"
MAX_VERDICT_BYTES = 8 * 1024 * 1024
# The kernel's log (stderr) starts with how long importing the libraries took before its job was
# known, then how long installing the guard took once it was.
PRELOAD_TIME_PREFIX = "autograder: libraries imported in "
IMPORT_TIME_PREFIX = "autograder: guard installed in "


class Status(str, enum.Enum):
    """What became of one graded test.  The first four come from the guard; the rest from the grader."""
    PASS = "pass"
    FAIL = "fail"
    TIMEOUT = "timeout"                # interrupted after the cell time limit
    TAMPERED = "tampered"              # passed, but protected state changed while it ran
    REFUSED = "refused"                # an unknown grade_id, or a test before the begin cell
    REPEAT = "repeat"                  # the same test asked for twice: the first verdict counts
    NO_VERDICT = "no verdict"          # the stub ran no test (kernel died, cell rewritten, time limit)
    NOT_RUN = "not run"                # nothing could be run (no notebook, corrupt JSON)
    GRADER_ERROR = "grader error"      # the kernel never started: re-run, not the student's zero
    GRADER_CRASHED = "grader crashed"  # the worker died or hung twice on this job

    def __str__(self) -> str:
        return self.value


def begin_cell() -> str:
    return f'__import__("sys").audit("{BEGIN_EVENT}")'


def stub_cell(grade_id: str) -> str:
    return f'__import__("sys").audit("{TEST_EVENT}", {grade_id!r})'


@dataclass
class Verdict:
    grade_id: str
    status: Status
    seq: int
    error: str | None = None
    tampered_before: list = field(default_factory=list)
    tampered_during: list = field(default_factory=list)


def make_signer(key: bytes):
    """A function record -> signed verdict line, with its helpers bound now (before any student code)."""
    new, sha256, dumps = hmac.new, hashlib.sha256, json.dumps

    def sign(record: dict) -> bytes:
        body = dumps(record, sort_keys=True, default=str)
        return (dumps({"body": body, "mac": new(key, body.encode(), sha256).hexdigest()}) + "\n").encode()
    return sign


def verify(path: str, key: bytes) -> tuple[dict[str, Verdict], list[str]]:
    """The verdicts whose MAC verifies, in increasing sequence, and one line per line that did not."""
    verdicts: dict[str, Verdict] = {}
    problems: list[str] = []
    last = 0
    with open(path, "rb") as fh:
        data = fh.read(MAX_VERDICT_BYTES)
    for raw in data.splitlines():
        try:
            outer = json.loads(raw)
            body, mac = outer["body"], outer["mac"]
            good = hmac.compare_digest(hmac.new(key, body.encode(), hashlib.sha256).hexdigest(), mac)
        except Exception:
            good = False
        if not good:
            problems.append("forged or damaged verdict line ignored")
            continue
        rec = json.loads(body)
        if rec.get("seq", 0) <= last:
            problems.append("replayed verdict line ignored")
            continue
        last = rec["seq"]
        status = Status(rec.get("status"))
        if status in (Status.REPEAT, Status.REFUSED):
            continue
        verdicts.setdefault(rec.get("grade_id"), Verdict(
            rec.get("grade_id"), status, rec["seq"], rec.get("error"),
            list(rec.get("tampered_before") or []), list(rec.get("tampered_during") or [])))
    return verdicts, problems
