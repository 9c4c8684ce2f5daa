"""Tasks for the worker-pool tests: each misbehaves the way a grader bug might.

Module-level functions, because worker processes import them by name.
"""

from __future__ import annotations

import os
import time


def behave(job: dict) -> dict:
    """Do what ``job['kind']`` says: answer, hang (always or on the first try only), or die."""
    kind = job["kind"]
    first_try = False
    if "marker" in job and not os.path.exists(job["marker"]):
        open(job["marker"], "w").close()
        first_try = True
    if kind == "hang" or (kind == "hang_once" and first_try):
        hang_without_answering()
    if kind == "die":
        os._exit(3)
    return {"name": job["name"], "pid": os.getpid()}


def hang_without_answering() -> None:
    while True:
        time.sleep(3600)
