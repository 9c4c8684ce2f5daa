"""Bring submissions into the workspace: nbgrader's folder layout or an LMS zip."""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from typing import Callable

from .workspace import Workspace, WorkspaceError, safe_name

MAX_MEMBER = 32 * 1024 * 1024
# "alice_01_chain_rule.ipynb", "Alice Smith_12345_assignsubmission_file_/x.ipynb" (Moodle),
# "smithalice_12345_67890_lesson.ipynb" (Canvas): the student is what comes before the first "_".
# The pattern is matched against the member's top folder when it has one, else its file stem.
# The "_" is required so that a stray top-level file ("index.html") is not taken for a student.
# The participant id is captured only where the LMS format marks it as one (Moodle's
# "_assignsubmission_", Canvas's second number): "alice_01_chain_rule" has no id.
DEFAULT_PATTERN = r"^(?P<student>[^_]+)_(?:(?:LATE_)?(?P<id>\d+)(?=_assignsubmission_|_\d+_))?"


def collect_folder(ws: Workspace, folder: str, assignment: str | None = None) -> list[tuple[str, str, str]]:
    """Copy ``folder/[submitted/]<student>/<assignment>/*`` into the workspace."""
    base = os.path.join(folder, "submitted") if os.path.isdir(os.path.join(folder, "submitted")) else folder
    known = set(ws.assignments())
    copied = []
    for student in sorted(os.listdir(base)):
        sdir = os.path.join(base, student)
        if not os.path.isdir(sdir):
            continue
        sid = safe_name(student)
        for a in sorted(os.listdir(sdir)):
            if assignment and a != assignment:
                continue
            adir = os.path.join(sdir, a)
            if not os.path.isdir(adir) or a not in known:
                continue
            dst = ws.path("submitted", sid, a)
            if os.path.isdir(dst):
                shutil.rmtree(dst)
            os.makedirs(dst)
            for f in sorted(os.listdir(adir)):
                p = os.path.join(adir, f)
                if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) <= MAX_MEMBER:
                    shutil.copyfile(p, os.path.join(dst, os.path.basename(f)))
            copied.append((sid, a, dst))
    return copied


def collect_zip(ws: Workspace, zip_path: str, assignment: str, pattern: str = DEFAULT_PATTERN,
                report: Callable[[str], None] = print) -> list[tuple[str, str, str]]:
    """An LMS download: one or more files per student, the student named in the file name.

    Members are read, never extracted by name (no path traversal); a member whose
    name does not match ``pattern`` or is too large is skipped, and every skip is
    reported (``report``, one line each) and listed in ``submitted/.skipped-<a>.txt``.
    Two submitters whose names give the same student id are kept apart by their
    participant id (the pattern's ``id`` group); where they have none, nothing is
    written and a WorkspaceError says why.  Each student's notebook is stored
    under the assignment's expected file name when the student sent exactly one
    notebook; otherwise the files keep their names and the grader picks (and flags)
    the most plausible one.
    """
    if assignment not in ws.assignments():
        raise WorkspaceError(f"unknown assignment {assignment!r}; known: {ws.assignments()}")
    if not os.path.isfile(zip_path):
        raise WorkspaceError(f"no such zip file: {zip_path}")
    expected = sorted(f for f in os.listdir(ws.path("release", assignment)) if f.endswith(".ipynb"))
    rx = re.compile(pattern)
    # (name as written in the zip, participant id or None) -> [(member, file name, data)]
    per_submitter: dict[tuple[str, str | None], list[tuple[str, str, bytes]]] = {}
    skipped: list[tuple[str, str]] = []
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                name = info.filename.replace("\\", "/")
                key = name.split("/")[0] if "/" in name.strip("/") else os.path.splitext(name)[0]
                m = rx.match(key)
                if "__MACOSX" in name:
                    skipped.append((name, "macOS metadata"))
                elif not m:
                    skipped.append((name, f"no student name in {key!r} (pattern {pattern!r}; see --pattern)"))
                elif info.file_size > MAX_MEMBER:
                    skipped.append((name, f"too large ({info.file_size} bytes)"))
                else:
                    try:
                        safe_name(m.group("student"))
                    except WorkspaceError as exc:
                        skipped.append((name, str(exc)))
                        continue
                    who = (m.group("student").strip(), m.groupdict().get("id"))
                    per_submitter.setdefault(who, []).append((name, os.path.basename(name), zf.read(info)))
    except zipfile.BadZipFile as exc:
        raise WorkspaceError(f"{zip_path}: not a readable zip file ({exc})") from None
    plan = _plan_students(per_submitter, expected, report)
    copied = []
    for sid, files in sorted(plan.items()):
        dst = ws.path("submitted", sid, assignment)
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        os.makedirs(dst)
        for target, data in files.items():
            with open(os.path.join(dst, target), "wb") as fh:
                fh.write(data)
        copied.append((sid, assignment, dst))
    if skipped:
        listing = ws.path("submitted", f".skipped-{assignment}.txt")
        os.makedirs(os.path.dirname(listing), exist_ok=True)
        with open(listing, "a") as fh:
            fh.writelines(f"{name}: {why}\n" for name, why in skipped)
        for name, why in skipped:
            report(f"  skipped {name}: {why}")
        report(f"skipped {len(skipped)} zip member(s), listed in {listing}")
    return copied


def _plan_students(per_submitter: dict, expected: list[str], report: Callable[[str], None]) -> dict:
    """Student id -> {file name: data}; refuses (before anything is written) what would be lost."""
    by_sid: dict[str, list[tuple[str, str | None]]] = {}
    for who in per_submitter:
        by_sid.setdefault(safe_name(who[0]), []).append(who)
    plan: dict[str, dict[str, bytes]] = {}
    for sid, whos in sorted(by_sid.items()):
        if len(whos) > 1:
            # Grading never drops a student: namesakes keep their own folders, or nothing is collected.
            if any(i is None for _, i in whos):
                members = ", ".join(per_submitter[w][0][0] for w in sorted(whos, key=str))
                raise WorkspaceError(f"different submitters would all become student {sid!r} ({members}) and "
                                     "have no participant id to tell them apart; nothing was collected: use "
                                     "--pattern with a (?P<id>...) group, or rename them in the zip")
            ids = {w: safe_name(f"{sid}_{w[1]}") for w in whos}
            report(f"  {len(whos)} submitters named {sid!r}: kept apart as {', '.join(sorted(ids.values()))}")
        else:
            ids = {whos[0]: sid}
        for who, student in ids.items():
            if student in plan:
                raise WorkspaceError(f"two submitters would both become student {student!r}; nothing was "
                                     "collected: use --pattern, or rename them in the zip")
            files = per_submitter[who]
            single = len(expected) == 1 and sum(f[1].endswith(".ipynb") for f in files) == 1
            plan[student] = {}
            for member, fname, data in files:
                target = expected[0] if single and fname.endswith(".ipynb") else fname
                target = re.sub(r"[^A-Za-z0-9._ ()-]+", "_", target) or "file"
                if target in plan[student]:
                    raise WorkspaceError(f"{member}: a second file {target!r} for student {student!r} would "
                                         "overwrite the first; nothing was collected")
                plan[student][target] = data
    return plan
