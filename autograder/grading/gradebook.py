"""The gradebook's health, checked before a run writes anything, and one autograde per workspace.

The parent process is the gradebook's only writer (``pipeline.record``).  Before it starts a
class it checks that the gradebook is a database nbgrader can read, that nothing holds a lock
on it, and that no other ``autograde`` runs on the same workspace; any of these stops the run
with one line saying what to do, and nothing is written.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3

from .workspace import Workspace, WorkspaceError

SQLITE_HEADER = b"SQLite format 3\x00"
LOCK_WAIT_SECONDS = 2.0


class GradebookError(WorkspaceError):
    pass


def _sqlite_path(url: str) -> str | None:
    return url[len("sqlite:///"):] if url.startswith("sqlite:///") else None


def check(ws: Workspace, for_writing: bool = False) -> None:
    """Raise ``GradebookError`` when the gradebook is missing, damaged, or (for writing) locked."""
    path = _sqlite_path(ws.db_url)
    if path is None:
        _check_server(ws)
        return
    if not os.path.isfile(path):
        raise GradebookError(f"no gradebook at {path}: run `python -m autograder build --workspace {ws.root}`")
    with open(path, "rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise GradebookError(f"the gradebook {path} is damaged (not an SQLite database): restore it from a "
                             "backup, or rebuild the workspace and autograde again; nothing was written")
    try:
        db = sqlite3.connect(f"file:{path}?mode={'rw' if for_writing else 'ro'}", uri=True,
                             timeout=LOCK_WAIT_SECONDS, isolation_level=None)
        try:
            result = db.execute("PRAGMA quick_check").fetchone()
            if not result or result[0] != "ok":
                raise GradebookError(f"the gradebook {path} is damaged ({result[0] if result else 'no answer'}): "
                                     "restore it from a backup; nothing was written")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"assignment", "grade", "submitted_assignment"} <= tables:
                raise GradebookError(f"{path} is not an nbgrader gradebook (tables missing): rebuild the workspace")
            if for_writing:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise GradebookError(f"the gradebook {path} is locked by another process (another autograde, or a "
                                 "formgrader writing): wait for it to finish, then run again; nothing was written") \
                from None
        raise GradebookError(f"the gradebook {path} cannot be opened ({exc}); nothing was written") from None
    except sqlite3.DatabaseError as exc:
        raise GradebookError(f"the gradebook {path} is damaged ({exc}): restore it from a backup; "
                             "nothing was written") from None


def _check_server(ws: Workspace) -> None:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(ws.db_url, connect_args={"connect_timeout": 10}
                                          if ws.db_url.startswith("postgresql") else {})
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT count(*) FROM assignment"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - every driver has its own errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GradebookError(f"the gradebook database cannot be used ({first}); nothing was written") from None


class RunLock:
    """One autograde per workspace: a second one stops at once instead of interleaving writes."""

    def __init__(self, ws: Workspace):
        self.path = ws.path(".autograde.lock")
        self.fh = None

    def __enter__(self) -> "RunLock":
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "?"
            self.fh.close()
            raise GradebookError(f"another autograde (pid {holder}) is running on this workspace: wait for it, "
                                 "or stop it and run autograde again (it grades what has no result yet)") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
