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


def collect_folder(ws: Workspace, folder: str, assignments: list[str] | None = None,
                   report: Callable[[str], None] = print) -> list[tuple[str, str, str]]:
    """Copy the submissions under ``folder`` into the workspace.

    Two layouts are understood: nbgrader's collected ``[submitted/]<student>/<assignment>/``,
    and its exchange, ``[<course>/]inbound/<student>+<assignment>+<timestamp>[+<random>]/``,
    where each resubmission is a new folder and the latest one counts (as in ``nbgrader
    collect``).  Everything passed over is reported, one line each, and finding nothing at
    all is an error: an instructor must not grade an empty class believing it complete.
    """
    known = ws.assignments()
    unknown = [a for a in assignments or [] if a not in known]
    if unknown:
        raise WorkspaceError(f"unknown assignment {', '.join(map(repr, unknown))}; known: {known}")
    if not os.path.isdir(folder):
        raise WorkspaceError(f"no such folder: {folder}")
    inbound = _inbound_folder(folder)
    found, skipped = _exchange_submissions(inbound, report) if inbound else _collected_submissions(folder)
    copied = []
    for (student, a), src in sorted(found.items()):
        if assignments and a not in assignments:
            continue
        if a not in known:
            skipped.append((src, f"{a!r} is not an assignment of this workspace (known: {', '.join(known)})"))
            continue
        try:
            sid = safe_name(student)
        except WorkspaceError as exc:
            skipped.append((src, str(exc)))
            continue
        dst = ws.path("submitted", sid, a)
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        os.makedirs(dst)
        for f in sorted(os.listdir(src)):
            p = os.path.join(src, f)
            if os.path.islink(p) or not os.path.isfile(p):
                skipped.append((p, "not a plain file (only the submission's top-level files are graded)"))
            elif os.path.getsize(p) > MAX_MEMBER:
                skipped.append((p, f"too large ({os.path.getsize(p)} bytes)"))
            else:
                shutil.copyfile(p, os.path.join(dst, f))
        copied.append((sid, a, dst))
    for path, why in skipped:
        report(f"  skipped {path}: {why}")
    if not copied:
        wanted = f" of {', '.join(map(repr, assignments))}" if assignments else ""
        raise WorkspaceError(
            f"no submissions{wanted} found in {folder}: expected nbgrader's submitted/<student>/<assignment>/ "
            "or its exchange, <course>/inbound/<student>+<assignment>+<timestamp>/")
    return copied


def _inbound_folder(folder: str) -> str | None:
    """The exchange's inbound folder when ``folder`` is one, holds one, or holds one course."""
    if os.path.basename(os.path.normpath(folder)) == "inbound":
        return folder
    if os.path.isdir(os.path.join(folder, "inbound")):
        return os.path.join(folder, "inbound")
    courses = [d for d in sorted(os.listdir(folder)) if os.path.isdir(os.path.join(folder, d, "inbound"))]
    if len(courses) > 1:
        raise WorkspaceError(f"{folder} is an exchange with several courses ({', '.join(courses)}): "
                             f"give --from {os.path.join(folder, '<course>')}")
    return os.path.join(folder, courses[0], "inbound") if courses else None


def _collected_submissions(folder: str) -> tuple[dict, list]:
    base = os.path.join(folder, "submitted") if os.path.isdir(os.path.join(folder, "submitted")) else folder
    found, skipped = {}, []
    for student in sorted(os.listdir(base)):
        sdir = os.path.join(base, student)
        if not os.path.isdir(sdir) or os.path.islink(sdir):
            continue
        for a in sorted(os.listdir(sdir)):
            adir = os.path.join(sdir, a)
            if os.path.isdir(adir) and not os.path.islink(adir):
                found[(student, a)] = adir
            else:
                skipped.append((adir, "not an assignment folder"))
    return found, skipped


def _exchange_submissions(inbound: str, report: Callable[[str], None]) -> tuple[dict, list]:
    from nbgrader.utils import parse_utc

    def when(stamp: str):
        try:
            return (1, parse_utc(stamp).isoformat())
        except (ValueError, OverflowError):  # a course's own timestamp_format: its text order
            return (0, stamp)

    attempts: dict[tuple[str, str], list[tuple[tuple, str]]] = {}
    skipped = []
    for entry in sorted(os.listdir(inbound)):
        path = os.path.join(inbound, entry)
        parts = entry.split("+")
        if len(parts) < 3 or not os.path.isdir(path) or os.path.islink(path):
            skipped.append((path, "not a submission folder <student>+<assignment>+<timestamp>"))
            continue
        attempts.setdefault((parts[0], parts[1]), []).append((when(parts[2]), path))
    found = {}
    for key, tries in attempts.items():
        tries.sort()
        found[key] = tries[-1][1]
        if len(tries) > 1:
            report(f"  {key[0]} / {key[1]}: {len(tries)} submissions, the latest is graded "
                   f"({os.path.basename(tries[-1][1])})")
    return found, skipped


def collect_zip(ws: Workspace, zip_path: str, assignment: str, pattern: str = DEFAULT_PATTERN,
                report: Callable[[str], None] = print) -> list[tuple[str, str, str]]:
    """An LMS download: one or more files per student, the student named in the file name.

    Members are read, never extracted by name (no path traversal); a member whose
    name does not match ``pattern`` or is too large is skipped, and every skip is
    reported (``report``, one line each) and listed in ``submitted/.skipped-<a>.txt``.
    Two submitters whose names give the same student id are kept apart by their
    participant id (the pattern's ``id`` group); where they have none, nothing is
    written and a WorkspaceError says why.  Each student's notebook is stored
    under the assignment's expected file name (in the edition it is: ``.zh-CN.ipynb`` stays Chinese)
    when the student sent exactly one notebook; otherwise the files keep their names and the grader picks (and flags)
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


def _edition_of(fname: str, expected: str) -> str:
    """The assignment's notebook name in the edition the student sent: a file ending in .zh-CN.ipynb
    ("smithalice_12_34_01_chain_rule.zh-CN.ipynb") is stored as 01_chain_rule.zh-CN.ipynb, so its
    feedback is written in Chinese; any other notebook under the expected name."""
    try:
        from coursework.i18n import EDITION_SUFFIX, language_of_notebook_name
    except Exception:
        return expected
    tag = EDITION_SUFFIX[language_of_notebook_name(fname)]
    return f"{expected[:-len('.ipynb')]}{tag}.ipynb" if tag else expected


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
                target = _edition_of(fname, expected[0]) if single and fname.endswith(".ipynb") else fname
                target = re.sub(r"[^A-Za-z0-9._ ()-]+", "_", target) or "file"
                if target in plan[student]:
                    raise WorkspaceError(f"{member}: a second file {target!r} for student {student!r} would "
                                         "overwrite the first; nothing was collected")
                plan[student][target] = data
    return plan
