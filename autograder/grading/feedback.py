"""Feedback HTML that teaches without giving the hidden tests away.

nbgrader's ``generate_feedback`` renders the autograded notebook, hidden tests
included (its issue #917).  Here every test cell shows the *released* source (the
visible tests the student already had) and keeps its output: which check failed,
expected and got, and the diagnosis.  Before a file is written it is searched for
every line of every hidden test; one hit and nothing is written.
"""

from __future__ import annotations

import html
import json
import os
import re

import nbformat

from . import notes
from .assignment import hidden_lines, nbmeta
from .offline_math import exporter as offline_exporter
from .offline_math import offline_math
from .pipeline import load_specs
from .workspace import Workspace, WorkspaceError


class LeakError(RuntimeError):
    pass


def _language(nbres: dict) -> str:
    """The edition the student handed in (NN_name.zh-CN.ipynb is the Chinese one): the page speaks it."""
    try:
        from coursework.i18n import language_of_notebook_name
        return language_of_notebook_name(nbres.get("file_used") or "")
    except Exception:
        return "en"


def _translator(lang: str):
    try:
        from coursework.i18n import translate
    except Exception:
        return lambda message: message
    return lambda message: translate(message, lang)


def _summary(result: dict, nbname: str) -> str:
    nbres = result["notebooks"][nbname]
    _ = _translator(_language(nbres))
    rows = [_("| exercise | score | result |"), "|---|---|---|"]
    for gid, c in nbres["cells"].items():
        status = {"pass": _("passed"), "fail": _("failed (see the message under the test)"),
                  "timeout": _("stopped: took too long")}.get(c["status"], c["status"])
        if c.get("cause"):
            status += f" ({re.split('[;；]', notes.in_language(c['cause'], _))[0]})"
        rows.append(f"| `{gid}` | {c['score']:g} / {c['max']:g} | {status} |")
    score = sum(c["score"] for c in nbres["cells"].values())
    total = sum(c["max"] for c in nbres["cells"].values())
    grader_notes = [f"- {html.escape(notes.in_language(msg, _))}" for sev, msg in nbres["flags"]
                    if not msg.startswith("grader error") and "Traceback" not in msg]
    text = [_("# Feedback: {assignment} / {notebook}").format(assignment=result["assignment"],
                                                             notebook=nbres.get("file_used") or nbname), "",
            _("**Score: {score} / {total}** (student `{student}`)").format(
                score=f"{score:g}", total=f"{total:g}", student=result["student"]), "", *rows, ""]
    if grader_notes:
        text += [_("**Notes from the grader**"), "", *grader_notes, ""]
    text += [_("Each test cell below shows the checks you could run yourself; the grader also ran hidden "
               "checks on other inputs. A failed check says what was expected, what your code gave, and "
               "when it recognises a common mistake, a diagnosis.")]
    return "\n".join(text)


def feedback_notebook(ws: Workspace, student: str, assignment: str, nbname: str, specs=None) -> nbformat.NotebookNode | None:
    specs = specs or load_specs(ws)
    folder = ws.path("autograded", student, assignment)
    with open(os.path.join(folder, "grading.json")) as fh:
        result = json.load(fh)
    spec_nb = next(n for n in specs[assignment].notebooks if n.name == nbname)
    by_id = {c.grade_id: c for c in spec_nb.cells if c.grade_id}
    path = os.path.join(folder, nbname)
    nb = nbformat.read(path, as_version=4) if os.path.exists(path) else nbformat.v4.new_notebook()
    out = nbformat.v4.new_notebook()
    out.cells.append(nbformat.v4.new_markdown_cell(_summary(result, nbname)))
    for cell in nb.cells:
        gid = nbmeta(cell).get("grade_id")
        if gid in by_id and by_id[gid].kind == "test":
            cell.source = by_id[gid].release_source
        cell.metadata = nbformat.NotebookNode({})
        out.cells.append(cell)
    return out


def render(nb: nbformat.NotebookNode, secrets: list[str]) -> str:
    offline_math(nb)   # formulas drawn here: the page loads nothing from a CDN
    body, _ = offline_exporter().from_notebook_node(nb)
    for line in secrets:
        if line in body or html.escape(line) in body or html.escape(line, quote=False) in body:
            raise LeakError(f"hidden test text would leak into feedback: {line[:60]!r}")
    return body


def generate(ws: Workspace, assignment: str | None = None, student: str | None = None,
             withheld: list | None = None, report=print) -> list[str]:
    """Write feedback HTML; a file that would leak a hidden test is withheld (and listed)."""
    specs = load_specs(ws)
    written = []
    withheld = withheld if withheld is not None else []
    not_graded = []
    for s, a in ws.submissions(assignment, student):
        folder = ws.path("autograded", s, a)
        if not os.path.exists(os.path.join(folder, "grading.json")):
            not_graded.append(f"{s}/{a}")
            continue
        for spec_nb in specs[a].notebooks:
            secrets = [ln for c in spec_nb.tests.values() for ln in hidden_lines(c.source)]
            nb = feedback_notebook(ws, s, a, spec_nb.name, specs)
            try:
                body = render(nb, secrets)
            except LeakError as exc:
                withheld.append((s, a, spec_nb.name, str(exc)))
                continue
            dst = ws.path("feedback", s, a)
            os.makedirs(dst, exist_ok=True)
            target = os.path.join(dst, spec_nb.name[:-6] + ".html")
            with open(target, "w") as fh:
                fh.write(body)
            written.append(target)
    if not_graded:
        names = ", ".join(not_graded[:10]) + (", ..." if len(not_graded) > 10 else "")
        why = (f"{len(not_graded)} collected submission(s) have no autograder result ({names}): not graded "
               "yet, or graded by stock `nbgrader autograde`, whose notebooks hold the hidden tests and are "
               "never shown to students; run `python -m autograder autograde` first")
        if not written:
            raise WorkspaceError(why)
        report(f"note: {why}")
    return written
