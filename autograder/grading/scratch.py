"""Scratch folders and files of grading processes, named after the process that made them.

A grading process removes its own when it is done; one that is killed (a worker past its deadline,
a Dask worker lost mid-run, a grader stopped with SIGKILL) cannot.  So each name carries its
maker's process id, ``ag-<kind>-<pid>-<random>``, and the next run on the machine removes those
whose maker is gone (:func:`remove_orphans`).  A name whose process id is alive is kept, even if
the id was reused: a leftover that stays is harmless, a folder removed under a live kernel is not.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

_NAME = re.compile(r"^ag-(kernel|private|sandbox|submission|worker|probe)-(\d+)-")
_swept: list[bool] = []


def prefix(kind: str) -> str:
    """The ``prefix=`` of ``tempfile.mkdtemp`` & co. for a scratch folder or file of this process."""
    return f"ag-{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans(folder: str | None = None) -> list[str]:
    """Remove the scratch folders and files in ``folder`` (the temporary folder) whose maker has
    died; the paths removed.  Once per process: later calls return []."""
    if folder is None:
        if _swept:
            return []
        _swept.append(True)
        folder = tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _NAME.match(name)
        if not match or _alive(int(match.group(2))):
            continue
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(path)
        except OSError:
            pass   # another sweeper got there first, or it is not ours to remove
    return removed
