"""The grading workspace: an nbgrader course folder outside the repository.

    <ws>/nbgrader_config.py          loads the course's autograder/nbgrader_config.py, then points here
    <ws>/autograder.json             the database URL and the grading limits chosen at build time
    <ws>/source/<assignment>/        copies of solutions/<assignment>/*.ipynb (instructor sources)
    <ws>/release/<assignment>/       what nbgrader generate_assignment released (= course/)
    <ws>/submitted/<student>/<assignment>/<notebook>.ipynb
    <ws>/autograded/<student>/<assignment>/  graded notebooks (instructor view) + grading.json
    <ws>/feedback/<student>/<assignment>/    feedback HTML (no hidden tests)
    <ws>/reports/                    grades.csv, exercises.csv, class_report.md/.json
    <ws>/gradebook.db                the SQLite gradebook (unless a PostgreSQL URL was given)

The folder is created with mode 0700: the sandboxed kernels (user ``nobody``) cannot
enter it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO_CONFIG = os.path.join(REPO_ROOT, "autograder", "nbgrader_config.py")
STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class WorkspaceError(RuntimeError):
    pass


def safe_name(name: str) -> str:
    """A student or assignment id usable as a folder name (no path tricks)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")[:64]
    if not cleaned or not STUDENT_RE.match(cleaned):
        raise WorkspaceError(f"unusable name {name!r}")
    return cleaned


def normalize_db_url(url: str) -> str:
    """SQLAlchemy 2.1 reads ``postgresql://`` as psycopg 3; the course ships psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


@dataclass
class Workspace:
    root: str

    @classmethod
    def open(cls, root: str, create: bool = False) -> "Workspace":
        root = os.path.realpath(os.path.expanduser(root))
        repo = os.path.realpath(REPO_ROOT)
        if root == repo or root.startswith(repo + os.sep):
            raise WorkspaceError(f"the grading workspace must be outside the repository ({repo}): "
                                 "it holds students' work and grades")
        if create:
            os.makedirs(root, exist_ok=True)
            os.chmod(root, 0o700)
        elif not os.path.isfile(os.path.join(root, "autograder.json")):
            raise WorkspaceError(f"{root} is not a grading workspace (run `python -m autograder build "
                                 f"--workspace {root}` first)")
        return cls(root)

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def settings(self) -> dict:
        p = self.path("autograder.json")
        if os.path.exists(p):
            with open(p) as fh:
                return json.load(fh)
        return {}

    def save_settings(self, **updates) -> None:
        s = self.settings
        s.update(updates)
        with open(self.path("autograder.json"), "w") as fh:
            json.dump(s, fh, indent=2, sort_keys=True)

    @property
    def db_url(self) -> str:
        url = os.environ.get("AUTOGRADER_DB_URL") or self.settings.get("db_url") \
            or "sqlite:///" + self.path("gradebook.db")
        return normalize_db_url(url)

    def assignments(self) -> list[str]:
        src = self.path("source")
        if not os.path.isdir(src):
            return []
        return sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))

    def submissions(self, assignment: str | list[str] | None = None,
                    student: str | list[str] | None = None) -> list[tuple[str, str]]:
        """(student, assignment) pairs collected, for one or several names of each (None: all).

        A name asked for that is unknown is an error, not an empty class: an instructor who
        mistypes one student among three must not grade the other two believing it done.
        """
        known = self.assignments()
        wanted_assignments = [assignment] if isinstance(assignment, str) else list(assignment or [])
        unknown = [a for a in wanted_assignments if a not in known]
        if unknown:
            raise WorkspaceError(f"unknown assignment {', '.join(map(repr, unknown))}; known: {known}")
        sub = self.path("submitted")
        students = sorted(s for s in os.listdir(sub) if os.path.isdir(os.path.join(sub, s))) \
            if os.path.isdir(sub) else []
        wanted_students = [student] if isinstance(student, str) else list(student or [])
        absent = [s for s in wanted_students if s not in students]
        if absent:
            shown = ", ".join(students[:20]) + (", ..." if len(students) > 20 else "")
            raise WorkspaceError(f"no submissions from student {', '.join(map(repr, absent))} in {sub}; "
                                 f"students: {shown or 'none yet'}")
        return [(s, a) for s in students if not wanted_students or s in wanted_students
                for a in known if (not wanted_assignments or a in wanted_assignments)
                and os.path.isdir(os.path.join(sub, s, a))]

    def write_config(self) -> None:
        lines = [
            "# Generated by `python -m autograder build`: the course configuration, then this workspace.",
            "import os",
            "c = get_config()  # noqa: F821",
            f"_course_config = {REPO_CONFIG!r}",
            "if os.path.exists(_course_config):",
            "    load_subconfig(_course_config)  # noqa: F821",
            f"c.CourseDirectory.root = {self.root!r}",
            "c.CourseDirectory.source_directory = 'source'",
            "c.CourseDirectory.release_directory = 'release'",
            "c.CourseDirectory.submitted_directory = 'submitted'",
            "c.CourseDirectory.autograded_directory = 'autograded'",
            "c.CourseDirectory.feedback_directory = 'feedback'",
            f"c.CourseDirectory.db_url = {self.db_url!r}",
        ]
        with open(self.path("nbgrader_config.py"), "w") as fh:
            fh.write("\n".join(lines) + "\n")


def nbgrader(ws: Workspace, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the workspace (its config file, its database)."""
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={ws.root}",
           f"--CourseDirectory.db_url={ws.db_url}"]
    proc = subprocess.run(cmd, cwd=ws.root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise WorkspaceError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def source_assignments(source_dir: str, wanted: list[str] | None = None) -> list[str]:
    """The assignments (folders with a notebook) in ``source_dir``; every name in ``wanted`` must be one."""
    if not os.path.isdir(source_dir):
        raise WorkspaceError(f"no such source folder: {source_dir}")
    available = sorted(d for d in os.listdir(source_dir)
                       if not d.startswith((".", "_")) and os.path.isdir(os.path.join(source_dir, d))
                       and any(f.endswith(".ipynb") for f in os.listdir(os.path.join(source_dir, d))))
    if not available:
        raise WorkspaceError(f"{source_dir} holds no assignment (a folder with an .ipynb notebook)")
    unknown = [name for name in wanted or [] if name not in available]
    if unknown:
        raise WorkspaceError(f"unknown assignment(s) {', '.join(map(repr, unknown))}; "
                             f"known in {source_dir}: {', '.join(available)}")
    return list(dict.fromkeys(wanted)) if wanted else available


def build(ws: Workspace, source_dir: str, db_url: str | None = None, assignments: list[str] | None = None) -> list[str]:
    """Copy the instructor sources into the workspace and let nbgrader release them.

    ``nbgrader generate_assignment`` fills the gradebook with every graded cell, its
    points and its source (hidden tests included): the trusted copy the autograder
    restores test cells from.
    """
    names = source_assignments(source_dir, assignments)
    if db_url:
        ws.save_settings(db_url=db_url)
    else:
        ws.save_settings()
    ws.write_config()
    built = []
    for name in names:
        src = os.path.join(source_dir, name)
        dst = ws.path("source", name)
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        os.makedirs(dst)
        for f in os.listdir(src):
            p = os.path.join(src, f)
            if os.path.isfile(p) and not f.endswith((".py", ".md", ".pyc")):
                shutil.copy2(p, os.path.join(dst, f))
        nbgrader(ws, "db", "assignment", "add", name)
        nbgrader(ws, "generate_assignment", name, "--force")
        built.append(name)
    return built
