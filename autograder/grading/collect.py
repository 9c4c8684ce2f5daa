"""Bring submissions into the workspace: nbgrader's folder layout or an LMS zip."""

from __future__ import annotations

import os
import re
import shutil
import zipfile

from .workspace import Workspace, WorkspaceError, safe_name

MAX_MEMBER = 32 * 1024 * 1024
# "alice_01_chain_rule.ipynb", "Alice Smith_12345_assignsubmission_file_/x.ipynb" (Moodle),
# "smithalice_12345_67890_lesson.ipynb" (Canvas): the student is what comes before the first "_".
# The pattern is matched against the member's top folder when it has one, else its file stem.
DEFAULT_PATTERN = r"^(?P<student>[^_]+)"


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


def collect_zip(ws: Workspace, zip_path: str, assignment: str, pattern: str = DEFAULT_PATTERN) -> list[tuple[str, str, str]]:
    """An LMS download: one or more files per student, the student named in the file name.

    Members are read, never extracted by name (no path traversal); a member whose
    name does not match ``pattern`` or is too large is skipped and reported.  Each
    student's notebook is stored under the assignment's expected file name when the
    student sent exactly one notebook; otherwise the files keep their names and the
    grader picks (and flags) the most plausible one.
    """
    if assignment not in ws.assignments():
        raise WorkspaceError(f"unknown assignment {assignment!r}; known: {ws.assignments()}")
    expected = sorted(f for f in os.listdir(ws.path("release", assignment)) if f.endswith(".ipynb"))
    rx = re.compile(pattern)
    per_student: dict[str, list[tuple[str, bytes]]] = {}
    skipped = []
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            name = info.filename.replace("\\", "/")
            key = name.split("/")[0] if "/" in name.strip("/") else os.path.splitext(name)[0]
            m = rx.match(key)
            if not m or info.file_size > MAX_MEMBER or "__MACOSX" in name:
                skipped.append(name)
                continue
            try:
                sid = safe_name(m.group("student"))
            except WorkspaceError:
                skipped.append(name)
                continue
            per_student.setdefault(sid, []).append((os.path.basename(name), zf.read(info)))
    copied = []
    for sid, files in sorted(per_student.items()):
        dst = ws.path("submitted", sid, assignment)
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        os.makedirs(dst)
        notebooks = [f for f in files if f[0].endswith(".ipynb")]
        for fname, data in files:
            target = fname
            if len(notebooks) == 1 and len(expected) == 1 and fname.endswith(".ipynb"):
                target = expected[0]
            target = re.sub(r"[^A-Za-z0-9._ ()-]+", "_", target) or "file"
            with open(os.path.join(dst, target), "wb") as fh:
                fh.write(data)
        copied.append((sid, assignment, dst))
    if skipped:
        with open(ws.path("submitted", f".skipped-{assignment}.txt"), "a") as fh:
            fh.write("\n".join(skipped) + "\n")
    return copied
